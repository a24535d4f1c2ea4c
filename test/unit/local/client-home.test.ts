import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRootCA, createMemberCA, generatePeerKey, issueLeafCertificate, readPeerKey } from '../../../src/identity/index.js'
import { loadConfig } from '../../../src/daemon/config.js'
import { writeClientHome } from '../../../src/local/client-home.js'
import type { WriteClientHomeOptions } from '../../../src/local/client-home.js'

describe('a redeemed client home', () => {
  let tmp: string
  let options: Omit<WriteClientHomeOptions, 'home'>

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'client-home-'))
    const root = await createRootCA({ federation: 'collective.local' })
    const carol = await createMemberCA({ rootCert: root.cert, rootKey: root.keys.privateKey, member: 'carol', domain: 'office.collective.local' })
    const key = await generatePeerKey()
    const leaf = await issueLeafCertificate({ issuerCert: carol.cert, issuerKey: carol.keys.privateKey, publicKey: key.publicKey, name: 'guest-dave', role: 'client' })
    options = { key, chain: [leaf, carol.cert], root: root.cert, bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEXNYF2X9avPApPTusBmBjMEL3RjWXWkGFJFbgmG4jYv6'] }
  })
  after(async () => { await rm(tmp, { recursive: true, force: true }) })

  it('is laid out like a component of "up", with a client config that joins through the coordinator', async () => {
    const home = join(tmp, 'contexts', 'dave@collective.local')
    const written = await writeClientHome({ home, ...options })
    assert.equal(written.dir, join(home, 'client'))
    assert.equal((await stat(join(written.dir, 'peer.key'))).mode & 0o777, 0o600)
    assert.equal((await stat(home)).mode & 0o777, 0o700)
    assert.deepEqual((await readPeerKey(join(written.dir, 'peer.key'))).raw, options.key.raw)
    assert.equal((await readFile(join(written.dir, 'peer.crt'), 'utf8')).match(/BEGIN CERTIFICATE/g)?.length, 2)
    const config = await loadConfig(written.configFile)
    assert.equal(config.role, 'client')
    assert.deepEqual(config.federation.bootstrap, options.bootstrap)
    // the CLI finds the daemon of a home at HOME/control.sock
    assert.equal(config.controlSocket, join(home, 'control.sock'))
  })

  it('never writes into a folder that holds anything', async () => {
    const home = join(tmp, 'taken')
    await mkdir(join(home, 'client'), { recursive: true })
    await writeFile(join(home, 'client', 'peer.key'), 'someone else\'s key')
    await assert.rejects(writeClientHome({ home, ...options }), { name: 'HomeNotEmptyError' })
    assert.equal(await readFile(join(home, 'client', 'peer.key'), 'utf8'), 'someone else\'s key')
    // an empty folder is fine
    await mkdir(join(tmp, 'empty'))
    await writeClientHome({ home: join(tmp, 'empty'), ...options })
  })
})
