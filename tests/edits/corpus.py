"""The edit-safety corpus: hard SEARCH/REPLACE cases, run through the real coder path.

Each ``corpus/*.case`` file is one case: ``key: value`` header lines, then sections that start
with a line ``@@@@ <name>`` and hold the text up to the next such line:

- ``@@@@ file``: the file before the edit (absent: the file does not exist yet);
- ``@@@@ reply``: the coder's reply, verbatim;
- ``@@@@ expected``: the exact text the file must have after the reply (with ``expect: applied``).

A section's trailing blank lines belong to the case file, not to the text (so a text cannot end in
a blank line); a section's text ends in one newline unless ``eof``/``reply-eof`` says otherwise.

Headers: ``name``, ``source`` (where the facts come from), ``path`` (the target file),
``expect`` (``applied`` or ``refused``), ``reason`` (for ``refused``: words the refusal sent
back must contain), ``eof: no-newline`` (the file and expected text have no final newline),
``reply-eof: no-newline`` (the reply has none).

``run_corpus`` drives every case through ``run_task`` against the real scripted model server:
the researcher plans the case's file, the coder sends the case's reply, the applier and the
validator decide; a refused reply gets ``NO CHANGES NEEDED`` as the retry, so the task ends
with nothing written. Outcomes: ``right`` (written, exactly the expected text), ``refused``
(nothing written, the reason sent back), ``wrong`` (anything else was written).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.agents.orchestrator import TaskSpec, run_task
from lsp_agent.config import Settings
from tests.agents.test_orchestrator import FakeSnapshot, make_client, make_workspace, review_rule
from tests.support.scripted_model import ScriptedModel

CORPUS = Path(__file__).resolve().parent / "corpus"
MARK = "@@@@ "
NOT_APPLIED = "# Edit not applied"
PARALLEL = 8  # cases run at once; every rule and request is told apart by the case's tag


@dataclass(frozen=True)
class Case:
    name: str
    file: Path
    path: str
    expect: str  # "applied" | "refused"
    original: str | None  # None: the file does not exist
    reply: str
    expected: str = ""
    reason: str = ""
    source: str = ""


@dataclass(frozen=True)
class Outcome:
    case: Case
    kind: str  # "right" | "refused" | "wrong"
    text: str | None  # what the task would write (None: nothing)
    refusal: str  # the first refusal sent back, "" when none

    @property
    def as_expected(self) -> bool:
        if self.case.expect == "applied":
            return self.kind == "right"
        return self.kind == "refused" and self.case.reason.lower() in self.refusal.lower()


def load_case(file: Path) -> Case:
    headers: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in file.read_text(encoding="utf-8").split("\n"):
        if line.startswith(MARK):
            current = sections.setdefault(line[len(MARK) :].strip(), [])
        elif current is not None:
            current.append(line)
        elif ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip()] = value.strip()

    def text(name: str) -> str | None:
        key = "reply-eof" if name == "reply" else "eof"
        no_newline = headers.get(key) == "no-newline"
        if name not in sections:
            return None
        body = sections[name]
        while body and body[-1] == "":  # the case file's own trailing blank lines
            body.pop()
        joined = "\n".join(body)
        return joined if no_newline or not body else joined + "\n"

    expect = headers.get("expect", "")
    if expect not in ("applied", "refused") or "path" not in headers or "reply" not in sections:
        raise ValueError(f"{file.name}: needs path, expect (applied|refused) and a reply section")
    expected = text("expected")
    if expect == "applied" and expected is None:
        raise ValueError(f"{file.name}: expect: applied needs an expected section")
    return Case(
        name=headers.get("name", file.stem),
        file=file,
        path=headers["path"],
        expect=expect,
        original=text("file"),
        reply=text("reply") or "",
        expected=expected or "",
        reason=headers.get("reason", ""),
        source=headers.get("source", ""),
    )


def load_corpus(directory: Path = CORPUS) -> list[Case]:
    return [load_case(f) for f in sorted(directory.glob("*.case"))]


async def run_case(case: Case, model: ScriptedModel, scratch: Path) -> Outcome:
    tag = f"corpus case [{case.file.stem}]"
    files = {case.path: case.original} if case.original is not None else {}
    files.setdefault("README.txt", "corpus workspace\n")
    index = make_workspace(scratch / case.file.stem, files)
    # A file the case creates is flagged new, as plans must (agents/plans.py).
    target = {"path": case.path, "instructions": tag, "new": case.original is None}
    plan = {"targets": [target], "notes": tag}
    model.add_rule(
        {
            "match": {"has_tool": "submit_plan", "contains": tag},
            "reply": {"tool_calls": [{"name": "submit_plan", "arguments": plan}]},
        }
    )
    model.add_rule(
        {
            "match": {"contains": tag, "last_contains": NOT_APPLIED},
            "reply": {"content": "NO CHANGES NEEDED: giving up on this case."},
        }
    )
    model.add_rule(
        {
            "match": {"contains": f"# Target file: {case.path}\n", "last_contains": tag},
            "reply": {"content": case.reply},
        }
    )
    result = await run_task(
        TaskSpec(instruction=tag, kind="fix"),
        index=index,
        snapshot=FakeSnapshot("corpus"),
        client=make_client(model),
        settings=Settings(),
        transcript_dir=scratch / "transcripts",
    )
    refusal = ""
    for request in model.requests:
        last = str(request.messages[-1].get("content") or "")
        if last.startswith(NOT_APPLIED) and any(
            tag in str(m.get("content")) for m in request.messages
        ):
            refusal = last
            break
    written = next((c.new_text for c in result.changes if c.path == case.path), None)
    if result.state not in ("succeeded", "no_changes"):
        raise AssertionError(f"{case.file.name}: task ended {result.state}: {result.error}")
    if written is None and not refusal:
        # Nothing written and nothing refused: right only for a no-op the case expects.
        same = case.expect == "applied" and case.expected == (case.original or "")
        kind = "right" if same else "wrong"
    elif written is None:
        kind = "refused"
    elif case.expect == "applied" and written == case.expected:
        kind = "right"
    else:
        kind = "wrong"
    return Outcome(case, kind, written, refusal)


async def run_corpus(cases: list[Case] | None = None) -> list[Outcome]:
    cases = load_corpus() if cases is None else cases
    with ScriptedModel() as model, tempfile.TemporaryDirectory() as tmp:
        model.add_rule(review_rule(True))
        slots = asyncio.Semaphore(PARALLEL)

        async def one(case: Case) -> Outcome:
            async with slots:
                return await run_case(case, model, Path(tmp))

        return list(await asyncio.gather(*(one(c) for c in cases)))


def figures(outcomes: list[Outcome]) -> dict[str, int]:
    counts = {"cases": len(outcomes), "right": 0, "refused": 0, "wrong": 0}
    for outcome in outcomes:
        counts[outcome.kind] += 1
    counts["as_expected"] = sum(o.as_expected for o in outcomes)
    return counts


def main() -> None:
    outcomes = asyncio.run(run_corpus())
    for o in outcomes:
        flag = "" if o.as_expected else "   <-- not as the case expects"
        print(f"{o.kind:8} {o.case.file.name}{flag}")
        if o.kind == "wrong" or not o.as_expected:
            print(f"         written: {o.text!r}\n         refusal: {o.refusal[:300]!r}")
    print(" ".join(f"{k}={v}" for k, v in figures(outcomes).items()))


if __name__ == "__main__":
    main()
