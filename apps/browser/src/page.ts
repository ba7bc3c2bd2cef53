// Trains a tiny character-level GPT-2 on WebGPU in the browser and draws the loss curve.
// Every read is asynchronous (await data()), as WebGPU requires; the state the
// end-to-end test checks is published on window.tessera.
import '@tessera/kernels-cpu';
import { webgpuAccumulatorLimit, webgpuStatus, webgpuSubgroupSize } from '@tessera/kernels-webgpu';
import { AdamW } from '@tessera/optim';
import { Rng, tf, useBackend, valueAndGrads } from '@tessera/tensor-core';
import { GPT2LMHeadModel, parseGptConfig } from '@tessera/transformer';
import { TEXT } from './text.js';

interface PageState {
  backend: string | null;
  steps: number;
  losses: number[];
  done: boolean;
  error: string | null;
  sample: string | null;
  msPerStep: number | null;
  /** Time to the first loss (GPU program compilation included), and for the 48 sampled characters. */
  firstStepMs: number | null;
  sampleMs: number | null;
  /** The WebGPU adapter (vendor, architecture, subgroup sizes), null before the backend starts or on cpu. */
  adapter: { vendor: string; architecture: string; subgroupMinSize?: number; subgroupMaxSize?: number } | null;
  /** The subgroup size the matmul relies on (null: the register-block kernel), and its accumulator budget. */
  subgroupSize: number | null;
  accumulatorLimit: number | null;
}

const params = new URLSearchParams(location.search);
const state: PageState = {
  backend: null,
  steps: Number(params.get('steps') ?? 60),
  losses: [],
  done: false,
  error: null,
  sample: null,
  msPerStep: null,
  firstStepMs: null,
  sampleMs: null,
  adapter: null,
  subgroupSize: null,
  accumulatorLimit: null,
};
(window as unknown as { tessera: PageState }).tessera = state;

const statusEl = document.getElementById('status')!;
const curveEl = document.getElementById('curve')!;
const sampleEl = document.getElementById('sample')!;
const say = (text: string) => {
  statusEl.textContent = text;
};

/** Loss per step as an SVG polyline, y from 0 to the first loss. */
function drawCurve(losses: number[], steps: number) {
  const w = Number(curveEl.getAttribute('width'));
  const h = Number(curveEl.getAttribute('height'));
  const pad = 30;
  const top = Math.max(...losses, 1e-6);
  const x = (i: number) => pad + (i / Math.max(steps - 1, 1)) * (w - 2 * pad);
  const y = (l: number) => h - pad - (l / top) * (h - 2 * pad);
  const points = losses.map((l, i) => `${x(i).toFixed(1)},${y(l).toFixed(1)}`).join(' ');
  curveEl.innerHTML =
    `<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#999"/>` +
    `<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#999"/>` +
    `<text x="${pad}" y="${pad - 8}" font-size="12">loss ${top.toFixed(2)}</text>` +
    `<text x="${w - pad}" y="${h - 8}" font-size="12" text-anchor="end">step ${steps}</text>` +
    `<polyline fill="none" stroke="#1565c0" stroke-width="2" points="${points}"/>`;
}

async function main() {
  const backend = params.get('backend') ?? 'webgpu';
  say(`starting backend ${backend}…`);
  await useBackend(backend, { log: (line) => say(line) });
  state.backend = tf.getBackend();
  if (state.backend === 'webgpu') {
    const info = (await webgpuStatus()).adapter;
    if (info) {
      const { vendor, architecture, subgroupMinSize, subgroupMaxSize } = info;
      state.adapter = { vendor, architecture, subgroupMinSize, subgroupMaxSize };
    }
    state.subgroupSize = webgpuSubgroupSize() ?? null;
    state.accumulatorLimit = webgpuAccumulatorLimit() ?? null;
  }

  // Character vocabulary of the text; one id per distinct character.
  const chars = [...new Set(TEXT)].sort();
  const ids = Int32Array.from(TEXT, (c) => chars.indexOf(c));
  const blockSize = 32;
  const batchSize = 8;
  const rng = new Rng(params.get('seed') ?? 'browser-demo');
  const config = parseGptConfig({
    model_type: 'gpt2',
    vocab_size: chars.length,
    n_positions: blockSize,
    n_embd: 64,
    n_layer: 2,
    n_head: 2,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
  });
  const model = new GPT2LMHeadModel(config, rng);
  const optimizer = new AdamW(model, { lr: 3e-3, weightDecay: 0.01 });

  /** batchSize random windows of blockSize characters: [B, T] ids, labels = the same ids (shifted inside). */
  const batch = () => {
    const rows = new Int32Array(batchSize * blockSize);
    for (let b = 0; b < batchSize; b++) {
      const start = rng.int(ids.length - blockSize);
      rows.set(ids.subarray(start, start + blockSize), b * blockSize);
    }
    return tf.tensor2d(rows, [batchSize, blockSize], 'int32');
  };

  const t0 = performance.now();
  for (let step = 0; step < state.steps; step++) {
    const inputIds = batch();
    const { loss, grads } = valueAndGrads(model, () => model.forward({ inputIds, labels: inputIds }).loss!);
    await optimizer.stepAsync(grads);
    const value = (await loss.data())[0]!;
    tf.dispose([inputIds, loss, ...grads.values()]);
    state.losses.push(value);
    if (step === 0) state.firstStepMs = performance.now() - t0;
    drawCurve(state.losses, state.steps);
    say(`backend ${state.backend}: step ${step + 1}/${state.steps}, loss ${value.toFixed(3)}`);
  }
  state.msPerStep = (performance.now() - t0) / state.steps;

  // A greedy continuation, so a person sees what the curve means. The window has one
  // fixed length: every new input shape would compile new GPU programs.
  const context = Array.from(ids.subarray(0, 16));
  const sampleStart = performance.now();
  for (let i = 0; i < 48; i++) {
    const window = context.slice(-16);
    const input = tf.tensor2d(Int32Array.from(window), [1, 16], 'int32');
    const logits = model.forward({ inputIds: input }).logits;
    const last = tf.argMax(tf.reshape(tf.slice(logits, [0, 15, 0], [1, 1, chars.length]), [-1]));
    const next = (await last.data())[0]!;
    tf.dispose([input, logits, last]);
    context.push(next);
  }
  state.sampleMs = performance.now() - sampleStart;
  state.sample = context.map((i) => chars[i]).join('');
  sampleEl.textContent = `sample: ${state.sample}`;
  say(
    `backend ${state.backend}: trained ${state.steps} steps, loss ${state.losses[0]!.toFixed(3)} → ` +
      `${state.losses.at(-1)!.toFixed(3)}, ${state.msPerStep.toFixed(0)} ms/step`,
  );
  optimizer.dispose();
  model.dispose();
  state.done = true;
}

main().catch((err: unknown) => {
  state.error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  statusEl.classList.add('error');
  say(state.error);
  state.done = true;
});
