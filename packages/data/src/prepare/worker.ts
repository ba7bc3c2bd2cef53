// One worker of `tessera data prepare`: loads the config's plugins and tokenizer once,
// then processes the units it is sent. An entry of its own in the package build.
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { registry } from '@tessera/tensor-core';
import '../register.js';
import { Tokenizer } from '../tokenizers/tokenizer.js';
import type { PrepareConfig } from './config.js';
import { processUnit, type Unit } from './unit.js';

const { config, workDir } = workerData as { config: PrepareConfig; workDir: string };

async function start(): Promise<Tokenizer | null> {
  await registry.loadPlugins(config.plugins);
  const t = config.output.tokens;
  return t ? Tokenizer.fromJSON(readFileSync(t.tokenizer, 'utf8')) : null;
}

const ready = start();
parentPort!.on('message', async (unit: Unit) => {
  try {
    const report = await processUnit(unit, config, workDir, await ready, (records, chars) =>
      parentPort!.postMessage({ progress: { records, chars } }),
    );
    parentPort!.postMessage({ report });
  } catch (err) {
    parentPort!.postMessage({ error: `unit ${unit.id} (${unit.file}): ${(err as Error).stack ?? err}` });
  }
});
ready.then(
  () => parentPort!.postMessage({ ready: true }),
  (err: Error) => parentPort!.postMessage({ error: `worker start: ${err.message}` }),
);
