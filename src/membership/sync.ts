import { MemberUpdate } from '../gen/swim.js'
import { InvalidRequestError } from './errors.js'
import { MAX_SYNC_PAGES, SYNC_PAGE_BYTES, SYNC_PAGE_ENTRIES } from './protocol.js'
import { STATE_CODES, compareRecords, digestEntry, ordered } from './record.js'
import type { SyncRequest, SyncResponse, DigestEntry as WireDigestEntry } from '../gen/sync.js'
import type { DigestEntry } from './types.js'
import type { AbortOptions } from '@libp2p/interface'

/** The member table as anti-entropy sees it */
export interface SyncStore {
  /** Every record held (self included), sorted by id */
  sorted: () => MemberUpdate[]
  /** Validates, verifies and applies records from `from`; invalid ones are dropped */
  merge: (from: string, records: MemberUpdate[]) => Promise<number>
}

export type SyncExchange = (req: SyncRequest, options: AbortOptions) => Promise<SyncResponse>

function toWire (e: DigestEntry): WireDigestEntry {
  return { id: e.id, incarnation: e.incarnation, status: STATE_CODES.indexOf(e.state), version: e.version }
}

function fromWire (e: WireDigestEntry): DigestEntry {
  const state = STATE_CODES[e.status]
  if (state == null) throw new InvalidRequestError(`digest entry for ${e.id} has an unknown status`)
  return { id: e.id, incarnation: e.incarnation, state, version: e.version }
}

/** Cuts records into batches whose encodings stay below the page byte budget */
function batches (records: MemberUpdate[]): Array<Array<Uint8Array<ArrayBuffer>>> {
  const out: Array<Array<Uint8Array<ArrayBuffer>>> = []
  let batch: Array<Uint8Array<ArrayBuffer>> = []
  let bytes = 0
  for (const r of records) {
    const enc = MemberUpdate.encode(r)
    if (batch.length > 0 && bytes + enc.length > SYNC_PAGE_BYTES) { out.push(batch); batch = []; bytes = 0 }
    batch.push(enc)
    bytes += enc.length
  }
  if (batch.length > 0) out.push(batch)
  return out
}

function decodeRecords (records: Uint8Array[]): MemberUpdate[] {
  const out: MemberUpdate[] = []
  for (const bytes of records) {
    try { out.push(MemberUpdate.decode(bytes)) } catch {}
  }
  return out
}

/**
 * The caller's side of one anti-entropy round: sends its digest page by page (ids ascending), merges the
 * responder's newer records and pushes the ones the responder asked for. Bounded by MAX_SYNC_PAGES round trips
 * plus the pushes, whatever the member count.
 */
export async function syncWith (store: SyncStore, peer: string, exchange: SyncExchange, lamport: () => number, options: AbortOptions = {}): Promise<{ received: number, pushed: number }> {
  const all = store.sorted()
  const byId = new Map(all.map(r => [r.id, r]))
  let received = 0
  let pushed = 0
  let after = ''
  for (let page = 0; page < MAX_SYNC_PAGES; page++) {
    options.signal?.throwIfAborted()
    const start = after === '' ? 0 : all.findIndex(r => r.id > after)
    const slice = start < 0 ? [] : all.slice(start, start + SYNC_PAGE_ENTRIES)
    const last = start < 0 || start + SYNC_PAGE_ENTRIES >= all.length
    const res = await exchange({ after, digest: slice.map(r => toWire(digestEntry(r))), last, records: [], lamport: lamport() }, options)
    received += await store.merge(peer, decodeRecords(res.records))
    const wanted = res.want.map(id => byId.get(id)).filter((r): r is MemberUpdate => r != null)
    for (const batch of batches(wanted)) {
      await exchange({ after: '', digest: [], last: false, records: batch, lamport: lamport() }, options)
      pushed += batch.length
    }
    if (res.coveredTo !== '') {
      if (res.coveredTo <= after) throw new InvalidRequestError(`${peer} answered a sync page without progress`)
      after = res.coveredTo
    } else if (last) {
      break
    } else {
      after = slice[slice.length - 1].id
    }
  }
  return { received, pushed }
}

/** The responder's side: a push is merged; a digest page is answered with what either side is missing */
export async function answerSync (store: SyncStore, from: string, req: SyncRequest, lamport: number): Promise<SyncResponse> {
  if (req.records.length > 0) {
    if (req.digest.length > 0) throw new InvalidRequestError('a sync request carries either a digest page or records')
    await store.merge(from, decodeRecords(req.records))
    return { records: [], want: [], coveredTo: '', lamport, error: '', message: '' }
  }
  if (req.digest.length > SYNC_PAGE_ENTRIES) throw new InvalidRequestError(`a digest page holds at most ${SYNC_PAGE_ENTRIES} entries`)
  let prev = req.after
  for (const e of req.digest) {
    if (e.id <= prev) throw new InvalidRequestError('digest entries must be sorted by id, after the page start')
    prev = e.id
  }
  // The page covers (after, last digest id], or everything after `after` on the caller's last page.
  const end = req.last ? undefined : req.digest[req.digest.length - 1]?.id ?? req.after
  const ours = store.sorted().filter(r => r.id > req.after && (end == null || r.id <= end))
  const records: Array<Uint8Array<ArrayBuffer>> = []
  const want: string[] = []
  let bytes = 0
  let coveredTo = ''
  let lastDone = req.after
  // Both lists are sorted by id: one merge walk finds what each side lacks.
  for (let i = 0, j = 0; i < ours.length || j < req.digest.length;) {
    const o = ours[i]
    const t = req.digest[j]
    const id = o == null ? t.id : t == null ? o.id : o.id < t.id ? o.id : t.id
    const mine = o?.id === id ? o : undefined
    const theirs = t?.id === id ? fromWire(t) : undefined
    const cmp = mine == null ? -1 : theirs == null ? 1 : compareRecords(ordered(mine), theirs)
    if (cmp > 0 && mine != null) {
      const enc = MemberUpdate.encode(mine)
      if (records.length > 0 && bytes + enc.length > SYNC_PAGE_BYTES) {
        coveredTo = lastDone
        break
      }
      records.push(enc)
      bytes += enc.length
    } else if (cmp < 0) {
      want.push(id)
    }
    if (mine != null) i++
    if (theirs != null) j++
    lastDone = id
  }
  return { records, want, coveredTo, lamport, error: '', message: '' }
}
