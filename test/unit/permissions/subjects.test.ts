import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InvalidSubjectError } from '../../../src/permissions/errors.js'
import { parseSubject, principalOf, subjectsCovering } from '../../../src/permissions/subjects.js'
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

  it('covers members by their name, their domain and every domain above, and guests only by name', () => {
    assert.deepEqual(subjectsCovering(BOB), [BOB, '*@garage.collective.local', '*@*.collective.local', '*@*.local'])
    // the federation domain itself holds no member, so its own `*@*.collective.local` is not among them
    assert.equal(subjectsCovering('x@collective.local').includes('*@*.collective.local'), false)
    assert.equal(subjectsCovering('carol@office.collective.local').includes('*@garage.collective.local'), false)
    assert.deepEqual(subjectsCovering('guest-dave@garage.collective.local'), ['guest-dave@garage.collective.local'])
    // what a grant stores is parseSubject's canonical text, which is what these are compared with
    for (const text of subjectsCovering(BOB)) assert.equal(parseSubject(text).text, text)
  })
})
