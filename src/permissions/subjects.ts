// Who a grant is for, and who a verified peer counts as when its rights are checked.
//
// Grants name *principals*, not components. A member's principal is its member CA's name, `member@member-domain`
// (`bob@garage.collective.local`): every component bob certifies (`laptop@garage...`, `coordinator@garage...`)
// acts as bob, because bob vouches for each of them with his CA and may revoke any of them. The exception is a
// guest: a person who redeemed an invite holds a certificate from the inviting member's CA, but must end up with
// exactly the access the invite granted, not the member's. Guests are recognisable from the certificate alone,
// on every coordinator, by the reserved `guest-` prefix of their local part; a guest's principal is its own name
// (`guest-dave@office.collective.local`). A member who names a device `guest-...` only gives it less access.
import { parseFederatedName, validateDomain, type VerifiedIdentity } from '../identity/index.js'
import { InvalidSubjectError } from './errors.js'

export const GUEST_PREFIX = 'guest-'

/** The parts of a verified identity a permission check uses */
export type Caller = Pick<VerifiedIdentity, 'local' | 'domain' | 'member'>

/** The principal a verified peer acts as: its member (`bob@garage.collective.local`), or itself when a guest */
export function principalOf (identity: Caller): string {
  if (isGuestName(identity.local)) return `${identity.local}@${identity.domain}`
  return `${identity.member}@${identity.domain}`
}

export function isGuestName (local: string): boolean {
  return local.startsWith(GUEST_PREFIX)
}

export function isGuestPrincipal (principal: string): boolean {
  return isGuestName(principal.slice(0, principal.indexOf('@')))
}

/**
 * - `principal`: exactly one member or guest, `bob@garage.collective.local`
 * - `domain`: every member of one domain, `*@garage.collective.local` (in practice one member: a member CA is
 *   confined to its own domain)
 * - `federation`: every member of every domain below one, `*@*.collective.local`
 *
 * Wildcards never match guests: a guest has exactly the access it was invited to, even on a DataStore shared with
 * the whole federation.
 */
export interface Subject {
  kind: 'principal' | 'domain' | 'federation'
  /** Canonical text, as stored and printed */
  text: string
  /** The principal's domain, the wildcard's domain, or the domain the federation wildcard sits below */
  domain: string
}

/** @throws InvalidSubjectError */
export function parseSubject (input: string): Subject {
  if (typeof input !== 'string') throw new InvalidSubjectError('subject must be a string')
  const text = input.trim().toLowerCase()
  const hint = '(examples: bob@garage.collective.local, *@garage.collective.local, *@*.collective.local)'
  try {
    if (text.startsWith('*@*.')) {
      const domain = text.slice(4)
      validateDomain(domain)
      return { kind: 'federation', text, domain }
    }
    if (text.startsWith('*@')) {
      const domain = text.slice(2)
      validateDomain(domain)
      return { kind: 'domain', text, domain }
    }
    return { kind: 'principal', text, domain: parseFederatedName(text).domain }
  } catch (err) {
    throw new InvalidSubjectError(`invalid subject ${JSON.stringify(input)} ${hint}: ${(err as Error).message}`)
  }
}

/**
 * Every subject text that covers `principal` (a value of principalOf): the principal itself, its domain's
 * wildcard and the federation wildcard of each domain above its own. A check looks grants up by these, so it
 * reads only the grants that can apply. Guests are covered by their own name only.
 */
export function subjectsCovering (principal: string): string[] {
  if (isGuestPrincipal(principal)) return [principal]
  const labels = principal.slice(principal.indexOf('@') + 1).split('.')
  const out = [principal, `*@${labels.join('.')}`]
  for (let i = 1; i < labels.length; i++) out.push(`*@*.${labels.slice(i).join('.')}`)
  return out
}
