#!/usr/bin/env bash
# The run command: installs what is missing, builds the UI and the agent, starts the gateway on the
# embedded default (SQLite in ./data, the local backend, local accounts) at http://127.0.0.1:8000.
# Arguments go to `atrium serve` (e.g. --port 9000, --config atrium.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
# package.json's engines: >=20.19 <21 || >=22.12. Debian 12's own nodejs is Node 18, so say where to get one.
get_node="install Node.js 22 from NodeSource (curl -fsSL https://deb.nodesource.com/setup_22.x | bash - && apt-get install -y nodejs) or from https://nodejs.org/ (Debian 12's own nodejs package is Node 18, too old)"
if ! command -v node >/dev/null; then
  echo "atrium: Node.js 20.19 or later is needed and there is none on PATH: $get_node" >&2
  exit 1
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1)'; then
  echo "atrium: Node.js $(node --version) ($(command -v node)) is not supported (20.19 or later, or 22.12 or later): $get_node" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "atrium: npm is missing (it comes with Node.js from NodeSource or nodejs.org; Debian: apt-get install npm)" >&2; exit 1; }
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
