"""The batch engine behind `lsp-agent refactor` and `lsp-agent fix`.

selection (PATH args -> files) -> plan (clusters, fix tasks) -> engine (journaled run with the
shared TaskRunner) -> apply (atomic, hash-checked) -> report (diff, JSON, exit code).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from typing import TextIO

from lsp_agent.batch.errors import UsageError
from lsp_agent.batch.options import BatchOptions
from lsp_agent.config import ConfigError

EXIT_USAGE = 2
EXIT_TERMINATED = 128 + 15  # the shell's code for a process ended by SIGTERM

__all__ = ["BatchOptions", "UsageError", "run_batch"]


def run_batch(options: BatchOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run a batch command; returns the exit code (0 ok, 1 some task failed, 2 usage/config)."""
    from lsp_agent.batch.engine import execute, prepare

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        prep = prepare(options, err)
        if not prep.tasks:
            print(f"lsp-agent {options.kind}: nothing to do (no tasks planned)", file=err)
            if options.output == "json":
                from lsp_agent.batch.report import report_json

                empty = report_json(
                    [],
                    run_id="",
                    root=str(prep.root),
                    command=options.kind,
                    instruction=options.instruction,
                    wall_s=0.0,
                    warnings=prep.warnings,
                )
                out.write(json.dumps(empty, indent=2) + "\n")
            return 0
        if options.dry_run:
            from lsp_agent.batch.dryrun import dry_run

            return dry_run(prep, out)
        return asyncio.run(execute(prep, out, err))
    except asyncio.CancelledError:  # SIGTERM (engine._cancel_on_sigterm)
        print(
            f"lsp-agent {options.kind}: terminated; running tasks were cancelled and journaled "
            "with what they spent: run the same command with --resume to finish",
            file=err,
        )
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(
            f"lsp-agent {options.kind}: interrupted; finished tasks are journaled (and applied, "
            "with --apply): run the same command with --resume to finish",
            file=err,
        )
        raise
    except UsageError as exc:
        print(f"lsp-agent {options.kind}: {exc}", file=err)
        return EXIT_USAGE
    except sqlite3.Error as exc:
        print(f"lsp-agent {options.kind}: cannot use the task journal: {exc}", file=err)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"lsp-agent {options.kind}: {exc}", file=err)
        print(
            f"lsp-agent {options.kind}: add --dry-run to see the plan without a model",
            file=err,
        )
        return EXIT_USAGE
