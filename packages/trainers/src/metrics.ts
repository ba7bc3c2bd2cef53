import { registry, TesseraError } from '@tessera/tensor-core';

/** What evaluation hands each metric per batch: rows of predicted and true ids (-100 = not scored). */
export interface EvalBatch {
  loss: number;
  /** Weight of this batch's loss in the mean (examples in it). */
  weight: number;
  predictions: number[][];
  labels: number[][];
}

export interface Metric {
  readonly name: string;
  update(batch: EvalBatch): void;
  /** Named values; keys are what metric_for_best_model refers to. */
  compute(): Record<string, number>;
}

const IGNORE = -100;

class LossMetric implements Metric {
  readonly name: string = 'loss';
  #sum = 0;
  #weight = 0;
  update(b: EvalBatch): void {
    this.#sum += b.loss * b.weight;
    this.#weight += b.weight;
  }
  compute(): Record<string, number> {
    const loss = this.#weight ? this.#sum / this.#weight : Number.NaN;
    return { loss };
  }
}

class PerplexityMetric extends LossMetric {
  override readonly name: string = 'perplexity';
  override compute(): Record<string, number> {
    return { perplexity: Math.exp(super.compute().loss!) };
  }
}

class AccuracyMetric implements Metric {
  readonly name = 'accuracy';
  #right = 0;
  #total = 0;
  update(b: EvalBatch): void {
    b.labels.forEach((row, i) => {
      row.forEach((label, j) => {
        if (label === IGNORE) return;
        this.#total++;
        if (b.predictions[i]![j] === label) this.#right++;
      });
    });
  }
  compute(): Record<string, number> {
    return { accuracy: this.#total ? this.#right / this.#total : Number.NaN };
  }
}

/** Precision, recall and F1 per class and macro-averaged over the classes seen in labels or predictions. */
class F1Metric implements Metric {
  readonly name = 'f1';
  #tp = new Map<number, number>();
  #fp = new Map<number, number>();
  #fn = new Map<number, number>();
  update(b: EvalBatch): void {
    const bump = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);
    b.labels.forEach((row, i) => {
      row.forEach((label, j) => {
        if (label === IGNORE) return;
        const predicted = b.predictions[i]![j]!;
        if (predicted === label) bump(this.#tp, label);
        else {
          bump(this.#fp, predicted);
          bump(this.#fn, label);
        }
      });
    });
  }
  compute(): Record<string, number> {
    const classes = [...new Set([...this.#tp.keys(), ...this.#fp.keys(), ...this.#fn.keys()])].sort((a, b) => a - b);
    const out: Record<string, number> = {};
    let p = 0;
    let r = 0;
    let f = 0;
    for (const c of classes) {
      const tp = this.#tp.get(c) ?? 0;
      const precision = tp + (this.#fp.get(c) ?? 0) ? tp / (tp + (this.#fp.get(c) ?? 0)) : 0;
      const recall = tp + (this.#fn.get(c) ?? 0) ? tp / (tp + (this.#fn.get(c) ?? 0)) : 0;
      const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
      out[`precision_${c}`] = precision;
      out[`recall_${c}`] = recall;
      out[`f1_${c}`] = f1;
      p += precision;
      r += recall;
      f += f1;
    }
    const n = classes.length || Number.NaN;
    return { macro_precision: p / n, macro_recall: r / n, macro_f1: f / n, ...out };
  }
}

/** A row counts when every scored position is right (teacher-forced for seq2seq). */
class ExactMatchMetric implements Metric {
  readonly name = 'exact-match';
  #right = 0;
  #rows = 0;
  update(b: EvalBatch): void {
    b.labels.forEach((row, i) => {
      const scored = row.map((l, j) => [l, b.predictions[i]![j]] as const).filter(([l]) => l !== IGNORE);
      if (!scored.length) return;
      this.#rows++;
      if (scored.every(([l, p]) => l === p)) this.#right++;
    });
  }
  compute(): Record<string, number> {
    return { exact_match: this.#rows ? this.#right / this.#rows : Number.NaN };
  }
}

const METRICS: Record<string, { make: () => Metric; description: string }> = {
  loss: { make: () => new LossMetric(), description: 'mean evaluation loss' },
  perplexity: { make: () => new PerplexityMetric(), description: 'exp(mean evaluation loss)' },
  accuracy: {
    make: () => new AccuracyMetric(),
    description: 'share of scored positions (or examples) predicted right',
  },
  f1: { make: () => new F1Metric(), description: 'precision, recall and F1 per class and macro-averaged' },
  'exact-match': { make: () => new ExactMatchMetric(), description: 'share of rows whose every scored token is right' },
};

for (const [name, m] of Object.entries(METRICS)) {
  registry.metric.register(name, () => m.make(), { description: m.description, package: '@tessera/trainers' });
}

export function createMetrics(names: readonly string[]): Metric[] {
  const unique = [...new Set(['loss', ...names])];
  return unique.map((n) => {
    const metric = registry.metric.create(n) as Metric;
    if (typeof metric?.update !== 'function' || typeof metric.compute !== 'function') {
      throw new TesseraError(`Metric "${n}" does not implement update(batch) and compute().`);
    }
    return metric;
  });
}
