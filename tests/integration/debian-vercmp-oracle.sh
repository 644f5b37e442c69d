#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkmachine's Debian version comparison against dpkg's own, on real data: every Version: of
# bookworm's main/binary-amd64 index (from the host's mirror) and every version its relations
# ask for ("libc6 (>= 2.36)"). tests/tools/debvers.py does the bookkeeping; dpkg costs one
# process per question, so it is asked as little as possible:
#  1. a sample of SAMPLE versions (runs of neighbours, epochs, '~', random) goes through
#     `$MKMACHINE vercmp --debian -` in every pair (SAMPLE^2/2 pairs, one process); the answers
#     must form a total order, and dpkg confirms each neighbour pair of that order, which makes
#     dpkg's order of the sample ours: every pair agrees, by transitivity;
#  2. PAIRS direct pairs (random, and within one package: a Version against what other packages
#     ask of it, a binNMU against its source) are each confirmed by dpkg until DEADLINE.
# Also checks antisymmetry and the command line of --debian: the argument form, warnings for
# invalid versions, exit 2 on wrong usage.
#
# Tunables: MKMACHINE_DEBIAN_MIRROR, DEBVER_SAMPLE (1000), DEBVER_PAIRS (5000), DEBVER_SEED,
# DEBVER_DEADLINE (50): the direct pairs stop at that many seconds into the test, but get at
# least 10 s (a dpkg call costs 5 ms on an idle machine, 20 ms on a busy one).
set -euo pipefail
# shellcheck source=../tools/it-lib.sh
. "$TOP/tests/tools/it-lib.sh"

command -v dpkg >/dev/null || skip "skipped: dpkg is missing (the oracle)"

