import '../../src/polyfill.js'
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmod, stat } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Cleanup, BIN, cli, waitFor } from '../helpers/daemons.js'
import type { ChildProcess } from 'node:child_process'
import type { CliResult } from '../helpers/daemons.js'

const cleanup = new Cleanup()
let up: ChildProcess | undefined

const WARNING = /^collective-p2p: warning: the certificate of laptop@garage\.club\.example expires in 9 days \(\d{4}-\d\d-\d\d\); run "collective-p2p cert renew"$/m

describe('contexts: one user in two collectives', () => {
  after(async () => {
    // up's daemon is its child: stop up cleanly so that it stops the daemon, rather than leave it orphaned
    if (up != null && up.exitCode == null && up.signalCode == null) {
      const exited = new Promise(resolve => up?.once('exit', resolve))
      up.kill('SIGTERM')
      await exited
    }
    await cleanup.run()
  })

  it('adds, lists, switches and removes contexts; --context, identity show and the expiry warning', async () => {
    const xdg = await cleanup.tempDir('collective-xdg-')
    const family = join(await cleanup.tempDir('collective-homes-'), 'family')
    const club = await cleanup.tempDir('collective-club-')
    // No $COLLECTIVE_HOME: the contexts decide
    const env = { XDG_CONFIG_HOME: xdg, COLLECTIVE_HOME: undefined }
    const run = async (args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> => await cli(args, { env: { ...env, ...extra } })
    const ok = async (args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> => {
      const r = await run(args, extra)
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
      return r
    }

    assert.deepEqual(JSON.parse((await ok(['context', 'ls', '--json'])).stdout), [])
    assert.match((await ok(['context', 'ls'])).stdout, /no contexts/)

    // The club: a client home provisioned offline, its certificate 10 days from expiry
    await ok(['ca', 'init', '--federation', 'club.example', '--home', club])
    await ok(['member', 'init', 'bob', '--domain', 'garage.club.example', '--home', club])
    await ok(['cert', 'issue', '--role', 'client', '--name', 'laptop', '--days', '10', '--out', join(club, 'client'), '--home', club])

    // The family's home does not exist yet: up creates it through its context
    const added = JSON.parse((await ok(['context', 'add', 'family', '--home', family, '--json'])).stdout)
    assert.deepEqual(added, { name: 'family', home: family, current: true })
    await ok(['context', 'add', 'club', '--home', club])
    const file = join(xdg, 'collective-p2p', 'contexts.yaml')
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    const again = await run(['context', 'add', 'club', '--home', join(club, 'elsewhere')])
    assert.equal(again.code, 1)
    assert.match(again.stderr, /\[ContextExistsError\]/)
    const sameHome = await run(['context', 'add', 'club2', '--home', club])
    assert.equal(sameHome.code, 1)
    assert.match(sameHome.stderr, /already belongs to context "club" \[ContextHomeInUseError\]/)

    let out = ''
    up = cleanup.track(spawn(process.execPath, [BIN, 'up', '--context', 'family', '--nodes', '0', '--federation', 'family.example', '--member', 'alice'], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe']
    }))
    up.stdout?.on('data', d => { out += String(d) })
    up.stderr?.on('data', d => { out += String(d) })
    await waitFor('up to be ready', async () => out.includes('Press Ctrl-C'), 60_000)
    assert.ok(out.includes(`Starting a local collective in ${family}`), out)
    assert.match(out, /collective-p2p status --context family/)

    const listed = JSON.parse((await ok(['context', 'ls', '--json'])).stdout)
    assert.deepEqual(listed, [
      { name: 'family', current: true, home: family, federation: 'family.example', identity: 'coordinator@home.family.example', running: true },
      { name: 'club', current: false, home: club, federation: 'club.example', identity: 'laptop@garage.club.example', running: false }
    ])
    const table = (await ok(['context', 'ls'])).stdout
    assert.match(table, /^\*\s+family\s+family\.example\s+coordinator@home\.family\.example\s+running\s/m)
    assert.match(table, /^\s+club\s+club\.example\s+laptop@garage\.club\.example\s+stopped\s/m)

    // The current context (family) is what commands work on, and status says so
    const status = JSON.parse((await ok(['status', '--json'])).stdout)
    assert.equal(status.context, 'family')
    assert.equal(status.name, 'coordinator@home.family.example')
    assert.match((await ok(['status'])).stdout, /^ {2}context {6}family$/m)
    const familyId = await ok(['identity', 'show', '--json'])
    assert.equal(familyId.stderr, '', 'a certificate a year from expiry is not warned about')
    const fid = JSON.parse(familyId.stdout)
    assert.equal(fid.context, 'family')
    assert.equal(fid.name, 'coordinator@home.family.example')
    assert.equal(fid.role, 'coordinator')
    assert.equal(fid.peerId, status.peerId)
    assert.equal(fid.member, 'alice')
    assert.equal(fid.federation, 'family.example')
    assert.equal(fid.certFile, join(family, 'coordinator', 'peer.crt'))
    assert.ok(fid.expiresInDays >= 364, String(fid.expiresInDays))

    // --context picks the club for one command: stdout stays pure JSON, the warning goes to stderr
    const clubId = await ok(['identity', 'show', '--json', '--context', 'club'])
    const cid = JSON.parse(clubId.stdout)
    assert.equal(cid.context, 'club')
    assert.equal(cid.name, 'laptop@garage.club.example')
    assert.equal(cid.role, 'client')
    assert.equal(cid.member, 'bob')
    assert.equal(cid.expiresInDays, 9)
    assert.match(cid.peerId, /^12D3KooW/)
    assert.match(clubId.stderr, WARNING)
    assert.equal(clubId.stderr.trim().split('\n').length, 1)
    // Precedence: --context beats $COLLECTIVE_HOME, --home beats --context
    assert.equal(JSON.parse((await ok(['identity', 'show', '--json', '--context', 'club'], { COLLECTIVE_HOME: family })).stdout).name, 'laptop@garage.club.example')
    assert.equal(JSON.parse((await ok(['identity', 'show', '--json', '--context', 'club', '--home', family])).stdout).name, 'coordinator@home.family.example')
    assert.equal(JSON.parse((await ok(['identity', 'show', '--json'], { COLLECTIVE_HOME: club })).stdout).name, 'laptop@garage.club.example')

    const unknown = await run(['status', '--context', 'work'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /no context named "work".*known: family, club.*\[UnknownContextError\]/)

    // Switching: every command now warns about the club's certificate, and fails or not on its own merits
    assert.match((await ok(['context', 'use', 'club'])).stdout, /Now using context club/)
    const human = await ok(['identity', 'show'])
    assert.match(human.stdout, /^laptop@garage\.club\.example$/m)
    assert.match(human.stdout, /valid until .*\(9 days left\)/)
    assert.match(human.stderr, WARNING)
    const noDaemon = await run(['status', '--json'])
    assert.equal(noDaemon.code, 1)
    assert.equal(JSON.parse(noDaemon.stdout).error.name, 'DaemonNotRunningError')
    assert.match(noDaemon.stderr, WARNING)
    assert.match((await ok(['context', 'ls'])).stdout, /^\*\s+club\s/m)

    // rm forgets the entry, never the files
    const removed = JSON.parse((await ok(['context', 'rm', 'club', '--json'])).stdout)
    assert.deepEqual(removed, { removed: 'club', home: club, current: null })
    assert.ok(existsSync(join(club, 'client', 'peer.key')))
    assert.ok(existsSync(join(club, 'ca', 'root.key')))
    assert.deepEqual(JSON.parse((await ok(['context', 'ls', '--json'])).stdout).map((c: any) => [c.name, c.current]), [['family', false]])
    const gone = await run(['context', 'use', 'club'])
    assert.equal(gone.code, 2)
    assert.match(gone.stderr, /known: family/)

    // A contexts file others could read is refused with the file named; --home does not need the file
    await chmod(file, 0o644)
    const exposed = await run(['context', 'ls'])
    assert.equal(exposed.code, 1)
    assert.ok(exposed.stderr.includes(`contexts file ${file} is accessible to group or others`), exposed.stderr)
    assert.match(exposed.stderr, /\[ContextConfigError\]/)
    assert.equal(JSON.parse((await ok(['identity', 'show', '--json', '--home', club])).stdout).role, 'client')
    await chmod(file, 0o600)

    const exited = new Promise(resolve => up?.once('exit', resolve))
    up.kill('SIGINT')
    assert.equal(await exited, 0)
  })
})
