// A @nimiq/core client (rust-libp2p with gossipsub, compiled to WASM) as a process of its own: it runs its
// libp2p stack in a worker thread it never exposes, so ending the process is the only clean way to stop it.
// Usage: node nimiq-peer.js <seed multiaddr ending in /ws/p2p/<peer id>>. It dials the seed and logs (debug)
// to stdout; the test reads its peer ID from the log and kills it when done.
import * as Nimiq from '@nimiq/core'

const seed = process.argv[2]
if (seed == null) {
  console.error('usage: nimiq-peer <seed multiaddr>')
  process.exit(2)
}
const config = new Nimiq.ClientConfiguration()
config.seedNodes([seed])
config.network('DevAlbatross')
config.logLevel('debug')
// our test host listens on plain ws:// on 127.0.0.1
config.onlySecureWsConnections(false)
config.desiredPeerCount(1)
await Nimiq.Client.create(config.build())
console.log('nimiq client started')
