import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { disposeStateDict, type Optimizer, stateDictFromJSON } from '@tessera/optim';
import { type RngState, TesseraError, tf } from '@tessera/tensor-core';
import { loadSafetensors, type PretrainedModel, saveSafetensors, savePretrained } from '@tessera/transformer';
import type { ModelAdapter } from './adapter.js';

export class CheckpointStateError extends TesseraError {}

/** Everything besides weights and optimizer state that an exact resume needs. */
export interface TrainerState {
  /** Optimizer updates done. */
  step: number;
  epoch: number;
  /** Examples of the current epoch's order consumed so far, by all ranks together. */
  position: number;
  /** The model's generator (dropout). Data order and collation draw nothing from a saved
   * state: they derive from the seed, the epoch and each example's index (order.ts). */
  rng: RngState;
  bestMetric: number | null;
  bestCheckpoint: string | null;
  evalsWithoutImprovement: number;
  skippedBatches: number;
  /** Examples a rank repeated because its share of an epoch's tail was empty (trained with weight 0). */
  paddedExamples?: number;
  /** Ranks of the job that wrote this state (a resume may use another number). */
  worldSize?: number;
  /** A fingerprint of the run config: resuming with another one is refused. */
  configHash: string;
}

const PREFIX = 'checkpoint-';

/**
 * Writes checkpoint-<step>/ atomically: everything goes into a temporary directory that is
 * renamed into place only when complete, so a crash mid-save leaves the previous
 * checkpoints untouched and no half-written one. With an adapter, only the adapter's
 * files are written in place of the model (the base weights never change).
 */
export async function saveCheckpoint(
  outputDir: string,
  model: PretrainedModel,
  optimizer: Optimizer,
  state: TrainerState,
  adapter?: ModelAdapter,
): Promise<string> {
  mkdirSync(outputDir, { recursive: true });
  const final = join(outputDir, `${PREFIX}${state.step}`);
  const temporary = join(outputDir, `.tmp-${PREFIX}${state.step}-${process.pid}`);
  rmSync(temporary, { recursive: true, force: true });
  if (adapter) {
    mkdirSync(temporary, { recursive: true });
    await adapter.save(model, temporary);
  } else {
    await savePretrained(model, temporary);
  }
  const optimizerState = optimizer.stateDict();
  try {
    // Moments go to safetensors (binary, exact); the rest of the state dict is plain JSON.
    const json = {
      ...optimizerState,
      state: Object.fromEntries(
        Object.entries(optimizerState.state).map(([n, s]) => [n, { step: s.step, tensors: {} }]),
      ),
    };
    const tensors: Record<string, tf.Tensor> = {};
    for (const [param, entry] of Object.entries(optimizerState.state)) {
      for (const [key, tensor] of Object.entries(entry.tensors)) tensors[`${param}::${key}`] = tensor;
    }
    await saveSafetensors(join(temporary, 'optimizer.safetensors'), tensors);
    writeFileSync(join(temporary, 'optimizer.json'), JSON.stringify(json));
  } finally {
    disposeStateDict(optimizerState);
  }
  writeFileSync(join(temporary, 'trainer_state.json'), `${JSON.stringify(state, null, 2)}\n`);
  if (process.env.TESSERA_TEST_CRASH_IN_SAVE === String(state.step)) {
    // Lets a test kill the process after the files are written but before the rename.
    process.kill(process.pid, 'SIGKILL');
  }
  rmSync(final, { recursive: true, force: true });
  renameSync(temporary, final);
  return final;
}

/** Checkpoint directories in `outputDir`, oldest first (complete ones only). */
export function listCheckpoints(outputDir: string): { step: number; path: string }[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .filter((n) => n.startsWith(PREFIX) && /^\d+$/.test(n.slice(PREFIX.length)))
    .map((n) => ({ step: Number(n.slice(PREFIX.length)), path: join(outputDir, n) }))
    .filter((c) => existsSync(join(c.path, 'trainer_state.json')))
    .sort((a, b) => a.step - b.step);
}

/**
 * Removes the oldest checkpoints beyond `limit`, never the best one nor the newest (with
 * limit 1 and an older best, both stay, as in HF: the run's last state must survive).
 */
export function pruneCheckpoints(outputDir: string, limit: number | null, keep: string | null): string[] {
  if (limit === null) return [];
  const all = listCheckpoints(outputDir);
  const newest = all.at(-1)?.path;
  const removable = all.filter((c) => c.path !== keep && c.path !== newest);
  const excess = all.length - limit;
  const removed: string[] = [];
  for (const c of removable.slice(0, Math.max(0, excess))) {
    rmSync(c.path, { recursive: true, force: true });
    removed.push(c.path);
  }
  return removed;
}

/** Resolves `--resume DIR`: a checkpoint directory, or a run directory (its latest checkpoint). */
export function resolveCheckpoint(path: string): string {
  if (existsSync(join(path, 'trainer_state.json'))) return path;
  const latest = listCheckpoints(path).at(-1);
  if (!latest) {
    throw new CheckpointStateError(
      `${path} holds no checkpoint (no trainer_state.json, no checkpoint-N/ directory). Check the path.`,
    );
  }
  return latest.path;
}

/**
 * A directory to load a model from: a Tessera checkpoint, a run directory (its latest
 * checkpoint), or a plain HF model directory (config.json + model.safetensors [+ tokenizer.json]).
 */
export function resolveModelDir(path: string): { dir: string; trainerCheckpoint: boolean } {
  if (existsSync(join(path, 'trainer_state.json'))) return { dir: path, trainerCheckpoint: true };
  if (existsSync(join(path, 'config.json'))) {
    if (!existsSync(join(path, 'model.safetensors')))
      throw new CheckpointStateError(
        `${path} has a config.json but no model.safetensors; an HF model directory needs both.`,
      );
    return { dir: path, trainerCheckpoint: false };
  }
  const latest = listCheckpoints(path).at(-1);
  if (!latest) {
    throw new CheckpointStateError(
      `${path} holds no model: no config.json + model.safetensors (an HF model directory), no trainer_state.json (a checkpoint), no checkpoint-N/ (a run directory). Check the path.`,
    );
  }
  return { dir: latest.path, trainerCheckpoint: true };
}

export function readTrainerState(checkpoint: string): TrainerState {
  const path = join(checkpoint, 'trainer_state.json');
  try {
    // Checkpoints written before 2026-12-03 also hold `dataRng`, a generator that was saved
    // but never drawn from: dropped here so a resumed run does not carry it on.
    const { dataRng: _unused, ...state } = JSON.parse(readFileSync(path, 'utf8')) as TrainerState & {
      dataRng?: unknown;
    };
    return state;
  } catch (err) {
    throw new CheckpointStateError(`${path} is unreadable: ${(err as Error).message}`);
  }
}

/** Restores optimizer moments, steps, groups and schedule from a checkpoint. */
export function loadOptimizerState(checkpoint: string, optimizer: Optimizer): void {
  const json = JSON.parse(readFileSync(join(checkpoint, 'optimizer.json'), 'utf8'));
  const { tensors } = loadSafetensors(join(checkpoint, 'optimizer.safetensors'));
  const sd = stateDictFromJSON(json);
  try {
    for (const [key, tensor] of Object.entries(tensors)) {
      const [param, name] = key.split('::') as [string, string];
      const entry = sd.state[param];
      if (!entry) throw new CheckpointStateError(`${checkpoint}: optimizer state for unknown parameter "${param}".`);
      (entry.tensors as Record<string, tf.Tensor>)[name] = tensor;
    }
    optimizer.loadStateDict(sd);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
