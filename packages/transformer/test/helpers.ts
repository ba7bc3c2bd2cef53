import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '@tessera/tensor-core';
import type { ModelInputs } from '@tessera/transformer';

export const FIXTURES = join(import.meta.dirname, 'fixtures');

/** inputs.json (HF names) as int32 tensors under our names. */
export function fixtureInputs(name: string): ModelInputs {
  const raw = JSON.parse(readFileSync(join(FIXTURES, name, 'inputs.json'), 'utf8')) as Record<
    string,
    number[] | number[][]
  >;
  const t = (key: string) => (raw[key] ? tf.tensor(raw[key] as number[], undefined, 'int32') : undefined);
  return {
    inputIds: t('input_ids')!,
    attentionMask: t('attention_mask'),
    tokenTypeIds: t('token_type_ids'),
    labels: t('labels'),
    nextSentenceLabel: t('next_sentence_label'),
    decoderInputIds: t('decoder_input_ids'),
  };
}

export function disposeInputs(inputs: ModelInputs): void {
  tf.dispose(Object.values(inputs).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
}
