import { fill } from './capacity.js'
import type { NodeRecord } from '../node-registry/registry.js'

/**
 * Which of a chunk's copies to give up so that `keep` remain: those on the fullest nodes, but never a member's
 * only copy while another member holds two, so giving copies back keeps them spread across households as
 * placement spread them.
 */
export function excessCopies (holders: NodeRecord[], keep: number): NodeRecord[] {
  const remaining = [...holders]
  const dropped: NodeRecord[] = []
  while (remaining.length > Math.max(0, keep)) {
    const perMember = new Map<string, number>()
    for (const n of remaining) perMember.set(n.domain ?? '', (perMember.get(n.domain ?? '') ?? 0) + 1)
    const doubled = remaining.filter(n => (perMember.get(n.domain ?? '') ?? 0) > 1)
    const pool = doubled.length > 0 ? doubled : remaining
    const fullest = pool.reduce((a, b) => fill(b) > fill(a) ? b : a)
    remaining.splice(remaining.indexOf(fullest), 1)
    dropped.push(fullest)
  }
  return dropped
}

/** How many distinct members hold a copy among `holders` */
export function memberCount (holders: NodeRecord[]): number {
  return new Set(holders.map(n => n.domain ?? '')).size
}
