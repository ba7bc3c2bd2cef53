import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf, valueAndGrads } from '@tessera/tensor-core';
import {
  type HfModelInputs,
  loadPretrained,
  type ModelInputs,
  modelInputsFromHf,
  readSafetensors,
  type SafetensorsFile,
} from '@tessera/transformer';
import type { HostTensor } from './compare.js';
import type { ModelConformanceCase } from './levels34.js';
import type { Tolerance } from './types.js';

/** The PyTorch fixtures of @tessera/transformer (tools/ generates them with python3-torch). */
export const MODEL_FIXTURES = ['gpt2', 'bert-pretraining', 'bert-classification', 't5-v1_0', 't5-v1_1'] as const;

export interface Level3Options {
  /**
   * The directory holding one sub-directory per fixture (config.json, model.safetensors,
   * inputs.json, expected.safetensors). Default: @tessera/transformer's test/fixtures when
   * it is there (a workspace checkout; npm tarballs do not ship it).
   */
  fixturesDir?: string;
  /** Which fixtures to run (default: every one of MODEL_FIXTURES present in the directory). */
  fixtures?: string[];
}

/**
 * Logits and loss: the fixtures' own tolerance. PyTorch computed them in float32 on a CPU;
 * the models are 2 layers of width 32, so a backend's different summation order and
 * transcendental approximations move them by ~1e-6; 1e-4 absolute leaves two orders of
 * magnitude while a real bug (a missing mask, a wrong scale, a wrong activation) moves
 * logits by 1e-2 or more.
 */
export const MODEL_OUTPUT_TOLERANCE: Tolerance = {
  rtol: 0,
  atol: 1e-4,
  why: 'logits and loss within 1e-4 absolute of PyTorch (float32 rounding of 2-layer width-32 models is ~1e-6); each gradient within 1e-4 of its L2 norm (floor 1e-2)',
};

/**
 * Each parameter gradient, as a whole: within 1e-4 of its L2 norm. The norm, not the max,
 * because a gradient is a direction; the floor of 1e-2 because some gradients are
 * mathematically zero (BERT's attention key biases: softmax ignores a per-row shift) and
 * PyTorch holds them as ~1e-8 of rounding noise, which no backend reproduces.
 */
export const GRADIENT_TOLERANCE: Tolerance = {
  rtol: 1e-4,
  atol: 0,
  scale: 'norm',
  floor: 1e-2,
  why: 'gradient within 1e-4 of its L2 norm (floor 1e-2: mathematically zero gradients hold rounding noise)',
};

