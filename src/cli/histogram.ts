/**
 * A latency histogram with bounded memory: a bench of millions of requests keeps 23k
 * counters instead of every sample.
 *
 * @module
 */

/** Sub-buckets per power of two: values above 2^11 µs are kept within 0.1%. */
const SUB_BITS = 10;
const SUB_COUNT = 1 << SUB_BITS;
const EXACT_LIMIT = SUB_COUNT * 2;
const MAX_VALUE = 2 ** 31 - 1;

/** Records latencies in microseconds; exact below 2 ms, within 0.1% above. */
export class Histogram {
  readonly #counts = new Float64Array(EXACT_LIMIT + 21 * SUB_COUNT);
  #total = 0;
  #sum = 0;
  #max = 0;

  /** Number of recorded values. */
  get count(): number {
    return this.#total;
  }

  /** Largest recorded value (exact). */
  get max(): number {
    return this.#max;
  }

  /** Mean of the recorded values (exact), 0 when empty. */
  get mean(): number {
    return this.#total === 0 ? 0 : this.#sum / this.#total;
  }

  /** Records one value in microseconds. */
  record(micros: number): void {
    const value = Math.min(MAX_VALUE, Math.max(0, Math.round(micros)));
    this.#counts[bucketOf(value)]++;
    this.#total++;
    this.#sum += micros;
    if (micros > this.#max) this.#max = micros;
  }

  /** The value below which a fraction `q` (0..1) of the records fall; 0 when empty. */
  quantile(q: number): number {
    if (this.#total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#total));
    if (rank >= this.#total) return this.#max;
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i];
      if (seen >= rank) return Math.min(this.#max, valueOf(i));
    }
    return this.#max;
  }
}

function bucketOf(value: number): number {
  if (value < EXACT_LIMIT) return value;
  const exponent = 31 - Math.clz32(value);
  const shift = exponent - SUB_BITS;
  return EXACT_LIMIT + (shift - 1) * SUB_COUNT + ((value >>> shift) - SUB_COUNT);
}

/** The middle of a bucket's range. */
function valueOf(bucket: number): number {
  if (bucket < EXACT_LIMIT) return bucket;
  const offset = bucket - EXACT_LIMIT;
  const shift = Math.floor(offset / SUB_COUNT) + 1;
  const mantissa = (offset % SUB_COUNT) + SUB_COUNT;
  return mantissa * 2 ** shift + 2 ** (shift - 1);
}
