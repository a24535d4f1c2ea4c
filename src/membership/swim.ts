import { TypedEventEmitter } from '@libp2p/interface'
import { MemberStatus, SwimKind } from '../gen/swim.js'
import { Dissemination } from './dissemination.js'
import { InvalidRecordError, InvalidRequestError, JoinError, NotRunningError, RemoteMembershipError } from './errors.js'
import { MAX_PIGGYBACK, SYNC_PROTOCOL_LIMITS } from './protocol.js'
import { RequestTimeoutError } from '../net/errors.js'
import { compareRecords, digestEntry, isLive, metaEntries, ordered, sameSignedBody, signingPayload, stateOf, toMemberRecord, validateRecord } from './record.js'
import { peerIdVerifier } from './signing.js'
import { answerSync, syncWith } from './sync.js'
import { combineSignals } from '../util/signals.js'
import type { MemberUpdate, SwimRequest, SwimResponse } from '../gen/swim.js'
import type { SyncRequest, SyncResponse } from '../gen/sync.js'
import type { SyncStore } from './sync.js'
import type { DigestEntry, MemberInfo, MemberRecord, MemberState, RecordSigner, RecordVerifier, Scheduler, SwimEvents, SwimHandler, SwimTransport } from './types.js'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'

export interface SwimInit {
  /** This member: its peer ID, the addresses others should dial and descriptive meta (name, role, member ...) */
  self: MemberInfo
  /** Protocol period: one member is probed per period (default 1000 ms) */
  probeIntervalMs?: number
  /** How long a direct ping may take before indirect probes start (default 500 ms; must be below the period) */
  probeTimeoutMs?: number
  /** Members asked to probe an unresponsive target on our behalf (default 3) */
  indirectProbes?: number
  /** How long a member stays suspect before it is declared dead, unless it refutes (default 5000 ms) */
  suspicionTimeoutMs?: number
  /** How long dead and left records are kept, so that old news cannot bring them back (default 24 h) */
  deadRetentionMs?: number
  /** Updates carried by one message (default 8, at most 12) */
  maxPiggyback?: number
  /** Each update is sent retransmitMult * ceil(log10(n+1)) times by every member that learns it (default 4) */
  retransmitMult?: number
  /** While updates are queued, they are pushed to `gossipFanout` random members this often (default 200 ms) */
  gossipIntervalMs?: number
  /** Members pushed to per gossip round (default 3) */
  gossipFanout?: number
  /** Anti-entropy period: a full digest exchange with one random member (default 10 s) */
  syncIntervalMs?: number
  /** How long one sync exchange (a digest page or a push) may take (default 10 s, at most the protocol's 15 s) */
  syncTimeoutMs?: number
}

export interface SwimComponents {
  transport: SwimTransport
  logger: ComponentLogger
  /** Signs this member's own records; it must hold the key of `init.self.id` */
  signer: RecordSigner
  /** Checks subjects' signatures (default: Ed25519, the public key taken from the subject's peer ID) */
  verifier?: RecordVerifier
  /** Timers and time (default: the real ones); the in-memory network passes a virtual clock */
  scheduler?: Scheduler
  /** Overrides scheduler.now() */
  clock?: { now: () => number }
  /** Source of randomness for target choice and shuffles (default Math.random; seeded in tests) */
  random?: () => number
}

interface Entry {
  update: MemberUpdate
  changedAt: number
  suspicionTimer?: unknown
}

/** Share of anti-entropy rounds spent on a member believed dead (within deadRetentionMs) */
const DEAD_SYNC_SHARE = 0.25

const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref?.()
    return t
  },
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}

/**
 * SWIM failure detection and membership dissemination (Das, Gupta, Motivala 2002), with suspicion and
 * incarnation numbers, piggybacked epidemic updates, a small push gossip while updates are fresh, and periodic
 * anti-entropy. Every member talks to a bounded number of others per period, whatever the member count.
 */
