import '../../../src/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, stat, writeFile, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCaKeyPair, generatePeerKey, readCaKey, readPeerKey, writeCaKey, writePeerKey } from '../../../src/identity/index.js'

const named = (name: string) => (err: unknown) => (err as Error).name === name
let dir: string

before(async () => { dir = await mkdtemp(join(tmpdir(), 'identity-keys-')) })
after(async () => { await rm(dir, { recursive: true, force: true }) })

test('peer key round-trips through a 0600 PKCS#8 PEM file', async () => {
  const key = await generatePeerKey()
  const path = join(dir, 'peer.key')
  await writePeerKey(path, key)
  assert.equal((await stat(path)).mode & 0o777, 0o600)
  const back = await readPeerKey(path)
  assert.equal(back.type, 'Ed25519')
  assert.ok(back.equals(key))
  assert.ok(back.publicKey.equals(key.publicKey))
  // no temp files are left next to the key
  assert.deepEqual((await readdir(dir)).filter(f => f.startsWith('.')), [])
})

test('key files can go into a directory that does not exist yet', async () => {
  const path = join(dir, 'nested', 'deeper', 'peer.key')
  await writePeerKey(path, await generatePeerKey())
  assert.equal((await stat(join(dir, 'nested', 'deeper'))).mode & 0o777, 0o700)
  assert.equal((await stat(path)).mode & 0o777, 0o600)
})

test('writePeerKey refuses to overwrite unless asked', async () => {
  const path = join(dir, 'existing.key')
  const first = await generatePeerKey()
  const second = await generatePeerKey()
  await writePeerKey(path, first)
  await assert.rejects(writePeerKey(path, second), named('KeyExistsError'))
  assert.ok((await readPeerKey(path)).equals(first))
  await writePeerKey(path, second, { overwrite: true })
  assert.ok((await readPeerKey(path)).equals(second))
  assert.equal((await stat(path)).mode & 0o777, 0o600)
})

test('reading a missing or corrupt key file fails clearly', async () => {
  await assert.rejects(readPeerKey(join(dir, 'nope.key')), named('KeyFileMissingError'))
  await assert.rejects(readCaKey(join(dir, 'nope.key')), named('KeyFileMissingError'))
  const garbage = join(dir, 'garbage.key')
  await writeFile(garbage, '-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n')
  await assert.rejects(readPeerKey(garbage), (err: Error) => err.name === 'InvalidPemError' && err.message.includes(garbage))
  const ec = join(dir, 'ec.key')
  await writeFile(ec, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }))
  await assert.rejects(readPeerKey(ec), named('InvalidPemError'))
  await assert.rejects(readCaKey(ec), named('InvalidPemError'))
})

test('CA key round-trips and still signs for its public key', async () => {
  const keys = await generateCaKeyPair()
  const path = join(dir, 'ca.key')
  await writeCaKey(path, keys.privateKey)
  assert.equal((await stat(path)).mode & 0o777, 0o600)
  await assert.rejects(writeCaKey(path, keys.privateKey), named('KeyExistsError'))
  const back = await readCaKey(path)
  assert.equal(back.algorithm.name, 'Ed25519')
  assert.equal(back.extractable, false)
  const data = new TextEncoder().encode('hello')
  const sig = await crypto.subtle.sign({ name: 'Ed25519' }, back, data)
  assert.ok(await crypto.subtle.verify({ name: 'Ed25519' }, keys.publicKey, sig, data))
})
