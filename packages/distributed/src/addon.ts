import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { TesseraError } from '@tessera/tensor-core';

export class DistributedError extends TesseraError {}

type Numeric = Float32Array | Float64Array | Int32Array;
export type Reduction = 'sum' | 'avg' | 'max' | 'min';

/** The binding's functions (native/mpi_addon.cc). Collectives resolve to the seconds spent inside MPI. */
export interface MpiAddon {
  init(): { rank: number; size: number; threadLevel: string; library: string; host: string };
  finalize(): void;
  abort(code: number): void;
  barrier(): Promise<number>;
  allReduce(buffer: Numeric, op: Reduction): Promise<number>;
  broadcast(buffer: Numeric | Uint8Array, root: number): Promise<number>;
  allGather(send: Numeric | Uint8Array, recv: Numeric | Uint8Array): Promise<number>;
  reduceScatter(send: Numeric, recv: Numeric, op: Reduction): Promise<number>;
}

const binary = fileURLToPath(new URL('./native/tessera_mpi.node', import.meta.url));
const buildError = fileURLToPath(new URL('./native/build-error.txt', import.meta.url));

let loaded: MpiAddon | undefined;

/** The MPI binding, or an error naming what is missing and the command that builds it. */
export function mpiAddon(): MpiAddon {
  if (loaded) return loaded;
  const rebuild = 'node node_modules/@tessera/distributed/scripts/build-native.mjs (in this repo: npm run setup)';
  if (!existsSync(binary)) {
    const why = existsSync(buildError) ? readFileSync(buildError, 'utf8').trim() : 'it was never built';
    throw new DistributedError(`The MPI binding is not built: ${why}. Then run ${rebuild}.`);
  }
  try {
    loaded = createRequire(import.meta.url)(binary) as MpiAddon;
  } catch (err) {
    const msg = String((err as Error).message).split('\n')[0];
    throw new DistributedError(
      `The MPI binding does not load (${msg}). Install the Debian package openmpi-bin (the MPI runtime) and rebuild: ${rebuild}.`,
    );
  }
  return loaded;
}

/** True when the binding exists (MPI was found at build time). */
export function mpiAvailable(): boolean {
  return existsSync(binary);
}
