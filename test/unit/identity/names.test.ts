import '../../../src/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ROLES, assertMemberDomain, formatFederatedName, parseFederatedName, validateDomainLabel } from '../../../src/identity/names.js'

const named = (name: string) => (err: unknown) => (err as Error).name === name

test('parses and formats federated names', () => {
  assert.deepEqual(parseFederatedName('node-01@home.collective.local'), { local: 'node-01', domain: 'home.collective.local' })
  assert.equal(formatFederatedName('alice', 'home.collective.local'), 'alice@home.collective.local')
  assert.deepEqual([...ROLES], ['coordinator', 'node', 'client'])
})

test('refuses malformed names with InvalidNameError', () => {
  for (const bad of ['node', 'a@b@c.local', 'Node@home.local', '@home.local', 'node@', 'node@home..local', 'no de@home.local',
    `${'a'.repeat(64)}@home.local`, '-node@home.local', 'node@home.local.', 'nöde@home.local']) {
    assert.throws(() => parseFederatedName(bad), named('InvalidNameError'), bad)
  }
  assert.throws(() => formatFederatedName('UPPER', 'home.local'), named('InvalidNameError'))
  assert.throws(() => validateDomainLabel(''), named('InvalidNameError'))
  validateDomainLabel('a'.repeat(63))
  validateDomainLabel('node-01')
})

test('member domains must sit strictly below the federation', () => {
  assertMemberDomain('home.collective.local', 'collective.local')
  assertMemberDomain('alice.home.collective.local', 'collective.local')
  for (const bad of ['collective.local', 'evilcollective.local', 'home.other.local', 'local']) {
    assert.throws(() => assertMemberDomain(bad, 'collective.local'), named('NameConstraintError'), bad)
  }
  assert.throws(() => assertMemberDomain('Home.collective.local', 'collective.local'), named('InvalidNameError'))
})
