import { isPrepareDocument, loadPrepareConfig, type PrepareProgress, prepareCorpus } from '@tessera/data';
import { loadConfig, z } from '@tessera/tensor-core';
import { loadRunConfig, prepareRunData } from '@tessera/trainers';

export interface PrepareCommandOptions {
  set: string[];
  workers?: string;
}

/** A progress line: a bar on a terminal (rewritten in place), plain lines at most every 10 s otherwise. */
export function progressPrinter(tty: boolean, write: (s: string) => void = (s) => process.stderr.write(s)) {
  let lastPlain = 0;
  let lastPhase = '';
  return (p: PrepareProgress) => {
    const mb = p.bytes / 1048576;
    const rate = p.seconds > 0 ? mb / p.seconds : 0;
    const docs = p.seconds > 0 ? p.records / p.seconds : 0;
    const share = p.inputBytes > 0 ? Math.min(1, p.bytes / p.inputBytes) : 0;
    const line = `${p.phase}: units ${p.unitsDone}/${p.units}, ${p.records.toLocaleString('en-US')} docs (${docs.toFixed(0)} docs/s), ${mb.toFixed(1)} MB (${rate.toFixed(2)} MB/s)`;
    if (tty) {
      const width = 24;
      const filled = Math.round(share * width);
      write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}\x1b[K${p.phase === 'done' ? '\n' : ''}`);
      return;
    }
    const now = p.seconds;
    if (p.phase !== lastPhase || now - lastPlain >= 10) {
      write(`${line}\n`);
      lastPlain = now;
      lastPhase = p.phase;
    }
  };
}

/**
 * `tessera data prepare <config>`: a prepare pipeline document (input/steps/dedup/output)
 * runs the corpus pipeline; a run config tokenizes and reports that run's data.
 */
export async function prepareCommand(file: string, o: PrepareCommandOptions): Promise<void> {
  const doc = loadConfig(file, { schema: z.record(z.string(), z.unknown()), overrides: o.set });
  if (!isPrepareDocument(doc)) {
    if (o.workers !== undefined)
      throw new Error('--workers applies to a prepare pipeline config (input/steps/output), not to a run config.');
    await prepareRunData(loadRunConfig(file, o.set), undefined, file);
    return;
  }
  const config = loadPrepareConfig(file, o.set);
  const workers = o.workers === undefined ? undefined : Number(o.workers);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1))
    throw new Error(`--workers must be a positive integer; got ${o.workers}.`);
  await prepareCorpus(
    config,
    { onProgress: progressPrinter(Boolean(process.stderr.isTTY)), ...(workers ? { workers } : {}) },
    file,
  );
}
