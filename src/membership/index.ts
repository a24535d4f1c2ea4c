/**
 * Membership: who is in the collective, where to reach them, and who has failed.
 *
 * - `Swim` (swim.ts) is the protocol engine: SWIM failure detection (probe one member per period, k indirect
 *   probes on failure, suspect → dead after `suspicionTimeoutMs` unless the member refutes with a higher
 *   incarnation), piggybacked epidemic dissemination plus a short push gossip while updates are fresh, and
 *   anti-entropy (a paged digest exchange with one random member per `syncIntervalMs`). It is transport-agnostic:
 *   it sends through a `SwimTransport` and is handed inbound requests via `handle()` / `handleSync()`.
 * - `Libp2pMembership` (libp2p.ts) runs a Swim on a libp2p host: it registers `/collective/swim/1.0.0` and
 *   `/collective/sync/1.0.0`, refuses callers the `authorize` hook rejects, signs with the host's key and merges
 *   announced addresses into the peer store.
 * - `MemoryNetwork` and `VirtualClock` (memory-network.ts) run hundreds of Swims in one process in virtual time,
 *   with latency, loss, partitions and crashes, for tests and the benchmark.
 *
 * Records: `{ id, addrs, meta, state, incarnation, version, changedAt }`. Alive and left records are signed by the
 * subject's own key (verifiable from its peer ID); suspect and dead claims may come from any authorized member but
 * only the subject can overrule them (a signed alive record with a higher incarnation). Records are ordered by
 * incarnation, then state (alive < suspect < dead < left), then Lamport version: old news never resurrects a dead
 * member. Whether a record's subject holds a certificate is not something a record can prove; every connection to
 * it goes through the certificate handshake, so a record about an uncertified peer ID reaches nothing.
 *
 * Usage on a daemon:
 *
 * ```ts
 * const membership = new Libp2pMembership({ host, logger, privateKey, authorize: peer => identities.get(peer) != null }, {
 *   self: { id: host.peerId.toString(), addrs: host.getMultiaddrs().map(String), meta: { name, role, member } }
 * })
 * membership.swim.addEventListener('member:change', ({ detail: { member, previous } }) => { ... })
 * await membership.start()
 * await membership.swim.join(seedPeerIds)   // their addresses must be in the peer store
 * membership.swim.members()                 // MemberRecord[]; membership.swim.get(id)
 * await membership.swim.updateSelf({ meta }) // new incarnation, disseminated
 * await membership.swim.leave(); await membership.stop()
 * ```
 */
export { Swim } from './swim.js'
export type { SwimInit, SwimComponents } from './swim.js'
export { Libp2pMembership, Libp2pSwimTransport } from './libp2p.js'
export type { Libp2pMembershipComponents, Libp2pSwimTransportComponents } from './libp2p.js'
export { MemoryNetwork, VirtualClock, RunawayTimersError, seededRandom } from './memory-network.js'
export type { MemoryNetworkInit, NetworkStats } from './memory-network.js'
export { Simulation, runScenario, checksumSigner, checksumVerifier } from './simulation.js'
export type { SimulationInit, ScenarioInit, ScenarioResult, Detection } from './simulation.js'
export { privateKeySigner, peerIdVerifier } from './signing.js'
export * from './errors.js'
export * from './protocol.js'
export type * from './types.js'
