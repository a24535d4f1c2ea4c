import { join, resolve } from 'node:path'
import { ROLES } from '../../identity/names.js'
import { existsSync } from 'node:fs'
import { homeLayout, COMPONENT_FILES, MEMBER_FILES, ROOT_FILES } from '../../local/layout.js'
import { NoHomeIdentityError, readHomeIdentity } from '../../local/home-identity.js'
import { call } from '../../control/client.js'
import { requireOption } from '../command.js'
import { UsageError } from '../errors.js'
import type { Command, CommandContext } from '../command.js'
import type { Role } from '../../identity/names.js'
import type { CertificateInfo } from '../../identity/index.js'

// Loaded on use: the X.509 stack is slow to import and only these commands need it.
const identity = async () => await import('../../identity/index.js')
const provision = async () => await import('../../local/provision.js')

export const caInit: Command = {
  name: 'ca init',
  summary: 'Create the federation root CA (once per federation, kept offline by whoever founds it).',
  usage: 'ca init --federation DOMAIN [--dir DIR]',
  options: {
    federation: { type: 'string', value: 'DOMAIN', description: 'federation domain, e.g. collective.local' },
    dir: { type: 'string', value: 'DIR', description: 'where to write root.key and root.crt (default HOME/ca)' }
  },
  async run (ctx) {
    const federation = requireOption(ctx.values, 'federation', this)
    const dir = resolve(ctx.values.dir ?? homeLayout(ctx.home).rootDir)
    const cert = await (await provision()).initRoot(dir, federation)
    const info = (await identity()).describeCertificate(cert)
    ctx.emit({ dir, federation, fingerprint: info.fingerprint, notAfter: info.notAfter })
    ctx.out(`Created the root CA of federation ${federation} in ${dir}`)
    ctx.out(`  root.key  private: keep it safe and offline; only "member init" needs it`)
    ctx.out(`  root.crt  public: every peer of the federation trusts it (sha256 ${info.fingerprint})`)
  }
}

export const memberInit: Command = {
  name: 'member init',
  summary: 'Create a member CA signed by the federation root, name-constrained to the member\'s domain.',
  usage: 'member init NAME --domain DOMAIN [--root-dir DIR] [--dir DIR]',
  description: 'The member CA can only certify names inside DOMAIN (e.g. node-01@DOMAIN), never another member\'s.',
  minPositionals: 1,
  maxPositionals: 1,
  options: {
    domain: { type: 'string', value: 'DOMAIN', description: 'the member\'s domain, e.g. home.collective.local' },
    'root-dir': { type: 'string', value: 'DIR', description: 'folder with root.key and root.crt (default HOME/ca)' },
    dir: { type: 'string', value: 'DIR', description: 'where to write the member CA (default HOME/member)' }
  },
  async run (ctx) {
    const member = ctx.positionals[0]
    const domain = requireOption(ctx.values, 'domain', this)
    const layout = homeLayout(ctx.home)
    const dir = resolve(ctx.values.dir ?? layout.memberDir)
    const cert = await (await provision()).initMember(resolve(ctx.values['root-dir'] ?? layout.rootDir), dir, member, domain)
    const info = (await identity()).describeCertificate(cert)
    ctx.emit({ dir, member, domain, name: info.federatedName, fingerprint: info.fingerprint, notAfter: info.notAfter })
    ctx.out(`Created member CA ${info.federatedName ?? member} in ${dir} (may only certify *@${domain})`)
  }
}

