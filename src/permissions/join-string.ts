// The one line a member hands a newcomer: where to redeem, what to trust and the code. Everything a brand-new
// machine needs to be sure it talks to the right federation is in it: the coordinator's peer ID (which Noise
// authenticates) and the SHA-256 of the root certificate (the Noise prologue of every collective connection, and
// what the newcomer checks the root it receives against).
import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { base32 } from 'multiformats/bases/base32'
import { validateDomain } from '../identity/index.js'
import { InvalidJoinStringError } from './errors.js'

export const JOIN_SCHEME = 'collective-p2p:'
export const MAX_JOIN_STRING_LENGTH = 4096
export const MAX_JOIN_ADDRS = 8

const CODE_BYTES = 16
/** 128 bits in RFC 4648 base32, lowercase, no padding */
const CODE = /^[a-z2-7]{26}$/
const P2P = 421

export interface JoinInfo {
  /** Federation domain, e.g. `collective.local` */
  federation: string
  /** SHA-256 of the root certificate (DER), lowercase hex */
  rootFingerprint: string
  /** The inviting coordinator's addresses, each ending in /p2p/<its peer ID> */
  addrs: Multiaddr[]
  /** The coordinator's peer ID, from the addresses */
  peerId: string
  code: string
}

/** A fresh invite code: 128 random bits, 26 characters of base32 */
export function generateInviteCode (): string {
  return base32.baseEncode(randomBytes(CODE_BYTES))
}

/**
 * Canonical form of a code typed or pasted by a person: case, spaces and dashes do not matter.
 *
 * @throws InvalidJoinStringError
 */
export function parseInviteCode (input: string): string {
  const code = typeof input === 'string' ? input.toLowerCase().replace(/[\s-]/g, '') : ''
  if (!CODE.test(code)) throw new InvalidJoinStringError('invalid invite code: expected 26 characters of a-z and 2-7')
  return code
}

function peerOf (addr: Multiaddr): string {
  const ids = addr.getComponents().filter(c => c.code === P2P)
  if (ids.length !== 1 || ids[0].value == null) throw new InvalidJoinStringError(`address ${addr.toString()} must end in exactly one /p2p/<peer ID>`)
  try {
    return peerIdFromString(ids[0].value).toString()
  } catch {
    throw new InvalidJoinStringError(`address ${addr.toString()} holds an invalid peer ID`)
  }
}

function checked (info: Omit<JoinInfo, 'peerId'>): JoinInfo {
  try {
    validateDomain(info.federation)
  } catch {
    throw new InvalidJoinStringError(`invalid federation ${JSON.stringify(info.federation)}`)
  }
  if (!/^[0-9a-f]{64}$/.test(info.rootFingerprint)) throw new InvalidJoinStringError('root fingerprint must be 64 hex digits (SHA-256)')
  if (info.addrs.length === 0 || info.addrs.length > MAX_JOIN_ADDRS) {
    throw new InvalidJoinStringError(`a join string carries 1 to ${MAX_JOIN_ADDRS} coordinator addresses, not ${info.addrs.length}`)
  }
  const peers = new Set(info.addrs.map(peerOf))
  if (peers.size !== 1) throw new InvalidJoinStringError('the addresses of a join string must all name the same coordinator')
  return { ...info, code: parseInviteCode(info.code), peerId: [...peers][0] }
}

/**
 * `collective-p2p://join?fed=collective.local&root=<sha256 hex>&addr=<multiaddr>[&addr=...]&code=<code>`
 *
 * @throws InvalidJoinStringError
 */
export function formatJoinString (info: Omit<JoinInfo, 'peerId' | 'addrs'> & { addrs: Array<Multiaddr | string> }): string {
  const parsed = checked({ ...info, rootFingerprint: info.rootFingerprint.toLowerCase(), addrs: info.addrs.map(a => typeof a === 'string' ? multiaddr(a) : a) })
  const params = new URLSearchParams({ fed: parsed.federation, root: parsed.rootFingerprint })
  for (const addr of parsed.addrs) params.append('addr', addr.toString())
  params.append('code', parsed.code)
  const text = `${JOIN_SCHEME}//join?${params.toString()}`
  if (text.length > MAX_JOIN_STRING_LENGTH) throw new InvalidJoinStringError(`join string is longer than ${MAX_JOIN_STRING_LENGTH} characters`)
  return text
}

/** @throws InvalidJoinStringError naming what is wrong */
export function parseJoinString (input: string): JoinInfo {
  if (typeof input !== 'string') throw new InvalidJoinStringError('join string must be a string')
  const text = input.trim()
  if (text.length > MAX_JOIN_STRING_LENGTH) throw new InvalidJoinStringError(`join string is longer than ${MAX_JOIN_STRING_LENGTH} characters`)
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new InvalidJoinStringError('not a join string: expected collective-p2p://join?...')
  }
  if (url.protocol !== JOIN_SCHEME || url.host !== 'join') throw new InvalidJoinStringError('not a join string: expected collective-p2p://join?...')
  const one = (name: string, what: string): string => {
    const values = url.searchParams.getAll(name)
    if (values.length !== 1) throw new InvalidJoinStringError(`join string must carry exactly one ${name}= (${what})`)
    return values[0]
  }
  const addrs = url.searchParams.getAll('addr').map(a => {
    try {
      return multiaddr(a)
    } catch {
      throw new InvalidJoinStringError(`invalid coordinator address ${JSON.stringify(a)}`)
    }
  })
  return checked({ federation: one('fed', 'the federation'), rootFingerprint: one('root', 'the root fingerprint').toLowerCase(), addrs, code: one('code', 'the invite code') })
}
