import { open, stat } from 'node:fs/promises'
import { unlinkSync } from 'node:fs'
import { basename, dirname, join, posix, resolve } from 'node:path'
import { call, callWithSocket } from '../../control/client.js'
import { ControlProtocolError } from '../../control/errors.js'
import { frameHeader } from '../../control/framing.js'
import { LocalFileError, PartialFile, daemonCannotReach } from '../../files/local-files.js'
import { homeLayout } from '../../local/layout.js'
import { drained } from '../../util/drained.js'
import { formatBytes } from '../../util/units.js'
import { UsageError } from '../errors.js'
import { table, ago } from '../output.js'
import { ProgressBar } from '../progress.js'
import type { FileHandle } from 'node:fs/promises'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import type { Command, CommandContext } from '../command.js'

export { LocalFileError }

/** The connection ended before the whole body crossed it */
export class TransferInterruptedError extends Error {
  static name = 'TransferInterruptedError'
  name = 'TransferInterruptedError'
}

export interface Entry {
  path: string
  name: string
  type: 'dir' | 'file'
  mode: number
  size: number
  mtimeMs: number
  owner: string
  version: number
  chunkSize?: number
  chunks?: number
  replicas?: { min: number, target: number }
}

// Big enough to keep the socket busy, small enough that memory stays flat whatever the file size.
const READ_CHUNK_BYTES = 256 * 1024

function socketOf (ctx: CommandContext): string {
  return homeLayout(ctx.home).controlSocket
}

/** "drwxr-xr-x": the type comes from the entry, so mode may or may not carry S_IFMT bits */
export function modeString (type: Entry['type'], mode: number): string {
  const rwx = (bits: number): string => `${(bits & 4) !== 0 ? 'r' : '-'}${(bits & 2) !== 0 ? 'w' : '-'}${(bits & 1) !== 0 ? 'x' : '-'}`
  return `${type === 'dir' ? 'd' : '-'}${rwx(mode >> 6)}${rwx(mode >> 3)}${rwx(mode)}`
}

function pad2 (n: number): string {
  return String(n).padStart(2, '0')
}

