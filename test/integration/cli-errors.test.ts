import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Cleanup, TestFederation, cli, startDaemon } from '../helpers/daemons.js'

const cleanup = new Cleanup()
let fed: TestFederation

describe('bad input gets a clear error and a non-zero exit', () => {
  before(async () => {
    fed = await TestFederation.create(cleanup)
    await fed.member('alice', 'home.collective.local')
  })
  after(async () => { await cleanup.run() })

  it('a missing certificate file', async () => {
    const dir = await fed.component('alice', 'c1', 'coordinator', { identity: { key: 'peer.key', cert: 'nope.crt', root: 'root.crt' } })
    const r = await cli(['daemon', '--config', join(dir, 'config.yaml')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /nope\.crt/)
  })

  it('a corrupt PEM file', async () => {
    const dir = await fed.component('alice', 'c2', 'coordinator')
    await writeFile(join(dir, 'peer.crt'), '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n')
    const r = await cli(['daemon', '--config', join(dir, 'config.yaml')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /peer\.crt.*\[InvalidPemError\]/s)
  })

  it('a corrupt key file', async () => {
    const dir = await fed.component('alice', 'c3', 'coordinator')
    await writeFile(join(dir, 'peer.key'), 'garbage')
    const r = await cli(['daemon', '--config', join(dir, 'config.yaml')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /peer\.key/)
  })

  it('a config with an unknown key and a wrong type', async () => {
    const dir = await fed.component('alice', 'c4', 'coordinator', { colour: 'blue', heartbeatIntervalMs: 'often' })
    const r = await cli(['daemon', '--config', join(dir, 'config.yaml')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /\[ConfigError\]/)
    assert.match(r.stderr, /colour/)
    assert.match(r.stderr, /heartbeatIntervalMs/)
  })

  it('a config that is not YAML, and one that does not exist', async () => {
    const dir = await fed.component('alice', 'c5', 'coordinator')
    await writeFile(join(dir, 'config.yaml'), 'role: [unclosed')
    const bad = await cli(['daemon', '--config', join(dir, 'config.yaml')])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /not valid YAML.*\[ConfigError\]/s)
    const missing = await cli(['daemon', '--config', join(dir, 'absent.yaml')])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /absent\.yaml: no such file/)
  })

  it('a certificate whose role differs from the config', async () => {
    const dir = await fed.component('alice', 'c6', 'node')
    const config = await readFile(join(dir, 'config.yaml'), 'utf8')
    await writeFile(join(dir, 'config.yaml'), config.replace('role: node', 'role: coordinator'))
    const r = await cli(['daemon', '--config', join(dir, 'config.yaml')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /certificate is for a node/)
  })

  it('a second daemon on the same home', async () => {
    const dir = await fed.component('alice', 'c7', 'coordinator')
    const first = await startDaemon(cleanup, dir)
    const r = await cli(['daemon', '--config', join(dir, 'config.yaml')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /\[DaemonAlreadyRunningError\]/)
    // The refused second daemon must not have disturbed the first.
    const s = await cli(['status', '--json', '--home', dir])
    assert.equal(JSON.parse(s.stdout).peerId, first.status.peerId)
    assert.equal(await first.stop(), 0)
  })

  it('a CLI command with no daemon to talk to', async () => {
    const home = await cleanup.tempDir()
    for (const cmd of [['status'], ['peers']]) {
      const r = await cli(cmd, { home })
      assert.equal(r.code, 1)
      assert.match(r.stderr, /no daemon is running.*\[DaemonNotRunningError\]/)
    }
    const j = await cli(['status', '--json'], { home })
    assert.equal(JSON.parse(j.stdout).error.name, 'DaemonNotRunningError')
  })

  it('identity commands refuse bad input', async () => {
    const home = await cleanup.tempDir()
    assert.equal((await cli(['ca', 'init', '--federation', 'collective.local'], { home })).code, 0)
    const again = await cli(['ca', 'init', '--federation', 'collective.local'], { home })
    assert.equal(again.code, 1)
    assert.match(again.stderr, /already exists/)
    const outside = await cli(['member', 'init', 'eve', '--domain', 'evil.example.org'], { home })
    assert.equal(outside.code, 1)
    assert.match(outside.stderr, /NameConstraintError/)
    assert.equal((await cli(['member', 'init', 'alice', '--domain', 'home.collective.local'], { home })).code, 0)
    const role = await cli(['cert', 'issue', '--role', 'king', '--name', 'x'], { home })
    assert.equal(role.code, 2)
    assert.match(role.stderr, /--role must be one of/)
    const name = await cli(['cert', 'issue', '--role', 'node', '--name', 'Bad Name!'], { home })
    assert.equal(name.code, 1)
    assert.match(name.stderr, /InvalidNameError/)
    const issued = await cli(['cert', 'issue', '--role', 'node', '--name', 'node-01', '--json'], { home })
    assert.equal(issued.code, 0)
    const info = JSON.parse(issued.stdout)
    assert.equal(info.federatedName, 'node-01@home.collective.local')
    const show = await cli(['cert', 'show', info.certFile], { home })
    assert.equal(show.code, 0)
    assert.match(show.stdout, /node-01@home\.collective\.local/)
    assert.match(show.stdout, /role\s+node/)
    assert.match(show.stdout, new RegExp(`peer ID\\s+${String(info.peerId)}`))
    assert.match(show.stdout, /valid until .*days left/)
    const garbage = join(home, 'garbage.crt')
    await writeFile(garbage, 'hello')
    const bad = await cli(['cert', 'show', garbage], { home })
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /InvalidPemError/)
  })

  it('usage errors and --help on every command', async () => {
    const unknown = await cli(['frobnicate'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /unknown command/)
    const flag = await cli(['status', '--bogus'])
    assert.equal(flag.code, 2)
    const top = await cli(['--help'])
    assert.equal(top.code, 0)
    const commands = [...top.stdout.matchAll(/^ {2}([a-z]+(?: [a-z]+)?) {2,}/gm)].map(m => m[1].trim())
    assert.ok(commands.length >= 8, `commands listed: ${commands.join(', ')}`)
    for (const c of commands) {
      const r = await cli([...c.split(' '), '--help'])
      assert.equal(r.code, 0, `${c} --help`)
      assert.match(r.stdout, /^Usage: collective-p2p /, `${c} --help`)
      assert.match(r.stdout, /--json/)
    }
  })
})
