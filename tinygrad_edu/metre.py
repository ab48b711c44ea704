"""The lục bát score of generated couplets: a line of 6 syllables, then one of 8, and not a couplet of the poem.

Truyện Kiều is written in lục bát: lines of six and eight syllables, alternating. A Vietnamese syllable is written
as one word between spaces, so a line's syllables are `len(line.split())`. The score measures line lengths only,
not rhyme (the sixth syllable of the 8-line rhyming with the last of the 6-line) nor tones (bằng/trắc): a couplet
of the right lengths may still break the metre's other rules.

    score(samples, poem, train)   samples: strings of (at least) two lines, e.g. `sample --lines 2`'s
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MetreScore", "couplet", "score", "words"]

PUNCTUATION = ",.;:!?\"'“”‘’()[]-–—…"


@dataclass(frozen=True)
class MetreScore:
    couplets: int          # how many samples were scored
    passed: float          # the share of 6 + 8 syllable couplets that are not the poem's own
    lengths: float         # the share of 6 + 8 syllable couplets, the poem's own included
    verbatim: float        # the share that are two consecutive lines of the poem, word for word
    known_words: float     # the share of generated words (syllables) that occur in the training text

    def report(self) -> str:
        return (f"lục bát (6 then 8 syllables, not the poem's): {self.passed:.1%} of {self.couplets} couplets "
                f"(6 + 8 with the poem's own: {self.lengths:.1%}; verbatim from the poem: {self.verbatim:.1%}; "
                f"generated words found in the training text: {self.known_words:.1%}). It counts syllables per "
                "line, not rhyme or tones.")


def words(line: str) -> list[str]:
    """A line's words (syllables), lower case, without the punctuation around them."""
    return [w for w in (w.strip(PUNCTUATION).lower() for w in line.split()) if w]


def couplet(sample: str) -> tuple[str, str]:
    """A sample's first two non-empty lines ("" for a missing one)."""
    lines = [line.strip() for line in sample.split("\n") if line.strip()] + ["", ""]
    return lines[0], lines[1]


def score(samples, poem: str, train: str) -> MetreScore:
    """The score of samples (see the module's docstring): poem is the whole text, one verse per line, whose
    consecutive pairs of lines count as verbatim; train is the text the model learnt from (its words known)."""
    samples = list(samples)
    if not samples:
        raise ValueError("score: there are no samples to score")
    verses = [" ".join(words(line)) for line in poem.split("\n") if line.strip()]
    pairs = set(zip(verses, verses[1:]))
    known = {w for line in train.split("\n") for w in words(line)}
    passed = lengths = verbatim = 0
    generated = found = 0
    for sample in samples:
        first, second = couplet(sample)
        right = len(first.split()) == 6 and len(second.split()) == 8
        copied = (" ".join(words(first)), " ".join(words(second))) in pairs
        lengths += right
        verbatim += copied
        passed += right and not copied
        for w in words(first) + words(second):
            generated += 1
            found += w in known
    n = len(samples)
    return MetreScore(n, passed / n, lengths / n, verbatim / n, found / generated if generated else 0.0)
