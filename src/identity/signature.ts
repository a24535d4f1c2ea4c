import { ed25519PublicKeyRaw, signedParts, certificateDer } from './cert-fields.js'
import { equalBytes } from './der.js'
import type { X509Certificate } from './x509.js'

const ED25519 = { name: 'Ed25519' }

/**
 * True when `cert` names `issuer` as its issuer and carries a valid Ed25519 signature by the issuer's key.
 * Malformed input is an error (DerError) rather than `false`, so callers can tell "garbage" from "wrong signer".
 */
export async function isSignedBy (cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  const parts = signedParts(certificateDer(cert))
  const issuerSubject = signedParts(certificateDer(issuer)).subject
  if (!equalBytes(parts.issuer, issuerSubject)) return false
  const raw = ed25519PublicKeyRaw(issuer)
  if (raw == null) return false
  const key = await globalThis.crypto.subtle.importKey('raw', new Uint8Array(raw), ED25519, false, ['verify'])
  return await globalThis.crypto.subtle.verify(ED25519, key, new Uint8Array(parts.signature), new Uint8Array(parts.tbs))
}
