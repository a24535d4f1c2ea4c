import { readFile } from 'node:fs/promises'
import { TAG, readSingle } from './der.js'
import { InvalidPemError } from './errors.js'
import { writeFileAtomic } from './files.js'
import { X509Certificate } from './x509.js'

const CERT_FILE_MODE = 0o644
const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Parses one or more PEM CERTIFICATE blocks (leaf first). `source` names the file in error messages. */
export function parseCertificateChainPem (text: string, source = 'PEM input'): X509Certificate[] {
  const certs: X509Certificate[] = []
  for (const match of text.matchAll(BLOCK)) {
    const [, begin, body, end] = match
    if (begin !== end) throw new InvalidPemError(`${source}: BEGIN ${begin} closed by END ${end}`)
    if (begin !== 'CERTIFICATE') throw new InvalidPemError(`${source}: unexpected PEM block "${begin}" in a certificate file`)
    const b64 = body.replace(/\s+/g, '')
    if (b64.length === 0 || !BASE64.test(b64)) throw new InvalidPemError(`${source}: certificate ${certs.length + 1} is not valid base64`)
    const der = new Uint8Array(Buffer.from(b64, 'base64'))
    try {
      readSingle(der, TAG.SEQUENCE)
      certs.push(new X509Certificate(der))
    } catch (err) {
      throw new InvalidPemError(`${source}: certificate ${certs.length + 1} does not decode: ${(err as Error).message}`)
    }
  }
  // A BEGIN without its END would otherwise be silently skipped by the block pattern
  const begins = text.match(/-----BEGIN /g)?.length ?? 0
  if (begins !== certs.length) throw new InvalidPemError(`${source}: unterminated or malformed PEM block`)
  if (certs.length === 0) throw new InvalidPemError(`${source}: no PEM certificate found`)
  return certs
}

export function certificatesToPem (certs: X509Certificate[]): string {
  return certs.map(c => c.toString('pem').trim() + '\n').join('')
}

export async function readCertificateChain (path: string): Promise<X509Certificate[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new InvalidPemError(code === 'ENOENT' ? `certificate file ${path} does not exist` : `cannot read certificate file ${path}: ${(err as Error).message}`)
  }
  return parseCertificateChainPem(text, path)
}

/** Writes certificates (public material, hence 0644) leaf first, replacing any previous file atomically. */
export async function writeCertificateChain (path: string, certs: X509Certificate[]): Promise<void> {
  if (certs.length === 0) throw new InvalidPemError(`refusing to write an empty certificate chain to ${path}`)
  await writeFileAtomic(path, certificatesToPem(certs), { mode: CERT_FILE_MODE, dirMode: 0o755, overwrite: true })
}

/** DER of each certificate, as exchanged in the handshake. */
export function chainToDer (certs: X509Certificate[]): Uint8Array[] {
  return certs.map(c => new Uint8Array(c.rawData))
}
