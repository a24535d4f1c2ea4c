import '../../../src/polyfill.js'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { readCertificateChain, readPeerKey, TrustStore } from '../../../src/identity/index.js'
import { createHost } from '../../../src/net/host.js'
import { PeerIdentities } from '../../../src/net/peer-identities.js'
import { cidOf } from '../../../src/storage/chunking.js'
import type { Role } from '../../../src/identity/index.js'
import type { Host } from '../../../src/net/host.js'
import type { TestFederation } from '../../helpers/daemons.js'
import type { CID } from 'multiformats/cid'
import type { PrivateKey } from '@libp2p/interface'

export const logger = defaultLogger()

export interface TestPeer {
  host: Host
  /** What the certificate handshake learnt about each connected peer */
  identities: PeerIdentities
  /** The component's folder: keys, certificates and room for a chunk store */
  dir: string
  privateKey: PrivateKey
}

/** A real libp2p host in this process, with a certificate issued by `member`'s CA, listening on 127.0.0.1 */
export async function startPeer (fed: TestFederation, member: string, name: string, role: Role): Promise<TestPeer> {
  const dir = await fed.component(member, name, role)
  const privateKey = await readPeerKey(join(dir, 'peer.key'))
  const chain = await readCertificateChain(join(dir, 'peer.crt'))
  const [root] = await readCertificateChain(join(dir, 'root.crt'))
  const identities = new PeerIdentities()
  const host = await createHost({
    privateKey,
    role,
    chain: chain.map(c => new Uint8Array(c.rawData)),
    trustStore: new TrustStore({ root }),
    identities
  })
  await host.start()
  return { host, identities, dir, privateKey }
}

/** Deterministic bytes that differ per seed, without the cost of a CSPRNG for megabytes */
export function pseudoRandomBytes (n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n)
  let x = (seed * 2654435761) >>> 0
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    b[i] = x >>> 24
  }
  return b
}

export async function chunkOf (n: number, seed: number): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = pseudoRandomBytes(n, seed)
  return { cid: await cidOf(bytes), bytes }
}

/** `bytes` cut into views of the given sizes (the last takes the rest), as a stream might deliver them */
export function cut (bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const pieces: Uint8Array[] = []
  let at = 0
  for (const size of sizes) {
    if (at >= bytes.byteLength) break
    pieces.push(bytes.subarray(at, Math.min(bytes.byteLength, at + size)))
    at += size
  }
  if (at < bytes.byteLength) pieces.push(bytes.subarray(at))
  return pieces
}
