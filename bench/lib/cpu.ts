import { readFile, readdir } from 'node:fs/promises'

/** Kernel clock ticks per second for /proc/<pid>/stat times: 100 on every Linux build Node supports */
const TICKS_PER_SECOND = 100

interface ProcStat { pid: number, pgrp: number, cpuS: number, childrenCpuS: number }

function parseStat (text: string): ProcStat {
  // the command name (field 2) may hold spaces and parentheses: fields are counted after its closing one
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const tick = (i: number): number => Number(fields[i - 3]) / TICKS_PER_SECOND
  return { pid: Number(text.slice(0, text.indexOf(' '))), pgrp: Number(fields[5 - 3]), cpuS: tick(14) + tick(15), childrenCpuS: tick(16) + tick(17) }
}

async function statOf (pid: number | 'self'): Promise<ProcStat | undefined> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return undefined
  }
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone */
export async function cpuSeconds (pid: number): Promise<number> {
  return (await statOf(pid))?.cpuS ?? 0
}

/** CPU seconds of every live process in a process group, by pid */
export async function groupCpuSeconds (pgrp: number): Promise<Map<number, number>> {
  const out = new Map<number, number>()
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = await statOf(Number(name))
    if (s?.pgrp === pgrp) out.set(s.pid, s.cpuS)
  }
  return out
}

/** CPU seconds of this process's children that have exited and been reaped (the CLI commands we ran) */
export async function reapedChildrenCpuSeconds (): Promise<number> {
  return (await statOf('self'))?.childrenCpuS ?? 0
}
