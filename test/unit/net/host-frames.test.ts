import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Uint8ArrayList } from 'uint8arraylist'
import { YAMUX_MAX_FRAME_BYTES, createOpenHost } from '../../../src/net/host.js'
import type { Host } from '../../../src/net/host.js'

const PROTOCOL = '/test/frames/1.0.0'

describe('the host stack moves large sends in bounded yamux frames', () => {
  const hosts: Host[] = []
  after(async () => { await Promise.all(hosts.map(async h => { await h.stop() })) })

  async function host (): Promise<Host> {
    const h = await createOpenHost({ privateKey: await generateKeyPair('Ed25519'), role: 'node' })
    await h.start()
    hosts.push(h)
    return h
  }

  it('delivers one 8 MiB send whole and in order, in messages no larger than a frame, both ways', async () => {
    const [a, b] = [await host(), await host()]
    const payload = randomBytes(8 * 1024 * 1024)
    const sizes: number[] = []
    const received = new Uint8ArrayList()
    const echoed = new Promise<void>((resolve, reject) => {
      void b.handle(PROTOCOL, stream => {
        stream.addEventListener('message', evt => {
          sizes.push(evt.data.byteLength)
          received.append(evt.data)
          if (received.byteLength === payload.byteLength) {
            // and back again, as one send: the other direction is bounded too
            stream.send(received.sublist())
            resolve()
          }
        })
        stream.addEventListener('close', evt => { if (evt.error != null) reject(evt.error) })
      })
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], PROTOCOL)
    const back = new Uint8ArrayList()
    const backSizes: number[] = []
    const returned = new Promise<void>(resolve => {
      stream.addEventListener('message', evt => {
        backSizes.push(evt.data.byteLength)
        back.append(evt.data)
        if (back.byteLength === payload.byteLength) resolve()
      })
    })
    // one send of the whole payload: far more than the 256 KiB a stream's window starts at, so the transfer also
    // proves that window updates keep coming
    stream.send(payload)
    await echoed
    await returned
    assert.ok(Buffer.from(received.subarray()).equals(payload), 'the bytes arrived whole and in order')
    assert.ok(Buffer.from(back.subarray()).equals(payload), 'and came back whole')
    assert.ok(Math.max(...sizes) <= YAMUX_MAX_FRAME_BYTES, `every message at most one frame (largest ${Math.max(...sizes)})`)
    assert.ok(Math.max(...backSizes) <= YAMUX_MAX_FRAME_BYTES)
    assert.ok(sizes.length >= payload.byteLength / YAMUX_MAX_FRAME_BYTES)
    await stream.close()
  })
})
