// Key files. Peer keys are libp2p Ed25519 keys; CA keys are WebCrypto keys because @peculiar/x509 signs with those.
// Both are stored as PKCS#8 PEM so standard tools (openssl pkey) can inspect them.
import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { generateKeyPair, privateKeyFromRaw } from '@libp2p/crypto/keys'
import { InvalidPemError, KeyFileMissingError, UnsupportedKeyTypeError } from './errors.js'
import { writeFileAtomic } from './files.js'
import type { PrivateKey } from '@libp2p/interface'

const KEY_FILE_MODE = 0o600
const KEY_DIR_MODE = 0o700
const ED25519 = { name: 'Ed25519' }

export interface WriteKeyOptions {
  /** Replace an existing key file; default false because losing a key loses an identity */
  overwrite?: boolean
}

export async function generatePeerKey (): Promise<PrivateKey> {
  return await generateKeyPair('Ed25519')
}

function b64url (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}

function ed25519PrivateKeyObject (key: PrivateKey): KeyObject {
  if (key.type !== 'Ed25519') throw new UnsupportedKeyTypeError(`peer keys must be Ed25519, not ${key.type}`)
  // libp2p's raw Ed25519 private key is seed (32) || public key (32)
  const raw = key.raw
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64url(raw.subarray(0, 32)), x: b64url(raw.subarray(32, 64)) }, format: 'jwk' })
}

export async function writePeerKey (path: string, key: PrivateKey, options: WriteKeyOptions = {}): Promise<void> {
  const pem = ed25519PrivateKeyObject(key).export({ type: 'pkcs8', format: 'pem' }) as string
  await writeFileAtomic(path, pem, { mode: KEY_FILE_MODE, dirMode: KEY_DIR_MODE, overwrite: options.overwrite ?? false })
}

async function readKeyFile (path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new KeyFileMissingError(`${what} file ${path} does not exist`)
    throw err
  }
}

function parseEd25519Pem (pem: string, path: string): KeyObject {
  let key: KeyObject
  try {
    if (!pem.includes('-----BEGIN PRIVATE KEY-----')) throw new Error('no PKCS#8 "PRIVATE KEY" block')
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch (err) {
    throw new InvalidPemError(`${path} does not hold a PKCS#8 PEM private key: ${(err as Error).message}`)
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new InvalidPemError(`${path} holds a ${String(key.asymmetricKeyType)} key; an Ed25519 key is required`)
  }
  return key
}

export async function readPeerKey (path: string): Promise<PrivateKey> {
  const key = parseEd25519Pem(await readKeyFile(path, 'peer key'), path)
  const jwk = key.export({ format: 'jwk' }) as JsonWebKey
  const seed = Buffer.from(jwk.d ?? '', 'base64url')
  const pub = Buffer.from(jwk.x ?? '', 'base64url')
  if (seed.length !== 32 || pub.length !== 32) throw new InvalidPemError(`${path} holds a malformed Ed25519 key`)
  return privateKeyFromRaw(Buffer.concat([seed, pub]))
}

/** A WebCrypto Ed25519 key pair for a CA, extractable so that it can be written to disk. */
export async function generateCaKeyPair (): Promise<CryptoKeyPair> {
  return await globalThis.crypto.subtle.generateKey(ED25519, true, ['sign', 'verify']) as CryptoKeyPair
}

export async function writeCaKey (path: string, privateKey: CryptoKey, options: WriteKeyOptions = {}): Promise<void> {
  if (privateKey.type !== 'private' || privateKey.algorithm.name !== 'Ed25519') {
    throw new UnsupportedKeyTypeError(`CA keys must be Ed25519 private keys, not ${privateKey.algorithm.name} ${privateKey.type}`)
  }
  const der = new Uint8Array(await globalThis.crypto.subtle.exportKey('pkcs8', privateKey))
  const pem = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string
  await writeFileAtomic(path, pem, { mode: KEY_FILE_MODE, dirMode: KEY_DIR_MODE, overwrite: options.overwrite ?? false })
}

export interface ReadCaKeyOptions {
  /** Non-extractable by default: a loaded CA key only needs to sign */
  extractable?: boolean
}

export async function readCaKey (path: string, options: ReadCaKeyOptions = {}): Promise<CryptoKey> {
  const key = parseEd25519Pem(await readKeyFile(path, 'CA key'), path)
  const der = key.export({ type: 'pkcs8', format: 'der' })
  return await globalThis.crypto.subtle.importKey('pkcs8', der, ED25519, options.extractable ?? false, ['sign'])
}