/** Where the fixtures are by default: next to @tessera/transformer's sources, when it is a checkout. */
export function defaultFixturesDir(): string | undefined {
  const candidates: string[] = [];
  try {
    const pkg = createRequire(import.meta.url).resolve('@tessera/transformer/package.json');
    candidates.push(join(dirname(pkg), 'test', 'fixtures'));
  } catch {
    // Not resolvable as CommonJS from here: fall back to the workspace layout below.
  }
  // packages/conformance/dist/index.js -> packages/transformer/test/fixtures
  candidates.push(fileURLToPath(new URL('../../transformer/test/fixtures', import.meta.url)));
  return candidates.find(isDir);
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The level-3 cases for the fixtures found, or why there are none. */
export function modelCases(options: Level3Options = {}): { cases: ModelConformanceCase[]; missing: string } {
  const dir = options.fixturesDir !== undefined ? resolve(options.fixturesDir) : defaultFixturesDir();
  if (dir === undefined) {
    return {
      cases: [],
      missing:
        'no fixtures directory (pass fixturesDir: the PyTorch fixtures live in the Tessera repository, packages/transformer/test/fixtures)',
    };
  }
  if (!isDir(dir)) return { cases: [], missing: `no fixtures directory: ${dir} does not exist (pass fixturesDir)` };
  const wanted = options.fixtures ?? [...MODEL_FIXTURES];
  const present = wanted.filter((name) => existsSync(join(dir, name, 'expected.safetensors')));
  const absent = wanted.filter((name) => !present.includes(name));
  if (options.fixtures && absent.length) {
    return {
      cases: [],
      missing: `fixtures not found in ${dir}: ${absent.join(', ')} (each needs config.json, model.safetensors, inputs.json, expected.safetensors)`,
    };
  }
  if (!present.length) return { cases: [], missing: `no fixtures in ${dir} (looked for ${wanted.join(', ')})` };
  return { cases: present.map((name) => fixtureCase(join(dir, name), name)), missing: '' };
}

function fixtureCase(dir: string, name: string): ModelConformanceCase {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const family = String(config.model_type ?? name).replace('gpt2', 'gpt');
  const arch = Array.isArray(config.architectures) ? String(config.architectures[0]) : String(config.model_type);
  return {
    name: `${name}/forward+backward (${arch})`,
    group: family,
    tolerance: MODEL_OUTPUT_TOLERANCE,
    toleranceFor: (output) => (output.startsWith('grad.') ? GRADIENT_TOLERANCE : MODEL_OUTPUT_TOLERANCE),
    run: () => runFixture(dir),
    expected: async () => expectedOf(readSafetensors(join(dir, 'expected.safetensors'))),
  };
}

/** inputs.json (HF names) as int32 tensors under Tessera's names. */
function fixtureInputs(dir: string): ModelInputs {
  return modelInputsFromHf(JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as HfModelInputs);
}

async function host(t: tf.Tensor): Promise<HostTensor> {
  // Async reads: a backend such as WebGPU in Node cannot read synchronously.
  return { shape: [...t.shape], dtype: t.dtype, values: await t.data() };
}

/** Loads the checkpoint on the active backend and runs one forward and backward (eval mode: no dropout). */
async function runFixture(dir: string): Promise<Record<string, HostTensor>> {
  const { model } = loadPretrained(dir);
  model.eval();
  const inputs = fixtureInputs(dir);
  let logits: tf.Tensor | undefined;
  let loss: tf.Scalar | undefined;
  let grads = new Map<string, tf.Tensor>();
  const extras: Record<string, tf.Tensor> = {};
  try {
    const before = tf.memory().numTensors;
    ({ loss, grads } = valueAndGrads(model, () => {
      const out = model.forward(inputs);
      logits = tf.keep(out.logits);
      for (const [name, t] of Object.entries(out.extras ?? {})) {
        const hf = EXTRAS[name];
        if (hf) extras[hf] = tf.keep(t);
      }
      if (!out.loss) throw new Error('the model returned no loss for inputs with labels');
      return out.loss;
    }));
    const made = 2 + grads.size + Object.keys(extras).length;
    const leaked = tf.memory().numTensors - before - made;
    const out: Record<string, HostTensor> = { logits: await host(logits!), loss: await host(loss) };
    for (const [name, t] of Object.entries(extras)) out[name] = await host(t);
    for (const [param, g] of grads) out[`grad.${param}`] = await host(g);
    if (leaked > 0) throw new Error(`the forward and backward step leaked ${leaked} tensor(s)`);
    return out;
  } finally {
    tf.dispose([...(logits ? [logits] : []), ...(loss ? [loss] : []), ...grads.values(), ...Object.values(extras)]);
    tf.dispose(Object.values(inputs).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
    model.dispose();
  }
}

/** Extra model outputs compared with the fixture's tensor of the HF name. */
const EXTRAS: Record<string, string> = {
  seqRelationshipLogits: 'seq_relationship_logits',
  encoderHidden: 'encoder_last_hidden_state',
};
const COMPARED = new Set(['logits', 'loss', ...Object.values(EXTRAS)]);

/** expected.safetensors read straight to the host (no tensors on the backend under test). */
function expectedOf(file: SafetensorsFile): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, entry] of file.entries) {
    // The fixtures also hold HF's last_hidden_state / pooler_output, which the models do not return.
    if (!COMPARED.has(name) && !name.startsWith('grad.')) continue;
    if (entry.dtype !== 'F32') throw new Error(`${file.path}: "${name}" is ${entry.dtype}; the fixtures are F32`);
    const bytes = file.data.subarray(entry.begin, entry.end);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const values = new Float32Array(bytes.byteLength / 4);
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(i * 4, true);
    out[name] = { shape: [...entry.shape], dtype: 'float32', values };
  }
  // Outputs first, then gradients: the report names the first problems, and a wrong output explains the rest.
  const rank = (k: string) => (k === 'logits' ? 0 : k === 'loss' ? 1 : k.startsWith('grad.') ? 3 : 2);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => rank(a) - rank(b)));
}
