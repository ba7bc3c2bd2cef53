import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '@tessera/tensor-core';
import type { AdapterContext, ModelAdapter } from '@tessera/trainers';
import type { PretrainedModel } from '@tessera/transformer';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, type LoraOptions } from './config.js';
import { applyLora, type LoraModel, loraOf } from './model.js';
import { loadAdapterWeights, saveAdapter } from './peft.js';

/** LoRA as the trainer drives it (`adapter: { name: lora, ... }`): checkpoints hold peft's two files. */
export class LoraAdapter implements ModelAdapter {
  readonly name = 'lora';

  constructor(
    readonly options: LoraOptions,
    readonly context: AdapterContext,
  ) {}

  #lora(model: PretrainedModel): LoraModel {
    const lora = loraOf(model);
    if (!lora) throw new TesseraError('The LoRA adapter was not applied to this model; call apply(model) first.');
    return lora;
  }

  apply(model: PretrainedModel): void {
    applyLora(model, this.options);
  }

  async save(model: PretrainedModel, dir: string): Promise<void> {
    await saveAdapter(this.#lora(model), dir, this.context.baseModel);
  }

  load(model: PretrainedModel, dir: string): void {
    loadAdapterWeights(this.#lora(model), dir);
  }

  isSavedIn(dir: string): boolean {
    return existsSync(join(dir, ADAPTER_CONFIG)) && existsSync(join(dir, ADAPTER_WEIGHTS));
  }
}
