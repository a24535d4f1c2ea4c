import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { writeCertificateChain, writePeerKey } from '../identity/index.js'
import { COMPONENT_FILES, homeLayout } from './layout.js'
import type { X509Certificate } from '../identity/index.js'
import type { PrivateKey } from '@libp2p/interface'

/** The home to create already holds something: a redemption never writes over anyone's keys or certificates */
export class HomeNotEmptyError extends Error {
  static name = 'HomeNotEmptyError'
  name = 'HomeNotEmptyError'
}

/** @throws HomeNotEmptyError unless `home` is missing or an empty folder */
export async function assertFreshHome (home: string): Promise<void> {
  let entries: string[]
  try {
    entries = await readdir(home)
  } catch (err: any) {
    if (err.code === 'ENOENT') return
    throw new HomeNotEmptyError(`cannot use ${home} as a new home: ${String(err.message)}`)
  }
  if (entries.length > 0) throw new HomeNotEmptyError(`${home} is not empty; a new identity gets a home of its own (choose another --home or --context)`)
}

export interface ClientHome {
  home: string
  /** The client component folder, `<home>/client` */
  dir: string
  configFile: string
}

export interface WriteClientHomeOptions {
  home: string
  key: PrivateKey
  /** Leaf, then the member CA */
  chain: X509Certificate[]
  root: X509Certificate
  /** Coordinator addresses (ending in /p2p/<peer ID>) the client joins through */
  bootstrap: string[]
}

/**
 * A home holding one client component, laid out like `up`'s (`<home>/client/` with peer.key, peer.crt, root.crt and
 * config.yaml; the control socket at `<home>/control.sock`, so `--home` finds the daemon). The client folder is
 * created exclusively and the key is written without overwrite, so two redemptions racing for one home cannot mix.
 */
export async function writeClientHome (options: WriteClientHomeOptions): Promise<ClientHome> {
  const { home } = options
  await assertFreshHome(home)
  await mkdir(home, { recursive: true, mode: 0o700 })
  const dir = homeLayout(home).client
  try {
    await mkdir(dir, { mode: 0o700 })
  } catch (err: any) {
    if (err.code === 'EEXIST') throw new HomeNotEmptyError(`${dir} appeared while this home was being created`)
    throw err
  }
  await writePeerKey(join(dir, COMPONENT_FILES.key), options.key)
  await writeCertificateChain(join(dir, COMPONENT_FILES.cert), options.chain)
  await writeCertificateChain(join(dir, COMPONENT_FILES.root), [options.root])
  const config = {
    role: 'client',
    identity: { key: COMPONENT_FILES.key, cert: COMPONENT_FILES.cert, root: COMPONENT_FILES.root },
    dataDir: 'data',
    controlSocket: '../control.sock',
    listen: ['/ip4/127.0.0.1/tcp/0'],
    federation: { bootstrap: options.bootstrap }
  }
  const configFile = join(dir, COMPONENT_FILES.config)
  await writeFile(configFile, `# written by "collective-p2p invite redeem"; see config/ in the source tree for every option\n${stringify(config)}`, { mode: 0o600, flag: 'wx' })
  return { home, dir, configFile }
}
