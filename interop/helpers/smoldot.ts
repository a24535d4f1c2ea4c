import { MessageChannel, Worker } from 'node:worker_threads'
import { start } from 'smoldot'
import type { Chain, Client } from 'smoldot'

// smoldot (Rust libp2p compiled to WASM) is a Substrate light client: it only dials, and only once a chain is
// added whose chain spec lists bootnodes. We give it a chain of no consequence whose checkpoint is just valid
// enough for smoldot to start networking: a finalized block #1 with a BABE pre-digest and seal, two BABE epochs
// and one GRANDPA authority. Nothing here is ever synced; we only want its libp2p stack to talk to ours.

/** Little-endian fixed-width integers, as SCALE encodes them */
function u32 (n: number): Uint8Array { return uintLe(n, 4) }
function u64 (n: number): Uint8Array { return uintLe(n, 8) }

function uintLe (value: number, bytes: number): Uint8Array {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt(value), true)
  return out.slice(0, bytes)
}

/** SCALE compact integer (only the one- and two-byte forms are needed here) */
function compact (n: number): Uint8Array {
  if (n < 64) return Uint8Array.of(n << 2)
  const v = (n << 2) | 1
  return Uint8Array.of(v & 0xff, v >> 8)
}

function filled (byte: number, length = 32): Uint8Array { return new Uint8Array(length).fill(byte) }

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}

function hex (bytes: Uint8Array): string { return '0x' + Buffer.from(bytes).toString('hex') }

const BABE = new TextEncoder().encode('BABE')

/** A chain spec whose only purpose is to make smoldot dial `bootNodes` (multiaddrs ending in /p2p/<peer id>) */
export function chainSpec (bootNodes: string[]): string {
  // BABE secondary-plain pre-digest (authority 0, slot 5) and a seal: smoldot checks a non-genesis checkpoint
  // header carries both, and that its slot lies in the current epoch.
  const preDigest = concat(Uint8Array.of(2), u32(0), u64(5))
  const header = concat(filled(1), compact(1), filled(2), filled(3), compact(2),
    Uint8Array.of(6), BABE, compact(preDigest.byteLength), preDigest,
    Uint8Array.of(5), BABE, compact(64), filled(10, 64))
  // index, start slot, duration, one authority (key, weight), randomness, c = (1, 4), allowed slots
  const epoch = (index: number, slot: number): Uint8Array =>
    concat(u64(index), u64(slot), u64(10), compact(1), filled(4), u64(1), filled(5), u64(1), u64(4), Uint8Array.of(1))
  const epochChanges = concat(compact(0), Uint8Array.of(0), compact(2),
    filled(6), u32(1), Uint8Array.of(1), epoch(0, 0),
    filled(7), u32(1), Uint8Array.of(1), epoch(1, 10))
  const grandpa = concat(compact(1), filled(8), u64(1), u64(0), compact(0), Uint8Array.of(0), compact(0), compact(0))
  return JSON.stringify({
    name: 'collective-interop',
    id: 'collective-interop',
    chainType: 'Live',
    bootNodes,
    telemetryEndpoints: null,
    properties: {},
    genesis: { stateRootHash: hex(filled(9)) },
    lightSyncState: {
      babeEpochChanges: hex(epochChanges),
      babeFinalizedBlockWeight: 1,
      finalizedBlockHeader: hex(header),
      grandpaAuthoritySet: hex(grandpa)
    }
  })
}

/**
 * One smoldot client in this process. Its debug log is kept: it is the foreign side's own account of what it
 * saw, which the tests search for handshakes and for anything of ours that leaked.
 */
export class SmoldotPeer {
  readonly logs: string[] = []
  private readonly client: Client
  private readonly worker: Worker
  private chain?: Chain

  private constructor () {
    this.worker = new Worker(new URL('./smoldot-worker.js', import.meta.url))
    const { port1, port2 } = new MessageChannel()
    this.worker.postMessage(port1, [port1])
    this.client = start({
      portToWorker: port2 as any,
      maxLogLevel: 4,
      logCallback: (level, target, message) => {
        // bounded: a 30 s retry loop logs a few lines per attempt
        if (this.logs.length < 50_000) this.logs.push(`${level} ${target} ${message}`)
      }
    })
  }

  static start (): SmoldotPeer { return new SmoldotPeer() }

  /** smoldot's own peer ID (a fresh key per client), as it reports it when it dials */
  get peerId (): string | undefined {
    for (const line of this.logs) {
      const m = /local_peer_id=(\w+)/.exec(line)
      if (m != null) return m[1]
    }
    return undefined
  }

  /** The Kademlia protocol smoldot speaks on this chain: derived from the genesis hash, not configurable */
  async kadProtocol (): Promise<string> {
    const chain = await this.client.addChain({ chainSpec: chainSpec([]) })
    try {
      chain.sendJsonRpc(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chainSpec_v1_genesisHash', params: [] }))
      const genesis: string = JSON.parse(await chain.nextJsonRpcResponse()).result
      return `/${genesis.slice(2)}/kad`
    } finally {
      chain.remove()
    }
  }

  /** Adds the chain, so smoldot starts dialing these bootnodes (and keeps redialing them on its own) */
  async dial (bootNodes: string[]): Promise<void> {
    this.hangUp()
    this.chain = await this.client.addChain({ chainSpec: chainSpec(bootNodes), disableJsonRpc: true })
  }

  /** Removes the chain, which closes its connections */
  hangUp (): void {
    this.chain?.remove()
    this.chain = undefined
  }

  count (pattern: RegExp): number { return this.logs.filter(l => pattern.test(l)).length }

  async stop (): Promise<void> {
    this.hangUp()
    await this.client.terminate().catch(() => {})
    await this.worker.terminate()
  }
}
