import { appendFileSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Tokenizer,
  Tokenizer as TokenizerClass,
  trainByteLevelBpe,
  trainUnigram,
  trainWordPiece,
} from '@tessera/data';
import { createOptimizer, type Optimizer } from '@tessera/optim';
import { Rng, registry, TesseraError, tf, useBackend, valueAndGrads } from '@tessera/tensor-core';
import {
  GPT2LMHeadModel,
  generateGpt,
  lmLoss,
  loadPretrained,
  type ModelInputs,
  type PretrainedModel,
} from '@tessera/transformer';
import {
  listCheckpoints,
  loadOptimizerState,
  pruneCheckpoints,
  readTrainerState,
  resolveCheckpoint,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint.js';
import { configFingerprint, type RunConfig } from './config.js';
import { createMetrics, type EvalBatch } from './metrics.js';
import { writeLineChart } from './plot.js';
import { Progress } from './progress.js';
import { type DataReport, type Example, loadSplits, prepareTask, type Task, type TaskBatch } from './tasks.js';

export class NonFiniteLossError extends TesseraError {}

/** With non_finite_loss: skip, this many bad batches in a row means the run cannot recover. */
const MAX_CONSECUTIVE_SKIPS = 20;

export interface TrainerOptions {
  /** A checkpoint directory or a run directory (its latest checkpoint) to continue from. */
  resume?: string;
  /** Replace the training data (online / incremental training on a new stream). */
  dataOverride?: string;
  log?: (line: string) => void;
  /** Force the progress bar on or off (default: on when stdout is a terminal). */
  tty?: boolean;
  /** Install a SIGINT handler that finishes the step, saves and returns (default true). */
  handleSigint?: boolean;
}

export interface TrainResult {
  outputDir: string;
  steps: number;
  /** Training loss of every update this run made, in order. */
  losses: number[];
  evalMetrics: Record<string, number>;
  lastCheckpoint: string | null;
  bestCheckpoint: string | null;
  interrupted: boolean;
  stoppedEarly: boolean;
  skippedBatches: number;
  wallSeconds: number;
  sample?: string;
  data: DataReport;
}

function seedNumber(seed: number | string): number {
  return typeof seed === 'number' ? seed : [...seed].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
}

async function makeTokenizer(
  config: RunConfig,
  checkpoint: string | undefined,
  texts: () => string[],
): Promise<Tokenizer> {
  if (checkpoint && existsSync(join(checkpoint, 'tokenizer.json')))
    return TokenizerClass.fromFile(join(checkpoint, 'tokenizer.json'));
  const spec = config.tokenizer;
  if ('path' in spec) return TokenizerClass.fromFile(spec.path);
  const corpus = texts();
  const common = { vocabSize: spec.vocab_size, minFrequency: spec.min_frequency ?? 2 };
  if (spec.train === 'bpe') return trainByteLevelBpe(corpus, common);
  if (spec.train === 'wordpiece') return trainWordPiece(corpus, { ...common, lowercase: spec.lowercase ?? true });
  return trainUnigram(corpus, { ...common, extraIds: 100 });
}

/** HF fields the run derives when the config leaves them out: vocabulary size and sequence length. */
function modelFields(config: RunConfig, tokenizer: Tokenizer, labelCount: number | undefined): Record<string, unknown> {
  const { name, head, from, allow_missing, ignore_unexpected, ...fields } = config.model;
  void from;
  void allow_missing;
  void ignore_unexpected;
  const out: Record<string, unknown> = { ...fields };
  out.vocab_size ??= tokenizer.getVocabSize();
  if (name === 'gpt') out.n_positions ??= config.data.block_size;
  if (name === 'bert') out.max_position_embeddings ??= config.data.block_size;
  if (labelCount !== undefined) out.num_labels ??= labelCount;
  if (head !== undefined) out.head = head;
  return out;
}

/**
 * A training run assembled from one config: backend, tokenizer, data + objective, model,
 * optimizer (with its schedule), metrics. Checkpoints are atomic and a resumed run
 * continues bit for bit.
 */
export class Trainer {
  #interrupted = false;

  private constructor(
    readonly config: RunConfig,
    readonly model: PretrainedModel,
    readonly tokenizer: Tokenizer,
    readonly optimizer: Optimizer,
    readonly task: Task,
    readonly trainExamples: Example[],
    readonly validationExamples: Example[],
    readonly dataReport: DataReport,
    private state: TrainerState,
    private readonly dataRng: Rng,
    private readonly options: TrainerOptions,
    readonly totalSteps: number,
  ) {}

  static async create(config: RunConfig, options: TrainerOptions = {}): Promise<Trainer> {
    const log = options.log ?? ((l: string) => console.log(l));
    await registry.loadPlugins(config.plugins);
    await useBackend(config.backend, { log });
    const checkpoint = options.resume ? resolveCheckpoint(options.resume) : undefined;
    const resumed = checkpoint ? readTrainerState(checkpoint) : undefined;
    if (resumed && resumed.configHash !== configFingerprint(config)) {
      throw new TesseraError(
        `${checkpoint} was written by a run with another model, tokenizer, objective or optimizer config; ` +
          'resume with the config that produced it (data and training arguments may change).',
      );
    }
    if (options.dataOverride)
      config = {
        ...config,
        data: { ...config.data, train: { ...config.data.train, path: options.dataOverride }, validation: undefined },
      };
    const seed = seedNumber(config.seed);
    const root = new Rng(seed);
    // Read once: the tokenizer (when trained) and the examples come from the same records.
    const splits = await loadSplits(config);
    const tokenizer = await makeTokenizer(config, checkpoint, () => splits.train.map((r) => r.text));
    const prepared = await prepareTask(config, tokenizer, root.fork('prepare'), splits);
    const labelCount = prepared.task.labelNames?.length;

    let model: PretrainedModel;
    if (checkpoint) {
      model = loadPretrained(checkpoint, { head: config.model.head, seed: seed }).model;
    } else if (config.model.from) {
      // A run directory works as well as a checkpoint: its latest checkpoint is used.
      const from = existsSync(join(config.model.from, 'config.json'))
        ? config.model.from
        : resolveCheckpoint(config.model.from);
      model = loadPretrained(from, {
        head: config.model.head,
        allowMissing: config.model.allow_missing,
        ignoreUnexpected: config.model.ignore_unexpected,
        configOverrides: { ...modelFields(config, tokenizer, labelCount), head: undefined },
        seed,
      }).model;
    } else {
      const { name } = config.model;
      model = registry.model.create(
        name,
        modelFields(config, tokenizer, labelCount),
        root.fork('model'),
      ) as PretrainedModel;
    }

    const perUpdate = config.training.per_device_train_batch_size * config.training.gradient_accumulation_steps;
    const stepsPerEpoch = Math.max(1, Math.ceil(prepared.train.length / perUpdate));
    const totalSteps = config.training.max_steps ?? Math.ceil(config.training.num_train_epochs * stepsPerEpoch);
    const optimizerSpec = structuredClone(config.optimizer) as RunConfig['optimizer'] & {
      schedule?: Record<string, unknown>;
    };
    if (
      optimizerSpec.schedule &&
      typeof optimizerSpec.schedule === 'object' &&
      optimizerSpec.schedule.totalSteps === undefined
    ) {
      const needsTotal = ['linear', 'cosine'].includes(String(optimizerSpec.schedule.name));
      if (needsTotal) optimizerSpec.schedule.totalSteps = totalSteps;
    }
    const optimizer = createOptimizer(optimizerSpec, model);
    const dataRng = root.fork('data');
    let state: TrainerState = {
      step: 0,
      epoch: 0,
      position: 0,
      rng: model.rng.getState(),
      dataRng: dataRng.getState(),
      bestMetric: null,
      bestCheckpoint: null,
      evalsWithoutImprovement: 0,
      skippedBatches: 0,
      configHash: configFingerprint(config),
    };
    if (checkpoint && resumed) {
      loadOptimizerState(checkpoint, optimizer);
      state = { ...resumed };
      if (options.dataOverride) state = { ...state, epoch: 0, position: 0 };
      model.rng.setState(resumed.rng);
      dataRng.setState(resumed.dataRng);
      log(
        `resumed from ${checkpoint} at step ${resumed.step}${options.dataOverride ? ` on new data ${options.dataOverride}` : ''}`,
      );
    }
    const r = prepared.report;
    const skipped = Object.entries(r.skipped)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    log(
      `data: ${r.trainRecords} train / ${r.validationRecords} validation records -> ${r.trainExamples} / ${r.validationExamples} ${prepared.task.objective} examples` +
        `${skipped ? `; skipped ${skipped}` : ''}${r.truncatedTokens ? `; ${r.truncatedTokens} tokens truncated` : ''}`,
    );
    log(
      `model: ${model.architecture}, ${model.parameterCount().toLocaleString('en-US')} parameters; tokenizer: ${tokenizer.getVocabSize()} tokens; ` +
        `${totalSteps} updates of ${perUpdate} examples`,
    );
    return new Trainer(
      config,
      model,
      tokenizer,
      optimizer,
      prepared.task,
      prepared.train,
      prepared.validation,
      r,
      state,
      dataRng,
      options,
      totalSteps,
    );
  }

  #log(line: string): void {
    (this.options.log ?? ((l: string) => console.log(l)))(line);
  }

  /** The examples of the next micro-batch, advancing epoch and position; the order is a seeded shuffle per epoch. */
  #order: { epoch: number; indices: number[] } | undefined;

  /** The seeded shuffle of the training examples for `epoch`, computed once per epoch. */
  #epochOrder(epoch: number): number[] {
    if (this.#order?.epoch !== epoch) {
      const indices = new Rng(seedNumber(this.config.seed))
        .fork(`epoch-${epoch}`)
        .shuffle(this.trainExamples.map((_, i) => i));
      this.#order = { epoch, indices };
    }
    return this.#order.indices;
  }

  #nextExamples(): Example[] {
    const size = this.config.training.per_device_train_batch_size;
    if (this.state.position >= this.trainExamples.length) {
      this.state.epoch++;
      this.state.position = 0;
    }
    const order = this.#epochOrder(this.state.epoch);
    const picked = order.slice(this.state.position, this.state.position + size).map((i) => this.trainExamples[i]!);
    this.state.position += size;
    return picked;
  }

  /** HF model inputs for a batch, plus the labels the trainer scores itself (causal LM). */
  #tensors(batch: TaskBatch): { inputs: ModelInputs; shiftedLabels?: tf.Tensor } {
    const int2 = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0]?.length ?? 0], 'int32');
    const inputs: ModelInputs = { inputIds: int2(batch.inputIds), attentionMask: int2(batch.attentionMask) };
    if (batch.tokenTypeIds) inputs.tokenTypeIds = int2(batch.tokenTypeIds);
    if (batch.nextSentenceLabel) inputs.nextSentenceLabel = tf.tensor1d(batch.nextSentenceLabel, 'int32');
    if (this.task.labelsPerExample) inputs.labels = tf.tensor1d(batch.classLabels!, 'int32');
    else if (!this.task.lossFromLogits) inputs.labels = int2(batch.labels);
    return { inputs, ...(this.task.lossFromLogits ? { shiftedLabels: int2(batch.labels) } : {}) };
  }

  #loss(inputs: ModelInputs, shiftedLabels: tf.Tensor | undefined): { loss: tf.Scalar; logits: tf.Tensor } {
    const out = this.model.forward(inputs);
    if (shiftedLabels) return { loss: lmLoss(out.logits, shiftedLabels), logits: out.logits };
    if (!out.loss)
      throw new TesseraError(`${this.model.architecture} returned no loss for objective ${this.task.objective}.`);
    return { loss: out.loss, logits: out.logits };
  }

  /** Runs the validation split through every metric. */
  async evaluate(): Promise<Record<string, number>> {
    if (!this.validationExamples.length) return {};
    const metrics = createMetrics(this.config.metrics);
    const size = this.config.training.per_device_eval_batch_size;
    const limit = this.config.training.max_eval_batches ?? Number.POSITIVE_INFINITY;
    const rng = new Rng(seedNumber(this.config.seed)).fork('eval');
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      for (let start = 0, n = 0; start < this.validationExamples.length && n < limit; start += size, n++) {
        const examples = this.validationExamples.slice(start, start + size);
        const batch = this.task.collate(examples, rng);
        const { loss, predicted } = tf.tidy(() => {
          const { inputs, shiftedLabels } = this.#tensors(batch);
          const out = this.#loss(inputs, shiftedLabels);
          return { loss: out.loss, predicted: tf.argMax(out.logits, -1) };
        });
        const [lossValue, predictions] = await Promise.all([
          loss.data(),
          predicted.array() as Promise<number[] | number[][]>,
        ]);
        tf.dispose([loss, predicted]);
        const rows = this.task.labelsPerExample
          ? (predictions as number[]).map((p) => [p])
          : (predictions as number[][]);
        const labels = this.task.labelsPerExample ? batch.classLabels!.map((l) => [l]) : batch.labels;
        const evalBatch: EvalBatch = { loss: lossValue[0]!, weight: examples.length, predictions: rows, labels };
        for (const m of metrics) m.update(evalBatch);
      }
    } finally {
      if (wasTraining) this.model.train();
    }
    return Object.assign({}, ...metrics.map((m) => m.compute()));
  }

  async #save(): Promise<string> {
    const outputDir = this.config.training.output_dir;
    this.state.rng = this.model.rng.getState();
    this.state.dataRng = this.dataRng.getState();
    const path = await saveCheckpoint(outputDir, this.model, this.optimizer, this.state);
    await this.tokenizer.save(join(path, 'tokenizer.json'));
    pruneCheckpoints(outputDir, this.config.training.save_total_limit, this.state.bestCheckpoint);
    return path;
  }

  async train(): Promise<TrainResult> {
    const args = this.config.training;
    const outputDir = args.output_dir;
    mkdirSync(outputDir, { recursive: true });
    await this.tokenizer.save(join(outputDir, 'tokenizer.json'));
    const metricsPath = join(outputDir, 'metrics.jsonl');
    const record = (entry: Record<string, unknown>) => appendFileSync(metricsPath, `${JSON.stringify(entry)}\n`);
    const onSigint = () => {
      this.#interrupted = true;
    };
    if (this.options.handleSigint ?? true) process.on('SIGINT', onSigint);
    const progress = new Progress(this.totalSteps, args.logging_steps, {
      ...(this.options.tty !== undefined ? { tty: this.options.tty } : {}),
      log: (l) => this.#log(l),
    });
    const started = performance.now();
    const losses: number[] = [];
    let evalMetrics: Record<string, number> = {};
    let lastCheckpoint: string | null = listCheckpoints(outputDir).at(-1)?.path ?? null;
    let stoppedEarly = false;
    let tokens = 0;
    const trainSeries: { x: number; y: number }[] = [];
    const evalSeries: { x: number; y: number }[] = [];
    // Optimizer state appears at its first update; from then on the live count must not move.
    let baseline: number | undefined;
    let consecutiveSkips = 0;
    try {
      this.model.train();
      while (this.state.step < this.totalSteps && !this.#interrupted) {
        // cpu reads resolve as microtasks; yielding a macrotask lets SIGINT (and progress output) through.
        await new Promise((resolve) => setImmediate(resolve));
        const micro: number[] = [];
        let summed: Map<string, tf.Tensor> | undefined;
        let finite = true;
        for (let m = 0; m < args.gradient_accumulation_steps; m++) {
          const batch = this.task.collate(this.#nextExamples(), this.dataRng);
          tokens += batch.attentionMask.reduce((a, r) => a + r.reduce((x, y) => x + y, 0), 0);
          const { inputs, shiftedLabels } = this.#tensors(batch);
          const { loss, grads } = valueAndGrads(this.model, () => this.#loss(inputs, shiftedLabels).loss);
          tf.dispose([
            ...Object.values(inputs).filter((t): t is tf.Tensor => t instanceof tf.Tensor),
            ...(shiftedLabels ? [shiftedLabels] : []),
          ]);
          const value = (await loss.data())[0]!;
          loss.dispose();
          micro.push(value);
          if (!Number.isFinite(value)) finite = false;
          // Mean over micro-batches: each contributes 1/accumulation of its gradient.
          const scale = 1 / args.gradient_accumulation_steps;
          if (!summed) {
            summed = new Map([...grads].map(([n, g]) => [n, scale === 1 ? g : tf.mul(g, scale)]));
            if (scale !== 1) tf.dispose([...grads.values()]);
          } else {
            for (const [n, g] of grads) {
              const next = tf.tidy(() => tf.add(summed!.get(n)!, tf.mul(g, scale)));
              tf.dispose([summed.get(n)!, g]);
              summed.set(n, next);
            }
          }
        }
        const stepLoss = micro.reduce((a, b) => a + b, 0) / micro.length;
        if (!finite) {
          tf.dispose([...summed!.values()]);
          if (args.non_finite_loss === 'skip' && ++consecutiveSkips <= MAX_CONSECUTIVE_SKIPS) {
            this.state.skippedBatches++;
            progress.note(
              `step ${this.state.step + 1}: loss is ${stepLoss}; batch skipped (${this.state.skippedBatches} so far)`,
            );
            continue;
          }
          const repeated =
            consecutiveSkips > MAX_CONSECUTIVE_SKIPS
              ? ` (${MAX_CONSECUTIVE_SKIPS} batches in a row; the weights are no longer finite)`
              : '';
          throw new NonFiniteLossError(
            `The training loss became ${stepLoss} at step ${this.state.step + 1}${repeated}. ` +
              `${lastCheckpoint ? `The last good checkpoint is ${lastCheckpoint}. ` : 'No checkpoint was written yet. '}` +
              'Lower the learning rate or enable clipping (optimizer.clipGradNorm), or set training.non_finite_loss: skip.',
          );
        }
        consecutiveSkips = 0;
        // stepAsync: GPU backends in Node cannot read synchronously.
        const result = await this.optimizer.stepAsync(summed!);
        tf.dispose([...summed!.values()]);
        this.state.step++;
        losses.push(stepLoss);
        trainSeries.push({ x: this.state.step, y: stepLoss });
        const lr = result.lrs?.[0] ?? this.optimizer.currentLrs()[0] ?? 0;
        const tokensPerSecond = tokens / ((performance.now() - started) / 1000);
        progress.update({
          step: this.state.step,
          total: this.totalSteps,
          loss: stepLoss,
          lr: lr ?? 0,
          tokensPerSecond,
        });
        if (this.state.step % args.logging_steps === 0 || this.state.step === 1) {
          record({
            split: 'train',
            step: this.state.step,
            epoch: this.state.epoch,
            loss: stepLoss,
            lr,
            tokens_per_second: tokensPerSecond,
          });
        }
        const atEval = args.eval_steps !== null && this.state.step % args.eval_steps === 0;
        if (atEval && this.validationExamples.length) {
          evalMetrics = await this.evaluate();
          evalSeries.push({ x: this.state.step, y: evalMetrics.loss ?? Number.NaN });
          record({ split: 'eval', step: this.state.step, ...evalMetrics });
          progress.note(`eval at step ${this.state.step}: ${formatMetrics(evalMetrics)}`);
          const value = evalMetrics[args.metric_for_best_model];
          if (value === undefined) {
            throw new TesseraError(
              `metric_for_best_model "${args.metric_for_best_model}" is not among the computed metrics (${Object.keys(evalMetrics).join(', ')}).`,
            );
          }
          const better =
            this.state.bestMetric === null ||
            (args.greater_is_better ? value > this.state.bestMetric : value < this.state.bestMetric);
          if (better) {
            this.state.bestMetric = value;
            this.state.evalsWithoutImprovement = 0;
            this.state.bestCheckpoint = join(outputDir, `checkpoint-${this.state.step}`);
            lastCheckpoint = await this.#save();
          } else if (
            args.early_stopping_patience !== null &&
            ++this.state.evalsWithoutImprovement >= args.early_stopping_patience
          ) {
            progress.note(
              `early stopping: ${args.metric_for_best_model} did not improve for ${args.early_stopping_patience} evaluations`,
            );
            stoppedEarly = true;
            break;
          }
        }
        if (
          args.save_steps !== null &&
          this.state.step % args.save_steps === 0 &&
          lastCheckpoint !== join(outputDir, `checkpoint-${this.state.step}`)
        ) {
          lastCheckpoint = await this.#save();
        }
        baseline ??= tf.memory().numTensors;
        const leaked = tf.memory().numTensors - baseline;
        if (leaked > 0)
          throw new TesseraError(`Internal error: ${leaked} tensors leaked in training step ${this.state.step}.`);
      }
    } finally {
      progress.stop();
      process.off('SIGINT', onSigint);
    }
    if (this.#interrupted) {
      lastCheckpoint = await this.#save();
      this.#log(`interrupted: finished step ${this.state.step} and saved the checkpoint to ${lastCheckpoint}`);
    } else {
      if (this.validationExamples.length && evalSeries.at(-1)?.x !== this.state.step) {
        evalMetrics = await this.evaluate();
        evalSeries.push({ x: this.state.step, y: evalMetrics.loss ?? Number.NaN });
        record({ split: 'eval', step: this.state.step, ...evalMetrics });
        this.#log(`final eval: ${formatMetrics(evalMetrics)}`);
      }
      if (lastCheckpoint !== join(outputDir, `checkpoint-${this.state.step}`)) lastCheckpoint = await this.#save();
    }
    const plot = join(outputDir, 'loss.svg');
    writeLineChart(plot, `${this.model.architecture} — ${this.task.objective}`, 'update step', [
      { name: 'train loss', color: '#1f77b4', points: trainSeries },
      { name: 'eval loss', color: '#d62728', points: evalSeries },
    ]);
    let sample: string | undefined;
    if (!this.#interrupted && args.sample_tokens > 0 && this.model instanceof GPT2LMHeadModel) {
      const prompt = this.tokenizer.encode(args.sample_prompt || ' ', null, { addSpecialTokens: false }).ids;
      const [ids] = await generateGpt(this.model, [prompt.length ? prompt : [0]], {
        maxNewTokens: args.sample_tokens,
        temperature: 0.8,
        topK: 40,
        seed: seedNumber(this.config.seed),
      });
      sample = this.tokenizer.decode([...prompt, ...ids!]);
      this.#log(`sample: ${sample}`);
      writeFileSync(join(outputDir, 'sample.txt'), `${sample}\n`);
    }
    if (lastCheckpoint && existsSync(join(outputDir, 'tokenizer.json')))
      copyFileSync(join(outputDir, 'tokenizer.json'), join(lastCheckpoint, 'tokenizer.json'));
    const wallSeconds = (performance.now() - started) / 1000;
    this.#log(`wrote ${metricsPath}, ${plot} and checkpoints under ${outputDir} (${wallSeconds.toFixed(1)} s)`);
    return {
      outputDir,
      steps: this.state.step,
      losses,
      evalMetrics,
      lastCheckpoint,
      bestCheckpoint: this.state.bestCheckpoint,
      interrupted: this.#interrupted,
      stoppedEarly,
      skippedBatches: this.state.skippedBatches,
      wallSeconds,
      ...(sample !== undefined ? { sample } : {}),
      data: this.dataReport,
    };
  }

  /** Frees the model and optimizer state. */
  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}

export function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .filter(([k]) => !/_\d+$/.test(k))
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(', ');
}

