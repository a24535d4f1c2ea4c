import { existsSync } from 'node:fs'
import { mkdir, copyFile, chmod, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import {
  createRootCA, createMemberCA, issueLeafCertificate, generatePeerKey, readPeerKey, writePeerKey,
  writeCaKey, readCaKey, readCertificateChain, writeCertificateChain, describeCertificate, parseFederatedName
} from '../identity/index.js'
import { isSignedBy } from '../identity/signature.js'
import { MEMBER_FILES, ROOT_FILES, COMPONENT_FILES } from './layout.js'
import type { Role } from '../identity/index.js'
import type { X509Certificate } from '@peculiar/x509'

export class AlreadyInitializedError extends Error {
  static name = 'AlreadyInitializedError'
  name = 'AlreadyInitializedError'
}

/** The member CA at hand did not issue the certificate to renew, so it cannot renew it */
export class ForeignCertificateError extends Error {
  static name = 'ForeignCertificateError'
  name = 'ForeignCertificateError'
}

async function ensurePrivateDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
}

/** Creates a federation root CA in dir (root.key, root.crt); refuses to overwrite one */
export async function initRoot (dir: string, federation: string): Promise<X509Certificate> {
  if (existsSync(join(dir, ROOT_FILES.key))) throw new AlreadyInitializedError(`a root CA already exists in ${dir}`)
  await ensurePrivateDir(dir)
  const { cert, keys } = await createRootCA({ federation })
  await writeCaKey(join(dir, ROOT_FILES.key), keys.privateKey)
  await writeCertificateChain(join(dir, ROOT_FILES.cert), [cert])
  return cert
}

/** Creates a member CA in dir (ca.key, ca.crt, and the public root.crt beside it), signed by the root in rootDir */
export async function initMember (rootDir: string, dir: string, member: string, domain: string): Promise<X509Certificate> {
  if (existsSync(join(dir, MEMBER_FILES.key))) throw new AlreadyInitializedError(`a member CA already exists in ${dir}`)
  const [rootCert] = await readCertificateChain(join(rootDir, ROOT_FILES.cert))
  const rootKey = await readCaKey(join(rootDir, ROOT_FILES.key))
  const { cert, keys } = await createMemberCA({ rootCert, rootKey, member, domain })
  await ensurePrivateDir(dir)
  await writeCaKey(join(dir, MEMBER_FILES.key), keys.privateKey)
  await writeCertificateChain(join(dir, MEMBER_FILES.cert), [cert])
  await copyFile(join(rootDir, ROOT_FILES.cert), join(dir, MEMBER_FILES.root))
  await registerIssued(join(rootDir, ROOT_FILES.issued), member, cert)
  return cert
}

/**
 * Keeps a copy of every certificate a CA issued beside its key, by name: revoking one later needs the certificate
 * itself (a revocation record carries it), and the CA's folder is the one place sure to have it.
 */
export async function registerIssued (dir: string, name: string, cert: X509Certificate): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await writeCertificateChain(join(dir, `${name}.crt`), [cert])
}

/** The certificates a CA folder issued (its `issued/` or `members/` register), by name */
export async function issuedCertificates (registerDir: string): Promise<Map<string, X509Certificate>> {
  const out = new Map<string, X509Certificate>()
  let names: string[]
  try { names = await readdir(registerDir) } catch { return out }
  for (const file of names.filter(n => n.endsWith('.crt'))) {
    const [cert] = await readCertificateChain(join(registerDir, file))
    out.set(file.slice(0, -4), cert)
  }
  return out
}

export interface IssueOptions {
  memberDir: string
  outDir: string
  role: Role
  name: string
  /** An existing peer key to certify; a new one is generated in outDir otherwise */
  keyFile?: string
  validityDays?: number
}

/**
 * Issues a component certificate into outDir: peer.key (generated unless given), peer.crt (leaf + member CA) and
 * root.crt. Only public material leaves the member folder.
 */
export async function issueComponent (opts: IssueOptions): Promise<{ cert: X509Certificate, keyFile: string, certFile: string }> {
  const [memberCert] = await readCertificateChain(join(opts.memberDir, MEMBER_FILES.cert))
  const memberKey = await readCaKey(join(opts.memberDir, MEMBER_FILES.key))
  await ensurePrivateDir(opts.outDir)
  const keyFile = opts.keyFile ?? join(opts.outDir, COMPONENT_FILES.key)
  let key
  if (opts.keyFile != null || existsSync(keyFile)) {
    key = await readPeerKey(keyFile)
  } else {
    key = await generatePeerKey()
    await writePeerKey(keyFile, key)
  }
  const cert = await issueLeafCertificate({ issuerCert: memberCert, issuerKey: memberKey, publicKey: key.publicKey, name: opts.name, role: opts.role, validityDays: opts.validityDays })
  const certFile = join(opts.outDir, COMPONENT_FILES.cert)
  await writeCertificateChain(certFile, [cert, memberCert])
  await registerIssued(join(opts.memberDir, MEMBER_FILES.issued), opts.name, cert)
  await copyFile(join(opts.memberDir, MEMBER_FILES.root), join(opts.outDir, COMPONENT_FILES.root))
  return { cert, keyFile, certFile }
}

export interface RenewOptions {
  memberDir: string
  /** The component folder: peer.key and the peer.crt to renew */
  dir: string
  validityDays?: number
}

/**
 * Renews a component's certificate with the member CA that issued it: same key, name and role, a new validity.
 * peer.crt is replaced atomically; a daemon running from the folder presents the new one after its next restart.
 */
export async function renewComponent (opts: RenewOptions): Promise<{ cert: X509Certificate, previous: X509Certificate, certFile: string }> {
  const certFile = join(opts.dir, COMPONENT_FILES.cert)
  const [previous] = await readCertificateChain(certFile)
  const [memberCert] = await readCertificateChain(join(opts.memberDir, MEMBER_FILES.cert))
  if (!(await isSignedBy(previous, memberCert))) {
    throw new ForeignCertificateError(`${certFile} (${previous.subject}) was not issued by the member CA in ${opts.memberDir}`)
  }
  const info = describeCertificate(previous)
  if (info.kind !== 'leaf' || info.role == null || info.federatedName == null) throw new ForeignCertificateError(`${certFile} holds no component certificate`)
  const { cert } = await issueComponent({
    memberDir: opts.memberDir,
    outDir: opts.dir,
    role: info.role,
    name: parseFederatedName(info.federatedName).local,
    keyFile: join(opts.dir, COMPONENT_FILES.key),
    validityDays: opts.validityDays
  })
  return { cert, previous, certFile }
}
