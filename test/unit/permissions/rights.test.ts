import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InvalidRightsError } from '../../../src/permissions/errors.js'
import { ALL_RIGHTS, formatRights, fromMask, isSubset, parseRights, toMask } from '../../../src/permissions/rights.js'

describe('rights', () => {
  it('parses and formats in canonical order', () => {
    assert.deepEqual(parseRights('read+write'), ['read', 'write'])
    assert.deepEqual(parseRights('share+read'), ['read', 'share'])
    assert.deepEqual(parseRights(' Read , Delete '), ['read', 'delete'])
    assert.deepEqual(parseRights('all'), ['read', 'write', 'delete', 'share'])
    assert.equal(formatRights(['write', 'read']), 'read+write')
    assert.equal(formatRights(0), 'none')
    assert.equal(formatRights(ALL_RIGHTS), 'read+write+delete+share')
  })

  it('refuses empty, unknown and repeated rights', () => {
    for (const bad of ['', '+', 'read+', 'read++write', 'admin', 'read+rwite', 'read+read']) {
      assert.throws(() => parseRights(bad), InvalidRightsError, bad)
    }
    assert.throws(() => parseRights('rwite'), /unknown right "rwite"/)
  })

  it('does set arithmetic on masks', () => {
    const rw = toMask(['read', 'write'])
    assert.deepEqual(fromMask(rw), ['read', 'write'])
    assert.equal(isSubset(toMask(['read']), rw), true)
    assert.equal(isSubset(toMask(['read', 'delete']), rw), false)
    assert.throws(() => toMask(['read', 'own' as any]), InvalidRightsError)
  })
})
