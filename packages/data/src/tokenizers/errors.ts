import { TesseraError } from '@tessera/tensor-core';

/** A tokenizer file or option that cannot be used as given; the message says what to change. */
export class TokenizerError extends TesseraError {}

export function need<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new TokenizerError(`tokenizer.json: missing ${what}.`);
  return value;
}

export function unknownType(kind: string, type: unknown, known: readonly string[]): never {
  throw new TokenizerError(
    `tokenizer.json: unsupported ${kind} type ${JSON.stringify(type)}. Supported: ${known.join(', ')}. ` +
      'Replace it in the file, or open an issue with the file attached.',
  );
}
