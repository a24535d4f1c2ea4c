import { peerIdFromString } from '@libp2p/peer-id'
import type { RecordSigner, RecordVerifier } from './types.js'
import type { PrivateKey } from '@libp2p/interface'

/** Signs with the member's libp2p key: its peer ID is then all anyone needs to check the signature */
export function privateKeySigner (key: PrivateKey): RecordSigner {
  return { sign: async (payload) => await key.sign(payload) }
}

/** Verifies against the public key embedded in the subject's peer ID (Ed25519 peer IDs carry it) */
export function peerIdVerifier (): RecordVerifier {
  return {
    verify: async (id, payload, signature) => {
      try {
        const key = peerIdFromString(id).publicKey
        return key != null && await key.verify(payload, signature)
      } catch {
        return false
      }
    }
  }
}