/** `tessera data prepare`: builds (or trains) the tokenizer, tokenizes the data and reports it; nothing is trained. */
export async function prepareRunData(
  config: RunConfig,
  log: (line: string) => void = (l) => console.log(l),
): Promise<DataReport> {
  const root = new Rng(seedNumber(config.seed));
  const splits = await loadSplits(config);
  const tokenizer = await makeTokenizer(config, undefined, () => splits.train.map((r) => r.text));
  const prepared = await prepareTask(config, tokenizer, root.fork('prepare'), splits);
  mkdirSync(config.training.output_dir, { recursive: true });
  const path = join(config.training.output_dir, 'tokenizer.json');
  await tokenizer.save(path);
  const r = prepared.report;
  const tokens = prepared.train.reduce((n, e) => n + e.ids.length, 0);
  log(`tokenizer: ${tokenizer.getVocabSize()} tokens, saved to ${path}`);
  log(
    `train: ${r.trainRecords} records -> ${r.trainExamples} ${prepared.task.objective} examples, ${tokens.toLocaleString('en-US')} tokens`,
  );
  log(`validation: ${r.validationRecords} records -> ${r.validationExamples} examples`);
  log(
    `skipped: ${
      Object.entries(r.skipped)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'none'
    }; truncated tokens: ${r.truncatedTokens}`,
  );
  return r;
}
