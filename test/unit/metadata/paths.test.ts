import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { baseName, isDescendant, joinPath, normalizePath, parentOf, splitPath } from '../../../src/metadata/paths.js'

describe('normalizePath', () => {
  it('collapses duplicate and trailing slashes', () => {
    assert.equal(normalizePath('/'), '/')
    assert.equal(normalizePath('//'), '/')
    assert.equal(normalizePath('/a//b/'), '/a/b')
    assert.equal(normalizePath('///a///b///c'), '/a/b/c')
    assert.equal(normalizePath('/é/日本'), '/é/日本')
    assert.equal(normalizePath('/.hidden/a..b/...'), '/.hidden/a..b/...')
  })

  it('rejects what it cannot store, saying why', () => {
    assert.throws(() => normalizePath(''), { name: 'InvalidPathError', message: /empty/ })
    assert.throws(() => normalizePath('a/b'), { name: 'InvalidPathError', message: /not absolute/ })
    assert.throws(() => normalizePath('/a\0b'), { name: 'InvalidPathError', message: /NUL/ })
    assert.throws(() => normalizePath('/a/../b'), { name: 'InvalidPathError', message: /"\.\."/ })
    assert.throws(() => normalizePath('/a/./b'), { name: 'InvalidPathError', message: /"\."/ })
    assert.throws(() => normalizePath('/..'), { name: 'InvalidPathError' })
    assert.throws(() => normalizePath('/' + 'x'.repeat(256)), { name: 'InvalidPathError', message: /255 bytes/ })
    // 128 two-byte characters: 256 bytes though only 128 UTF-16 units
    assert.throws(() => normalizePath('/' + 'é'.repeat(128)), { name: 'InvalidPathError', message: /255 bytes/ })
    const long = ('/' + 'x'.repeat(200)).repeat(21)
    assert.throws(() => normalizePath(long), { name: 'InvalidPathError', message: /4096 bytes/ })
  })

  it('rejects control characters, which ls would print raw to another member\'s terminal, and lone surrogates', () => {
    // C1 too: U+009B is CSI, which some terminals take as ESC [
    for (const p of ['/a\nb', '/evil\u001b[2J', '/tab\there', '/del\u007f', '/a\u0001/b', '/csi\u009b2J', '/a\u0080', '/b\u009f']) {
      assert.throws(() => normalizePath(p), { name: 'InvalidPathError', message: /control character/ }, JSON.stringify(p))
    }
    for (const p of ['/\ud800', '/a\udc00b', '/x/\ud83d']) {
      assert.throws(() => normalizePath(p), { name: 'InvalidPathError', message: /lone surrogate/ }, JSON.stringify(p))
    }
    // a surrogate pair is an ordinary character, and so is anything past the C0 and C1 ranges (U+00A0 on)
    assert.equal(normalizePath('/\ud83d\ude00/caf\u00e9 \u00a0x'), '/\ud83d\ude00/caf\u00e9 \u00a0x')
  })

  it('accepts names and paths exactly at the limits', () => {
    assert.equal(normalizePath('/' + 'x'.repeat(255)).length, 256)
    const p = ('/' + 'x'.repeat(255)).repeat(16)
    assert.equal(normalizePath(p), p)
    assert.equal(Buffer.byteLength(p), 4096)
  })
})

describe('path helpers', () => {
  it('parentOf, baseName, joinPath, splitPath, isDescendant', () => {
    assert.equal(parentOf('/a/b/c'), '/a/b')
    assert.equal(parentOf('/a'), '/')
    assert.equal(parentOf('/'), '/')
    assert.equal(parentOf('/a/b/'), '/a')
    assert.equal(baseName('/a/b/c'), 'c')
    assert.equal(baseName('/'), '')
    assert.equal(joinPath('/a', 'b', 'c/d'), '/a/b/c/d')
    assert.equal(joinPath('/', 'x'), '/x')
    assert.throws(() => joinPath('/a', '..'), { name: 'InvalidPathError' })
    assert.deepEqual(splitPath('/a/b'), ['a', 'b'])
    assert.deepEqual(splitPath('/'), [])
    assert.equal(isDescendant('/a', '/a/b'), true)
    assert.equal(isDescendant('/a', '/ab'), false)
    assert.equal(isDescendant('/a', '/a'), false)
    assert.equal(isDescendant('/', '/a'), true)
  })
})