# The host's Debian mirror: $MKMACHINE_DEBIAN_MIRROR, else the first URI of apt's sources for
# bookworm (deb822 *.sources first, then the one-line form), else for any plain release suite.
# (A helper of this test's own; it-lib.sh may grow a shared one.)
debvers_mirror() {
  if [ -n "${MKMACHINE_DEBIAN_MIRROR:-}" ]; then
    echo "${MKMACHINE_DEBIAN_MIRROR%/}"
    return 0
  fi
  local suite uri f
  for suite in bookworm '[a-z]+'; do
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -r "$f" ] || continue
      uri=$(awk -v re="^$suite\$" '
        function flush() {
          if (deb && hit && !off && uri != "") { print uri; done = 1; exit }
          deb = hit = off = 0; uri = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        {
          k = tolower($1)
          if (k == "types:") for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1
          if (k == "suites:") for (i = 2; i <= NF; i++) if ($i ~ re) hit = 1
          if (k == "enabled:" && tolower($2) == "no") off = 1
          if (k == "uris:") uri = $2
        }
        END { if (!done) flush() }' "$f")
      [ -n "$uri" ] && { echo "${uri%/}"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -r "$f" ] || continue
      uri=$(sed -e 's/#.*//' -e 's/\[[^]]*\]//g' "$f" | awk -v re="^$suite\$" '$1 == "deb" && $3 ~ re { print $2; exit }')
      [ -n "$uri" ] && { echo "${uri%/}"; return 0; }
    done
  done
  return 1
}

MIRROR=$(debvers_mirror) || skip "skipped: no Debian mirror in apt's sources and MKMACHINE_DEBIAN_MIRROR is unset"
SAMPLE=${DEBVER_SAMPLE:-1000}
COUNT=${DEBVER_PAIRS:-5000}
SEED=${DEBVER_SEED:-20241206}
DEADLINE=${DEBVER_DEADLINE:-50}
TOOL=$TOP/tests/tools/debvers.py

if ! python3 "$TOOL" fetch "$MIRROR/dists/bookworm/main/binary-amd64/Packages.xz" "$WORK/index" >"$WORK/fetch.log" 2>&1; then
  cat "$WORK/fetch.log"
  skip "skipped: cannot download bookworm's Packages.xz from the host's mirror"
fi

echo "${SECONDS}s: index fetched"
# 1. Every pair of the sample, by us; neighbours of our order, by dpkg.
python3 "$TOOL" sample "$WORK/index" "$SAMPLE" "$SEED" >"$WORK/sample"
python3 "$TOOL" matrix "$WORK/sample" >"$WORK/matrix"
m=$(wc -l <"$WORK/matrix")
"$MKMACHINE" vercmp --debian - <"$WORK/matrix" >"$WORK/matrix.ours" 2>"$WORK/matrix.err"
check "$m pairs of $SAMPLE sampled versions answered" test "$(wc -l <"$WORK/matrix.ours")" -eq "$m"
check "no warnings for the index's versions" test ! -s "$WORK/matrix.err"
if python3 "$TOOL" chain "$WORK/sample" "$WORK/matrix.ours" >"$WORK/chain" 2>"$WORK/chain.err"; then
  ok "our answers for the $m pairs form a total order"
else
  bad "our answers for the sample are not a total order:"
  sed 's/^/    /' "$WORK/chain.err"
fi
"$MKMACHINE" vercmp --debian - <"$WORK/chain" >"$WORK/chain.ours"
echo "${SECONDS}s so far"
echo "neighbours in our order: $(sort "$WORK/chain.ours" | uniq -c | tr -s ' \n' ' ')"
python3 "$TOOL" oracle "$WORK/chain" "$WORK/chain.ours" 2 600 >"$WORK/chain.oracle" 2>&1 && rc=0 || rc=$?
c=$(sed -n 's/^checked //p' "$WORK/chain.oracle")
if [ "$rc" -eq 0 ] && [ "${c:-0}" -eq "$(wc -l <"$WORK/chain")" ] && [ "$c" -gt 0 ]; then
  ok "dpkg --compare-versions confirms all $c neighbours of our order, so all $m pairs agree"
else
  bad "dpkg disagrees on neighbours of our order (A B ours dpkg):"
  sed 's/^/    /' "$WORK/chain.oracle"
fi
echo "${SECONDS}s so far"

# 2. Direct pairs, each confirmed by dpkg.
python3 "$TOOL" pairs "$WORK/index" "$COUNT" "$SEED" >"$WORK/pairs" 2>"$WORK/pairs.log"
cat "$WORK/pairs.log"
n=$(wc -l <"$WORK/pairs")
check "at least 3000 direct pairs from the index ($n)" test "$n" -ge 3000
"$MKMACHINE" vercmp --debian - <"$WORK/pairs" >"$WORK/ours"
check "one answer per pair" test "$(wc -l <"$WORK/ours")" -eq "$n"
echo "answers: $(sort "$WORK/ours" | uniq -c | tr -s ' \n' ' ')"
for v in -1 0 1; do
  c=$(grep -cx -- "$v" "$WORK/ours" || true)
  check "outcome $v occurs ($c times)" test "$c" -ge 50
done
# Antisymmetry on every pair: B A must give the opposite answer.
awk '{ print $2, $1 }' "$WORK/pairs" | "$MKMACHINE" vercmp --debian - >"$WORK/ours.rev"
check "swapping every pair negates the answer" \
  test "$(paste -d ' ' "$WORK/ours" "$WORK/ours.rev" | awk '$1 != -$2' | wc -l)" -eq 0

budget=$((DEADLINE - SECONDS))
[ "$budget" -ge 10 ] || budget=10
echo "${SECONDS}s so far; direct pairs get ${budget}s"
start=$SECONDS
python3 "$TOOL" oracle "$WORK/pairs" "$WORK/ours" 2 "$budget" >"$WORK/oracle.out" 2>&1 && rc=0 || rc=$?
secs=$((SECONDS - start))
checked=$(sed -n 's/^checked //p' "$WORK/oracle.out")
if [ "$rc" -eq 0 ] && [ -n "$checked" ]; then
  ok "dpkg --compare-versions confirms $checked of $n direct pairs (${secs}s of dpkg calls)"
else
  bad "mkmachine and dpkg disagree on direct pairs (A B ours dpkg):"
  sed 's/^/    /' "$WORK/oracle.out"
fi
check "dpkg confirmed at least 100 direct pairs in ${budget}s (raise DEBVER_DEADLINE on a slow machine)" \
  test "${checked:-0}" -ge 100

# The argument form gives the batch form's answers.
check "vercmp --debian 1.0~rc1 1.0" test "$("$MKMACHINE" vercmp --debian 1.0~rc1 1.0)" = -1
check "vercmp --debian 1:0 99" test "$("$MKMACHINE" vercmp --debian 1:0 99)" = 1
check "vercmp --debian 1.0 1.0-0" test "$("$MKMACHINE" vercmp --debian 1.0 1.0-0)" = 0
# Without --debian it is still pacman's comparison (no '~' rule there).
check "vercmp 1.0~rc1 1.0 stays pacman's" test "$("$MKMACHINE" vercmp 1.0~rc1 1.0)" = 1

# An invalid version is compared anyway, with a warning on stderr only.
"$MKMACHINE" vercmp --debian foo 1.0 >"$WORK/out" 2>"$WORK/err"
check "invalid version: answer on stdout" test "$(cat "$WORK/out")" = 1
check "invalid version: warning names it" contains "$WORK/err" "version 'foo' is invalid (version number does not start with digit)"
printf '1.0 2.0\n1.0 a:b\n' | "$MKMACHINE" vercmp --debian - >"$WORK/out" 2>"$WORK/err"
check "invalid version in stdin: answers" test "$(tr '\n' ' ' <"$WORK/out")" = "-1 -1 "
check "invalid version in stdin: warning with line" contains "$WORK/err" "stdin line 2: version 'a:b' is invalid"

# Wrong usage: exit 2 with a message and nothing on stdout.
for args in "" "1" "1 2 3"; do
  set +e
  # shellcheck disable=SC2086
  "$MKMACHINE" vercmp --debian $args >"$WORK/out" 2>"$WORK/err"
  rc=$?
  set -e
  check "vercmp --debian '$args' exits 2" test "$rc" -eq 2
  check "vercmp --debian '$args' says why" contains "$WORK/err" "vercmp --debian: expected two versions or '-'"
  check "vercmp --debian '$args' prints nothing" test ! -s "$WORK/out"
done
set +e
printf '1.0 2.0\nonlyone\n' | "$MKMACHINE" vercmp --debian - >"$WORK/out" 2>"$WORK/err"
rc=$?
set -e
check "bad stdin line exits 2" test "$rc" -eq 2
check "bad stdin line is named" contains "$WORK/err" "stdin line 2: expected two versions"

finish
