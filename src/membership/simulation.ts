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
  /** subject → observer → virtual time it declared the subject dead */
  readonly deaths = new Map<string, Map<string, number>>()
  /** Deaths declared of members that had not crashed or left */
  falseDeaths = 0
  private readonly init: SimulationInit
  private readonly random: () => number
  private next = 0

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
      if (member.state !== 'dead' || member.id === id) return
      if (!this.crashed.has(member.id)) this.falseDeaths++
      let seen = this.deaths.get(member.id)
      if (seen == null) this.deaths.set(member.id, seen = new Map())
      if (!seen.has(id)) seen.set(id, this.clock.now())
    })
    this.network.attach(id, swim)
    this.members.set(id, swim)
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

  /** When the last live member declared `id` dead, or undefined while some have not */
  deadEverywhereAt (id: string): number | undefined {
    const seen = this.deaths.get(id)
    let last = -Infinity
    for (const s of this.live()) {
      const t = seen?.get(s.id)
      if (t == null) return undefined
      last = Math.max(last, t)
    }
    return last
  }

  /** Whether every live member sees `id` in `state` */
  agreed (id: string, state: 'alive' | 'dead'): boolean {
    return this.live().every(s => s.id === id || s.get(id)?.state === state)
  }

  async stop (): Promise<void> {
    for (const s of this.members.values()) await s.stop()
  }
}
