import '../../../src/polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MemoryNetwork, VirtualClock, seededRandom } from '../../../src/membership/memory-network.js'
import { privateKeySigner } from '../../../src/membership/signing.js'
import { Swim } from '../../../src/membership/swim.js'
import type { SwimInit } from '../../../src/membership/swim.js'
import type { MemberChangeEvent } from '../../../src/membership/types.js'
import type { PrivateKey } from '@libp2p/interface'

export const logger = defaultLogger()

export const TIMING = { probeIntervalMs: 1000, probeTimeoutMs: 500, suspicionTimeoutMs: 5000, syncIntervalMs: 10_000 }

export interface TestMember {
  id: string
  key: PrivateKey
  swim: Swim
  changes: Array<MemberChangeEvent & { at: number }>
}

/** A few members with real Ed25519 keys over the in-memory network, in virtual time */
export class Cluster {
  readonly clock = new VirtualClock()
  readonly random = seededRandom(42)
  readonly network = new MemoryNetwork({ clock: this.clock, random: this.random })
  readonly members: TestMember[] = []

  async add (init: Partial<SwimInit> = {}, start = true): Promise<TestMember> {
    const key = await generateKeyPair('Ed25519')
    const id = peerIdFromPrivateKey(key).toString()
    const swim = new Swim({ transport: this.network.transport(id), logger, signer: privateKeySigner(key), scheduler: this.clock, random: this.random },
      { ...TIMING, ...init, self: { id, addrs: ['/ip4/127.0.0.1/tcp/4001'], meta: { name: `m${this.members.length}` }, ...init.self } })
    const m: TestMember = { id, key, swim, changes: [] }
    swim.addEventListener('member:change', ({ detail }) => { m.changes.push({ ...detail, at: this.clock.now() }) })
    this.network.attach(id, swim)
    this.members.push(m)
    if (start) await swim.start()
    return m
  }

  /** n started members that joined through the first one */
  static async of (n: number, init: Partial<SwimInit> = {}): Promise<Cluster> {
    const c = new Cluster()
    for (let i = 0; i < n; i++) {
      const m = await c.add(init)
      if (i > 0) await c.run(m.swim.join([c.members[0].id]))
    }
    await c.clock.advance(3000)
    return c
  }

  /** Advances virtual time while `p` is pending; the promise only settles as timers fire */
  async run<T> (p: Promise<T>, maxMs = 60_000): Promise<T> {
    let outcome: { value: T } | { error: unknown } | undefined
    p.then(value => { outcome = { value } }, error => { outcome = { error } })
    for (let t = 0; outcome == null && t < maxMs; t += 10) await this.clock.advance(10)
    if (outcome == null) throw new Error(`still pending after ${maxMs} ms of virtual time`)
    if ('error' in outcome) throw outcome.error
    return outcome.value
  }

  async stop (): Promise<void> {
    for (const m of this.members) await m.swim.stop()
  }
}
