#!/usr/bin/env node
// Builds the CUDA backend's native parts. An explicit build step (the package's `build`
// script runs it after the TypeScript build), never an install hook; it ships in the npm
// tarball, so a consumer runs `node node_modules/@tessera/kernels-cuda-napi/scripts/build-native.mjs`.
//
//   dist/native/hosttest          g++ only: the caching allocator against a fake device and
//                                 the cuBLASLt loader, driven by the tests on every machine
//   dist/native/tessera_cuda.node nvcc + g++: the addon, kernels for sm_80 and sm_90a, linked
//                                 against cudart (static) and libdl only; cuBLASLt is dlopen'ed
//   PTXAS.md                      ptxas's register / shared-memory / spill report per kernel,
//                                 rewritten only when it changes (it is committed)
//
// Without nvcc the package still builds: the reason goes to dist/native/build-error.txt and
// the backend reports "cuda unavailable: built without nvcc". TESSERA_CUDA_REQUIRED=1 makes a
// failed addon build fatal; TESSERA_CUDA_ARCHS (default "80,90a") picks the targets;
// TESSERA_CUDA_NVCC names the nvcc to use, or "none" to build as a machine without one would.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(pkgDir, 'native');
// TESSERA_CUDA_OUT: build somewhere else (the tests build a no-nvcc variant into a temp dir).
const outDir = process.env.TESSERA_CUDA_OUT || join(pkgDir, 'dist', 'native');
const objDir = join(outDir, 'obj');
const addonPath = join(outDir, 'tessera_cuda.node');
const errorFile = join(outDir, 'build-error.txt');
const required = process.env.TESSERA_CUDA_REQUIRED === '1';
const cxx = process.env.CXX || 'g++';
const started = Date.now();
const log = (line) => console.log(`@tessera/kernels-cuda-napi: ${line}`);

mkdirSync(objDir, { recursive: true });
rmSync(errorFile, { force: true });

function notBuilt(message) {
  rmSync(addonPath, { force: true });
  rmSync(join(outDir, 'build-info.json'), { force: true }); // a stale one would describe a build that is gone
  writeFileSync(errorFile, `${message}\n`);
  log(`CUDA addon NOT built: ${message}`);
  log('backend "cuda" will report itself unavailable; "auto" moves on to the next backend.');
  process.exit(required ? 1 : 0);
}

if (process.platform !== 'linux') notBuilt(`only Linux builds are wired up so far (this is ${process.platform})`);
if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) {
  notBuilt(`no C++17 compiler (${cxx}): install the Debian package g++ (or build-essential)`);
}

// ---- the host test binary (no CUDA needed) ----------------------------------------------
const hosttest = join(outDir, 'hosttest');
const hostSources = ['allocator.cc', 'cublas_loader.cc', 'hosttest.cc'].map((f) => join(nativeDir, f));
const host = spawnSync(cxx, ['-std=c++17', '-O1', '-Wall', '-Wextra', ...hostSources, '-o', hosttest, '-ldl'], {
  encoding: 'utf8',
});
if (host.status !== 0) notBuilt(`${cxx} failed on the host test binary:\n${host.stderr}`);

// ---- nvcc ------------------------------------------------------------------------------
/** nvcc from CUDA_HOME, then the newest /usr/local/cuda*, then PATH; null when there is none. */
function findNvcc(env = process.env) {
  if (env.TESSERA_CUDA_NVCC === 'none') return null;
  if (env.TESSERA_CUDA_NVCC) return existsSync(env.TESSERA_CUDA_NVCC) ? env.TESSERA_CUDA_NVCC : null;
  const candidates = [];
  for (const v of [env.CUDA_HOME, env.CUDA_PATH]) if (v) candidates.push(join(v, 'bin', 'nvcc'));
  const local = existsSync('/usr/local') ? readdirSync('/usr/local').filter((d) => /^cuda(-[\d.]+)?$/.test(d)) : [];
  // "cuda" (the symlink) first, then versions newest first.
  local.sort((a, b) => (a === 'cuda' ? -1 : b === 'cuda' ? 1 : b.localeCompare(a, undefined, { numeric: true })));
  for (const d of local) candidates.push(join('/usr/local', d, 'bin', 'nvcc'));
  for (const d of (env.PATH ?? '').split(delimiter)) if (d) candidates.push(join(d, 'nvcc'));
  return candidates.find((c) => existsSync(c)) ?? null;
}

