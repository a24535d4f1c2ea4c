import type { VerifiedIdentity } from '../identity/index.js'

/**
 * The verified identity of every peer we hold a connection to, filled by the certificate handshake.
 * Protocol handlers look the caller up here instead of trusting anything the caller says about itself.
 * Newcomers admitted without a certificate (to redeem an invite) are marked uncertified and have no identity.
 */
export class PeerIdentities {
  private readonly byPeer = new Map<string, VerifiedIdentity>()
  private readonly uncertified = new Set<string>()

  set (identity: VerifiedIdentity): void {
    this.uncertified.delete(identity.peerId)
    this.byPeer.set(identity.peerId, identity)
  }

  get (peerId: { toString(): string } | string): VerifiedIdentity | undefined {
    return this.byPeer.get(peerId.toString())
  }

  /** A connection from this peer was admitted without a certificate, for INVITE_REDEEM only */
  setUncertified (peerId: { toString(): string } | string): void {
    this.uncertified.add(peerId.toString())
  }

  isUncertified (peerId: { toString(): string } | string): boolean {
    return this.uncertified.has(peerId.toString())
  }

  delete (peerId: { toString(): string } | string): void {
    this.byPeer.delete(peerId.toString())
    this.uncertified.delete(peerId.toString())
  }

  byName (name: string): VerifiedIdentity | undefined {
    for (const identity of this.byPeer.values()) {
      if (identity.name === name) return identity
    }
    return undefined
  }

  all (): VerifiedIdentity[] {
    return [...this.byPeer.values()]
  }
}
