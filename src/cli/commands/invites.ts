import { homedir, userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import { table } from '../output.js'
import { UsageError } from '../errors.js'
import { ask } from './access.js'
import { addContext, assertContextName, ContextExistsError, contextsFile, loadContexts } from '../contexts.js'
import type { Command } from '../command.js'

function grantsText (grants: Array<{ path: string, rights: string[] | string }>): string {
  return grants.map(g => `${g.path} ${Array.isArray(g.rights) ? g.rights.join('+') : g.rights}`).join(', ')
}

/** `/shared:read+write` → { path, rights }; the rights follow the last colon, so a path may hold one */
function parseGrant (text: string): { path: string, rights: string } {
  const at = text.lastIndexOf(':')
  if (at <= 0 || at === text.length - 1) throw new UsageError(`--grant takes PATH:RIGHTS, e.g. /shared:read+write, got "${text}"`)
  return { path: text.slice(0, at), rights: text.slice(at + 1) }
}

const inviteCreate: Command = {
  name: 'invite create',
  summary: 'Create an invite: a code (shown once) and a one-line join string that admits a newcomer with exactly these grants.',
  usage: 'invite create --grant PATH:RIGHTS [--grant ...] [--max-uses N] [--valid DURATION] [--json]',
  description: 'Run it on the coordinator that owns the DataStores; it needs its member CA (memberCa in its config) to certify newcomers. Each newcomer becomes guest-<name>@<your domain> and holds the grants in your name: revoking your share withdraws theirs. Example:\n  invite create --grant /shared:read+write --max-uses 1 --valid 7d',
  options: {
    grant: { type: 'string', multiple: true, value: 'PATH:RIGHTS', description: 'what the newcomer may do where, e.g. /shared:read+write (repeatable)' },
    'max-uses': { type: 'string', value: 'N', description: 'how many newcomers the invite admits (default 1)' },
    valid: { type: 'string', value: 'DURATION', description: 'how long it can be redeemed: 90m, 36h, 7d (default 7d)' }
  },
  async run (ctx) {
    const grants = (ctx.values.grant as string[] | undefined ?? []).map(parseGrant)
    if (grants.length === 0) throw new UsageError(`at least one --grant PATH:RIGHTS is required\nUsage: collective-p2p ${this.usage}`)
    let maxUses: number | undefined
    if (ctx.values['max-uses'] != null) {
      maxUses = Number(ctx.values['max-uses'])
      if (!Number.isInteger(maxUses) || maxUses < 1) throw new UsageError(`--max-uses takes a whole number of at least 1, got "${String(ctx.values['max-uses'])}"`)
    }
    const r = await ask(ctx, 'invite.create', { grants, maxUses, validFor: ctx.values.valid })
    ctx.emit(r)
    ctx.out(`invite ${r.id as string}: ${grantsText(r.grants)}; ${r.maxUses as number} use${r.maxUses === 1 ? '' : 's'}, until ${new Date(r.expiresAtMs).toISOString()}`)
    ctx.out(`code  ${r.code as string}`)
    ctx.out(`join  ${r.joinString as string}`)
    ctx.out('')
    ctx.out('The code is shown only now. Hand the join string to the newcomer, who runs:')
    ctx.out(`  collective-p2p invite redeem '${r.joinString as string}' --name THEIR-NAME`)
  }
}

const inviteList: Command = {
  name: 'invite ls',
  summary: 'List this coordinator\'s invites: grants, uses and expiry.',
  usage: 'invite ls [--json]',
  async run (ctx) {
    const list = await ask(ctx, 'invite.ls')
    ctx.emit(list)
    ctx.out(list.length === 0
      ? 'no invites (invite create makes one)'
      : table(['ID', 'STATE', 'USES', 'EXPIRES', 'GRANTS', 'CREATED BY'], list.map((i: any) => [i.id, i.state, `${i.uses as number}/${i.maxUses as number}`, new Date(i.expiresAtMs).toISOString(), grantsText(i.grants), i.createdBy])))
  }
}

const inviteRevoke: Command = {
  name: 'invite revoke',
  summary: 'Revoke an invite by its code or its id: it admits nobody more (guests already admitted keep their grants).',
  usage: 'invite revoke CODE|ID',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const r = await ask(ctx, 'invite.revoke', { code: ctx.positionals[0] })
    ctx.emit(r)
    ctx.out(`revoked invite ${r.id as string} (${r.uses as number} of ${r.maxUses as number} uses were redeemed)`)
  }
}

/** The request's default name: the user's login, when it is a usable DNS label */
function defaultName (): string | undefined {
  try {
    const name = userInfo().username.toLowerCase()
    return /^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/.test(name) ? name : undefined
  } catch {
    return undefined
  }
}

const inviteRedeem: Command = {
  name: 'invite redeem',
  summary: 'Join with an invite: a new identity (key and certificate) in a new home, with the invite\'s access.',
  usage: 'invite redeem JOINSTRING [--name NAME] [--home DIR] [--context NAME] [--json]',
  description: 'Generates a new Ed25519 key, redeems the invite at the coordinator named in the join string and saves key, certificate and federation root into a new home (never into an existing, non-empty one). You become guest-NAME@<the inviting member\'s domain>. Then run your daemon with "collective-p2p daemon --config HOME/client/config.yaml".',
  options: {
    name: { type: 'string', value: 'NAME', description: 'the name you ask for, a DNS label (default: your login name)' },
    context: { type: 'string', value: 'NAME', description: 'name of the new context (default NAME-<first label of the federation>); the home is $XDG_DATA_HOME/collective-p2p/<context> unless --home is given' }
  },
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const { redeemInvite } = await import('../../access/redeem.js')
    const { parseJoinString } = await import('../../permissions/index.js')
    const info = parseJoinString(ctx.positionals[0])
    const name = ctx.values.name ?? defaultName()
    if (name == null) throw new UsageError('--name NAME is required (your login name is not a usable name)')
    // Default: the name and the federation's first label ("dave-collective"), a context name as contexts.ts allows
    const context: string = ctx.values.context ?? `${String(name)}-${info.federation.split('.')[0]}`.toLowerCase()
    assertContextName(context)
    // Checked before the redemption, which counts a use: a taken name must not cost the invite
    const file = contextsFile()
    if ((await loadContexts(file)).contexts[context] != null) throw new ContextExistsError(`a context named "${context}" already exists; choose another with --context`)
    // --home is everyone's global option; its default (the local collective) is never a new identity's home
    const home = ctx.values.home != null ? resolve(ctx.values.home) : join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'collective-p2p', context)
    const r = await redeemInvite({ joinString: ctx.positionals[0], name, home })
    await addContext(file, context, { home: r.home })
    const result = { name: r.identity.name, peerId: r.identity.peerId, expires: r.identity.notAfter.toISOString(), coordinator: r.coordinator.name, grants: r.grants, home: r.home, context, config: r.configFile }
    ctx.emit(result)
    ctx.out(`Joined ${info.federation} through ${r.coordinator.name}`)
    ctx.out(`  name     ${r.identity.name}`)
    ctx.out(`  peer ID  ${r.identity.peerId}`)
    ctx.out(`  grants   ${r.grants.length === 0 ? 'none' : grantsText(r.grants)}`)
    ctx.out(`  expires  ${result.expires}`)
    ctx.out(`  home     ${r.home}`)
    ctx.out(`  context  ${context}`)
    ctx.out(`Run your daemon: collective-p2p daemon --config ${r.configFile}`)
  }
}

export const inviteCommands: Command[] = [inviteCreate, inviteList, inviteRevoke, inviteRedeem]
