#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make fuzz-smoke: run each libFuzzer target given on the command line (build/fuzz/fuzz-NAME) for
# FUZZ_SECONDS on its seeds (tests/fuzz/corpus/NAME, read only) plus what earlier runs found
# (build/fuzz/corpus/NAME). A crash, leak, timeout or out-of-memory fails the run; the input that
# did it is kept as build/fuzz/artifacts/NAME-* and its report is shown. One line per target:
#   PASS  fuzz-lock       60s  1234567 runs  cov 812
# Extra libFuzzer flags can be given in FUZZ_FLAGS (e.g. FUZZ_FLAGS=-jobs=2).
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_EACH=${FUZZ_SECONDS:-60}
OUT=${FUZZ_OUT:-$TOP/build/fuzz}
failed=()
for bin in "$@"; do
  name=$(basename "$bin")
  short=${name#fuzz-}
  seeds=$TOP/tests/fuzz/corpus/$short
  work=$OUT/corpus/$short
  log=$OUT/logs/$short.log
  mkdir -p "$work" "$OUT/artifacts" "$OUT/logs"
  rm -f "$OUT/artifacts/$short-"*
  dirs=("$work")
  if [ -d "$seeds" ]; then dirs+=("$seeds"); else echo "warning: $name has no seed corpus ($seeds)"; fi
  # -timeout: one input taking longer is a finding (a hang), as is an RSS over the limit.
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/$short-" ${FUZZ_FLAGS:-} "${dirs[@]}" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  if [ $rc -eq 0 ]; then
    printf 'PASS  %-22s %4ss  %10s runs  %6s/s  cov %s\n' "$name" "$SECONDS_EACH" "${runs:-?}" "${secs:-?}" "${cov:-?}"
  else
    failed+=("$name")
    printf 'FAIL  %-22s exit %s (log %s)\n' "$name" "$rc" "$log"
    grep -A40 -m1 '^==[0-9]*==\|^SUMMARY\|ERROR: libFuzzer\|runtime error' "$log" | head -n 60 | sed 's/^/    | /'
    ls "$OUT/artifacts/$short-"* 2>/dev/null | sed 's/^/    input: /'
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: failed: ${failed[*]}"
  exit 1
fi
echo "fuzz-smoke: $# targets passed"
