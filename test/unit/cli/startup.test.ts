import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// What the CLI loads before a command runs is paid on every command, and `get` and `put` are timed with it
// (bench:transfer's cli_startup_s). The heavy packages stay behind dynamic imports in the commands that need them.

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'bin.js')
// A module hook that reports every module the process loads, on stderr
const HOOKS = 'data:text/javascript,export async function load (url, context, next) { process._rawDebug("LOADED " + url); return await next(url, context) }'
const REGISTER = `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(HOOKS)})`
/** Packages a command that only talks to the daemon or prints help must not load */
const HEAVY = ['zod', 'yaml', 'libp2p', '@libp2p/', '@chainsafe/', '@peculiar/', 'better-sqlite3', 'fuse-native', 'prom-client']

let home: string

async function loaded (args: string[]): Promise<string[]> {
  const run = await promisify(execFile)(process.execPath, ['--import', REGISTER, BIN, ...args], {
    env: { ...process.env, COLLECTIVE_HOME: home, XDG_CONFIG_HOME: home }
  }).catch((err: any) => err)
  const urls = String(run.stderr).split('\n').filter(l => l.startsWith('LOADED ')).map(l => l.slice('LOADED '.length))
  assert.ok(urls.some(u => u.endsWith('/src/cli/main.js')), `the hook saw the CLI load (stderr: ${String(run.stderr).slice(0, 500)})`)
  return urls
}

function heavy (urls: string[]): string[] {
  return urls.filter(u => HEAVY.some(p => u.includes(`/node_modules/${p}`)))
}

describe('CLI start-up', () => {
  before(async () => { home = await mkdtemp(join(tmpdir(), 'cp2p-startup-')) })
  after(async () => { await rm(home, { recursive: true, force: true }) })

  it('loads none of the heavy packages for --help or for a file command', async () => {
    assert.deepEqual(heavy(await loaded(['--help'])), [])
    // No daemon runs there: the command fails, after loading all it would have loaded to talk to one
    assert.deepEqual(heavy(await loaded(['get', '/a.bin', join(home, 'a.bin')])), [])
  })

  it('loads them where they are needed: the contexts file is parsed with yaml and checked with zod', async () => {
    const first = await loaded(['context', 'add', 'family', '--home', join(home, 'family')])
    assert.ok(first.some(u => u.includes('/node_modules/yaml/')), 'yaml, to write the contexts file')
    assert.ok(!first.some(u => u.includes('/node_modules/zod/')), 'no zod while there is no file to check')
    const second = await loaded(['context', 'add', 'club', '--home', join(home, 'club')])
    assert.ok(second.some(u => u.includes('/node_modules/zod/')), 'zod, to check the file written by the first')
  })
})
