#!/usr/bin/env bash
# Runs every test: C unit tests (ctest), integration and deployment tests
# against real gateways, Redis, nginx and HAProxy (pytest), the client's unit
# tests (node --test), browser tests in Debian's Chromium (pytest with
# Playwright for Python), container tests when a Docker engine answers, a
# smoke run of the benchmark tool, and Autobahn|Testsuite's fuzzing client
# against /echo (tests/conformance/autobahn.sh).
#
# Usage: tests/run.sh [--sanitize]
#   --sanitize  then builds again with AddressSanitizer and
#               UndefinedBehaviorSanitizer, runs the unit and integration
#               tests against that build, and runs each libFuzzer harness
#               for FUZZ_SECONDS (60) (what CI does).
# Installs what is missing first: Debian packages (bookworm, as root) and the
# pinned PyPI packages of tests/requirements.txt (tests/python-env.sh).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sanitize=0
[ "${1:-}" = "--sanitize" ] && sanitize=1

logs=$(mktemp -d /tmp/gateway-tests.XXXXXX)
summary=()
failed=0
passed_total=0
failed_total=0

# Runs one suite, keeps its output, and remembers its closing lines.
#   suite NAME PATTERN COMMAND...   (PATTERN: grep -E for the closing lines)
suite() {
  local name=$1 pattern=$2
  shift 2
  echo "==== $name: $*"
  local log="$logs/${name// /_}.log"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local closing
  closing=$(grep -E "$pattern" "$log" | tail -n 3)
  [ -n "$closing" ] || closing="(no summary line; exit status $rc)"
  summary+=("[$name] exit $rc" "$closing")
  if [ "$rc" -ne 0 ]; then
    failed=1
  fi
  count_results "$log"
}

# A suite that cannot run here: one line that says why, counted as neither.
#   skip NAME REASON
skip() {
  echo "==== $1: skipped: $2"
  summary+=("[$1] skipped: $2")
}

# Adds a suite's pass/fail counts to the totals (ctest, pytest, node).
count_results() {
  local log=$1 p=0 f=0 line
  if line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -n1); then
    local total fails
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    fails=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line")
    p=$((total - fails)) f=$fails
  elif line=$(grep -E "^=*[ ]*[0-9]+ (passed|failed|errors?).* in [0-9.]+s" "$log" | tail -n1); then
    p=$(grep -oE "[0-9]+ passed" <<<"$line" | awk '{s += $1} END {print s + 0}')
    f=$(grep -oE "[0-9]+ (failed|errors?)" <<<"$line" | awk '{s += $1} END {print s + 0}')
  elif line=$(grep -E "^[0-9]+ passed, [0-9]+ failed$" "$log" | tail -n1); then
    p=$(cut -d' ' -f1 <<<"$line") f=$(cut -d' ' -f3 <<<"$line")
  elif grep -qE "^# pass [0-9]+" "$log"; then
    p=$(grep -E "^# pass [0-9]+" "$log" | tail -n1 | grep -oE "[0-9]+")
    f=$(grep -E "^# fail [0-9]+" "$log" | tail -n1 | grep -oE "[0-9]+")
  fi
  passed_total=$((passed_total + ${p:-0}))
  failed_total=$((failed_total + ${f:-0}))
}

build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
    cmake --build "$dir" -j"$(nproc)"
}

# Each pass: unit tests, then the suites that run the built gateway.
run_pass() {
  local label=$1 dir=$2 full=$3
  suite "ctest$label" "tests passed|tests failed" \
    ctest --test-dir "$dir" --output-on-failure
  local pytest_dirs=(tests/integration)
  [ "$full" = 1 ] && [ -d tests/deploy ] && pytest_dirs+=(tests/deploy)
  suite "pytest$label" "$pytest_closing" \
    env GATEWAY_BIN="$root/$dir/gateway" "$python" -m pytest -q -p no:cacheprovider \
    "${pytest_dirs[@]}"
  if [ "$full" = 1 ]; then
    suite "node client" "^# (tests|pass|fail) [0-9]+" \
      timeout --kill-after=10 300 node --test tests/client/
    # timeout ends pytest (whose fixtures end their servers by PID) if
    # something hangs beyond every inner bound.
    suite "pytest e2e" "$pytest_closing" \
      env GATEWAY_BIN="$root/$dir/gateway" timeout --kill-after=20 900 \
      "$python" -m pytest -q tests/e2e
    if [ -d tests/containers ]; then
      if [ -n "$docker_version" ]; then
        suite "pytest containers" "$pytest_closing" "$python" -m pytest -q tests/containers
      else
        skip "pytest containers" "$docker_problem"
      fi
    fi
    suite "bench smoke" "^[0-9]+ passed, [0-9]+ failed$" \
      env GATEWAY_BIN="$root/$dir/gateway" CHATBENCH_BIN="$root/$dir/tests/bench/chatbench" \
      "$python" tests/bench/bench.py --smoke
    # Autobahn|Testsuite against /echo; its report stays in
    # $dir/autobahn-report/. The outer bound covers making its Python 2
    # chroot on a cold cache; wstest itself has AUTOBAHN_TIMEOUT (900 s).
    suite "autobahn" "^[0-9]+ passed, [0-9]+ failed$" \
      env GATEWAY_BIN="$root/$dir/gateway" AUTOBAHN_REPORT_DIR="$root/$dir/autobahn-report" \
      timeout --kill-after=30 1500 tests/conformance/autobahn.sh
    # The same against the gateway's default flags (limits as users run
    # them; category 9, which the defaults refuse by design, left out).
    suite "autobahn (default flags)" "^[0-9]+ passed, [0-9]+ failed$" \
      env GATEWAY_BIN="$root/$dir/gateway" AUTOBAHN_DEFAULT_FLAGS=1 \
      AUTOBAHN_REPORT_DIR="$root/$dir/autobahn-report-defaults" \
      timeout --kill-after=30 600 tests/conformance/autobahn.sh
  fi
}

"$root/deploy/install-deps.sh" || { echo "installing dependencies failed"; exit 1; }
python=$("$root/tests/python-env.sh") || { echo "installing tests/requirements.txt failed"; exit 1; }
pytest_closing="^=*[ ]*[0-9]+ (passed|failed|errors?).* in [0-9.]+s"
echo "==== python: $("$python" --version) ($python)"

# The container tests need a Docker engine that answers; without one they
# are skipped, with the reason, rather than failed or silently passed.
docker_version=
docker_problem=
if ! command -v docker >/dev/null; then
  docker_problem="no docker command (install docker.io and docker-compose)"
elif docker_version=$(timeout 20 docker info --format '{{.ServerVersion}}' 2>"$logs/docker-info.err") &&
  [ -n "$docker_version" ]; then
  echo "==== docker: engine $docker_version answers (docker info)"
else
  docker_version=
  docker_problem="the Docker engine does not answer: $(head -n1 "$logs/docker-info.err")"
  echo "==== docker: $docker_problem"
fi

echo "==== build (build/)"
if ! build build; then
  echo "build failed"
  exit 1
fi
run_pass "" build 1

if [ "$sanitize" = 1 ]; then
  echo "==== build with -fsanitize=address,undefined (build-asan/)"
  if build build-asan -DGATEWAY_SANITIZE=ON; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=98}
    run_pass " (asan+ubsan)" build-asan 0
    suite "fuzz" "^[0-9]+ passed, [0-9]+ failed" tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
  else
    summary+=("[asan build] failed")
    failed=1
  fi
fi

echo
echo "==== summary (logs in $logs)"
printf '%s\n' "${summary[@]}"
echo "$passed_total passed, $failed_total failed"
exit "$failed"
