/**
 * The body of HashWorker's thread (src/storage/hash-worker.ts): hashes the buffer each message hands over and
 * hands the buffer back with the digest, so that the same few buffers go to and fro and no chunk-sized buffer is
 * allocated per chunk on either side.
 */
import { createHash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import type { HashReply, HashRequest } from './hash-worker.js'

if (parentPort == null) throw new Error('hash-thread.js runs only as a worker thread (see HashWorker)')
const port = parentPort

port.on('message', ({ id, buffer, length }: HashRequest) => {
  // a fresh 32-byte array: a Buffer from createHash may be a view of a shared 8 KiB pool, which posting would copy whole
  const digest = new Uint8Array(createHash('sha256').update(new Uint8Array(buffer, 0, length)).digest())
  const reply: HashReply = { id, digest, buffer }
  port.postMessage(reply, [buffer])
})
