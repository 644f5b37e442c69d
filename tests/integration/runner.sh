#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test runner itself (tests/run.sh): a cmocka binary whose cases all call skip() is reported
# as SKIP with its reason, not PASS; one with some skipped cases shows the count; failures and
# exit 77 scripts are reported as before, and the closing counts and exit status agree.
. "$(dirname "$0")/../tools/it-lib.sh"
command -v cc >/dev/null || skip "skipped: no C compiler"

prog() {  # prog NAME BODY...: a cmocka binary whose cases are the given function bodies
  local name=$1 i=0 list=
  shift
  {
    printf '#include <setjmp.h>\n#include <stdarg.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <cmocka.h>\n'
    for body in "$@"; do
      i=$((i + 1))
      printf 'static void case%d(void **s) { (void)s; %s }\n' "$i" "$body"
      list="$list cmocka_unit_test(case$i),"
    done
    printf 'int main(void) { const struct CMUnitTest t[] = {%s}; return cmocka_run_group_tests(t, NULL, NULL); }\n' "$list"
  } >"$WORK/$name.c"
  cc -o "$WORK/$name" "$WORK/$name.c" -lcmocka
}
prog allskip 'print_message("skipped: needs a TPM\n"); skip();' 'skip();'
prog silentskip 'skip();'
prog someskip 'print_message("skipped: no network\n"); skip();' 'assert_true(1);' 'assert_true(1);'
prog allpass 'assert_true(1);' 'assert_int_equal(2, 2);'
prog fails 'assert_int_equal(1, 2);' 'skip();'
printf 'echo "skipped: needs something"\nexit 77\n' >"$WORK/skip77.sh"

out=$WORK/out
LOGDIR=$WORK/logs MKMACHINE=$MKMACHINE "$TOP/tests/run.sh" "$WORK/allskip" "$WORK/silentskip" "$WORK/someskip" \
  "$WORK/allpass" "$WORK/fails" "$WORK/skip77.sh" >"$out" 2>&1
rc=$?
sed 's/^/    | /' "$out"
line() { grep -E "^$1 +$2 " "$out"; }
check "all cases skipped: SKIP with the first reason" grep -qE '^SKIP +allskip +all 2 cases skipped: skipped: needs a TPM$' "$out"
check "a skip without a message names the case" grep -qE '^SKIP +silentskip +all 1 cases skipped: skip\(\) in case1$' "$out"
check "some cases skipped: PASS with the count and reason" \
  grep -qE '^PASS +someskip +[0-9]+s +\(3 cases, 1 skipped: skipped: no network\)$' "$out"
check "no skips: PASS with the case count" grep -qE '^PASS +allpass +[0-9]+s +\(2 cases\)$' "$out"
check "a failing case fails the binary even if another skips" grep -qE '^FAIL +fails +exit' "$out"
check "exit 77 scripts still skip" grep -qE '^SKIP +skip77.sh +skipped: needs something$' "$out"
check "counts" grep -qx '2 passed, 1 failed, 3 skipped' "$out"
check "the runner fails when a test failed" test "$rc" -ne 0

# Without the failing binary the run succeeds, skips and all.
LOGDIR=$WORK/logs2 MKMACHINE=$MKMACHINE "$TOP/tests/run.sh" "$WORK/allskip" "$WORK/someskip" >"$out" 2>&1
rc=$?
check "skips alone do not fail the run" test "$rc" -eq 0
check "counts without failures" grep -qx '1 passed, 0 failed, 1 skipped' "$out"
finish
