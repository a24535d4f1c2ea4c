import { InvalidPathError } from './errors.js'

export const MAX_PATH_BYTES = 4096
export const MAX_NAME_BYTES = 255

const encoder = new TextEncoder()

// C0, DEL and C1: U+009B is CSI, which some terminals take as ESC [
const CONTROL = /[\u0001-\u001f\u007f-\u009f]/
// With the u flag a surrogate pair is one astral code point, so only an unpaired half matches. (String's
// isWellFormed() says the same but is ES2024, past the ES2022 library this project compiles against.)
const LONE_SURROGATE = /\p{Cs}/u

function byteLength (s: string): number {
  return encoder.encode(s).byteLength
}

/**
 * The canonical form of an absolute POSIX path: duplicate and trailing slashes collapsed. Everything is stored
 * and compared in this form, so `/a//b/` and `/a/b` are one entry. `.` and `..` are refused rather than resolved:
 * resolving them is the client's business, and a path that silently escapes where it appears to point is worse
 * than an error. Control characters and lone surrogates are refused too.
 *
 * @throws InvalidPathError saying what is wrong
 */
export function normalizePath (p: string): string {
  if (typeof p !== 'string') throw new InvalidPathError(`path must be a string, got ${typeof p}`)
  if (p.length === 0) throw new InvalidPathError('path is empty')
  if (p.includes('\0')) throw new InvalidPathError(`path ${JSON.stringify(p)} contains a NUL byte`)
  // A newline or an ESC in a name is printed raw by every member's ls: a terminal escape from someone else.
  if (CONTROL.test(p)) throw new InvalidPathError(`path ${JSON.stringify(p)} contains a control character`)
  // A lone surrogate has no UTF-8 form: the name stored is not the one given, and no request could name it again.
  if (LONE_SURROGATE.test(p)) throw new InvalidPathError(`path ${JSON.stringify(p)} is not well-formed Unicode (a lone surrogate)`)
  if (!p.startsWith('/')) throw new InvalidPathError(`path ${JSON.stringify(p)} is not absolute (must start with /)`)

  const segments = p.split('/').filter(s => s.length > 0)
  for (const segment of segments) {
    if (segment === '.' || segment === '..') {
      throw new InvalidPathError(`path ${JSON.stringify(p)} contains a "${segment}" segment`)
    }
    if (byteLength(segment) > MAX_NAME_BYTES) {
      throw new InvalidPathError(`path ${JSON.stringify(p)} has a name longer than ${MAX_NAME_BYTES} bytes`)
    }
  }
  const normalized = '/' + segments.join('/')
  if (byteLength(normalized) > MAX_PATH_BYTES) {
    throw new InvalidPathError(`path is longer than ${MAX_PATH_BYTES} bytes`)
  }
  return normalized
}

/**
 * Where `mv src dst` puts `src`: a `dst` ending in / means "into that directory, under the source's name", as for
 * put, so `mv /a/f /b/` never quietly replaces a file `/b` or renames `f` to `b`. That the directory exists (and is
 * one) is the move's to check.
 */
export function moveDestination (src: string, dst: string): string {
  if (dst.endsWith('/')) return joinPath(dst, baseName(src))
  return normalizePath(dst)
}

/** The parent directory of a path; `/` is its own parent, as in POSIX */
export function parentOf (p: string): string {
  const n = normalizePath(p)
  const i = n.lastIndexOf('/')
  return i === 0 ? '/' : n.slice(0, i)
}

/** The last segment of a path; empty for `/` */
export function baseName (p: string): string {
  const n = normalizePath(p)
  return n.slice(n.lastIndexOf('/') + 1)
}

/** Joins segments (which may themselves contain slashes) onto a base path and normalizes the result */
export function joinPath (base: string, ...segments: string[]): string {
  return normalizePath([base, ...segments].join('/'))
}

/** The segments of a path, root first; empty for `/` */
export function splitPath (p: string): string[] {
  const n = normalizePath(p)
  return n === '/' ? [] : n.slice(1).split('/')
}

/** True when `descendant` lies strictly below `ancestor` */
export function isDescendant (ancestor: string, descendant: string): boolean {
  const a = normalizePath(ancestor)
  const d = normalizePath(descendant)
  if (a === d) return false
  return a === '/' || d.startsWith(a + '/')
}
