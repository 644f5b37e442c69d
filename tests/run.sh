#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test runner: runs each cmocka binary and each integration script given on the command line,
# prints one line per test file and a closing "N passed, N failed, N skipped" line.
# An integration script passes with exit 0, skips with exit 77 (its last output line says why),
# and fails otherwise. A cmocka binary passes with exit 0; one whose cases all called skip() is
# reported as skipped, with the last line the first skipped case printed as the reason, and one
# with some skipped cases shows how many. Output of failing tests is shown; passing output goes
# to $LOGDIR.
set -u
: "${MKMACHINE:?MKMACHINE must name the binary under test}"
export MKMACHINE
export TOP=$(cd "$(dirname "$0")/.." && pwd)
LOGDIR=${LOGDIR:-$(mktemp -d /tmp/mkm-tests.XXXXXX)}
mkdir -p "$LOGDIR"
export LOGDIR
passed=0 failed=0 skipped=0

# cmocka's log: "CASES SKIPPED REASON" (REASON: what the first skipped case printed last, or
# its name). A case is "[ RUN      ] X" ... "[  SKIPPED ] X"; the summary cmocka prints on stderr
# repeats "[  SKIPPED ] X" after no RUN line and is not counted again.
cmocka_counts() {
  awk '
    /^\[ RUN      \] / { cur = substr($0, 14); last = ""; cases++; next }
    /^\[  SKIPPED \] / { x = substr($0, 14)
                          if (cur != "" && x == cur) { skipped++; if (why == "") why = (last != "" ? last : "skip() in " x) }
                          cur = ""; next }
    /^\[       OK \] |^\[  FAILED  \] |^\[  ERROR   \] / { cur = ""; next }
    cur != "" && NF > 0 { last = $0 }
    END { printf "%d %d %s\n", cases, skipped, why }' "$1"
}
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
  cases=0 nskip=0 why=
  [[ $t == *.sh ]] || read -r cases nskip why < <(cmocka_counts "$log")
  if [ $rc -eq 0 ] && [ "$cases" -gt 0 ] && [ "$nskip" -eq "$cases" ]; then
    skipped=$((skipped + 1))
    printf 'SKIP  %-40s all %s cases skipped: %s\n' "$name" "$cases" "$why"
  elif [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    n=$(grep -c '^\[       OK \]\|^ok ' "$log" || true)
    if [ "$nskip" -gt 0 ]; then
      printf 'PASS  %-40s %3ss  (%s cases, %s skipped: %s)\n' "$name" "$secs" "$cases" "$nskip" "$why"
    else
      printf 'PASS  %-40s %3ss  %s\n' "$name" "$secs" "${n:+($n cases)}"
    fi
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
