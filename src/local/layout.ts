import { join } from 'node:path'

/**
 * Where everything lives under a collective home. CA private keys stay in ca/ and member/ and are never copied
 * into a component's folder; components get their own key, their certificate chain and the public root only.
 */
export function homeLayout (home: string) {
  return {
    home,
    controlSocket: join(home, 'control.sock'),
    rootDir: join(home, 'ca'),
    rootKey: join(home, 'ca', 'root.key'),
    rootCert: join(home, 'ca', 'root.crt'),
    memberDir: join(home, 'member'),
    component: (name: string) => name === 'coordinator' ? join(home, 'coordinator') : join(home, 'nodes', name),
    /** The one component of a home made by `invite redeem`: a client certified by the inviting member's CA */
    client: join(home, 'client'),
    logs: join(home, 'logs'),
    upPid: join(home, 'up.pid')
  }
}

/** File names inside a member CA folder and a component folder */
export const MEMBER_FILES = { key: 'ca.key', cert: 'ca.crt', root: 'root.crt', issued: 'issued' } as const
export const ROOT_FILES = { key: 'root.key', cert: 'root.crt', issued: 'members' } as const
export const COMPONENT_FILES = { key: 'peer.key', cert: 'peer.crt', root: 'root.crt', config: 'config.yaml' } as const
