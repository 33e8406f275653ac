"""Goal runs: a planner turns a project goal into steps; each step is a verified task on the
run's own git worktree and branch, committed when done; the ledger (journaled) carries the run
across crashes and restarts. ``start.py`` begins or resumes a run, ``runner.py`` drives it."""
