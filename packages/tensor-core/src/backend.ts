import * as tf from '@tensorflow/tfjs-core';
import './engine.js';
import { TesseraError } from './errors.js';
import type { MatmulPrecisionCheck } from './precision.js';
import { registry } from './registry.js';

export interface BackendAvailability {
  available: boolean;
  /** Why (not) — shown in the one-line selection notice. */
  reason: string;
  /** False for software emulation (e.g. WebGPU on lavapipe): auto skips it. */
  hardware?: boolean;
}

/** What a backend package registers under registry.backend. */
export interface BackendMeta {
  description: string;
  /** Higher wins under "auto": cuda 40 > webgpu 30 > native 20 > cpu 10. */
  priority: number;
  package?: string;
  isAvailable(): Promise<BackendAvailability> | BackendAvailability;
  /**
   * Matmul precisions beyond fp32 this backend can compute in on this machine (see
   * precision.ts). A backend without it supports fp32 only; its kernels read
   * getMatmulPrecision(name) per call.
   */
  matmulPrecision?: MatmulPrecisionCheck;
}

/** Factory: makes sure the tfjs backend of the same name is registered and ready. */
export type BackendFactory = () => Promise<void> | void;

export function registerBackend(name: string, factory: BackendFactory, meta: BackendMeta): void {
  if (name.includes('_')) {
    throw new TesseraError(`Backend name "${name}" may not contain "_" (tfjs splits kernel keys on it).`);
  }
  registry.backend.register(name, factory, { ...meta });
}

/** Backend packages "auto" tries to import when they are installed. */
export const KNOWN_BACKEND_PACKAGES = [
  '@tessera/kernels-cuda-napi',
  '@tessera/kernels-webgpu',
  '@tessera/kernels-native',
  '@tessera/kernels-cpu',
];

/** Imports the installed first-party backend packages; returns a note per package that failed to load. */
async function importKnownBackends(packages: readonly string[] = KNOWN_BACKEND_PACKAGES): Promise<string[]> {
  const notes: string[] = [];
  for (const pkg of packages) {
    try {
      await import(pkg);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ERR_MODULE_NOT_FOUND')
        notes.push(`${pkg} failed to load (${(err as Error).message.split('\n')[0]})`);
    }
  }
  return notes;
}

export interface BackendChoice {
  name: string;
  /** One line: what was chosen and why. */
  notice: string;
}

/**
 * Selects the compute backend. "auto" imports whichever known backend packages are
 * installed, then picks the highest-priority one that is available (skipping
 * software-only GPUs) and says why in one line.
 */
export async function useBackend(
  name: string = 'auto',
  options: { log?: (line: string) => void } = {},
): Promise<BackendChoice> {
  const log = options.log ?? ((line: string) => console.error(line));
  const choice = await resolveBackend(name);
  await (registry.backend.get(choice.name).factory as BackendFactory)();
  const ok = await tf.setBackend(choice.name);
  if (!ok) throw new TesseraError(`tfjs could not initialise backend "${choice.name}".`);
  await tf.ready();
  log(choice.notice);
  return choice;
}

/**
 * The backend useBackend(name) would select, without starting it: imports the known backend
 * packages as needed and, for "auto", picks the best available one. Lets a run check what it
 * asks of the backend (e.g. its matmul precision) before any work starts.
 */
export async function resolveBackend(name: string = 'auto'): Promise<BackendChoice> {
  let choice: BackendChoice;
  // A first-party backend named in a config is found the way auto finds it: its package is
  // imported when installed. Third-party backends still come in through `plugins:`.
  // The package named after the backend first (kernels-native for "native"), so naming one
  // backend does not load every other (Dawn takes a moment to start).
  const notes: string[] = [];
  if (name !== 'auto' && !registry.backend.has(name))
    notes.push(...(await importKnownBackends(KNOWN_BACKEND_PACKAGES.filter((p) => p.includes(`-${name}`)))));
  if (name === 'auto' || !registry.backend.has(name)) notes.push(...(await importKnownBackends()));
  if (name === 'auto') {
    const candidates = registry.backend
      .entries()
      .map((e) => ({ name: e.name, meta: e.meta as unknown as BackendMeta }))
      .sort((a, b) => b.meta.priority - a.meta.priority);
    let picked: string | undefined;
    for (const c of candidates) {
      const a = await c.meta.isAvailable();
      if (!a.available) notes.push(`${c.name}: ${a.reason}`);
      else if (a.hardware === false) notes.push(`${c.name}: skipped, ${a.reason} (ask for it by name to use it)`);
      else {
        picked = c.name;
        notes.unshift(`${c.name}: ${a.reason}`);
        break;
      }
    }
    if (!picked) {
      throw new TesseraError(
        `No compute backend is available (${notes.join('; ') || 'none registered'}). Install @tessera/kernels-cpu.`,
      );
    }
    choice = { name: picked, notice: `tessera: backend auto -> ${picked} (${notes.join('; ')})` };
  } else {
    if (!registry.backend.has(name) && notes.length) {
      throw new TesseraError(`Unknown backend "${name}": ${notes.join('; ')}.`);
    }
    const entry = registry.backend.get(name);
    const a = await (entry.meta as unknown as BackendMeta).isAvailable();
    if (!a.available) throw new TesseraError(`Backend "${name}" is not available here: ${a.reason}.`);
    choice = { name, notice: `tessera: backend ${name} (${a.reason})` };
  }
  return choice;
}
