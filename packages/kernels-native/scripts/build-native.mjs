#!/usr/bin/env node
// Builds the N-API addon dist/native/tessera_native.node with one direct g++ call.
//
// -march=native tunes the baseline to the build machine; the addon refuses to load on a CPU
// without an instruction set the build assumed (MissingBuildIsa in native/cpu_features.cc),
// and nx keys its build cache on this CPU's flags, so a cached binary never crosses machines.
//
// Why not node-gyp: the addon is a handful of files with no configuration matrix, and a direct
// call lets us say exactly which system package is missing when something is.
// This is an explicit build step (the package's `build` script runs it after the
// TypeScript build); it is never an install hook. It also ships in the npm tarball, so a
// consumer runs `node node_modules/@tessera/kernels-native/scripts/build-native.mjs`.
//
// A failed native build does not fail the package build: the backend then reports itself
// unavailable (with this script's message) and "auto" falls back to cpu. Set
// TESSERA_NATIVE_REQUIRED=1 to make a failure fatal (CI on a machine that must have it).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
// TESSERA_NATIVE_OUT_DIR: build elsewhere (the ISA-guard test builds a second copy for a CPU this one is not).
const outDir = process.env.TESSERA_NATIVE_OUT_DIR || join(pkgDir, 'dist', 'native');
const target = join(outDir, 'tessera_native.node');
const errorFile = join(outDir, 'build-error.txt');
const required = process.env.TESSERA_NATIVE_REQUIRED === '1';

function fail(message) {
  mkdirSync(outDir, { recursive: true });
  rmSync(target, { force: true });
  writeFileSync(errorFile, `${message}\n`);
  console.error(`@tessera/kernels-native: native addon NOT built: ${message}`);
  console.error('@tessera/kernels-native: backend "native" will report itself unavailable; "auto" falls back to cpu.');
  process.exit(required ? 1 : 0);
}

if (process.platform !== 'linux') fail(`only Linux builds are wired up so far (this is ${process.platform}).`);

const cxx = process.env.CXX || 'g++';
if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) {
  fail(`no C++17 compiler (${cxx}): install the Debian package g++ (or build-essential).`);
}

// Node's headers: npm's nodedir (this machine sets nodedir=/usr), next to the node binary, or /usr.
const headerCandidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter(Boolean);
const nodeInclude = headerCandidates.find((d) => existsSync(join(d, 'node_api.h')));
if (!nodeInclude) {
  fail(
    `Node.js headers (node_api.h) not found in ${headerCandidates.join(', ')}: install the Debian package libnode-dev ` +
      '(or the nodejs package that ships /usr/include/node), or set npm_config_nodedir.',
  );
}

let addonInclude;
try {
  addonInclude = createRequire(join(pkgDir, 'package.json'))('node-addon-api').include_dir;
} catch {
  fail('the npm package node-addon-api is missing: run npm install.');
}

const flags = (process.env.TESSERA_NATIVE_CXXFLAGS ?? '-O3 -march=native').split(/\s+/).filter(Boolean);
// Every .cc in native/: optional kernel files register their exports themselves (addon_module.h).
const sources = readdirSync(join(pkgDir, 'native'))
  .filter((f) => f.endsWith('.cc'))
  .sort()
  .map((f) => join(pkgDir, 'native', f));
const args = [
  '-std=c++17',
  ...flags,
  // No kernel reads errno: without this, every sqrt carries a branch for negative inputs and
  // loops that take a square root (AdamW) do not vectorise. Results are unchanged.
  '-fno-math-errno',
  // No kernel reads the floating-point exception flags either. Without this GCC will not
  // if-convert a float min/max or select on AVX2 (it can on AVX-512, with masks), so GELU,
  // its gradient and a dozen more loops ran scalar there: ~5x slower on Zen 3. The values are
  // unchanged: each element takes the same operations in the same order.
  '-fno-trapping-math',
  // `#pragma omp simd reduction` marks the float64 row sums (norm statistics, softmax
  // denominators) that may be vectorised, i.e. summed in lanes; nothing else is reassociated,
  // and no OpenMP runtime is linked.
  '-fopenmp-simd',
  '-fPIC',
  '-shared',
  '-pthread',
  '-fvisibility=hidden',
  '-fexceptions',
  '-DNAPI_VERSION=8',
  '-DNAPI_CPP_EXCEPTIONS',
  '-DNODE_ADDON_API_DISABLE_DEPRECATED',
  `-I${nodeInclude}`,
  `-I${addonInclude}`,
  ...sources,
  '-o',
  target,
  '-lopenblas',
];

mkdirSync(outDir, { recursive: true });
rmSync(errorFile, { force: true });
const started = Date.now();
const result = spawnSync(cxx, args, { encoding: 'utf8' });
if (result.status !== 0) {
  const log = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (/cblas\.h: No such file/.test(log) || /cannot find -lopenblas/.test(log)) {
    fail('OpenBLAS development files (cblas.h, libopenblas.so) not found: install the Debian package libopenblas-dev.');
  }
  fail(`${cxx} failed:\n${log.split('\n').slice(0, 20).join('\n')}`);
}

// Load it once here, so a missing runtime library shows up at build time, not at first use.
try {
  createRequire(import.meta.url)(target);
} catch (err) {
  const msg = String(err.message).split('\n')[0];
  if (/libopenblas/.test(msg))
    fail(`OpenBLAS runtime missing (${msg}): install the Debian package libopenblas0-pthread.`);
  fail(`the addon built but does not load: ${msg}`);
}

const compiler = execFileSync(cxx, ['--version'], { encoding: 'utf8' }).split('\n')[0];
writeFileSync(
  join(outDir, 'build-info.json'),
  `${JSON.stringify({ compiler, flags, node: process.version, builtAt: new Date().toISOString() }, null, 2)}\n`,
);
console.log(`built ${target} (${((Date.now() - started) / 1000).toFixed(1)} s, ${compiler}, ${flags.join(' ')})`);
