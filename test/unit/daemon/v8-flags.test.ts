import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { DAEMON_V8_FLAGS } from '../../../src/daemon/v8-flags.js'
import { BIN } from '../../helpers/daemons.js'

describe('daemon V8 flags', () => {
  it('the command carries them in its #! line, so a daemon started as `collective-p2p daemon` has them too', () => {
    const [first] = readFileSync(BIN, 'utf8').split('\n', 1)
    assert.equal(first, `#!/usr/bin/env -S node ${DAEMON_V8_FLAGS.join(' ')}`)
  })

  it('node accepts every one of them', () => {
    const out = execFileSync(process.execPath, [...DAEMON_V8_FLAGS, '-e', 'process.stdout.write("ok")'], { encoding: 'utf8' })
    assert.equal(out, 'ok')
  })
})
