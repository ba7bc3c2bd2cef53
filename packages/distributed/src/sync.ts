import type { Parameter } from '@tessera/tensor-core';
import { tf } from '@tessera/tensor-core';
import type { GradientUpdate, TrainerCallback, TrainerContext } from '@tessera/trainers';
import { DistributedError } from './addon.js';
import type { ProcessGroup } from './group.js';

export interface GradientSyncOptions {
  /** Largest bucket in MiB (PyTorch DDP's bucket_cap_mb). Default 25. */
  bucketCapMb?: number;
  /** The first bucket's cap in MiB: small, so the first all-reduce starts early (DDP: 1). */
  firstBucketMb?: number;
}

/** Gradients of one all-reduce: their names, element counts and offsets in one float32 buffer. */
interface Bucket {
  names: string[];
  sizes: number[];
  shapes: number[][];
  buffer: Float32Array;
}

/** Per-step timing of the synchronisation, in milliseconds (for the bench and the end-of-run line). */
export interface SyncTimings {
  steps: number;
  /** Reading gradients out of the backend into buckets. */
  packMs: number;
  /** Time the JS thread waited for all-reduces after the last bucket was packed. */
  waitMs: number;
  /** Writing the reduced buckets back as tensors. */
  unpackMs: number;
  /** Seconds inside MPI (summed over operations) as ms: wire time that packing could hide. */
  mpiMs: number;
  /** Gradient bytes all-reduced per step. */
  bytesPerStep: number;
  buckets: number;
}

const MiB = 1024 * 1024;

/**
 * Data-parallel training as a Trainer callback, PyTorch DDP's recipe: parameters broadcast
 * from rank 0 when training begins; each update's summed gradients (plus loss and weight)
 * all-reduced in buckets, in reverse parameter order (the order backward produces them),
 * before the trainer divides and the optimizer steps, so every rank applies the same
 * update; and stop decisions (early stopping, Ctrl-C) agreed at each step's start.
 *
 * Gradient accumulation needs nothing here: the trainer sums micro-batches locally and
 * this runs once per update. tfjs computes all gradients in one `variableGrads` call and
 * offers no per-gradient hook, so the all-reduce cannot overlap backward; what overlaps is
 * bucket k on the wire while bucket k+1 is read out of the backend.
 */
export class GradientSyncCallback implements TrainerCallback {
  readonly name = 'gradient-sync';
  #buckets: Bucket[] | undefined;
  readonly #capBytes: number;
  readonly #firstBytes: number;
  readonly timings: SyncTimings = {
    steps: 0,
    packMs: 0,
    waitMs: 0,
    unpackMs: 0,
    mpiMs: 0,
    bytesPerStep: 0,
    buckets: 0,
  };

  constructor(
    readonly group: ProcessGroup,
    o: GradientSyncOptions = {},
  ) {
    this.#capBytes = (o.bucketCapMb ?? 25) * MiB;
    this.#firstBytes = (o.firstBucketMb ?? 1) * MiB;
  }

  async onTrainBegin(ctx: TrainerContext): Promise<void> {
    if (ctx.world.size !== this.group.size || ctx.world.rank !== this.group.rank)
      throw new DistributedError(
        `gradient-sync: the trainer runs as rank ${ctx.world.rank} of ${ctx.world.size} but MPI says ${this.group.rank} of ${this.group.size}; pass the group's world to the Trainer.`,
      );
    this.group.setAbortNote(
      () => `the output directory is ${ctx.args.output_dir}; resume with --resume ${ctx.args.output_dir}`,
    );
    const params = uniqueParameters(ctx);
    await this.#checkSameModel(params);
    await this.#broadcastParameters(params);
  }

