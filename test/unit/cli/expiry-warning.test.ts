import '../../../src/polyfill.js'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expiryWarning } from '../../../src/cli/expiry-warning.js'
import { initMember, initRoot, issueComponent } from '../../../src/local/provision.js'
import { homeLayout } from '../../../src/local/layout.js'

const DAY_MS = 24 * 60 * 60 * 1000
let root: string
let memberDir: string

async function home (component: 'coordinator' | 'client', validityDays: number): Promise<string> {
  const dir = await mkdtemp(join(root, 'home-'))
  const l = homeLayout(dir)
  await issueComponent({ memberDir, outDir: component === 'client' ? l.client : l.component('coordinator'), role: component, name: component === 'client' ? 'laptop' : 'coordinator', validityDays })
  return dir
}

describe('the certificate expiry warning', () => {
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'expiry-test-'))
    await initRoot(join(root, 'ca'), 'collective.local')
    memberDir = join(root, 'alice')
    await initMember(join(root, 'ca'), memberDir, 'alice', 'home.collective.local')
  })
  after(async () => { await rm(root, { recursive: true, force: true }) })

  it('names the certificate, the days left and the date when fewer than 30 days remain', async () => {
    const h = await home('coordinator', 10)
    const w = expiryWarning(h)
    assert.match(w ?? '', /^collective-p2p: warning: the certificate of coordinator@home\.collective\.local expires in 9 days \(\d{4}-\d\d-\d\d\); run "collective-p2p cert renew"$/)
    const date = new Date(Date.now() + 10 * DAY_MS).toISOString().slice(0, 10)
    assert.ok(w?.includes(`(${date})`), w)
  })

  it('says nothing while 30 days or more remain', async () => {
    const h = await home('coordinator', 90)
    assert.equal(expiryWarning(h), undefined)
    assert.match(expiryWarning(h, new Date(Date.now() + 61 * DAY_MS)) ?? '', /expires in 28 days/)
  })

  it('says so once the certificate has expired', async () => {
    const h = await home('coordinator', 10)
    assert.match(expiryWarning(h, new Date(Date.now() + 13 * DAY_MS)) ?? '', /coordinator@home\.collective\.local expired 3 days ago/)
  })

  it('reads the client certificate of a client home', async () => {
    assert.match(expiryWarning(await home('client', 5)) ?? '', /certificate of laptop@home\.collective\.local expires in 4 days/)
  })

  it('is silent for a home without a certificate and for one whose certificate does not parse', async () => {
    const empty = await mkdtemp(join(root, 'empty-'))
    assert.equal(expiryWarning(empty), undefined)
    assert.equal(expiryWarning(join(root, 'does-not-exist')), undefined)
    const broken = await mkdtemp(join(root, 'broken-'))
    await mkdir(homeLayout(broken).client)
    await writeFile(join(homeLayout(broken).client, 'peer.crt'), '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n')
    assert.equal(expiryWarning(broken), undefined)
  })
})
