// The warning every command prints while the current home's certificate nears its end, so that nobody learns of
// an expiry from peers refusing the handshake.
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { homeCertificateFile } from '../local/home-identity.js'

export const WARN_DAYS = 30
const DAY_MS = 24 * 60 * 60 * 1000

/**
 * The warning line for `home`, or undefined when there is nothing to warn about. This runs before every command,
 * so it reads the one certificate file with Node's own X.509 parser (about 10 ms) rather than importing ours
 * (about 250 ms), and it never throws: a home without a readable certificate gets no warning.
 */
export function expiryWarning (home: string, now = new Date()): string | undefined {
  try {
    const file = homeCertificateFile(home)
    if (file == null) return undefined
    // Node parses the first certificate of the PEM file: the daemon's own, leaf first
    const cert = new X509Certificate(readFileSync(file))
    const notAfter = new Date(cert.validTo)
    const left = notAfter.getTime() - now.getTime()
    if (Number.isNaN(left) || left >= WARN_DAYS * DAY_MS) return undefined
    const name = /(?:^|, )email:([^,]+)/.exec(cert.subjectAltName ?? '')?.[1] ?? file
    const date = notAfter.toISOString().slice(0, 10)
    // Whole days, rounded down either side of the expiry
    const when = left < 0 ? `expired ${Math.floor(-left / DAY_MS)} days ago (${date})` : `expires in ${Math.floor(left / DAY_MS)} days (${date})`
    return `collective-p2p: warning: the certificate of ${name} ${when}; run "collective-p2p cert renew"`
  } catch {
    return undefined
  }
}
