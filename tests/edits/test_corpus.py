"""The whole edit-safety corpus through the real coder path (see tests/edits/corpus.py).

Figures: ``python -m tests.edits.corpus`` prints one line per case and the totals.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.edits.corpus import figures, load_case, load_corpus, run_corpus


async def test_every_case_has_its_expected_outcome_and_none_is_wrong() -> None:
    cases = load_corpus()
    assert len(cases) >= 100
    outcomes = await run_corpus(cases)
    off = [
        f"{o.case.file.name}: {o.kind}; written {o.text!r}; refusal {o.refusal[:200]!r}"
        for o in outcomes
        if not o.as_expected
    ]
    assert off == []
    counts = figures(outcomes)
    assert counts["wrong"] == 0
    assert counts["right"] + counts["refused"] == counts["cases"]


def test_a_case_without_its_expected_text_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.case"
    bad.write_text("path: a.py\nexpect: applied\n@@@@ reply\nhi\n")
    with pytest.raises(ValueError, match="expected section"):
        load_case(bad)


def test_sections_keep_their_text_exactly(tmp_path: Path) -> None:
    case = tmp_path / "y.case"
    case.write_text(
        "path: a.md\nexpect: applied\neof: no-newline\n"
        "@@@@ file\nTitle\n=======\n@@@@ reply\nr\n@@@@ expected\nx\n"
    )
    loaded = load_case(case)
    assert (loaded.original, loaded.reply, loaded.expected) == ("Title\n=======", "r\n", "x")