export class Swim extends TypedEventEmitter<SwimEvents> implements SwimHandler {
  private readonly components: SwimComponents
  private readonly log: Logger
  private readonly scheduler: Scheduler
  private readonly verifier: RecordVerifier
  private readonly random: () => number
  private readonly probeIntervalMs: number
  private readonly probeTimeoutMs: number
  private readonly indirectProbes: number
  private readonly suspicionTimeoutMs: number
  private readonly deadRetentionMs: number
  private readonly maxPiggyback: number
  private readonly gossipIntervalMs: number
  private readonly gossipFanout: number
  private readonly syncIntervalMs: number
  private readonly syncTimeoutMs: number
  private readonly dissemination: Dissemination
  private readonly table = new Map<string, Entry>()
  private self: Entry
  private lamport = 0
  private running = false
  private left = false
  private readonly timers = new Set<unknown>()
  private probeOrder: string[] = []
  private probeIndex = 0
  private syncing = false
  private gossipTimer?: unknown
  private lastGossipAt = -Infinity
  /** Live members other than self, kept in step by adopt() so that every message need not count them */
  private liveOthers = 0
  private lastGcAt: number
  /** Caches rebuilt only when a member is added or removed, not on every state change */
  private sortedIds?: string[]
  private liveIds?: string[]

  constructor (components: SwimComponents, init: SwimInit) {
    super()
    this.components = components
    this.log = components.logger.forComponent('collective:membership:swim')
    this.scheduler = components.scheduler ?? realScheduler
    this.verifier = components.verifier ?? peerIdVerifier()
    this.random = components.random ?? Math.random
    this.probeIntervalMs = init.probeIntervalMs ?? 1000
    this.probeTimeoutMs = Math.min(init.probeTimeoutMs ?? 500, this.probeIntervalMs)
    this.indirectProbes = init.indirectProbes ?? 3
    this.suspicionTimeoutMs = init.suspicionTimeoutMs ?? 5000
    this.deadRetentionMs = init.deadRetentionMs ?? 24 * 60 * 60 * 1000
    this.maxPiggyback = Math.min(init.maxPiggyback ?? 8, MAX_PIGGYBACK)
    this.gossipIntervalMs = init.gossipIntervalMs ?? 200
    this.gossipFanout = init.gossipFanout ?? 3
    this.syncIntervalMs = init.syncIntervalMs ?? 10_000
    this.syncTimeoutMs = Math.min(init.syncTimeoutMs ?? 10_000, SYNC_PROTOCOL_LIMITS.timeoutMs)
    this.dissemination = new Dissemination(init.retransmitMult ?? 4)
    const { id, addrs, meta } = init.self
    // Signed in start(): signing may be asynchronous.
    this.self = {
      update: { id, incarnation: 0, status: MemberStatus.ALIVE, addrs: [...addrs], meta: metaEntries(meta), signature: new Uint8Array(0), version: 0 },
      changedAt: this.now()
    }
    this.lastGcAt = this.now()
  }

  get id (): string {
    return this.self.update.id
  }

  private now (): number {
    return this.components.clock?.now() ?? this.scheduler.now()
  }

  async start (): Promise<void> {
    if (this.running) return
    // Back after a goodbye: our own left record would otherwise outrank the new alive one.
    await this.resignSelf(this.self.update.incarnation + (this.left ? 1 : 0))
    this.left = false
    this.running = true
    // Random phases keep members from probing in lockstep.
    this.every(this.probeIntervalMs, () => { void this.probeRound() })
    this.every(this.syncIntervalMs, () => { void this.syncRound() })
  }

  async stop (): Promise<void> {
    this.running = false
    for (const t of this.timers) this.scheduler.clearTimeout(t)
    this.timers.clear()
    for (const e of this.table.values()) e.suspicionTimer = undefined
    this.gossipTimer = undefined
    this.dissemination.clear()
  }

