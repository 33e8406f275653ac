"""lsp-agent: a language server that turns code actions into multi-agent fix and refactor tasks."""

from pathlib import Path as _Path

__version__ = "0.1.0"

# handlers/ lives at the repository root and installs as lsp_agent.handlers (pyproject's
# package-dir). Imported from a checkout (tests run there, or PYTHONPATH points at it) while
# the project is installed non-editable, this package is the checkout's lsp_agent/, which has
# no handlers/ below it: look for lsp_agent.handlers at the checkout's root too.
_checkout = _Path(__file__).resolve().parent.parent
if (
    not (_Path(__file__).parent / "handlers").is_dir()
    and (_checkout / "handlers" / "__init__.py").is_file()
):
    __path__.append(str(_checkout))
