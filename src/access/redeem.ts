import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { MetaOp } from '../gen/meta.js'
import { TrustStore, X509Certificate, generatePeerKey } from '../identity/index.js'
import { fingerprint } from '../identity/cert-fields.js'
import { parseJoinString } from '../permissions/index.js'
import { createInviteeHost } from '../net/host.js'
import { InvitesClosedError } from '../net/certified-noise.js'
import { assertFreshHome, writeClientHome } from '../local/client-home.js'
import { MetaClient } from './meta-client.js'
import type { ClientHome } from '../local/client-home.js'
import type { VerifiedIdentity } from '../identity/index.js'
import type { AbortOptions } from '@libp2p/interface'

/** What the coordinator answered does not hold up: another root, a chain that does not certify our key */
export class RedemptionVerificationError extends Error {
  static name = 'RedemptionVerificationError'
  name = 'RedemptionVerificationError'
}

/** No address of the join string led to its coordinator */
export class CoordinatorUnreachableError extends Error {
  static name = 'CoordinatorUnreachableError'
  name = 'CoordinatorUnreachableError'
}

export interface RedeemOptions extends AbortOptions {
  /** `collective-p2p://join?...`, as `invite create` printed it */
  joinString: string
  /** The name asked for; it becomes `guest-<name>@<inviting member's domain>` */
  name: string
  /** A folder that does not exist yet or is empty */
  home: string
}

export interface RedeemResult extends ClientHome {
  /** The certified identity, as every peer of the federation will see it */
  identity: VerifiedIdentity
  /** The inviting coordinator */
  coordinator: VerifiedIdentity
  grants: Array<{ path: string, rights: string }>
}

/**
 * A newcomer redeems an invite: a fresh Ed25519 key, one uncertified connection to the coordinator of the join
 * string (Noise bound to the root's hash, the coordinator's peer ID authenticated by Noise), one INVITE_REDEEM.
 * Nothing is written until the answer holds up: the root certificate's SHA-256 is the join string's, the
 * coordinator's chain verifies against it, and the new chain certifies our key. Then the key, the chain and the
 * root go into a new client home.
 *
 * @throws InvalidJoinStringError, HomeNotEmptyError (before anything is sent), CoordinatorUnreachableError,
 *   InvitesClosedError, the coordinator's refusal by name (UnknownInviteError, InviteExpiredError ...),
 *   RedemptionVerificationError
 */
export async function redeemInvite (options: RedeemOptions): Promise<RedeemResult> {
  const join = parseJoinString(options.joinString)
  await assertFreshHome(options.home)
  const key = await generatePeerKey()
  const presented = new Map<string, Uint8Array[]>()
  const host = await createInviteeHost({
    privateKey: key,
    rootFingerprint: Uint8Array.from(Buffer.from(join.rootFingerprint, 'hex')),
    onRemoteChain: (peer, chain) => { presented.set(peer.toString(), chain) }
  })
  await host.start()
  try {
    try {
      await host.dial(join.addrs, { signal: options.signal })
    } catch (err: any) {
      if (options.signal?.aborted === true) throw err
      if (String(err.message).includes('InvitesClosedError')) {
        throw new InvitesClosedError(`the coordinator ${join.peerId} admits no newcomer now: none of its invites is open (this one may have expired or been revoked)`)
      }
      throw new CoordinatorUnreachableError(`cannot reach the coordinator of the join string at ${join.addrs.map(String).join(', ')}: ${String(err.message)}`)
    }
    const res = await new MetaClient({ host }).call(join.peerId, { op: MetaOp.INVITE_REDEEM, code: join.code, requestedName: options.name }, { signal: options.signal })

    const root = new X509Certificate(res.rootCertificate.slice())
    if (fingerprint(root) !== join.rootFingerprint) {
      throw new RedemptionVerificationError(`the coordinator sent a root certificate with SHA-256 ${fingerprint(root)}, not the join string's ${join.rootFingerprint}`)
    }
    const trustStore = new TrustStore({ root })
    const coordinator = await verified(trustStore, presented.get(join.peerId) ?? [], join.peerId, 'the coordinator\'s certificate')
    if (coordinator.role !== 'coordinator') throw new RedemptionVerificationError(`${coordinator.name} is certified as a ${coordinator.role}, not a coordinator`)
    const identity = await verified(trustStore, res.certificates, peerIdFromPrivateKey(key).toString(), 'the new certificate')
    if (identity.name !== res.name || identity.role !== 'client' || identity.domain !== coordinator.domain) {
      throw new RedemptionVerificationError(`the new certificate is for ${identity.role} ${identity.name}, not client ${res.name} of ${coordinator.domain}`)
    }
    const home = await writeClientHome({
      home: options.home,
      key,
      chain: res.certificates.map(der => new X509Certificate(der.slice())),
      root,
      bootstrap: join.addrs.map(a => a.toString())
    })
    return { ...home, identity, coordinator, grants: res.grants.map(g => ({ path: g.path, rights: g.rights })) }
  } finally {
    await host.stop()
  }
}

async function verified (trustStore: TrustStore, chain: Uint8Array[], peerId: string, what: string): Promise<VerifiedIdentity> {
  try {
    return await trustStore.verifyChain(chain, peerIdFromString(peerId))
  } catch (err: any) {
    throw new RedemptionVerificationError(`${what} does not verify against the federation's root: ${String(err.name)}: ${String(err.message)}`)
  }
}
