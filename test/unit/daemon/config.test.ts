import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../../src/daemon/config.js'

const CONFIG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'config')

describe('daemon config', () => {
  it('the example configs in config/ are valid', async () => {
    const coordinator = await loadConfig(join(CONFIG_DIR, 'coordinator.yaml'))
    assert.equal(coordinator.role, 'coordinator')
    assert.equal(coordinator.storage.replication, 2)
    assert.equal(coordinator.storage.gcGraceMs, 3_600_000)
    assert.equal(coordinator.identity.key, join(CONFIG_DIR, 'peer.key'))
    const node = await loadConfig(join(CONFIG_DIR, 'node.yaml'))
    assert.equal(node.role, 'node')
    assert.equal(node.storage.capacityBytes, 100 * 1024 ** 3)
    assert.match(node.coordinator ?? '', /\/p2p\/12D3KooW/)
    const client = await loadConfig(join(CONFIG_DIR, 'client.yaml'))
    assert.equal(client.role, 'client')
    assert.match(client.coordinator ?? '', /\/p2p\/12D3KooW/)
  })

  it('resolves a coordinator\'s memberCa against the config\'s folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'config-test-'))
    try {
      const file = join(dir, 'coordinator', 'c.yaml')
      await mkdir(dirname(file))
      await writeFile(file, 'role: coordinator\nidentity: { key: k, cert: c, root: r }\nmemberCa: ../member\n')
      assert.equal((await loadConfig(file)).memberCa, join(dir, 'member'))
      await writeFile(file, 'role: coordinator\nidentity: { key: k, cert: c, root: r }\n')
      assert.equal((await loadConfig(file)).memberCa, undefined)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('names every bad key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'config-test-'))
    try {
      const file = join(dir, 'c.yaml')
      await writeFile(file, 'role: node\nidentity: { key: k, cert: c, root: r }\nstorage: { capacity: lots }\nlisten: [nonsense]\nextra: 1\n')
      await assert.rejects(loadConfig(file), (err: any) => {
        assert.equal(err.name, 'ConfigError')
        assert.match(err.message, /listen\.0: not a valid multiaddr/)
        assert.match(err.message, /extra/)
        return true
      })
      await writeFile(file, 'role: node\nidentity: { key: k, cert: c, root: r }\nstorage: { capacity: lots }\n')
      await assert.rejects(loadConfig(file), /storage\.capacity: invalid size "lots"/)
      await writeFile(file, 'role: coordinator\nidentity: { key: k, cert: c, root: r }\nstorage: { gcGrace: soon }\n')
      await assert.rejects(loadConfig(file), /storage\.gcGrace: invalid duration "soon"/)
      await writeFile(file, 'role: node\nidentity: { key: k, cert: c, root: r }\nmemberCa: ../member\n')
      await assert.rejects(loadConfig(file), /memberCa: only a coordinator issues certificates, not a node/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
