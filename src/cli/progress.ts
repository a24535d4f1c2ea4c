import { formatBytes } from '../util/units.js'

/** The part of a tty.WriteStream the bar needs, so tests can hand it a fake terminal */
export interface ProgressStream {
  isTTY?: boolean
  columns?: number
  write: (chunk: string) => unknown
}

export interface ProgressBarInit {
  /** Bytes expected, when known */
  total?: number
  /** Shown before the bar, e.g. the file name */
  label?: string
  /** Default process.stderr */
  stream?: ProgressStream
  /** False in --json mode, or when the data itself goes to the terminal */
  enabled?: boolean
  /** Milliseconds clock; tests pass a fake one */
  now?: () => number
  /** Transfers at most this large never show a bar (default 4 MiB) */
  thresholdBytes?: number
  /** Smallest gap between two redraws (default 100 ms, so at most 10 per second) */
  intervalMs?: number
}

export const PROGRESS_THRESHOLD_BYTES = 4 * 1024 * 1024

// How much each new rate sample counts: enough to follow real changes, little enough that the
// figure does not jitter with every socket write.
const RATE_SMOOTHING = 0.3
const CLEAR_LINE = '\r\x1b[K'

/**
 * A one-line progress bar on stderr. It stays invisible for small transfers (a bar that flashes for a few
 * milliseconds is noise) and whenever stderr is not a terminal, so logs and pipes never get escape codes.
 */
export class ProgressBar {
  private readonly stream: ProgressStream
  private readonly enabled: boolean
  private readonly now: () => number
  private readonly threshold: number
  private readonly interval: number
  private readonly label: string
  private total?: number
  private bytes = 0
  private drawn = false
  private finished = false
  private lastDraw = -Infinity
  private sampleAt: number
  private sampleBytes = 0
  private rate?: number

  constructor (init: ProgressBarInit = {}) {
    this.stream = init.stream ?? process.stderr
    this.enabled = (init.enabled ?? true) && this.stream.isTTY === true
    this.now = init.now ?? Date.now
    this.threshold = init.thresholdBytes ?? PROGRESS_THRESHOLD_BYTES
    this.interval = init.intervalMs ?? 100
    this.label = init.label ?? ''
    this.total = init.total
    this.sampleAt = this.now()
  }

  /** True once the bar has been drawn and not yet cleared */
  get visible (): boolean {
    return this.drawn
  }

  /** Bytes per second, smoothed; undefined before the first sample */
  get bytesPerSecond (): number | undefined {
    return this.rate
  }

  update (bytes: number, total?: number): void {
    if (this.finished) return
    this.bytes = bytes
    if (total != null) this.total = total
    if (!this.enabled) return
    const big = this.total != null ? this.total > this.threshold : bytes > this.threshold
    if (!big) return
    const t = this.now()
    if (t - this.lastDraw < this.interval) return
    this.sample(t)
    this.lastDraw = t
    this.stream.write(`\r${this.render()}\x1b[K`)
    this.drawn = true
  }

  /** Removes the bar so the next output starts on a clean line */
  finish (): void {
    if (this.finished) return
    this.finished = true
    if (this.drawn) this.stream.write(CLEAR_LINE)
    this.drawn = false
  }

  private sample (t: number): void {
    const dt = (t - this.sampleAt) / 1000
    if (dt <= 0) return
    const instant = (this.bytes - this.sampleBytes) / dt
    this.rate = this.rate == null ? instant : RATE_SMOOTHING * instant + (1 - RATE_SMOOTHING) * this.rate
    this.sampleAt = t
    this.sampleBytes = this.bytes
  }

  /** The bar's text without terminal control codes */
  render (): string {
    // A pty without a size reports 0 columns; assume the classic 80 rather than squeezing the bar away.
    const columns = this.stream.columns != null && this.stream.columns > 0 ? this.stream.columns : 80
    const width = Math.max(20, columns - 1)
    // Fixed-width numbers keep the bar from jittering as the figures grow.
    const rate = `${this.rate != null ? (this.rate / 1e6).toFixed(1).padStart(5) : '   --'} MB/s`
    const label = this.label.length > 0 ? `${this.label} ` : ''
    if (this.total == null || this.total <= 0) {
      return clip(`${label}${formatBytes(this.bytes)}  ${rate}`, width)
    }
    const fraction = Math.min(1, this.bytes / this.total)
    const pct = `${Math.floor(fraction * 100)}%`.padStart(4)
    const eta = this.rate != null && this.rate > 0 ? `ETA ${duration((this.total - this.bytes) / this.rate)}` : 'ETA --:--'
    const totalText = formatBytes(this.total)
    const tail = ` ${formatBytes(this.bytes).padStart(totalText.length)} / ${totalText}  ${rate}  ${eta}`
    const head = `${label}${pct} `
    // The bar takes whatever the numbers leave, within reason; a line that wraps would break the \r redraw.
    const barWidth = Math.min(40, width - head.length - tail.length - 2)
    if (barWidth < 5) return clip(`${head.trimEnd()}${tail}`, width)
    const full = Math.round(fraction * barWidth)
    return `${head}[${'#'.repeat(full)}${'.'.repeat(barWidth - full)}]${tail}`
  }
}

function clip (s: string, width: number): string {
  return s.length > width ? s.slice(0, width) : s
}

/** "m:ss", or "h:mm:ss" past an hour */
export function duration (seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--'
  const s = Math.ceil(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`
}
