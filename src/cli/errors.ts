export class UsageError extends Error {
  static name = 'UsageError'
  name = 'UsageError'
}
