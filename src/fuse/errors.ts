/** The mount point is missing, not a directory, or already has a live mount on it */
export class MountpointError extends Error {
  static name = 'MountpointError'
  name = 'MountpointError'
}

/** /dev/fuse, fusermount or the FUSE library cannot be used on this machine */
export class FuseUnavailableError extends Error {
  static name = 'FuseUnavailableError'
  name = 'FuseUnavailableError'
}

/** unmount was asked for a directory that has no mount on it */
export class NotMountedError extends Error {
  static name = 'NotMountedError'
  name = 'NotMountedError'
}

/** A failure the FUSE layer reports with a specific errno (e.g. EISDIR for a rename of a file over a directory) */
export class FilesystemError extends Error {
  static name = 'FilesystemError'
  name = 'FilesystemError'
  readonly errno: number
  constructor (errno: number, message: string) {
    super(message)
    this.errno = errno
  }
}

/** A spool file does not hold what was written to it (changed behind the mount's back): uploading it would store something else */
export class SpoolError extends Error {
  static name = 'SpoolError'
  name = 'SpoolError'
}
