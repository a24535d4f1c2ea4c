import '../../../src/polyfill.js'
import { after, before, beforeEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultLogger } from '@libp2p/logger'
import { ControlBody, ControlServer } from '../../../src/control/server.js'
import { readFramedBody } from '../../../src/control/framing.js'
import type { Socket } from 'node:net'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'bin.js')
const CHUNK_SIZE = 1024 * 1024

class FsError extends Error {
  constructor (name: string, message: string) {
    super(message)
    this.name = name
  }
}

interface Node { type: 'dir' | 'file', mode: number, mtimeMs: number, version: number, owner: string, data?: Buffer }

/**
 * The daemon's file methods over an in-memory tree, as the control-socket contract describes them, so the CLI
 * can be tested without a collective behind it.
 */
class FakeDaemon {
  readonly nodes = new Map<string, Node>()
  readonly calls: string[] = []
  /** When set, fs.get sends only this many bytes and then cuts the connection */
  cutGetsAfter?: number
  /**
   * How the daemon answers put and get of local files it would read or write itself: as a daemon that predates
   * them ('unknown', the default), as one that cannot reach the path ('unreachable'), or by doing it ('serve')
   */
  local: 'unknown' | 'unreachable' | 'serve' = 'unknown'
  private readonly server: ControlServer

  constructor (readonly socketPath: string) {
    this.server = new ControlServer({ logger: defaultLogger() }, { path: socketPath })
    this.reset()
    const reg = (method: string, fn: (p: any, socket: Socket, progress: (e: Record<string, unknown>) => void) => Promise<unknown>): void => {
      this.server.register(method, async (params, ctx) => { this.calls.push(method); return await fn(params, ctx.socket, ctx.progress) })
    }
    reg('fs.mkdir', async p => this.mkdir(this.norm(p.path), p.parents === true))
    reg('fs.ls', async p => {
      const path = this.norm(p.path)
      const n = this.get(path)
      return { entries: n.type === 'file' ? [this.entry(path)] : this.children(path).map(c => this.entry(c)) }
    })
    reg('fs.stat', async p => {
      const path = this.norm(p.path)
      const n = this.get(path)
      if (n.type === 'dir') return this.entry(path)
      return { ...this.entry(path), chunkSize: CHUNK_SIZE, chunks: Math.ceil((n.data?.length ?? 0) / CHUNK_SIZE), replicas: { min: 2, target: 3 } }
    })
    reg('fs.rm', async p => this.rm(this.norm(p.path), p.recursive === true))
    reg('fs.mv', async p => this.mv(this.norm(p.src), this.norm(p.dst)))
    reg('fs.put', async (p, socket, progress) => {
      const path = this.norm(p.path)
      this.parentDir(path)
      if (this.nodes.get(path)?.type === 'dir') throw new FsError('IsADirectoryError', `${path} is a directory`)
      const data = p.framed === true ? await readFramed(socket) : await readBody(socket, progress, p.size)
      if (p.size != null && data.length !== p.size) throw new FsError('SizeMismatchError', `expected ${p.size as number} bytes, got ${data.length}`)
      const version = (this.nodes.get(path)?.version ?? 0) + 1
      this.nodes.set(path, { type: 'file', mode: p.mode ?? 0o644, mtimeMs: Date.now(), version, owner: 'alice', data })
      return { path, size: data.length, chunks: Math.ceil(data.length / CHUNK_SIZE), version }
    })
    reg('fs.get', async p => {
      const path = this.norm(p.path)
      const n = this.get(path)
      if (n.type === 'dir') throw new FsError('IsADirectoryError', `${path} is a directory`)
      const data = n.data ?? Buffer.alloc(0)
      const cut = this.cutGetsAfter
      return new ControlBody({ ...this.entry(path), size: data.length }, async (sock) => {
        await writeBody(sock, cut == null ? data : data.subarray(0, cut))
        if (cut != null) throw new FsError('ChunkUnavailableError', 'no replica of chunk 3 answered')
      })
    })
    const local = (): void => {
      if (this.local === 'unknown') throw new FsError('UnknownMethodError', 'this daemon has no such method')
      if (this.local === 'unreachable') throw new FsError('LocalPathUnavailableError', 'cannot read that path: permission denied')
    }
    reg('fs.putLocal', async (p, _socket, progress) => {
      local()
      const path = this.norm(p.path)
      this.parentDir(path)
      const data = await readFile(p.localPath)
      progress({ bytes: data.length, total: data.length })
      const version = (this.nodes.get(path)?.version ?? 0) + 1
      this.nodes.set(path, { type: 'file', mode: p.mode ?? 0o644, mtimeMs: Date.now(), version, owner: 'alice', data })
      return { path, size: data.length, chunks: Math.ceil(data.length / CHUNK_SIZE), version }
    })
    reg('fs.getLocal', async p => {
      local()
      const path = this.norm(p.path)
      const data = this.get(path).data ?? Buffer.alloc(0)
      await writeFile(p.localPath, data, { mode: p.mode })
      return { ...this.entry(path), size: data.length }
    })
    reg('df', async () => ({
      nodes: [
        { name: 'node-2', peerId: '12D3KooWB', state: 'online', capacityBytes: 10 * 1024 ** 3, usedBytes: 5 * 1024 ** 3, chunkCount: 120 },
        { name: 'node-1', peerId: '12D3KooWA', state: 'online', capacityBytes: 10 * 1024 ** 3, usedBytes: 1024 ** 3, chunkCount: 30 },
        { name: 'node-3', peerId: '12D3KooWC', state: 'dead', capacityBytes: 10 * 1024 ** 3, usedBytes: 2 * 1024 ** 3, chunkCount: 40 }
      ],
      total: { capacityBytes: 20 * 1024 ** 3, usedBytes: 6 * 1024 ** 3, freeBytes: 14 * 1024 ** 3, chunkCount: 150 },
      replication: 3,
      usage: { files: 12, dirs: 1, bytes: 2 * 1024 ** 3, chunks: 50, storedBytes: 6 * 1024 ** 3 }
    }))
  }

