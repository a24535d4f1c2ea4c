// @peculiar/x509 resolves its algorithm plugins through tsyringe, which needs reflect-metadata loaded first. Every
// module in this folder imports the library through here so the order can never be wrong.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'

// Pin the provider to Node's WebCrypto rather than whatever the library finds first
x509.cryptoProvider.set(globalThis.crypto)

export { x509 }
export { X509Certificate } from '@peculiar/x509'
