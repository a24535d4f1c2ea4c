import type { RunningDaemon } from './daemons.js'

/** One scrape of a daemon's /metrics */
export async function scrape (d: RunningDaemon): Promise<string> {
  const res = await fetch(d.status.metrics as string)
  if (res.status !== 200) throw new Error(`GET ${String(d.status.metrics)}: ${res.status}`)
  return await res.text()
}

/** The value of one series, e.g. sample(text, 'collective_connection_attempts_total{direction="inbound"}'); 0 if absent */
export function sample (text: string, series: string): number {
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  return line == null ? 0 : Number(line.slice(series.length + 1))
}

