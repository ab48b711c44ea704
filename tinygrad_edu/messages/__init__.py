"""The one message catalogue: what the command line, the lab page and the exercises say, in English and Vietnamese.

Each area's messages live in `<area>.json` beside this file, as `{"key": {"en": "...", "vi": "..."}}`. A message's
fields are written `{name}` (no format specs: the caller formats its numbers), so the same text fills in Python with
`text()` and in the lab's JavaScript with a one-line replace. tests/test_messages.py checks every area: both languages
for every key, and the same fields in each.
"""
from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

LANGUAGES = ("en", "vi")
DEFAULT_LANGUAGE = "en"
FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_language(lang: str) -> str:
    """lang itself when the catalogue has it; else a ValueError naming it and the choices."""
    if lang not in LANGUAGES:
        raise ValueError(f"no messages in language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    return lang


def areas() -> list[str]:
    """The catalogue's areas: one JSON file each."""
    return sorted(f.name[:-5] for f in resources.files(__name__).iterdir() if f.name.endswith(".json"))


@cache
def catalogue(area: str) -> dict[str, dict[str, str]]:
    """An area's messages, {key: {lang: text}}, as the JSON file holds them."""
    if area not in areas():
        raise KeyError(f"no message area {area!r}: the areas are {', '.join(areas())}")
    return json.loads((resources.files(__name__) / f"{area}.json").read_text(encoding="utf-8"))


def in_language(area: str, lang: str) -> dict[str, str]:
    """An area's messages in one language, {key: text}: what the lab page receives."""
    check_language(lang)
    return {key: texts[lang] for key, texts in catalogue(area).items()}


def text(key: str, lang: str = DEFAULT_LANGUAGE, **fields) -> str:
    """The message `area.key` in lang, its `{name}` fields filled from fields (each one given, none left over)."""
    area, _, name = key.partition(".")
    template = catalogue(area).get(name)
    if template is None:
        raise KeyError(f"no message {key!r} in the catalogue")
    template = template[check_language(lang)]
    wanted = set(FIELD.findall(template))
    if wanted != set(fields):
        raise KeyError(f"message {key!r} takes the fields {sorted(wanted)}, got {sorted(fields)}")
    return FIELD.sub(lambda m: str(fields[m.group(1)]), template)
