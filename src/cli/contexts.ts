// The contexts file: which collective homes this user belongs to, by name, and which one is current. A user may
// belong to several collectives at once (a family, a homelab club), each with its own identity, certificates and
// daemon in its own home; a context is nothing more than a name for such a home.
import { readFile, stat, chmod } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { writeFileAtomic } from '../identity/files.js'
import { UsageError } from './errors.js'

/** The file cannot be read, is not valid, or others may read it; the message names the file and the field */
export class ContextConfigError extends Error {
  static name = 'ContextConfigError'
  name = 'ContextConfigError'
}

export class InvalidContextNameError extends UsageError {
  static name = 'InvalidContextNameError'
  name = 'InvalidContextNameError'
}

/** A context name that is not in the file; the message lists the known ones */
export class UnknownContextError extends UsageError {
  static name = 'UnknownContextError'
  name = 'UnknownContextError'
}

export class ContextExistsError extends Error {
  static name = 'ContextExistsError'
  name = 'ContextExistsError'
}

/** Two contexts on one home would share one identity and one daemon, which is exactly what contexts keep apart */
export class ContextHomeInUseError extends Error {
  static name = 'ContextHomeInUseError'
  name = 'ContextHomeInUseError'
}

export interface Context {
  /** Absolute path of the collective home */
  home: string
}

