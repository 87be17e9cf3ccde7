#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang under ASan and UBSan and runs
# each for SECONDS (default 60) from a scratch copy of its seed corpus.
# Prints one line per harness, then "N passed, N failed"; exits non-zero if
# a harness found anything (crash, sanitizer report, leak, timeout).
#
# Usage: tests/fuzz/run.sh [SECONDS] [HARNESS...]
# Environment: FUZZ_BUILD_DIR (default tests/fuzz/build-fuzz, git-ignored),
# where findings are kept under artifacts/ with each harness's log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
all=(fuzz_frame fuzz_config fuzz_auth)

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS] [HARNESS...]   (harnesses: ${all[*]})" >&2
    exit 2
fi
(($# > 0)) && shift
harnesses=("${@:-${all[@]}}")
for h in "${harnesses[@]}"; do
    if [[ ! -d $here/corpus/$h ]]; then
        echo "unknown harness: $h (harnesses: ${all[*]})" >&2
        exit 2
    fi
done

for tool in clang cmake pkg-config; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool not found: run deploy/install-deps.sh" >&2
        exit 2
    fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# clang alone is not enough: the fuzzer runtime comes in libclang-rt.
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' >"$work/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$work/probe.c" -o "$work/probe" 2>"$work/probe.log"; then
    cat "$work/probe.log" >&2
    echo "clang cannot link libFuzzer: install libclang-rt-dev (deploy/install-deps.sh)" >&2
    exit 2
fi

build=${FUZZ_BUILD_DIR:-$here/build-fuzz}
artifacts=$build/artifacts
cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER=clang >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log" >&2; exit 2; }
cmake --build "$build" -j "$(nproc)" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; exit 2; }
mkdir -p "$artifacts"

passed=0 failed=0
for h in "${harnesses[@]}"; do
    mkdir "$work/$h"
    cp -R "$here/corpus/$h/." "$work/$h/"
    log=$build/$h.log
    flags=(-max_len=8192 -timeout=10 -max_total_time="$seconds" -print_final_stats=1
        -artifact_prefix="$artifacts/$h-")
    [[ -f $here/$h.dict ]] && flags+=(-dict="$here/$h.dict")
    # New inputs go to the first directory; the known findings are replayed
    # from the second, so one that is not fixed fails at once.
    dirs=("$work/$h")
    [[ -d $here/crashers/$h ]] && dirs+=("$here/crashers/$h")
    rc=0
    # libFuzzer stops itself after -max_total_time; the outer limit only
    # catches a harness stuck where libFuzzer's own timeout cannot act.
    timeout --kill-after=10 $((seconds + 120)) "$build/$h" "${flags[@]}" "${dirs[@]}" \
        >"$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
    if ((rc == 0)); then
        passed=$((passed + 1))
        echo "$h: passed (${runs:-?} runs, coverage ${cov:-?} edges, ${seconds}s)"
    else
        failed=$((failed + 1))
        what=$(grep -m 1 -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_[a-z]+: |.*runtime error:)' "$log" || true)
        unit=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
        echo "$h: FAILED (exit $rc): ${what:-see $log}"
        echo "    input: ${unit:-none written}; log: $log"
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
