#!/usr/bin/env node
// Packs what scripts/device-check.sh needs on a GPU machine that has no Node: this Node
// binary (xz) and the built runtime (every package's dist, the CLI's, and the npm packages
// they load at run time), into .tmp/cuda-device/ (ignored by git; the device tool carries it,
// 64 MiB at most). Run it here after `npm run build`:
//
//   node packages/kernels-cuda-napi/scripts/device-pack.mjs
//
// The source tree itself travels with the device tool's copy of the working tree.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const out = join(root, '.tmp', 'cuda-device');
const log = (l) => console.log(`device-pack: ${l}`);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// Workspaces the CLI and the cuda backend load; webgpu stays behind (Dawn is large, and
// "auto" skips a package it cannot import).
const skip = new Set(['@tessera/kernels-webgpu', '@tessera/browser-demo', '@tessera/pack-check']);
const workspaces = [];
for (const parent of ['packages', 'apps']) {
  for (const d of readdirSync(join(root, parent))) {
    const pj = join(root, parent, d, 'package.json');
    if (!existsSync(pj)) continue;
    const pkg = JSON.parse(readFileSync(pj, 'utf8'));
    if (skip.has(pkg.name)) continue;
    if (!existsSync(join(root, parent, d, 'dist'))) continue;
    workspaces.push({ dir: join(parent, d), pkg });
  }
}

/** The directory of npm package `name` as Node would find it from `from`. */
function findPackage(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === dirname(dir)) return null;
  }
}

// The run-time closure of third-party packages (bundled ones, like tfjs-core in tensor-core's
// dist, are not needed). node-addon-api comes along so the addon can be rebuilt there.
const closure = new Set();
const queue = [];
for (const { dir, pkg } of workspaces) {
  const bundled = new Set(pkg.tessera?.bundle ?? []);
  for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
    if (name.startsWith('@tessera/') || bundled.has(name) || name.startsWith('@tensorflow/')) continue;
    queue.push([name, join(root, dir)]);
  }
}
queue.push(['node-addon-api', join(root, 'packages', 'kernels-cuda-napi')]);
while (queue.length) {
  const [name, from] = queue.pop();
  const dir = findPackage(name, from);
  if (!dir) {
    log(`warning: ${name} (needed from ${relative(root, from)}) is not installed`);
    continue;
  }
  if (closure.has(dir)) continue;
  closure.add(dir);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) queue.push([dep, dir]);
}

// Node's N-API headers, for the rebuild there (the whole of /usr/include/node is 54 MB).
const headers = join(out, 'node-headers', 'include', 'node');
mkdirSync(headers, { recursive: true });
const headerSrc = ['/usr/include/node', join(dirname(process.execPath), '..', 'include', 'node')].find((d) =>
  existsSync(join(d, 'node_api.h')),
);
if (headerSrc) {
  for (const f of readdirSync(headerSrc).filter((f) => /^(node_api|js_native_api)\w*\.h$/.test(f))) {
    copyFileSync(join(headerSrc, f), join(headers, f));
  }
} else log('warning: no node_api.h here: the device check will use the prebuilt addon');

const entries = [
  ...workspaces.map((w) => join(w.dir, 'dist')),
  ...[...closure].map((d) => relative(root, d)),
  ...readdirSync(join(root, 'node_modules', '@tessera'))
    .map((d) => join('node_modules', '@tessera', d))
    .filter((p) => lstatSync(join(root, p)).isSymbolicLink()),
];
const list = join(out, 'files.txt');
writeFileSync(list, `${entries.join('\n')}\n`);
execFileSync('tar', ['-C', root, '--exclude=*/dist/native/obj', '-cJf', join(out, 'runtime.tar.xz'), '-T', list], {
  stdio: 'inherit',
  env: { ...process.env, XZ_OPT: '-6 -T2' },
});
execFileSync('tar', ['-C', join(out), '-cJf', join(out, 'headers.tar.xz'), 'node-headers']);
rmSync(join(out, 'node-headers'), { recursive: true, force: true });
log('compressing node (about 30 s on 2 cores)');
execFileSync('sh', ['-c', `xz -T2 -6 -c "${process.execPath}" > "${join(out, 'node.xz')}"`]);

let total = 0;
for (const f of readdirSync(out)) {
  const size = statSync(join(out, f)).size;
  total += size;
  log(`${f}: ${(size / 2 ** 20).toFixed(1)} MiB`);
}
log(`total ${(total / 2 ** 20).toFixed(1)} MiB (the device tool carries 64 MiB at most) in ${relative(root, out)}`);
if (total > 64 * 2 ** 20) {
  log('too big for the device tool: leave out more (see the skip list at the top)');
  process.exit(1);
}
