#!/usr/bin/env node
// Scaling curve of a GPT training step, native against PyTorch CPU, in one run: tokens/s as
// the width grows (E 128 → 768 at T 256) and as the sequence grows (T 64 → 1024 at E 384),
// the same number of tokens per step throughout. Each point runs native, then PyTorch
// (tools/bench-native/torch_bench.py, same model op for op), so load drift hits both alike.
// Writes the figures as JSON and an SVG plot (two panels, log-scale tokens/s).
// Usage: node packages/kernels-native/bench/scaling.mjs [--threads 2] [--steps 4] [--layers 4]
//          [--tokens 1024] [--out packages/kernels-native/bench/scaling]
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeStatus, setNumThreads } from '@tessera/kernels-native';
import { parseArgs } from './common.mjs';
import { gptTrainFlopsPerToken, matmulGflops, tokensPerSecond } from './measure.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const { option } = parseArgs();
const argv = process.argv.slice(2);
const outBase = resolve(argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : join(here, 'scaling'));
const threads = option('threads', 2);
const steps = option('steps', 4);
const L = option('layers', 4);
const tokens = option('tokens', 1024);
const V = 65;

if (!nativeStatus().available) {
  console.error(`backend native unavailable: ${nativeStatus().reason}`);
  process.exit(1);
}
setNumThreads(threads);

/** [L, H, E, T, B, V] with head size 64 and `tokens` tokens per step. */
const dims = (E, T) => [L, Math.max(1, E / 64), E, T, Math.max(1, tokens / T), V];
const sweeps = [
  {
    axis: 'width',
    label: 'width E (T 256)',
    points: [128, 256, 384, 512, 768].map((E) => ({ x: E, dims: dims(E, 256) })),
  },
  {
    axis: 'length',
    label: 'sequence T (E 384)',
    points: [64, 128, 256, 512, 1024].map((T) => ({ x: T, dims: dims(384, T) })),
  },
];

function torchPoint(d) {
  const script = join(root, 'tools', 'bench-native', 'torch_bench.py');
  const r = spawnSync(
    '/usr/bin/python3',
    [
      script,
      '--threads',
      String(threads),
      '--steps',
      String(steps),
      '--warmup',
      '2',
      '--matmul',
      '256',
      '--configs',
      d.join(','),
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`torch_bench.py failed: ${r.stderr.split('\n').slice(-3).join(' ')}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  result.torchVersion = out.torch;
  return out.gpt[0].tokens_per_s;
}

const result = {
  command: `node packages/kernels-native/bench/scaling.mjs --threads ${threads} --steps ${steps} --layers ${L} --tokens ${tokens}`,
  threads,
  loadAverageBefore: loadavg()[0],
  sgemmGflops: await matmulGflops('native', 1024, 20),
  sweeps: [],
};
for (const sweep of sweeps) {
  const rows = [];
  for (const p of sweep.points) {
    const model = { family: 'gpt', name: `GPT ${p.dims.join(',')}`, dims: p.dims };
    const native = (await tokensPerSecond('native', model, steps, 2)).tokensPerSecond;
    const torch = torchPoint(p.dims);
    const gflops = (native * gptTrainFlopsPerToken(p.dims)) / 1e9;
    rows.push({ x: p.x, dims: p.dims, native, torch, ratio: native / torch, nativeGflops: gflops });
    console.log(
      `${sweep.axis} ${String(p.x).padStart(4)} [L,H,E,T,B,V = ${p.dims.join(',')}]: native ${native.toFixed(0)} ` +
        `torch ${torch.toFixed(0)} tokens/s, ${(native / torch).toFixed(2)}×; native ${gflops.toFixed(1)} GFLOP/s`,
    );
  }
  result.sweeps.push({ axis: sweep.axis, label: sweep.label, rows });
}
result.loadAverageAfter = loadavg()[0];
console.log(
  `sgemm 1024² ${result.sgemmGflops.toFixed(1)} GFLOP/s; load average ${result.loadAverageBefore.toFixed(2)} before, ` +
    `${result.loadAverageAfter.toFixed(2)} after`,
);
writeFileSync(`${outBase}.json`, `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(`${outBase}.svg`, plot(result));
console.log(`wrote ${outBase}.json and ${outBase}.svg`);

/** Two side-by-side panels: tokens/s (log scale) of native and PyTorch against each sweep's axis. */
function plot(r) {
  const W = 400;
  const H = 260;
  const pad = { l: 56, r: 12, t: 28, b: 40 };
  const panels = r.sweeps.map((s, i) => panel(s, i * (W + 20)));
  const legend =
    `<g font-size="12"><rect x="${pad.l}" y="${H + 4}" width="12" height="3" fill="#1f77b4"/>` +
    `<text x="${pad.l + 16}" y="${H + 10}">Tessera native</text>` +
    `<rect x="${pad.l + 120}" y="${H + 4}" width="12" height="3" fill="#d62728"/>` +
    `<text x="${pad.l + 136}" y="${H + 10}">PyTorch ${r.torchVersion} eager</text>` +
    `<text x="${pad.l + 330}" y="${H + 10}">${r.threads} threads, ${tokens} tokens/step, L${L}, head 64</text></g>`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W + 20}" height="${H + 20}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${panels.join('\n')}\n${legend}\n</svg>\n`
  );

  function panel(s, x0) {
    const xs = s.rows.map((row) => row.x);
    const ys = s.rows.flatMap((row) => [row.native, row.torch]);
    const [lo, hi] = [Math.log10(Math.min(...ys) * 0.8), Math.log10(Math.max(...ys) * 1.2)];
    const px = (i) => x0 + pad.l + (i / (xs.length - 1)) * (W - pad.l - pad.r);
    const py = (y) => pad.t + (1 - (Math.log10(y) - lo) / (hi - lo)) * (H - pad.t - pad.b);
    const line = (key, color) =>
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${s.rows
        .map((row, i) => `${px(i).toFixed(1)},${py(row[key]).toFixed(1)}`)
        .join(' ')}"/>` +
      s.rows
        .map((row, i) => `<circle cx="${px(i).toFixed(1)}" cy="${py(row[key]).toFixed(1)}" r="3" fill="${color}"/>`)
        .join('');
    const ticks = [];
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (Math.log10(v) < lo || Math.log10(v) > hi) continue;
        ticks.push(
          `<line x1="${x0 + pad.l}" x2="${x0 + W - pad.r}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#eee"/>` +
            `<text x="${x0 + pad.l - 4}" y="${(py(v) + 4).toFixed(1)}" font-size="10" text-anchor="end">${v}</text>`,
        );
      }
    }
    const xTicks = xs
      .map(
        (x, i) =>
          `<text x="${px(i).toFixed(1)}" y="${H - pad.b + 14}" font-size="10" text-anchor="middle">${x}</text>` +
          `<text x="${px(i).toFixed(1)}" y="${H - pad.b + 26}" font-size="9" fill="#555" text-anchor="middle">${s.rows[i].ratio.toFixed(2)}×</text>`,
      )
      .join('');
    return (
      `<g>${ticks.join('')}` +
      `<text x="${x0 + pad.l}" y="16" font-size="13">tokens/s vs ${s.label}; native/torch under the axis</text>` +
      `${line('native', '#1f77b4')}${line('torch', '#d62728')}${xTicks}</g>`
    );
  }
}