  async start (): Promise<void> { await this.server.start() }
  async stop (): Promise<void> { await this.server.stop() }

  reset (): void {
    this.nodes.clear()
    this.nodes.set('/', { type: 'dir', mode: 0o755, mtimeMs: Date.now(), version: 1, owner: 'alice' })
    this.calls.length = 0
    this.cutGetsAfter = undefined
    this.local = 'unknown'
  }

  norm (path: unknown): string {
    if (typeof path !== 'string' || !path.startsWith('/')) throw new FsError('InvalidPathError', `invalid path ${String(path)}: paths start with /`)
    const p = posix.normalize(path)
    return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p
  }

  get (path: string): Node {
    const n = this.nodes.get(path)
    if (n == null) throw new FsError('NotFoundError', `${path} does not exist`)
    return n
  }

  parentDir (path: string): string {
    const parent = posix.dirname(path)
    const n = this.get(parent)
    if (n.type !== 'dir') throw new FsError('NotADirectoryError', `${parent} is not a directory`)
    return parent
  }

  children (dir: string): string[] {
    const prefix = dir === '/' ? '/' : `${dir}/`
    return [...this.nodes.keys()].filter(k => k !== dir && k.startsWith(prefix) && !k.slice(prefix.length).includes('/'))
  }

  entry (path: string): Record<string, unknown> {
    const n = this.get(path)
    return { path, name: path === '/' ? '/' : posix.basename(path), type: n.type, mode: n.mode, size: n.data?.length ?? 0, mtimeMs: n.mtimeMs, owner: n.owner, version: n.version }
  }

  mkdir (path: string, parents: boolean): Record<string, unknown> {
    const existing = this.nodes.get(path)
    if (existing != null) {
      if (parents && existing.type === 'dir') return this.entry(path)
      throw new FsError('AlreadyExistsError', `${path} already exists`)
    }
    if (parents && !this.nodes.has(posix.dirname(path))) this.mkdir(posix.dirname(path), true)
    this.parentDir(path)
    this.nodes.set(path, { type: 'dir', mode: 0o755, mtimeMs: Date.now(), version: 1, owner: 'alice' })
    return this.entry(path)
  }

