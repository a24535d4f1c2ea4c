/**
 * One stored content of a file: its entry's id (kept across renames and new versions, new for a file created
 * again) and version. What a reader opened, so that it can tell when the path holds another (a new version, or a
 * file moved over it, as editors save). No import of the store: the mount process uses this too.
 */
export interface ContentId {
  /** 0: not known (a file not stored yet, an answer from an older coordinator) */
  id: number
  version: number
}

/** Whether `a` and `b` are one content: the same version, and the same entry where both ids are known */
export function sameContent (a: ContentId, b: ContentId): boolean {
  return a.version === b.version && (!(a.id > 0) || !(b.id > 0) || a.id === b.id)
}

/** What changed between the content opened and the one found, for error messages */
export function describeChange (opened: ContentId, found: ContentId): string {
  return opened.version !== found.version ? `version ${opened.version} became ${found.version}` : 'another file took its name'
}
