import { resolve } from 'node:path'
import { requireOption } from '../command.js'
import type { Command } from '../command.js'

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'Run one peer (coordinator, node or client) from a config file until SIGINT or SIGTERM.',
  usage: 'daemon --config FILE [--coordinator MULTIADDR]',
  description: 'Examples of config files for each role are in config/ of the source tree.',
  usesHome: false,
  options: {
    config: { type: 'string', value: 'FILE', description: 'the daemon\'s YAML config' },
    coordinator: { type: 'string', value: 'MULTIADDR', description: 'override the coordinator address of a node' }
  },
  async run (ctx) {
    // Loaded on use: libp2p takes a second to import, which no other command should pay for.
    const { loadConfig } = await import('../../daemon/config.js')
    const { Daemon } = await import('../../daemon/daemon.js')
    const config = await loadConfig(resolve(requireOption(ctx.values, 'config', this)))
    const daemon = new Daemon({ config, coordinator: ctx.values.coordinator })
    try {
      await daemon.start()
    } catch (err) {
      await daemon.stop()
      throw err
    }
    const status = daemon.status()
    ctx.emit({ event: 'started', ...status })
    ctx.out(`${String(status.role)} ${String(status.name)} running`)
    ctx.out(`  peer ID  ${String(status.peerId)}`)
    for (const a of status.listen as string[]) ctx.out(`  listen   ${a}`)
    ctx.out(`  control  ${config.controlSocket}`)

    await new Promise<void>(resolve => {
      const stop = (): void => {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        resolve()
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    await daemon.stop()
    ctx.out(`${String(status.name)} stopped`)
    return 0
  }
}
