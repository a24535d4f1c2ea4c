import { call } from '../../control/client.js'
import { readHomeIdentity } from '../../local/home-identity.js'
import { homeLayout } from '../../local/layout.js'
import { requireOption } from '../command.js'
import { addContext, contextsFile, loadContexts, removeContext, useContext } from '../contexts.js'
import { table } from '../output.js'
import type { Command } from '../command.js'

// A listing must not hang on one daemon that accepts the connection but does not answer.
const PROBE_TIMEOUT_MS = 1000

/** Whether a daemon answers on the home's control socket; `peers` is the cheapest method every daemon serves */
async function daemonRunning (home: string): Promise<boolean> {
  try {
    await call(homeLayout(home).controlSocket, 'peers', {}, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
    return true
  } catch {
    return false
  }
}

/** What `context ls` says of one home; a missing or unreadable certificate is a row with gaps, never a failure */
async function describeHome (home: string): Promise<{ federation?: string, identity?: string, error?: string }> {
  try {
    const id = await readHomeIdentity(home)
    return { federation: id?.issuer?.federation, identity: id?.leaf.federatedName }
  } catch (err: any) {
    return { error: `${err.message as string} [${err.name as string}]` }
  }
}

export const contextLs: Command = {
  name: 'context ls',
  summary: 'List the collectives you belong to (contexts): federation, identity, whether the daemon runs; * is current.',
  usage: 'context ls [--json]',
  description: `Contexts are kept in ${contextsFile()}.`,
  async run (ctx) {
    const contexts = await loadContexts(contextsFile())
    const rows = await Promise.all(Object.entries(contexts.contexts).map(async ([name, { home }]) => ({
      name,
      current: name === contexts.current,
      home,
      ...await describeHome(home),
      running: await daemonRunning(home)
    })))
    ctx.emit(rows)
    if (rows.length === 0) {
      ctx.out('no contexts; add one with "collective-p2p context add NAME --home DIR"')
      return
    }
    ctx.out(table(['CURRENT', 'NAME', 'FEDERATION', 'IDENTITY', 'DAEMON', 'HOME'], rows.map(r => [
      r.current ? '*' : '', r.name, r.federation, r.error != null ? 'unreadable' : r.identity, r.running ? 'running' : 'stopped', r.home
    ])))
    for (const r of rows) if (r.error != null) ctx.out(`${r.name}: ${r.error}`)
  }
}

export const contextAdd: Command = {
  name: 'context add',
  summary: 'Name a collective home as a context (the first one added becomes current); never replaces one.',
  usage: 'context add NAME --home DIR',
  description: 'The home need not exist yet: "collective-p2p up --context NAME" can create it. Adding refuses a name or a home that another context already has.',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const name = ctx.positionals[0]
    requireOption(ctx.values, 'home', this)
    const next = await addContext(contextsFile(), name, { home: ctx.home })
    const { home } = next.contexts[name]
    ctx.emit({ name, home, current: next.current === name })
    ctx.out(`Added context ${name} (home ${home})${next.current === name ? '; it is the current context' : ''}`)
  }
}

export const contextUse: Command = {
  name: 'context use',
  summary: 'Make a context current: commands without --home or --context work on its home.',
  usage: 'context use NAME',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const name = ctx.positionals[0]
    const next = await useContext(contextsFile(), name)
    const { home } = next.contexts[name]
    ctx.emit({ current: name, home })
    ctx.out(`Now using context ${name} (home ${home})`)
  }
}

export const contextRm: Command = {
  name: 'context rm',
  summary: 'Forget a context; its home, keys and certificates stay where they are.',
  usage: 'context rm NAME',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const name = ctx.positionals[0]
    const { removed, contexts } = await removeContext(contextsFile(), name)
    ctx.emit({ removed: name, home: removed.home, current: contexts.current ?? null })
    ctx.out(`Removed context ${name}; its home ${removed.home} is untouched`)
    if (contexts.current == null) ctx.out('No context is current now; choose one with "collective-p2p context use NAME"')
  }
}

export const contextCommands: Command[] = [contextLs, contextAdd, contextUse, contextRm]
