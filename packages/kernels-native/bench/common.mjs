// What the native and webgpu bench scripts share: their command-line flags and the median
// they report.

/** `--name` flags and `--name value` numeric options of `argv`. */
export function parseArgs(argv = process.argv.slice(2)) {
  return {
    flag: (name) => argv.includes(`--${name}`),
    option: (name, fallback) => {
      const i = argv.indexOf(`--${name}`);
      return i >= 0 ? Number(argv[i + 1]) : fallback;
    },
  };
}

/** The median: other jobs on a shared machine show up as outliers, not as a shifted mean. */
export function median(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
