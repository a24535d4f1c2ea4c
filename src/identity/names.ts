import { InvalidNameError, NameConstraintError } from './errors.js'

export type Role = 'coordinator' | 'node' | 'client'

export const ROLES: readonly Role[] = Object.freeze(['coordinator', 'node', 'client'])

export function isRole (value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value)
}

export interface FederatedName {
  local: string
  domain: string
}

// Leading/trailing hyphens are refused too: the same labels end up in dNSName constraints, where RFC 1123 forbids them
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const MAX_DOMAIN_LENGTH = 253

/** Throws InvalidNameError unless `label` is 1..63 chars of lowercase a-z, 0-9 and inner hyphens. */
export function validateDomainLabel (label: string, what = 'label'): void {
  if (typeof label !== 'string' || !LABEL.test(label)) {
    throw new InvalidNameError(`invalid ${what} ${JSON.stringify(label)}: use 1-63 characters of a-z, 0-9 and '-' (not at either end)`)
  }
}

/** Throws InvalidNameError unless `domain` is a dot-separated list of valid labels. */
export function validateDomain (domain: string): void {
  if (typeof domain !== 'string' || domain.length === 0 || domain.length > MAX_DOMAIN_LENGTH) {
    throw new InvalidNameError(`invalid domain ${JSON.stringify(domain)}`)
  }
  for (const label of domain.split('.')) validateDomainLabel(label, `label in domain ${JSON.stringify(domain)}`)
}

/** Splits a Mastodon-style `local@domain` name. Refuses anything that is not already in canonical (lowercase) form. */
export function parseFederatedName (name: string): FederatedName {
  if (typeof name !== 'string') throw new InvalidNameError('federated name must be a string')
  const at = name.indexOf('@')
  if (at < 0 || at !== name.lastIndexOf('@')) {
    throw new InvalidNameError(`invalid federated name ${JSON.stringify(name)}: expected local@domain`)
  }
  const local = name.slice(0, at)
  const domain = name.slice(at + 1)
  validateDomainLabel(local, `local part of ${JSON.stringify(name)}`)
  validateDomain(domain)
  return { local, domain }
}

export function formatFederatedName (local: string, domain: string): string {
  validateDomainLabel(local, 'local part')
  validateDomain(domain)
  return `${local}@${domain}`
}

/** True when `domain` is `parent` itself or lies below it. Both must already be valid (lowercase) domains. */
export function isWithinDomain (domain: string, parent: string): boolean {
  return domain === parent || domain.endsWith(`.${parent}`)
}

/** A member domain must sit strictly below the federation domain, e.g. `home.collective.local` under `collective.local`. */
export function assertMemberDomain (domain: string, federation: string): void {
  validateDomain(domain)
  validateDomain(federation)
  if (domain === federation || !isWithinDomain(domain, federation)) {
    throw new NameConstraintError(`member domain ${domain} is not a subdomain of federation ${federation}`)
  }
}
