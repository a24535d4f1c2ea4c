// The polyfill must run before libp2p is loaded.
import '../src/polyfill.js'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs, promisify } from 'node:util'
import { killAll, run, runBenchmark, spawnTracked, waitForExit } from './lib/children.js'
import { BIN, Collective, cli } from './lib/collective.js'
import { writeRandomFile, sha256File } from './lib/files.js'
import { findMount } from '../src/fuse/mount.js'
import type { ChildProcess } from 'node:child_process'
import { log, positive, round, UsageError } from './lib/args.js'

const USAGE = `Usage: npm run bench:fuse [-- OPTIONS]

Starts its own local collective (1 coordinator, 3 storage nodes, replication 2) in a temporary home, mounts it
with "collective-p2p mount", and times in the same run: a sequential write and read of one random file through
the mount (cp in, dd out with fsync) and through "collective-p2p put" / "get", and the creation of small files
through the mount. Prints one JSON object on stdout; progress goes to stderr. 1 MB = 10^6 bytes throughout.

Options:
  --size MB          size of the timed file (default 500)
  --small-files N    4 KiB files created through the mount (default 200)
  --help             this text

Exit status: 0 when everything was measured, whether or not the targets were met; 1 when a measurement failed.`

/** The target: the mount at least 0.7x the CLI path in both directions */
const TARGET_RATIO = 0.7
const NODES = 3
const SMALL_FILE_BYTES = 4096

const exec = promisify(execFile)

/** What has to be undone on every way out */
const state: { tmp?: string, collective?: Collective, mount?: { proc: ChildProcess, dir: string } } = {}

async function unmount (): Promise<void> {
  const m = state.mount
  state.mount = undefined
  if (m == null) return
  if (m.proc.exitCode == null && m.proc.signalCode == null) {
    m.proc.kill('SIGTERM')
    await waitForExit(m.proc)
  }
  // A mount whose process died is stale until detached; it must not outlive the benchmark.
  if (await findMount(m.dir) != null) await exec('fusermount', ['-uz', m.dir]).catch(() => {})
}

async function cleanup (): Promise<void> {
  await unmount().catch(err => { log(`unmounting failed: ${String(err)}`) })
  const c = state.collective
  state.collective = undefined
  await c?.stop().catch(err => { log(`stopping the collective failed: ${String(err)}`) })
  killAll()
  if (state.tmp != null) {
    await rm(state.tmp, { recursive: true, force: true }).catch(err => { log(`removing ${String(state.tmp)} failed: ${String(err)}`) })
    state.tmp = undefined
  }
}

async function mount (home: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  const proc = spawnTracked(process.execPath, [BIN, 'mount', dir, '--home', home], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, COLLECTIVE_HOME: home } })
  state.mount = { proc, dir }
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const onText = (s: string): void => { output += s; if (output.includes('mounted the collective on')) resolve() }
    proc.stdout?.setEncoding('utf8').on('data', onText)
    proc.stderr?.setEncoding('utf8').on('data', onText)
    proc.once('exit', code => { reject(new Error(`mount exited with ${String(code)}: ${output.trim()}`)) })
  })
}

