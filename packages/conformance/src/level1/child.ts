/**
 * Level 1, child side: runs tfjs-core's shared jasmine suite against one backend, in a
 * process of its own. It must be a separate process: the suite installs jasmine's globals,
 * sets the IS_TEST flag and calls ENGINE.reset() between suites, which would tear down
 * whatever the calling process (a vitest worker, the CLI) has on the engine.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Level1Report, type Level1Request, SPEC_MARKER } from './protocol.js';

interface SpecResult {
  fullName: string;
  status: string;
  failedExpectations: { message: string }[];
}
interface JasmineEnv {
  configure(c: Record<string, unknown>): void;
  addReporter(r: Record<string, (r: never) => void>): void;
  execute(): Promise<void> | void;
}

function send(report: Level1Report): Promise<void> {
  return new Promise((done) => {
    if (process.send) process.send(report, () => done());
    else {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      done();
    }
  });
}

async function main(request: Level1Request): Promise<Level1Report> {
  const started = performance.now();
  const base: Level1Report = {
    ok: false,
    passed: [],
    failed: [],
    pending: 0,
    isDataSync: true,
    tfjsCoreVersion: 'unknown',
    durationMs: 0,
  };
  const require = createRequire(import.meta.url);
  const manifestUrl = new URL('../tfjs-specs/manifest.json', import.meta.url);
  base.tfjsCoreVersion = JSON.parse(readFileSync(manifestUrl, 'utf8')).tfjsCore;

  // jasmine's globals (describe, it, expect...) must exist before a spec file is evaluated.
  const jasmineCore = require('jasmine-core');
  const jasmine = jasmineCore.boot(jasmineCore) as { getEnv(): JasmineEnv; DEFAULT_TIMEOUT_INTERVAL: number };
  jasmine.DEFAULT_TIMEOUT_INTERVAL = 20_000; // tfjs-core's own setting: some specs wait on async reads

  const { tf, registry } = await import('@tessera/tensor-core');
  await import('@tessera/kernels-cpu');
  for (const spec of request.imports) {
    const target = spec.startsWith('.') || isAbsolute(spec) ? pathToFileURL(resolve(spec)).href : spec;
    await import(target);
  }
  if (registry.backend.has(request.backend)) await (registry.backend.get(request.backend).factory as () => unknown)();
  if (!tf.findBackendFactory(request.backend)) {
    return {
      ...base,
      error: `backend "${request.backend}" is not registered in the child process (imported: ${[
        '@tessera/kernels-cpu',
        ...request.imports,
      ].join(', ')}); pass the module that registers it as an import`,
    };
  }
  // A backend that cannot read synchronously (WebGPU in Node) skips the sync-only specs.
  await tf.setBackend(request.backend);
  let isDataSync = true;
  try {
    const probe = tf.tensor([1]);
    probe.dataSync();
    probe.dispose();
  } catch {
    isDataSync = false;
  }

  const specsUrl = new URL('../tfjs-specs/specs.js', import.meta.url).href;
  const specs = await import(specsUrl);
  if (specs.ENGINE !== tf.engine()) {
    return { ...base, error: 'the tfjs-core specs see a different engine than @tessera/tensor-core (two engines)' };
  }
  specs.setTestEnvs([{ name: request.backend, backendName: request.backend, isDataSync }]);

  const env = jasmine.getEnv();
  const filter = request.filter?.toLowerCase();
  const names = request.names ? new Set(request.names) : undefined;
  env.configure({
    random: false,
    specFilter: (spec: { getFullName(): string }) =>
      names ? names.has(spec.getFullName()) : !filter || spec.getFullName().toLowerCase().includes(filter),
  });
  const report: Level1Report = { ...base, ok: true, isDataSync };
  env.addReporter({
    // A marker per spec, so that if the backend crashes the process the parent can say where.
    specStarted: (r: SpecResult) => {
      process.stderr.write(`${SPEC_MARKER}${r.fullName}\n`);
    },
    specDone: (r: SpecResult) => {
      if (r.status === 'passed') report.passed.push(r.fullName);
      else if (r.status === 'failed') {
        const message = r.failedExpectations.map((f) => f.message.split('\n')[0]).join('; ');
        report.failed.push({ name: r.fullName, message: message.slice(0, 500) });
      } else if (r.status === 'pending') report.pending++;
    },
  });
  const finished = new Promise<void>((done) => env.addReporter({ jasmineDone: () => done() }));
  await specs.loadSpecs();
  await env.execute();
  await finished;
  report.durationMs = Math.round(performance.now() - started);
  return report;
}

const request = JSON.parse(process.argv[2] ?? '{}') as Level1Request;
main(request)
  .catch(
    (err): Level1Report => ({
      ok: false,
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      passed: [],
      failed: [],
      pending: 0,
      isDataSync: true,
      tfjsCoreVersion: 'unknown',
      durationMs: 0,
    }),
  )
  .then(send)
  .then(() => process.exit(0));
