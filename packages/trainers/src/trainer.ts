import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Example, ModelBatch, PreparedObjective, Tokenizer } from '@tessera/data';
import { createOptimizer, GradientAccumulator, type Optimizer } from '@tessera/optim';
import { Rng, registry, setMatmulPrecision, TesseraError, tf, useBackend, valueAndGrads } from '@tessera/tensor-core';
import { type ModelInputs, type PretrainedModel, disposeModelInputs } from '@tessera/transformer';
import {
  createObjective,
  createRunModel,
  createTokenizer,
  type DataReport,
  type ExampleSet,
  loadSplits,
  prepareData,
  seedNumber,
} from './assemble.js';
import { createAdapter, type ModelAdapter } from './adapter.js';
import { BUILTIN_CALLBACKS } from './callbacks/index.js';
import {
  emit,
  type GradientUpdate,
  type TrainerCallback,
  type TrainerContext,
  type TrainerControl,
} from './callbacks/types.js';
import {
  listCheckpoints,
  loadOptimizerState,
  readTrainerState,
  resolveCheckpoint,
  type TrainerState,
} from './checkpoint.js';
import { configFingerprint, type RunConfig } from './config.js';
import { createMetrics } from './metrics.js';
import { ExampleOrder, type World } from './order.js';
import { precisionProblems, validateRunConfig } from './validate.js';

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
  /** Named in config errors (the config file). */
  source?: string;
  /**
   * This process's place in a data-parallel job. Each rank trains on its share of every
   * global batch; callbacks marked mainProcessOnly (output, checkpoints) run on rank 0 only.
   * The synchronisation itself is a callback (e.g. @tessera/distributed's gradient-sync).
   */
  world?: World;
  /** Callbacks added by the caller (objects, not registry names), after the config's. */
  callbacks?: TrainerCallback[];
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

/** A batch's id arrays as int32 tensors under the model's input names. */
function toModelInputs(batch: ModelBatch): ModelInputs {
  const inputs: Record<string, tf.Tensor> = {};
  for (const [key, value] of Object.entries(batch)) inputs[key] = tf.tensor(value, undefined, 'int32');
  return inputs as unknown as ModelInputs;
}

function modelLoss(model: PretrainedModel, inputs: ModelInputs): { loss: tf.Scalar; logits: tf.Tensor } {
  const out = model.forward(inputs);
  if (!out.loss) throw new TesseraError(`${model.architecture} returned no loss for the labels of this objective.`);
  return { loss: out.loss, logits: out.logits };
}

/**
 * A training run assembled from one config through the registry: tokenizer, dataset,
 * objective, model, optimizer (with its schedule), metrics and callbacks. The loop only
 * trains; logging, evaluation, checkpoints, plots and sampling are callbacks around it.
 */
export class Trainer {
  private constructor(
    readonly config: RunConfig,
    readonly model: PretrainedModel,
    readonly tokenizer: Tokenizer,
    readonly optimizer: Optimizer,
    readonly objective: PreparedObjective,
    readonly trainExamples: ExampleSet,
    readonly validationExamples: ExampleSet,
    readonly dataReport: DataReport,
    readonly callbacks: TrainerCallback[],
    private state: TrainerState,
    private readonly options: TrainerOptions,
    readonly totalSteps: number,
    /** The config's adapter, applied to `model`; undefined for full fine-tuning. */
    readonly adapter: ModelAdapter | undefined,
  ) {
    this.world = options.world ?? { rank: 0, size: 1 };
    this.#order = new ExampleOrder(trainExamples, seedNumber(config.seed), this.world);
    this.#collateRng = new Rng(seedNumber(config.seed)).fork('collate');
  }

