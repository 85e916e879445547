#!/usr/bin/env bash
# The test command: sets up everything the tests need (Debian packages, npm modules, the build, a
# throwaway Slurm cluster, a throwaway PostgreSQL), then runs type-check, lint, unit and end-to-end
# tests, and prints "N passed, N failed". Run as root on Debian 12. Leaves nothing running.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
t0=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - t0 )) s)"; }

step "system packages"
bash scripts/deps.sh test || exit 1
step "npm modules"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error || exit 1
fi
step "build"
npm run --silent build || exit 1
step "apps for the app tests (code-server, desktop, Shiny)"
bash scripts/apps.sh install code-server desktop shiny || exit 1

passed=0; failed=0
check() {
  local name=$1; shift
  step "$name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name"; fi
}
check "type-check" npx tsc -p tsconfig.json --noEmit
check "lint" npx biome check src test bench scripts
check "layers (import rules of docs/architecture.md)" npx depcruise src --config .dependency-cruiser.cjs

step "test cluster"
export CLUSTER_NAME=atrium CLUSTER_BASE="${ATRIUM_TEST_CLUSTER_BASE:-/tmp/atrium-slurm-atrium}"
export ATRIUM_TEST_CLUSTER_BASE="$CLUSTER_BASE"
export POSTGRES_BASE="${ATRIUM_TEST_POSTGRES_BASE:-/tmp/atrium-postgres}" POSTGRES_PORT="${ATRIUM_TEST_POSTGRES_PORT:-55432}"
cleanup() {
  bash "$root/scripts/cluster.sh" down >/dev/null 2>&1 || true
  bash "$root/scripts/postgres.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash scripts/cluster.sh up || { echo "FAILED: the test cluster did not start"; failed=$((failed + 1)); }

step "PostgreSQL"
if bash scripts/postgres.sh up; then
  ATRIUM_TEST_POSTGRES_URL=$(bash scripts/postgres.sh url)
  export ATRIUM_TEST_POSTGRES_URL
else
  echo "FAILED: PostgreSQL did not start"; failed=$((failed + 1))
fi

# One vitest run (its arguments given), its tests added to the counts from its JSON report; a run that
# failed without a failed test (a crash, a file that did not load) counts as one failure.
vitest_counted() {
  local report vitest_rc vp vf
  report=$(mktemp /tmp/atrium-vitest-XXXX.json)
  npx vitest run "$@" --reporter=default --reporter=json --outputFile.json="$report"
  vitest_rc=$?
  read -r vp vf < <(node -e '
    const fs = require("fs");
    try { const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
          // The slowest files, to stderr: where the time of the test command goes.
          const files = r.testResults.map((f) => [f.endTime - f.startTime, f.name.replace(/.*\/test\//, "test/")]);
          files.sort((a, b) => b[0] - a[0]);
          console.error("slowest test files: " + files.slice(0, 12).map(([ms, n]) => `${n} ${Math.round(ms / 1000)} s`).join(", "));
          console.log(r.numPassedTests, r.numFailedTests + (r.numRuntimeErrorCount || 0)); }
    catch { console.log(0, 1); }' "$report")
  passed=$((passed + vp)); failed=$((failed + vf))
  if [ "$vitest_rc" -ne 0 ] && [ "$vf" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: vitest exited $vitest_rc"; fi
  rm -f "$report"
}

step "unit and end-to-end tests"
vitest_counted

# The suites of sessions (local and Slurm), jobs and security once more, with every gateway on
# PostgreSQL (the run above has them on SQLite).
step "sessions, jobs and security on PostgreSQL"
if [ -n "${ATRIUM_TEST_POSTGRES_URL:-}" ]; then
  ATRIUM_TEST_DB=postgres vitest_counted --project e2e test/e2e/local-sessions.test.ts \
    test/e2e/slurm-sessions.test.ts test/e2e/jobs.test.ts test/e2e/security.test.ts
else
  echo "FAILED: no PostgreSQL for the second run"; failed=$((failed + 1))
fi

step "done"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
