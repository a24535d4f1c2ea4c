import '../../../src/polyfill.js'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import {
  addContext, contextsFile, loadContexts, removeContext, resolveHome, useContext,
  ContextConfigError, ContextExistsError, ContextHomeInUseError, InvalidContextNameError, UnknownContextError
} from '../../../src/cli/contexts.js'
import { UsageError } from '../../../src/cli/errors.js'

let root: string
let n = 0
/** A fresh contexts file path under a config dir that does not exist yet */
const freshFile = (): string => join(root, `cfg-${++n}`, 'collective-p2p', 'contexts.yaml')

before(async () => { root = await mkdtemp(join(tmpdir(), 'contexts-test-')) })
after(async () => { await rm(root, { recursive: true, force: true }) })

describe('the contexts file', () => {

  it('lives under $XDG_CONFIG_HOME, or ~/.config when that is unset or relative', () => {
    assert.equal(contextsFile({ XDG_CONFIG_HOME: '/x/cfg' }), '/x/cfg/collective-p2p/contexts.yaml')
    assert.equal(contextsFile({}), join(homedir(), '.config', 'collective-p2p', 'contexts.yaml'))
    assert.equal(contextsFile({ XDG_CONFIG_HOME: 'relative/cfg' }), join(homedir(), '.config', 'collective-p2p', 'contexts.yaml'))
  })

  it('a missing file is no contexts', async () => {
    assert.deepEqual(await loadContexts(freshFile()), { contexts: {} })
  })

  it('is written with mode 0600 in a folder of mode 0700, and the first context added becomes current', async () => {
    const file = freshFile()
    const next = await addContext(file, 'family', { home: '/homes/family' })
    assert.equal(next.current, 'family')
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.equal((await stat(dirname(file))).mode & 0o777, 0o700)
    await addContext(file, 'club', { home: '/homes/club' })
    assert.deepEqual(await loadContexts(file), { current: 'family', contexts: { family: { home: '/homes/family' }, club: { home: '/homes/club' } } })
  })

  it('is replaced whole: a reader of the old file keeps the old content, and no temp file is left behind', async () => {
    const file = freshFile()
    await addContext(file, 'family', { home: '/homes/family' })
    const before = await readFile(file, 'utf8')
    const reader = await open(file, 'r')
    try {
      await addContext(file, 'club', { home: '/homes/club' })
      assert.equal(await reader.readFile('utf8'), before)
    } finally {
      await reader.close()
    }
    assert.match(await readFile(file, 'utf8'), /club/)
    assert.deepEqual(await readdir(dirname(file)), ['contexts.yaml'])
  })

  it('never replaces a context: an existing name or a home another context uses is refused and the file is unchanged', async () => {
    const file = freshFile()
    await addContext(file, 'family', { home: '/homes/family' })
    const before = await readFile(file, 'utf8')
    await assert.rejects(addContext(file, 'family', { home: '/homes/other' }), (err: Error) => {
      assert.equal(err.name, 'ContextExistsError')
      assert.ok(err instanceof ContextExistsError)
      assert.match(err.message, /"family" already exists/)
      return true
    })
    // The same folder spelt differently is still the same home
    await assert.rejects(addContext(file, 'family2', { home: '/homes/x/../family/' }), (err: Error) => {
      assert.ok(err instanceof ContextHomeInUseError)
      assert.equal(err.name, 'ContextHomeInUseError')
      assert.match(err.message, /\/homes\/family already belongs to context "family"/)
      return true
    })
    assert.equal(await readFile(file, 'utf8'), before)
  })

  it('refuses names that are not DNS-label-like, as a usage error', async () => {
    const file = freshFile()
    for (const bad of ['Family', '-x', 'a_b', 'a.b', '', 'x'.repeat(64)]) {
      await assert.rejects(addContext(file, bad, { home: '/homes/h' }), (err: Error) => {
        assert.ok(err instanceof InvalidContextNameError)
        assert.ok(err instanceof UsageError)
        assert.equal(err.name, 'InvalidContextNameError')
        return true
      }, bad)
    }
    await addContext(file, 'x'.repeat(63), { home: '/homes/long' })
    await addContext(file, '0-club-', { home: '/homes/club' })
  })

  it('resolves a relative home against the working directory', async () => {
    const file = freshFile()
    const next = await addContext(file, 'here', { home: 'some/dir' })
    assert.equal(next.contexts.here.home, join(process.cwd(), 'some', 'dir'))
  })

  it('use switches the current context; an unknown name lists the known ones', async () => {
    const file = freshFile()
    await addContext(file, 'family', { home: '/homes/family' })
    await addContext(file, 'club', { home: '/homes/club' })
    assert.equal((await useContext(file, 'club')).current, 'club')
    assert.equal((await loadContexts(file)).current, 'club')
    await assert.rejects(useContext(file, 'work'), (err: Error) => {
      assert.ok(err instanceof UnknownContextError)
      assert.ok(err instanceof UsageError)
      assert.match(err.message, /no context named "work".*known: family, club/)
      return true
    })
  })

  it('rm forgets the entry only: the home stays, and removing the current context leaves none current', async () => {
    const file = freshFile()
    const home = join(root, 'home-rm')
    await mkdir(home)
    await writeFile(join(home, 'keep'), 'x')
    await addContext(file, 'family', { home })
    await addContext(file, 'club', { home: '/homes/club' })
    const { removed, contexts } = await removeContext(file, 'family')
    assert.deepEqual(removed, { home })
    assert.deepEqual(contexts, { current: undefined, contexts: { club: { home: '/homes/club' } } })
    assert.deepEqual(await loadContexts(file), { contexts: { club: { home: '/homes/club' } } })
    assert.equal(await readFile(join(home, 'keep'), 'utf8'), 'x')
    await assert.rejects(removeContext(file, 'family'), UnknownContextError)
    // A removed name and home can be added again
    await addContext(file, 'family', { home })
  })

  describe('validation on load', () => {
    async function written (text: string, mode = 0o600): Promise<string> {
      const file = freshFile()
      await mkdir(dirname(file), { recursive: true })
      await writeFile(file, text)
      await chmod(file, mode)
      return file
    }

    async function refused (file: string, pattern: RegExp): Promise<void> {
      await assert.rejects(loadContexts(file), (err: Error) => {
        assert.ok(err instanceof ContextConfigError)
        assert.equal(err.name, 'ContextConfigError')
        assert.ok(err.message.includes(file), err.message)
        assert.match(err.message, pattern)
        return true
      })
    }

    it('refuses a file group or others may read', async () => {
      for (const mode of [0o644, 0o640, 0o604, 0o660]) {
        await refused(await written('contexts: {}\n', mode), new RegExp(`mode ${mode.toString(8)}.*chmod 600`))
      }
    })

    it('refuses YAML that does not parse', async () => {
      await refused(await written('contexts: [unclosed\n'), /not valid YAML/)
    })

    it('names the field at fault', async () => {
      await refused(await written('contexts:\n  family:\n    home: relative/dir\n'), /contexts\.family\.home: must be an absolute path/)
      await refused(await written('contexts:\n  family:\n    home: /h\n    colour: blue\n'), /contexts\.family: .*"colour"/)
      await refused(await written('contexts:\n  Family:\n    home: /h\n'), /contexts\.Family: context names are/)
      await refused(await written('current: work\ncontexts:\n  family:\n    home: /h\n'), /current: names no context/)
      await refused(await written('contexts: 3\n'), /contexts: /)
      await refused(await written('- a\n- b\n'), /\(top level\)/)
    })

    it('an empty file is no contexts', async () => {
      assert.deepEqual(await loadContexts(await written('')), { contexts: {} })
    })
  })
})