  static async create(config: RunConfig, options: TrainerOptions = {}): Promise<Trainer> {
    const log = options.log ?? ((l: string) => console.log(l));
    await registry.loadPlugins(config.plugins);
    // Every name and option in the config is checked before any data is read or backend started.
    validateRunConfig(config, options.source, await precisionProblems(config));
    const world = options.world ?? { rank: 0, size: 1 };
    if (!(Number.isInteger(world.rank) && Number.isInteger(world.size) && world.rank >= 0 && world.rank < world.size))
      throw new TesseraError(
        `TrainerOptions.world needs 0 <= rank < size; got rank ${world.rank}, size ${world.size}.`,
      );
    const callbacks = [
      ...BUILTIN_CALLBACKS.filter((n) => n !== 'interrupt' || (options.handleSigint ?? true)).map(
        (n) =>
          registry.callback.create(
            n,
            n === 'progress' && options.tty !== undefined ? { tty: options.tty } : {},
          ) as TrainerCallback,
      ),
      ...config.callbacks.map(({ name, ...o }) => registry.callback.create(name, o) as TrainerCallback),
      ...(options.callbacks ?? []),
    ].filter((cb) => world.rank === 0 || !cb.mainProcessOnly);
    // Built before any data is read, so a bad adapter config fails as early as the rest.
    const adapter = createAdapter(config);
    const backend = await useBackend(config.backend, { log });
    // HF's bf16: the backend's matmuls only; set (or reset to fp32) for every run.
    setMatmulPrecision(config.training.bf16 ? 'bf16' : 'fp32', backend.name);
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
    const root = new Rng(seedNumber(config.seed));
    const objective = createObjective(config);
    // Read once: the tokenizer (when trained) and the examples come from the same records.
    const splits = await loadSplits(config, objective);
    const tokenizer = await createTokenizer(config, splits, checkpoint);
    const data = prepareData(config, objective, tokenizer, splits, root.fork('prepare'));
    // A run directory works as well as a checkpoint for `from`: its latest checkpoint is used.
    const resolveFrom = (p: string) => (existsSync(join(p, 'config.json')) ? p : resolveCheckpoint(p));
    // With an adapter a checkpoint holds the adapter only: the base is built as at the start, then the adapter loaded.
    const model = createRunModel(
      config,
      tokenizer,
      data.objective,
      root.fork('model'),
      adapter ? undefined : checkpoint,
      resolveFrom,
    );
    if (adapter) {
      try {
        adapter.apply(model);
        if (checkpoint) adapter.load(model, checkpoint);
      } catch (err) {
        model.dispose();
        throw err;
      }
    }

    const perUpdate = config.training.per_device_train_batch_size * config.training.gradient_accumulation_steps;
    const stepsPerEpoch = Math.max(1, Math.ceil(data.train.length / (perUpdate * world.size)));
    const totalSteps = config.training.max_steps ?? Math.ceil(config.training.num_train_epochs * stepsPerEpoch);
    const optimizer = createOptimizer(withScheduleLength(config.optimizer, totalSteps), model);
    let state: TrainerState = {
      step: 0,
      epoch: 0,
      position: 0,
      rng: model.rng.getState(),
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
      const ranks =
        (resumed.worldSize ?? 1) !== world.size
          ? ` (written by ${resumed.worldSize ?? 1} ranks, now ${world.size})`
          : '';
      log(
        `resumed from ${checkpoint} at step ${resumed.step}${ranks}${options.dataOverride ? ` on new data ${options.dataOverride}` : ''}`,
      );
    }
    const r = data.report;
    const skipped = Object.entries(r.skipped)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    const from = splits.tokens ? 'token shards' : `${r.trainRecords} train / ${r.validationRecords} validation records`;
    log(
      `data: ${from} -> ${r.trainExamples} / ${r.validationExamples} ${objective.name} examples (${r.trainTokens.toLocaleString('en-US')} tokens)` +
        `${skipped ? `; skipped ${skipped}` : ''}${r.truncatedTokens ? `; ${r.truncatedTokens} tokens truncated` : ''}`,
    );
    const trainable = model.parameterCount({ trainableOnly: true });
    const adapted = adapter
      ? ` (${trainable.toLocaleString('en-US')} trainable through adapter ${adapter.name}, ${((100 * trainable) / model.parameterCount()).toFixed(2)}%)`
      : '';
    log(
      `model: ${model.architecture}, ${model.parameterCount().toLocaleString('en-US')} parameters${adapted}; tokenizer: ${tokenizer.getVocabSize()} tokens; ` +
        `${totalSteps} updates of ${perUpdate}${world.size > 1 ? ` × ${world.size} ranks` : ''} examples; callbacks: ${callbacks.map((c) => c.name).join(', ')}`,
    );
    return new Trainer(
      config,
      model,
      tokenizer,
      optimizer,
      data.objective,
      data.train,
      data.validation,
      r,
      callbacks,
      state,
      options,
      totalSteps,
      adapter,
    );
  }