  rm (path: string, recursive: boolean): { files: number, dirs: number, bytes: number } {
    const n = this.get(path)
    if (path === '/') throw new FsError('InvalidPathError', 'cannot remove /')
    const under = [...this.nodes.keys()].filter(k => k.startsWith(`${path}/`))
    if (n.type === 'dir' && under.length > 0 && !recursive) throw new FsError('NotEmptyError', `${path} is not empty`)
    const out = { files: 0, dirs: 0, bytes: 0 }
    for (const k of [path, ...under]) {
      const m = this.get(k)
      if (m.type === 'dir') out.dirs++; else { out.files++; out.bytes += m.data?.length ?? 0 }
      this.nodes.delete(k)
    }
    return out
  }

  mv (src: string, dst: string): Record<string, unknown> {
    this.get(src)
    this.parentDir(dst)
    if (this.nodes.has(dst)) throw new FsError('AlreadyExistsError', `${dst} already exists`)
    for (const k of [...this.nodes.keys()]) {
      if (k === src || k.startsWith(`${src}/`)) {
        this.nodes.set(dst + k.slice(src.length), this.get(k))
        this.nodes.delete(k)
      }
    }
    return this.entry(dst)
  }
}

/** Reads an upload body up to the client's half-close, reporting progress every mebibyte as the daemon does */
async function readBody (socket: Socket, progress: (e: Record<string, unknown>) => void, total?: number): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let bytes = 0
    let reported = 0
    socket.on('data', (chunk: Buffer) => {
      parts.push(chunk)
      bytes += chunk.length
      if (bytes - reported >= CHUNK_SIZE) { reported = bytes; progress({ bytes, total }) }
    })
    socket.once('end', () => { resolve(Buffer.concat(parts)) })
    socket.once('error', reject)
  })
}

/** Reads an upload of unknown size, which comes in frames (src/control/framing.ts) */
async function readFramed (socket: Socket): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const bytes of readFramedBody(socket.iterator({ destroyOnReturn: false }))) parts.push(bytes)
  return Buffer.concat(parts)
}

async function writeBody (socket: Socket, data: Buffer): Promise<void> {
  for (let off = 0; off < data.length; off += 64 * 1024) {
    if (!socket.write(data.subarray(off, off + 64 * 1024))) await new Promise(resolve => socket.once('drain', resolve))
  }
  // Let the bytes reach the client before a failure cuts the connection
  await new Promise<void>(resolve => { socket.write('', () => { resolve() }) })
}

interface Run { code: number, stdout: Buffer, stderr: string, out: string }

async function cli (home: string, args: string[], input?: Buffer | string): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const env = { ...process.env }
    delete env.COLLECTIVE_HOME
    const child = spawn(process.execPath, [BIN, ...args, '--home', home], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    child.once('error', reject)
    child.once('close', code => {
      const stdout = Buffer.concat(out)
      resolve({ code: code ?? -1, stdout, out: stdout.toString('utf8'), stderr: Buffer.concat(err).toString('utf8') })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(input ?? '')
  })
}

