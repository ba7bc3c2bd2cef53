import { DistributedError, type MpiAddon, mpiAddon, type Reduction } from './addon.js';

type Numeric = Float32Array | Float64Array | Int32Array;

export interface GroupOptions {
  /** A collective that has not completed after this many seconds aborts the job (a peer hung). Default 600. */
  timeoutSeconds?: number;
  /** Where the group's own messages go (default stderr). */
  log?: (line: string) => void;
}

/** Counters of the collectives this process ran. */
export interface CommStats {
  operations: number;
  /** Bytes of the buffers handed to collectives (per rank, one direction). */
  bytes: number;
  /** Seconds spent inside MPI calls (on the communication thread). */
  mpiSeconds: number;
}

/**
 * This process's membership of an MPI job: rank, size and the collectives, on JS-owned
 * buffers. Collectives run one at a time in call order (MPI requires the same order on
 * every rank), off the JS thread: a caller may queue several and pack the next buffer
 * while the previous one is on the wire.
 */
export class ProcessGroup {
  readonly rank: number;
  readonly size: number;
  readonly library: string;
  readonly host: string;
  readonly threadLevel: string;
  readonly stats: CommStats = { operations: 0, bytes: 0, mpiSeconds: 0 };
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  #abortNote: () => string = () => '';
  readonly #timeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #onTerm = () => {
    // mpirun sends SIGTERM to every rank when one exits early or the job is interrupted.
    const note = this.#abortNote();
    this.#log(
      `rank ${this.rank}/${this.size}: stopped by SIGTERM: another rank of the job exited or mpirun was interrupted ` +
        `(mpirun names the rank above). Checkpoints are written atomically, so every complete one is intact${note ? `; ${note}` : ''}.`,
    );
    process.exit(143);
  };

  private constructor(
    private readonly mpi: MpiAddon,
    o: GroupOptions,
  ) {
    const info = mpi.init();
    this.rank = info.rank;
    this.size = info.size;
    this.library = info.library;
    this.host = info.host;
    this.threadLevel = info.threadLevel;
    this.#timeoutMs = (o.timeoutSeconds ?? 600) * 1000;
    this.#log = o.log ?? ((line) => process.stderr.write(`${line}\n`));
    if (info.threadLevel !== 'multiple' && info.threadLevel !== 'serialized') {
      throw new DistributedError(
        `${info.library} gives thread level "${info.threadLevel}"; collectives run off the JS thread and need ` +
          '"serialized" or better. Use a thread-enabled MPI build (Debian\'s OpenMPI is one).',
      );
    }
    process.on('SIGTERM', this.#onTerm);
  }

  /** Initialises MPI (once per process) and joins MPI_COMM_WORLD. */
  static join(options: GroupOptions = {}): ProcessGroup {
    return new ProcessGroup(mpiAddon(), options);
  }

  get isMain(): boolean {
    return this.rank === 0;
  }

  /** A line for the SIGTERM message (e.g. the latest checkpoint). */
  setAbortNote(note: () => string): void {
    this.#abortNote = note;
  }

  #enqueue(what: string, bytes: number, run: () => Promise<number>): Promise<void> {
    if (this.#closed) return Promise.reject(new DistributedError(`${what} after the process group was finalized.`));
    const result = this.#tail.then(() => this.#watch(what, run()));
    this.#tail = result.catch(() => undefined);
    this.stats.operations++;
    this.stats.bytes += bytes;
    return result.then((seconds) => {
      this.stats.mpiSeconds += seconds;
    });
  }

  async #watch(what: string, op: Promise<number>): Promise<number> {
    const timer = setTimeout(() => {
      this.#log(
        `rank ${this.rank}/${this.size}: ${what} did not complete in ${this.#timeoutMs / 1000} s: another rank is stuck or gone. Aborting the job.`,
      );
      this.mpi.abort(1);
    }, this.#timeoutMs);
    // The watchdog must not keep an otherwise finished process alive.
    timer.unref();
    try {
      return await op;
    } catch (err) {
      throw new DistributedError(`rank ${this.rank}/${this.size}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reduces `buffer` in place across all ranks ("avg": the sum divided by the world size). */
  allReduce(buffer: Numeric, op: Reduction = 'sum'): Promise<void> {
    return this.#enqueue('all-reduce', buffer.byteLength, () => this.mpi.allReduce(buffer, op));
  }

  /** Every rank's `buffer` receives rank `root`'s. */
  broadcast(buffer: Numeric | Uint8Array, root = 0): Promise<void> {
    if (!(Number.isInteger(root) && root >= 0 && root < this.size))
      return Promise.reject(new DistributedError(`broadcast root must be a rank in [0, ${this.size}); got ${root}.`));
    return this.#enqueue('broadcast', buffer.byteLength, () => this.mpi.broadcast(buffer, root));
  }

  /** `recv` (size × send.length) receives every rank's `send`, rank r's at offset r · send.length. */
  allGather<T extends Numeric | Uint8Array>(send: T, recv: T): Promise<void> {
    return this.#enqueue('all-gather', send.byteLength, () => this.mpi.allGather(send, recv));
  }

  /** Reduces `send` (size × recv.length) across ranks; rank r keeps block r in `recv`. */
  reduceScatter(send: Numeric, recv: Numeric, op: Reduction = 'sum'): Promise<void> {
    return this.#enqueue('reduce-scatter', send.byteLength, () => this.mpi.reduceScatter(send, recv, op));
  }

  barrier(): Promise<void> {
    return this.#enqueue('barrier', 0, () => this.mpi.barrier());
  }

  /** Waits for queued collectives, then leaves the job (MPI_Finalize). */
  async finalize(): Promise<void> {
    if (this.#closed) return;
    await this.#tail;
    this.#closed = true;
    process.off('SIGTERM', this.#onTerm);
    this.mpi.finalize();
  }
}
