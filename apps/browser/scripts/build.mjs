#!/usr/bin/env node
// Bundles the page for the browser from the packages' TypeScript sources: one copy of
// tfjs-core (so one engine), tfjs's side-effect registrations kept, and Node's built-in
// modules (config files, checkpoints: never used by the page) replaced by an empty stub.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const packagesDir = join(appDir, '..', '..', 'packages');
const stub = join(appDir, 'scripts', 'node-builtin-stub.cjs');

/** @tessera/<name>[/sub] -> packages/<name>/src/<index|sub>.ts */
const sourcePlugin = {
  name: 'tessera-browser-sources',
  setup(build) {
    const packages = new Set(readdirSync(packagesDir));
    build.onResolve({ filter: /^@tessera\// }, (args) => {
      const [, name, sub] = args.path.match(/^@tessera\/([^/]+)(?:\/(.+))?$/) ?? [];
      if (!packages.has(name)) return undefined;
      const file = join(packagesDir, name, 'src', `${sub ?? 'index'}.ts`);
      if (!existsSync(file)) throw new Error(`${args.path}: no source file ${file}`);
      return { path: file };
    });
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      const bare = args.path.replace(/^node:/, '').split('/')[0];
      if (args.path.startsWith('node:') || builtinModules.includes(bare)) return { path: stub };
      return undefined;
    });
  },
};

mkdirSync(join(appDir, 'dist'), { recursive: true });
await esbuild.build({
  entryPoints: [join(appDir, 'src', 'page.ts')],
  outfile: join(appDir, 'dist', 'page.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  mainFields: ['browser', 'module', 'main'],
  // tfjs marks its gradient and kernel registration modules side-effect free; keep them.
  ignoreAnnotations: true,
  // `process.env` is read by Node-only branches; give them something to read.
  define: { 'process.env.NODE_ENV': '"production"' },
  sourcemap: true,
  logLevel: 'warning',
  plugins: [sourcePlugin],
});
console.log('built @tessera/browser-demo (dist/page.js)');
