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
# The failed tests of every vitest run, listed again just before the last line.
failures=$(mktemp /tmp/atrium-failures-XXXX)
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
# The second run (the suites on PostgreSQL) runs beside the first on a Slurm cluster of its own, so
# that a test stopping slurmctld or filling a node in one run cannot touch the other.
PG_CLUSTER_BASE="${CLUSTER_BASE}-pg"
pg_cluster() { CLUSTER_NAME=atriumpg CLUSTER_BASE="$PG_CLUSTER_BASE" CLUSTER_PORT=6837 NODE_PREFIX=pgnode bash "$root/scripts/cluster.sh" "$@"; }
pg_run_pid=
cleanup() {
  [ -n "$pg_run_pid" ] && kill -- "-$pg_run_pid" 2>/dev/null
  bash "$root/scripts/cluster.sh" down >/dev/null 2>&1 || true
  pg_cluster down >/dev/null 2>&1 || true
  bash "$root/scripts/postgres.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash scripts/cluster.sh up || { echo "FAILED: the test cluster did not start"; failed=$((failed + 1)); }
pg_cluster up || { echo "FAILED: the second test cluster did not start"; failed=$((failed + 1)); }

step "PostgreSQL"
if bash scripts/postgres.sh up; then
  ATRIUM_TEST_POSTGRES_URL=$(bash scripts/postgres.sh url)
  export ATRIUM_TEST_POSTGRES_URL
else
  echo "FAILED: PostgreSQL did not start"; failed=$((failed + 1))
fi

# One vitest run (its arguments after the first, which names the file its counts go to): its tests
# counted from its JSON report; a run that failed without a failed test (a crash, a file that did not
# load) counts as one failure.
vitest_counted() {
  local counts=$1 report vitest_rc vp vf
  shift
  report=$(mktemp /tmp/atrium-vitest-XXXX.json)
  npx vitest run "$@" --reporter=default --reporter=json --outputFile.json="$report"
  vitest_rc=$?
  read -r vp vf < <(node -e '
    const fs = require("fs");
    try { const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
          const rel = (f) => f.name.replace(/.*\/test\//, "test/");
          // Each failed test with the first lines of its error (or the file, when it failed without a
          // failed test), for the summary at the very end (a CI log is often read from its tail only).
          for (const f of r.testResults) {
            const failed = f.assertionResults.filter((t) => t.status === "failed");
            if (f.status === "failed" && f.message && !failed.length)
              fs.appendFileSync(process.argv[2], `FAILED: ${rel(f)}\n    ${f.message.split("\n")[0].slice(0, 400)}\n`);
            for (const t of failed) {
              const why = (t.failureMessages[0] || "").split("\n").slice(0, 3).join(" | ").slice(0, 400);
              fs.appendFileSync(process.argv[2], `FAILED: ${rel(f)} > ${t.fullName}\n    ${why}\n`);
            }
          }
          // The slowest files, to stderr: where the time of the test command goes.
          const files = r.testResults.map((f) => [f.endTime - f.startTime, rel(f)]);
          files.sort((a, b) => b[0] - a[0]);
          console.error("slowest test files: " + files.slice(0, 12).map(([ms, n]) => `${n} ${Math.round(ms / 1000)} s`).join(", "));
          // A skipped test counts as failed: this command sets up everything the tests need (the
          // clusters, PostgreSQL), so a skip is a test that did not run when it should have.
          const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
          if (skipped) console.error(`FAILED: ${skipped} tests skipped (see the SKIPPED lines above)`);
          console.log(r.numPassedTests, r.numFailedTests + (r.numRuntimeErrorCount || 0) + skipped); }
    catch { console.log(0, 1); }' "$report" "$failures")
  if [ "$vitest_rc" -ne 0 ] && [ "$vf" -eq 0 ]; then vf=1; echo "FAILED: vitest exited $vitest_rc"; fi
  echo "$vp $vf" >"$counts"
  rm -f "$report"
}
add_counts() {
  local vp vf
  read -r vp vf <"$1" 2>/dev/null || { vp=0; vf=1; echo "FAILED: no counts in $1"; }
  passed=$((passed + vp)); failed=$((failed + vf))
}

# A second lane beside the first, on the second cluster, its output shown after the first's: the
# suites of sessions (local and Slurm), jobs and security a second time with every gateway on
# PostgreSQL (the first lane has them on SQLite), then a few files that wait long on the scheduler
# (LANE2, left out of the first lane). Both lanes together keep the command near 25 minutes.
LANE2=(test/e2e/node-failure.test.ts test/e2e/private-checkout.test.ts test/e2e/slurm-adapter.test.ts
  test/e2e/database.test.ts test/e2e/deploy.test.ts test/e2e/ha.test.ts test/e2e/idle.test.ts
  test/e2e/history.test.ts test/e2e/usage-quotas.test.ts test/e2e/walltime-extension.test.ts
  test/e2e/project-access.test.ts)
lane2_log=$(mktemp /tmp/atrium-lane2-XXXX.log)
pg_counts=$(mktemp /tmp/atrium-pg-counts-XXXX)
lane2_counts=$(mktemp /tmp/atrium-lane2-counts-XXXX)
if [ -z "${ATRIUM_TEST_POSTGRES_URL:-}" ]; then
  echo "FAILED: no PostgreSQL for the second run"; failed=$((failed + 1)); echo "0 0" >"$pg_counts"
fi
step "second lane, in the background (output below)"
# Its own process group (job control on just for this), so that an interrupted run stops it whole.
set -m
(
  export ATRIUM_TEST_CLUSTER_BASE="$PG_CLUSTER_BASE"
  if [ -n "${ATRIUM_TEST_POSTGRES_URL:-}" ]; then
    echo "== sessions, jobs and security on PostgreSQL"
    ATRIUM_TEST_DB=postgres vitest_counted "$pg_counts" --project e2e test/e2e/local-sessions.test.ts \
      test/e2e/slurm-sessions.test.ts test/e2e/jobs.test.ts test/e2e/security.test.ts
  fi
  echo "== ${LANE2[*]}"
  vitest_counted "$lane2_counts" --project e2e "${LANE2[@]}"
) >"$lane2_log" 2>&1 &
pg_run_pid=$!
set +m

step "unit and end-to-end tests"
main_counts=$(mktemp /tmp/atrium-main-counts-XXXX)
excludes=()
for f in "${LANE2[@]}"; do excludes+=(--exclude "$f"); done
vitest_counted "$main_counts" "${excludes[@]}"
add_counts "$main_counts"

wait "$pg_run_pid"
pg_run_pid=
step "the second lane (run beside the first)"
cat "$lane2_log"
add_counts "$pg_counts"
add_counts "$lane2_counts"
rm -f "$lane2_log" "$pg_counts" "$lane2_counts" "$main_counts"

step "done"
if [ -s "$failures" ]; then echo "failed tests (their output is above):"; cat "$failures"; fi
rm -f "$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
