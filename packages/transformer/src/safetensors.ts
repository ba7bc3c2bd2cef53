import { closeSync, fstatSync, openSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { TesseraError, tf } from '@tessera/tensor-core';

/** A safetensors file that is malformed, truncated or unsafe to read. */
export class SafetensorsError extends TesseraError {}

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Headers beyond this are refused: real checkpoints stay far below, and it bounds the JSON parse. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range within the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  path: string;
  metadata: Record<string, string>;
  entries: Map<string, TensorEntry>;
  /** The data section (everything after the header). */
  data: Buffer;
}

/**
 * Reads and validates a safetensors file: the header length is bounded and must fit the
 * file, every entry needs a known dtype, a non-negative integer shape and offsets inside
 * the data section whose length equals shape × dtype size, and entries may not overlap.
 * Any violation is a SafetensorsError naming the file and the problem.
 */
export function readSafetensors(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new SafetensorsError(`Cannot open ${path}: ${(err as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const fail = (problem: string): never => {
      throw new SafetensorsError(`${path} is not a valid safetensors file: ${problem}.`);
    };
    if (size < 8) fail(`it is ${size} bytes long, shorter than the 8-byte header length`);
    const prefix = Buffer.alloc(8);
    readSync(fd, prefix, 0, 8, 0);
    const headerLength = prefix.readBigUInt64LE(0);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      fail(`the header claims ${headerLength} bytes, more than the ${MAX_HEADER_BYTES}-byte limit`);
    }
    const n = Number(headerLength);
    if (8 + n > size) fail(`the header claims ${n} bytes but only ${size - 8} follow (truncated?)`);
    const headerBytes = Buffer.alloc(n);
    readSync(fd, headerBytes, 0, n, 8);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
    } catch (err) {
      fail(`the header is not valid UTF-8 JSON (${(err as Error).message})`);
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
    const dataLength = size - 8 - n;
    const entries = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (raw === null || typeof raw !== 'object' || Object.values(raw).some((v) => typeof v !== 'string')) {
          fail('__metadata__ must map strings to strings');
        }
        metadata = raw as Record<string, string>;
        continue;
      }
      entries.set(name, validateEntry(name, raw, dataLength, fail));
    }
    const sorted = [...entries.values()].sort((a, b) => a.begin - b.begin);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.begin < sorted[i - 1]!.end)
        fail(`tensors "${sorted[i - 1]!.name}" and "${sorted[i]!.name}" overlap`);
    }
    const data = Buffer.alloc(dataLength);
    if (dataLength > 0) readSync(fd, data, 0, dataLength, 8 + n);
    return { path, metadata, entries, data };
  } finally {
    closeSync(fd);
  }
}

function validateEntry(name: string, raw: unknown, dataLength: number, fail: (p: string) => never): TensorEntry {
  if (raw === null || typeof raw !== 'object') fail(`entry "${name}" is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    fail(`entry "${name}" has dtype ${JSON.stringify(dtype)}; known: ${Object.keys(DTYPE_BYTES).join(', ')}`);
  }
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    fail(`entry "${name}" has shape ${JSON.stringify(shape)}; expected a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0)) {
    fail(`entry "${name}" has data_offsets ${JSON.stringify(offsets)}; expected [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLength) {
    fail(`entry "${name}" spans bytes [${begin}, ${end}) but the data section has ${dataLength} bytes (truncated?)`);
  }
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = count * DTYPE_BYTES[dtype as SafetensorsDtype];
  if (end - begin !== expected) {
    fail(`entry "${name}" has ${end - begin} bytes but ${dtype} [${(shape as number[]).join(', ')}] needs ${expected}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end };
}

/** The entry as a tensor: floats become float32, integers int32 (refusing values outside int32). */
export function entryToTensor(file: SafetensorsFile, entry: TensorEntry): tf.Tensor {
  const bytes = file.data.subarray(entry.begin, entry.end);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = entry.shape.reduce((a, b) => a * b, 1);
  switch (entry.dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      return tf.tensor(out, entry.shape, 'float32');
    }
    case 'F64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      return tf.tensor(out, entry.shape, 'float32');
    }
    case 'F16':
    case 'BF16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        const bits = view.getUint16(i * 2, true);
        out[i] = entry.dtype === 'F16' ? halfToFloat(bits) : bfloat16ToFloat(bits);
      }
      return tf.tensor(out, entry.shape, 'float32');
    }
    case 'I64': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) {
          throw new SafetensorsError(
            `${file.path}: "${entry.name}" holds ${v}, outside int32; Tessera keeps integers as int32.`,
          );
        }
        out[i] = Number(v);
      }
      return tf.tensor(out, entry.shape, 'int32');
    }
    default: {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        out[i] =
          entry.dtype === 'I32'
            ? view.getInt32(i * 4, true)
            : entry.dtype === 'I16'
              ? view.getInt16(i * 2, true)
              : entry.dtype === 'I8'
                ? view.getInt8(i)
                : view.getUint8(i);
      }
      return tf.tensor(out, entry.shape, 'int32');
    }
  }
}

/** Every tensor of a file by name (the caller owns and disposes them). */
export function loadSafetensors(path: string): {
  tensors: Record<string, tf.Tensor>;
  metadata: Record<string, string>;
} {
  const file = readSafetensors(path);
  const tensors: Record<string, tf.Tensor> = {};
  for (const [name, entry] of file.entries) tensors[name] = entryToTensor(file, entry);
  return { tensors, metadata: file.metadata };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function bfloat16ToFloat(b: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, b << 16);
  return view.getFloat32(0);
}

/**
 * Writes tensors as safetensors the way HF does: entries sorted by name, contiguous,
 * header padded with spaces to a multiple of 8. float32 -> F32, int32 -> I32, or the
 * narrower integer dtype `options.dtypes` names for an int32 tensor (I8 for int8 weights:
 * tfjs has no int8 dtype); a value outside that dtype's range is an error, not a wrap.
 * Atomic: written to a temporary file then renamed, so a crash never leaves half a file.
 */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, tf.Tensor>,
  metadata: Record<string, string> = { format: 'pt' },
  options: { dtypes?: Record<string, 'I8' | 'I16'> } = {},
): Promise<void> {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    if (t.dtype !== 'float32' && t.dtype !== 'int32') {
      throw new SafetensorsError(`Cannot save "${name}": dtype ${t.dtype}; only float32 and int32 are written.`);
    }
    const narrow = options.dtypes?.[name];
    if (narrow && t.dtype !== 'int32')
      throw new SafetensorsError(`Cannot save "${name}" as ${narrow}: it is ${t.dtype}; only int32 tensors narrow.`);
    const data = await t.data();
    const values = narrow ? narrowIntegers(name, data as Int32Array, narrow) : data;
    // Typed arrays are little-endian on every platform Node runs on.
    const bytes = Buffer.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    chunks.push(bytes);
    header[name] = {
      dtype: narrow ?? (t.dtype === 'float32' ? 'F32' : 'I32'),
      shape: t.shape,
      data_offsets: [offset, offset + bytes.length],
    };
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  const pad = (8 - ((8 + Buffer.byteLength(json)) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, Buffer.concat([prefix, headerBytes, ...chunks]));
  renameSync(temporary, path);
}

function narrowIntegers(name: string, values: Int32Array, dtype: 'I8' | 'I16'): Int8Array | Int16Array {
  const out = dtype === 'I8' ? new Int8Array(values.length) : new Int16Array(values.length);
  const limit = dtype === 'I8' ? 128 : 32768;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < -limit || v >= limit)
      throw new SafetensorsError(
        `Cannot save "${name}" as ${dtype}: element ${i} is ${v}, outside [${-limit}, ${limit - 1}].`,
      );
    out[i] = v;
  }
  return out;
}
