import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Cleanup, cli, waitFor } from '../../test/helpers/daemons.js'
import { MemberFederation } from '../../test/helpers/members.js'
import type { CliResult } from '../../test/helpers/daemons.js'

/**
 * The seed's DataStores and grants, enforced by each DataStore's owning coordinator against the certified
 * identity of the member asking — three members' coordinators as separate processes:
 *   /media  (owner alice)  bob read+write, carol read
 *   /backup (owner bob)    *@*.collective.local read+write
 *   /shared (owner carol)  alice read+write+share
 */

const cleanup = new Cleanup()
let fed: MemberFederation
const as = async (member: string, ...args: string[]): Promise<CliResult> => await fed.as(member, ...args)
const ok = async (member: string, ...args: string[]): Promise<string> => await fed.ok(member, ...args)

/** A denial: exit 1, PermissionDeniedError naming the path and the missing right */
async function denied (member: string, path: string, right: string, ...args: string[]): Promise<void> {
  const r = await as(member, ...args)
  assert.equal(r.code, 1, `${member}: ${args.join(' ')} must be refused\n${r.stdout}`)
  assert.match(r.stderr, /\[PermissionDeniedError\]/, r.stderr)
  assert.ok(r.stderr.includes(path) && r.stderr.includes(`missing right: ${right}`), `the error names ${path} and ${right}: ${r.stderr}`)
}

async function exists (member: string, path: string): Promise<boolean> {
  return (await as(member, 'stat', path)).code === 0
}

describe('DataStores and grants across members', () => {
  before(async () => {
    fed = await MemberFederation.create(cleanup, { federation: { announceInterval: '1s' } })
    await fed.startAll()
    await ok('alice', 'datastore', 'create', '/media', '--strategy', 'media')
    await ok('alice', 'grant', '/media', 'bob@garage.collective.local', 'read+write')
    await ok('alice', 'grant', '/media', 'carol@office.collective.local', 'read')
    await ok('bob', 'datastore', 'create', '/backup', '--strategy', 'backup', '--replicas', '3')
    await ok('bob', 'grant', '/backup', '*@*.collective.local', 'read+write')
    await ok('carol', 'datastore', 'create', '/shared')
    await ok('carol', 'grant', '/shared', 'alice@home.collective.local', 'read+write+share')
    for (const m of ['alice', 'bob', 'carol']) {
      await waitFor(`${m} to know the three DataStores`, async () => {
        const list = JSON.parse(await ok(m, 'datastore', 'ls', '--json'))
        return list.map((d: any) => `${d.path as string}:${d.owner as string}`).join(' ') === '/backup:bob@garage.collective.local /media:alice@home.collective.local /shared:carol@office.collective.local'
      }, 30_000)
    }
  })

  after(async () => { await cleanup.run() })

  it('/media: bob reads and writes, carol only reads, neither deletes', async () => {
    await ok('alice', 'mkdir', '/media/films')
    await ok('bob', 'mkdir', '/media/from-bob')
    assert.match(await ok('bob', 'ls', '/media'), /films/)
    assert.match(await ok('carol', 'ls', '/media'), /from-bob/)
    await denied('carol', '/media/from-carol', 'write', 'mkdir', '/media/from-carol')
    assert.equal(await exists('alice', '/media/from-carol'), false, 'a denied mkdir changes nothing')
    await denied('bob', '/media/films', 'delete', 'rm', '/media/films')
    await denied('carol', '/media/films', 'delete', 'mv', '/media/films', '/media/movies')
    assert.equal(await exists('alice', '/media/films'), true, 'denied rm and mv change nothing')
  })

  it('/backup: the whole federation reads and writes; /shared: alice may share at most her own rights', async () => {
    await ok('alice', 'mkdir', '/backup/alice')
    await ok('carol', 'mkdir', '/backup/carol')
    assert.match(await ok('alice', 'ls', '/backup'), /carol/)
    await denied('alice', '/backup/carol', 'delete', 'rm', '/backup/carol')

    await ok('alice', 'mkdir', '/shared/plans')
    await ok('alice', 'grant', '/shared', 'bob@garage.collective.local', 'read')
    assert.match(await ok('bob', 'ls', '/shared'), /plans/)
    // Alice holds read+write+share on /shared, not delete: she cannot hand it on.
    await denied('alice', '/shared', 'delete', 'grant', '/shared', 'bob@garage.collective.local', 'delete')
    await denied('bob', '/shared/plans', 'write', 'mkdir', '/shared/plans/bob')
    // Bob has no share right: he cannot grant what he was given.
    await denied('bob', '/shared', 'share', 'grant', '/shared', 'carol@office.collective.local', 'read')
    const show = JSON.parse(await ok('carol', 'datastore', 'show', '/shared', '--json'))
    assert.deepEqual(show.grants.map((g: any) => `${g.subject as string}:${g.rights as string}:${g.grantor as string}`).sort(), [
      'alice@home.collective.local:read+write+share:carol@office.collective.local',
      'bob@garage.collective.local:read:alice@home.collective.local'
    ])
    // Revoking alice's share withdraws what she passed on.
    await ok('carol', 'revoke', '/shared', 'alice@home.collective.local', 'share')
    await denied('bob', '/shared', 'read', 'ls', '/shared')
  })

  it('a grant on a subdirectory adds rights there only; expiry and revocation take effect', async () => {
    await ok('alice', 'mkdir', '/media/carol-uploads')
    await ok('alice', 'grant', '/media/carol-uploads', 'carol@office.collective.local', 'write')
    await ok('carol', 'mkdir', '/media/carol-uploads/holiday')
    await denied('carol', '/media/elsewhere', 'write', 'mkdir', '/media/elsewhere')

    await ok('alice', 'mkdir', '/media/tmp1')
    await ok('alice', 'mkdir', '/media/tmp2')
    await ok('alice', 'grant', '/media', 'bob@garage.collective.local', 'delete', '--for', '4s')
    await ok('bob', 'rm', '/media/tmp1')
    await new Promise(resolve => setTimeout(resolve, 4_500))
    await denied('bob', '/media/tmp2', 'delete', 'rm', '/media/tmp2')

    await ok('alice', 'revoke', '/media', 'carol@office.collective.local', 'read')
    await denied('carol', '/media', 'read', 'ls', '/media')
    assert.match(await ok('carol', 'rights', '/media/carol-uploads'), /write/)
  })

  it('a member\'s own namespace outside DataStores stays its own', async () => {
    await ok('bob', 'mkdir', '/private')
    assert.equal(await exists('bob', '/private'), true)
    assert.equal(await exists('alice', '/private'), false)
    const overlap = await as('alice', 'datastore', 'create', '/backup/mine')
    assert.equal(overlap.code, 1)
    assert.match(overlap.stderr, /NestedDataStoreError/)
  })
})
