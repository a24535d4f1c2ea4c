import { userInfo } from 'node:os'
import type { Command } from '../command.js'

function defaultMember (): string {
  const name = (() => { try { return userInfo().username } catch { return '' } })().toLowerCase().replace(/[^a-z0-9-]/g, '')
  return name.length > 0 && name.length <= 63 ? name : 'alice'
}

export const upCommand: Command = {
  name: 'up',
  summary: 'Start a complete local collective: a member with its CAs, a coordinator and 3 storage nodes.',
  usage: 'up [--nodes N] [--member NAME] [--domain DOMAIN] [--federation DOMAIN]',
  description: 'The first run creates keys, certificates and configs under the home; later runs reuse them.\nCtrl-C stops everything.',
  options: {
    nodes: { type: 'string', value: 'N', description: 'number of storage nodes (default 3)' },
    member: { type: 'string', value: 'NAME', description: 'member name for a new home (default: your user name)' },
    domain: { type: 'string', value: 'DOMAIN', description: 'member domain for a new home (default home.<federation>)' },
    federation: { type: 'string', value: 'DOMAIN', description: 'federation for a new home (default collective.local)' }
  },
  async run (ctx) {
    const nodes = ctx.values.nodes != null ? Number(ctx.values.nodes) : 3
    const { LocalCollective } = await import('../../local/up.js')
    const local = new LocalCollective({
      home: ctx.home,
      nodes,
      member: ctx.values.member ?? defaultMember(),
      domain: ctx.values.domain,
      federation: ctx.values.federation,
      report: line => { ctx.out(`  ${line}`) }
    })
    ctx.out(`Starting a local collective in ${ctx.home}`)
    let stopping: Promise<void> | undefined
    const stop = async (): Promise<void> => {
      stopping ??= (async () => { ctx.out('Stopping...'); await local.stop() })()
      await stopping
    }
    const stopped = new Promise<void>(resolve => {
      const onSignal = (): void => { void stop().then(resolve) }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
    })
    try {
      await local.start()
    } catch (err) {
      await local.stop()
      throw err
    }
    ctx.emit({ event: 'ready', home: ctx.home, coordinator: local.coordinatorAddr, nodes: local.nodeNames() })
    ctx.out('')
    ctx.out(`Ready: coordinator + ${local.nodeNames().length} storage nodes.`)
    ctx.out('In another terminal:')
    // Whatever chose this home must be repeated in the other terminal, unless the current context already does.
    const homeHint = ctx.values.home == null && ctx.values.context != null
      ? ` --context ${ctx.context as string}`
      : process.env.COLLECTIVE_HOME != null || ctx.values.home != null ? ` --home ${ctx.home}` : ''
    ctx.out(`  collective-p2p status${homeHint}     # identities, nodes and connected peers`)
    ctx.out(`  collective-p2p peers${homeHint}      # peers with their verified names`)
    ctx.out(`  collective-p2p --help            # every command`)
    ctx.out(`Logs: ${ctx.home}/logs. Press Ctrl-C to stop.`)
    await stopped
    ctx.out('Stopped.')
    return 0
  }
}
