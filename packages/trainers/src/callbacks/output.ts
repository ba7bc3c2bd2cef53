import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tokenizer } from '@tessera/data';
import { type Generator, generatorFor } from '@tessera/transformer';
import { seedNumber } from '../assemble.js';
import { writeLineChart } from '../plot.js';
import { Progress } from '../progress.js';
import type { StepInfo, TrainEnd, TrainerCallback, TrainerContext } from './types.js';

export function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .filter(([k]) => !/_\d+$/.test(k))
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(', ');
}

/** A live bar on a terminal, plain lines every logging_steps otherwise; evaluations as lines. */
export class ProgressCallback implements TrainerCallback {
  readonly name = 'progress';
  readonly mainProcessOnly = true;
  #progress: Progress | undefined;
  constructor(private readonly options: { tty?: boolean } = {}) {}
  onTrainBegin(ctx: TrainerContext): void {
    this.#progress = new Progress(ctx.totalSteps, ctx.args.logging_steps, {
      ...(this.options.tty !== undefined ? { tty: this.options.tty } : {}),
      log: (l) => ctx.log(l),
    });
  }
  onStepEnd(ctx: TrainerContext, step: StepInfo): void {
    this.#progress?.update({
      step: ctx.state.step,
      total: ctx.totalSteps,
      loss: step.loss,
      lr: step.lr,
      tokensPerSecond: step.tokensPerSecond,
    });
  }
  onEvaluate(ctx: TrainerContext, metrics: Record<string, number>): void {
    this.#progress?.note(`eval at step ${ctx.state.step}: ${formatMetrics(metrics)}`);
  }
  close(): void {
    this.#progress?.stop();
  }
}

/** metrics.jsonl in output_dir: a train record per logged step, an eval record per evaluation. */
export class MetricsLogCallback implements TrainerCallback {
  readonly name = 'metrics-log';
  readonly mainProcessOnly = true;
  #write(ctx: TrainerContext, entry: Record<string, unknown>): void {
    appendFileSync(join(ctx.args.output_dir, 'metrics.jsonl'), `${JSON.stringify(entry)}\n`);
  }
  onLog(ctx: TrainerContext, logs: Record<string, number>): void {
    this.#write(ctx, { split: 'train', step: ctx.state.step, ...logs });
  }
  onEvaluate(ctx: TrainerContext, metrics: Record<string, number>): void {
    this.#write(ctx, { split: 'eval', step: ctx.state.step, ...metrics });
  }
}

/** loss.svg in output_dir: train loss per update and eval loss per evaluation. */
export class LossPlotCallback implements TrainerCallback {
  readonly name = 'loss-plot';
  readonly mainProcessOnly = true;
  readonly #train: { x: number; y: number }[] = [];
  readonly #eval: { x: number; y: number }[] = [];
  onStepEnd(ctx: TrainerContext, step: StepInfo): void {
    this.#train.push({ x: ctx.state.step, y: step.loss });
  }
  onEvaluate(ctx: TrainerContext, metrics: Record<string, number>): void {
    this.#eval.push({ x: ctx.state.step, y: metrics.loss ?? Number.NaN });
  }
  onTrainEnd(ctx: TrainerContext): void {
    writeLineChart(
      join(ctx.args.output_dir, 'loss.svg'),
      `${ctx.model.architecture} — ${ctx.config.objective.name}`,
      'update step',
      [
        { name: 'train loss', color: '#1f77b4', points: this.#train },
        { name: 'eval loss', color: '#d62728', points: this.#eval },
      ],
    );
  }
}

/** A prompt's ids for a generator: plain text to continue, or an input with its special tokens to answer. */
export function encodePrompt(tokenizer: Tokenizer, generator: Generator, text: string): number[] {
  return tokenizer.encode(text, null, { addSpecialTokens: !generator.continuesPrompt }).ids;
}

/** The generated text: the prompt and its continuation, or the answer alone. */
export function decodeGenerated(tokenizer: Tokenizer, generator: Generator, prompt: number[], ids: number[]): string {
  return generator.continuesPrompt
    ? tokenizer.decode([...prompt, ...ids])
    : tokenizer.decode(ids, { skipSpecialTokens: true });
}

/** At the end of a run, sample_tokens of text from sample_prompt, when the model's head generates. */
export class SampleCallback implements TrainerCallback {
  readonly name = 'sampler';
  readonly mainProcessOnly = true;
  async onTrainEnd(ctx: TrainerContext, end: TrainEnd): Promise<void> {
    const { sample_tokens, sample_prompt, sample_temperature, sample_top_k, output_dir } = ctx.args;
    const generator = sample_tokens > 0 && !end.interrupted ? generatorFor(ctx.model) : undefined;
    if (!generator) return;
    const encoded = encodePrompt(ctx.tokenizer, generator, sample_prompt || ' ');
    const [ids] = await generator.run(ctx.model, [encoded.length ? encoded : [0]], {
      maxNewTokens: sample_tokens,
      temperature: sample_temperature,
      topK: sample_top_k,
      seed: seedNumber(ctx.config.seed),
    });
    end.sample = decodeGenerated(ctx.tokenizer, generator, encoded, ids!);
    ctx.log(`sample: ${end.sample}`);
    writeFileSync(join(output_dir, 'sample.txt'), `${end.sample}\n`);
  }
}
