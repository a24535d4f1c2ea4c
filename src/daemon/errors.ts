export class IdentityConfigError extends Error {
  static name = 'IdentityConfigError'
  name = 'IdentityConfigError'
}
