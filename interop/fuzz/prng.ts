/**
 * A small seeded PRNG (sfc32: 128-bit state, passes PractRand far beyond what a fuzzer draws). Every case gets its
 * own generator derived from (run seed, case index), so any one case can be replayed alone.
 */
export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor (seed: number, stream = 0) {
    this.a = 0x9e3779b9
    this.b = seed >>> 0
    this.c = stream >>> 0
    this.d = 1
    for (let i = 0; i < 15; i++) this.next()
  }

  /** The generator of case `index` of the run seeded with `seed` */
  static forCase (seed: number, index: number): Prng { return new Prng(seed, index) }

  /** Uniform 32-bit unsigned integer */
  next (): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** Integer in [min, max] */
  int (min: number, max: number): number {
    return min + Math.floor((this.next() / 0x1_0000_0000) * (max - min + 1))
  }

  chance (p: number): boolean { return this.next() / 0x1_0000_0000 < p }

  pick<T> (items: readonly T[]): T { return items[this.int(0, items.length - 1)] }

  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i += 4) {
      const v = this.next()
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff
    }
    return out
  }
}

/** A fresh 32-bit seed */
export function randomSeed (): number { return Math.floor(Math.random() * 0x1_0000_0000) >>> 0 }
