// Reading a control request's parameters: the socket carries JSON, so every handler checks what it gets.

export function str (params: Record<string, unknown>, key: string): string {
  const v = params[key]
  if (typeof v !== 'string') throw new TypeError(`parameter "${key}" must be a string`)
  return v
}

export function optionalStr (params: Record<string, unknown>, key: string): string | undefined {
  return params[key] == null ? undefined : str(params, key)
}

export function optionalNumber (params: Record<string, unknown>, key: string): number | undefined {
  const v = params[key]
  if (v == null) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`parameter "${key}" must be a non-negative integer`)
  return v
}
