import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { call } from '../../src/control/client.js'
import { SmoldotPeer } from '../helpers/smoldot.js'
import { DAEMON_DEBUG, TestCollective, linesMentioning, sample, scrape } from '../helpers/collective.js'
import type { RunningDaemon } from '../../test/helpers/daemons.js'

// A real foreign libp2p implementation (smoldot: Rust libp2p as WASM, TCP + Noise + yamux) keeps dialing a
// coordinator and a storage node for 30 seconds while the member keeps writing and reading files. It proposes
// plain `/noise`; our daemons only speak `/collective/noise-cert/1.0.0`, so the connection is refused at the
// security-protocol negotiation, before any stream, and the daemons must show exactly that from their side.

const RETRY_LOOP_MS = 30_000
/** Every fresh smoldot client is a fresh peer ID with no backoff: it dials at once */
const PAUSE_BETWEEN_ATTEMPTS_MS = 250

const collective = new TestCollective()
let targets: RunningDaemon[]

/** The inbound connections a daemon's upgrader refused (its own debug log, one line per connection) */
function upgradeRefusals (d: RunningDaemon): number {
  return linesMentioning(d, 'failed to upgrade inbound connection').length
}

describe('a foreign libp2p implementation (smoldot) dialing our daemons', () => {
  before(async () => {
    await collective.start({ env: { DEBUG: DAEMON_DEBUG } })
    targets = [collective.coordinator, collective.nodes[0]]
  })

  after(async () => { await collective.stop() })

  it('is refused in the handshake for 30 s of retries while the member is served without a hiccup', async () => {
    const accepted = await Promise.all(targets.map(async d => sample(await scrape(d), 'collective_connection_attempts_total{direction="inbound"}')))
    const refusedBefore = targets.map(upgradeRefusals)
    await collective.put('/docs/before', 200_000)

    const foreignPeers: string[] = []
    const attemptsAt = new Map<string, number>()
    const foreignLogs: string[] = []
    const deadline = Date.now() + RETRY_LOOP_MS
    const foreign = (async () => {
      while (Date.now() < deadline) {
        const peer = SmoldotPeer.start()
        try {
          await peer.dial(targets.map(d => d.status.listen[0]))
          // wait (bounded) until smoldot gave up on both connections
          const giveUp = Date.now() + 5_000
          while (Date.now() < giveUp && peer.count(/connection-shutdown/) < targets.length) await sleep(50)
        } finally {
          await peer.stop()
        }
        if (peer.peerId != null) foreignPeers.push(peer.peerId)
        for (const line of peer.logs) {
          const m = /connection-started;.*remote_addr=([^,]+)/.exec(line)
          if (m != null) attemptsAt.set(m[1], (attemptsAt.get(m[1]) ?? 0) + 1)
        }
        foreignLogs.push(...peer.logs)
        await sleep(PAUSE_BETWEEN_ATTEMPTS_MS)
      }
    })()

    // The member's workload, concurrently: every write and read must succeed and the nodes stay alive.
    let operations = 0
    while (Date.now() < deadline) {
      const path = `/docs/during-${operations}`
      await collective.put(path, 100_000 + operations)
      await collective.assertReadsBack(path)
      assert.equal(await collective.aliveNodes(), 2, 'both nodes stay alive during the foreign retries')
      operations += 2
    }
    await foreign
    await collective.assertReadsBack('/docs/before')

    // The foreign side: it dialed again and again and never completed a handshake.
    const attempts = [...attemptsAt.values()].reduce((a, b) => a + b, 0)
    assert.ok(attempts >= 10, `smoldot dialed ${attempts} times in 30 s`)
    assert.equal(foreignLogs.filter(l => /handshake-finished/.test(l)).length, 0, 'no foreign handshake may finish')
    for (const d of targets) {
      const addr = d.status.listen[0].replace(/\/p2p\/.*$/, '')
      assert.ok((attemptsAt.get(addr) ?? 0) >= 5, `smoldot dialed ${addr} ${attemptsAt.get(addr) ?? 0} times`)
    }

    // The daemons' side: one upgrader refusal per foreign connection, and nothing accepted.
    for (const [i, d] of targets.entries()) {
      const addr = d.status.listen[0].replace(/\/p2p\/.*$/, '')
      const expected = attemptsAt.get(addr) ?? 0
      const refused = upgradeRefusals(d) - refusedBefore[i]
      assert.ok(refused >= expected - 1 && refused <= expected, `${d.status.name} refused ${refused} of ${expected} foreign connections`)
      // Accepted handshakes: at most the member's own peers reconnecting (the coordinator dials nodes to place
      // chunks), never one per foreign attempt.
      const after = sample(await scrape(d), 'collective_connection_attempts_total{direction="inbound"}')
      assert.ok(after - accepted[i] <= 2, `${d.status.name} accepted ${after - accepted[i]} new inbound connections`)
      const peers = await call(d.socket, 'peers')
      assert.deepEqual(peers.filter((p: any) => foreignPeers.includes(p.peerId)), [])
    }

    // Nothing ran with a foreign peer: no identify, kad-dht or gossipsub line of any daemon names one, while the
    // same log names the coordinator's own nodes (identify did run with them: the log is not silent).
    for (const d of [collective.coordinator, ...collective.nodes]) {
      for (const id of foreignPeers) assert.deepEqual(linesMentioning(d, id), [], `${d.status.name} logged a foreign peer`)
    }
    assert.ok(linesMentioning(collective.coordinator, collective.nodes[0].status.peerId).some(l => /libp2p:identify/.test(l)),
      'positive control: the coordinator logs identify with its own node')

    // Nothing about the collective reached the foreign peer: no name, no other member's peer ID, no path.
    const seen = foreignLogs.join('\n')
    for (const secret of ['collective.local', 'alice', 'coordinator@', 'node-0', '/docs', '/collective/', collective.nodes[1].status.peerId]) {
      assert.ok(!seen.includes(secret), `the foreign peer saw "${secret}"`)
    }
    console.log(`# foreign refusal: ${attempts} smoldot connection attempts in ${RETRY_LOOP_MS / 1000} s (${foreignPeers.length} peer IDs), refused by the coordinator ${upgradeRefusals(targets[0]) - refusedBefore[0]} and the node ${upgradeRefusals(targets[1]) - refusedBefore[1]} times; ${operations} member operations succeeded meanwhile`)
  })
})

async function sleep (ms: number): Promise<void> { await new Promise(resolve => setTimeout(resolve, ms)) }