  private every (ms: number, fn: () => void): void {
    const schedule = (delay: number): void => {
      const t = this.scheduler.setTimeout(() => {
        this.timers.delete(t)
        if (!this.running) return
        schedule(ms)
        fn()
      }, delay)
      this.timers.add(t)
    }
    schedule(Math.floor(this.random() * ms))
  }

  private after (ms: number, fn: () => void): unknown {
    const t = this.scheduler.setTimeout(() => { this.timers.delete(t); if (this.running) fn() }, ms)
    this.timers.add(t)
    return t
  }

  private cancel (t: unknown): void {
    if (t == null) return
    this.scheduler.clearTimeout(t)
    this.timers.delete(t)
  }

  /**
   * Runs an anti-entropy round with every seed in turn (pulling and pushing full state), then announces this
   * member by gossip. A seed that does not answer is tried again, up to `attempts` times (default 3), since one
   * lost exchange should not leave a member alone. Resolves with how many seeds answered; JoinError when none did.
   */
  async join (seeds: string[], options: AbortOptions & { attempts?: number } = {}): Promise<number> {
    if (!this.running) throw new NotRunningError('start() the member before joining')
    const others = seeds.filter(s => s !== this.id)
    const failures: string[] = []
    let joined = 0
    for (const seed of others) {
      for (let attempt = 1; attempt <= (options.attempts ?? 3); attempt++) {
        try {
          await this.syncWith(seed, options)
          joined++
          break
        } catch (err: any) {
          options.signal?.throwIfAborted()
          failures.push(`${seed} (attempt ${attempt}): ${err.name}: ${err.message}`)
        }
      }
    }
    if (joined === 0 && others.length > 0) throw new JoinError(`no seed answered: ${failures.join('; ')}`)
    this.spread(this.self.update)
    return joined
  }

  /** Every member known, self included, sorted by id */
  members (): MemberRecord[] {
    return [this.self, ...this.table.values()]
      .map(e => toMemberRecord(e.update, e.changedAt))
      .sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  }

  get (id: string): MemberRecord | undefined {
    const e = id === this.id ? this.self : this.table.get(id)
    return e == null ? undefined : toMemberRecord(e.update, e.changedAt)
  }

  /** Announces new addresses or meta under a new incarnation */
  async updateSelf (change: { addrs?: string[], meta?: Record<string, string> }): Promise<void> {
    await this.resignSelf(this.self.update.incarnation + 1, {
      ...(change.addrs != null ? { addrs: [...change.addrs] } : {}),
      ...(change.meta != null ? { meta: metaEntries(change.meta) } : {})
    })
  }

  /** Says goodbye: a signed `left` record, pushed to a few members before stopping */
  async leave (options: AbortOptions = {}): Promise<void> {
    if (!this.running) return
    const previous = stateOf(this.self.update.status)
    const u = { ...this.self.update, status: MemberStatus.LEFT, version: ++this.lamport }
    u.signature = new Uint8Array(await this.components.signer.sign(signingPayload(u)))
    this.self = { update: u, changedAt: this.now() }
    this.left = true
    this.emitChange(u, previous)
    this.dissemination.clear()
    const peers = this.pick(this.gossipFanout + 1, () => true)
    await Promise.allSettled(peers.map(async p => {
      await this.send(p, { kind: SwimKind.PING, target: '', timeoutMs: 0, lamport: this.lamport, updates: [u] }, this.probeTimeoutMs, options)
    }))
    await this.stop()
  }

  /** What this member holds, for anti-entropy */
  digest (): DigestEntry[] {
    return this.records().map(digestEntry)
  }

  /** Every record held, self included, sorted by id: what anti-entropy sends */
  records (): MemberUpdate[] {
    this.sortedIds ??= [this.id, ...this.table.keys()].sort()
    return this.sortedIds.map(id => id === this.id ? this.self.update : this.table.get(id)!.update)
  }

  /**
   * Validates, verifies and applies records from `from` (a sync peer); returns how many changed our view.
   * They are not gossiped on: the peer already had them and repairs others by anti-entropy itself, and a joiner
   * would otherwise re-broadcast the whole member list.
   */
  async mergeRecords (from: string, records: MemberUpdate[]): Promise<number> {
    return await this.applyAll(from, records, false)
  }