const nvcc = findNvcc();
if (!nvcc) {
  notBuilt(
    'built without nvcc: no CUDA toolkit in CUDA_HOME, /usr/local/cuda* or PATH (install the CUDA toolkit, ' +
      'e.g. cuda-nvcc-13-0 and cuda-cudart-dev-13-0, then rerun npm run build -w @tessera/kernels-cuda-napi)',
  );
}
const cudaHome = dirname(dirname(nvcc));
const cudaInclude = join(cudaHome, 'include');
const cudaLib = ['lib64', 'lib', 'targets/x86_64-linux/lib']
  .map((d) => join(cudaHome, d))
  .find((d) => existsSync(join(d, 'libcudart_static.a')));
if (!cudaLib) notBuilt(`libcudart_static.a not found under ${cudaHome}: install the CUDA runtime development files`);
const nvccVersion = execFileSync(nvcc, ['--version'], { encoding: 'utf8' }).trim().split('\n').pop();

// Node's headers and node-addon-api, as kernels-native finds them.
const headerCandidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter(Boolean);
const nodeInclude = headerCandidates.find((d) => existsSync(join(d, 'node_api.h')));
if (!nodeInclude) {
  notBuilt(
    `Node.js headers (node_api.h) not found in ${headerCandidates.join(', ')}: install libnode-dev or set npm_config_nodedir`,
  );
}
let addonInclude;
try {
  addonInclude = createRequire(join(pkgDir, 'package.json'))('node-addon-api').include_dir;
} catch {
  notBuilt('the npm package node-addon-api is missing: run npm install');
}

const archs = (process.env.TESSERA_CUDA_ARCHS ?? '80,90a')
  .split(',')
  .map((a) => a.trim())
  .filter(Boolean);
const gencode = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);

function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** Runs jobs `width` at a time (the build machine has 2 cores: nvcc per .cu, g++ per .cc). */
async function parallel(jobs, width) {
  const results = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]();
      }
    }),
  );
  return results;
}

const kernelDir = join(nativeDir, 'kernels');
const cuFiles = readdirSync(kernelDir)
  .filter((f) => f.endsWith('.cu'))
  .sort();
const ccFiles = ['addon.cc', 'allocator.cc', 'cublas_loader.cc'];
const jobs = [
  ...cuFiles.map((f) => async () => ({
    file: f,
    ...(await run(nvcc, [
      '-std=c++17',
      '-O3',
      '-c',
      '-Xcompiler',
      '-fPIC,-fvisibility=hidden',
      ...gencode,
      '-Xptxas',
      '-v',
      join(kernelDir, f),
      '-o',
      join(objDir, `${f}.o`),
    ])),
  })),
  ...ccFiles.map((f) => async () => ({
    file: f,
    ...(await run(cxx, [
      '-std=c++17',
      '-O2',
      '-c',
      '-fPIC',
      '-fvisibility=hidden',
      '-fexceptions',
      '-Wall',
      '-DNAPI_VERSION=8',
      '-DNAPI_CPP_EXCEPTIONS',
      '-DNODE_ADDON_API_DISABLE_DEPRECATED',
      `-I${cudaInclude}`,
      `-I${nodeInclude}`,
      `-I${addonInclude}`,
      join(nativeDir, f),
      '-o',
      join(objDir, `${f}.o`),
    ])),
  })),
];
const results = await parallel(jobs, Math.max(1, Math.min(availableParallelism(), 8)));
const failed = results.filter((r) => r.code !== 0);
if (failed.length) {
  notBuilt(failed.map((r) => `${r.file} failed:\n${r.out.split('\n').slice(0, 20).join('\n')}`).join('\n'));
}
const compileSeconds = (Date.now() - started) / 1000;

// Static cudart: the addon needs no libcudart.so at run time, only the driver (libcuda.so.1,
// which cudart itself dlopens on first use, so loading the addon works on a machine without one).
const link = spawnSync(
  cxx,
  [
    '-shared',
    '-o',
    addonPath,
    ...[...cuFiles, ...ccFiles].map((f) => join(objDir, `${f}.o`)),
    `-L${cudaLib}`,
    '-lcudart_static',
    '-ldl',
    '-lrt',
    '-pthread',
  ],
  { encoding: 'utf8' },
);
if (link.status !== 0) notBuilt(`link failed:\n${link.stderr}`);

// What it links against: nothing from CUDA but the static runtime (no cuBLAS, no libcudart.so).
const ldd = spawnSync('ldd', [addonPath], { encoding: 'utf8' });
const needed = (ldd.stdout ?? '')
  .split('\n')
  .map((l) => l.trim().split(/\s/)[0])
  .filter(Boolean);
