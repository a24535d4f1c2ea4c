import '../../../src/polyfill.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TrustStore, X509Certificate, readCertificateChain, readPeerKey } from '../../../src/identity/index.js'
import { initMember, initRoot, issueComponent } from '../../../src/local/provision.js'
import { CertificateIssuer } from '../../../src/access/issuer.js'
import type { VerifiedIdentity } from '../../../src/identity/index.js'
import type { PrivateKey } from '@libp2p/interface'

export interface Component {
  dir: string
  key: PrivateKey
  chain: Uint8Array[]
  identity: VerifiedIdentity
}

/** A federation on disk, as `ca init`, `member init` and `cert issue` leave it: carol and alice, each with a coordinator */
export interface DiskFederation {
  tmp: string
  root: X509Certificate
  /** A fresh trust store of the federation (tests revoke in it) */
  trustStore: () => TrustStore
  memberDir: (member: 'carol' | 'alice') => string
  coordinator: (member: 'carol' | 'alice') => Component
  /** Issues another component of a member and returns it */
  component: (member: 'carol' | 'alice', name: string, role: 'client' | 'node' | 'coordinator') => Promise<Component>
  /** A started issuer with carol's CA, owned by carol's coordinator */
  carolIssuer: () => Promise<CertificateIssuer>
  remove: () => Promise<void>
}

export async function diskFederation (): Promise<DiskFederation> {
  const tmp = await mkdtemp(join(tmpdir(), 'access-test-'))
  const rootDir = join(tmp, 'ca')
  const root = await initRoot(rootDir, 'collective.local')
  const memberDir = (member: string): string => join(tmp, 'members', member)
  await initMember(rootDir, memberDir('carol'), 'carol', 'office.collective.local')
  await initMember(rootDir, memberDir('alice'), 'alice', 'home.collective.local')
  const component = async (member: 'carol' | 'alice', name: string, role: 'client' | 'node' | 'coordinator'): Promise<Component> => {
    const dir = join(tmp, 'peers', `${name}.${member}`)
    const { keyFile, certFile } = await issueComponent({ memberDir: memberDir(member), outDir: dir, role, name })
    const key = await readPeerKey(keyFile)
    const chain = (await readCertificateChain(certFile)).map(c => new Uint8Array(c.rawData))
    const identity = await new TrustStore({ root }).verifyChain(chain, peerIdFromPrivateKey(key))
    return { dir, key, chain, identity }
  }
  const coordinators = { carol: await component('carol', 'coordinator', 'coordinator'), alice: await component('alice', 'coordinator', 'coordinator') }
  return {
    tmp,
    root,
    trustStore: () => new TrustStore({ root }),
    memberDir,
    coordinator: member => coordinators[member],
    component,
    carolIssuer: async () => {
      const issuer = new CertificateIssuer({ logger: defaultLogger() }, { dir: memberDir('carol'), owner: new X509Certificate(coordinators.carol.chain[0].slice()) })
      await issuer.start()
      return issuer
    },
    remove: async () => { await rm(tmp, { recursive: true, force: true }) }
  }
}
