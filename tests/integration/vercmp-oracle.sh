#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkmachine's vercmp against pacman's own: thousands of random version pairs (fixed seed, see
# tests/tools/genvers.py) go through `$MKMACHINE vercmp -` once and through the real vercmp
# (Debian's makepkg package) one call per pair; any difference fails and the first ones are shown.
# Also checks the command-line contract: one pair as arguments, and exit 2 on wrong usage.
set -euo pipefail
: "${MKMACHINE:?}"
ORACLE=${VERCMP_ORACLE:-/usr/bin/vercmp}
if [ ! -x "$ORACLE" ]; then
  echo "skip: $ORACLE is missing (install Debian's makepkg package)"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
COUNT=${VERCMP_PAIRS:-6000}

python3 "$TOP/tests/tools/genvers.py" "$COUNT" 20241129 >"$tmp/pairs"
n=$(wc -l <"$tmp/pairs")
[ "$n" -ge 5000 ] || { echo "FAIL: only $n pairs generated"; exit 1; }

"$MKMACHINE" vercmp - <"$tmp/pairs" >"$tmp/ours"

# One oracle process per pair; read with IFS=' ' so each side stays one word.
while IFS=' ' read -r a b; do
  "$ORACLE" "$a" "$b"
done <"$tmp/pairs" >"$tmp/theirs"

[ "$(wc -l <"$tmp/ours")" -eq "$n" ] || { echo "FAIL: mkmachine printed $(wc -l <"$tmp/ours") results for $n pairs"; exit 1; }
[ "$(wc -l <"$tmp/theirs")" -eq "$n" ] || { echo "FAIL: the oracle printed $(wc -l <"$tmp/theirs") results for $n pairs"; exit 1; }

paste -d ' ' "$tmp/pairs" "$tmp/ours" "$tmp/theirs" | awk '$3 != $4' >"$tmp/diff" || true
if [ -s "$tmp/diff" ]; then
  echo "FAIL: $(wc -l <"$tmp/diff") of $n pairs differ (A B ours pacman):"
  head -n 20 "$tmp/diff"
  exit 1
fi
echo "ok $n pairs agree with $ORACLE ($(sort "$tmp/ours" | uniq -c | tr -s ' \n' ' '))"

# The spread must be real: every outcome occurs often.
for v in -1 0 1; do
  c=$(grep -cx -- "$v" "$tmp/ours" || true)
  [ "$c" -ge 200 ] || { echo "FAIL: only $c results of $v; the generator lost its variety"; exit 1; }
done
echo "ok every outcome is well represented"

# Argument form agrees with stdin form, including a version that starts with '-'.
[ "$("$MKMACHINE" vercmp 1:1.0 2.0)" = 1 ] || { echo "FAIL: vercmp 1:1.0 2.0"; exit 1; }
[ "$("$MKMACHINE" vercmp -- 1)" = "$("$ORACLE" -- 1)" ] || { echo "FAIL: vercmp -- 1"; exit 1; }
echo "ok argument form"

# Wrong usage: exit 2 with a message.
for args in "" "1" "1 2 3"; do
  set +e
  # shellcheck disable=SC2086
  "$MKMACHINE" vercmp $args >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || { echo "FAIL: vercmp '$args' exited $rc, want 2"; exit 1; }
  grep -q "expected two versions or '-'" "$tmp/err" || { echo "FAIL: vercmp '$args' message:"; cat "$tmp/err"; exit 1; }
  [ ! -s "$tmp/out" ] || { echo "FAIL: vercmp '$args' printed on stdout"; exit 1; }
done
set +e
printf '1.0 2.0\nonlyone\n' | "$MKMACHINE" vercmp - >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "stdin line 2: expected two versions" "$tmp/err" \
  || { echo "FAIL: bad stdin line: rc=$rc"; cat "$tmp/err"; exit 1; }
echo "ok usage errors exit 2"
