import { MemoryNetwork, VirtualClock, seededRandom } from './memory-network.js'
import { Swim } from './swim.js'
import type { SwimInit } from './swim.js'
import type { RecordSigner, RecordVerifier } from './types.js'
import type { ComponentLogger } from '@libp2p/interface'

export interface SimulationInit {
  members: number
  /** Everything random (timer phases, targets, latency, loss) derives from it: same seed, same run */
  seed: number
  lossRate?: number
  latencyMs?: [number, number]
  /** Protocol tunables for every member */
  swim?: Omit<SwimInit, 'self'>
  logger: ComponentLogger
}

/** FNV-1a over the signer's id and the payload: cheap enough for hundreds of members, still refuses forgeries */
function checksum (id: string, payload: Uint8Array): Uint8Array {
  let h = 0x811c9dc5
  const mix = (b: number): void => { h = Math.imul(h ^ b, 0x01000193) >>> 0 }
  for (let i = 0; i < id.length; i++) mix(id.charCodeAt(i) & 0xff)
  for (const b of payload) mix(b)
  return new Uint8Array([h >>> 24, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff])
}

export function checksumSigner (id: string): RecordSigner {
  return { sign: (payload) => checksum(id, payload) }
}

export const checksumVerifier: RecordVerifier = {
  verify: (id, payload, signature) => {
    const want = checksum(id, payload)
    return signature.length === want.length && want.every((b, i) => b === signature[i])
  }
}

function firstTime (map: Map<string, Map<string, number>>, subject: string, observer: string, now: number): void {
  let seen = map.get(subject)
  if (seen == null) map.set(subject, seen = new Map())
  if (!seen.has(observer)) seen.set(observer, now)
}

/**
 * Many Swim members in one process: the real protocol code over the in-memory network in virtual time, with
 * a cheap checksum standing in for Ed25519 (the unit tests cover real signatures). Records when each member
 * saw each other member die, for the scale test and the benchmark.
 */
export class Simulation {
  readonly clock = new VirtualClock()
  readonly network: MemoryNetwork
  readonly members = new Map<string, Swim>()
  readonly crashed = new Map<string, number>()
  /** member → virtual time it was added */
  readonly addedAt = new Map<string, number>()
  /** subject → observer → virtual time it declared the subject dead */
  readonly deaths = new Map<string, Map<string, number>>()
  /** subject → virtual time the first member suspected it */
  readonly firstSuspicion = new Map<string, number>()
  /** subject → observer → virtual time it first saw the subject alive */
  readonly sightings = new Map<string, Map<string, number>>()
  /** Deaths declared of members that had not crashed or left */
  falseDeaths = 0
  private readonly init: SimulationInit
  private readonly random: () => number
  private next = 0
  /** Sightings are only worth recording for members that join after the bootstrap */
  private bootstrapped = false

  constructor (init: SimulationInit) {
    this.init = init
    this.random = seededRandom(init.seed)
    this.network = new MemoryNetwork({ clock: this.clock, random: this.random, lossRate: init.lossRate, latencyMs: init.latencyMs })
  }

  /** Starts `init.members` members that already know each other, as after a converged anti-entropy */
  async start (): Promise<void> {
    for (let i = 0; i < this.init.members; i++) await this.add()
    const records = [...this.members.values()].map(s => s.records()[0])
    for (const swim of this.members.values()) await swim.mergeRecords('bootstrap', records.filter(r => r.id !== swim.id))
    this.bootstrapped = true
  }

  /** A new, started member that knows nobody yet */
  async add (): Promise<Swim> {
    const id = `m${String(this.next++).padStart(4, '0')}`
    const swim = new Swim({
      transport: this.network.transport(id),
      logger: this.init.logger,
      signer: checksumSigner(id),
      verifier: checksumVerifier,
      scheduler: this.clock,
      random: this.random
    }, { ...this.init.swim, self: { id, addrs: [`/memory/${id}`], meta: { name: id } } })
    swim.addEventListener('member:change', ({ detail: { member } }) => {
      if (member.id === id) return
      const now = this.clock.now()
      if (member.state === 'alive' && this.bootstrapped) firstTime(this.sightings, member.id, id, now)
      if (member.state === 'suspect' && !this.firstSuspicion.has(member.id)) this.firstSuspicion.set(member.id, now)
      if (member.state !== 'dead') return
      if (!this.crashed.has(member.id)) this.falseDeaths++
      firstTime(this.deaths, member.id, id, now)
    })
    this.network.attach(id, swim)
    this.members.set(id, swim)
    this.addedAt.set(id, this.clock.now())
    await swim.start()
    return swim
  }

  /** The process dies: no goodbye, no more messages */
  async crash (id: string): Promise<void> {
    this.crashed.set(id, this.clock.now())
    this.network.crash(id)
    await this.members.get(id)?.stop()
  }