  /** Every rank must hold the same parameter names and shapes, or the all-reduces would mix them up. */
  async #checkSameModel(params: [string, Parameter][]): Promise<void> {
    const text = params.map(([n, p]) => `${n}:${p.shape.join('x')}:${p.dtype}`).join(';');
    const mine = new Float64Array([fnv1a(text), params.length]);
    const all = new Float64Array(2 * this.group.size);
    await this.group.allGather(mine, all);
    for (let r = 0; r < this.group.size; r++) {
      if (all[2 * r] !== mine[0] || all[2 * r + 1] !== mine[1])
        throw new DistributedError(
          `rank ${r} holds a different model than rank ${this.group.rank} (${all[2 * r + 1]} vs ${params.length} parameters, or other names/shapes): every rank must run the same config.`,
        );
    }
  }

  async #broadcastParameters(params: [string, Parameter][]): Promise<void> {
    for (const [, p] of params) {
      const values = (await p.variable.data()) as Float32Array | Int32Array | Uint8Array;
      const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      await this.group.broadcast(bytes, 0);
      if (this.group.rank !== 0) {
        const fresh = tf.tensor(values.slice(), p.shape, p.dtype);
        p.assign(fresh);
        fresh.dispose();
      }
    }
  }

  /** A stop any rank decided (early stopping on rank 0, Ctrl-C anywhere) stops every rank at the same step. */
  async onStepBegin(ctx: TrainerContext): Promise<void> {
    const width = 64;
    const mine = new Uint8Array(width);
    if (ctx.control.shouldStop)
      mine.set(new TextEncoder().encode((ctx.control.stopReason ?? 'stopped').slice(0, width)));
    const all = new Uint8Array(width * this.group.size);
    await this.group.allGather(mine, all);
    for (let r = 0; r < this.group.size; r++) {
      const bytes = all.subarray(r * width, (r + 1) * width);
      if (bytes[0] === 0) continue;
      if (!ctx.control.shouldStop) {
        ctx.control.shouldStop = true;
        ctx.control.stopReason = new TextDecoder().decode(bytes).replace(/\0+$/, '');
        if (ctx.isMainProcess) await ctx.save();
      }
      return;
    }
  }

  async onPreOptimizerStep(ctx: TrainerContext, update: GradientUpdate): Promise<void> {
    const buckets = (this.#buckets ??= this.#layout(ctx, update));
    let packMs = 0;
    // Before the first all-reduce starts: one may finish while the next bucket is packed.
    const mpiBefore = this.group.stats.mpiSeconds;
    const pending: Promise<void>[] = [];
    for (const bucket of buckets) {
      const t0 = performance.now();
      const values = await Promise.all(bucket.names.map((n) => update.grads.get(n)?.data() as Promise<Float32Array>));
      let offset = 0;
      for (let i = 0; i < bucket.names.length; i++) {
        const v = values[i];
        // A rank whose micro-batches scored nothing took no gradient: it adds zeros.
        if (v) bucket.buffer.set(v, offset);
        else bucket.buffer.fill(0, offset, offset + bucket.sizes[i]!);
        offset += bucket.sizes[i]!;
      }
      packMs += performance.now() - t0;
      pending.push(this.group.allReduce(bucket.buffer, 'sum'));
    }
    const scalars = new Float64Array([update.lossSum, update.weight, update.tokens]);
    pending.push(this.group.allReduce(scalars, 'sum'));
    const t1 = performance.now();
    await Promise.all(pending);
    const waitMs = performance.now() - t1;
    const t2 = performance.now();
    for (const g of update.grads.values()) g.dispose();
    update.grads.clear();
    for (const bucket of buckets) {
      let offset = 0;
      for (let i = 0; i < bucket.names.length; i++) {
        const n = bucket.sizes[i]!;
        update.grads.set(bucket.names[i]!, tf.tensor(bucket.buffer.slice(offset, offset + n), bucket.shapes[i]));
        offset += n;
      }
    }
    update.lossSum = scalars[0]!;
    update.weight = scalars[1]!;
    update.tokens = scalars[2]!;
    const t = this.timings;
    t.steps++;
    t.packMs += packMs;
    t.waitMs += waitMs;
    t.unpackMs += performance.now() - t2;
    // MPI's own clock: how long this update's all-reduces took, whether they ended during packing or the wait.
    t.mpiMs += (this.group.stats.mpiSeconds - mpiBefore) * 1000;
  }

  /** Buckets in reverse parameter order, the first one small, none over the cap (unless one gradient is). */
  #layout(ctx: TrainerContext, update: GradientUpdate): Bucket[] {
    const order = uniqueParameters(ctx)
      .map(([n]) => n)
      .filter((n) => update.grads.has(n))
      .reverse();
    const missing = [...update.grads.keys()].filter((n) => !order.includes(n));
    if (missing.length)
      throw new DistributedError(`gradient-sync: gradients for unknown parameters ${missing.slice(0, 5).join(', ')}.`);
    const buckets: Bucket[] = [];
    let names: string[] = [];
    let bytes = 0;
    const close = () => {
      if (!names.length) return;
      const shapes = names.map((n) => update.grads.get(n)!.shape);
      const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
      buckets.push({ names, sizes, shapes, buffer: new Float32Array(sizes.reduce((a, b) => a + b, 0)) });
      names = [];
      bytes = 0;
    };
    for (const name of order) {
      const g = update.grads.get(name)!;
      if (g.dtype !== 'float32')
        throw new DistributedError(`gradient-sync: ${name} has a ${g.dtype} gradient; only float32 is reduced.`);
      const size = g.size * 4;
      const cap = buckets.length === 0 ? this.#firstBytes : this.#capBytes;
      if (names.length && bytes + size > cap) close();
      names.push(name);
      bytes += size;
    }
    close();
    this.timings.bytesPerStep = buckets.reduce((a, b) => a + b.buffer.byteLength, 0);
    this.timings.buckets = buckets.length;
    return buckets;
  }

  onTrainEnd(ctx: TrainerContext): void {
    const t = this.timings;
    if (!ctx.isMainProcess || !t.steps) return;
    const per = (ms: number) => (ms / t.steps).toFixed(1);
    ctx.log(
      `gradient-sync: ${this.group.size} ranks, ${(t.bytesPerStep / MiB).toFixed(2)} MiB in ${t.buckets} buckets per update; ` +
        `per update: pack ${per(t.packMs)} ms, wait ${per(t.waitMs)} ms, unpack ${per(t.unpackMs)} ms, MPI ${per(t.mpiMs)} ms`,
    );
  }
}

/** Named parameters, each Parameter once (tied weights appear under one name). */
function uniqueParameters(ctx: TrainerContext): [string, Parameter][] {
  const seen = new Set<Parameter>();
  const out: [string, Parameter][] = [];
  for (const [name, p] of ctx.model.namedParameters()) {
    if (seen.has(p)) continue;
    seen.add(p);
    out.push([name, p]);
  }
  return out;
}

/** 32-bit FNV-1a of a string: the same text gives the same number on every rank. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
