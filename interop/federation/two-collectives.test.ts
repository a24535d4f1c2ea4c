import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { call } from '../../src/control/client.js'
import { readCertificateChain, readPeerKey } from '../../src/identity/index.js'
import { writeClientHome } from '../../src/local/client-home.js'
import { BIN, Cleanup, TestFederation, cli, startDaemon, waitFor } from '../../test/helpers/daemons.js'
import type { CliResult } from '../../test/helpers/daemons.js'

/**
 * One person in two collectives (a family's and a club's): two federations of real daemons, a client daemon of
 * theirs in each, each in its own home with its own key and certificate, chosen per command by context. What is
 * written through one never shows in the other.
 */

const cleanup = new Cleanup()
let xdg: string
const homes: Record<string, string> = {}

async function run (...args: string[]): Promise<CliResult> {
  return await cli(args, { env: { XDG_CONFIG_HOME: xdg, COLLECTIVE_HOME: undefined } })
}

async function ok (...args: string[]): Promise<string> {
  const r = await run(...args)
  assert.equal(r.code, 0, `${args.join(' ')}\n${r.stderr}`)
  return r.stdout
}

/** A federation with one member, its coordinator and one node, and a client home of that member's */
async function collective (federation: string, member: string, domain: string): Promise<string> {
  const fed = await TestFederation.create(cleanup, federation)
  await fed.member(member, domain)
  const coordinator = await startDaemon(cleanup, await fed.component(member, 'coordinator', 'coordinator', { storage: { replication: 1 } }), [], {}, 60_000)
  await startDaemon(cleanup, await fed.component(member, 'node-01', 'node'), ['--coordinator', coordinator.status.listen[0]], {}, 60_000)
  await waitFor(`${federation}'s node`, async () => (await call(coordinator.socket, 'nodes')).some((n: any) => n.state === 'alive'), 30_000)

  const issued = await fed.component(member, 'laptop', 'client')
  const home = join(await cleanup.tempDir('collective-client-'), federation)
  const [leaf, ca] = await readCertificateChain(join(issued, 'peer.crt'))
  const [root] = await readCertificateChain(join(issued, 'root.crt'))
  const { configFile } = await writeClientHome({ home, key: await readPeerKey(join(issued, 'peer.key')), chain: [leaf, ca], root, bootstrap: [coordinator.status.listen[0]] })
  const proc = cleanup.track(spawn(process.execPath, [BIN, 'daemon', '--config', configFile], { stdio: 'ignore' }))
  await waitFor(`${federation}'s client daemon`, async () => {
    if (proc.exitCode != null) throw new Error(`the client daemon exited with ${proc.exitCode}`)
    return (await call(join(home, 'control.sock'), 'status')).role === 'client'
  }, 60_000)
  return home
}

describe('one person in two collectives', () => {
  before(async () => {
    xdg = await cleanup.tempDir('collective-xdg-')
    homes.family = await collective('family.example', 'alice', 'home.family.example')
    homes.club = await collective('club.example', 'alice', 'garage.club.example')
    await ok('context', 'add', 'family', '--home', homes.family)
    await ok('context', 'add', 'club', '--home', homes.club)
  })

  after(async () => { await cleanup.run() })

  it('keeps the two apart: identities, files and the current context', async () => {
    const listed = JSON.parse(await ok('context', 'ls', '--json'))
    assert.deepEqual(listed.map((c: any) => [c.name, c.federation, c.identity, c.running]), [
      ['family', 'family.example', 'laptop@home.family.example', true],
      ['club', 'club.example', 'laptop@garage.club.example', true]
    ])
    const family = JSON.parse(await ok('identity', 'show', '--context', 'family', '--json'))
    const club = JSON.parse(await ok('identity', 'show', '--context', 'club', '--json'))
    assert.notEqual(family.peerId, club.peerId, 'a key of its own in each collective')

    for (const name of ['family', 'club']) {
      const r = await cli(['write', '/notes.txt', '--context', name], { input: `for the ${name}\n`, env: { XDG_CONFIG_HOME: xdg, COLLECTIVE_HOME: undefined } })
      assert.equal(r.code, 0, r.stderr)
    }
    await ok('mkdir', '/club-only', '--context', 'club')
    assert.equal(await ok('cat', '/notes.txt', '--context', 'family'), 'for the family\n')
    assert.equal(await ok('cat', '/notes.txt', '--context', 'club'), 'for the club\n')
    assert.equal((await run('stat', '/club-only', '--context', 'family')).code, 1, 'the family never sees the club\'s files')

    // Without --context, the current one decides; status names it
    await ok('context', 'use', 'club')
    assert.equal(await ok('cat', '/notes.txt'), 'for the club\n')
    assert.equal(JSON.parse(await ok('status', '--json')).context, 'club')
  })
})
