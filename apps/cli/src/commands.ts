import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ADAPTER_CONFIG, isQuantizedCheckpoint, loadAdapter } from '@tessera/adapt';
import { Tokenizer } from '@tessera/data';
import { TesseraError, tf, useBackend } from '@tessera/tensor-core';
import {
  decodeGenerated,
  encodePrompt,
  formatMetrics,
  loadRunConfig,
  resolveCheckpoint,
  resolveModelDir,
  Trainer,
  type TrainResult,
} from '@tessera/trainers';
import { dataParallelOptions } from './distributed.js';
import { int8RunParts, loadAnyCheckpoint } from './quantize.js';
import { BertForEmbeddings, familyByModelType, generatorFor, loadPretrained, readHfConfig } from '@tessera/transformer';

export interface TrainCommandOptions {
  set: string[];
  resume?: string;
  data?: string;
}

/** `tessera train CONFIG`: runs a config end to end. */
export async function trainCommand(config: string, options: TrainCommandOptions): Promise<TrainResult> {
  const run = loadRunConfig(config, options.set);
  // Under mpirun this process is one rank of a data-parallel job; alone, nothing changes.
  const parallel = dataParallelOptions();
  const trainer = await Trainer.create(run, {
    source: config,
    ...(options.resume ? { resume: options.resume } : {}),
    ...(options.data ? { dataOverride: resolve(options.data) } : {}),
    ...parallel.options,
  });
  try {
    return await trainer.train();
  } finally {
    trainer.dispose();
    await parallel.close();
  }
}

/**
 * `tessera eval CONFIG --checkpoint DIR`: the config's validation split through its metrics.
 * DIR is a checkpoint, a run directory, or a plain HF model directory (then it is the model's `from`).
 */
export async function evalCommand(
  config: string,
  options: { set: string[]; checkpoint: string; tokenizer?: string },
): Promise<Record<string, number>> {
  const { dir, trainerCheckpoint } = resolveModelDir(options.checkpoint);
  let run = loadRunConfig(config, [...options.set, 'training.max_steps=1']);
  if (!trainerCheckpoint) {
    // An HF model directory is the model as it stands: its own config.json, its tokenizer.
    const [family] = familyByModelType(readHfConfig(dir).model_type);
    run = {
      ...run,
      model: { name: family, from: resolve(dir), ...(run.model.head ? { head: run.model.head } : {}) },
      tokenizer: { name: 'hf-json', path: tokenizerFile(dir, options.tokenizer) },
      // An int8 checkpoint (tessera quantize): its architecture, loaded by the int8-dynamic adapter.
      ...(isQuantizedCheckpoint(dir) ? int8RunParts(dir, run.model.head) : {}),
    } as typeof run;
  }
  const trainer = await Trainer.create(run, {
    source: config,
    log: () => {},
    ...(trainerCheckpoint ? { resume: dir } : {}),
  });
  try {
    const metrics = await trainer.evaluate();
    console.log(`eval ${dir}: ${formatMetrics(metrics)}`);
    return metrics;
  } finally {
    trainer.dispose();
  }
}

/** The tokenizer.json for a model directory: --tokenizer when given, else the directory's own. */
function tokenizerFile(dir: string, override: string | undefined): string {
  const path = resolve(override ?? join(dir, 'tokenizer.json'));
  if (!existsSync(path)) {
    throw new TesseraError(
      override
        ? `--tokenizer ${override}: no such file.`
        : `${dir} has no tokenizer.json. Name one with --tokenizer FILE (the tokenizer.json the model was trained with).`,
    );
  }
  return path;
}

async function loadForInference(checkpoint: string, backend: string, tokenizer: string | undefined) {
  await useBackend(backend, { log: (l) => console.error(l) });
  const { dir } = resolveModelDir(checkpoint);
  return { dir, tokenizer: await Tokenizer.fromFile(tokenizerFile(dir, tokenizer)) };
}

export interface GenerateOptions {
  checkpoint: string;
  /** A LoRA adapter directory (peft layout), or a checkpoint / run directory of a run trained with one. */
  adapter?: string;
  tokenizer?: string;
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  numBeams: number;
  backend: string;
}

/** An adapter directory: one holding adapter_config.json, else a run directory's latest checkpoint. */
function resolveAdapterDir(path: string): string {
  if (existsSync(join(path, ADAPTER_CONFIG))) return path;
  const checkpoint = resolveCheckpoint(path);
  if (!existsSync(join(checkpoint, ADAPTER_CONFIG)))
    throw new TesseraError(
      `--adapter ${path}: ${checkpoint} holds no ${ADAPTER_CONFIG}; name a peft adapter directory or a run trained with adapter:.`,
    );
  return checkpoint;
}

