import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { COMPONENT_FILES, homeLayout } from './layout.js'
import type { CertificateInfo } from '../identity/index.js'

/** The home holds no daemon certificate yet */
export class NoHomeIdentityError extends Error {
  static name = 'NoHomeIdentityError'
  name = 'NoHomeIdentityError'
}

/**
 * The certificate of the daemon that serves a home's control socket: the coordinator of a home made by `up`, or
 * the client of a client home. Undefined while the home has neither (not provisioned yet).
 */
export function homeCertificateFile (home: string): string | undefined {
  const l = homeLayout(home)
  return [l.component('coordinator'), l.client].map(dir => join(dir, COMPONENT_FILES.cert)).find(file => existsSync(file))
}

export interface HomeIdentity {
  certFile: string
  /** The daemon's own certificate */
  leaf: CertificateInfo
  /** The member CA that issued it, when the chain carries it (ours always do) */
  issuer?: CertificateInfo
}

/** Describes a home's daemon certificate; undefined when the home has none. It describes, it does not verify. */
export async function readHomeIdentity (home: string, now = new Date()): Promise<HomeIdentity | undefined> {
  const certFile = homeCertificateFile(home)
  if (certFile == null) return undefined
  // Loaded on use: the X.509 stack takes a quarter of a second to import, which commands that never need it skip.
  const { readCertificateChain, describeCertificate } = await import('../identity/index.js')
  const [leaf, issuer] = (await readCertificateChain(certFile)).map(c => describeCertificate(c, now))
  return { certFile, leaf, issuer }
}
