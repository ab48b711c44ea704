"""Text for the sequence models: the bundled corpora, their train/val/test splits, and the character tokenizer.

`load_text("names")` (also `datasets.load_text`) reads a bundled corpus, checked against its SHA-256 on every
load, or any UTF-8 file; `CharTokenizer` maps its characters to ids and back. The text is normalised to Unicode
NFC, so a Vietnamese letter typed as one code point ("ệ", U+1EC7) or as a letter and its combining marks
("e" + U+0323 + U+0302, as some keyboards and macOS file names give it) is one character to the models.
"""
from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinygrad_edu.datasets import DatasetError

__all__ = ["BUNDLED_TEXT", "CORPORA", "CharTokenizer", "Sequences", "TextData", "TextError", "load_text",
           "sequences"]

BUNDLED_TEXT = Path(__file__).parent / "data" / "text"


@dataclass(frozen=True)
class Corpus:
    file: str
    kind: str            # "words": one item per line; "text": running text
    sha256: str
    about: str


# The bundled corpora (data/text/NOTICE says where each comes from and under which licence).
CORPORA = {
    "names": Corpus("names.txt", "words", "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
                    "32,033 English given names (makemore's names.txt)"),
    "vi-words": Corpus("vi_words.txt", "words", "517743d27e71d43343e4b8e9e89015cdc68d84ebe1d48106449e501d918ece4a",
                       "31,158 Vietnamese words and compounds (pyvi's word list)"),
    "kieu": Corpus("truyen_kieu.txt", "text", "2e3ddda39fd0bf7dc1ed64eb4d81ac90c7734365b8b57cff372bcba1e299795b",
                   "Truyện Kiều, Nguyễn Du's 3,254 verses in lục bát, one per line"),
    "shakespeare": Corpus("tinyshakespeare.txt", "text",
                          "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                          "tiny Shakespeare, 1,115,394 characters of the plays"),
}
KINDS = ("words", "text")
# A file read without kind= is a word list when its lines are short: none over WORD_MAX characters and their
# mean under WORD_MEAN (names: 15 and 6.1; vi-words: 43 and 7.5; Truyện Kiều's verses: 44 and 31.0).
WORD_MAX, WORD_MEAN = 48, 16


class TextError(DatasetError):
    """A text file or a string that cannot be used: the message names it and what is wrong."""


@dataclass
class TextData:
    """A corpus split for training: lists of words (kind "words"), or strings of running text (kind "text", whose
    test is None: running text is split in two, as nanoGPT does)."""
    name: str
    kind: str
    train: list[str] | str
    val: list[str] | str
    test: list[str] | str | None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{split} {len(getattr(self, split))}" for split in ("train", "val", "test")
                          if getattr(self, split) is not None)
        unit = "words" if self.kind == "words" else "characters"
        return f"TextData({self.name!r}, {self.kind}: {sizes} {unit})"


