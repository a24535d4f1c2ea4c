import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createServer } from 'node:net'
import { mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DaemonFs } from '../../../src/fuse/daemon-fs.js'
import type { Socket } from 'node:net'

/** Paths this process has open, as /proc lists them */
async function openPaths (): Promise<string[]> {
  const fds = await readdir('/proc/self/fd')
  return await Promise.all(fds.map(async fd => await readlink(join('/proc/self/fd', fd)).catch(() => '')))
}

describe('the mount\'s daemon client', () => {
  it('ends a streamed upload the daemon refuses while the upload waits for the socket, and closes the local file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'daemon-fs-test-'))
    const local = join(dir, 'spool')
    await writeFile(local, Buffer.alloc(8 * 1024 * 1024))
    const sockets: Socket[] = []
    // Reads the request line and none of the body, so the client waits for 'drain'; then refuses, keeping the
    // connection open: the client destroys its socket, which emits neither 'drain' nor 'error'.
    const server = createServer(socket => {
      sockets.push(socket)
      socket.once('data', () => {
        socket.pause()
        setTimeout(() => { socket.write(JSON.stringify({ type: 'error', error: { name: 'NodeFullError', message: 'full' } }) + '\n') }, 100)
      })
    })
    const socketPath = join(dir, 'control.sock')
    await new Promise<void>(resolve => server.listen(socketPath, resolve))
    try {
      await assert.rejects(new DaemonFs(socketPath).put('/f', local, 8 * 1024 * 1024), { remoteName: 'NodeFullError' })
      let open = true
      for (let i = 0; i < 50 && open; i++) {
        await new Promise(resolve => setTimeout(resolve, 20))
        open = (await openPaths()).includes(local)
      }
      assert.equal(open, false, 'the upload let go of the local file')
    } finally {
      for (const s of sockets) s.destroy()
      server.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
