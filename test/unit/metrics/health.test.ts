import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  computeHealth, connectivityComponent, diskComponent, isReady, nodeAvailabilityComponent, replicationComponent,
  statusForScore, DEGRADED_THRESHOLD, HEALTHY_THRESHOLD, READY_THRESHOLD
} from '../../../src/metrics/health.js'
import type { HealthComponent } from '../../../src/metrics/health.js'

const c = (name: string, score: number, weight = 1): HealthComponent => ({ name, score, weight })

describe('computeHealth', () => {
  it('is the weighted average of the component scores, rounded to an integer', () => {
    const report = computeHealth([c('a', 100, 3), c('b', 0, 1)])
    assert.equal(report.score, 75)
    const odd = computeHealth([c('a', 100, 1), c('b', 0, 2)])
    assert.equal(odd.score, 33)
    assert.ok(Number.isInteger(odd.score))
  })

  it('reports status by the documented thresholds', () => {
    assert.equal(HEALTHY_THRESHOLD, 70)
    assert.equal(DEGRADED_THRESHOLD, 30)
    assert.equal(statusForScore(100), 'healthy')
    assert.equal(statusForScore(70), 'healthy')
    assert.equal(statusForScore(69), 'degraded')
    assert.equal(statusForScore(30), 'degraded')
    assert.equal(statusForScore(29), 'unhealthy')
    assert.equal(statusForScore(0), 'unhealthy')
    assert.equal(computeHealth([c('x', 70)]).status, 'healthy')
    assert.equal(computeHealth([c('x', 69.4)]).status, 'degraded')
    assert.equal(computeHealth([c('x', 30)]).status, 'degraded')
    assert.equal(computeHealth([c('x', 29)]).status, 'unhealthy')
  })

  it('is ready only while the score is above 30', () => {
    assert.equal(READY_THRESHOLD, 30)
    assert.equal(isReady(computeHealth([c('x', 31)])), true)
    assert.equal(isReady(computeHealth([c('x', 30)])), false)
    assert.equal(isReady(computeHealth([c('x', 0)])), false)
  })

  it('clamps scores into 0..100 and treats NaN as 0', () => {
    const report = computeHealth([c('hi', 250), c('lo', -40), c('nan', Number.NaN)])
    assert.deepEqual(report.components.map(x => x.score), [100, 0, 0])
    assert.equal(report.score, 33)
  })

  it('scores 100 when nothing is measured', () => {
    assert.equal(computeHealth([]).score, 100)
    assert.equal(computeHealth([c('ignored', 0, 0)]).score, 100)
  })

  it('keeps zero-weight components in the report without moving the score', () => {
    const report = computeHealth([c('a', 80, 1), c('info', 0, 0)])
    assert.equal(report.score, 80)
    assert.equal(report.components.length, 2)
  })

  it('rejects negative or non-finite weights with a named error', () => {
    assert.throws(() => computeHealth([c('a', 50, -1)]), { name: 'InvalidHealthComponentError' })
    assert.throws(() => computeHealth([c('a', 50, Number.POSITIVE_INFINITY)]), { name: 'InvalidHealthComponentError' })
    assert.throws(() => computeHealth([c('a', 50, Number.NaN)]), { name: 'InvalidHealthComponentError' })
  })

  it('stamps the report with the given time and keeps component details', () => {
    const now = new Date('2026-11-25T06:00:00.000Z')
    const report = computeHealth([{ name: 'disk', score: 90, weight: 1, detail: '85% used' }], now)
    assert.equal(report.timestamp, '2026-11-25T06:00:00.000Z')
    assert.deepEqual(report.components, [{ name: 'disk', score: 90, weight: 1, detail: '85% used' }])
  })

  it('does not mutate its input', () => {
    const input = [c('a', 500)]
    computeHealth(input)
    assert.equal(input[0].score, 500)
  })
})

describe('component helpers', () => {
  it('nodeAvailabilityComponent is the alive share; no nodes scores 0', () => {
    assert.equal(nodeAvailabilityComponent(3, 3).score, 100)
    assert.equal(nodeAvailabilityComponent(2, 3).score, 66.7)
    assert.equal(nodeAvailabilityComponent(0, 3).score, 0)
    assert.equal(nodeAvailabilityComponent(5, 3).score, 100)
    assert.equal(nodeAvailabilityComponent(0, 0).score, 0)
    assert.equal(nodeAvailabilityComponent(2, 3).detail, '2/3 nodes alive')
    assert.equal(nodeAvailabilityComponent(2, 3).name, 'node_availability')
    assert.equal(nodeAvailabilityComponent(2, 3, 7).weight, 7)
  })

  it('diskComponent is 100 up to 80% used, then falls linearly to 0 at full', () => {
    assert.equal(diskComponent(0, 100).score, 100)
    assert.equal(diskComponent(80, 100).score, 100)
    assert.equal(diskComponent(90, 100).score, 50)
    assert.equal(diskComponent(95, 100).score, 25)
    assert.equal(diskComponent(100, 100).score, 0)
    assert.equal(diskComponent(150, 100).score, 0)
    assert.equal(diskComponent(10, 0).score, 0)
    assert.equal(diskComponent(90, 100).detail, '90.0% used')
  })

  it('replicationComponent is the fully replicated share; no chunks scores 100', () => {
    assert.equal(replicationComponent(0, 1000).score, 100)
    assert.equal(replicationComponent(250, 1000).score, 75)
    assert.equal(replicationComponent(1000, 1000).score, 0)
    assert.equal(replicationComponent(0, 0).score, 100)
  })

  it('connectivityComponent is the connected share, capped; expecting none scores 100', () => {
    assert.equal(connectivityComponent(4, 4).score, 100)
    assert.equal(connectivityComponent(1, 4).score, 25)
    assert.equal(connectivityComponent(9, 4).score, 100)
    assert.equal(connectivityComponent(0, 0).score, 100)
  })

  it('combines into a report a daemon would publish', () => {
    const report = computeHealth([
      nodeAvailabilityComponent(1, 3), // 33.3 x3
      replicationComponent(500, 1000), // 50 x3
      connectivityComponent(1, 2), // 50 x2
      diskComponent(50, 100) // 100 x2
    ])
    // (99.9 + 150 + 100 + 200) / 10 = 54.99
    assert.equal(report.score, 55)
    assert.equal(report.status, 'degraded')
  })
})
