import { parseArgs } from 'node:util'
import { UsageError } from './errors.js'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  description: string
  /** Shown in help, e.g. "NAME" */
  value?: string
}

export interface CommandContext {
  values: Record<string, any>
  positionals: string[]
  home: string
  /** The context the home was chosen through (--context or the current one), if any */
  context?: string
  json: boolean
  /** Lines for humans; suppressed in --json mode */
  out: (line?: string) => void
  /** Prints the JSON result in --json mode */
  emit: (value: unknown) => void
}

export interface Command {
  /** e.g. "cert issue" */
  name: string
  summary: string
  /** e.g. "cert issue --role ROLE --name NAME [--out DIR]" */
  usage: string
  description?: string
  options?: Record<string, OptionSpec>
  /** Largest number of positionals accepted (default 0) */
  maxPositionals?: number
  minPositionals?: number
  /**
   * false for commands that take everything from their own arguments (`daemon --config`): they neither resolve a
   * home (so a broken contexts file cannot stop a daemon) nor warn about a home's certificate that is not theirs.
   */
  usesHome?: false
  run: (ctx: CommandContext) => Promise<number | void>
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  home: { type: 'string', value: 'DIR', description: 'collective home (default: the --context, $COLLECTIVE_HOME, the current context or ~/.collective-p2p)' },
  context: { type: 'string', value: 'NAME', description: 'use the home of this context (see "collective-p2p context ls")' },
  json: { type: 'boolean', description: 'print machine-readable JSON' },
  'log-format': { type: 'string', value: 'text|json', description: 'operator log lines on stderr as text or JSON (default $COLLECTIVE_LOG_FORMAT or text)' },
  'log-level': { type: 'string', value: 'LEVEL', description: 'least severe log level shown: debug, info, warn, error (default $COLLECTIVE_LOG_LEVEL or info)' },
  help: { type: 'boolean', short: 'h', description: 'show this help' }
}

export function helpText (cmd: Command): string {
  const lines = [`Usage: collective-p2p ${cmd.usage}`, '', cmd.summary]
  if (cmd.description != null) lines.push('', cmd.description)
  const opts = { ...(cmd.options ?? {}), ...GLOBAL_OPTIONS }
  lines.push('', 'Options:')
  for (const [name, spec] of Object.entries(opts)) {
    const flag = `${spec.short != null ? `-${spec.short}, ` : '    '}--${name}${spec.value != null ? ` ${spec.value}` : ''}`
    lines.push(`  ${flag.padEnd(30)} ${spec.description}`)
  }
  return lines.join('\n')
}

export function parseCommandArgs (cmd: Command, argv: string[]): { values: Record<string, any>, positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean', short?: string, multiple?: boolean }> = {}
  for (const [name, spec] of Object.entries({ ...(cmd.options ?? {}), ...GLOBAL_OPTIONS })) {
    options[name] = { type: spec.type }
    if (spec.short != null) options[name].short = spec.short
    if (spec.multiple === true) options[name].multiple = true
  }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (err: any) {
    throw new UsageError(`${err.message.replace(/\. To specify.*$/s, '')}\nUsage: collective-p2p ${cmd.usage}`)
  }
  const { values, positionals } = parsed
  if (values.help === true) return { values, positionals }
  if (positionals.length > (cmd.maxPositionals ?? 0)) {
    throw new UsageError(`unexpected argument "${positionals[cmd.maxPositionals ?? 0]}"\nUsage: collective-p2p ${cmd.usage}`)
  }
  if (positionals.length < (cmd.minPositionals ?? 0)) {
    throw new UsageError(`missing argument\nUsage: collective-p2p ${cmd.usage}`)
  }
  return { values, positionals }
}

export function requireOption (values: Record<string, any>, name: string, cmd: Command): string {
  const v = values[name]
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${name} is required\nUsage: collective-p2p ${cmd.usage}`)
  return v
}
