import { randomBytes } from 'node:crypto'
import { link, mkdir, open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { KeyExistsError } from './errors.js'

export interface AtomicWriteOptions {
  mode: number
  /** Replace an existing file; otherwise an existing file is an error */
  overwrite: boolean
  /** Mode for parent directories that have to be created */
  dirMode: number
}

/**
 * Writes `data` so that readers see either the old file or the complete new one, never a torn write: the
 * content goes to a temp file in the same directory (same filesystem, so rename/link are atomic), is synced,
 * and is then moved into place. Without `overwrite`, link() is used because it fails if the target exists,
 * which closes the check-then-write race.
 */
export async function writeFileAtomic (path: string, data: string | Uint8Array, options: AtomicWriteOptions): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: options.dirMode })
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  const fh = await open(tmp, 'wx', options.mode)
  try {
    await fh.writeFile(data)
    // open()'s mode is filtered by the umask; secrets must end up exactly at the requested mode
    await fh.chmod(options.mode)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    if (options.overwrite) {
      await rename(tmp, path)
    } else {
      try {
        await link(tmp, path)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyExistsError(`${path} already exists; refusing to overwrite it`)
        throw err
      }
      await unlink(tmp)
    }
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
}
