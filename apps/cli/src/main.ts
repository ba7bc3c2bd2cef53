import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import '@tessera/trainers';
import '@tessera/adapt';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformanceCli } from '@tessera/conformance';
import {
  type BackendMeta,
  ConfigError,
  KNOWN_BACKEND_PACKAGES,
  opKernelCoverage,
  PLUGIN_KINDS,
  type PluginKind,
  registry,
  TesseraError,
  tf,
} from '@tessera/tensor-core';
import { Command, CommanderError, Option } from 'commander';
import { type LaunchOptions, launchCommand } from './distributed.js';
import { embedCommand, evalCommand, generateCommand, searchCommand, trainCommand } from './commands.js';
import { type PrepareCommandOptions, prepareCommand } from './prepare.js';
import { type QuantizeCommandOptions, quantizeCommand } from './quantize.js';
import { DEFAULT_SMOKE_CONFIG, runSmoke } from './smoke.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The main job's config: the repository's configs/gpt-pretrain.yaml (found from the working directory or this package). */
export function defaultConfig(): string {
  for (const candidate of [resolve('configs/gpt-pretrain.yaml'), resolve(here, '../../../configs/gpt-pretrain.yaml')]) {
    if (existsSync(candidate)) return candidate;
  }
  return DEFAULT_SMOKE_CONFIG;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Thrown for bad usage: exit code 2. */
class UsageError extends TesseraError {}

function program(setExit: (code: number) => void): Command {
  const cli = new Command('tessera')
    .description('Train and fine-tune transformer language models (GPT, BERT, T5) on interchangeable backends.')
    .option('--verbose', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => console.log(text.trimEnd()),
      writeErr: (text) => console.error(text.trimEnd()),
      outputError: (text) => console.error(text.trimEnd()),
    });

  cli
    .command('start')
    .description('the main job on the embedded default: GPT pretraining on the bundled corpus, then a sample')
    .option('--set <path=value>', 'override a config value (repeatable)', collect, [])
    .action(async (o: { set: string[] }) => {
      const config = defaultConfig();
      if (config === DEFAULT_SMOKE_CONFIG) {
        const r = await runSmoke(config, o.set);
        setExit(r.lastLoss < r.firstLoss ? 0 : 1);
      } else {
        await trainCommand(config, { set: o.set });
      }
    });

  cli
    .command('train')
    .description('run a training config (pretrain or fine-tune) with checkpoints, evaluation and resume')
    .argument('<config>', 'a YAML or JSON run config (see configs/)')
    .option(
      '--set <path=value>',
      'override a config value, e.g. --set training.max_steps=100 (repeatable)',
      collect,
      [],
    )
    .option('--resume <dir>', 'continue from a checkpoint, or from a run directory (its latest checkpoint)')
    .option('--data <file>', 'with --resume: continue on new training data (online / incremental training)')
    .action(async (config: string, o: { set: string[]; resume?: string; data?: string }) => {
      if (o.data && !o.resume)
        throw new UsageError('--data continues a finished run on new data; give --resume DIR too.');
      await trainCommand(config, o);
    });

  cli
    .command('launch')
    .description('run a tessera command on N processes through mpirun (data-parallel training)')
    .requiredOption('-n, --ranks <n>', 'processes to start', Number)
    .option('--hostfile <file>', 'hosts to run on (OpenMPI hostfile); default: this machine')
    .option('--threads-per-rank <n>', 'native kernel threads per rank (default: cores / ranks)', Number)
    .option('--iface <name>', 'network interface for MPI traffic across hosts')
    .option('--dry-run', 'print the mpirun command instead of running it')
    .argument('<command...>', 'the tessera command, after --: e.g. -- train configs/gpt-pretrain.yaml')
    .action(async (command: string[], o: LaunchOptions) => {
      setExit(await launchCommand(command, o));
    });

  cli
    .command('eval')
    .description("evaluate a checkpoint on the config's validation split with its metrics")
    .argument('<config>', 'the run config the checkpoint was trained with')
    .requiredOption('--checkpoint <dir>', 'checkpoint, run directory or HF model directory')
    .option('--tokenizer <file>', 'a tokenizer.json, when the model directory has none')
    .option('--set <path=value>', 'override a config value (repeatable)', collect, [])
    .action(async (config: string, o: { checkpoint: string; set: string[] }) => {
      await evalCommand(config, o);
    });

  cli
    .command('generate')
    .description('generate text from a GPT checkpoint (continuation) or a T5 checkpoint (seq2seq)')
    .requiredOption('--checkpoint <dir>', 'checkpoint, run directory or HF model directory')
    .option(
      '--adapter <dir>',
      'a LoRA adapter on top of --checkpoint: a peft directory (adapter_config.json), or a run trained with adapter: (its checkpoint or run directory)',
    )
    .option('--tokenizer <file>', 'a tokenizer.json, when the model directory has none')
    .requiredOption('--prompt <text>', 'the prompt (GPT) or input text (T5)')
    .option('--max-new-tokens <n>', 'tokens to generate', Number, 40)
    .option('--temperature <t>', '0 = greedy', Number, 0.8)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = all)', Number, 40)
    .option('--top-p <p>', 'nucleus sampling mass', Number, 1)
    .option('--seed <n>', 'sampling seed', Number, 0)
    .option('--num-beams <n>', 'beam search width (T5)', Number, 1)
    .option('--backend <name>', 'compute backend', 'auto')
    .action(async (o) => {
      await generateCommand(o);
    });

  cli
    .command('quantize')
    .description('dynamic int8: write an int8 checkpoint (I8 Linear weights + scales) of an fp32 checkpoint')
    .requiredOption('--checkpoint <dir>', 'checkpoint, run directory or HF model directory (fp32)')
    .requiredOption('--out <dir>', 'the int8 checkpoint directory to write')
    .option('--target-modules <names>', 'comma-separated Linear names to quantize (default: every Linear but lm_head)')
    .option('--include-lm-head', 'quantize an untied lm_head too')
    .option('--backend <name>', 'compute backend', 'cpu')
    .action(async (o: QuantizeCommandOptions) => {
      await quantizeCommand(o);
    });

  cli
    .command('embed')
    .description('sentence embeddings (mean pooling) of each line of a file, with a BERT-family checkpoint')
    .requiredOption('--checkpoint <dir>', 'checkpoint, run directory or HF model directory')
    .option('--tokenizer <file>', 'a tokenizer.json, when the model directory has none')
    .requiredOption('--input <file>', 'one text per line')
    .requiredOption('--output <file>', 'JSONL: {"text", "embedding"} per line')
    .option('--backend <name>', 'compute backend', 'auto')
    .action(async (o) => {
      await embedCommand(o);
    });

  cli
    .command('search')
    .description('retrieve the documents nearest to a query (cosine similarity of embeddings)')
    .requiredOption('--checkpoint <dir>', 'BERT-family checkpoint, run directory or HF model directory')
    .option('--tokenizer <file>', 'a tokenizer.json, when the model directory has none')
    .requiredOption('--documents <file>', 'one document per line')
    .requiredOption('--query <text>', 'the query')
    .option('--top-k <k>', 'results to show', Number, 5)
    .option('--backend <name>', 'compute backend', 'auto')
    .action(async (o) => {
      await searchCommand(o);
    });

  const data = cli.command('data').description('data preparation');
  data
    .command('prepare')
    .description(
      'a prepare pipeline config: read, filter, dedup and tokenize a corpus in parallel (resumable); ' +
        "a run config: tokenize that run's data and report what it holds and skips",
    )
    .argument('<config>', 'a prepare pipeline config (input/steps/dedup/output) or a run config')
    .option('--set <path=value>', 'override a config value (repeatable)', collect, [])
    .option('--workers <n>', 'worker threads (prepare pipelines; default: the config, else the cores)')
    .action(async (config: string, o: PrepareCommandOptions) => {
      await prepareCommand(config, o);
    });

  cli
    .command('conformance')
    .description('run the cross-backend conformance suite against a backend and print the report')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]', 'conformance options (tessera conformance --help)')
    .action(async (args: string[]) => {
      const at = args.findIndex((a) => a === '--backend' || a.startsWith('--backend='));
      const name = at < 0 ? undefined : args[at]!.includes('=') ? args[at]!.split('=')[1] : args[at + 1];
      if (name) await importBackendPackage(name);
      setExit(await conformanceCli(args));
    });

  cli
    .command('bench')
    .description('benchmark a backend against its baselines (cpu, PyTorch, upstream kernels): ratios in one run')
    .addOption(
      new Option('--backend <name>', 'backend to benchmark').choices(['native', 'webgpu', 'cuda']).default('native'),
    )
    .option('--threads <n>', 'threads (native)', '2')
    .option('--steps <n>', 'timed steps', '10')
    .option('--large', 'also the larger configurations')
    .option('--json', 'print the results as JSON')
    .action((o: { backend: string; threads: string; steps: string; large?: boolean; json?: boolean }) => {
      // Each backend package owns its benchmark script; the CLI only dispatches.
      const script = resolve(here, `../../../packages/kernels-${o.backend}/bench/bench.mjs`);
      if (!existsSync(script))
        throw new UsageError(`tessera bench runs from a source checkout (packages/kernels-${o.backend}/bench).`);
      const args = [script, '--threads', o.threads, '--steps', o.steps];
      if (o.large) args.push('--large');
      if (o.json) args.push('--json');
      setExit(spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1);
    });

  cli
    .command('list')
    .description(`registered plugins by kind (${PLUGIN_KINDS.join(', ')})`)
    .argument('[kind]', 'one kind only')
    .action((kind?: string) => {
      if (kind && !PLUGIN_KINDS.includes(kind as PluginKind)) {
        throw new UsageError(`Unknown plugin kind "${kind}". Kinds: ${PLUGIN_KINDS.join(', ')}.`);
      }
      for (const k of kind ? [kind as PluginKind] : PLUGIN_KINDS) {
        const entries = registry[k].entries();
        console.log(`${k} (${entries.length})`);
        for (const e of entries) console.log(`  ${e.name.padEnd(32)} ${e.meta.description ?? ''}`);
      }
    });

  cli
    .command('ops')
    .description('fused ops and whether a backend has its own kernel or runs the reference composition')
    .option('--backend <name>', 'backend', 'cpu')
    .action(async (o: { backend: string }) => {
      await importBackendPackage(o.backend);
      const a = await (registry.backend.get(o.backend).meta as unknown as BackendMeta).isAvailable();
      console.log(`backend ${o.backend}: ${a.available ? 'available' : 'not available here'} (${a.reason})`);
      for (const { op, kernel } of opKernelCoverage(o.backend)) {
        console.log(`  ${op.padEnd(32)} ${kernel ? 'kernel' : 'reference composition'}`);
      }
      // Backends that run some tfjs kernels as the cpu kernel on host copies mark them (kernels-cuda-napi).
      const kernels = tf.getKernelsForBackend(o.backend).filter((k) => !registry.op.has(k.kernelName));
      const staged = kernels.filter((k) => (k.kernelFunc as unknown as Record<string, unknown>).tesseraHostFallback);
      if (staged.length) {
        console.log(
          `  tfjs kernels: ${kernels.length - staged.length} on the backend, ${staged.length} through host staging ` +
            '(the cpu kernel on host copies; counted at run time)',
        );
      }
    });

  cli
    .command('smoke')
    .description('train a tiny character-level GPT for a few steps and print the loss falling')
    .option('--config <file>', 'smoke config', DEFAULT_SMOKE_CONFIG)
    .option('--set <path=value>', 'override a config value (repeatable)', collect, [])
    .action(async (o: { config: string; set: string[] }) => {
      const r = await runSmoke(o.config, o.set);
      if (!(r.lastLoss < r.firstLoss)) {
        console.error('smoke: the loss did not fall; something is wrong with this backend or config.');
        setExit(1);
      }
    });
  return cli;
}

/**
 * Imports the first-party package of a backend named on the command line (kernels-cuda-napi
 * for "cuda"), when it is installed and not loaded yet, as useBackend does for a config.
 */
async function importBackendPackage(name: string): Promise<void> {
  if (registry.backend.has(name)) return;
  for (const pkg of KNOWN_BACKEND_PACKAGES.filter((p) => p.includes(`-${name}`))) {
    try {
      await import(pkg);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    }
  }
}

/** Runs the CLI; returns the exit code: 0 ok, 1 run failure, 2 bad usage or config. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const cli = program((c) => {
    code = c;
  });
  const verbose = argv.includes('--verbose');
  try {
    if (!argv.length) {
      cli.outputHelp();
      return 2;
    }
    await cli.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; unknown commands/options and missing arguments are usage errors.
      return err.exitCode === 0 ? 0 : 2;
    }
    const usage = err instanceof ConfigError || err instanceof UsageError;
    const known = err instanceof TesseraError;
    const message = err instanceof Error ? err.message : String(err);
    console.error(`tessera: ${message}`);
    if (verbose && err instanceof Error && err.stack) console.error(err.stack);
    else if (!known) console.error('(an unexpected error; run again with --verbose for the stack trace)');
    return usage ? 2 : 1;
  }
}