const cudaLinked = needed.filter((l) => /cublas|cudart|libcuda\./.test(l));
if (cudaLinked.length)
  notBuilt(`the addon links ${cudaLinked.join(', ')}; it must link only cudart (static) and libdl`);

try {
  createRequire(import.meta.url)(addonPath);
} catch (err) {
  notBuilt(`the addon built but does not load: ${String(err.message).split('\n')[0]}`);
}

// The committed report is the default build's; a build for other targets or elsewhere keeps its own.
const fresh = ptxasReport(results.filter((r) => r.file.endsWith('.cu')));
const defaultBuild = !process.env.TESSERA_CUDA_OUT && !process.env.TESSERA_CUDA_ARCHS;
const ptxasPath = defaultBuild ? join(pkgDir, 'PTXAS.md') : join(outDir, 'PTXAS.md');
if (!existsSync(ptxasPath) || readFileSync(ptxasPath, 'utf8') !== fresh) writeFileSync(ptxasPath, fresh);

const seconds = (Date.now() - started) / 1000;
writeFileSync(
  join(outDir, 'build-info.json'),
  `${JSON.stringify(
    {
      nvcc: nvccVersion,
      cudaHome,
      archs,
      compileSeconds,
      seconds,
      linked: needed,
      kernels: cuFiles,
      node: process.version,
      builtAt: new Date().toISOString(),
    },
    null,
    2,
  )}\n`,
);
log(`built ${addonPath} for ${archs.map((a) => `sm_${a}`).join(', ')} in ${seconds.toFixed(1)} s (${nvccVersion})`);

/** PTXAS.md: one row per kernel and target, from nvcc's `-Xptxas -v` output (no timestamps: it is committed). */
function ptxasReport(cuResults) {
  const rows = [];
  for (const { file, out } of cuResults) {
    let current = null;
    for (const line of out.split('\n')) {
      let m = /Compiling entry function '([^']+)' for '(sm_\w+)'/.exec(line);
      if (m) {
        current = { file, mangled: m[1], arch: m[2], regs: 0, smem: 0, stack: 0, spillStores: 0, spillLoads: 0 };
        rows.push(current);
        continue;
      }
      if (!current) continue;
      m = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
      if (m) [current.stack, current.spillStores, current.spillLoads] = m.slice(1).map(Number);
      m = /Used (\d+) registers/.exec(line);
      if (m) current.regs = Number(m[1]);
      m = /(\d+) bytes smem/.exec(line);
      if (m) current.smem = Number(m[1]);
    }
  }
  const names = demangle(rows.map((r) => r.mangled));
  const lines = [
    '# ptxas report',
    '',
    'Written by `scripts/build-native.mjs` from `nvcc -Xptxas -v` (regenerated on every build with nvcc; commit',
    'it when it changes). Registers per thread, static shared memory per block, stack frame and spills in bytes.',
    'Dynamic shared memory is not in it: `layerNormBackward` takes 2 x C floats at launch (up to 40 KiB, else',
    'it accumulates with global atomics).',
    `Targets: ${archs.map((a) => `sm_${a}`).join(', ')}. ${nvccVersion}.`,
    '',
    '| file | kernel | target | registers | shared | stack | spill st/ld |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: |',
  ];
  rows
    .map((r, i) => ({ ...r, name: names[i] }))
    .sort((a, b) => a.file.localeCompare(b.file) || a.name.localeCompare(b.name) || a.arch.localeCompare(b.arch))
    .forEach((r) => {
      lines.push(
        `| ${r.file} | \`${r.name}\` | ${r.arch} | ${r.regs} | ${r.smem} | ${r.stack} | ${r.spillStores}/${r.spillLoads} |`,
      );
    });
  const spilling = rows.filter((r) => r.spillStores || r.spillLoads);
  lines.push('', spilling.length ? `Kernels that spill: ${spilling.length}.` : 'No kernel spills registers.', '');
  return lines.join('\n');
}

function demangle(symbols) {
  const r = spawnSync('c++filt', { input: symbols.join('\n'), encoding: 'utf8' });
  const out = r.status === 0 ? r.stdout.split('\n') : symbols;
  // Keep the readable part: "tessera::(anonymous namespace)::softmaxRows(const float*, ...)" -> "softmaxRows(...)".
  return symbols.map((s, i) => (out[i] ?? s).replace(/^tessera::\(anonymous namespace\)::/, '').replace(/\(.*\)$/, ''));
}
