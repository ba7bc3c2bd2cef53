/**
 * Reuse of kernel output buffers. A fresh multi-megabyte Float32Array is zero-filled by V8,
 * page-faulted in by the first write and counted as external memory that drives extra
 * garbage collections: measured on a 1024² sgemm, a fresh output halves the GFLOP/s. A
 * training step allocates the same sizes every step, so buffers released by disposed
 * tensors are handed to the next kernel that asks for that length.
 *
 * Only arrays this pool allocated are ever recycled, and never one that may still be seen
 * elsewhere: an array read out through readSync/read (dataSync(), data(), arraySync()) or
 * viewed by another tensor (tfjs-backend-cpu's Slice returns a subarray of its input) is
 * marked escaped and left to the garbage collector.
 *
 * At the byte cap the pool evicts whole sizes, least recently used first: a process that
 * trains one model and then another (the bench, a sweep, distillation's teacher then the
 * student) must not keep the first model's sizes forever while every buffer of the second
 * misses — measured: BERT after the large GPT ran 30% slower with the old "drop when full".
 */
export interface PoolStats {
  /** Arrays waiting for reuse, and their bytes. */
  pooledArrays: number;
  pooledBytes: number;
  /** Allocations served from the pool / newly allocated since the last clear. */
  hits: number;
  misses: number;
  /** Arrays dropped at the cap to make room for a more recently used size. */
  evictions: number;
  /** The byte cap on what the pool keeps (TESSERA_NATIVE_POOL_MB, default 1024). */
  capBytes: number;
}

/** Arrays shorter than this are cheap for V8 to allocate; pooling them costs more than it saves. */
const MIN_POOLED_LENGTH = 1024;

function capFromEnv(): number {
  const mb = Number(process.env.TESSERA_NATIVE_POOL_MB);
  return (Number.isFinite(mb) && mb >= 0 ? mb : 1024) * 2 ** 20;
}

export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  /** Evictions since the last clear: arrays dropped to make room for a more recent size. */
  private evictions = 0;
  /** Arrays handed out by alloc() and not yet released: the only ones release() accepts. */
  private owned = new WeakSet<Float32Array>();
  private escaped = new WeakSet<ArrayBufferLike>();
  private pooledBytes = 0;
  private hits = 0;
  private misses = 0;

  /**
   * `create` makes the arrays the pool hands out when none of that length is free (the
   * native backend's start on a 64-byte boundary); a plain Float32Array without it.
   */
  constructor(
    private capBytes = capFromEnv(),
    private readonly create: (length: number) => Float32Array = (length) => new Float32Array(length),
  ) {}

  /** An array of `length` floats with unspecified contents: the caller writes every element. */
  alloc(length: number): Float32Array {
    if (length < MIN_POOLED_LENGTH) return new Float32Array(length);
    const bucket = this.free.get(length);
    let array = bucket?.pop();
    if (array) {
      this.hits++;
      this.pooledBytes -= array.byteLength;
      this.touch(length, bucket!);
    } else {
      this.misses++;
      array = this.create(length);
    }
    this.owned.add(array);
    return array;
  }

  /** An array of `length` zeros. */
  zeros(length: number): Float32Array {
    const array = this.alloc(length);
    return length >= MIN_POOLED_LENGTH ? array.fill(0) : array;
  }

  /** `values` may be seen outside the backend from now on: never recycle its buffer. */
  escape(values: unknown): void {
    if (ArrayBuffer.isView(values)) this.escaped.add(values.buffer);
  }

  /** Called when the tensor holding `values` is gone: keep the array for the next alloc(). */
  release(values: unknown): void {
    if (!(values instanceof Float32Array) || !this.owned.has(values)) return;
    this.owned.delete(values);
    if (this.escaped.has(values.buffer)) return;
    if (values.byteLength > this.capBytes) return;
    const bucket = this.free.get(values.length) ?? [];
    this.evictFor(values.byteLength, values.length);
    this.touch(values.length, bucket);
    bucket.push(values);
    this.pooledBytes += values.byteLength;
  }

  /** Marks size `length` as the most recently used (Map order is the recency order). */
  private touch(length: number, bucket: Float32Array[]): void {
    this.free.delete(length);
    this.free.set(length, bucket);
  }

  /**
   * Drops arrays of the least recently used sizes until `bytes` more fit under the cap; the
   * size being released (`keep`) goes last, so a pool full of one size still turns over.
   */
  private evictFor(bytes: number, keep: number): void {
    const fits = () => this.pooledBytes + bytes <= this.capBytes;
    const drain = (length: number, bucket: Float32Array[]) => {
      while (bucket.length && !fits()) {
        this.pooledBytes -= bucket.pop()!.byteLength;
        this.evictions++;
      }
      if (!bucket.length) this.free.delete(length);
    };
    for (const [length, bucket] of this.free) {
      if (fits()) return;
      if (length !== keep) drain(length, bucket);
    }
    const own = this.free.get(keep);
    if (own && !fits()) drain(keep, own);
  }

  /** Drops every pooled array (they become garbage) and resets the counters. */
  clear(): void {
    this.free.clear();
    this.pooledBytes = 0;
    this.hits = 0;
    this.misses = 0;
    this.evictions = 0;
  }

  setCapBytes(bytes: number): void {
    this.capBytes = bytes;
    if (this.pooledBytes > bytes) {
      this.free.clear();
      this.pooledBytes = 0;
    }
  }

  stats(): PoolStats {
    let pooledArrays = 0;
    for (const bucket of this.free.values()) pooledArrays += bucket.length;
    return {
      pooledArrays,
      pooledBytes: this.pooledBytes,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      capBytes: this.capBytes,
    };
  }
}
