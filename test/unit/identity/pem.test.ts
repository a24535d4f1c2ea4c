import '../../../src/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readCertificateChain, writeCertificateChain, fingerprint } from '../../../src/identity/index.js'
import { federation, issueNode, makePeer } from './fixtures.js'

let dir: string
before(async () => { dir = await mkdtemp(join(tmpdir(), 'identity-pem-')) })
after(async () => { await rm(dir, { recursive: true, force: true }) })

const pemError = (file: string) => (err: unknown) => (err as Error).name === 'InvalidPemError' && (err as Error).message.includes(file)

test('certificate chains round-trip leaf first with mode 0644', async () => {
  const fed = await federation()
  const leaf = await issueNode(fed.alice, await makePeer())
  const path = join(dir, 'node.pem')
  await writeCertificateChain(path, [leaf, fed.alice.cert])
  assert.equal((await stat(path)).mode & 0o777, 0o644)
  const back = await readCertificateChain(path)
  assert.deepEqual(back.map(fingerprint), [fingerprint(leaf), fingerprint(fed.alice.cert)])
  // rewriting replaces the file
  await writeCertificateChain(path, [fed.root.cert])
  assert.equal((await readCertificateChain(path)).length, 1)
})

test('bad certificate files raise InvalidPemError naming the file', async () => {
  const fed = await federation()
  await assert.rejects(readCertificateChain(join(dir, 'missing.pem')), pemError('missing.pem'))
  const good = fed.root.cert.toString('pem')
  const cases: Record<string, string> = {
    'empty.pem': '',
    'text.pem': 'hello world\n',
    'b64.pem': '-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n',
    'notder.pem': `-----BEGIN CERTIFICATE-----\n${Buffer.from('not a certificate').toString('base64')}\n-----END CERTIFICATE-----\n`,
    'key.pem': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
    'unterminated.pem': `${good}\n-----BEGIN CERTIFICATE-----\nAAAA\n`
  }
  for (const [name, content] of Object.entries(cases)) {
    const path = join(dir, name)
    await writeFile(path, content)
    await assert.rejects(readCertificateChain(path), pemError(name), name)
  }
  // truncating a valid file's base64 corrupts the DER
  const truncated = join(dir, 'truncated.pem')
  const lines = good.trim().split('\n')
  await writeFile(truncated, [...lines.slice(0, 3), lines[lines.length - 1]].join('\n'))
  await assert.rejects(readCertificateChain(truncated), pemError('truncated.pem'))
  assert.ok((await readFile(join(dir, 'empty.pem'), 'utf8')) === '')
})