describe('CLI file commands against a fake daemon', () => {
  let work: string
  let home: string
  let daemon: FakeDaemon
  const run = async (args: string[], input?: Buffer | string): Promise<Run> => await cli(home, args, input)

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-files-'))
    home = join(work, 'home')
    await mkdir(home)
    daemon = new FakeDaemon(join(home, 'control.sock'))
    await daemon.start()
  })
  after(async () => {
    await daemon.stop()
    await rm(work, { recursive: true, force: true })
  })
  beforeEach(() => { daemon.reset() })

  it('put then get round-trips a 10 MB random file byte for byte, without a progress bar off a TTY', async () => {
    const data = randomBytes(10 * 1000 * 1000)
    const src = join(work, 'random.bin')
    await writeFile(src, data)
    const put = await run(['put', src, '/random.bin'])
    assert.equal(put.code, 0, put.stderr)
    assert.equal(put.stderr, '', 'no progress bar when stderr is not a terminal')
    assert.match(put.out, /stored \/random\.bin \(9\.5 MiB, 10 chunks, version 1\)/)
    assert.ok(daemon.nodes.get('/random.bin')?.data?.equals(data))

    const dest = join(work, 'random.out')
    const [get, toStdout] = await Promise.all([run(['get', '/random.bin', dest]), run(['get', '/random.bin'])])
    assert.equal(get.code, 0, get.stderr)
    assert.equal(get.stderr, '')
    assert.ok((await readFile(dest)).equals(data), 'downloaded bytes differ')
    assert.deepEqual((await readdir(work)).filter(f => f.includes('.partial-')), [])
    assert.equal(toStdout.code, 0, toStdout.stderr)
    assert.ok(toStdout.stdout.equals(data), 'stdout bytes differ')
  })

  it('put sends the size and the local mode, and --json prints the daemon\'s result', async () => {
    const src = join(work, 'small.txt')
    await writeFile(src, 'hello\n', { mode: 0o640 })
    await run(['mkdir', '/docs'])
    const put = await run(['put', src, '/docs/', '--json'])
    assert.equal(put.code, 0, put.stderr)
    assert.deepEqual(JSON.parse(put.out), { path: '/docs/small.txt', size: 6, chunks: 1, version: 1 })
    assert.equal(daemon.nodes.get('/docs/small.txt')?.mode, 0o640)
  })

  it('round-trips an empty file', async () => {
    const src = join(work, 'empty')
    await writeFile(src, '')
    const put = await run(['put', src, '/empty'])
    assert.equal(put.code, 0, put.stderr)
    assert.equal(daemon.nodes.get('/empty')?.data?.length, 0)
    const dest = join(work, 'empty.out')
    const [get, cat] = await Promise.all([run(['get', '/empty', dest]), run(['cat', '/empty'])])
    assert.equal(get.code, 0, get.stderr)
    assert.equal((await readFile(dest)).length, 0)
    assert.equal(cat.code, 0, cat.stderr)
    assert.equal(cat.stdout.length, 0)
  })

  it('write stores stdin, and cat prints it back', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17)
    const w = await run(['write', '/from-stdin.bin'], data)
    assert.equal(w.code, 0, w.stderr)
    assert.match(w.out, /stored \/from-stdin\.bin \(3\.0 MiB, 4 chunks, version 1\)/)
    const cat = await run(['cat', '/from-stdin.bin'])
    assert.equal(cat.code, 0, cat.stderr)
    assert.ok(cat.stdout.equals(data))
    const again = await run(['write', '/from-stdin.bin', '--json'], 'v2')
    assert.equal(JSON.parse(again.out).version, 2)
    assert.equal((await run(['cat', '/from-stdin.bin'])).out, 'v2')
  })

  it('a download cut short fails with TransferInterruptedError, leaves no partial file and keeps the old file', async () => {
    const data = randomBytes(8 * 1024 * 1024)
    daemon.nodes.set('/big.bin', { type: 'file', mode: 0o644, mtimeMs: Date.now(), version: 1, owner: 'alice', data })
    daemon.cutGetsAfter = 3 * 1024 * 1024
    const dir = join(work, 'cut')
    await mkdir(dir)
    const dest = join(dir, 'big.bin')
    await writeFile(dest, 'the previous version')

    const r = await run(['get', '/big.bin', dest])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /\[TransferInterruptedError\]/)
    assert.match(r.stderr, /of 8388608 bytes/)
    assert.equal(await readFile(dest, 'utf8'), 'the previous version')
    assert.deepEqual(await readdir(dir), ['big.bin'])

    const [fresh, cat] = await Promise.all([run(['get', '/big.bin', join(dir, 'new.bin')]), run(['cat', '/big.bin'])])
    assert.equal(fresh.code, 1)
    assert.deepEqual(await readdir(dir), ['big.bin'])
    assert.equal(cat.code, 1)
    assert.match(cat.stderr, /\[TransferInterruptedError\]/)
  })

  it('put and get of local files are left to the daemon when it can do them, and streamed when it cannot', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 3)
    const src = join(work, 'local.bin')
    await writeFile(src, data)
    for (const mode of ['serve', 'unreachable', 'unknown'] as const) {
      daemon.reset()
      daemon.local = mode
      const put = await run(['put', src, '/local.bin'])
      assert.equal(put.code, 0, put.stderr)
      assert.match(put.out, /stored \/local\.bin \(2\.0 MiB, 3 chunks, version 1\)/)
      assert.ok(daemon.nodes.get('/local.bin')?.data?.equals(data), mode)
      const dest = join(work, `local-${mode}.out`)
      const get = await run(['get', '/local.bin', dest, '--json'])
      assert.equal(get.code, 0, get.stderr)
      assert.equal(JSON.parse(get.out).destination, dest)
      assert.ok((await readFile(dest)).equals(data), mode)
      const streamed = mode === 'serve' ? [] : ['fs.put', 'fs.get']
      assert.deepEqual(daemon.calls.filter(c => c !== 'fs.putLocal' && c !== 'fs.getLocal'), streamed, mode)
    }
  })

  it('get into a local directory keeps the remote name', async () => {
    daemon.nodes.set('/notes.txt', { type: 'file', mode: 0o644, mtimeMs: Date.now(), version: 1, owner: 'alice', data: Buffer.from('notes') })
    const dir = join(work, 'into')
    await mkdir(dir)
    const r = await run(['get', '/notes.txt', dir])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await readFile(join(dir, 'notes.txt'), 'utf8'), 'notes')
  })

  it('ls, ls -l and ls --json', async () => {
    await run(['mkdir', '/photos'])
    daemon.nodes.set('/a.txt', { type: 'file', mode: 0o640, mtimeMs: new Date(2024, 4, 1, 12, 34).getTime(), version: 1, owner: 'alice', data: Buffer.alloc(2048) })

    const [plain, long, json, one, empty] = await Promise.all([
      run(['ls']), run(['ls', '-l', '/']), run(['ls', '--json']), run(['ls', '/a.txt']), run(['ls', '/photos'])
    ])
    assert.equal(plain.code, 0, plain.stderr)
    assert.equal(plain.out, 'a.txt\nphotos/\n')

    assert.equal(long.code, 0, long.stderr)
    const lines = long.out.trimEnd().split('\n')
    assert.match(lines[0], /^MODE\s+OWNER\s+SIZE\s+MODIFIED\s+NAME$/)
    assert.match(lines[1], /^-rw-r-----\s+alice\s+2\.0 KiB\s+2024-05-01 12:34\s+a\.txt$/)
    assert.match(lines[2], /^drwxr-xr-x\s+alice\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+photos\/$/)

    const parsed = JSON.parse(json.out)
    assert.deepEqual(Object.keys(parsed), ['entries'])
    assert.deepEqual(parsed.entries.map((e: any) => [e.name, e.type]).sort(), [['a.txt', 'file'], ['photos', 'dir']])
    for (const e of parsed.entries) assert.deepEqual(Object.keys(e).sort(), ['mode', 'mtimeMs', 'name', 'owner', 'path', 'size', 'type', 'version'])

    assert.equal(one.out, 'a.txt\n')
    assert.equal(empty.code, 0)
    assert.equal(empty.out, '')
  })

  it('prints names and messages from the daemon with their control characters escaped, never raw; --json keeps them exact', async () => {
    // What a coordinator of an older or a modified version may hold and send: this project's daemons refuse such names
    const evil = '/evil\x1b]0;owned\x07\x9b2J\rname'
    daemon.nodes.set(evil, { type: 'file', mode: 0o644, mtimeMs: Date.now(), version: 1, owner: 'mallory\x1b[31m', data: Buffer.alloc(1) })
    const [plain, long, json, missing] = await Promise.all([run(['ls']), run(['ls', '-l']), run(['ls', '--json']), run(['stat', '/missing\x1b[2J'])])
    for (const r of [plain, long, missing]) {
      assert.doesNotMatch(r.out + r.stderr, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, 'no control character reaches the terminal')
    }
    assert.match(plain.out, /^evil\\x1b\]0;owned\\x07\\x9b2J\\x0dname$/m)
    assert.match(long.out, /mallory\\x1b\[31m/)
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /\/missing\\x1b\[2J does not exist \[NotFoundError\]/)
    assert.ok(JSON.parse(json.out).entries.some((e: any) => e.path === evil && e.owner === 'mallory\x1b[31m'))
  })

  it('mkdir -p creates parents; without -p a missing parent is NotFoundError', async () => {
    const r = await run(['mkdir', '-p', '/a/b/c'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.out, /created directory \/a\/b\/c/)
    assert.deepEqual(['/a', '/a/b', '/a/b/c'].map(p => daemon.nodes.get(p)?.type), ['dir', 'dir', 'dir'])
    assert.equal((await run(['mkdir', '--parents', '/a/b/c'])).code, 0)
    const exists = await run(['mkdir', '/a'])
    assert.equal(exists.code, 1)
    assert.match(exists.stderr, /\[AlreadyExistsError\]/)
    const missing = await run(['mkdir', '/x/y'])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /^collective-p2p: \/x does not exist \[NotFoundError\]\n$/)
  })

  it('rm needs -r for a non-empty directory', async () => {
    await run(['mkdir', '-p', '/d/e'])
    daemon.nodes.set('/d/e/f.bin', { type: 'file', mode: 0o644, mtimeMs: Date.now(), version: 1, owner: 'alice', data: Buffer.alloc(1024) })
    const refused = await run(['rm', '/d'])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /\[NotEmptyError\]/)
    const r = await run(['rm', '-r', '/d'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.out, /removed \/d \(1 file, 2 directories, 1\.0 KiB\)/)
    assert.equal(daemon.nodes.has('/d'), false)
    await run(['mkdir', '/g'])
    const json = await run(['rm', '--recursive', '/g', '--json'])
    assert.deepEqual(JSON.parse(json.out), { files: 0, dirs: 1, bytes: 0 })
  })

  it('mv renames, subtree included', async () => {
    await run(['mkdir', '-p', '/old/sub'])
    const r = await run(['mv', '/old', '/new'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.out, /moved \/old to \/new/)
    assert.equal(daemon.nodes.has('/new/sub'), true)
    assert.equal(daemon.nodes.has('/old'), false)
  })

  it('stat prints key/value lines for a file and JSON with --json', async () => {
    daemon.nodes.set('/s.bin', { type: 'file', mode: 0o644, mtimeMs: Date.now() - 5000, version: 4, owner: 'alice', data: Buffer.alloc(3 * CHUNK_SIZE + 1) })
    const [r, j, dir] = await Promise.all([run(['stat', '/s.bin']), run(['stat', '/s.bin', '--json']), run(['stat', '/'])])
    assert.equal(r.code, 0, r.stderr)
    for (const re of [/^path\s+\/s\.bin$/m, /^type\s+file$/m, /^size\s+3\.0 MiB \(3145729 bytes\)$/m, /^mode\s+-rw-r--r-- \(0644\)$/m,
      /^owner\s+alice$/m, /^modified\s+\d{4}-.*\(\d+s ago\)$/m, /^version\s+4$/m, /^chunks\s+4$/m, /^chunk size\s+1\.0 MiB$/m,
      /^replicas\s+target 3, minimum 2$/m]) {
      assert.match(r.out, re)
    }
    const json = JSON.parse(j.out)
    assert.equal(json.chunks, 4)
    assert.deepEqual(json.replicas, { min: 2, target: 3 })
    assert.match(dir.out, /^type\s+directory$/m)
    assert.doesNotMatch(dir.out, /chunks/)
  })

  it('df shows a node table with the daemon\'s total line, what is stored and the replication factor', async () => {
    const [r, j] = await Promise.all([run(['df']), run(['df', '--json'])])
    assert.equal(r.code, 0, r.stderr)
    const lines = r.out.split('\n')
    assert.match(lines[0], /^NODE\s+STATE\s+CAPACITY\s+USED\s+USE%\s+CHUNKS$/)
    assert.match(lines[1], /^node-1\s+online\s+10\.0 GiB\s+1\.0 GiB\s+10%\s+30$/)
    assert.match(lines[2], /^node-2\s+online\s+10\.0 GiB\s+5\.0 GiB\s+50%\s+120$/)
    assert.match(lines[3], /^node-3\s+dead\s+10\.0 GiB\s+2\.0 GiB\s+20%\s+40$/)
    // the total row counts the daemon's totals, which leave the dead node out
    assert.match(lines[4], /^total\s+20\.0 GiB\s+6\.0 GiB\s+30%\s+150$/)
    assert.match(r.out, /free\s+14\.0 GiB/)
    assert.match(r.out, /stored\s+12 files in 1 directory, 2\.0 GiB \(6\.0 GiB with replicas, 50 chunks\)/)
    assert.match(r.out, /replication 3 copies/)
    const json = JSON.parse(j.out)
    assert.equal(json.replication, 3)
    assert.equal(json.nodes.length, 3)
  })

  it('a daemon error exits 1 with its name; --json prints it as JSON', async () => {
    const [r, json, bad, dir] = await Promise.all([
      run(['get', '/nope.txt', join(work, 'nope.txt')]), run(['get', '/nope.txt', join(work, 'nope.json'), '--json']), run(['ls', 'relative']), run(['cat', '/'])
    ])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /\/nope\.txt does not exist \[NotFoundError\]/)
    assert.deepEqual((await readdir(work)).filter(f => f.startsWith('nope')), [])
    assert.equal(json.code, 1)
    assert.deepEqual(JSON.parse(json.out), { error: { name: 'NotFoundError', message: '/nope.txt does not exist' } })
    assert.match(bad.stderr, /\[InvalidPathError\]/)
    assert.match(dir.stderr, /\[IsADirectoryError\]/)
  })

  it('--json with the content going to stdout is a usage error, and the daemon is never asked', async () => {
    daemon.nodes.set('/j.txt', { type: 'file', mode: 0o644, mtimeMs: Date.now(), version: 1, owner: 'alice', data: Buffer.from('raw bytes') })
    const runs = await Promise.all([run(['cat', '/j.txt', '--json']), run(['get', '/j.txt', '-', '--json']), run(['get', '/j.txt', '--json'])])
    for (const r of runs) {
      assert.equal(r.code, 2, r.stderr)
      assert.equal(JSON.parse(r.out).error.name, 'UsageError')
      assert.doesNotMatch(r.out, /raw bytes/)
    }
    assert.deepEqual(daemon.calls, [])
  })

  it('cat into a pipe draws no progress bar on the terminal behind stderr', async () => {
    daemon.nodes.set('/big.bin', { type: 'file', mode: 0o644, mtimeMs: Date.now(), version: 1, owner: 'alice', data: randomBytes(16 * 1024 * 1024) })
    // script gives the command a terminal; stdout goes on to wc as it would to less, stderr stays on the terminal
    const env = { ...process.env }
    delete env.COLLECTIVE_HOME
    const command = ['cat', 'get'].map(c => `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} ${c} /big.bin${c === 'get' ? ' -' : ''} --home ${JSON.stringify(home)} | wc -c`).join('; ')
    const terminal = await new Promise<string>((resolve, reject) => {
      const child = spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
      const out: Buffer[] = []
      child.stdout.on('data', (c: Buffer) => out.push(c))
      child.once('error', reject)
      child.once('close', () => { resolve(Buffer.concat(out).toString()) })
    })
    assert.match(terminal, /^16777216\s+16777216\s*$/, JSON.stringify(terminal))
  })

  it('put of a missing local file or a directory fails locally with LocalFileError', async () => {
    const [missing, dir] = await Promise.all([run(['put', join(work, 'does-not-exist'), '/x']), run(['put', work, '/x'])])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /no such local file: .*does-not-exist \[LocalFileError\]/)
    assert.equal(dir.code, 1)
    assert.match(dir.stderr, /is a directory.*\[LocalFileError\]/)
    assert.deepEqual(daemon.calls, [], 'the daemon was never asked')
  })

  it('put into a missing directory reports the daemon\'s error', async () => {
    const src = join(work, 'p.txt')
    await writeFile(src, 'x')
    const r = await run(['put', src, '/missing/p.txt'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /\[NotFoundError\]/)
  })

  it('usage errors exit 2', async () => {
    const [r, help] = await Promise.all([run(['mv', '/only-one']), run(['ls', '--help'])])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /Usage: collective-p2p mv SRC DST/)
    assert.equal(help.code, 0)
    assert.match(help.out, /-l, --long/)
  })
})
