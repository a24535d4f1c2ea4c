import type { Role } from '../identity/index.js'

/**
 * Which roles may hold a connection with which. Clients only ever consume the collective, so two clients have
 * nothing to say to each other; everything else is narrowed further by each protocol's own role check.
 */
const ALLOWED: Record<Role, readonly Role[]> = {
  coordinator: ['coordinator', 'node', 'client'],
  node: ['coordinator', 'node', 'client'],
  client: ['coordinator', 'node']
}

export function rolesMayConnect (local: Role, remote: Role): boolean {
  return ALLOWED[local].includes(remote)
}
