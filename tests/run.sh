#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test runner: runs each cmocka binary and each integration script given on the command line,
# prints one line per test file and a closing "N passed, N failed, N skipped" line.
# An integration script passes with exit 0, skips with exit 77 (its last output line says why),
# and fails otherwise. Output of failing tests is shown; passing output goes to $LOGDIR.
set -u
: "${MKMACHINE:?MKMACHINE must name the binary under test}"
export MKMACHINE
export TOP=$(cd "$(dirname "$0")/.." && pwd)
LOGDIR=${LOGDIR:-$(mktemp -d /tmp/mkm-tests.XXXXXX)}
export LOGDIR
passed=0 failed=0 skipped=0
failed_names=()
for t in "$@"; do
  name=$(basename "$t")
  log="$LOGDIR/$name.log"
  start=$(date +%s)
  if [[ $t == *.sh ]]; then
    ( cd "$TOP" && bash "$t" ) >"$log" 2>&1
  else
    ( cd "$TOP" && "$t" ) >"$log" 2>&1
  fi
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    n=$(grep -c '^\[       OK \]\|^ok ' "$log" || true)
    printf 'PASS  %-40s %3ss  %s\n' "$name" "$secs" "${n:+($n cases)}"
  elif [ $rc -eq 77 ]; then
    skipped=$((skipped + 1))
    printf 'SKIP  %-40s %s\n' "$name" "$(tail -n 1 "$log")"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    printf 'FAIL  %-40s exit %s\n' "$name" "$rc"
    sed 's/^/    | /' "$log" | tail -n 60
  fi
done
echo "logs: $LOGDIR"
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
