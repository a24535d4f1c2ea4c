import '../../../src/polyfill.js'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultLogger } from '@libp2p/logger'
import { ControlServer } from '../../../src/control/server.js'
import { openControl } from '../../../src/control/client.js'
import { frameHeader, readFramedBody, readLine, writeLine } from '../../../src/control/framing.js'
import { FileService } from '../../../src/files/service.js'
import { registerFileMethods } from '../../../src/files/control.js'
import { FakeNodes, OWNER, node } from '../repair/fixtures.js'
import type { NodeRecord } from '../../../src/node-registry/registry.js'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'bin.js')

async function * chunks (...parts: Uint8Array[]): AsyncGenerator<Uint8Array> { yield * parts }

async function collect (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const p of source) parts.push(p)
  return Buffer.concat(parts)
}

describe('framed upload bodies', () => {
  it('yield the frames\' bytes up to the end frame, however the socket cuts them', async () => {
    const wire = Buffer.concat([frameHeader(3), Buffer.from('abc'), frameHeader(2), Buffer.from('de'), frameHeader(0)])
    const oneByteAtATime = [...wire].map(b => Uint8Array.of(b))
    assert.equal((await collect(readFramedBody(chunks(...oneByteAtATime)))).toString(), 'abcde')
    assert.equal((await collect(readFramedBody(chunks(wire)))).toString(), 'abcde')
  })

  it('refuse a body that ends before its end frame, even on a frame boundary', async () => {
    const cut = [Buffer.concat([frameHeader(3), Buffer.from('ab')]), Buffer.concat([frameHeader(3), Buffer.from('abc')]), frameHeader(0).subarray(0, 2), new Uint8Array()]
    for (const wire of cut) {
      await assert.rejects(collect(readFramedBody(chunks(wire))), { name: 'IncompleteUploadError' })
    }
    await assert.rejects(collect(readFramedBody(chunks(Buffer.concat([frameHeader(0), Buffer.from('x')])))), { name: 'ControlProtocolError' })
  })
})

describe('fs.put over the control socket', () => {
  let work: string
  let socketPath: string
  let control: ControlServer
  let files: FileService
  let nodes: NodeRecord[]
  /** How each fs.put the daemon served ended: 'ok' or the error's name */
  let puts: Array<Promise<string>>
  const v1 = randomBytes(200_000)

  const contents = async (path: string): Promise<Buffer> => {
    const { manifest } = files.open(path)
    const parts: Uint8Array[] = []
    for await (const list of files.read(manifest)) parts.push(list.subarray())
    return Buffer.concat(parts)
  }

  /** Sends an fs.put request and `body`, then ends the connection as a client that dies does; returns the answer */
  const rawPut = async (params: Record<string, unknown>, body: Uint8Array): Promise<any> => {
    const socket = await openControl(socketPath)
    try {
      writeLine(socket, { method: 'fs.put', params })
      socket.end(body)
      while (true) {
        const line = await readLine(socket) as any
        if (line?.type !== 'progress') return line
      }
    } finally {
      socket.destroy()
    }
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'files-control-'))
    socketPath = join(work, 'control.sock')
    nodes = await Promise.all(['a', 'b', 'c'].map(async n => await node(n, 'home.collective.local')))
    files = new FileService({ chunks: new FakeNodes(), nodes: () => nodes, logger: defaultLogger() }, { path: ':memory:' })
    await files.start()
    control = new ControlServer({ logger: defaultLogger() }, { path: socketPath })
    registerFileMethods(control, { files, owner: OWNER, nodes: () => nodes })
    const put = control.handler('fs.put')!
    puts = []
    control.register('fs.put', async (p, ctx) => {
      const done = put(p, ctx)
      puts.push(done.then(() => 'ok', (err: Error) => err.name))
      return await done
    })
    await control.start()
  })
  after(async () => {
    await control.stop()
    await files.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('stores a framed body whole, and keeps the old version when the connection ends before the end frame', async () => {
    const whole = await rawPut({ path: '/f', framed: true }, Buffer.concat([frameHeader(v1.length), v1, frameHeader(0)]))
    assert.equal(whole.type, 'result', JSON.stringify(whole))
    assert.equal(whole.result.version, 1)

    const half = v1.subarray(0, 50_000)
    for (const body of [Buffer.concat([frameHeader(v1.length), half]), Buffer.concat([frameHeader(half.length), half])]) {
      const cut = await rawPut({ path: '/f', framed: true }, body)
      assert.equal(cut.type, 'error')
      assert.equal(cut.error.name, 'IncompleteUploadError')
    }
    assert.equal(files.stat('/f').version, 1, 'no new version')
    assert.ok((await contents('/f')).equals(v1), 'the old version is intact')
  })

  it('df totals capacity, use and chunks over the same nodes: those not dead', async () => {
    const saved = nodes
    nodes = [
      { ...saved[0], capacityBytes: 1000, usedBytes: 100, chunkCount: 10 },
      { ...saved[1], state: 'suspect', capacityBytes: 1000, usedBytes: 200, chunkCount: 20 },
      { ...saved[2], state: 'dead', capacityBytes: 1000, usedBytes: 400, chunkCount: 40 }
    ]
    try {
      const socket = await openControl(socketPath)
      writeLine(socket, { method: 'df' })
      const answer = await readLine(socket) as any
      socket.destroy()
      assert.deepEqual(answer.result.total, { capacityBytes: 2000, usedBytes: 300, freeBytes: 1700, chunkCount: 30 })
    } finally {
      nodes = saved
    }
  })

  it('refuses an upload that declares neither its size nor framing', async () => {
    const answer = await rawPut({ path: '/g' }, Buffer.from('whatever'))
    assert.equal(answer.error?.name, 'ControlProtocolError')
    assert.throws(() => files.stat('/g'), { name: 'NotFoundError' })
  })

  it('a write whose CLI is interrupted mid-upload stores nothing', async () => {
    const before = files.stat('/f').version
    const env = { ...process.env }
    delete env.COLLECTIVE_HOME
    const child = spawn(process.execPath, [BIN, 'write', '/f', '--home', work], { env, stdio: ['pipe', 'ignore', 'pipe'] })
    const exited = once(child, 'close')
    const served = puts.length
    child.stdin.on('error', () => {})
    child.stdin.write(randomBytes(1024 * 1024))
    // the daemon has begun reading the upload: it is under way, not refused
    for (let waited = 0; puts.length === served; waited += 20) {
      assert.ok(waited < 10_000 && child.exitCode == null, 'the CLI never began its upload')
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    await new Promise(resolve => setTimeout(resolve, 200))
    child.kill('SIGINT')
    await exited
    assert.equal(await puts[served], 'IncompleteUploadError')
    assert.equal(files.stat('/f').version, before, 'no new version')
    assert.ok((await contents('/f')).equals(v1), 'the old version is intact')
  })
})
