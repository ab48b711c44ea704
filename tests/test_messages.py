"""The message catalogue: every key in both languages with the same fields, and text() fills them exactly."""
import pytest

from tinygrad_edu import messages


@pytest.mark.parametrize("area", messages.areas())
def test_every_message_has_both_languages_with_the_same_fields(area):
    for key, texts in messages.catalogue(area).items():
        assert set(texts) == set(messages.LANGUAGES), (area, key)
        fields = {lang: set(messages.FIELD.findall(t)) for lang, t in texts.items()}
        assert fields["en"] == fields["vi"], (area, key, fields)
        for lang, t in texts.items():
            assert t.strip() == t and t, (area, key, lang)
            # NOTE: only {name} fields, which the lab's JavaScript fills as Python does
            assert "{" not in messages.FIELD.sub("", t) and "}" not in messages.FIELD.sub("", t), (area, key, lang)


def test_text_fills_fields_and_refuses_missing_or_extra_ones():
    assert messages.text("common.error", "en", message="x") == "error: x"
    assert messages.text("common.error", "vi", message="x") == "lỗi: x"
    with pytest.raises(KeyError, match=r"takes the fields \['message'\], got \[\]"):
        messages.text("common.error", "en")
    with pytest.raises(KeyError, match=r"got \['message', 'other'\]"):
        messages.text("common.error", "en", message="x", other=1)
    with pytest.raises(KeyError, match="no message 'common.nothing'"):
        messages.text("common.nothing")
    with pytest.raises(KeyError, match="no message area 'nowhere'"):
        messages.text("nowhere.error")


def test_an_unknown_language_is_refused_by_name():
    with pytest.raises(ValueError, match="no messages in language 'fr': choose one of en, vi"):
        messages.text("common.error", "fr", message="x")
    assert messages.in_language("common", "vi")["language_switch"] == "Ngôn ngữ"