/** Times one command from spawn to exit; throws with its stderr unless it exits 0 */
async function timed (command: string, args: string[], timeoutMs: number): Promise<number> {
  const r = await run(command, args, { timeoutMs })
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${String(r.code)}: ${r.stderr.trim()}`)
  return r.seconds
}

async function main (argv: string[]): Promise<number> {
  let sizeMb: number
  let smallFiles: number
  try {
    const { values } = parseArgs({ args: argv, options: { size: { type: 'string' }, 'small-files': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true })
    if (values.help === true) { process.stdout.write(`${USAGE}\n`); return 0 }
    sizeMb = positive('size', values.size, 500)
    smallFiles = Math.round(positive('small-files', values['small-files'], 200))
  } catch (err: any) {
    process.stderr.write(`bench:fuse: ${String(err.message)}\n\n${USAGE}\n`)
    return 2
  }
  const bytes = Math.round(sizeMb * 1e6)
  const timeoutMs = 120_000 + bytes / 2e6 * 1000
  const loadAtStart = loadavg()[0]

  const tmp = state.tmp = await mkdtemp(join(tmpdir(), 'collective-bench-fuse-'))
  const home = join(tmp, 'home')
  const mnt = join(tmp, 'mnt')
  const local = join(tmp, 'main.bin')
  const localForMount = join(tmp, 'main-mount.bin')
  log(`writing 2 x ${round(bytes / 1e6, 1)} MB of random bytes in ${tmp}`)
  const sha = await writeRandomFile(local, bytes)
  // Different bytes for the mount: the same file again would be deduplicated and upload nothing.
  const mountSha = await writeRandomFile(localForMount, bytes)

  log(`starting the collective (1 coordinator, ${NODES} nodes)`)
  state.collective = await Collective.start(home, { nodes: NODES, log })
  const replication = Number(JSON.parse((await cli(home, ['df', '--json'])).stdout).replication)
  await cli(home, ['mkdir', '-p', '/bench/small'])

  // The CLI path: what the mount is compared with, on the same collective, in the same run.
  log('put (CLI)')
  const cliWriteS = (await cli(home, ['put', local, '/bench/cli.bin'], { timeoutMs })).seconds
  log(`  ${cliWriteS.toFixed(2)} s`)
  log('get (CLI)')
  const cliOut = join(tmp, 'cli.out')
  const cliReadS = (await cli(home, ['get', '/bench/cli.bin', cliOut], { timeoutMs })).seconds
  log(`  ${cliReadS.toFixed(2)} s`)
  if (await sha256File(cliOut) !== sha) throw new Error('get returned different bytes')
  await unlink(cliOut)

  log(`mounting on ${mnt}`)
  await mount(home, mnt)
  // cp returns after close(), which returns only once every chunk has its replicas.
  log('cp into the mount')
  const mountWriteS = await timed('cp', [localForMount, join(mnt, 'bench', 'mount.bin')], timeoutMs)
  log(`  ${mountWriteS.toFixed(2)} s`)
  // dd with fsync, as get fsyncs its output: both sides pay for landing the bytes on local disk.
  log('dd out of the mount')
  const mountOut = join(tmp, 'mount.out')
  const mountReadS = await timed('dd', [`if=${join(mnt, 'bench', 'mount.bin')}`, `of=${mountOut}`, 'bs=1M', 'conv=fsync', 'status=none'], timeoutMs)
  log(`  ${mountReadS.toFixed(2)} s`)
  if (await sha256File(mountOut) !== mountSha) throw new Error('the mount returned different bytes')
  await unlink(mountOut)

  log(`creating ${smallFiles} files of 4 KiB through the mount`)
  const payload = randomBytes(SMALL_FILE_BYTES)
  const t0 = performance.now()
  for (let i = 0; i < smallFiles; i++) {
    // Distinct bytes per file, or deduplication would turn every file after the first into metadata only.
    payload.writeUInt32LE(i, 0)
    await writeFile(join(mnt, 'bench', 'small', `f${i}`), payload)
  }
  const smallS = (performance.now() - t0) / 1000
  log(`  ${smallS.toFixed(2)} s`)
  await unmount()

  const mbps = (s: number): number => bytes / 1e6 / s
  const writeRatio = mbps(mountWriteS) / mbps(cliWriteS)
  const readRatio = mbps(mountReadS) / mbps(cliReadS)
  const result = {
    benchmark: 'fuse',
    unit: 'MB/s, 1 MB = 10^6 bytes',
    file_mb: round(bytes / 1e6, 3),
    nodes: NODES,
    replication,
    mount_write_mbps: round(mbps(mountWriteS), 1),
    mount_read_mbps: round(mbps(mountReadS), 1),
    cli_write_mbps: round(mbps(cliWriteS), 1),
    cli_read_mbps: round(mbps(cliReadS), 1),
    write_ratio: round(writeRatio, 3),
    read_ratio: round(readRatio, 3),
    small_files: smallFiles,
    small_file_bytes: SMALL_FILE_BYTES,
    small_file_creates_per_s: round(smallFiles / smallS, 1),
    targets: { ratio_min: TARGET_RATIO, write_ok: writeRatio >= TARGET_RATIO, read_ok: readRatio >= TARGET_RATIO },
    machine: { cpus: cpus().length, node: process.version, loadavg_1m_start: round(loadAtStart, 2), loadavg_1m_end: round(loadavg()[0], 2) },
    notes: [
      'CLI times are the wall time of one "collective-p2p put"/"get" process each (get writes a file and fsyncs it), CLI start-up included',
      'mount write: "cp" of the local file into the mount, to its exit (close() returns once every chunk has its replicas); mount read: "dd bs=1M conv=fsync" from the mount to a local file',
      'small files: sequential writeFile() calls (create, write, close) from this process, each stored at close'
    ]
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  return 0
}

runBenchmark(async () => await main(process.argv.slice(2)), { cleanup, tmpDir: () => state.tmp, log })
