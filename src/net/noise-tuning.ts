import { createCipheriv } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import type { MessageStream } from '@libp2p/interface'

const CHACHA_TAG_LENGTH = 16
/** Below this the WebAssembly implementation is faster than OpenSSL's setup cost (the noise package's own figure) */
const SMALL_MESSAGE_BYTES = 1200

/**
 * Noise's default crypto, except that a large message's ciphertext and tag are handed on as two buffers. The
 * default joins them with Buffer.concat: a second allocation and copy of every byte sent, which on a chunk
 * transfer is about as much memory churn as the encryption itself, and the garbage collector pays for it.
 */
export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
    if (plaintext.byteLength < SMALL_MESSAGE_BYTES) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    const cipher = createCipheriv('chacha20-poly1305', k, nonce, { authTagLength: CHACHA_TAG_LENGTH })
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
    const out = new Uint8ArrayList()
    if (plaintext instanceof Uint8Array) {
      out.append(cipher.update(plaintext))
    } else {
      for (const buf of plaintext) out.append(cipher.update(buf))
    }
    // a stream cipher: final() yields nothing, but it must run before the tag exists
    cipher.final()
    out.append(cipher.getAuthTag())
    // The noise package bundles an older uint8arraylist; lists of both versions recognise each other at run time.
    return out as unknown as ReturnType<ICryptoInterface['chaCha20Poly1305Encrypt']>
  }
}

interface SocketConnection extends MessageStream {
  socket?: { cork?: () => void, uncork?: () => void }
  sendData?: (data: Uint8ArrayList) => unknown
}

/**
 * Makes one write system call of each batch the encrypter hands the TCP connection. Noise sends every message as
 * a 2-byte length, the ciphertext and the tag, and the TCP transport writes each buffer on its own: a tiny write
 * per 64 KiB on a socket without Nagle, each its own trip through the kernel's TCP stack (on loopback, the
 * receiver's as well). Corking the socket for the batch turns them into one writev. Connections of other
 * transports are left alone.
 */
export function coalesceWrites (connection: MessageStream): void {
  const conn = connection as SocketConnection
  const socket = conn.socket
  const sendData = conn.sendData
  if (typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function' || typeof sendData !== 'function') return
  conn.sendData = (data: Uint8ArrayList) => {
    socket.cork?.()
    try {
      return sendData.call(conn, data)
    } finally {
      socket.uncork?.()
    }
  }
}
