import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { TokenizerError } from './errors.js';
import type { Encoding } from './processors.js';
import type { EncodeInput, EncodeOptions, Tokenizer } from './tokenizer.js';

type Reply = { id: number; encodings?: Encoding[]; ids?: Int32Array; lengths?: Int32Array; error?: string };

/**
 * `encodeBatch` over worker threads: each worker holds its own copy of the tokenizer (built
 * once, from its tokenizer.json), and a batch is cut into one contiguous slice per worker,
 * so the results come back in input order. Worth it for large batches; a worker costs one
 * tokenizer load at start (seconds for a 262k vocabulary).
 */
export class TokenizerPool {
  #next = 0;
  readonly #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  private constructor(private readonly workers: Worker[]) {
    for (const w of workers) {
      w.on('message', (m: Reply) => {
        const job = this.#pending.get(m.id);
        if (!job) return;
        this.#pending.delete(m.id);
        if (m.error) job.reject(new TokenizerError(`TokenizerPool: ${m.error}`));
        else job.resolve(m);
      });
      w.on('error', (err) => {
        for (const job of this.#pending.values()) job.reject(err);
        this.#pending.clear();
      });
    }
  }

  /** Starts `workers` threads (default: every core Node reports), each with a copy of `tokenizer`. */
  static async create(tokenizer: Tokenizer, options: { workers?: number } = {}): Promise<TokenizerPool> {
    const n = options.workers ?? availableParallelism();
    if (!Number.isInteger(n) || n < 1) throw new TokenizerError(`TokenizerPool: workers must be >= 1; got ${n}.`);
    const json = tokenizer.toJSON();
    const url = new URL('./tokenizers/pool-worker.js', import.meta.url);
    const workers = Array.from({ length: n }, () => new Worker(url, { workerData: { json } }));
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const ready = (m: { ready?: boolean }) => {
              if (!m.ready) return;
              w.off('message', ready);
              resolve();
            };
            w.on('message', ready);
            w.once('error', reject);
          }),
      ),
    );
    return new TokenizerPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Encodings of `inputs`, in order, as Tokenizer.encodeBatch gives them. */
  async encodeBatch(inputs: EncodeInput[], options: EncodeOptions = {}): Promise<Encoding[]> {
    return (await this.#run(inputs, options, false)).flatMap((r) => r.encodings ?? []);
  }

  /**
   * Only the ids of each input, in order, as Int32Array views of buffers the workers hand
   * over without copying: the fast path for tokenizing a corpus (full encodings are copied
   * between threads, which costs more than the encoding saves).
   */
  async encodeIdsBatch(inputs: EncodeInput[], options: EncodeOptions = {}): Promise<Int32Array[]> {
    const out: Int32Array[] = [];
    for (const r of await this.#run(inputs, options, true)) {
      if (!r.ids || !r.lengths) continue;
      let at = 0;
      for (const n of r.lengths) {
        out.push(r.ids.subarray(at, at + n));
        at += n;
      }
    }
    return out;
  }

  #run(inputs: EncodeInput[], options: EncodeOptions, idsOnly: boolean): Promise<Reply[]> {
    const per = Math.ceil(inputs.length / this.workers.length);
    return Promise.all(
      this.workers.map((w, k) => {
        const slice = inputs.slice(k * per, (k + 1) * per);
        if (!slice.length) return Promise.resolve({ id: -1 } as Reply);
        const id = this.#next++;
        return new Promise<Reply>((resolve, reject) => {
          this.#pending.set(id, { resolve, reject });
          w.postMessage({ id, inputs: slice, options, idsOnly });
        });
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
