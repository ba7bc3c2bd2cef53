import type { AdapterContext, ModelAdapter } from '@tessera/trainers';
import type { PretrainedModel } from '@tessera/transformer';
import { saveQuantized, isQuantizedCheckpoint, loadQuantizedInto } from './checkpoint.js';
import type { Int8Options } from './config.js';
import { formatQuantizationReport, quantizeDynamic, quantizedOf } from './model.js';

/**
 * Dynamic int8 as a run config's adapter (`adapter: { name: int8-dynamic }`): at build time
 * it quantizes the model's own weights, or loads an int8 checkpoint (`checkpoint: DIR`);
 * evaluation and generation then run the int8 layers. Inference only: TesseraInt8Linear has
 * no gradient (the int8 layers' float32 shadows are frozen).
 */
export class Int8DynamicAdapter implements ModelAdapter {
  readonly name = 'int8-dynamic';

  constructor(
    readonly options: Int8Options,
    readonly context: AdapterContext,
    private readonly log: (line: string) => void = (line) => console.error(line),
  ) {}

  apply(model: PretrainedModel): void {
    const quantized = this.options.checkpoint
      ? loadQuantizedInto(model, this.options.checkpoint)
      : quantizeDynamic(model, this.options);
    this.log(
      `int8-dynamic (${this.options.checkpoint ?? this.context.baseModel}):\n${formatQuantizationReport(quantized.report)}`,
    );
  }

  async save(model: PretrainedModel, dir: string): Promise<void> {
    await saveQuantized(model, dir);
  }

  load(model: PretrainedModel, dir: string): void {
    quantizedOf(model)?.unload();
    loadQuantizedInto(model, dir);
  }

  isSavedIn(dir: string): boolean {
    return isQuantizedCheckpoint(dir);
  }
}