export interface Contexts {
  current?: string
  contexts: Record<string, Context>
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
const FILE_MODE = 0o600
const DIR_MODE = 0o700

// yaml and zod take the CLI about 0.15 s to load, more than the rest of a command such as "get" before it talks to
// the daemon: only a command that finds or writes a contexts file loads them.
const yaml = async (): Promise<typeof import('yaml')> => await import('yaml')

async function contextsSchema (): Promise<import('zod').ZodType<Contexts>> {
  const { z } = await import('zod')
  return z.strictObject({
    current: z.string().optional(),
    contexts: z.record(
      z.string().regex(NAME, 'context names are 1-63 characters of a-z, 0-9 and \'-\', starting with a letter or digit'),
      z.strictObject({ home: z.string().refine(isAbsolute, 'must be an absolute path') })
    ).default({})
  }).superRefine((c, ctx) => {
    if (c.current != null && c.contexts[c.current] == null) {
      ctx.addIssue({ code: 'custom', path: ['current'], message: `names no context in "contexts" ("${c.current}")` })
    }
  })
}

/** `$XDG_CONFIG_HOME/collective-p2p/contexts.yaml`, or `~/.config/...` when it is unset or not absolute (as XDG says) */
export function contextsFile (env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME
  const base = xdg != null && isAbsolute(xdg) ? xdg : join(homedir(), '.config')
  return join(base, 'collective-p2p', 'contexts.yaml')
}

/**
 * Reads and validates the contexts file; a missing file is no contexts. The file says where each collective's keys
 * are, so one that group or others could read (or have written) is refused rather than trusted.
 */
export async function loadContexts (file: string): Promise<Contexts> {
  let text: string
  try {
    const s = await stat(file)
    if ((s.mode & 0o077) !== 0) {
      throw new ContextConfigError(`contexts file ${file} is accessible to group or others (mode ${(s.mode & 0o777).toString(8)}); run "chmod 600 ${file}"`)
    }
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') return { contexts: {} }
    if (err instanceof ContextConfigError) throw err
    throw new ContextConfigError(`cannot read contexts file ${file}: ${err.message as string}`)
  }
  let raw: unknown
  try {
    raw = (await yaml()).parse(text)
  } catch (err: any) {
    throw new ContextConfigError(`contexts file ${file} is not valid YAML: ${err.message as string}`)
  }
  const parsed = (await contextsSchema()).safeParse(raw ?? {})
  if (!parsed.success) {
    const problems = parsed.error.issues.map(i => {
      const at = i.path.length > 0 ? i.path.join('.') : '(top level)'
      // A bad record key carries its reason one level down
      const message = i.code === 'invalid_key' ? i.issues[0]?.message ?? i.message : i.message
      return `  ${at}: ${message}`
    })
    throw new ContextConfigError(`contexts file ${file} is invalid:\n${problems.join('\n')}`)
  }
  return parsed.data
}

/** Readers see the old file or the new one, never half of one; the folder is ours alone, like the file */
async function saveContexts (file: string, contexts: Contexts): Promise<void> {
  const doc: Contexts = contexts.current != null ? { current: contexts.current, contexts: contexts.contexts } : { contexts: contexts.contexts }
  await writeFileAtomic(file, (await yaml()).stringify(doc), { mode: FILE_MODE, dirMode: DIR_MODE, overwrite: true })
  await chmod(dirname(file), DIR_MODE)
}

export function assertContextName (name: string): void {
  if (!NAME.test(name)) {
    throw new InvalidContextNameError(`invalid context name "${name}": use 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit`)
  }
}

function lookup (contexts: Contexts, name: string, file: string): Context {
  const c = contexts.contexts[name]
  if (c != null) return c
  const known = Object.keys(contexts.contexts)
  throw new UnknownContextError(`no context named "${name}" in ${file} (known: ${known.length > 0 ? known.join(', ') : 'none; add one with "collective-p2p context add NAME --home DIR"'})`)
}

/**
 * Adds a context named `name` for the collective home `home` and returns the new contents of the file. The first
 * context added becomes the current one. Never replaces anything: an existing name is ContextExistsError, a home
 * another context already uses is ContextHomeInUseError. The home need not exist yet (`up` or redeeming an
 * invite can create it afterwards); a relative `home` is resolved against the working directory.
 */
export async function addContext (file: string, name: string, options: { home: string }): Promise<Contexts> {
  assertContextName(name)
  const home = resolve(options.home)
  const contexts = await loadContexts(file)
  if (contexts.contexts[name] != null) {
    throw new ContextExistsError(`a context named "${name}" already exists (home ${contexts.contexts[name].home}); choose another name or remove it first`)
  }
  const owner = Object.entries(contexts.contexts).find(([, c]) => resolve(c.home) === home)
  if (owner != null) throw new ContextHomeInUseError(`home ${home} already belongs to context "${owner[0]}"`)
  const next: Contexts = { current: contexts.current ?? name, contexts: { ...contexts.contexts, [name]: { home } } }
  await saveContexts(file, next)
  return next
}

/**
 * Forgets a context (the entry only: its home and everything in it stay); if it was current, none is. Returns the
 * entry removed and the new contents of the file.
 */
export async function removeContext (file: string, name: string): Promise<{ removed: Context, contexts: Contexts }> {
  const contexts = await loadContexts(file)
  const removed = lookup(contexts, name, file)
  const { [name]: _, ...rest } = contexts.contexts
  const next: Contexts = { current: contexts.current === name ? undefined : contexts.current, contexts: rest }
  await saveContexts(file, next)
  return { removed, contexts: next }
}

/** Makes `name` the current context */
export async function useContext (file: string, name: string): Promise<Contexts> {
  const contexts = await loadContexts(file)
  lookup(contexts, name, file)
  const next: Contexts = { ...contexts, current: name }
  await saveContexts(file, next)
  return next
}

export interface HomeChoice {
  /** Absolute path of the collective home a command works on */
  home: string
  /** The context that home was chosen through, if any */
  context?: string
}

export interface ResolveHomeOptions {
  /** --home */
  home?: string
  /** --context */
  context?: string
  env?: NodeJS.ProcessEnv
  /** Default contextsFile(env) */
  file?: string
}

/**
 * The home a command works on: `--home` > `--context` > `$COLLECTIVE_HOME` > the current context >
 * `~/.collective-p2p`. The contexts file is read only when a context can decide, so `--home` and
 * `$COLLECTIVE_HOME` keep working whatever state the file is in.
 */
export async function resolveHome (options: ResolveHomeOptions = {}): Promise<HomeChoice> {
  const env = options.env ?? process.env
  if (options.home != null) return { home: resolve(options.home) }
  const file = options.file ?? contextsFile(env)
  if (options.context != null) {
    return { home: lookup(await loadContexts(file), options.context, file).home, context: options.context }
  }
  if (env.COLLECTIVE_HOME != null && env.COLLECTIVE_HOME !== '') return { home: resolve(env.COLLECTIVE_HOME) }
  const contexts = await loadContexts(file)
  if (contexts.current != null) return { home: contexts.contexts[contexts.current].home, context: contexts.current }
  return { home: join(homedir(), '.collective-p2p') }
}
