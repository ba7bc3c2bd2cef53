#!/usr/bin/env node
// Runs the whole conformance suite from the command line until `tessera conformance` is
// wired into the CLI: same arguments (see CONFORMANCE_USAGE). With no arguments it checks
// "cpu" on every level and writes .tmp/conformance/cpu.md at the repository root.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformanceCli } from '@tessera/conformance';
import '@tessera/kernels-cpu';

let args = process.argv.slice(2);
if (!args.length) {
  const report = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '.tmp', 'conformance', 'cpu.md');
  mkdirSync(dirname(report), { recursive: true });
  args = ['--backend', 'cpu', '--failures-only', '--report', report];
}
process.exitCode = await conformanceCli(args);
