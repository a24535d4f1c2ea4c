import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InvalidSubjectError } from '../../../src/permissions/errors.js'
import { parseSubject, principalOf, subjectMatches } from '../../../src/permissions/subjects.js'
import { BOB, bob, caller } from './fixtures.js'

describe('subjects', () => {
  it('maps every component of a member to the member, and a guest to itself', () => {
    assert.equal(principalOf(bob), BOB)
    assert.equal(principalOf(caller('bob', 'garage.collective.local', 'coordinator')), BOB)
    assert.equal(principalOf(caller('bob', 'garage.collective.local', 'guest-dave')), 'guest-dave@garage.collective.local')
  })

  it('parses the three subject forms', () => {
    assert.deepEqual(parseSubject('Bob@Garage.collective.local'), { kind: 'principal', text: BOB, domain: 'garage.collective.local' })
    assert.deepEqual(parseSubject('*@garage.collective.local'), { kind: 'domain', text: '*@garage.collective.local', domain: 'garage.collective.local' })
    assert.deepEqual(parseSubject('*@*.collective.local'), { kind: 'federation', text: '*@*.collective.local', domain: 'collective.local' })
  })

  it('refuses anything else with the accepted forms in the message', () => {
    for (const bad of ['', 'bob', '@garage.collective.local', 'bob@', '*', '*@*', '*@', 'b*b@garage.collective.local', 'bob@*.collective.local', '*@*.*.local', 'bob@garage..local']) {
      assert.throws(() => parseSubject(bad), InvalidSubjectError, bad)
    }
    assert.throws(() => parseSubject('bob'), /examples: bob@garage\.collective\.local/)
  })

  it('matches principals exactly and wildcards by domain, never guests', () => {
    const exact = parseSubject(BOB)
    const domain = parseSubject('*@garage.collective.local')
    const federation = parseSubject('*@*.collective.local')
    const guest = 'guest-dave@garage.collective.local'
    assert.equal(subjectMatches(exact, BOB), true)
    assert.equal(subjectMatches(exact, 'carol@office.collective.local'), false)
    assert.equal(subjectMatches(domain, BOB), true)
    assert.equal(subjectMatches(domain, 'carol@office.collective.local'), false)
    assert.equal(subjectMatches(federation, BOB), true)
    assert.equal(subjectMatches(federation, 'eve@elsewhere.example'), false)
    // the federation domain itself holds no member
    assert.equal(subjectMatches(federation, 'x@collective.local'), false)
    assert.equal(subjectMatches(domain, guest), false)
    assert.equal(subjectMatches(federation, guest), false)
    assert.equal(subjectMatches(parseSubject(guest), guest), true)
  })
})
