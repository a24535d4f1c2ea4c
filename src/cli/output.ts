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

// C0 but tab and newline, DEL, and C1 (U+009B is CSI, which some terminals take as ESC [)
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g

/**
 * Text for a terminal, its control characters shown as escapes (`\x1b`) instead of sent. Names and messages come
 * from other members' coordinators too: this daemon refuses such names, but one running an older or a modified
 * version may hold or send them, and printed raw they would drive the reader's terminal. JSON output needs none of
 * this: JSON.stringify escapes them already.
 */
export function printable (text: string): string {
  return text.replace(UNPRINTABLE, c => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}
