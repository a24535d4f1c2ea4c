import '../../../src/polyfill.js'
import { defaultLogger } from '@libp2p/logger'
import { PermissionsDatabase } from '../../../src/permissions/database.js'
import type { Caller } from '../../../src/permissions/subjects.js'

// The seed's members, with the domains of the README
export const ALICE = 'alice@home.collective.local'
export const BOB = 'bob@garage.collective.local'
export const CAROL = 'carol@office.collective.local'

/** A verified identity as the handshake would report it: component `local` of member `member` */
export function caller (member: string, domain: string, local = 'laptop'): Caller {
  return { member, domain, local }
}

export const alice = caller('alice', 'home.collective.local')
export const bob = caller('bob', 'garage.collective.local')
export const carol = caller('carol', 'office.collective.local')

export function openDatabase (path = ':memory:'): PermissionsDatabase {
  const db = new PermissionsDatabase({ logger: defaultLogger() }, { path })
  db.start()
  return db
}
