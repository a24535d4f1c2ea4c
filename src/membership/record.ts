import { MemberStatus, MemberUpdate, SignedMember } from '../gen/swim.js'
import { InvalidRecordError } from './errors.js'
import { MAX_ADDRS, MAX_META_ENTRIES, MAX_RECORD_BYTES } from './protocol.js'
import type { MetaEntry } from '../gen/swim.js'
import type { DigestEntry, MemberRecord, MemberState } from './types.js'

const SIGNING_DOMAIN = new TextEncoder().encode('collective-swim-member:v1\n')
const MAX_ID_LENGTH = 128
const MAX_SIGNATURE_BYTES = 512

const STATE_OF: Record<MemberStatus, MemberState> = {
  [MemberStatus.ALIVE]: 'alive',
  [MemberStatus.SUSPECT]: 'suspect',
  [MemberStatus.DEAD]: 'dead',
  [MemberStatus.LEFT]: 'left'
}

// SWIM's precedence within one incarnation: a suspicion overrides alive, death overrides both, a signed
// goodbye overrides everything. Only a higher incarnation (which only the subject can sign) beats them.
const RANK: Record<MemberState, number> = { alive: 0, suspect: 1, dead: 2, left: 3 }

/** Member states by their MemberStatus number, as the sync digest carries them */
export const STATE_CODES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left']

export function stateOf (status: MemberStatus): MemberState {
  return STATE_OF[status]
}

export function isLive (state: MemberState): boolean {
  return state === 'alive' || state === 'suspect'
}

/** Sorted, so that signer and verifier encode the same bytes whatever order the caller built the object in */
export function metaEntries (meta: Record<string, string>): MetaEntry[] {
  return Object.keys(meta).sort().map(key => ({ key, value: meta[key] }))
}

type Ordered = Pick<DigestEntry, 'incarnation' | 'state' | 'version'>

/**
 * Total order of records about one subject: incarnation, then state rank, then Lamport version. Incarnation comes
 * first because only the subject can raise it, so no other member's clock can outvote a refutation; the version
 * only orders records the subject signed at the same incarnation (alive or left).
 */
export function compareRecords (a: Ordered, b: Ordered): number {
  if (a.incarnation !== b.incarnation) return a.incarnation < b.incarnation ? -1 : 1
  if (RANK[a.state] !== RANK[b.state]) return RANK[a.state] < RANK[b.state] ? -1 : 1
  // Suspect and dead claims about one incarnation say the same thing whoever made them: no churn between them.
  if (a.state === 'suspect' || a.state === 'dead') return 0
  if (a.version !== b.version) return a.version < b.version ? -1 : 1
  return 0
}

export function ordered (u: MemberUpdate): Ordered {
  return { incarnation: u.incarnation, state: stateOf(u.status), version: u.version }
}

/** The status a record's signature covers: the subject signs only "alive" and "left" */
export function signedStatus (status: MemberStatus): MemberStatus {
  return status === MemberStatus.LEFT ? MemberStatus.LEFT : MemberStatus.ALIVE
}

/** The bytes the subject signs for this record */
export function signingPayload (u: Pick<MemberUpdate, 'id' | 'incarnation' | 'status' | 'addrs' | 'meta'>): Uint8Array {
  const body = SignedMember.encode({ id: u.id, incarnation: u.incarnation, status: signedStatus(u.status), addrs: u.addrs, meta: u.meta })
  const out = new Uint8Array(SIGNING_DOMAIN.length + body.length)
  out.set(SIGNING_DOMAIN, 0)
  out.set(body, SIGNING_DOMAIN.length)
  return out
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Both records carry the same signed statement, so a signature verified for one holds for the other */
export function sameSignedBody (a: MemberUpdate, b: MemberUpdate): boolean {
  return a.id === b.id && a.incarnation === b.incarnation && signedStatus(a.status) === signedStatus(b.status) &&
    equalBytes(a.signature, b.signature) &&
    a.addrs.length === b.addrs.length && a.addrs.every((x, i) => x === b.addrs[i]) &&
    a.meta.length === b.meta.length && a.meta.every((m, i) => m.key === b.meta[i].key && m.value === b.meta[i].value)
}

/** Refuses records no honest member produces: checked before any signature work */
export function validateRecord (u: MemberUpdate): void {
  if (u.id.length === 0 || u.id.length > MAX_ID_LENGTH) throw new InvalidRecordError('member id missing or too long')
  if (!Number.isSafeInteger(u.incarnation) || u.incarnation < 0) throw new InvalidRecordError(`bad incarnation for ${u.id}`)
  if (!Number.isSafeInteger(u.version) || u.version < 0) throw new InvalidRecordError(`bad version for ${u.id}`)
  if (STATE_OF[u.status] == null) throw new InvalidRecordError(`unknown status for ${u.id}`)
  if (u.addrs.length > MAX_ADDRS) throw new InvalidRecordError(`${u.id} announces more than ${MAX_ADDRS} addresses`)
  if (u.meta.length > MAX_META_ENTRIES) throw new InvalidRecordError(`${u.id} carries more than ${MAX_META_ENTRIES} meta entries`)
  for (let i = 1; i < u.meta.length; i++) {
    if (u.meta[i - 1].key >= u.meta[i].key) throw new InvalidRecordError(`meta of ${u.id} is not sorted by unique keys`)
  }
  if (u.signature.length === 0 || u.signature.length > MAX_SIGNATURE_BYTES) throw new InvalidRecordError(`record of ${u.id} is not signed`)
  if (MemberUpdate.encode(u).length > MAX_RECORD_BYTES) throw new InvalidRecordError(`record of ${u.id} is larger than ${MAX_RECORD_BYTES} bytes`)
}

export function toMemberRecord (u: MemberUpdate, changedAt: number): MemberRecord {
  const meta: Record<string, string> = {}
  for (const { key, value } of u.meta) meta[key] = value
  return { id: u.id, addrs: [...u.addrs], meta, state: stateOf(u.status), incarnation: u.incarnation, version: u.version, changedAt }
}

export function digestEntry (u: MemberUpdate): DigestEntry {
  return { id: u.id, incarnation: u.incarnation, state: stateOf(u.status), version: u.version }
}
