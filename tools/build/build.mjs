#!/usr/bin/env node
// Builds the package in the current directory: one esbuild bundle per entry point
// (ESM, Node 20+) plus type declarations from tsc.
//
// Why a bundle: tfjs-core's ESM files use extensionless imports that Node's ESM
// loader rejects, its Node main bundle lacks gradients and chained ops, and its
// package.json marks those side-effect modules as droppable. Bundling once, with
// side-effect annotations ignored, solves all three. Every other package rewrites
// `@tensorflow/tfjs-core` to `@tessera/tensor-core/tfjs`, so at run time there is
// exactly one engine, whoever imports what.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import * as esbuild from 'esbuild';

const pkgDir = process.cwd();
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const tessera = pkg.tessera ?? {};
const bundled = new Set(tessera.bundle ?? []);
const entries = (tessera.entries ?? ['src/index.ts']).map((e) => join(pkgDir, e));

const external = new Set([
  ...Object.keys(pkg.dependencies ?? {}),
  ...Object.keys(pkg.peerDependencies ?? {}),
  ...Object.keys(pkg.optionalDependencies ?? {}),
  ...(tessera.external ?? []),
]);
for (const b of bundled) external.delete(b);

const ENGINE_PACKAGE = '@tensorflow/tfjs-core';
const ENGINE_SEAM = '@tessera/tensor-core/tfjs';

/** Resolves bare imports: dependencies stay external, the engine goes through the seam. */
const resolvePlugin = {
  name: 'tessera-resolve',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      const spec = args.path;
      if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) {
        return { path: spec, external: true };
      }
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      if (name === ENGINE_PACKAGE && pkg.name !== '@tessera/tensor-core') {
        if (spec !== ENGINE_PACKAGE) {
          throw new Error(`${pkg.name}: deep import ${spec} bypasses the engine seam; import from ${ENGINE_SEAM}`);
        }
        return { path: ENGINE_SEAM, external: true };
      }
      if (external.has(name)) return { path: spec, external: true };
      return undefined;
    });
  },
};

rmSync(join(pkgDir, 'dist'), { recursive: true, force: true });

await esbuild.build({
  entryPoints: entries,
  outdir: join(pkgDir, 'dist'),
  outbase: join(pkgDir, 'src'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  // tfjs-core's "main" is a CommonJS bundle without gradients; "module" is the ESM tree.
  mainFields: ['module', 'main'],
  target: 'node20',
  // tfjs marks its gradient/chained-op/kernel registration files as side-effect free
  // in a way that lets a bundler drop them; we need every one of them.
  ignoreAnnotations: true,
  sourcemap: false,
  legalComments: 'linked',
  logLevel: 'warning',
  // CommonJS dependencies inside the bundle (seedrandom, long) call require().
  banner: {
    js: "import { createRequire as __tesseraCreateRequire } from 'node:module'; const require = __tesseraCreateRequire(import.meta.url);",
  },
  plugins: [resolvePlugin],
});

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', resolve(pkgDir, 'tsconfig.json')], { stdio: 'inherit' });
if (!existsSync(join(pkgDir, 'dist', 'index.d.ts'))) {
  throw new Error(`${pkg.name}: tsc produced no dist/index.d.ts`);
}
console.log(`built ${pkg.name}`);
