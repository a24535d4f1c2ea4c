import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { NodeReport } from '../../../src/gen/node.js'
import { ChunkResponse, ChunkStatus } from '../../../src/gen/chunk.js'

// protons-runtime 7 encodes BigInt uint64 values in [2^31, 2^32) as garbage; our protocols carry byte counts as
// JS numbers ([jstype = JS_NUMBER]) for that reason. These values are ordinary disk sizes (2-4 GiB).
const SIZES = [0, 1, 2 ** 31 - 1, 2 ** 31, 3_000_000_000, 2 ** 32 - 1, 2 ** 32, 80_000_000_000, Number.MAX_SAFE_INTEGER]

describe('wire codecs carry byte counts of every size', () => {
  it('NodeReport', () => {
    for (const v of SIZES) {
      const back = NodeReport.decode(NodeReport.encode({ capacityBytes: v, usedBytes: v, chunkCount: v, addrs: [] }))
      assert.deepEqual([back.capacityBytes, back.usedBytes, back.chunkCount], [v, v, v], `value ${v}`)
    }
  })

  it('ChunkResponse', () => {
    for (const v of SIZES) {
      const back = ChunkResponse.decode(ChunkResponse.encode({ status: ChunkStatus.OK, error: '', message: '', size: v, capacityBytes: v, availableBytes: v, data: new Uint8Array(0) }))
      assert.deepEqual([back.size, back.capacityBytes, back.availableBytes], [v, v, v], `value ${v}`)
    }
  })
})