/** Local "YYYY-MM-DD HH:MM", the width ls -l readers expect */
export function shortTime (ms: number): string {
  const d = new Date(ms)
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`
}

function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/**
 * Streams an upload body into the control socket, one chunk at a time and waiting for 'drain', then half-closes
 * the socket. A body of unknown size (stdin) goes in frames, and only a source read to its end sends the end
 * frame: if this process dies first, the daemon sees a cut body, never a complete one (framing.ts).
 */
async function sendBody (socket: Socket, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, expected?: number): Promise<number> {
  let sent = 0
  const closed = (): Error => new TransferInterruptedError(`the daemon closed the connection after ${sent} bytes of the upload`)
  const framed = expected == null
  try {
    for await (const chunk of source) {
      if (socket.destroyed) throw closed()
      // an empty frame would end the body
      if (chunk.length === 0) continue
      sent += chunk.length
      if (framed) socket.write(frameHeader(chunk.length))
      if (!socket.write(chunk)) await drained(socket, closed)
    }
    if (expected != null && sent !== expected) {
      throw new LocalFileError(`the local file changed during the upload: expected ${expected} bytes, read ${sent}`)
    }
    if (framed) socket.write(frameHeader(0))
    socket.end()
    return sent
  } catch (err: any) {
    // Ending the socket cleanly would make a short body look complete; destroying it with the error also
    // wakes the reader that is waiting for the daemon's answer.
    socket.destroy(err)
    throw err
  }
}

/**
 * Reads exactly `size` body bytes after a result line. Fewer means the daemon or the connection failed; more
 * means the two sides disagree about the protocol.
 */
async function receiveBody (socket: Socket, size: number, what: string, write: (chunk: Buffer) => Promise<void>, bar: ProgressBar): Promise<void> {
  let received = 0
  const it = socket[Symbol.asyncIterator]()
  try {
    while (true) {
      let step: IteratorResult<Buffer>
      try {
        step = await it.next()
      } catch (err: any) {
        throw new TransferInterruptedError(`download of ${what} failed after ${received} of ${size} bytes: ${err?.message as string}`)
      }
      if (step.done === true) break
      const chunk = step.value
      if (received + chunk.length > size) throw new ControlProtocolError(`the daemon sent more than the ${size} bytes it announced for ${what}`)
      await write(chunk)
      received += chunk.length
      bar.update(received)
    }
  } finally {
    socket.destroy()
  }
  if (received < size) throw new TransferInterruptedError(`download of ${what} stopped after ${received} of ${size} bytes`)
}

/** Checks the path before anything is sent, so a typo fails with the local file's name rather than a daemon error */
async function openLocalFile (path: string): Promise<{ handle: FileHandle, size: number, mode: number, file: { dev: number, ino: number } }> {
  let s
  try {
    s = await stat(path)
  } catch (err: any) {
    if (err.code === 'ENOENT') throw new LocalFileError(`no such local file: ${path}`)
    throw new LocalFileError(`cannot read ${path}: ${err.message as string}`)
  }
  if (s.isDirectory()) throw new LocalFileError(`${path} is a directory; put uploads one regular file`)
  if (!s.isFile()) throw new LocalFileError(`${path} is not a regular file`)
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err: any) {
    throw new LocalFileError(`cannot read ${path}: ${err.message as string}`)
  }
  // The size sent is the size of what was opened, not of whatever the name pointed to a moment earlier.
  const opened = await handle.stat()
  return { handle, size: opened.size, mode: opened.mode & 0o777, file: { dev: opened.dev, ino: opened.ino } }
}

/** Writes a download to stdout; a reader that goes away (`| head`) ends the download quietly */
async function downloadToStdout (socket: Socket, size: number, what: string, bar: ProgressBar): Promise<void> {
  const stdout = process.stdout
  let broken: Error | undefined
  const onError = (err: Error): void => { broken = err; socket.destroy() }
  stdout.on('error', onError)
  try {
    await receiveBody(socket, size, what, async chunk => {
      if (broken != null) throw broken
      if (!stdout.write(chunk)) await drained(stdout, () => new LocalFileError('stdout closed'))
    }, bar)
  } catch (err) {
    if (broken == null) throw err
    // Like cat under SIGPIPE: the reader has all it wanted, which is not a failure worth a message.
    if ((broken as NodeJS.ErrnoException).code === 'EPIPE') return
    throw new LocalFileError(`cannot write to stdout: ${broken.message}`)
  } finally {
    stdout.off('error', onError)
  }
}

/**
 * Writes a download next to its destination and renames it into place only once every byte has arrived, so a
 * failed download never leaves a truncated file behind or clobbers an existing one.
 */
async function downloadToFile (socket: Socket, size: number, what: string, dest: string, bar: ProgressBar): Promise<void> {
  let partial: PartialFile
  try {
    partial = await PartialFile.create(dest)
  } catch (err) {
    socket.destroy()
    throw err
  }
  // A signal handler replaces Node's default exit, so it must exit itself.
  const onSignal = (signal: NodeJS.Signals): void => {
    try { unlinkSync(partial.path) } catch {}
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await receiveBody(socket, size, what, async chunk => { await partial.write(chunk) }, bar)
    await partial.commit()
  } catch (err) {
    await partial.abort()
    throw err
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** Like cp: a local directory as the destination means "into it, under the remote name" */
async function resolveDestination (local: string, remote: string): Promise<string> {
  const s = await stat(local).catch(() => undefined)
  if (s?.isDirectory() === true) return join(local, posix.basename(remote))
  return local
}

/**
 * Has the daemon write the download to `dest` itself (it runs on this host: the socket is ours alone), so the bytes
 * skip the socket and this process. Returns the daemon's result, or undefined when it cannot (`daemonCannotReach`).
 */
async function downloadByDaemon (ctx: CommandContext, remote: string, dest: string, bar: ProgressBar): Promise<any> {
  const dir = dirname(dest)
  let directory
  try {
    directory = await stat(dir)
  } catch (err: any) {
    throw new LocalFileError(`cannot write ${dest}: ${err.code === 'ENOENT' ? 'no such directory' : err.message as string}`)
  }
  if (!directory.isDirectory()) throw new LocalFileError(`cannot write ${dest}: ${dir} is not a directory`)
  try {
    return await call(socketOf(ctx), 'fs.getLocal', {
      path: remote,
      localPath: dest,
      // what a file this process creates would get
      mode: 0o666 & ~process.umask(),
      directory: { dev: directory.dev, ino: directory.ino }
    }, { onProgress: progressFrom(bar) })
  } catch (err) {
    if (daemonCannotReach(err)) return undefined
    throw err
  }
}

async function download (ctx: CommandContext, remote: string, local: string | undefined): Promise<void> {
  const toStdout = local == null || local === '-'
  // The file's bytes are what stdout carries then: JSON there too would leave neither readable.
  if (toStdout && ctx.json) throw new UsageError('--json needs the content to go to a file (get REMOTEPATH LOCALFILE --json): cat and get to stdout write the bytes themselves there')
  const dest = toStdout ? undefined : await resolveDestination(local, remote)
  if (dest != null) {
    const bar = new ProgressBar({ label: posix.basename(remote), enabled: !ctx.json })
    let result
    try {
      // the daemon's working directory is not ours
      result = await downloadByDaemon(ctx, remote, resolve(dest), bar)
    } finally {
      bar.finish()
    }
    if (result != null) {
      ctx.emit({ ...result, destination: dest })
      ctx.out(`saved ${remote} to ${dest} (${formatBytes(Number(result.size))})`)
      return
    }
  }
  const { result, socket } = await callWithSocket(socketOf(ctx), 'fs.get', { path: remote })
  const size = Number(result?.size)
  if (!Number.isSafeInteger(size) || size < 0) {
    socket.destroy()
    throw new ControlProtocolError(`the daemon announced an invalid size for ${remote}`)
  }
  // Content on stdout goes to the terminal or to a reader such as less that draws on it too: either way a bar on
  // stderr, the same terminal, would garble it.
  const bar = new ProgressBar({ total: size, label: posix.basename(remote), enabled: !ctx.json && !toStdout })
  try {
    if (dest == null) {
      await downloadToStdout(socket, size, remote, bar)
      return
    }
    await downloadToFile(socket, size, remote, dest, bar)
  } finally {
    bar.finish()
  }
  ctx.emit({ ...result, destination: dest })
  ctx.out(`saved ${remote} to ${dest} (${formatBytes(size)})`)
}

function progressFrom (bar: ProgressBar): (event: Record<string, any>) => void {
  return event => {
    if (typeof event.bytes === 'number') bar.update(event.bytes, typeof event.total === 'number' ? event.total : undefined)
  }
}

/** Sends one upload to the daemon (`fs.put`) and reports the stored file */
async function upload (ctx: CommandContext, params: Record<string, unknown>, bar: ProgressBar, body: (socket: Socket) => Promise<void>): Promise<void> {
  const { result, socket } = await callWithSocket(socketOf(ctx), 'fs.put', params, { body, onProgress: progressFrom(bar) })
  socket.destroy()
  bar.finish()
  ctx.emit(result)
  ctx.out(putSummary(result))
}

function putSummary (r: any): string {
  return `stored ${r.path as string} (${formatBytes(r.size)}, ${plural(r.chunks, 'chunk')}, version ${r.version as number})`
}

export const mkdirCommand: Command = {
  name: 'mkdir',
  summary: 'Create a directory in the collective.',
  usage: 'mkdir [-p|--parents] PATH',
  options: {
    parents: { type: 'boolean', short: 'p', description: 'create missing parents; an existing directory is not an error' }
  },
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const entry = await call(socketOf(ctx), 'fs.mkdir', { path: ctx.positionals[0], parents: ctx.values.parents === true })
    ctx.emit(entry)
    ctx.out(`created directory ${entry?.path as string ?? ctx.positionals[0]}`)
  }
}

export const lsCommand: Command = {
  name: 'ls',
  summary: 'List a directory of the collective (or show one file).',
  usage: 'ls [-l|--long] [PATH]',
  description: 'PATH defaults to /. Directories are shown with a trailing /.',
  options: {
    long: { type: 'boolean', short: 'l', description: 'show mode, owner, size and modification time' }
  },
  maxPositionals: 1,
  async run (ctx) {
    const r = await call(socketOf(ctx), 'fs.ls', { path: ctx.positionals[0] ?? '/' })
    ctx.emit(r)
    const entries = [...(r.entries as Entry[])].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    if (entries.length === 0) return
    const display = (e: Entry): string => e.type === 'dir' ? `${e.name}/` : e.name
    if (ctx.values.long !== true) {
      for (const e of entries) ctx.out(display(e))
      return
    }
    ctx.out(table(['MODE', 'OWNER', 'SIZE', 'MODIFIED', 'NAME'], entries.map(e => [
      modeString(e.type, e.mode), e.owner, e.type === 'dir' ? '-' : formatBytes(e.size), shortTime(e.mtimeMs), display(e)
    ])))
  }
}

export const statCommand: Command = {
  name: 'stat',
  summary: 'Show a file\'s or directory\'s metadata: size, mode, owner, version, chunks and replication.',
  usage: 'stat PATH',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const e = await call(socketOf(ctx), 'fs.stat', { path: ctx.positionals[0] }) as Entry
    ctx.emit(e)
    const rows: Array<[string, string]> = [
      ['path', e.path],
      ['type', e.type === 'dir' ? 'directory' : 'file'],
      ['size', `${formatBytes(e.size)} (${e.size} bytes)`],
      ['mode', `${modeString(e.type, e.mode)} (0${(e.mode & 0o7777).toString(8)})`],
      ['owner', e.owner],
      ['modified', `${new Date(e.mtimeMs).toISOString()} (${ago(Date.now() - e.mtimeMs)})`],
      ['version', String(e.version)]
    ]
    if (e.type === 'file') {
      if (e.chunks != null) rows.push(['chunks', String(e.chunks)])
      if (e.chunkSize != null) rows.push(['chunk size', formatBytes(e.chunkSize)])
      if (e.replicas != null) rows.push(['replicas', `target ${e.replicas.target}, minimum ${e.replicas.min}`])
    }
    const width = Math.max(...rows.map(([k]) => k.length))
    for (const [k, v] of rows) ctx.out(`${k.padEnd(width)}  ${v}`)
  }
}

export const rmCommand: Command = {
  name: 'rm',
  summary: 'Remove a file, or with -r a directory and everything in it.',
  usage: 'rm [-r|--recursive] PATH',
  options: {
    recursive: { type: 'boolean', short: 'r', description: 'remove a directory and its contents' }
  },
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const path = ctx.positionals[0]
    const r = await call(socketOf(ctx), 'fs.rm', { path, recursive: ctx.values.recursive === true })
    ctx.emit(r)
    const parts = [plural(r.files, 'file')]
    if (r.dirs > 0) parts.push(`${r.dirs as number} ${r.dirs === 1 ? 'directory' : 'directories'}`)
    ctx.out(`removed ${path} (${parts.join(', ')}, ${formatBytes(r.bytes)})`)
  }
}

export const mvCommand: Command = {
  name: 'mv',
  summary: 'Move or rename a file or directory within the collective.',
  usage: 'mv SRC DST',
  description: 'A DST ending in / means "into that existing directory, under SRC\'s name"; it is an error when DST\n' +
    'is a file or does not exist. Without the slash DST is the new name, and an existing file there is replaced.',
  minPositionals: 2,
  maxPositionals: 2,
  async run (ctx) {
    const [src, dst] = ctx.positionals
    const entry = await call(socketOf(ctx), 'fs.mv', { src, dst })
    ctx.emit(entry)
    ctx.out(`moved ${src} to ${entry?.path as string ?? dst}`)
  }
}

export const putCommand: Command = {
  name: 'put',
  summary: 'Upload a local file into the collective.',
  usage: 'put LOCALFILE REMOTEPATH',
  description: 'A REMOTEPATH ending in / means "into that directory, under the local file\'s name".\n' +
    'The file is streamed; it is never read into memory whole. The progress bar (on a terminal, for files over\n' +
    '4 MiB) counts the bytes the daemon has acknowledged. The daemon reads the file itself when it can reach it\n' +
    '(it runs on this host); otherwise this command sends the bytes over the control socket.',
  minPositionals: 2,
  maxPositionals: 2,
  async run (ctx) {
    const [local, remoteArg] = ctx.positionals
    const remote = remoteArg.endsWith('/') ? `${remoteArg}${basename(local)}` : remoteArg
    const { handle, size, mode, file } = await openLocalFile(local)
    const bar = new ProgressBar({ total: size, label: basename(local), enabled: !ctx.json })
    try {
      // The daemon reads the file itself when it can (it runs on this host): the bytes skip the socket and us.
      let result
      try {
        result = await call(socketOf(ctx), 'fs.putLocal', { path: remote, localPath: resolve(local), mode, file }, { onProgress: progressFrom(bar) })
      } catch (err) {
        if (!daemonCannotReach(err)) throw err
      }
      if (result != null) {
        bar.finish()
        ctx.emit(result)
        ctx.out(putSummary(result))
        return
      }
      await upload(ctx, { path: remote, size, mode }, bar, async socket => {
        const source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = size === 0
          ? []
          : handle.createReadStream({ start: 0, end: size - 1, autoClose: false, highWaterMark: READ_CHUNK_BYTES })
        await sendBody(socket, source, size)
      })
    } finally {
      bar.finish()
      await handle.close().catch(() => {})
    }
  }
}

export const writeCommand: Command = {
  name: 'write',
  summary: 'Store what arrives on stdin as a file in the collective.',
  usage: 'write REMOTEPATH',
  description: 'Example: tar c photos | collective-p2p write /backup/photos.tar\n' +
    'The file is stored only once stdin ends; if this command is interrupted first, the old version stays.',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const remote = ctx.positionals[0]
    const stdin: Readable = process.stdin
    if (process.stdin.isTTY === true && !ctx.json) process.stderr.write('reading from the terminal; end with Ctrl-D\n')
    const bar = new ProgressBar({ label: posix.basename(remote), enabled: !ctx.json })
    try {
      await upload(ctx, { path: remote, framed: true }, bar, async socket => { await sendBody(socket, stdin) })
    } finally {
      bar.finish()
      // A daemon that refused early leaves stdin unread; an open stdin would keep the process alive.
      stdin.destroy()
    }
  }
}

export const getCommand: Command = {
  name: 'get',
  summary: 'Download a file from the collective to a local file, or to stdout.',
  usage: 'get REMOTEPATH [LOCALFILE]',
  description: 'Without LOCALFILE (or with -) the content goes to stdout. A local directory means "into it".\n' +
    'The download is written to LOCALFILE.partial-* and renamed into place only when complete, so a failed\n' +
    'download never leaves a truncated file or overwrites an existing one. The daemon writes LOCALFILE itself\n' +
    'when it can reach it (it runs on this host); otherwise the bytes come through this command.',
  minPositionals: 1,
  maxPositionals: 2,
  async run (ctx) {
    await download(ctx, ctx.positionals[0], ctx.positionals[1])
  }
}

export const catCommand: Command = {
  name: 'cat',
  summary: 'Print a file from the collective to stdout.',
  usage: 'cat PATH',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    await download(ctx, ctx.positionals[0], undefined)
  }
}

export const fileCommands: Command[] = [
  lsCommand, statCommand, mkdirCommand, rmCommand, mvCommand, putCommand, writeCommand, getCommand, catCommand
]
