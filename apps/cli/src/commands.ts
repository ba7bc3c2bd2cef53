import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tokenizer } from '@tessera/data';
import { tf, TesseraError, useBackend } from '@tessera/tensor-core';
import { formatMetrics, loadRunConfig, resolveCheckpoint, Trainer, type TrainResult } from '@tessera/trainers';
import {
  BertForEmbeddings,
  GPT2LMHeadModel,
  generateGpt,
  generateT5,
  loadPretrained,
  T5ForConditionalGeneration,
} from '@tessera/transformer';

export interface TrainCommandOptions {
  set: string[];
  resume?: string;
  data?: string;
}

/** `tessera train CONFIG`: runs a config end to end. */
export async function trainCommand(config: string, options: TrainCommandOptions): Promise<TrainResult> {
  const run = loadRunConfig(config, options.set);
  const trainer = await Trainer.create(run, {
    ...(options.resume ? { resume: options.resume } : {}),
    ...(options.data ? { dataOverride: resolve(options.data) } : {}),
  });
  try {
    return await trainer.train();
  } finally {
    trainer.dispose();
  }
}

/** `tessera eval CONFIG --checkpoint DIR`: the config's validation split through its metrics. */
export async function evalCommand(
  config: string,
  options: { set: string[]; checkpoint: string },
): Promise<Record<string, number>> {
  const run = loadRunConfig(config, [...options.set, 'training.max_steps=1']);
  const trainer = await Trainer.create(run, { resume: options.checkpoint, log: () => {} });
  try {
    const metrics = await trainer.evaluate();
    console.log(`eval ${resolveCheckpoint(options.checkpoint)}: ${formatMetrics(metrics)}`);
    return metrics;
  } finally {
    trainer.dispose();
  }
}

async function loadForInference(checkpoint: string, backend: string) {
  await useBackend(backend, { log: (l) => console.error(l) });
  const dir = resolveCheckpoint(checkpoint);
  const tokenizer = await Tokenizer.fromFile(join(dir, 'tokenizer.json')).catch(() => {
    throw new TesseraError(`${dir} has no tokenizer.json; checkpoints written by tessera train carry one.`);
  });
  return { dir, tokenizer };
}

export interface GenerateOptions {
  checkpoint: string;
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  numBeams: number;
  backend: string;
}

/** `tessera generate`: continues a prompt (GPT) or answers an input (T5). */
export async function generateCommand(o: GenerateOptions): Promise<string> {
  const { dir, tokenizer } = await loadForInference(o.checkpoint, o.backend);
  const { model } = loadPretrained(dir);
  try {
    const sampling = {
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      seed: o.seed,
    };
    let text: string;
    if (model instanceof GPT2LMHeadModel) {
      const prompt = tokenizer.encode(o.prompt, null, { addSpecialTokens: false }).ids;
      if (!prompt.length) throw new TesseraError('The prompt is empty after tokenization; give --prompt some text.');
      const [ids] = await generateGpt(model, [prompt], sampling);
      text = tokenizer.decode([...prompt, ...ids!]);
    } else if (model instanceof T5ForConditionalGeneration) {
      const input = tokenizer.encode(o.prompt).ids;
      const [ids] = await generateT5(model, [input], { ...sampling, numBeams: o.numBeams });
      text = tokenizer.decode(ids!, { skipSpecialTokens: true });
    } else {
      throw new TesseraError(`${model.architecture} does not generate text; use a GPT or T5 checkpoint.`);
    }
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

async function embedTexts(checkpoint: string, texts: string[], backend: string): Promise<number[][]> {
  const { dir, tokenizer } = await loadForInference(checkpoint, backend);
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
  input: string;
  output: string;
  backend: string;
}): Promise<void> {
  const texts = readLines(o.input);
  const vectors = await embedTexts(o.checkpoint, texts, o.backend);
  writeFileSync(o.output, `${texts.map((text, i) => JSON.stringify({ text, embedding: vectors[i] })).join('\n')}\n`);
  console.log(`wrote ${texts.length} embeddings (${vectors[0]?.length ?? 0} dimensions) to ${o.output}`);
}

/** `tessera search`: nearest documents to a query by cosine similarity of embeddings. */
export async function searchCommand(o: {
  checkpoint: string;
  documents: string;
  query: string;
  topK: number;
  backend: string;
}): Promise<{ text: string; score: number }[]> {
  const docs = readLines(o.documents);
  const vectors = await embedTexts(o.checkpoint, [o.query, ...docs], o.backend);
  const [q, ...d] = vectors;
  const scored = d.map((v, i) => ({ text: docs[i]!, score: v.reduce((s, x, j) => s + x * q![j]!, 0) }));
  scored.sort((a, b) => b.score - a.score);
  const top = scored.slice(0, o.topK);
  for (const r of top) console.log(`${r.score.toFixed(4)}  ${r.text}`);
  return top;
}
