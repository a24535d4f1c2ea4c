import { noise } from '@chainsafe/libp2p-noise'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { certifiedNoise } from './certified-noise.js'
import { inviteeNoise } from './invitee-noise.js'
import type { CertifiedNoiseInit } from './certified-noise.js'
import type { InviteeNoiseInit } from './invitee-noise.js'
import type { Role } from '../identity/index.js'
import type { PrivateKey, Libp2p } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'
import type { Identify } from '@libp2p/identify'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { GossipSub } from '@libp2p/gossipsub'

/** Kademlia on our own protocol ID, so our DHT never mixes with a public one */
export const KAD_PROTOCOL = '/collective/kad/1.0.0'

export interface HostServices {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  [key: string]: unknown
}

export type Host = Libp2p<HostServices>

export interface HostInit extends Omit<CertifiedNoiseInit, 'localRole'> {
  privateKey: PrivateKey
  role: Role
  /** Multiaddrs to listen on (default: an ephemeral TCP port on 127.0.0.1) */
  listen?: string[]
  /** How long a dial may take, handshake included (default 10 s) */
  dialTimeoutMs?: number
}

/**
 * Builds the libp2p host every daemon runs: TCP, Noise with the certificate exchange, yamux, identify, ping,
 * kad-dht on a private protocol ID and gossipsub. One factory, so that every role speaks the same stack.
 */
export async function createHost (init: HostInit): Promise<Host> {
  const { privateKey, role, listen, dialTimeoutMs, ...noiseInit } = init
  return buildHost({ privateKey, role, listen, dialTimeoutMs }, certifiedNoise({ ...noiseInit, localRole: role }))
}

export interface OpenHostInit {
  privateKey: PrivateKey
  /** Decides kad-dht client mode as in production (default 'node') */
  role?: Role
  /** Multiaddrs to listen on (default: an ephemeral TCP port on 127.0.0.1) */
  listen?: string[]
  dialTimeoutMs?: number
  /** Kademlia protocol ID (default KAD_PROTOCOL): a foreign stack may derive its own from its network */
  kadProtocol?: string
  /** Transports besides TCP, e.g. WebSockets for a foreign peer that only dials those */
  transports?: Libp2pOptions['transports']
}

/**
 * TEST ONLY. The production stack with plain Noise in place of the certificate layer: no prologue, no
 * certificate exchange, so any libp2p peer is accepted. It exists to prove that everything else we run (muxer,
 * identify, ping, kad-dht, gossipsub settings) is standard libp2p, which foreign implementations can speak. Never
 * used by a daemon.
 */
export async function createOpenHost (init: OpenHostInit): Promise<Host> {
  return buildHost({ ...init, role: init.role ?? 'node' }, noise())
}

export interface InviteeHostInit extends InviteeNoiseInit {
  /** The newcomer's freshly generated key, which the redemption certifies */
  privateKey: PrivateKey
  dialTimeoutMs?: number
}

/**
 * The host of a newcomer redeeming an invite: it dials the inviting coordinator and sends one request. It listens
 * nowhere and runs no service (identify, kad-dht, gossipsub, ping): an uncertified connection carries nothing else.
 */
export async function createInviteeHost (init: InviteeHostInit): Promise<Libp2p> {
  const { privateKey, dialTimeoutMs, ...noiseInit } = init
  return await createLibp2p({
    privateKey,
    start: false,
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [inviteeNoise(noiseInit)],
    streamMuxers: [yamux()],
    connectionManager: { dialTimeout: dialTimeoutMs ?? 10_000 },
    // Its ping would be refused by the coordinator's invite-only muxer; the connection lives seconds anyway.
    connectionMonitor: { enabled: false }
  })
}

type BuildInit = OpenHostInit & { role: Role }

/**
 * The largest yamux data frame: four Noise messages of payload (65519 bytes each) less yamux's 12-byte header,
 * so frames fill whole Noise messages. yamux 8 ignores its own maxMessageSize and sends a frame as large as the
 * send window (up to 16 MiB); our patch (patches/@libp2p+yamux+*.patch) bounds frames by it again. With whole
 * chunks in one frame, the sender encrypted 4 MiB at once and the receiver held every decrypted message until
 * the frame's last byte, long enough for V8 to promote them to its old generation. Measured on 2 GB gets: 1 full
 * collection instead of 6 and a peak RSS of 187 MB instead of 210; 500 MB puts and gets 4-7% faster. 64 KiB frames
 * did as well for memory but made puts ~5% slower.
 */
export const YAMUX_MAX_FRAME_BYTES = 4 * 65_519 - 12

type EncrypterFactory = NonNullable<Libp2pOptions['connectionEncrypters']>[number]

/** The one place the stack is assembled, so the open test configuration cannot drift from production's */
async function buildHost (init: BuildInit, encrypter: EncrypterFactory): Promise<Host> {
  return createLibp2p({
    privateKey: init.privateKey,
    start: false,
    addresses: { listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(), ...(init.transports ?? [])],
    connectionEncrypters: [encrypter],
    streamMuxers: [yamux({ maxMessageSize: YAMUX_MAX_FRAME_BYTES })],
    connectionManager: {
      dialTimeout: init.dialTimeoutMs ?? 10_000,
      inboundUpgradeTimeout: 15_000,
      // libp2p's default (5 new inbound connections per second per IP) throttles a household whose peers share one
      // address, and SWIM's first probes open a burst of connections at once; refused peers fail the handshake
      // anyway, so this only needs to stop a flood.
      inboundConnectionThreshold: 50
    },
    services: {
      identify: identify(),
      // kad-dht checks its routing table with this service too; one stream per peer would make them queue.
      ping: ping({ maxOutboundStreams: 4 }),
      dht: kadDHT({
        protocol: init.kadProtocol ?? KAD_PROTOCOL,
        // Members of a collective often live on private networks; their addresses are the ones that matter.
        peerInfoMapper: passthroughMapper,
        clientMode: init.role === 'client'
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false
      })
    }
  }) as unknown as Promise<Host>
}