  /** Members still running */
  live (): Swim[] {
    return [...this.members.values()].filter(s => !this.crashed.has(s.id))
  }

  /**
   * When the last live member (other than `id`) first saw `id` in this state, or undefined while some have not.
   * A death counts among the members that were there when it happened: a later joiner learns it from its seed.
   */
  everywhereAt (id: string, state: 'alive' | 'dead'): number | undefined {
    const seen = (state === 'dead' ? this.deaths : this.sightings).get(id)
    const crashedAt = this.crashed.get(id) ?? Infinity
    let last = -Infinity
    for (const s of this.live()) {
      if (s.id === id || (state === 'dead' && (this.addedAt.get(s.id) ?? 0) > crashedAt)) continue
      const t = seen?.get(s.id)
      if (t == null) return undefined
      last = Math.max(last, t)
    }
    return last
  }

  async stop (): Promise<void> {
    for (const s of this.members.values()) await s.stop()
  }
}

export interface ScenarioInit extends Omit<SimulationInit, 'logger'> {
  /** Members crashed one after another once the cluster settled (default 3) */
  crashes?: number
  /** Virtual time between crashes (default 2 s) */
  crashEveryMs?: number
  /** Virtual time before the first crash (default 5 s) */
  settleMs?: number
  /** Virtual time observed after the first crash (default 30 s) */
  observeMs?: number
}

export interface Detection {
  /** Crash to the last live member declaring it dead */
  fromCrashMs: number
  /** First suspicion (anywhere) to the last live member declaring it dead */
  fromSuspicionMs: number
  /** Crash to the first suspicion: the wait for a probe plus one probe period */
  toSuspicionMs: number
}

export interface ScenarioResult {
  seed: number
  members: number
  /** One per crash; undefined when some live member never declared it dead */
  detections: Array<Detection | undefined>
  falseDeaths: number
  /** Requests and replies per member per second over the observed window */
  messagesPerMemberPerSecond: number
  /** A member joined through one seed with the first crash: when every member saw it alive (undefined: never) */
  joinConvergenceMs?: number
  /** Wall-clock time the run took */
  wallMs: number
}

/**
 * The scale scenario of the test and the benchmark: settle, crash members one by one while a new member
 * joins through a single seed, and measure detection, false deaths, message rate and join convergence.
 */
export async function runScenario (init: ScenarioInit, logger: ComponentLogger): Promise<ScenarioResult> {
  const started = Date.now()
  const sim = new Simulation({ ...init, logger })
  const pick = seededRandom(init.seed ^ 0x5eed)
  await sim.start()
  await sim.clock.advance(init.settleMs ?? 5000)
  sim.network.resetStats()
  const from = sim.clock.now()
  const victims: string[] = []
  const crashes = init.crashes ?? 3
  const ids = [...sim.members.keys()]
  let joinedAt = 0
  let joiner = ''
  for (let i = 0; i < crashes; i++) {
    let victim: string
    do { victim = ids[Math.floor(pick() * ids.length)] } while (victims.includes(victim))
    victims.push(victim)
    await sim.crash(victim)
    if (i === 0) {
      const seeds = sim.live().map(s => s.id)
      const seed = seeds[Math.floor(pick() * seeds.length)]
      const newcomer = await sim.add()
      joiner = newcomer.id
      joinedAt = sim.clock.now()
      // Until its join completes the newcomer knows nobody: deaths count for it only from then on.
      sim.addedAt.set(joiner, Infinity)
      newcomer.join([seed]).then(() => { sim.addedAt.set(joiner, sim.clock.now()) }, () => {})
    }
    if (i < crashes - 1) await sim.clock.advance(init.crashEveryMs ?? 2000)
  }
  await sim.clock.advance((init.observeMs ?? 30_000) - (crashes - 1) * (init.crashEveryMs ?? 2000))
  const seconds = (sim.clock.now() - from) / 1000
  const detections = victims.map(v => {
    const crashedAt = sim.crashed.get(v) ?? 0
    const dead = sim.everywhereAt(v, 'dead')
    const suspected = sim.firstSuspicion.get(v)
    if (dead == null || suspected == null) return undefined
    return { fromCrashMs: dead - crashedAt, fromSuspicionMs: dead - suspected, toSuspicionMs: suspected - crashedAt }
  })
  const seen = sim.everywhereAt(joiner, 'alive')
  const result: ScenarioResult = {
    seed: init.seed,
    members: init.members,
    detections,
    falseDeaths: sim.falseDeaths,
    messagesPerMemberPerSecond: sim.network.stats.messages / (sim.live().length * seconds),
    joinConvergenceMs: seen == null ? undefined : seen - joinedAt,
    wallMs: Date.now() - started
  }
  await sim.stop()
  return result
}
