#!/usr/bin/env node
// Builds dist/native/tessera_mpi.node, the MPI binding, with the MPI compiler wrapper
// (mpicxx: OpenMPI and MPICH both ship one, and it knows its own include and link flags).
//
// An explicit build step (the package's `build` script runs it after the TypeScript build),
// never an install hook; it ships in the tarball, so a consumer runs
// `node node_modules/@tessera/distributed/scripts/build-native.mjs`.
// A failed build does not fail the package build: single-process training needs no MPI, and
// joining a multi-process job then fails with this script's message. Set
// TESSERA_MPI_REQUIRED=1 to make a failure fatal (CI on a machine that must have it).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(pkgDir, 'dist', 'native');
const target = join(outDir, 'tessera_mpi.node');
const errorFile = join(outDir, 'build-error.txt');
const required = process.env.TESSERA_MPI_REQUIRED === '1';

function fail(message) {
  mkdirSync(outDir, { recursive: true });
  rmSync(target, { force: true });
  writeFileSync(errorFile, `${message}\n`);
  console.error(`@tessera/distributed: MPI binding NOT built: ${message}`);
  console.error(
    '@tessera/distributed: single-process training is unaffected; multi-process runs will say why they cannot start.',
  );
  process.exit(required ? 1 : 0);
}

if (process.platform !== 'linux') fail(`only Linux builds are wired up so far (this is ${process.platform}).`);

const mpicxx = process.env.MPICXX || 'mpicxx';
if (spawnSync(mpicxx, ['--version'], { stdio: 'ignore' }).status !== 0) {
  fail(
    `the MPI C++ compiler wrapper (${mpicxx}) was not found: install the Debian packages libopenmpi-dev and openmpi-bin ` +
      '(or libmpich-dev and mpich), or set MPICXX.',
  );
}

const headerCandidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter(Boolean);
const nodeInclude = headerCandidates.find((d) => existsSync(join(d, 'node_api.h')));
if (!nodeInclude) {
  fail(
    `Node.js headers (node_api.h) not found in ${headerCandidates.join(', ')}: install the Debian package libnode-dev, ` +
      'or set npm_config_nodedir.',
  );
}

let addonInclude;
try {
  addonInclude = createRequire(join(pkgDir, 'package.json'))('node-addon-api').include_dir;
} catch {
  fail('the npm package node-addon-api is missing: run npm install.');
}

const args = [
  '-std=c++17',
  '-O2',
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
  join(pkgDir, 'native', 'mpi_addon.cc'),
  '-o',
  target,
];

mkdirSync(outDir, { recursive: true });
rmSync(errorFile, { force: true });
const started = Date.now();
const result = spawnSync(mpicxx, args, { encoding: 'utf8' });
if (result.status !== 0) {
  const log = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (/mpi\.h: No such file/.test(log))
    fail('MPI headers (mpi.h) not found: install the Debian package libopenmpi-dev.');
  fail(`${mpicxx} failed:\n${log.split('\n').slice(0, 20).join('\n')}`);
}

// Load it once here, so a missing runtime library shows up at build time, not at the first run.
try {
  createRequire(import.meta.url)(target);
} catch (err) {
  const msg = String(err.message).split('\n')[0];
  if (/libmpi/.test(msg)) fail(`the MPI runtime library is missing (${msg}): install the Debian package openmpi-bin.`);
  fail(`the binding built but does not load: ${msg}`);
}

const version = execFileSync(mpicxx, ['--version'], { encoding: 'utf8' }).split('\n')[0];
writeFileSync(
  join(outDir, 'build-info.json'),
  `${JSON.stringify({ compiler: version, mpicxx, node: process.version, builtAt: new Date().toISOString() }, null, 2)}\n`,
);
console.log(`built ${target} (${((Date.now() - started) / 1000).toFixed(1)} s, ${version})`);