def normalize(text: str) -> str:
    """NFC, line ends as LF, no byte-order mark: the one form every text takes before it is split or encoded."""
    return unicodedata.normalize("NFC", text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n"))


def read_text(path) -> str:
    """A UTF-8 file's text, normalised; a TextError naming the file when it cannot be read as such."""
    path = Path(path)
    if path.is_dir():
        raise TextError(f"{path}: is a folder, not a text file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TextError(f"{path}: no such text file (a corpus name is one of {', '.join(CORPORA)})") from None
    except OSError as e:
        raise TextError(f"{path}: cannot be read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TextError(f"{path}: is not UTF-8 text (byte {e.start} is {data[e.start]:#04x}); save it as UTF-8"
                        ) from None
    text = normalize(text)
    if not text.strip():
        raise TextError(f"{path}: is empty: there is no text to learn from")
    return text


def _bundled(name: str) -> str:
    corpus = CORPORA[name]
    path = BUNDLED_TEXT / corpus.file
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != corpus.sha256:
        raise TextError(f"{path}: this corpus bundled with tinygrad_edu is damaged: its SHA-256 is {digest}, "
                        f"expected {corpus.sha256}. Reinstall tinygrad_edu (pip install --force-reinstall; in a git "
                        f"clone, git checkout -- {path})")
    return normalize(data.decode("utf-8"))


def guess_kind(text: str) -> str:
    """"words" when the lines are short (none over WORD_MAX characters, their mean under WORD_MEAN), else "text"."""
    lines = [line for line in text.split("\n") if line]
    lengths = [len(line) for line in lines]
    return "words" if lines and max(lengths) <= WORD_MAX and sum(lengths) / len(lines) < WORD_MEAN else "text"


def split_words(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    """makemore's split, exactly: random.seed(42), random.shuffle, then the first 80% train, 10% val, the rest test.

    (random's state is saved and put back, so a caller's own use of random is not disturbed.)"""
    words = list(words)
    state = random.getstate()
    try:
        random.seed(42)
        random.shuffle(words)
    finally:
        random.setstate(state)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return words[:n1], words[n1:n2], words[n2:]


def load_text(name_or_path, kind: str | None = None) -> TextData:
    """A bundled corpus by name ("names", "vi-words", "kieu", "shakespeare"), or a UTF-8 file, split for training.

    Words (one per line, empty lines skipped): makemore's split (split_words). Running text: the first 90% of its
    characters train, the last 10% val, as nanoGPT. kind= ("words" or "text") says how to read a file; without it,
    guess_kind decides; a bundled corpus has its own kind.
    """
    if kind is not None and kind not in KINDS:
        raise TextError(f"load_text: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if isinstance(name_or_path, str) and name_or_path in CORPORA:
        name, text = name_or_path, _bundled(name_or_path)
        kind = CORPORA[name].kind if kind is None else kind
    else:
        path = Path(name_or_path)
        name, text = str(path), read_text(path)
        kind = guess_kind(text) if kind is None else kind
    if kind == "words":
        words = [line for line in text.split("\n") if line]
        if len(words) < 10:
            raise TextError(f"{name}: {len(words)} words are too few to split into train, val and test (10 at least)")
        return TextData(name, kind, *split_words(words))
    n = int(0.9 * len(text))
    return TextData(name, kind, text[:n], text[n:], None)


class CharTokenizer:
    """Characters ↔ ids: id 0 is the boundary token, then the training split's characters, sorted, from 1.

    The boundary token is not a character: it is where a word starts and ends (makemore's "."), and, in running
    text, the nothing before a window's first character, which a fixed-context model reads as padding. So the
    ".", "-" and "/" inside a word are characters of their own. encode(str) → int64 array of ids; decode(ids) → str
    (boundary tokens left out). A character the training split never had is a TextError naming it and its
    position. The tokenizer saves as a plain dict (`state()`, `from_state`), which weights files hold, so
    sampling needs no corpus.
    """

    BOUNDARY = 0

    def __init__(self, chars):
        chars = sorted(set(chars))
        if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise TextError("CharTokenizer: the characters must be single-character strings, and at least one")
        self.chars = chars
        self.ids = {c: i + 1 for i, c in enumerate(chars)}

    @classmethod
    def from_data(cls, data: TextData) -> CharTokenizer:
        """The tokenizer of data's training split (a word list's line ends are boundaries, not characters)."""
        return cls(set("".join(data.train)) if data.kind == "words" else set(data.train))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        text = unicodedata.normalize("NFC", text)
        try:
            return np.array([self.ids[c] for c in text], dtype=np.int64)
        except KeyError:
            pass
        position = next(i for i, c in enumerate(text) if c not in self.ids)
        unseen = list(dict.fromkeys(c for c in text if c not in self.ids))   # each once, in order
        c = text[position]
        if len(unseen) == 1:
            raise TextError(f"the character {c!r} (U+{ord(c):04X}) at position {position} of "
                            f"{_excerpt(text, position)} is not in the tokenizer's vocabulary: the training text "
                            "never had it")
        named = ", ".join(f"{u!r} (U+{ord(u):04X})" for u in unseen[:10]) + (", ..." if len(unseen) > 10 else "")
        raise TextError(f"{len(unseen)} characters of {_excerpt(text, position)} are not in the tokenizer's "
                        f"vocabulary (the training text never had them): {named}; the first at position {position}")

    def decode(self, ids) -> str:
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise TextError(f"decode: ids must be a 1-D array of integers, got {ids.dtype} of shape {ids.shape}")
        bad = (ids < 0) | (ids >= self.vocab_size)
        if bad.any():
            i = int(np.argmax(bad))
            raise TextError(f"decode: id {int(ids[i])} at position {i} is outside the vocabulary "
                            f"0..{self.vocab_size - 1}")
        return "".join(self.chars[i - 1] for i in ids.tolist() if i != self.BOUNDARY)

    def state(self) -> dict:
        return {"chars": "".join(self.chars)}

    @classmethod
    def from_state(cls, state: dict) -> CharTokenizer:
        if not isinstance(state, dict) or not isinstance(state.get("chars"), str) or set(state) != {"chars"}:
            raise TextError(f"CharTokenizer: a saved tokenizer is {{'chars': str}}, got {state!r:.80}")
        return cls(state["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer({len(self.chars)} characters + the boundary token: {''.join(self.chars)[:40]!r})"


@dataclass
class Sequences:
    """What a model reads and what it must predict, row by row: inputs and targets are N×T token ids, mask
    says which targets count (a padded row's tail does not). targets[i, t] is the character after inputs[i, :t+1]."""
    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def predictions(self) -> int:
        """How many characters are predicted: the metric's denominator."""
        return int(self.mask.sum())

    def rows(self, index) -> Sequences:
        return Sequences(self.inputs[index], self.targets[index], self.mask[index])

    def examples(self, context: int) -> tuple[np.ndarray, np.ndarray]:
        """(X, y): each marked target with the `context` ids before it (the boundary token where the row has
        fewer), X P×context and y P: makemore's build_dataset, for the models that read a fixed context."""
        padded = np.concatenate([np.full((len(self), context - 1), CharTokenizer.BOUNDARY, np.int64), self.inputs],
                                axis=1)
        windows = np.lib.stride_tricks.sliding_window_view(padded, context, axis=1)   # N × T × context
        return np.ascontiguousarray(windows[self.mask]), self.targets[self.mask]


def sequences(split, tokenizer: CharTokenizer, block_size: int = 8) -> Sequences:
    """The rows of a split, as every metric and every training step reads them.

    A word list: one row per word, from its start: inputs [boundary, c1, ..., cn], targets [c1, ..., cn, boundary]
    (its end counts, as makemore counts), padded to the longest word. Running text: consecutive non-overlapping
    windows of block_size + 1 characters (the model's context), inputs the first block_size and targets the last:
    each character after a window's first predicted from its in-window prefix (a fixed-context model pads the
    prefix with the boundary token, as at a word's start).
    """
    if isinstance(split, str):
        ids = tokenizer.encode(split)
        n = len(ids) // (block_size + 1)
        if n == 0:
            raise TextError(f"the text is {len(ids)} characters long, shorter than one window of {block_size + 1}")
        windows = ids[:n * (block_size + 1)].reshape(n, block_size + 1)
        return Sequences(windows[:, :-1], windows[:, 1:], np.ones((n, block_size), bool))
    words = [tokenizer.encode(w) for w in split]
    if not words:
        raise TextError("there are no words to make sequences of")
    T = max(len(w) for w in words) + 1
    inputs = np.zeros((len(words), T), np.int64)
    targets = np.zeros((len(words), T), np.int64)
    mask = np.zeros((len(words), T), bool)
    for i, w in enumerate(words):
        inputs[i, 1:len(w) + 1] = w
        targets[i, :len(w)] = w
        mask[i, :len(w) + 1] = True
    return Sequences(inputs, targets, mask)


def _excerpt(text: str, position: int) -> str:
    start = max(0, position - 10)
    return repr(("…" if start else "") + text[start:position + 10] + ("…" if position + 10 < len(text) else ""))
