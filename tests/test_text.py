"""The bundled corpora, load_text's splits (makemore's and nanoGPT's, exactly) and the character tokenizer."""
import hashlib
import random
import unicodedata

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import datasets, text
from tinygrad_edu.text import CharTokenizer, TextError, load_text

SHARED_SUMS = {"names.txt": "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
               "tinyshakespeare.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
               "truyen_kieu.txt": "2e3ddda39fd0bf7dc1ed64eb4d81ac90c7734365b8b57cff372bcba1e299795b",
               "vi_words.txt": "517743d27e71d43343e4b8e9e89015cdc68d84ebe1d48106449e501d918ece4a"}


def test_the_bundled_files_are_the_shared_ones_with_their_notice_and_sums():
    sums = dict(reversed(line.split()) for line in (text.BUNDLED_TEXT / "SHA256SUMS").read_text().splitlines())
    assert sums == SHARED_SUMS
    for corpus in text.CORPORA.values():
        assert hashlib.sha256((text.BUNDLED_TEXT / corpus.file).read_bytes()).hexdigest() == corpus.sha256
        assert SHARED_SUMS[corpus.file] == corpus.sha256
    notice = (text.BUNDLED_TEXT / "NOTICE").read_text(encoding="utf-8")
    for words in ("makemore", "pyvi", "Nguyễn Du", "char-rnn", "public domain", "MIT"):
        assert words in notice


def test_names_split_as_makemore_does():
    data = datasets.load_text("names")
    words = (text.BUNDLED_TEXT / "names.txt").read_text().splitlines()
    random.seed(42)
    random.shuffle(words)
    assert (data.train, data.val, data.test) == (words[:25626], words[25626:28829], words[28829:])
    assert (len(data.train), len(data.val), len(data.test)) == (25626, 3203, 3204)
    assert data.kind == "words" and data.name == "names"


def test_the_split_leaves_the_callers_random_state_alone():
    random.seed(7)
    expected = random.random()
    random.seed(7)
    load_text("names")
    assert random.random() == expected


def test_vietnamese_words_keep_their_diacritics_and_spaces():
    data = load_text("vi-words")
    assert len(data.train) + len(data.val) + len(data.test) == 31158
    everything = data.train + data.val + data.test
    assert "a ma tơ" in everything and all(unicodedata.is_normalized("NFC", w) for w in everything)


def test_running_text_is_split_90_10_with_no_test():
    data = load_text("shakespeare")
    assert data.kind == "text" and data.test is None
    assert len(data.train) == int(0.9 * 1115394) and len(data.train) + len(data.val) == 1115394
    assert data.train.startswith("First Citizen:")
    kieu = load_text("kieu")
    assert kieu.kind == "text" and kieu.train.startswith("Trăm năm trong cõi người ta,")


def test_a_damaged_bundled_corpus_is_refused_with_the_repair(monkeypatch, tmp_path):
    for name in ("names.txt", "NOTICE"):
        (tmp_path / name).write_bytes((text.BUNDLED_TEXT / name).read_bytes())
    (tmp_path / "names.txt").write_bytes(b"emma\n" + (text.BUNDLED_TEXT / "names.txt").read_bytes())
    monkeypatch.setattr(text, "BUNDLED_TEXT", tmp_path)
    with pytest.raises(TextError, match="names.txt: this corpus bundled with tinygrad_edu is damaged: its SHA-256"):
        load_text("names")


def test_a_file_is_normalised_nfc_without_bom_crlf_or_empty_lines(tmp_path):
    decomposed = unicodedata.normalize("NFD", "nghiệp")
    assert len(decomposed) > len("nghiệp")
    path = tmp_path / "w.txt"
    path.write_bytes(("\ufeff" + "\r\n".join(["an", decomposed, "", "bo", *[f"w{i}" for i in range(20)]]) + "\r\n"
                      ).encode("utf-8"))
    data = load_text(path)
    everything = data.train + data.val + data.test
    assert data.kind == "words" and len(everything) == 23
    assert "nghiệp" in everything and "" not in everything and not any("\r" in w or "\ufeff" in w for w in everything)


