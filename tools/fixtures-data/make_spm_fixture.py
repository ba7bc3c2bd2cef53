#!/usr/bin/python3
"""Builds the SentencePiece reference fixture for @tessera/data's Unigram tests.

Needs Debian's python3-sentencepiece (0.1.97) and python3-protobuf; run with the system
python: /usr/bin/python3 tools/fixtures-data/make_spm_fixture.py

Trains a 1,000-piece unigram model on the bundled corpus with SentencePiece's defaults
(nmt_nfkc normalisation, dummy prefix, extra whitespace removed), writes it as an HF-style
tokenizer.json (Precompiled charsmap + WhitespaceSplit + Metaspace + Unigram) and the ids
SentencePiece itself gives for 2,000 varied lines.
"""
import base64
import json
import os
import random
import re
import tempfile

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, 'packages', 'data')
CORPUS = os.path.join(DATA, 'corpus', 'moby-dick-ch1-12.txt')
OUT = os.path.join(DATA, 'test', 'fixtures', 'spm-unigram')

EXTRAS = ['🤖', '🎉', '日本語', '中文字符', 'ひらがな', '한국어', 'Ελληνικά', 'русский', 'e\u0301', 'n\u0303', 'café',
          'naïve', 'Ångström', 'ﬁ', '½', '²', '①', '   ', '\t', '  \n ', "don't", '3.14159', '1,000,000', '$5', '100%',
          '¿Qué?', '«quote»', '—', '…', '\u00a0', '\u3000', 'x\u200by', 'Σ', 'İstanbul', 'ß', 'ＡＢＣ', 'ｶﾀｶﾅ', '㍿']


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, 'm')
        spm.SentencePieceTrainer.train(input=CORPUS, model_prefix=prefix, vocab_size=1000, model_type='unigram',
                                       character_coverage=1.0, num_threads=1, minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=prefix + '.model')
        proto = pb.ModelProto()
        with open(prefix + '.model', 'rb') as f:
            proto.ParseFromString(f.read())

    assert proto.normalizer_spec.add_dummy_prefix and proto.normalizer_spec.remove_extra_whitespaces
    vocab = [[p.piece, p.score] for p in proto.pieces]
    unk_id = next(i for i, p in enumerate(proto.pieces) if p.type == 2)
    added = [{'id': i, 'content': p.piece, 'single_word': False, 'lstrip': False, 'rstrip': False,
              'normalized': False, 'special': True} for i, p in enumerate(proto.pieces) if p.type in (2, 3)]
    tokenizer = {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added,
        'normalizer': {'type': 'Precompiled', 'precompiled_charsmap':
                       base64.b64encode(proto.normalizer_spec.precompiled_charsmap).decode('ascii')},
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'WhitespaceSplit'}, {'type': 'Metaspace', 'replacement': '▁', 'prepend_scheme': 'always', 'split': True}]},
        'post_processor': None,
        'decoder': {'type': 'Metaspace', 'replacement': '▁', 'prepend_scheme': 'always', 'split': True},
        'model': {'type': 'Unigram', 'unk_id': unk_id, 'vocab': vocab, 'byte_fallback': False},
    }
    with open(os.path.join(OUT, 'tokenizer.json'), 'w', encoding='utf8') as f:
        json.dump(tokenizer, f, ensure_ascii=False)

    with open(CORPUS, encoding='utf8') as f:
        sentences = [s.strip() for s in re.split(r'(?<=[.!?])\s+|\n+', f.read()) if s.strip()]
    rng = random.Random(1234)
    lines = []
    for _ in range(2000):
        words = rng.choice(sentences).split(' ')
        for _ in range(rng.randrange(4)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(EXTRAS))
        lines.append((' ' if rng.random() < 0.9 else '  ').join(words))
    cases = [{'text': t, 'ids': sp.encode(t)} for t in lines]
    with open(os.path.join(OUT, 'cases.json'), 'w', encoding='utf8') as f:
        json.dump({'sentencepiece': spm.__version__, 'cases': cases}, f, ensure_ascii=False)
    print(f'wrote {len(vocab)} pieces and {len(cases)} cases to {OUT}')


if __name__ == '__main__':
    main()
