#!/usr/bin/env node
// Idempotent setup shared by `npm start`, `npm test` and CI: system packages
// (apt-get when root, otherwise the exact command to run), npm ci when the lockfile
// changed, then the build (nx caches it). Safe to run any number of times.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line) => console.error(`setup: ${line}`);

function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    log(`Node ${process.versions.node} is too old: Tessera needs Node >= 20.19. Install a newer Node and retry.`);
    process.exit(1);
  }
}

/** Debian packages the tests or the default job need; each entry says why. */
function systemPackages() {
  const file = join(root, 'scripts', 'system-packages.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).packages : [];
}

function installed(pkg) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function ensureSystemPackages() {
  const wanted = systemPackages();
  if (!wanted.length) return;
  if (spawnSync('dpkg-query', ['--version']).status !== 0) {
    log(`not a Debian system; make sure these are installed: ${wanted.map((p) => p.name).join(', ')}`);
    return;
  }
  const missing = wanted.filter((p) => !installed(p.name));
  if (!missing.length) return;
  const names = missing.map((p) => p.name);
  if (process.getuid?.() !== 0) {
    log(
      `missing system packages: ${names.join(', ')}. Run:\n  sudo apt-get update && sudo apt-get install -y ${names.join(' ')}`,
    );
    process.exit(1);
  }
  log(`installing system packages: ${names.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], { stdio: 'inherit', env });
}

function ensureNodeModules() {
  const lock = join(root, 'package-lock.json');
  const stamp = join(root, 'node_modules', '.package-lock.json');
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= statSync(lock).mtimeMs) return;
  log('installing npm dependencies (npm ci)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}

function build() {
  log('building packages (nx run-many -t build; cached)');
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'nx', 'bin', 'nx.js'), 'run-many', '-t', 'build', '--output-style=static'],
    {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' },
    },
  );
}

/** Mesa's lavapipe (software Vulkan) from bookworm-backports, so the webgpu backend runs without a GPU. */
function ensureLavapipe() {
  const script = join(root, 'packages', 'kernels-webgpu', 'scripts', 'setup-lavapipe.mjs');
  if (!existsSync(script)) return;
  // Idempotent; off Debian bookworm or without root it prints what to install and carries on.
  spawnSync(process.execPath, [script], { stdio: 'inherit' });
}

checkNode();
ensureSystemPackages();
ensureLavapipe();
ensureNodeModules();
build();
