"""`sample`: writes what a trained text model makes up, one character at a time: words, or lines of verse."""
from __future__ import annotations

import argparse
import sys

from tinygrad_edu.cli.common import fail, non_negative_int, positive_float, positive_int

HELP = "print samples from a text model trained by train --data names|vi-words|kieu|shakespeare|FILE"
DESCRIPTION = """\
Draw samples from a text model's weights file (train --data ... --save FILE): each character from the softmax of
the model's logits divided by --temperature (only the --top-k most likely, if given), after --prompt. stdout holds
only the samples, so they can be piped; --seed makes them reproducible.

A model of a word list writes one word per line, and says on stderr which of them are words of its training
data (--quiet leaves that line out). A model of running text writes --num samples separated by an empty line,
each from a line start and --lines complete lines long (or --max-chars characters).

examples:
  tinygrad-edu train --data names --model mlp --save names.npz
  tinygrad-edu sample --weights names.npz --num 10 --seed 0
  tinygrad-edu sample --weights kieu.npz --lines 4 --temperature 0.8
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, metavar="FILE.npz", help="a text model's weights file")
    parser.add_argument("--num", type=positive_int, default=10, metavar="N", help="how many samples (default: 10)")
    parser.add_argument("--prompt", default="", metavar="TEXT", help="each sample starts with it (default: none)")
    parser.add_argument("--temperature", type=positive_float, default=1.0, metavar="T",
                        help="below 1: bolder favourites; above 1: more surprises (default: 1)")
    parser.add_argument("--top-k", type=positive_int, metavar="K", help="draw only from the K most likely characters")
    parser.add_argument("--max-chars", type=positive_int, default=None, metavar="N",
                        help="the longest sample, in characters (default: 50 for words, 1000 for running text)")
    parser.add_argument("--lines", type=positive_int, metavar="L",
                        help="running text: the complete lines of each sample (default: 4, unless --max-chars)")
    parser.add_argument("--seed", type=non_negative_int, metavar="S",
                        help="the samples' seed: the same seed, the same samples (default: fresh each run)")
    parser.add_argument("--quiet", action="store_true", help="words: leave out the stderr line on known words")
    parser.add_argument("--metre", action="store_true",
                        help="verse (a model of kieu): say on stderr the share of samples whose first two lines are "
                             "6 then 8 syllables (lục bát's lengths, not its rhyme or tones) and not the poem's own, "
                             "the verbatim share and the share of words found in the training text")


def run(args) -> int:
    from tinygrad_edu import checkpoint, datasets, text
    from tinygrad_edu.cli.text import load_text_model, text_kind
    from tinygrad_edu.models.text import sample

    try:
        model, architecture = load_text_model(args.weights, "sample")
    except checkpoint.CheckpointError as e:
        return fail("sample", e)
    kind = text_kind(architecture)
    if kind == "words" and args.metre:
        return fail("sample", "--metre scores verse (lines of running text); this model writes words")
    if kind == "words" and args.lines is not None:
        return fail("sample", "--lines is for a model of running text; this one writes words (one per line)")
    lines = None if kind == "words" or args.max_chars is not None and args.lines is None else (args.lines or 4)
    max_chars = args.max_chars or (50 if kind == "words" else 1000)
    try:
        samples = sample(model, kind, num=args.num, prompt=args.prompt, temperature=args.temperature,
                         top_k=args.top_k, max_chars=max_chars, lines=lines, seed=args.seed)
    except (ValueError, text.TextError) as e:
        return fail("sample", f"--prompt: {e}" if isinstance(e, text.TextError) else e)
    if kind == "words":
        print("\n".join(samples))
        if not args.quiet:
            try:
                data = datasets.load_text(architecture.get("data"), "words")
                known = set(data.train)
                seen = [s for s in samples if s in known]
                listed = f" ({', '.join(seen)})" if seen else ""
                print(f"in the training data: {len(seen)} of {len(samples)}{listed}", file=sys.stderr)
            except (datasets.DatasetError, TypeError):
                print("(the training data is not at hand: which samples are known words is not said)",
                      file=sys.stderr)
    else:
        print("\n\n".join(s.rstrip("\n") for s in samples))
    if args.metre:
        return _metre(samples, architecture)
    return 0


def _metre(samples, architecture) -> int:
    from tinygrad_edu import datasets, metre

    try:
        data = datasets.load_text(architecture.get("data"), "text")
    except (datasets.DatasetError, TypeError):
        return fail("sample", "--metre needs the text the model was trained on, which is not at hand")
    print(metre.score(samples, data.train + data.val, data.train).report(), file=sys.stderr)
    return 0
