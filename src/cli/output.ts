/** Renders rows as an aligned text table; the CLI's one table format */
export function table (headers: string[], rows: Array<Array<string | number | undefined>>): string {
  const cells = [headers, ...rows.map(r => r.map(c => c == null ? '-' : String(c)))]
  const widths = headers.map((_, i) => Math.max(...cells.map(r => r[i]?.length ?? 0)))
  return cells.map(r => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ')).join('\n')
}

export function ago (ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.round(s / 60)}m ago`
  return `${Math.round(s / 3600)}h ago`
}
