import { helpText, parseCommandArgs } from './command.js'
import { UsageError } from './errors.js'
import { printable } from './output.js'
import { resolveHome } from './contexts.js'
import { expiryWarning } from './expiry-warning.js'
import { LOG_FORMATS, LOG_LEVELS } from '../logging/logger.js'
import { caInit, memberInit, certIssue, certShow, certRevoke, certRenew, memberRevoke, identityShow } from './commands/identity.js'
import { contextCommands } from './commands/context.js'
import { inviteCommands } from './commands/invites.js'
import { daemonCommand } from './commands/daemon.js'
import { statusCommand, peersCommand } from './commands/status.js'
import { upCommand } from './commands/up.js'
import { fileCommands } from './commands/files.js'
import { dfCommand } from './commands/df.js'
import { membersCommand, resolveCommand } from './commands/members.js'
import { accessCommands } from './commands/access.js'
import { mountCommand, unmountCommand } from './commands/mount.js'
import { nodeCommands } from './commands/node.js'
import { durabilityCommand } from './commands/durability.js'
import type { Command, CommandContext } from './command.js'

const COMMANDS: Command[] = [
  upCommand, daemonCommand, statusCommand, peersCommand, membersCommand, resolveCommand,
  ...fileCommands, dfCommand, durabilityCommand, ...nodeCommands, ...accessCommands, ...inviteCommands,
  mountCommand, unmountCommand,
  caInit, memberInit, memberRevoke, certIssue, certShow, certRevoke, certRenew, identityShow, ...contextCommands
]

function usage (): string {
  const width = Math.max(...COMMANDS.map(c => c.name.length))
  return [
    'collective-p2p: federated storage for small groups of people who trust each other',
    '',
    'Usage: collective-p2p COMMAND [options]      (every command takes --help, --json, --home DIR,',
    '                                              --context NAME, --log-format text|json and --log-level LEVEL)',
    '',
    'Commands:',
    ...COMMANDS.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Start here: "collective-p2p up" runs a local collective; "collective-p2p status" shows it.'
  ].join('\n')
}

function findCommand (argv: string[]): { cmd?: Command, rest: string[] } {
  // Two-word commands ("cert issue") take precedence over one-word ones.
  const two = COMMANDS.find(c => c.name === `${argv[0]} ${argv[1]}`)
  if (two != null) return { cmd: two, rest: argv.slice(2) }
  const one = COMMANDS.find(c => c.name === argv[0])
  return { cmd: one, rest: argv.slice(1) }
}

export async function main (argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(usage())
    return argv.length === 0 ? 2 : 0
  }
  if (argv[0] === '--version') {
    console.log('0.1.0')
    return 0
  }
  const { cmd, rest } = findCommand(argv)
  const json = argv.includes('--json')
  try {
    if (cmd == null) {
      const group = COMMANDS.filter(c => c.name.startsWith(`${argv[0]} `))
      if (group.length > 0 && (argv[1] == null || argv[1] === '--help' || argv[1] === '-h')) {
        console.log(group.map(c => `collective-p2p ${c.usage}\n    ${c.summary}`).join('\n'))
        return argv[1] == null ? 2 : 0
      }
      throw new UsageError(`unknown command "${argv.slice(0, group.length > 0 ? 2 : 1).join(' ')}"; run "collective-p2p --help" for the list`)
    }
    const { values, positionals } = parseCommandArgs(cmd, rest)
    if (values.help === true) {
      console.log(helpText(cmd))
      return 0
    }
    applyLogOptions(values)
    const where = cmd.usesHome === false ? undefined : await resolveHome({ home: values.home, context: values.context })
    if (where != null) {
      // stderr, so that --json output and `cat` stay clean on stdout
      const warning = expiryWarning(where.home)
      if (warning != null) console.error(warning)
    }
    const ctx: CommandContext = {
      values,
      positionals,
      get home () {
        if (where == null) throw new Error(`"${cmd.name}" uses no collective home`)
        return where.home
      },
      context: where?.context,
      json,
      out: (line = '') => { if (!json) console.log(printable(line)) },
      emit: (value) => { if (json) console.log(JSON.stringify(value, null, 2)) }
    }
    return (await cmd.run(ctx)) ?? 0
  } catch (err: any) {
    const name: string = err?.remoteName ?? err?.name ?? 'Error'
    const message: string = err?.message ?? String(err)
    if (json) {
      console.log(JSON.stringify({ error: { name, message } }))
    } else {
      console.error(printable(`collective-p2p: ${message} [${name}]`))
    }
    return err instanceof UsageError ? 2 : 1
  }
}

/**
 * --log-format and --log-level are carried in the environment rather than passed around: createLogger reads them
 * from there, and `up` spawns its daemons with this process's environment, so they inherit the choice.
 */
function applyLogOptions (values: Record<string, any>): void {
  const settings = [['log-format', 'COLLECTIVE_LOG_FORMAT', LOG_FORMATS], ['log-level', 'COLLECTIVE_LOG_LEVEL', LOG_LEVELS]] as const
  for (const [option, variable, allowed] of settings) {
    const value = values[option]
    if (value == null) continue
    const v = String(value).trim().toLowerCase()
    if (!(allowed as readonly string[]).includes(v)) {
      throw new UsageError(`--${option} must be one of ${allowed.join(', ')}, got "${String(value)}"`)
    }
    process.env[variable] = v
  }
}
