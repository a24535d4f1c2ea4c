import { InvalidRightsError } from './errors.js'

/**
 * What a grant allows on a DataStore subtree. `read` covers ls, stat and reading files; `write` mkdir and writing
 * files; `delete` removing entries (a move needs delete at the source and write at the destination); `share`
 * granting others at most one's own rights, and revoking the grants one made.
 */
export type Right = 'read' | 'write' | 'delete' | 'share'

/** Canonical order: how rights are always printed and stored */
export const RIGHTS: readonly Right[] = Object.freeze(['read', 'write', 'delete', 'share'])

/** Rights as a bit set (read = 1, write = 2, delete = 4, share = 8): set arithmetic and one SQLite column */
export type RightMask = number

export const NO_RIGHTS: RightMask = 0
export const ALL_RIGHTS: RightMask = (1 << RIGHTS.length) - 1

export function isRight (value: unknown): value is Right {
  return typeof value === 'string' && (RIGHTS as readonly string[]).includes(value)
}

export function rightBit (right: Right): RightMask {
  return 1 << RIGHTS.indexOf(right)
}

export function toMask (rights: Iterable<Right>): RightMask {
  let mask = NO_RIGHTS
  for (const right of rights) {
    if (!isRight(right)) throw new InvalidRightsError(`unknown right ${JSON.stringify(right)} (rights: ${RIGHTS.join(', ')})`)
    mask |= rightBit(right)
  }
  return mask
}

/** The rights of a mask in canonical order */
export function fromMask (mask: RightMask): Right[] {
  return RIGHTS.filter(right => (mask & rightBit(right)) !== 0)
}

/** True when every right of `subset` is in `superset` */
export function isSubset (subset: RightMask, superset: RightMask): boolean {
  return (subset & ~superset) === 0
}

/**
 * Parses `read+write+share` (also `,` as separator, and `all`). Refuses an empty list, unknown and repeated
 * rights rather than guessing: a typo in a grant must not silently grant less, or more.
 *
 * @throws InvalidRightsError
 */
export function parseRights (input: string): Right[] {
  if (typeof input !== 'string') throw new InvalidRightsError('rights must be a string such as read+write')
  const text = input.trim().toLowerCase()
  if (text === 'all') return [...RIGHTS]
  const parts = text.split(/[+,]/).map(part => part.trim())
  if (text.length === 0 || parts.some(part => part.length === 0)) {
    throw new InvalidRightsError(`invalid rights ${JSON.stringify(input)} (examples: read, read+write, all)`)
  }
  let mask = NO_RIGHTS
  for (const part of parts) {
    if (!isRight(part)) throw new InvalidRightsError(`unknown right ${JSON.stringify(part)} in ${JSON.stringify(input)} (rights: ${RIGHTS.join(', ')})`)
    if ((mask & rightBit(part)) !== 0) throw new InvalidRightsError(`right ${part} appears twice in ${JSON.stringify(input)}`)
    mask |= rightBit(part)
  }
  return fromMask(mask)
}

/** `read+write`, in canonical order; `none` for an empty set */
export function formatRights (rights: Iterable<Right> | RightMask): string {
  const list = typeof rights === 'number' ? fromMask(rights) : fromMask(toMask(rights))
  return list.length === 0 ? 'none' : list.join('+')
}