/** `tessera generate`: continues a prompt (decoder-only models) or answers an input (encoder-decoder). */
export async function generateCommand(o: GenerateOptions): Promise<string> {
  const adapterDir = o.adapter ? resolveAdapterDir(o.adapter) : undefined;
  // A run trained with an adapter keeps its tokenizer next to the adapter; the base may have none.
  const adapterTokenizer = adapterDir ? join(adapterDir, 'tokenizer.json') : undefined;
  const baseHasTokenizer = existsSync(join(resolveModelDir(o.checkpoint).dir, 'tokenizer.json'));
  const tokenizerOverride =
    o.tokenizer ??
    (!baseHasTokenizer && adapterTokenizer && existsSync(adapterTokenizer) ? adapterTokenizer : undefined);
  const { dir, tokenizer } = await loadForInference(o.checkpoint, o.backend, tokenizerOverride);
  const model = loadAnyCheckpoint(dir);
  try {
    if (adapterDir) loadAdapter(model, adapterDir);
    model.eval();
    const generator = generatorFor(model);
    if (!generator)
      throw new TesseraError(`${model.architecture} does not generate text; use a causal-LM or seq2seq checkpoint.`);
    const prompt = encodePrompt(tokenizer, generator, o.prompt);
    if (!prompt.length) throw new TesseraError('The prompt is empty after tokenization; give --prompt some text.');
    const [ids] = await generator.run(model, [prompt], {
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      seed: o.seed,
      numBeams: o.numBeams,
    });
    const text = decodeGenerated(tokenizer, generator, prompt, ids!);
    console.log(text);
    return text;
  } finally {
    model.dispose();
  }
}

function readLines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

async function embedTexts(
  checkpoint: string,
  texts: string[],
  backend: string,
  tokenizerPath: string | undefined,
): Promise<number[][]> {
  const { dir, tokenizer } = await loadForInference(checkpoint, backend, tokenizerPath);
  const { model } = loadPretrained(dir, { head: 'embeddings', ignoreUnexpected: ['*'] });
  if (!(model instanceof BertForEmbeddings)) {
    model.dispose();
    throw new TesseraError('Embeddings need a BERT-family checkpoint.');
  }
  model.eval();
  const max = model.config.max_position_embeddings;
  tokenizer.truncation = { max_length: max, strategy: 'LongestFirst', stride: 0, direction: 'Right' };
  const out: number[][] = [];
  try {
    for (let i = 0; i < texts.length; i += 16) {
      const encodings = texts.slice(i, i + 16).map((t) => tokenizer.encode(t));
      const len = Math.max(...encodings.map((e) => e.ids.length));
      const ids = encodings.map((e) => [...e.ids, ...new Array(len - e.ids.length).fill(0)]);
      const mask = encodings.map((e) => [...e.ids.map(() => 1), ...new Array(len - e.ids.length).fill(0)]);
      const vectors = tf.tidy(() => {
        const { logits } = model.forward({
          inputIds: tf.tensor2d(ids, [ids.length, len], 'int32'),
          attentionMask: tf.tensor2d(mask, [ids.length, len], 'int32'),
        });
        return tf.div(logits, tf.maximum(tf.norm(logits, 'euclidean', 1, true), 1e-12)); // unit length
      });
      out.push(...((await vectors.array()) as number[][]));
      vectors.dispose();
    }
  } finally {
    model.dispose();
  }
  return out;
}

/** `tessera embed`: one unit-length vector per input line, as JSONL. */
export async function embedCommand(o: {
  checkpoint: string;
  tokenizer?: string;
  input: string;
  output: string;
  backend: string;
}): Promise<void> {
  const texts = readLines(o.input);
  const vectors = await embedTexts(o.checkpoint, texts, o.backend, o.tokenizer);
  writeFileSync(o.output, `${texts.map((text, i) => JSON.stringify({ text, embedding: vectors[i] })).join('\n')}\n`);
  console.log(`wrote ${texts.length} embeddings (${vectors[0]?.length ?? 0} dimensions) to ${o.output}`);
}

/** `tessera search`: nearest documents to a query by cosine similarity of embeddings. */
export async function searchCommand(o: {
  checkpoint: string;
  tokenizer?: string;
  documents: string;
  query: string;
  topK: number;
  backend: string;
}): Promise<{ text: string; score: number }[]> {
  const docs = readLines(o.documents);
  const vectors = await embedTexts(o.checkpoint, [o.query, ...docs], o.backend, o.tokenizer);
  const [q, ...d] = vectors;
  const scored = d.map((v, i) => ({ text: docs[i]!, score: v.reduce((s, x, j) => s + x * q![j]!, 0) }));
  scored.sort((a, b) => b.score - a.score);
  const top = scored.slice(0, o.topK);
  for (const r of top) console.log(`${r.score.toFixed(4)}  ${r.text}`);
  return top;
}
