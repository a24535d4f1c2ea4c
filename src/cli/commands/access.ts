import { call } from '../../control/client.js'
import { homeLayout } from '../../local/layout.js'
import { table } from '../output.js'
import { formatBytes } from '../../util/units.js'
import { UsageError } from '../errors.js'
import type { Command, CommandContext } from '../command.js'

/** One call to the daemon of the command's home */
export async function ask (ctx: CommandContext, method: string, params: Record<string, unknown> = {}): Promise<any> {
  return await call(homeLayout(ctx.home).controlSocket, method, params)
}

function expiry (at: number | undefined): string {
  return at == null || at === 0 ? 'never' : new Date(at).toISOString()
}

const datastoreCreate: Command = {
  name: 'datastore create',
  summary: 'Create a DataStore at PATH, owned by your member: a subtree with its own placement strategy, replicas and grants.',
  usage: 'datastore create PATH [--strategy media|backup|hybrid] [--replicas N]',
  description: 'media: replicas on your own nodes first, then the fastest; backup: one replica per member first; hybrid (default): a balance of free space, speed, health and locality.',
  options: {
    strategy: { type: 'string', value: 'NAME', description: 'placement strategy: media, backup or hybrid (default hybrid)' },
    replicas: { type: 'string', value: 'N', description: 'copies of every chunk, 1-16 (default 2)' }
  },
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    let replicas: number | undefined
    if (ctx.values.replicas != null) {
      replicas = Number(ctx.values.replicas)
      if (!Number.isInteger(replicas) || replicas < 1 || replicas > 16) throw new UsageError(`--replicas takes a whole number from 1 to 16, got "${String(ctx.values.replicas)}"`)
    }
    const ds = await ask(ctx, 'datastore.create', { path: ctx.positionals[0], strategy: ctx.values.strategy, replicas })
    ctx.emit(ds)
    ctx.out(`created DataStore ${ds.path as string} (owner ${ds.owner as string}, ${ds.strategy as string}, ${ds.replicas as number} replicas)`)
  }
}

const datastoreList: Command = {
  name: 'datastore ls',
  summary: 'List the DataStores of the whole federation with their owners, strategies and replicas.',
  usage: 'datastore ls [--json]',
  async run (ctx) {
    const list = await ask(ctx, 'datastore.ls')
    ctx.emit(list)
    ctx.out(list.length === 0 ? 'no DataStores yet (datastore create PATH makes one)' : table(['PATH', 'OWNER', 'STRATEGY', 'REPLICAS'], list.map((d: any) => [d.path, `${d.owner as string}${d.local === true ? ' (this coordinator)' : ''}`, d.strategy, d.replicas])))
  }
}

const datastoreShow: Command = {
  name: 'datastore show',
  summary: 'A DataStore in detail: owner, strategy, replicas, grants and usage (asked of its owning coordinator).',
  usage: 'datastore show PATH [--json]',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const d = await ask(ctx, 'datastore.show', { path: ctx.positionals[0] })
    ctx.emit(d)
    ctx.out(`${d.path as string}`)
    ctx.out(`  owner     ${d.owner as string}`)
    ctx.out(`  strategy  ${d.strategy as string}, ${d.replicas as number} replicas`)
    ctx.out(`  usage     ${d.files as number} files, ${formatBytes(d.bytes ?? 0)} (${formatBytes(d.storedBytes ?? 0)} stored with every copy)`)
    const grants: any[] = d.grants ?? []
    ctx.out(`  grants    ${grants.length === 0 ? 'none (only the owner has access)' : ''}`)
    if (grants.length > 0) ctx.out(table(['    PATH', 'SUBJECT', 'RIGHTS', 'GRANTOR', 'EXPIRES'], grants.map(g => [`    ${g.path as string}`, g.subject, g.rights, g.grantor, expiry(g.expiresAtMs)])))
  }
}

const grantCommand: Command = {
  name: 'grant',
  summary: 'Grant a member (or *@domain, or *@*.federation) rights on PATH and everything below it.',
  usage: 'grant PATH SUBJECT RIGHTS [--for DURATION | --until TIME]',
  description: 'RIGHTS joins read, write, delete and share with "+" (share: may grant others at most its own rights). Examples:\n  grant /media bob@garage.collective.local read+write --for 7d\n  grant /backup "*@*.collective.local" read+write',
  options: {
    for: { type: 'string', value: 'DURATION', description: 'the grant expires after this long (90m, 36h, 7d)' },
    until: { type: 'string', value: 'TIME', description: 'the grant expires at this time (2026-12-24T00:00Z)' }
  },
  minPositionals: 3,
  maxPositionals: 3,
  async run (ctx) {
    if (ctx.values.for != null && ctx.values.until != null) throw new UsageError('give --for or --until, not both')
    const [path, subject, rights] = ctx.positionals
    const g = await ask(ctx, 'grant', { path, subject, rights, expires: ctx.values.for ?? ctx.values.until })
    ctx.emit(g)
    ctx.out(`granted ${g.rights as string} on ${g.path as string} to ${g.subject as string}${g.expiresAtMs != null && g.expiresAtMs !== 0 ? ` until ${expiry(g.expiresAtMs)}` : ''}`)
  }
}

const revokeCommand: Command = {
  name: 'revoke',
  summary: 'Take back rights (all of them unless RIGHTS is given) that were granted on PATH to SUBJECT.',
  usage: 'revoke PATH SUBJECT [RIGHTS]',
  minPositionals: 2,
  maxPositionals: 3,
  async run (ctx) {
    const [path, subject, rights] = ctx.positionals
    const r = await ask(ctx, 'revoke', { path, subject, rights })
    ctx.emit(r)
    ctx.out(r.revoked === '' ? `${subject} held no such rights on ${path}` : `revoked ${r.revoked as string} on ${path} from ${subject}`)
  }
}

const rightsCommand: Command = {
  name: 'rights',
  summary: 'Your rights at PATH, as its DataStore\'s owner sees them.',
  usage: 'rights PATH [--json]',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const r = await ask(ctx, 'rights', { path: ctx.positionals[0] })
    ctx.emit(r)
    ctx.out(`${r.path as string}: ${r.rights === '' ? 'no rights' : r.rights as string}${r.private === true ? ' (your own namespace, in no DataStore)' : ''}`)
  }
}

export const accessCommands: Command[] = [datastoreCreate, datastoreList, datastoreShow, grantCommand, revokeCommand, rightsCommand]
