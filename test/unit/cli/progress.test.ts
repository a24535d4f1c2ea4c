import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ProgressBar, duration, PROGRESS_THRESHOLD_BYTES } from '../../../src/cli/progress.js'

const MiB = 1024 * 1024

class FakeTty {
  isTTY = true
  columns = 80
  readonly writes: string[] = []
  write (s: string): boolean { this.writes.push(s); return true }
  get text (): string { return this.writes.join('') }
}

function clock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms: number) => { t += ms } }
}

// eslint-disable-next-line no-control-regex
const strip = (s: string): string => s.replace(/\r|\x1b\[K/g, '')

describe('ProgressBar', () => {
  it('draws percentage, bytes, rate and ETA for a large transfer, and clears itself at the end', () => {
    const tty = new FakeTty()
    const c = clock()
    const bar = new ProgressBar({ stream: tty, now: c.now, total: 100 * MiB, label: 'big.bin' })
    for (let i = 1; i <= 10; i++) {
      c.advance(1000)
      bar.update(i * 10_000_000)
    }
    assert.equal(bar.visible, true)
    const last = strip(tty.writes[tty.writes.length - 1])
    assert.match(last, /^big\.bin\s+95% \[#+\.*\] {2}95\.4 MiB \/ 100\.0 MiB +10\.0 MB\/s {2}ETA 0:01$/)
    assert.ok(tty.writes.every(w => w.startsWith('\r') && w.endsWith('\x1b[K')), 'each redraw overwrites the line')
    bar.finish()
    assert.equal(tty.writes[tty.writes.length - 1], '\r\x1b[K')
    assert.equal(bar.visible, false)
    const before = tty.writes.length
    bar.update(100 * MiB)
    assert.equal(tty.writes.length, before, 'nothing is drawn after finish')
  })

  it('redraws at most ten times a second', () => {
    const tty = new FakeTty()
    const c = clock()
    const bar = new ProgressBar({ stream: tty, now: c.now, total: 100 * MiB })
    for (let i = 1; i <= 1000; i++) {
      c.advance(1) // one second in 1 ms steps
      bar.update(i * 50_000)
    }
    assert.ok(tty.writes.length >= 9 && tty.writes.length <= 11, `${tty.writes.length} redraws in one second`)
  })

  it('smooths the rate instead of jumping to each new sample', () => {
    const tty = new FakeTty()
    const c = clock()
    const bar = new ProgressBar({ stream: tty, now: c.now, total: 1000 * MiB })
    let bytes = 0
    for (let i = 0; i < 20; i++) { c.advance(200); bytes += 2_000_000; bar.update(bytes) } // 10 MB/s
    assert.ok(Math.abs((bar.bytesPerSecond ?? 0) - 10e6) < 1e3)
    c.advance(200); bytes += 6_000_000; bar.update(bytes) // one 30 MB/s burst
    const rate = bar.bytesPerSecond ?? 0
    assert.ok(rate > 10e6 && rate < 30e6, `smoothed rate ${rate}`)
  })

  it('stays hidden for transfers of 4 MiB or less', () => {
    const tty = new FakeTty()
    const c = clock()
    const bar = new ProgressBar({ stream: tty, now: c.now, total: PROGRESS_THRESHOLD_BYTES })
    for (let i = 1; i <= 4; i++) { c.advance(500); bar.update(i * MiB) }
    bar.finish()
    assert.deepEqual(tty.writes, [])
  })

  it('with an unknown size, appears once the transfer passes 4 MiB and shows no percentage', () => {
    const tty = new FakeTty()
    const c = clock()
    const bar = new ProgressBar({ stream: tty, now: c.now })
    c.advance(1000); bar.update(4 * MiB)
    assert.deepEqual(tty.writes, [])
    c.advance(1000); bar.update(6 * MiB)
    assert.equal(tty.writes.length, 1)
    const line = strip(tty.writes[0])
    assert.match(line, /^6\.0 MiB +[\d.]+ MB\/s$/)
    assert.doesNotMatch(line, /%|ETA/)
  })

  it('takes the total from a later update (the daemon\'s progress lines may carry it)', () => {
    const tty = new FakeTty()
    const c = clock()
    const bar = new ProgressBar({ stream: tty, now: c.now })
    c.advance(1000); bar.update(1 * MiB, 10 * MiB)
    assert.match(strip(tty.writes[0]), /10% .* 1\.0 MiB \/ 10\.0 MiB/)
  })

  it('is never drawn when the stream is not a TTY', () => {
    const tty = new FakeTty()
    tty.isTTY = false
    const c = clock()
    const bar = new ProgressBar({ stream: tty, now: c.now, total: 100 * MiB })
    for (let i = 1; i <= 10; i++) { c.advance(1000); bar.update(i * 10 * MiB) }
    bar.finish()
    assert.deepEqual(tty.writes, [])
    assert.equal(bar.visible, false)
  })

  it('is never drawn when disabled (--json)', () => {
    const tty = new FakeTty()
    const c = clock()
    const bar = new ProgressBar({ stream: tty, now: c.now, total: 100 * MiB, enabled: false })
    for (let i = 1; i <= 10; i++) { c.advance(1000); bar.update(i * 10 * MiB) }
    bar.finish()
    assert.deepEqual(tty.writes, [])
  })

  it('fits a narrow terminal so the line never wraps', () => {
    for (const columns of [30, 50, 80, 200]) {
      const tty = new FakeTty()
      tty.columns = columns
      const c = clock()
      const bar = new ProgressBar({ stream: tty, now: c.now, total: 100 * MiB, label: 'a-rather-long-file-name.tar.gz' })
      c.advance(1000); bar.update(50 * MiB)
      const line = strip(tty.writes[0])
      assert.ok(line.length < Math.max(columns, 21), `${line.length} chars at ${columns} columns: ${line}`)
    }
  })
})

describe('duration', () => {
  it('formats m:ss and h:mm:ss', () => {
    assert.equal(duration(0), '0:00')
    assert.equal(duration(1.2), '0:02')
    assert.equal(duration(75), '1:15')
    assert.equal(duration(3600 + 62), '1:01:02')
    assert.equal(duration(Infinity), '--:--')
  })
})