  private async applyAll (from: string, records: MemberUpdate[], disseminate: boolean): Promise<number> {
    let changed = 0
    for (const r of records) {
      if (await this.apply(from, r, disseminate)) changed++
    }
    return changed
  }

  /** One anti-entropy round with `peer` */
  async syncWith (peer: string, options: AbortOptions = {}): Promise<{ received: number, pushed: number }> {
    return await syncWith(this.syncStore, peer, async (req, opts) => await this.timed(this.syncTimeoutMs, opts, async (signal) => {
      const res = await this.race(this.components.transport.sync(peer, req, { signal }), { signal })
      if (res.error !== '') throw new RemoteMembershipError(res.error, res.message)
      this.observe(res.lamport)
      return res
    }), () => this.lamport, options)
  }

  async handle (from: string, req: SwimRequest, options: AbortOptions = {}): Promise<SwimResponse> {
    if (!this.running) return this.refusal(new NotRunningError('this member is not running'))
    if (req.updates.length > MAX_PIGGYBACK) return this.refusal(new InvalidRequestError(`at most ${MAX_PIGGYBACK} updates per message`))
    this.observe(req.lamport)
    await this.applyAll(from, req.updates, true)
    let ack = true
    if (req.kind === SwimKind.PING_REQ) {
      if (req.target === '' || req.target === from) return this.refusal(new InvalidRequestError('ping-req needs a target other than the caller'))
      const timeoutMs = Math.min(req.timeoutMs > 0 ? req.timeoutMs : this.probeTimeoutMs, this.probeIntervalMs)
      ack = req.target === this.id || await this.ping(req.target, timeoutMs, options)
    }
    return { ack, lamport: this.lamport, updates: this.withNewsFor(from, this.piggyback()), error: '', message: '' }
  }

  /**
   * A caller we hold for suspect or dead is evidently running: it is told what we believe at once, so that it
   * refutes now instead of whenever the news happens to reach it (by then its dissemination may be spent, and a
   * live member would stay dead everywhere until anti-entropy finds it).
   */
  private withNewsFor (caller: string, updates: MemberUpdate[]): MemberUpdate[] {
    const held = this.table.get(caller)?.update
    if (held == null || !['suspect', 'dead'].includes(stateOf(held.status))) return updates
    return [held, ...updates.filter(u => u.id !== caller)].slice(0, this.maxPiggyback)
  }

  async handleSync (from: string, req: SyncRequest): Promise<SyncResponse> {
    if (!this.running) return { records: [], want: [], coveredTo: '', lamport: this.lamport, error: 'NotRunningError', message: 'this member is not running' }
    this.observe(req.lamport)
    try {
      return await answerSync(this.syncStore, from, req, this.lamport)
    } catch (err: any) {
      this.log('sync from %s refused - %s', from, err.message)
      return { records: [], want: [], coveredTo: '', lamport: this.lamport, error: err.name, message: err.message }
    }
  }

  private readonly syncStore: SyncStore = {
    sorted: () => this.records(),
    merge: async (from, records) => await this.mergeRecords(from, records)
  }

  private refusal (err: Error): SwimResponse {
    return { ack: false, lamport: this.lamport, updates: [], error: err.name, message: err.message }
  }

  /** Lamport receive rule */
  private observe (remote: number): void {
    this.lamport = Math.max(this.lamport, remote) + 1
  }

  private piggyback (): MemberUpdate[] {
    return this.dissemination.select(this.maxPiggyback, this.liveOthers + 1)
  }

  // ---- failure detection

