// One worker of a TokenizerPool: builds the tokenizer from the JSON it is given, then
// encodes the batches it is sent. An entry of its own in the package build.
import { parentPort, workerData } from 'node:worker_threads';
import type { EncodeInput, EncodeOptions } from './tokenizer.js';
import { Tokenizer } from './tokenizer.js';

const tokenizer = Tokenizer.fromJSON(workerData.json);
type Job = { id: number; inputs: EncodeInput[]; options: EncodeOptions; idsOnly: boolean };
parentPort!.on('message', (job: Job) => {
  try {
    const encodings = tokenizer.encodeBatch(job.inputs, job.options);
    if (!job.idsOnly) {
      parentPort!.postMessage({ id: job.id, encodings });
      return;
    }
    // Ids only: one flat Int32Array and the row lengths, moved (not copied) to the caller.
    const lengths = Int32Array.from(encodings, (e) => e.ids.length);
    const ids = new Int32Array(lengths.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const e of encodings) {
      ids.set(e.ids, at);
      at += e.ids.length;
    }
    parentPort!.postMessage({ id: job.id, ids, lengths }, [ids.buffer, lengths.buffer]);
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: (err as Error).message });
  }
});
parentPort!.postMessage({ ready: true });
