import '../../../src/polyfill.js'
import { afterEach, beforeEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { createLogger } from '../../../src/logging/logger.js'

class Sink extends Writable {
  readonly chunks: string[] = []
  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk.toString('utf8'))
    callback()
  }

  get text (): string { return this.chunks.join('') }
  get lines (): string[] { return this.text.split('\n').filter(l => l.length > 0) }
}

const now = (): Date => new Date('2026-11-25T06:00:00.000Z')

class NotFoundError extends Error {
  override readonly name = 'NotFoundError'
}

describe('createLogger', () => {
  const saved = { level: process.env.COLLECTIVE_LOG_LEVEL, format: process.env.COLLECTIVE_LOG_FORMAT }
  beforeEach(() => {
    delete process.env.COLLECTIVE_LOG_LEVEL
    delete process.env.COLLECTIVE_LOG_FORMAT
  })
  afterEach(() => {
    for (const [key, value] of [['COLLECTIVE_LOG_LEVEL', saved.level], ['COLLECTIVE_LOG_FORMAT', saved.format]] as const) {
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    }
  })

  describe('text format', () => {
    it('writes one line per event: time, padded level, component, message, key=value fields', () => {
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now })
      log.info('started', { role: 'coordinator', port: 9464, ready: true })
      log.warn('slow peer')
      log.error('failed')
      assert.deepEqual(sink.lines, [
        '2026-11-25T06:00:00.000Z INFO  collective:daemon started role=coordinator port=9464 ready=true',
        '2026-11-25T06:00:00.000Z WARN  collective:daemon slow peer',
        '2026-11-25T06:00:00.000Z ERROR collective:daemon failed'
      ])
      assert.ok(sink.text.endsWith('\n'))
    })

    it('quotes values that would break key=value parsing', () => {
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now })
      log.info('m', { path: '/media/holiday photos', eq: 'a=b', empty: '', quote: 'say "hi"', name: 'node-01@alice.home.collective.local' })
      assert.equal(sink.lines[0], '2026-11-25T06:00:00.000Z INFO  collective:daemon m path="/media/holiday photos" eq="a=b" empty="" quote="say \\"hi\\"" name=node-01@alice.home.collective.local')
    })

    it('renders errors with name and message, and objects as JSON', () => {
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now })
      const err = Object.assign(new NotFoundError('chunk missing'), { code: 'ERR_NOT_FOUND' })
      log.error('get failed', { err, peers: ['a', 'b'], at: new Date(0), nothing: null, skipped: undefined, big: 10n })
      assert.equal(sink.lines[0], '2026-11-25T06:00:00.000Z ERROR collective:daemon get failed err="NotFoundError: chunk missing (ERR_NOT_FOUND)" peers=["a","b"] at=1970-01-01T00:00:00.000Z nothing=null big=10')
    })

    it('keeps a multi-line message on one line', () => {
      const sink = new Sink()
      createLogger('daemon', { stream: sink, now }).info('first\nsecond')
      assert.equal(sink.lines.length, 1)
      assert.match(sink.lines[0], /first\\nsecond$/)
    })
  })

  describe('json format', () => {
    it('writes one JSON object per line with time, level, component, msg and the fields', () => {
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now, format: 'json' })
      log.info('started', { role: 'coordinator', port: 9464 })
      assert.equal(sink.lines.length, 1)
      assert.equal(sink.lines[0], '{"time":"2026-11-25T06:00:00.000Z","level":"info","component":"collective:daemon","msg":"started","role":"coordinator","port":9464}')
    })

    it('renders errors as name and message, including nested ones', () => {
      const sink = new Sink()
      const log = createLogger('net', { stream: sink, now, format: 'json' })
      const cause = new TypeError('bad cert')
      log.error('dial failed', { err: new NotFoundError('no route', { cause }), attempts: [{ err: new RangeError('x') }] })
      const record = JSON.parse(sink.lines[0]) as Record<string, unknown>
      assert.deepEqual(record.err, { name: 'NotFoundError', message: 'no route', cause: { name: 'TypeError', message: 'bad cert' } })
      assert.deepEqual(record.attempts, [{ err: { name: 'RangeError', message: 'x' } }])
    })

    it('never lets fields overwrite the envelope, and never throws on odd values', () => {
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now, format: 'json' })
      const loop: Record<string, unknown> = { a: 1 }
      loop.self = loop
      log.warn('odd', { msg: 'sneaky', level: 'error', big: 2n ** 70n, loop })
      const record = JSON.parse(sink.lines[0]) as Record<string, unknown>
      assert.equal(record.msg, 'odd')
      assert.equal(record.level, 'warn')
      assert.equal(record._msg, 'sneaky')
      assert.equal(record._level, 'error')
      assert.equal(record.big, '1180591620717411303424')
      assert.deepEqual(record.loop, { a: 1, self: '[Circular]' })
    })
  })

  describe('levels', () => {
    it('defaults to info: debug is dropped', () => {
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now })
      assert.equal(log.level, 'info')
      log.debug('hidden')
      log.info('shown')
      assert.equal(sink.lines.length, 1)
      assert.match(sink.lines[0], /shown$/)
    })

    it('drops events below the configured level', () => {
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now, level: 'warn' })
      log.debug('d')
      log.info('i')
      log.warn('w')
      log.error('e')
      assert.deepEqual(sink.lines.map(l => l.split(' ').pop()), ['w', 'e'])
    })

    it('passes everything at debug', () => {
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now, level: 'debug' })
      log.debug('d')
      assert.equal(sink.lines[0], '2026-11-25T06:00:00.000Z DEBUG collective:daemon d')
    })

    it('reads COLLECTIVE_LOG_LEVEL and COLLECTIVE_LOG_FORMAT, ignoring invalid values, with init winning', () => {
      process.env.COLLECTIVE_LOG_LEVEL = 'error'
      process.env.COLLECTIVE_LOG_FORMAT = 'json'
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now })
      log.warn('dropped')
      log.error('kept')
      assert.equal(sink.lines.length, 1)
      assert.equal((JSON.parse(sink.lines[0]) as { msg: string }).msg, 'kept')

      const explicit = new Sink()
      createLogger('daemon', { stream: explicit, now, level: 'info', format: 'text' }).info('x')
      assert.equal(explicit.lines[0], '2026-11-25T06:00:00.000Z INFO  collective:daemon x')

      process.env.COLLECTIVE_LOG_LEVEL = 'loud'
      process.env.COLLECTIVE_LOG_FORMAT = 'xml'
      const fallback = createLogger('daemon', { stream: new Sink(), now })
      assert.equal(fallback.level, 'info')
    })
  })

  describe('child', () => {
    it('extends the component name and shares level, format and stream', () => {
      const sink = new Sink()
      const log = createLogger('daemon', { stream: sink, now, level: 'warn' })
      const swim = log.child('swim')
      assert.equal(swim.component, 'collective:daemon:swim')
      swim.info('hidden')
      swim.warn('suspect', { peer: 'node-02@bob.home.collective.local' })
      swim.child('probe').error('timeout')
      assert.deepEqual(sink.lines, [
        '2026-11-25T06:00:00.000Z WARN  collective:daemon:swim suspect peer=node-02@bob.home.collective.local',
        '2026-11-25T06:00:00.000Z ERROR collective:daemon:swim:probe timeout'
      ])
    })

    it('does not double the collective prefix', () => {
      assert.equal(createLogger('collective:cli', { stream: new Sink() }).component, 'collective:cli')
    })
  })

  it('writes to stderr by default', () => {
    const original = process.stderr.write.bind(process.stderr)
    const captured: string[] = []
    process.stderr.write = ((chunk: string | Uint8Array) => { captured.push(String(chunk)); return true }) as typeof process.stderr.write
    try {
      createLogger('daemon', { now }).info('to stderr')
    } finally {
      process.stderr.write = original
    }
    assert.deepEqual(captured, ['2026-11-25T06:00:00.000Z INFO  collective:daemon to stderr\n'])
  })
})