  private nextTarget (): string | undefined {
    for (let tries = 0; tries <= this.probeOrder.length; tries++) {
      if (this.probeIndex >= this.probeOrder.length) {
        this.probeOrder = this.shuffle([...this.table.values()].filter(e => isLive(stateOf(e.update.status))).map(e => e.update.id))
        this.probeIndex = 0
        if (this.probeOrder.length === 0) return undefined
      }
      const id = this.probeOrder[this.probeIndex++]
      const e = this.table.get(id)
      if (e != null && isLive(stateOf(e.update.status))) return id
    }
    return undefined
  }

  private async probeRound (): Promise<void> {
    this.collectGarbage()
    const target = this.nextTarget()
    if (target == null) return
    const incarnation = this.table.get(target)?.update.incarnation
    if (await this.ping(target, this.probeTimeoutMs)) return
    if (!this.running) return
    // No ack in time: ask k others to probe it, and try once more ourselves (a lost packet is the usual cause).
    const remaining = Math.max(1, this.probeIntervalMs - this.probeTimeoutMs)
    const relays = this.pick(this.indirectProbes, id => id !== target && stateOf(this.table.get(id)!.update.status) === 'alive')
    const attempts = [
      this.ping(target, remaining),
      ...relays.map(async relay => {
        try {
          const res = await this.send(relay, { kind: SwimKind.PING_REQ, target, timeoutMs: Math.floor(remaining * 0.8), lamport: this.lamport, updates: this.piggyback() }, remaining)
          return res.ack
        } catch {
          return false
        }
      })
    ]
    const acked = await new Promise<boolean>(resolve => {
      let pending = attempts.length
      for (const a of attempts) {
        void a.then(ok => { if (ok) resolve(true); else if (--pending === 0) resolve(false) })
      }
    })
    if (acked || !this.running) return
    const e = this.table.get(target)
    if (e == null || e.update.incarnation !== incarnation || stateOf(e.update.status) !== 'alive') return
    this.log('%s did not answer direct or indirect probes - suspect', target)
    this.adopt({ ...e.update, status: MemberStatus.SUSPECT, version: ++this.lamport })
  }

  private async ping (target: string, timeoutMs: number, options: AbortOptions = {}): Promise<boolean> {
    try {
      const res = await this.send(target, { kind: SwimKind.PING, target: '', timeoutMs: 0, lamport: this.lamport, updates: this.piggyback() }, timeoutMs, options)
      return res.ack
    } catch {
      return false
    }
  }

  /** One swim exchange, bounded by our own timer */
  private async send (to: string, req: SwimRequest, timeoutMs: number, options: AbortOptions = {}): Promise<SwimResponse> {
    return await this.timed(timeoutMs, options, async (signal) => {
      const res = await this.race(this.components.transport.probe(to, req, { signal }), { signal })
      if (res.error !== '') throw new RemoteMembershipError(res.error, res.message)
      this.observe(res.lamport)
      await this.applyAll(to, res.updates, true)
      return res
    })
  }

  /** Runs `fn` under a timeout on our scheduler, so that virtual time governs timeouts in the harness too */
  private async timed<T> (timeoutMs: number, options: AbortOptions, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController()
    const signal = combineSignals(controller.signal, options.signal)
    const timer = this.scheduler.setTimeout(() => { controller.abort(new RequestTimeoutError(`no answer within ${timeoutMs} ms`)) }, timeoutMs)
    try {
      return await fn(signal)
    } finally {
      this.scheduler.clearTimeout(timer)
      signal.clear()
    }
  }

