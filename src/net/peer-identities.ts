import type { VerifiedIdentity } from '../identity/index.js'

/**
 * The verified identity of every peer we hold a connection to, filled by the certificate handshake.
 * Protocol handlers look the caller up here instead of trusting anything the caller says about itself.
 */
export class PeerIdentities {
  private readonly byPeer = new Map<string, VerifiedIdentity>()

  set (identity: VerifiedIdentity): void {
    this.byPeer.set(identity.peerId, identity)
  }

  get (peerId: { toString(): string } | string): VerifiedIdentity | undefined {
    return this.byPeer.get(peerId.toString())
  }

  delete (peerId: { toString(): string } | string): void {
    this.byPeer.delete(peerId.toString())
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
