#!/usr/bin/env node
// Bundles tfjs-core's own shared test suite (the dist/**/*_test.js files that ship in
// its npm package) into dist/tfjs-specs/specs.js, for level 1 of the conformance suite.
//
// Why a bundle: the spec files use extensionless relative imports that Node's ESM loader
// rejects. Why the alias: the specs call the public API through `../index`; we point that
// at `@tessera/tensor-core/tfjs`, so the ops under test are the very ones Tessera users
// call. The few internal modules the specs reach into (engine, jasmine_util, test_util)
// are bundled; tfjs keeps its engine, kernel and gradient registries on globalThis, so
// those copies attach to tensor-core's single engine (the child runner asserts it).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import * as esbuild from 'esbuild';

const pkgDir = process.cwd();
const require = createRequire(join(pkgDir, 'package.json'));
const coreDist = dirname(require.resolve('@tensorflow/tfjs-core/dist/index.js'));
const seam = '@tessera/tensor-core/tfjs';
const outdir = join(pkgDir, 'dist', 'tfjs-specs');
mkdirSync(outdir, { recursive: true });

// The entry exports the jasmine hooks the runner needs, and loads the specs only when
// asked: describeWithFlags reads the test environments when a spec file is evaluated, so
// setTestEnvs must run first.
const entry = `
export { setTestEnvs, setupTestFilters, TEST_ENVS } from ${JSON.stringify(join(coreDist, 'jasmine_util.js'))};
export { ENGINE } from ${JSON.stringify(join(coreDist, 'engine.js'))};
export async function loadSpecs() { await import(${JSON.stringify(join(coreDist, 'tests.js'))}); }
`;

const indexFile = join(coreDist, 'index.js');
const seamPlugin = {
  name: 'tfjs-specs-seam',
  setup(build) {
    build.onResolve({ filter: /^\.\.?(\/|$)/ }, (args) => {
      if (!args.resolveDir.startsWith(coreDist)) return undefined;
      const target = resolve(args.resolveDir, args.path);
      if (target === coreDist || target === indexFile || target === indexFile.slice(0, -3)) {
        return { path: seam, external: true };
      }
      return undefined;
    });
    build.onResolve({ filter: /^@tensorflow\/tfjs-core$/ }, () => ({ path: seam, external: true }));
  },
};

const result = await esbuild.build({
  stdin: { contents: entry, resolveDir: pkgDir, sourcefile: 'tfjs-specs-entry.js', loader: 'js' },
  outdir,
  entryNames: 'specs',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  mainFields: ['module', 'main'],
  // Same reason as tools/build: tfjs marks side-effect files droppable; we need them all.
  ignoreAnnotations: true,
  // jasmine-core is a dependency (jasmine_util requires it); tensor-core is the engine.
  external: ['jasmine-core', '@tessera/tensor-core', '@tessera/tensor-core/*'],
  legalComments: 'linked',
  logLevel: 'warning',
  banner: {
    js: "import { createRequire as __tesseraCreateRequire } from 'node:module'; const require = __tesseraCreateRequire(import.meta.url);",
  },
  metafile: true,
  plugins: [seamPlugin],
});
const specFiles = Object.keys(result.metafile.inputs).filter((f) => f.endsWith('_test.js')).length;
writeFileSync(
  join(outdir, 'manifest.json'),
  JSON.stringify({ tfjsCore: require('@tensorflow/tfjs-core/package.json').version, specFiles }, null, 2),
);
console.log(`bundled ${specFiles} tfjs-core spec files into dist/tfjs-specs`);
