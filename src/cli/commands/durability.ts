import { call } from '../../control/client.js'
import { homeLayout } from '../../local/layout.js'
import { formatBytes } from '../../util/units.js'
import { table } from '../output.js'
import type { Command } from '../command.js'
import type { DurabilityReport } from '../../repair/durability.js'

export const durabilityCommand: Command = {
  name: 'durability',
  summary: 'How safe the data is: chunks at their replication factor, below it (and at one copy), and where each member\'s copies live.',
  usage: 'durability [PATH] [--json]',
  description: 'Reports on the whole namespace, or on the PATH subtree. A copy counts only on a live node that is not being drained; repair works on every chunk below target, fewest copies first.',
  maxPositionals: 1,
  async run (ctx) {
    const report = await call(homeLayout(ctx.home).controlSocket, 'durability', { path: ctx.positionals[0] ?? '/' }) as DurabilityReport
    ctx.emit(report)
    for (const group of report.dataStores) {
      ctx.out(`${group.path}: ${group.chunks} chunks (${formatBytes(group.bytes)}), replication ${group.replication}`)
      ctx.out(`  at target     ${group.atTarget}`)
      ctx.out(`  below target  ${group.belowTarget} (${group.atOneCopy} at one copy${group.noCopy > 0 ? `, ${group.noCopy} with no live copy` : ''})`)
      if (group.hot > 0) ctx.out(`  hot           ${group.hot} (read often: kept at extra copies until they cool)`)
      ctx.out('')
      const rows = group.members.flatMap(m => m.nodes.map(n => [m.domain, n.name, `${n.state}${n.draining === true ? ', draining' : ''}`, n.chunks, formatBytes(n.bytes)]))
      ctx.out(rows.length === 0 ? '  no copies recorded' : table(['MEMBER', 'NODE', 'STATE', 'CHUNKS', 'BYTES'], rows))
    }
    return 0
  }
}