  #log(line: string): void {
    (this.options.log ?? ((l: string) => console.log(l)))(line);
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
        const end = Math.min(start + size, this.validationExamples.length);
        const examples = Array.from({ length: end - start }, (_, i) => this.validationExamples.get(start + i));
        const batch = this.objective.collate(examples, rng);
        const { loss, predicted } = tf.tidy(() => {
          const out = modelLoss(this.model, toModelInputs(batch));
          return { loss: out.loss, predicted: tf.argMax(out.logits, -1) };
        });
        const [lossValue, predictions] = await Promise.all([
          loss.data(),
          predicted.array() as Promise<number[] | number[][]>,
        ]);
        tf.dispose([loss, predicted]);
        const rows = this.objective.score(predictions, batch);
        for (const m of metrics) m.update({ loss: lossValue[0]!, weight: examples.length, ...rows });
      }
    } finally {
      if (wasTraining) this.model.train();
    }
    return Object.assign({}, ...metrics.map((m) => m.compute()));
  }

  /**
   * One optimizer update over gradient_accumulation_steps micro-batches: each micro-batch's
   * gradient weighted by the items its loss averages over (objective.lossItems), so the
   * update equals one batch of all of them; onPreOptimizerStep callbacks see the weighted
   * sums before they are divided (gradient-sync all-reduces them across ranks there).
   * Returns the mean loss, or null when the batch was skipped.
   */
  async #update(
    ctx: TrainerContext,
    accumulator: GradientAccumulator,
    counted: { tokens: number },
  ): Promise<{ loss: number; lr: number } | null> {
    const { gradient_accumulation_steps: micro, per_device_train_batch_size: size } = this.config.training;
    let lossSum = 0;
    let tokens = 0;
    for (let m = 0; m < micro; m++) {
      const { examples, indices, epoch, padded } = this.#order.next(this.state, size);
      this.state.paddedExamples = (this.state.paddedExamples ?? 0) + padded;
      // Randomness keyed by the example, not its batch: any world size draws the same masks.
      const rngs = indices.map((i) => this.#collateRng.fork(`${epoch}:${i}`));
      const batch = this.objective.collate(examples, rngs);
      tokens += batch.attentionMask.reduce((a, r) => a + r.reduce((x, y) => x + y, 0), 0);
      const items = padded ? 0 : (this.objective.lossItems?.(batch) ?? examples.length);
      // Nothing to score (or a padded repeat): no gradient, and weight 0 in the update.
      if (items === 0) continue;
      const inputs = toModelInputs(batch);
      const { loss, grads } = valueAndGrads(this.model, () => modelLoss(this.model, inputs).loss);
      disposeModelInputs(inputs);
      lossSum += (await loss.data())[0]! * items;
      loss.dispose();
      accumulator.add(grads, items);
      tf.dispose([...grads.values()]);
    }
    const summed: GradientUpdate = { ...accumulator.takeSum(), lossSum, tokens };
    try {
      await emit(this.callbacks, 'onPreOptimizerStep', ctx, summed);
      counted.tokens += summed.tokens;
      if (!(summed.weight > 0)) {
        this.state.skippedBatches++;
        this.#log(`step ${this.state.step + 1}: no micro-batch had a scored label; update skipped`);
        return null;
      }
      const loss = summed.lossSum / summed.weight;
      if (!Number.isFinite(loss)) return this.#nonFinite(loss);
      this.#consecutiveSkips = 0;
      const inv = 1 / summed.weight;
      for (const [name, g] of summed.grads) {
        summed.grads.set(
          name,
          tf.tidy(() => tf.mul(g, inv)),
        );
        g.dispose();
      }
      // stepAsync: GPU backends in Node cannot read synchronously.
      const result = await this.optimizer.stepAsync(summed.grads);
      return { loss, lr: result.lrs?.[0] ?? this.optimizer.currentLrs()[0] ?? 0 };
    } finally {
      tf.dispose([...summed.grads.values()]);
    }
  }

  #consecutiveSkips = 0;
  readonly #order: ExampleOrder<Example>;
  readonly #collateRng: Rng;
  readonly world: World;

  #nonFinite(loss: number): null {
    const step = this.state.step + 1;
    if (this.config.training.non_finite_loss === 'skip' && ++this.#consecutiveSkips <= MAX_CONSECUTIVE_SKIPS) {
      this.state.skippedBatches++;
      this.#log(`step ${step}: loss is ${loss}; batch skipped (${this.state.skippedBatches} so far)`);
      return null;
    }
    const repeated =
      this.#consecutiveSkips > MAX_CONSECUTIVE_SKIPS
        ? ` (${MAX_CONSECUTIVE_SKIPS} batches in a row; the weights are no longer finite)`
        : '';
    const last = listCheckpoints(this.config.training.output_dir).at(-1)?.path;
    throw new NonFiniteLossError(
      `The training loss became ${loss} at step ${step}${repeated}. ` +
        `${last ? `The last good checkpoint is ${last}. ` : 'No checkpoint was written yet. '}` +
        'Lower the learning rate or enable clipping (optimizer.clipGradNorm), or set training.non_finite_loss: skip.',
    );
  }

  #context(started: number): TrainerContext {
    const control: TrainerControl = { shouldLog: false, shouldEvaluate: false, shouldSave: false, shouldStop: false };
    const ctx: TrainerContext = {
      config: this.config,
      args: this.config.training,
      model: this.model,
      adapter: this.adapter,
      tokenizer: this.tokenizer,
      optimizer: this.optimizer,
      state: this.state,
      world: this.world,
      isMainProcess: this.world.rank === 0,
      control,
      totalSteps: this.totalSteps,
      elapsedSeconds: () => (performance.now() - started) / 1000,
      lastCheckpoint: listCheckpoints(this.config.training.output_dir).at(-1)?.path ?? null,
      log: (line) => this.#log(line),
      save: async () => {
        this.state.rng = this.model.rng.getState();
        this.state.worldSize = this.world.size;
        await emit(this.callbacks, 'onSave', ctx);
        control.shouldSave = false;
        return ctx.lastCheckpoint ?? '';
      },
    };
    return ctx;
  }

  async train(): Promise<TrainResult> {
    const started = performance.now();
    const ctx = this.#context(started);
    const { control, state } = ctx;
    const losses: number[] = [];
    let evalMetrics: Record<string, number> = {};
    const accumulator = new GradientAccumulator();
    const counted = { tokens: 0 };
    mkdirSync(this.config.training.output_dir, { recursive: true });
    try {
      this.model.train();
      await emit(this.callbacks, 'onTrainBegin', ctx);
      while (state.step < this.totalSteps) {
        // cpu reads resolve as microtasks; yielding a macrotask lets SIGINT (and progress output) through.
        await new Promise((resolve) => setImmediate(resolve));
        // Stop flags are read after onStepBegin, so a data-parallel run can agree on them there.
        await emit(this.callbacks, 'onStepBegin', ctx);
        if (control.shouldStop) break;
        const update = await this.#update(ctx, accumulator, counted);
        if (!update) continue;
        state.step++;
        losses.push(update.loss);
        const tokensPerSecond = counted.tokens / ctx.elapsedSeconds();
        await emit(this.callbacks, 'onStepEnd', ctx, { ...update, tokens: counted.tokens, tokensPerSecond });
        if (control.shouldLog) {
          const logs = { epoch: state.epoch, loss: update.loss, lr: update.lr, tokens_per_second: tokensPerSecond };
          await emit(this.callbacks, 'onLog', ctx, logs);
        }
        if (control.shouldEvaluate && this.validationExamples.length) {
          evalMetrics = await this.evaluate();
          await emit(this.callbacks, 'onEvaluate', ctx, evalMetrics);
        }
        if (control.shouldSave) await ctx.save();
        Object.assign(control, { shouldLog: false, shouldEvaluate: false, shouldSave: false });
      }
      const end = {
        interrupted: control.stopReason === 'interrupted',
        stoppedEarly: control.stopReason === 'early-stopping',
      };
      const result: TrainResult = {
        outputDir: this.config.training.output_dir,
        steps: state.step,
        losses,
        evalMetrics,
        lastCheckpoint: null,
        bestCheckpoint: null,
        ...end,
        skippedBatches: state.skippedBatches,
        wallSeconds: 0,
        data: this.dataReport,
      };
      await emit(this.callbacks, 'onTrainEnd', ctx, result);
      result.lastCheckpoint = ctx.lastCheckpoint;
      result.bestCheckpoint = state.bestCheckpoint;
      result.wallSeconds = ctx.elapsedSeconds();
      this.#log(
        `wrote metrics.jsonl, loss.svg and checkpoints under ${result.outputDir} (${result.wallSeconds.toFixed(1)} s)`,
      );
      return result;
    } finally {
      accumulator.dispose();
      for (const cb of this.callbacks) cb.close?.();
    }
  }

  /** Frees the model and optimizer state. */
  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}

