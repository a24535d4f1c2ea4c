import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseExpiry, parseTimestamp } from '../../../src/util/units.js'

// Lives with the permissions tests: grants and invites are what take `--for` and `--until`
describe('expiry forms', () => {
  it('parses instants with a zone, and dates as midnight UTC', () => {
    assert.equal(parseTimestamp('2026-12-24T00:00Z'), Date.UTC(2026, 11, 24))
    assert.equal(parseTimestamp('2026-12-24'), Date.UTC(2026, 11, 24))
    assert.equal(parseTimestamp('2026-12-24T08:30:15.5+01:00'), Date.UTC(2026, 11, 24, 7, 30, 15, 500))
    assert.equal(parseTimestamp('2026-12-24T00:30-01:00'), Date.UTC(2026, 11, 24, 1, 30))
  })

  it('refuses instants without a zone, impossible dates and other text', () => {
    for (const bad of ['2026-12-24T00:00', '2026-02-30', '2026-02-30T00:00Z', '2026-13-01', '24.12.2026', 'tomorrow', '']) {
      assert.throws(() => parseTimestamp(bad), { name: 'InvalidTimestampError' }, bad)
    }
  })

  it('takes a duration from now or an instant', () => {
    const now = 1_000_000
    assert.equal(parseExpiry('90m', now), now + 90 * 60_000)
    assert.equal(parseExpiry('36h', now), now + 36 * 3_600_000)
    assert.equal(parseExpiry('7d', now), now + 7 * 86_400_000)
    assert.equal(parseExpiry('2026-12-24T00:00Z', now), Date.UTC(2026, 11, 24))
    assert.throws(() => parseExpiry('7 days', now), { name: 'InvalidDurationError' })
    assert.throws(() => parseExpiry('2026-12-24T25:00Z', now), { name: 'InvalidTimestampError' })
  })
})
