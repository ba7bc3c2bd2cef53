import cliProgress from 'cli-progress';

export interface ProgressUpdate {
  step: number;
  total: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
}

/**
 * A live bar (step, loss, lr, tokens/s, ETA) on a terminal; plain lines every
 * `logEvery` steps when stdout is not a TTY (CI, logs).
 */
export class Progress {
  readonly #bar: cliProgress.SingleBar | undefined;
  readonly #log: (line: string) => void;

  constructor(
    total: number,
    private readonly logEvery: number,
    options: { tty?: boolean; log?: (line: string) => void } = {},
  ) {
    this.#log = options.log ?? ((line) => console.log(line));
    if (options.tty ?? process.stdout.isTTY) {
      this.#bar = new cliProgress.SingleBar(
        {
          format: 'step {value}/{total} |{bar}| loss {loss} | lr {lr} | {tps} tok/s | ETA {eta_formatted}',
          hideCursor: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      this.#bar.start(total, 0, { loss: '-', lr: '-', tps: '-' });
    }
  }

  update(u: ProgressUpdate): void {
    const fields = {
      loss: u.loss.toFixed(4),
      lr: u.lr.toExponential(2),
      tps: Math.round(u.tokensPerSecond).toLocaleString('en-US'),
    };
    if (this.#bar) this.#bar.update(u.step, fields);
    else if (u.step === 1 || u.step % this.logEvery === 0 || u.step === u.total) {
      this.#log(`step ${u.step}/${u.total}  loss ${fields.loss}  lr ${fields.lr}  ${fields.tps} tok/s`);
    }
  }

  /** A line that must not be overwritten by the bar (evaluations, saves). */
  note(line: string): void {
    if (this.#bar) {
      process.stdout.write('\n');
      this.#log(line);
    } else this.#log(line);
  }

  stop(): void {
    this.#bar?.stop();
  }
}