/** The optimizer spec with its schedule's totalSteps set to the run's length when the schedule needs one. */
function withScheduleLength(spec: RunConfig['optimizer'], totalSteps: number): RunConfig['optimizer'] {
  const out = structuredClone(spec) as RunConfig['optimizer'] & { schedule?: Record<string, unknown> };
  const schedule = out.schedule;
  if (schedule && schedule.totalSteps === undefined && registry.schedule.get(String(schedule.name)).meta.usesTotalSteps)
    schedule.totalSteps = totalSteps;
  return out;
}

/** `tessera data prepare`: builds (or trains) the tokenizer, tokenizes the data and reports it; nothing is trained. */
export async function prepareRunData(
  config: RunConfig,
  log: (line: string) => void = (l) => console.log(l),
  source?: string,
): Promise<DataReport> {
  await registry.loadPlugins(config.plugins);
  validateRunConfig(config, source);
  const objective = createObjective(config);
  const splits = await loadSplits(config, objective);
  const tokenizer = await createTokenizer(config, splits);
  const data = prepareData(config, objective, tokenizer, splits, new Rng(seedNumber(config.seed)).fork('prepare'));
  mkdirSync(config.training.output_dir, { recursive: true });
  const path = join(config.training.output_dir, 'tokenizer.json');
  await tokenizer.save(path);
  const r = data.report;
  const tokens = r.trainTokens;
  log(`tokenizer: ${tokenizer.getVocabSize()} tokens, saved to ${path}`);
  log(
    `train: ${r.trainRecords} records -> ${r.trainExamples} ${objective.name} examples, ${tokens.toLocaleString('en-US')} tokens`,
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
