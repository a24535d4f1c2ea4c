// The polyfill must run before libp2p is loaded; static imports run in order, so it comes first.
import '../../src/polyfill.js'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { readPeerKey, readCertificateChain, TrustStore } from '../../src/identity/index.js'
import { COMPONENT_FILES } from '../../src/local/layout.js'
import { createHost } from '../../src/net/host.js'
import { PeerIdentities } from '../../src/net/peer-identities.js'
import type { Host } from '../../src/net/host.js'
import type { Stream } from '@libp2p/interface'

/**
 * One side of the baseline: a bare stream of our real libp2p stack (TCP, Noise bound to the federation root,
 * the certificate exchange, yamux) between two fresh processes, with none of the collective's protocols on top.
 * It is what a transfer through the collective is compared with.
 *
 *   baseline-peer.js listen DIR BYTES       prints {"event":"listening","addr":…}, then {"event":"received",…}
 *   baseline-peer.js send DIR ADDR FILE     sends FILE over one stream, prints {"event":"sent",…}
 *
 * DIR holds the component's peer.key, peer.crt (leaf + member CA) and root.crt. Progress and errors go to
 * stderr; stdout carries only JSON lines for the benchmark to read.
 */

const BENCH_PROTOCOL = '/bench/1.0.0'
/** The piece size the sender hands to the stream, as the issue asks */
const PIECE_BYTES = 256 * 1024

function emit (value: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

async function startHost (dir: string): Promise<Host> {
  const key = await readPeerKey(join(dir, COMPONENT_FILES.key))
  const certs = await readCertificateChain(join(dir, COMPONENT_FILES.cert))
  const [root] = await readCertificateChain(join(dir, COMPONENT_FILES.root))
  const trustStore = new TrustStore({ root })
  if (certs.length > 1) await trustStore.addMemberCA(certs[1])
  const chain = certs.map(c => new Uint8Array(c.rawData))
  // The same self-check the daemon makes, so a provisioning mistake fails here and not as a refused dial.
  await trustStore.verifyChain(chain, peerIdFromPrivateKey(key))
  const host = await createHost({ privateKey: key, role: 'node', chain, trustStore, identities: new PeerIdentities() })
  await host.start()
  return host
}

/** User + system CPU seconds of this process since `from` (the main thread and every other thread) */
function cpuSecondsSince (from: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(from)
  return (user + system) / 1e6
}

function byteLength (chunk: Uint8Array | { byteLength: number }): number {
  return chunk.byteLength
}

async function listen (dir: string, expected: number): Promise<void> {
  const host = await startHost(dir)
  const received = new Promise<{ seconds: number, cpuSeconds: number }>((resolve, reject) => {
    void host.handle(BENCH_PROTOCOL, async (stream: Stream) => {
      try {
        let bytes = 0
        let first = 0
        let cpuAtFirst = process.cpuUsage()
        // Count until every byte is in rather than waiting for the end of the stream: the confirmation must
        // not depend on how the remote's close travels.
        for await (const chunk of stream) {
          if (bytes === 0) {
            first = performance.now()
            cpuAtFirst = process.cpuUsage()
          }
          bytes += byteLength(chunk)
          if (bytes >= expected) break
        }
        const last = performance.now()
        const cpuSeconds = cpuSecondsSince(cpuAtFirst)
        if (bytes !== expected) throw new Error(`received ${bytes} bytes, expected ${expected}`)
        stream.send(new Uint8Array([1]))
        await stream.close()
        resolve({ seconds: (last - first) / 1000, cpuSeconds })
      } catch (err) {
        reject(err)
      }
    })
  })
  emit({ event: 'listening', addr: host.getMultiaddrs()[0].toString() })
  const { seconds, cpuSeconds } = await received
  emit({ event: 'received', bytes: expected, seconds, mbps: expected / 1e6 / seconds, cpuSeconds })
  // The sender hangs up once it has the confirmation; give it a moment so neither side sees a reset.
  await new Promise(resolve => setTimeout(resolve, 200))
  await host.stop()
}

async function send (dir: string, addr: string, file: string): Promise<void> {
  const { size } = await stat(file)
  const host = await startHost(dir)
  const dialStart = performance.now()
  const stream = await host.dialProtocol(multiaddr(addr), BENCH_PROTOCOL)
  const start = performance.now()
  const cpuAtStart = process.cpuUsage()
  const reader = stream[Symbol.asyncIterator]()
  // Read the confirmation concurrently: waiting for it only after the last send would be the same, but a
  // receiver that fails early must not leave us blocked on a drain that never comes.
  const confirmed = reader.next()
  let sent = 0
  for await (const piece of createReadStream(file, { highWaterMark: PIECE_BYTES }) as AsyncIterable<Buffer>) {
    if (!stream.send(piece)) await stream.onDrain()
    sent += piece.byteLength
  }
  await stream.close()
  const ack = await confirmed
  const seconds = (performance.now() - start) / 1000
  const cpuSeconds = cpuSecondsSince(cpuAtStart)
  if (ack.done === true || byteLength(ack.value) !== 1) throw new Error('the receiver did not confirm')
  emit({ event: 'sent', bytes: sent, seconds, mbps: sent / 1e6 / seconds, dialSeconds: (start - dialStart) / 1000, cpuSeconds })
  await reader.return?.()
  await host.stop()
}

async function main (argv: string[]): Promise<void> {
  const [role, ...rest] = argv
  if (role === 'listen' && rest.length === 2) {
    await listen(rest[0], Number(rest[1]))
  } else if (role === 'send' && rest.length === 3) {
    await send(rest[0], rest[1], rest[2])
  } else {
    throw new Error('usage: baseline-peer.js listen DIR BYTES | send DIR ADDR FILE')
  }
}

main(process.argv.slice(2)).then(() => {
  // kad-dht and gossipsub leave timers behind after stop; the work is done, so do not wait for them.
  process.exit(0)
}, err => {
  console.error(err)
  process.exit(1)
})
