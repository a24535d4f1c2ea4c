import { formatRights } from '../permissions/index.js'
import type { MetaResponse } from '../gen/meta.js'
import type { Entry } from '../metadata/store.js'
import type { Grant } from '../permissions/index.js'

// How `/collective/meta/1.0.0` answers carry our records (protocols/meta.md), shared by every handler of the protocol.

export function toWireEntry (e: Entry): NonNullable<MetaResponse['entry']> {
  return { path: e.path, type: e.type, mode: e.mode, size: e.size, mtimeMs: e.mtimeMs, ctimeMs: e.ctimeMs, owner: e.owner, version: e.version, id: e.id }
}

export function toWireGrant (g: Grant): NonNullable<MetaResponse['grant']> {
  return { path: g.path, subject: g.subject, grantor: g.grantor, rights: formatRights(g.rights), expiresAtMs: g.expiresAtMs ?? 0 }
}