def test_the_kind_of_a_file_follows_the_stated_rule(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("\n".join(f"word{i}" for i in range(50)), encoding="utf-8")
    long_lines = tmp_path / "verse.txt"
    long_lines.write_text("\n".join("a line of verse that runs on for a while" for _ in range(50)), encoding="utf-8")
    one_long = tmp_path / "mixed.txt"
    one_long.write_text("\n".join(["x"] * 49 + ["y" * 49]), encoding="utf-8")
    assert load_text(short).kind == "words" and load_text(long_lines).kind == "text"
    assert load_text(one_long).kind == "text"                      # one line over 48 characters
    assert load_text(long_lines, kind="words").kind == "words"     # kind= decides
    assert text.guess_kind((text.BUNDLED_TEXT / "vi_words.txt").read_text(encoding="utf-8")) == "words"
    assert text.guess_kind((text.BUNDLED_TEXT / "truyen_kieu.txt").read_text(encoding="utf-8")) == "text"


@pytest.mark.parametrize("content, message", [
    (b"caf\xe9\n", r"is not UTF-8 text \(byte 3 is 0xe9\); save it as UTF-8"),
    (b"", "is empty: there is no text to learn from"),
    (b"\n\n  \n", "is empty"),
    (b"a\nb\nc\n", "3 words are too few to split into train, val and test"),
])
def test_bad_files_are_named_with_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(TextError, match=f"bad.txt: {message}"):
        load_text(path)


def test_missing_files_folders_and_kinds_are_named(tmp_path):
    with pytest.raises(TextError, match="nope.txt: no such text file \\(a corpus name is one of names, vi-words"):
        load_text(tmp_path / "nope.txt")
    with pytest.raises(TextError, match="is a folder, not a text file"):
        load_text(tmp_path)
    with pytest.raises(TextError, match="kind must be one of words, text, got 'lines'"):
        load_text("names", kind="lines")
    assert issubclass(TextError, datasets.DatasetError)


def test_a_word_tokenizer_has_a_boundary_token_apart_from_dots_and_dashes():
    tok = CharTokenizer.from_data(load_text("vi-words"))
    assert tok.ids["-"] != CharTokenizer.BOUNDARY and tok.ids["."] != CharTokenizer.BOUNDARY and "\n" not in tok.ids
    assert min(tok.ids.values()) == 1 and tok.vocab_size == len(tok.chars) + 1
    names = CharTokenizer.from_data(load_text("names"))
    assert names.chars == list("abcdefghijklmnopqrstuvwxyz") and names.vocab_size == 27
    assert names.encode("emma").tolist() == [5, 13, 13, 1]
    assert names.decode([0, 5, 13, 13, 1, 0]) == "emma"


def test_a_running_text_tokenizer_keeps_newlines_as_characters():
    tok = CharTokenizer.from_data(load_text("shakespeare"))
    assert tok.vocab_size == 65 + 1 and tok.ids["\n"] == 1          # 65 characters and the boundary token


def test_decomposed_input_is_one_character_per_letter():
    tok = CharTokenizer.from_data(load_text("kieu"))
    composed, decomposed = "nghiệp", unicodedata.normalize("NFD", "nghiệp")
    assert tok.encode(decomposed).tolist() == tok.encode(composed).tolist() and len(tok.encode(decomposed)) == 6


def test_a_character_never_seen_in_training_is_named_with_its_position():
    tok = CharTokenizer.from_data(load_text("names"))
    with pytest.raises(TextError, match=r"the character 'Z' \(U\+005A\) at position 2 of 'emZma' is not in the "
                                        "tokenizer's vocabulary: the training text never had it"):
        tok.encode("emZma")
    with pytest.raises(TextError, match="id 27 at position 1 is outside the vocabulary 0..26"):
        tok.decode([1, 27])
    with pytest.raises(TextError, match="ids must be a 1-D array of integers"):
        tok.decode(np.array([[1.0]]))


def test_a_tokenizer_saves_as_a_plain_dict_and_comes_back_the_same():
    tok = CharTokenizer.from_data(load_text("kieu"))
    again = CharTokenizer.from_state(tok.state())
    assert again.ids == tok.ids and tok.state() == {"chars": "".join(tok.chars)}
    for bad in ({"chars": 3}, {"chars": "ab", "more": 1}, ["ab"]):
        with pytest.raises(TextError, match="a saved tokenizer is"):
            CharTokenizer.from_state(bad)


@given(st.lists(st.sampled_from(list("abcdefghijklmnopqrstuvwxyz")), min_size=0, max_size=30).map("".join))
def test_encode_then_decode_gives_back_any_text_of_known_characters(word):
    tok = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz"))
    ids = tok.encode(word)
    assert ids.dtype == np.int64 and tok.decode(ids) == word
