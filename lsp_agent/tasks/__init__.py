"""Tasks, shared by the language server and the batch command.

- ``model``: ``Task`` and ``TaskState``, and ``task_summary``, the shape clients see;
- ``journal``: ``TaskJournal``, the SQLite record of tasks and runs, with its migrations;
- ``runner``: ``TaskRunner``, which runs tasks a few at a time and journals every transition.

The public names are importable from the package itself.
"""

from lsp_agent.tasks.journal import RunRecord, TaskJournal
from lsp_agent.tasks.model import (
    USAGE_KEYS,
    ListedTask,
    Task,
    TaskState,
    new_task_id,
    task_summary,
    to_jsonable,
    usage_dict,
)
from lsp_agent.tasks.runner import Listener, ProgressCallback, TaskRunner, Work

__all__ = [
    "USAGE_KEYS",
    "ListedTask",
    "Listener",
    "ProgressCallback",
    "RunRecord",
    "Task",
    "TaskJournal",
    "TaskRunner",
    "TaskState",
    "Work",
    "new_task_id",
    "task_summary",
    "to_jsonable",
    "usage_dict",
]
