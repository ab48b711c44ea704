"""The lục bát score: a couplet passes with 6 then 8 syllables and is not two consecutive lines of the poem."""
import pytest

from tinygrad_edu import metre

POEM = ("Trăm năm trong cõi người ta,\nChữ tài chữ mệnh khéo là ghét nhau.\n"
        "Trải qua một cuộc bể dâu,\nNhững điều trông thấy mà đau đớn lòng.\n")


def test_a_couplet_passes_on_its_line_lengths_and_not_when_copied_from_the_poem():
    samples = [
        "Trăm năm trong cõi người ta,\nChữ tài chữ mệnh khéo là ghét nhau.",     # the poem's own: lengths only
        "Trăm năm trong cõi bể dâu\nNhững điều trông thấy khéo là ghét nhau",      # new, 6 + 8: passes
        "Trăm năm trong cõi\nNhững điều trông thấy mà đau đớn lòng.",              # 4 + 8: fails
        "\n\nTrải qua một cuộc bể dâu,\nchữ tài chữ mệnh xyz là ghét nhau!",        # blank lines skipped: passes
    ]
    s = metre.score(samples, POEM, POEM)
    assert (s.couplets, s.passed, s.lengths, s.verbatim) == (4, 0.5, 0.75, 0.25)
    generated = 14 + 14 + 12 + 14
    assert s.known_words == pytest.approx((generated - 1) / generated)    # "xyz" alone is not in the text
    assert "50.0% of 4 couplets" in s.report() and "not rhyme or tones" in s.report()


def test_words_are_lower_case_without_the_punctuation_around_them():
    assert metre.words("“Chữ tài, chữ mệnh…” khéo là!") == ["chữ", "tài", "chữ", "mệnh", "khéo", "là"]
    assert metre.couplet("one\n\n two \n") == ("one", "two")
    assert metre.couplet("only") == ("only", "")


def test_no_samples_is_an_error():
    with pytest.raises(ValueError, match="no samples to score"):
        metre.score([], POEM, POEM)
