#!/usr/bin/env bash
# The run command: installs what is missing, builds the UI and the agent, starts the gateway on the
# embedded default (SQLite in ./data, the local backend, local accounts) at http://127.0.0.1:8000.
# Arguments go to `atrium serve` (e.g. --port 9000, --config atrium.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "atrium: Node.js 20 or later is needed (Debian: apt-get install nodejs)" >&2; exit 1; }
bash scripts/deps.sh run || echo "atrium: continuing without them: Jupyter sessions will not start until they are installed"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "atrium: installing npm dependencies (about a minute: native modules compile)"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ ! -f dist/web/index.html ] || [ -n "$(find src/web src/agent -newer dist/web/index.html -print -quit 2>/dev/null)" ]; then
  echo "atrium: building the web UI and the session agent"
  npm run --silent build
fi
exec ./bin/atrium serve "$@"