  /** Settles with the signal's reason when it aborts, even if the transport does not listen to it */
  private async race<T> (p: Promise<T>, options: AbortOptions): Promise<T> {
    const signal = options.signal
    if (signal == null) return await p
    signal.throwIfAborted()
    let onAbort!: () => void
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([p, aborted])
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  private onSuspicionTimeout (id: string, incarnation: number): void {
    const e = this.table.get(id)
    if (e == null || stateOf(e.update.status) !== 'suspect' || e.update.incarnation !== incarnation) return
    this.log('%s stayed suspect for %d ms - dead', id, this.suspicionTimeoutMs)
    this.adopt({ ...e.update, status: MemberStatus.DEAD, version: ++this.lamport })
  }

  /** At most once a minute: a scan of the whole table per probe would cost O(n) per member per period */
  private collectGarbage (): void {
    if (this.now() - this.lastGcAt < Math.min(60_000, this.deadRetentionMs)) return
    this.lastGcAt = this.now()
    const horizon = this.now() - this.deadRetentionMs
    for (const [id, e] of this.table) {
      if (!isLive(stateOf(e.update.status)) && e.changedAt < horizon) {
        this.table.delete(id)
        this.sortedIds = undefined
      }
    }
  }

  // ---- dissemination

  /** Queues an update and makes sure a gossip round will carry it */
  private spread (u: MemberUpdate): void {
    this.dissemination.enqueue(u)
    if (!this.running || this.gossipTimer != null) return
    // Fresh news leaves at once when the last round is long past; otherwise with the next round.
    const wait = Math.max(0, this.lastGossipAt + this.gossipIntervalMs - this.now())
    this.gossipTimer = this.after(wait, () => {
      this.gossipTimer = undefined
      this.gossipRound()
    })
  }

  /**
   * Pushes fresh updates to a few random members: each member forwards each update in about one round, so a
   * change reaches everyone within a few network round trips at a cost per member that does not grow with the
   * member count. The rest of an update's retransmissions ride on probes, which are sent anyway.
   */
  private gossipRound (): void {
    this.lastGossipAt = this.now()
    if (!this.dissemination.hasFresh(this.gossipFanout)) return
    for (const peer of this.pick(this.gossipFanout, () => true)) {
      const updates = this.dissemination.select(this.maxPiggyback, this.liveOthers + 1, this.gossipFanout)
      if (updates.length === 0) break
      void this.send(peer, { kind: SwimKind.PING, target: '', timeoutMs: 0, lamport: this.lamport, updates }, this.probeTimeoutMs).catch(() => {})
    }
    if (this.dissemination.hasFresh(this.gossipFanout) && this.gossipTimer == null) {
      this.gossipTimer = this.after(this.gossipIntervalMs, () => {
        this.gossipTimer = undefined
        this.gossipRound()
      })
    }
  }

  private async syncRound (): Promise<void> {
    if (this.syncing) return
    // Now and then a member we think dead: after a partition heals, each side holds the other dead and would
    // never talk to it again; one digest exchange tells the survivors so and they refute.
    const [peer] = (this.random() < DEAD_SYNC_SHARE ? this.pickDead() : undefined) ?? this.pick(1, () => true)
    if (peer == null) return
    this.syncing = true
    try {
      await this.syncWith(peer)
    } catch (err: any) {
      this.log('anti-entropy with %s failed - %s', peer, err.message)
    } finally {
      this.syncing = false
    }
  }

  private pickDead (): [string] | undefined {
    const dead = [...this.table.values()].filter(e => e.update.status === MemberStatus.DEAD)
    return dead.length === 0 ? undefined : [dead[Math.floor(this.random() * dead.length)].update.id]
  }

  /** Up to n distinct random live members (self excluded) that pass `filter` */
  private pick (n: number, filter: (id: string) => boolean): string[] {
    const live = this.liveIds ??= [...this.table.values()].filter(e => isLive(stateOf(e.update.status))).map(e => e.update.id)
    const out = new Set<string>()
    // Rejection sampling: n is tiny next to the member count, so this is O(n) rather than a copy of the table.
    for (let tries = 0; out.size < n && tries < 4 * n + 16; tries++) {
      const id = live[Math.floor(this.random() * live.length)]
      if (id != null && filter(id)) out.add(id)
    }
    if (out.size < n && live.length <= 4 * n + 16) {
      for (const id of live) if (out.size < n && filter(id)) out.add(id)
    }
    return [...out]
  }

  private shuffle<T> (a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1))
      ;[a[i], a[j]] = [a[j], a[i]]
    }
    return a
  }

  // ---- state

  /** Validates, verifies and applies one record; true when it changed our view */
  private async apply (from: string, u: MemberUpdate, disseminate: boolean): Promise<boolean> {
    try {
      validateRecord(u)
    } catch (err: any) {
      this.log('dropped a record from %s - %s', from, err.message)
      return false
    }
    if (u.id === this.id) return await this.onOwnRecord(u)
    const current = this.table.get(u.id)
    if (current != null && compareRecords(ordered(u), ordered(current.update)) <= 0) return false
    const known = current != null && sameSignedBody(current.update, u)
    if (!known && !(await this.verifier.verify(u.id, signingPayload(u), u.signature))) {
      this.log.error('refused a record of %s from %s - %s', u.id, from, new InvalidRecordError('signature does not verify').message)
      return false
    }
    // Another record may have landed while the signature was checked.
    const now = this.table.get(u.id)
    if (now != null && compareRecords(ordered(u), ordered(now.update)) <= 0) return false
    this.lamport = Math.max(this.lamport, u.version)
    this.adopt(u, disseminate)
    return true
  }

  /** Others' news about us: anything at or above our incarnation that is not our own record gets refuted */
  private async onOwnRecord (u: MemberUpdate): Promise<boolean> {
    if (this.left || !this.running) return false
    const mine = this.self.update
    if (sameSignedBody(mine, u) && u.status === mine.status) return false
    if (u.incarnation < mine.incarnation) return false
    this.log('refuting %s about ourselves at incarnation %d', stateOf(u.status), u.incarnation)
    await this.resignSelf(Math.max(mine.incarnation, u.incarnation) + 1)
    return true
  }

  /** Signs a new alive record; the current one stays untouched (it may be on its way to others) until then */
  private async resignSelf (incarnation: number, change: Partial<Pick<MemberUpdate, 'addrs' | 'meta'>> = {}): Promise<void> {
    const previous = this.self.update.status
    const u: MemberUpdate = { ...this.self.update, ...change, incarnation, status: MemberStatus.ALIVE, version: ++this.lamport }
    u.signature = new Uint8Array(await this.components.signer.sign(signingPayload(u)))
    // Concurrent refutations: the highest incarnation wins.
    if (u.incarnation < this.self.update.incarnation) return
    this.self = { update: u, changedAt: this.now() }
    this.spread(u)
    this.emitChange(u, stateOf(previous))
  }

  /** Stores a record that beat ours, keeps the suspicion timer in step with it and spreads it */
  private adopt (u: MemberUpdate, disseminate = true): void {
    const current = this.table.get(u.id)
    const entry: Entry = { update: u, changedAt: this.now() }
    const state = stateOf(u.status)
    if (state === 'suspect' && current?.suspicionTimer != null && current.update.incarnation === u.incarnation) {
      entry.suspicionTimer = current.suspicionTimer
    } else {
      this.cancel(current?.suspicionTimer)
      if (state === 'suspect') entry.suspicionTimer = this.after(this.suspicionTimeoutMs, () => { this.onSuspicionTimeout(u.id, u.incarnation) })
    }
    this.table.set(u.id, entry)
    const delta = (isLive(state) ? 1 : 0) - (current != null && isLive(stateOf(current.update.status)) ? 1 : 0)
    this.liveOthers += delta
    if (delta !== 0) this.liveIds = undefined
    if (current == null) this.sortedIds = undefined
    if (current == null && isLive(state)) {
      // New members join the probe order at a random place, as in the SWIM paper.
      this.probeOrder.splice(this.probeIndex + Math.floor(this.random() * (this.probeOrder.length - this.probeIndex + 1)), 0, u.id)
    }
    if (disseminate) this.spread(u)
    this.emitChange(u, current == null ? undefined : stateOf(current.update.status))
  }

  private emitChange (u: MemberUpdate, previous: MemberState | undefined): void {
    this.safeDispatchEvent('member:change', { detail: { member: toMemberRecord(u, this.now()), previous } })
  }
}
