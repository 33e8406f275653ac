"""Each refusal class through the real coder path: the scripted model's first reply is refused
with a reason it can act on, its corrected retry applies, and only the retry is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents.test_orchestrator import (
    block,
    coder_rule,
    make_workspace,
    plan_rule,
    review_rule,
    run,
)
from tests.edits.test_coder_replies import feedback

PY = "import sys\n\n\ndef main():\n    print(sys.argv)\n"
MD = "Calc\n====\n\nUsage\n=====\n\nCall it.\n"


CASES = [
    pytest.param(
        "app.py",
        PY,
        block("app.py", "", "import os\n"),
        block("app.py", "import sys\n", "import os\nimport sys\n"),
        "import os\n" + PY,
        ["empty SEARCH", "The file ends with:", "    print(sys.argv)"],
        id="empty-search",
    ),
    pytest.param(
        "app.py",
        PY,
        block(
            "app.py",
            "def main():\n    print(sys.argv)\n",
            "def main():\n    # ... existing code ...\n    return 0\n",
        ),
        block("app.py", "    print(sys.argv)\n", "    print(sys.argv)\n    return 0\n"),
        PY + "    return 0\n",
        ["'# ... existing code ...'", "stands for lines left out"],
        id="elision",
    ),
    pytest.param(
        "README.md",
        MD,
        "README.md\n<<<<<<< SEARCH\nCall it.\n=======\nCall it twice.\n=======\n>>>>>>> REPLACE\n",
        block("README.md", "Call it.\n", "Call it twice.\n"),
        MD.replace("Call it.", "Call it twice."),
        ["block line 2: '======='", "block line 4: '======='", "never a"],
        id="doubled-divider",
    ),
    pytest.param(
        "app.py",
        PY,
        block("app.py", "    print(sys.argv)\n", "    print(sys.argv)\nreturn 0\n"),
        block("app.py", "    print(sys.argv)\n", "    print(sys.argv)\n    return 0\n"),
        PY + "    return 0\n",
        ["no longer compiles", "'return' outside function"],
        id="compile",
    ),
    pytest.param(
        "app.py",
        PY,
        block("app.py", "    print(argv)\n    sys.exit()\n", "    sys.exit()\n"),
        block("app.py", "    print(sys.argv)\n", "    print(sys.argv)\n    sys.exit()\n"),
        PY + "    sys.exit()\n",
        ["SEARCH text not found", "closest lines"],
        id="deletion-not-already-applied",
    ),
]


@pytest.mark.parametrize(("path", "original", "first", "retry", "expected", "words"), CASES)
async def test_refused_then_corrected(
    tmp_path: Path, scripted, path, original, first, retry, expected, words
) -> None:
    index = make_workspace(tmp_path / "ws", {path: original})
    scripted.add_rule(plan_rule([{"path": path, "instructions": "change it"}]))
    scripted.add_rule(
        {"match": {"last_contains": "# Edit not applied"}, "reply": {"content": retry}}
    )
    scripted.add_rule(coder_rule(path, first))
    scripted.add_rule(review_rule(True))

    result = await run(index, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    [change] = result.changes
    assert change.new_text == expected
    [sent] = feedback(scripted)
    for word in words:
        assert word in sent
