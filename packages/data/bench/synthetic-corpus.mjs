// A synthetic web-like corpus with known contents, for `tessera data prepare`'s tests and
// bench: prose documents (random sentences of the bundled Moby-Dick chapters, so every
// document is distinct), plus planted exact duplicates, near duplicates with a measured
// word-replacement rate, junk pages that the quality filters must catch, and bad records
// (invalid JSON, a missing field). Deterministic for a seed.
import { readFileSync } from 'node:fs';

const here = new URL('../corpus/moby-dick-ch1-12.txt', import.meta.url);
const SENTENCES = readFileSync(here, 'utf8')
  .replace(/\s+/g, ' ')
  .split(/(?<=[.!?])\s+(?=[A-Z"])/)
  .map((s) => s.trim())
  .filter((s) => s.split(' ').length >= 6 && s.length < 400 && /[.!?]["']?$/.test(s));
const WORDS = [
  ...new Set(
    SENTENCES.join(' ')
      .toLowerCase()
      .match(/[a-z]+/g),
  ),
];

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Paragraphs of distinct random sentences: reads as prose, passes Gopher, C4 and FineWeb. */
export function proseDocument(rand, minSentences = 8, maxSentences = 24) {
  const n = minSentences + Math.floor(rand() * (maxSentences - minSentences + 1));
  const picked = new Set();
  while (picked.size < n) picked.add(Math.floor(rand() * SENTENCES.length));
  const sentences = [...picked].map((i) => SENTENCES[i]);
  const paragraphs = [];
  for (let i = 0; i < sentences.length; ) {
    const k = 3 + Math.floor(rand() * 4);
    paragraphs.push(sentences.slice(i, i + k).join(' '));
    i += k;
  }
  return paragraphs.join('\n\n');
}

/** Replaces each word with probability `rate` by a random word of the book: a near duplicate. */
export function perturb(text, rate, rand) {
  return text.replace(/[A-Za-z]+/g, (w) => (rand() < rate ? WORDS[Math.floor(rand() * WORDS.length)] : w));
}

const JUNK = {
  menu: (rand) =>
    ['Home', 'About us', 'Products', 'Contact', 'Login', 'Cart', 'Blog', 'Careers', 'Press', 'Help']
      .sort(() => rand() - 0.5)
      .join('\n'),
  code: () =>
    'We wrote this small helper for the build and it has served us well for years now, so here it is for anyone who needs it. function add(a, b) { return a + b; } It is used by every page of the site and it is tested on each release.'.repeat(
      2,
    ),
  lorem: (rand) =>
    `${proseDocument(rand, 6, 8)}\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.`,
  spam: (rand) => Array.from({ length: 30 }, () => 'Buy cheap watches online today at the best price.').join('\n'),
  short: () => 'Thanks for reading.',
};

/**
 * Yields { line, kind, source?, rate? } for `documents` records: kind "prose", "exact"
 * (a copy of an earlier record `source`), "near" (an earlier record with words replaced at
 * `rate`), "format" (an earlier record with case and spacing changed), "junk-<type>", or
 * "bad-json" / "bad-field".
 */
export function* syntheticCorpus({
  documents,
  seed = 1,
  exact = 0.04,
  near = 0.06,
  junk = 0.05,
  bad = 0.002,
  rates,
  pool = 50_000,
}) {
  const rand = mulberry32(seed);
  const nearRates = rates ?? [0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2];
  const prose = [];
  for (let i = 0; i < documents; i++) {
    const r = rand();
    if (prose.length > 10 && r < exact) {
      const source = prose[Math.floor(rand() * prose.length)];
      yield { line: JSON.stringify({ text: source.text }), kind: 'exact', source: source.index };
    } else if (prose.length > 10 && r < exact + near) {
      const source = prose[Math.floor(rand() * prose.length)];
      if (rand() < 0.1) {
        const text = source.text.toUpperCase().replace(/ /g, '  ');
        yield { line: JSON.stringify({ text }), kind: 'format', source: source.index };
      } else {
        const rate = nearRates[Math.floor(rand() * nearRates.length)];
        yield {
          line: JSON.stringify({ text: perturb(source.text, rate, rand) }),
          kind: 'near',
          source: source.index,
          rate,
        };
      }
    } else if (r < exact + near + junk) {
      const kinds = Object.keys(JUNK);
      const kind = kinds[Math.floor(rand() * kinds.length)];
      yield { line: JSON.stringify({ text: JUNK[kind](rand), id: i }), kind: `junk-${kind}` };
    } else if (r < exact + near + junk + bad) {
      yield rand() < 0.5
        ? { line: `{"text": "unterminated ${i}`, kind: 'bad-json' }
        : { line: JSON.stringify({ body: 'no text field', id: i }), kind: 'bad-field' };
    } else {
      const text = proseDocument(rand);
      // Copies draw from a bounded pool of earlier originals, so a corpus of any size fits in memory.
      if (prose.length < pool) prose.push({ text, index: i });
      else prose[Math.floor(rand() * pool)] = { text, index: i };
      yield { line: JSON.stringify({ text, id: i }), kind: 'prose' };
    }
  }
}
