import '@tessera/kernels-cpu';
import {
  ConfigError,
  TesseraError,
  opKernelCoverage,
  registry,
  PLUGIN_KINDS,
  type PluginKind,
} from '@tessera/tensor-core';
import { DEFAULT_SMOKE_CONFIG, runSmoke } from './smoke.js';

const HELP = `tessera — train and fine-tune transformer language models on interchangeable backends

Usage:
  tessera start                         the main job on the embedded default (for now: the smoke job)
  tessera smoke [--config FILE] [--set path=value ...]
                                        train a tiny GPT for a few steps and print the loss falling
  tessera list [KIND]                   registered plugins (kinds: ${PLUGIN_KINDS.join(', ')})
  tessera ops [--backend NAME]          fused ops and whether the backend has its own kernel
  tessera --help

Options:
  --config FILE     a YAML or JSON run config (may use extends:)
  --set path=value  override one config value, e.g. --set training.steps=200 (repeatable)
`;

interface Parsed {
  command: string | undefined;
  positional: string[];
  options: Map<string, string[]>;
}

function parseArgs(argv: string[]): Parsed {
  const options = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      options.set('help', ['true']);
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const [key, value] = eq > 0 ? [arg.slice(2, eq), arg.slice(eq + 1)] : [arg.slice(2), argv[++i]];
      if (value === undefined) throw new TesseraError(`Option --${key} needs a value. See tessera --help.`);
      options.set(key, [...(options.get(key) ?? []), value]);
    } else positional.push(arg);
  }
  return { command: positional.shift(), positional, options };
}

function only(parsed: Parsed, allowed: string[]): void {
  for (const key of parsed.options.keys()) {
    if (!allowed.includes(key)) {
      throw new TesseraError(
        `Unknown option --${key} for "${parsed.command}". Allowed: ${allowed.map((a) => `--${a}`).join(', ') || 'none'}.`,
      );
    }
  }
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const parsed = parseArgs(argv);
    if (parsed.options.has('help') || !parsed.command) {
      console.log(HELP);
      return parsed.command || parsed.options.has('help') ? 0 : 1;
    }
    switch (parsed.command) {
      case 'start':
      case 'smoke': {
        only(parsed, ['config', 'set']);
        const config = parsed.options.get('config')?.at(-1) ?? DEFAULT_SMOKE_CONFIG;
        const result = await runSmoke(config, parsed.options.get('set') ?? []);
        if (!(result.lastLoss < result.firstLoss)) {
          console.error('smoke: the loss did not fall; something is wrong with this backend or config.');
          return 1;
        }
        return 0;
      }
      case 'list': {
        only(parsed, []);
        const kinds = (parsed.positional.length ? parsed.positional : PLUGIN_KINDS) as PluginKind[];
        for (const kind of kinds) {
          if (!PLUGIN_KINDS.includes(kind))
            throw new TesseraError(`Unknown plugin kind "${kind}". Kinds: ${PLUGIN_KINDS.join(', ')}.`);
          const entries = registry[kind].entries();
          console.log(`${kind} (${entries.length})`);
          for (const e of entries) console.log(`  ${e.name.padEnd(32)} ${e.meta.description ?? ''}`);
        }
        return 0;
      }
      case 'ops': {
        only(parsed, ['backend']);
        const backend = parsed.options.get('backend')?.at(-1) ?? 'cpu';
        registry.backend.get(backend);
        for (const { op, kernel } of opKernelCoverage(backend)) {
          console.log(`  ${op.padEnd(32)} ${kernel ? 'kernel' : 'reference composition'}`);
        }
        return 0;
      }
      default:
        throw new TesseraError(
          `Unknown command "${parsed.command}". Commands: start, smoke, list, ops. See tessera --help.`,
        );
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof TesseraError) {
      console.error(`tessera: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