describe('resolveHome', () => {
  let file: string
  before(async () => {
    file = freshFile()
    await addContext(file, 'family', { home: '/homes/family' })
    await addContext(file, 'club', { home: '/homes/club' })
  })

  it('--home > --context > $COLLECTIVE_HOME > the current context > ~/.collective-p2p', async () => {
    const env = { COLLECTIVE_HOME: '/homes/env' }
    assert.deepEqual(await resolveHome({ home: '/homes/opt', context: 'club', env, file }), { home: '/homes/opt' })
    assert.deepEqual(await resolveHome({ context: 'club', env, file }), { home: '/homes/club', context: 'club' })
    assert.deepEqual(await resolveHome({ env, file }), { home: '/homes/env' })
    assert.deepEqual(await resolveHome({ env: {}, file }), { home: '/homes/family', context: 'family' })
    assert.deepEqual(await resolveHome({ env: {}, file: join(root, 'none.yaml') }), { home: join(homedir(), '.collective-p2p') })
  })

  it('an unknown --context is a usage error listing the known contexts', async () => {
    await assert.rejects(resolveHome({ context: 'work', env: {}, file }), (err: Error) => {
      assert.ok(err instanceof UsageError)
      assert.equal(err.name, 'UnknownContextError')
      assert.match(err.message, /known: family, club/)
      return true
    })
  })

  it('--home and $COLLECTIVE_HOME do not depend on the contexts file; the current context does', async () => {
    const broken = join(root, 'broken.yaml')
    await writeFile(broken, 'contexts: [', { mode: 0o600 })
    assert.deepEqual(await resolveHome({ home: 'rel', env: {}, file: broken }), { home: join(process.cwd(), 'rel') })
    assert.deepEqual(await resolveHome({ env: { COLLECTIVE_HOME: '/homes/env' }, file: broken }), { home: '/homes/env' })
    await assert.rejects(resolveHome({ env: {}, file: broken }), ContextConfigError)
  })
})
