#!/usr/bin/env node
// Installs a software Vulkan driver (Mesa's lavapipe) recent enough for Dawn, so the
// "webgpu" backend runs on machines without a GPU (CI, containers). Idempotent.
//
// Debian bookworm's Mesa 22.3 lacks a feature Dawn requires; Mesa 25 from
// bookworm-backports works. The backports suite is derived from the machine's existing
// apt sources (same mirror, same keyring): no registry host is written here.
//
//   node packages/kernels-webgpu/scripts/setup-lavapipe.mjs          # install if needed
//   node packages/kernels-webgpu/scripts/setup-lavapipe.mjs --check  # exit 1 if missing
//
// Exit codes: 0 ready (or not applicable: not Debian bookworm), 1 missing/failed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MIN_MESA_MAJOR = 25;
const PACKAGES = ['mesa-vulkan-drivers', 'libvulkan1'];
const SUITE = 'bookworm-backports';
const TARGET = `/etc/apt/sources.list.d/tessera-${SUITE}.sources`;
const log = (line) => console.error(`setup-lavapipe: ${line}`);
const checkOnly = process.argv.includes('--check');

function installedVersion(pkg) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status} ${Version}', pkg], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.includes('install ok installed')) return undefined;
  return r.stdout.trim().split(' ').pop();
}

function mesaReady() {
  const v = installedVersion('mesa-vulkan-drivers');
  const major = v ? Number.parseInt(v.replace(/^\d+:/, ''), 10) : 0;
  return { ok: major >= MIN_MESA_MAJOR && !!installedVersion('libvulkan1'), version: v };
}

function debianCodename() {
  if (!existsSync('/etc/os-release')) return undefined;
  const m = /^VERSION_CODENAME=(\S+)$/m.exec(readFileSync('/etc/os-release', 'utf8'));
  return m?.[1];
}

/** Parses deb822 (.sources) stanzas and one-line (.list) entries into {uris, suites, components, signedBy}. */
function aptEntries() {
  const entries = [];
  const dir = '/etc/apt/sources.list.d';
  const files = existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = {};
        for (const line of stanza.split('\n')) {
          if (line.startsWith('#')) continue;
          const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
          if (m) fields[m[1].toLowerCase()] = m[2].trim();
        }
        if (!fields.types?.split(/\s+/).includes('deb') || !fields.uris) continue;
        if (fields.enabled === 'no') continue;
        entries.push({
          uris: fields.uris.split(/\s+/),
          suites: (fields.suites ?? '').split(/\s+/),
          components: fields.components ?? 'main',
          signedBy: fields['signed-by'],
        });
      }
    } else if (file.endsWith('.list')) {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').trim();
        const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s+(.*)$/.exec(line);
        if (!m) continue;
        const signedBy = /signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
        entries.push({ uris: [m[2]], suites: [m[3]], components: m[4].trim(), signedBy });
      }
    }
  }
  return entries;
}

function ensureBackportsSource(codename) {
  const entries = aptEntries();
  if (entries.some((e) => e.suites.includes(SUITE))) return;
  const base = entries.find((e) => e.suites.includes(codename));
  if (!base) throw new Error(`no apt source for "${codename}" to derive ${SUITE} from`);
  const lines = [
    `# Written by @tessera/kernels-webgpu scripts/setup-lavapipe.mjs (derived from the "${codename}" entry)`,
    'Types: deb',
    `URIs: ${base.uris.join(' ')}`,
    `Suites: ${SUITE}`,
    `Components: ${base.components}`,
  ];
  if (base.signedBy) lines.push(`Signed-By: ${base.signedBy}`);
  writeFileSync(TARGET, `${lines.join('\n')}\n`);
  log(`enabled ${SUITE} in ${TARGET}`);
}

function main() {
  const state = mesaReady();
  if (state.ok) {
    log(`ready: mesa-vulkan-drivers ${state.version}`);
    return 0;
  }
  const codename = debianCodename();
  if (spawnSync('dpkg-query', ['--version']).status !== 0 || codename !== 'bookworm') {
    log(
      `not Debian bookworm (${codename ?? 'unknown'}): install a Vulkan driver (Mesa >= ${MIN_MESA_MAJOR} lavapipe, or a GPU driver) yourself; webgpu tests skip without one`,
    );
    return 0;
  }
  const what = state.version ? `mesa-vulkan-drivers ${state.version} is too old for Dawn` : 'no lavapipe installed';
  if (checkOnly) {
    log(`${what}; run: node packages/kernels-webgpu/scripts/setup-lavapipe.mjs (as root)`);
    return 1;
  }
  if (process.getuid?.() !== 0) {
    log(`${what}. As root run: node packages/kernels-webgpu/scripts/setup-lavapipe.mjs`);
    return 1;
  }
  log(`${what}; installing ${PACKAGES.join(', ')} from ${SUITE}`);
  ensureBackportsSource(codename);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', '-t', SUITE, ...PACKAGES], {
    stdio: 'inherit',
    env,
  });
  const after = mesaReady();
  if (!after.ok) {
    log(`install finished but mesa-vulkan-drivers is ${after.version ?? 'missing'}`);
    return 1;
  }
  log(`ready: mesa-vulkan-drivers ${after.version}`);
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  log(`failed: ${err.message}`);
  process.exitCode = 1;
}