export const certIssue: Command = {
  name: 'cert issue',
  summary: 'Issue a certificate for a coordinator, node or client, binding its libp2p Ed25519 key to a federated name.',
  usage: 'cert issue --role coordinator|node|client --name NAME [--out DIR] [--key FILE] [--member-dir DIR] [--days N]',
  options: {
    role: { type: 'string', value: 'ROLE', description: `one of ${ROLES.join(', ')}` },
    name: { type: 'string', value: 'NAME', description: 'local part of the federated name, e.g. node-01' },
    out: { type: 'string', value: 'DIR', description: 'folder for peer.key, peer.crt and root.crt (default HOME/<name>)' },
    key: { type: 'string', value: 'FILE', description: 'certify this existing peer key instead of generating one' },
    'member-dir': { type: 'string', value: 'DIR', description: 'the member CA folder (default HOME/member)' },
    days: { type: 'string', value: 'N', description: 'validity in days (default 365)' }
  },
  async run (ctx) {
    const role = requireOption(ctx.values, 'role', this)
    if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`)
    const name = requireOption(ctx.values, 'name', this)
    const days = ctx.values.days != null ? Number(ctx.values.days) : undefined
    if (days != null && (!Number.isInteger(days) || days < 1)) throw new UsageError('--days must be a positive whole number')
    const layout = homeLayout(ctx.home)
    const outDir = resolve(ctx.values.out ?? join(ctx.home, name))
    const { cert, keyFile, certFile } = await (await provision()).issueComponent({
      memberDir: resolve(ctx.values['member-dir'] ?? layout.memberDir),
      outDir,
      role: role as Role,
      name,
      keyFile: ctx.values.key != null ? resolve(ctx.values.key) : undefined,
      validityDays: days
    })
    const info = (await identity()).describeCertificate(cert)
    ctx.emit({ ...info, keyFile, certFile })
    ctx.out(`Issued ${role} certificate for ${info.federatedName}`)
    ctx.out(`  peer ID  ${info.peerId}`)
    ctx.out(`  key      ${keyFile}`)
    ctx.out(`  chain    ${certFile}`)
    ctx.out(`  expires  ${info.notAfter.toISOString()}`)
  }
}

/** The component whose daemon the home's control socket serves: its coordinator, or the client `invite redeem` made */
function daemonComponent (home: string): string {
  const layout = homeLayout(home)
  const dir = [layout.component('coordinator'), layout.client].find(d => existsSync(join(d, COMPONENT_FILES.cert)))
  if (dir == null) throw new UsageError(`${home} holds neither a coordinator nor a client certificate; name the component folder with --dir`)
  return dir
}

export const certRenew: Command = {
  name: 'cert renew',
  summary: 'Renew this home\'s daemon certificate (same key, name and role) with the member CA that issued it.',
  usage: 'cert renew [--days N] [--member-dir DIR] [--dir DIR]',
  description: 'With the member CA on this machine (HOME/member, or --member-dir) the certificate is reissued here, daemon or not. Otherwise the running daemon asks its member\'s coordinator, which renews the certificate of the connection\'s verified identity unless it was revoked. Either way the file is replaced atomically and a running daemon presents the new certificate after its next restart.',
  options: {
    days: { type: 'string', value: 'N', description: 'validity in days (default 365, never beyond the member CA\'s own expiry)' },
    'member-dir': { type: 'string', value: 'DIR', description: 'renew here with the member CA in DIR (default HOME/member when it holds ca.key)' },
    dir: { type: 'string', value: 'DIR', description: 'with a member CA here: the component folder to renew (default HOME/coordinator or HOME/client)' }
  },
  async run (ctx) {
    const days = ctx.values.days != null ? Number(ctx.values.days) : undefined
    if (days != null && (!Number.isInteger(days) || days < 1)) throw new UsageError('--days must be a positive whole number')
    const layout = homeLayout(ctx.home)
    const memberDir = ctx.values['member-dir'] != null
      ? resolve(ctx.values['member-dir'])
      : existsSync(join(layout.memberDir, MEMBER_FILES.key)) ? layout.memberDir : undefined
    let result: { name: string, previousExpiry: string, expires: string, certFile: string, via: string }
    if (memberDir != null) {
      const { renewComponent } = await provision()
      const { cert, previous, certFile } = await renewComponent({ memberDir, dir: resolve(ctx.values.dir ?? daemonComponent(ctx.home)), validityDays: days })
      const info = (await identity()).describeCertificate(cert)
      result = { name: info.federatedName ?? cert.subject, previousExpiry: previous.notAfter.toISOString(), expires: cert.notAfter.toISOString(), certFile, via: memberDir }
    } else {
      if (ctx.values.dir != null) throw new UsageError('--dir needs the member CA on this machine (--member-dir); without it the running daemon renews its own certificate')
      result = await call(layout.controlSocket, 'cert.renew', { days })
    }
    ctx.emit({ ...result, restartRequired: true })
    ctx.out(`renewed the certificate of ${result.name} (by ${result.via})`)
    ctx.out(`  was valid until  ${result.previousExpiry}`)
    ctx.out(`  now valid until  ${result.expires}`)
    ctx.out(`  written to       ${result.certFile}`)
    ctx.out('A running daemon keeps presenting the old certificate until it restarts: restart it to use the new one.')
  }
}

export const certShow: Command = {
  name: 'cert show',
  summary: 'Show a certificate file in human-readable form: name, role, peer ID, issuer, validity.',
  usage: 'cert show FILE',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const { readCertificateChain, describeCertificate } = await identity()
    const certs = await readCertificateChain(resolve(ctx.positionals[0]))
    const infos = certs.map(c => describeCertificate(c))
    ctx.emit(infos)
    infos.forEach((info, i) => {
      if (i > 0) ctx.out('')
      ctx.out(`${i === 0 ? 'Certificate' : 'Issued by'}: ${info.kind}`)
      outRows(ctx, [
        ['subject', info.subject], ['name', info.federatedName], ['role', info.role], ['peer ID', info.peerId],
        ['domain', info.domain], ['federation', info.federation], ['issuer', info.issuer], ['serial', info.serial],
        ['valid from', info.notBefore.toISOString()], ['valid until', validUntil(info)], ['sha256', info.fingerprint]
      ])
    })
  }
}

/** Labelled lines, one a field; fields without a value are left out */
function outRows (ctx: CommandContext, rows: Array<[string, unknown]>): void {
  for (const [k, v] of rows) if (v != null) ctx.out(`  ${k.padEnd(12)} ${String(v)}`)
}

function validUntil (info: CertificateInfo): string {
  return `${info.notAfter.toISOString()} (${info.expiresInDays < 0 ? `EXPIRED ${-info.expiresInDays} days ago` : `${info.expiresInDays} days left`})`
}

export const identityShow: Command = {
  name: 'identity show',
  summary: 'Show the identity of this home\'s daemon: federated name, role, peer ID, member, certificate expiry.',
  usage: 'identity show [--context NAME] [--json]',
  description: 'Reads the certificate of the home\'s coordinator (a home made by "up") or client; no daemon needs to run.',
  async run (ctx) {
    const id = await readHomeIdentity(ctx.home)
    if (id == null) {
      throw new NoHomeIdentityError(`${ctx.home} holds no daemon certificate (neither coordinator/peer.crt nor client/peer.crt); "collective-p2p up" creates one`)
    }
    const { leaf, issuer } = id
    // The member is the local part of its CA's name, as the daemon's own status reports it
    const member = issuer?.federatedName?.split('@')[0]
    ctx.emit({
      context: ctx.context ?? null,
      home: ctx.home,
      certFile: id.certFile,
      name: leaf.federatedName,
      role: leaf.role,
      peerId: leaf.peerId,
      member,
      domain: leaf.domain,
      federation: issuer?.federation,
      issuer: leaf.issuer,
      notAfter: leaf.notAfter,
      expiresInDays: leaf.expiresInDays
    })
    ctx.out(`${leaf.federatedName ?? leaf.subject}`)
    outRows(ctx, [
      ['context', ctx.context], ['home', ctx.home], ['role', leaf.role], ['peer ID', leaf.peerId], ['member', member],
      ['federation', issuer?.federation], ['issuer', leaf.issuer], ['valid until', validUntil(leaf)], ['certificate', id.certFile]
    ])
  }
}

/**
 * Signs a revocation with a CA key held in a folder of this machine and hands it to the local daemon, which
 * applies it, disconnects the revoked peers and spreads it over gossip.
 */
async function revoke (ctx: CommandContext, kind: 'certificate' | 'member', caDir: string, register: string, caCertFile: string, caKeyFile: string, target: string): Promise<number> {
  const { readCertificateChain, readCaKey } = await identity()
  const { issuedCertificates } = await provision()
  const { createRevocation } = await import('../../permissions/index.js')
  const issued = await issuedCertificates(join(caDir, register))
  const { describeCertificate } = await identity()
  const match = [...issued.entries()].find(([name, cert]) => {
    const info = describeCertificate(cert)
    return name === target || info.federatedName === target || info.peerId === target
  })
  if (match == null) throw new UsageError(`${caDir} issued no certificate named or with peer ID "${target}" (known: ${[...issued.keys()].join(', ') || 'none'})`)
  const [caCert] = await readCertificateChain(join(caDir, caCertFile))
  const privateKey = await readCaKey(join(caDir, caKeyFile))
  const socket = homeLayout(ctx.home).controlSocket
  // Lamport: one more than the highest version the local daemon has seen.
  const known = await call(socket, 'revocations') as Array<{ version: number }>
  const record = await createRevocation({
    kind,
    certificate: match[1],
    signer: { cert: caCert, keys: { privateKey, publicKey: privateKey } as unknown as CryptoKeyPair },
    version: Math.max(0, ...known.map(r => r.version)) + 1,
    reason: ctx.values.reason
  })
  const r = await call(socket, 'revocation.publish', { record: Buffer.from(record.bytes).toString('base64') })
  ctx.emit(r)
  ctx.out(`revoked ${r.kind as string} ${r.name as string} (serial ${r.serial as string}); ${r.disconnected as number} connection(s) closed here, spreading to the federation`)
  return 0
}

export const certRevoke: Command = {
  name: 'cert revoke',
  summary: 'Revoke a component certificate your member CA issued: it is disconnected and refused federation-wide.',
  usage: 'cert revoke NAME|PEERID [--member-dir DIR] [--reason TEXT]',
  description: 'Needs the member CA folder (its key signs the revocation) and a running local daemon (it spreads it). Every peer applies it on receipt; peers that were away learn it within three sync periods.',
  options: {
    'member-dir': { type: 'string', value: 'DIR', description: 'the member CA folder (default HOME/member)' },
    reason: { type: 'string', value: 'TEXT', description: 'why, for the record (at most 256 bytes)' }
  },
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const dir = resolve(ctx.values['member-dir'] ?? homeLayout(ctx.home).memberDir)
    return await revoke(ctx, 'certificate', dir, MEMBER_FILES.issued, MEMBER_FILES.cert, MEMBER_FILES.key, ctx.positionals[0])
  }
}

export const memberRevoke: Command = {
  name: 'member revoke',
  summary: 'Revoke a member CA (federation root only): every certificate of that member is refused federation-wide.',
  usage: 'member revoke NAME [--root-dir DIR] [--reason TEXT]',
  options: {
    'root-dir': { type: 'string', value: 'DIR', description: 'folder with root.key and root.crt (default HOME/ca)' },
    reason: { type: 'string', value: 'TEXT', description: 'why, for the record (at most 256 bytes)' }
  },
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const dir = resolve(ctx.values['root-dir'] ?? homeLayout(ctx.home).rootDir)
    return await revoke(ctx, 'member', dir, ROOT_FILES.issued, ROOT_FILES.cert, ROOT_FILES.key, ctx.positionals[0])
  }
}
