import '../../src/polyfill.js'
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, statSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { Cleanup, BIN, cli, waitFor } from '../helpers/daemons.js'
import { DAEMON_V8_FLAGS } from '../../src/daemon/v8-flags.js'
import type { ChildProcess } from 'node:child_process'

const cleanup = new Cleanup()

function files (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)])
}

function startUp (home: string): { proc: ChildProcess, output: () => string } {
  let out = ''
  const proc = cleanup.track(spawn(process.execPath, [BIN, 'up'], { env: { ...process.env, COLLECTIVE_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] }))
  proc.stdout?.on('data', d => { out += String(d) })
  proc.stderr?.on('data', d => { out += String(d) })
  return { proc, output: () => out }
}

async function interrupt (proc: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>(resolve => proc.once('exit', code => { resolve(code) }))
  proc.kill('SIGINT')
  return await exited
}

describe('collective-p2p up: a local collective in one command', () => {
  after(async () => { await cleanup.run() })

  it('provisions, runs, reports status, refuses a second copy, stops on Ctrl-C and reuses identities', async () => {
    const home = await cleanup.tempDir('collective-home-')
    const up = startUp(home)
    await waitFor('"Ready" from up', async () => up.output().includes('Ready:'), 60_000)

    const status = JSON.parse((await cli(['status', '--json'], { home })).stdout)
    assert.equal(status.role, 'coordinator')
    assert.match(status.name, /^coordinator@home\.collective\.local$/)
    assert.match(status.peerId, /^12D3KooW/)
    assert.ok(status.listen.length > 0)
    assert.deepEqual(status.nodes.map((n: any) => [n.name, n.state]), [
      ['node-01@home.collective.local', 'alive'], ['node-02@home.collective.local', 'alive'], ['node-03@home.collective.local', 'alive']
    ])
    assert.equal(status.peers.length, 3)
    for (const p of status.peers) {
      assert.equal(p.role, 'node')
      assert.match(p.name, /^node-0[123]@home\.collective\.local$/)
      assert.equal(p.member, status.member)
    }
    const human = await cli(['status'], { home })
    assert.equal(human.code, 0)
    assert.match(human.stdout, /Storage nodes \(3\)/)
    const peers = JSON.parse((await cli(['peers', '--json'], { home })).stdout)
    assert.equal(peers.length, 3)
    const peerIds = new Set(peers.map((p: any) => p.peerId))
    assert.equal(peerIds.size, 3, 'every node is its own peer')

    // Keys are private, and CA keys never sit in a component's folder.
    const keys = files(home).filter(f => f.endsWith('.key'))
    assert.equal(keys.length, 6)
    for (const k of keys) assert.equal(statSync(k).mode & 0o777, 0o600, `${k} must be mode 0600`)
    assert.deepEqual(keys.filter(k => !k.endsWith('peer.key')).map(k => relative(home, k)).sort(), ['ca/root.key', 'member/ca.key'])
    assert.equal(statSync(join(home, 'control.sock')).mode & 0o777, 0o600)

    // Daemons run with the V8 flags meant for them (DAEMON_V8_FLAGS), given before the script.
    const argv = readFileSync(`/proc/${String(status.pid)}/cmdline`, 'utf8').split('\0')
    assert.deepEqual(argv.slice(1, 1 + DAEMON_V8_FLAGS.length), [...DAEMON_V8_FLAGS])

    // A crashed coordinator is restarted by up on its own port, and the nodes find it again.
    process.kill(status.pid, 'SIGKILL')
    await waitFor('the restarted coordinator with its three nodes', async () => {
      const r = await cli(['status', '--json'], { home })
      if (r.code !== 0) return undefined
      const s = JSON.parse(r.stdout)
      return s.pid !== status.pid && s.peerId === status.peerId && s.nodes.filter((n: any) => n.state === 'alive').length === 3
    }, 60_000, 500)
    assert.match(up.output(), /coordinator exited \(SIGKILL\); restarting it/)

    const second = await cli(['up'], { home })
    assert.equal(second.code, 1)
    assert.match(second.stderr, /already running.*\[DaemonAlreadyRunningError\]/)

    assert.equal(await interrupt(up.proc), 0)
    assert.equal(existsSync(join(home, 'control.sock')), false, 'the control socket is removed on a clean stop')
    for (const n of ['node-01', 'node-02', 'node-03']) assert.equal(existsSync(join(home, 'nodes', n, 'control.sock')), false)
    const none = await cli(['status'], { home })
    assert.equal(none.code, 1)
    assert.match(none.stderr, /DaemonNotRunningError/)

    // A second run reuses every identity.
    const again = startUp(home)
    await waitFor('"Ready" from the second up', async () => again.output().includes('Ready:'), 60_000)
    assert.doesNotMatch(again.output(), /created|issued/)
    const status2 = JSON.parse((await cli(['status', '--json'], { home })).stdout)
    assert.equal(status2.peerId, status.peerId)
    assert.deepEqual(new Set(status2.peers.map((p: any) => p.peerId)), peerIds)
    assert.equal(await interrupt(again.proc), 0)
  })
})
