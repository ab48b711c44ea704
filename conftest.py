"""pytest's hook for the docs: README.md's and docs/**/*.md's run blocks are collected as tests (marker `docs`)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "tests"))
import doc_blocks  # noqa: E402  (tests/doc_blocks.py: the blocks' marks and evaluators, defined once)

pytest_collect_file = doc_blocks.sybil().pytest()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".md" or item.path.name == "test_docs.py":
            item.add_marker(pytest.mark.docs)
    # the whole suite (plain `pytest`, no -k or -m): its size, which README.md's "about N tests" is checked against
    whole = config.args_source == pytest.Config.ArgsSource.TESTPATHS and not config.option.keyword \
        and not config.option.markexpr
    config.stash[doc_blocks.SUITE_SIZE] = len(items) if whole else None
