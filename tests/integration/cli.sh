#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The command line: help, version, usage errors and their exit codes, the man page covering
# every option and exit code, and `make install` honouring PREFIX and DESTDIR.
source "$(dirname "$0")/../tools/it-lib.sh"

"$MKMACHINE" --help >"$WORK/help" 2>&1
check "--help exits 0" test $? -eq 0
check "--help lists the commands" contains "$WORK/help" "check RECIPE"
"$MKMACHINE" --version >"$WORK/v" 2>&1
check "--version prints the version" grep -qE '^mkmachine [0-9]+\.[0-9]+\.[0-9]+$' "$WORK/v"

usage() {  # usage WHAT EXPECTED ARGS...
  local what=$1 text=$2; shift 2
  "$MKMACHINE" "$@" >"$WORK/u" 2>&1
  local rc=$?
  check "$what exits 2" test $rc -eq 2
  check "$what says why" contains "$WORK/u" "$text"
}
usage "no arguments" "no recipe given"
usage "an unknown command" "unknown command 'frobnicate'" frobnicate
usage "an unknown option" "unrecognized option" --frobnicate x.recipe
usage "a bad --jobs" "--jobs: expected a number from 1 to 64, got '0'" --jobs 0 x.recipe
usage "a missing recipe" "no-such.recipe" check no-such.recipe
usage "vercmp with one argument" "vercmp" vercmp 1.0
usage "build with two recipes" "expected exactly one RECIPE" build a.recipe b.recipe
SOURCE_DATE_EPOCH=yesterday "$MKMACHINE" check recipes/minimal.recipe >"$WORK/u" 2>&1
check "a bad SOURCE_DATE_EPOCH exits 2" test $? -eq 2

# A shared recipe cannot copy the builder's files into the machine it gets.
mkdir -p "$WORK/r"
printf '[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n[Hooks]\nCopy=/etc/shadow:/etc/stolen\n' >"$WORK/r/a.recipe"
"$MKMACHINE" check "$WORK/r/a.recipe" >"$WORK/u" 2>&1
check "Copy= of a host file outside the recipe's directory exits 2" test $? -eq 2
check "... and says the source must be beside the recipe" contains "$WORK/u" "a.recipe:7: [Hooks] Copy=: '/etc/shadow' is not beside the recipe"
ln -s /etc/passwd "$WORK/r/link"
printf '[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n[Hooks]\nRootAuthorizedKeys=link\n' >"$WORK/r/b.recipe"
"$MKMACHINE" check "$WORK/r/b.recipe" >"$WORK/u" 2>&1
check "RootAuthorizedKeys= through a symlink leading out of the recipe's directory exits 2" test $? -eq 2
check "... naming the key" contains "$WORK/u" "[Hooks] RootAuthorizedKeys=: '$WORK/r/link' is not beside the recipe"
# An Include= of an empty recipe in a directory below does not widen where the including
# recipe's sources may be.
printf '[Machine]\nName=x\nInclude=sub/empty.recipe\n[Bootstrap]\nDistribution=arch\nPackages=base\n[Hooks]\nCopy=/etc/passwd:/etc/stolen\n' \
  >"$WORK/r/c.recipe"
mkdir -p "$WORK/o" "$WORK/r/sub"; : >"$WORK/r/sub/empty.recipe"; echo secret >"$WORK/o/passwd"
sed -i "s|Copy=/etc/passwd|Copy=$WORK/o/passwd|" "$WORK/r/c.recipe"
"$MKMACHINE" check "$WORK/r/c.recipe" >"$WORK/u" 2>&1
check "Copy= beside an included file, not beside the recipe that names it, exits 2" test $? -eq 2
check "... saying so" contains "$WORK/u" "c.recipe:8: [Hooks] Copy=: '$WORK/o/passwd' is not beside the recipe that names it"
# Include= reads recipe files only: not a host file, nor a link named *.recipe that leads to one.
echo 'root:$6$HASHHASH:19000::::::' >"$WORK/o/shadow"
ln -sfn "$WORK/o/shadow" "$WORK/r/evil.recipe"
printf '[Machine]\nName=x\nInclude=%s\nInclude=evil.recipe\n[Bootstrap]\nDistribution=arch\nPackages=base\n' \
  "$WORK/o/shadow" >"$WORK/r/d.recipe"
"$MKMACHINE" check "$WORK/r/d.recipe" >"$WORK/u" 2>&1
check "Include= of a host file elsewhere exits 2" test $? -eq 2
check "... naming it" contains "$WORK/u" "d.recipe:3: [Machine] Include=: '$WORK/o/shadow' is not beside this recipe file: includes must be in its directory ($WORK/r) or below"
check "... and the link that leads out" contains "$WORK/u" "d.recipe:4: [Machine] Include=: '$WORK/r/evil.recipe' leads out of this recipe file's directory ($WORK/r): includes must be in it or below"
check "... showing nothing of it, nor where the link leads" bash -c "! grep -q HASH '$WORK/u' && ! grep -q 'leads to' '$WORK/u'"

# Every long option in the CLI and every exit code is documented in mkmachine(1).
grep -o '{ "[a-z-]*", [a-z_]*_argument' "$TOP/builder/cli.c" | sed 's/{ "\([a-z-]*\)".*/\1/' >"$WORK/opts"
check "the option table was found" test -s "$WORK/opts"
missing=""
while read -r o; do grep -qF -- "\\-\\-$o" "$TOP/docs/mkmachine.1.md" || missing="$missing $o"; done <"$WORK/opts"
check "mkmachine(1) documents every option${missing:+ (missing:$missing)}" test -z "$missing"
for code in 0 1 2 130; do check "mkmachine(1) documents exit status $code" grep -q "^\*\*$code\*\*$" "$TOP/docs/mkmachine.1.md"; done

# make install honours PREFIX and DESTDIR (and needs no root when DESTDIR is set).
if command -v pandoc >/dev/null; then
  make -C "$TOP" -s install PREFIX=/opt/mkm DESTDIR="$WORK/dest" >"$WORK/install.log" 2>&1
  check "make install succeeds" test $? -eq 0
  check "the binary is installed under DESTDIR/PREFIX" test -x "$WORK/dest/opt/mkm/bin/mkmachine"
  check "the three man pages are installed" test -s "$WORK/dest/opt/mkm/share/man/man1/mkmachine.1" -a -s "$WORK/dest/opt/mkm/share/man/man5/mkmachine.recipe.5" \
    -a -s "$WORK/dest/opt/mkm/share/man/man5/mkmachine.policy.5"
  check "the example recipes are installed" test -s "$WORK/dest/opt/mkm/share/mkmachine/recipes/mastodon.recipe"
  check "the man page renders" bash -c "man -l '$WORK/dest/opt/mkm/share/man/man1/mkmachine.1' 2>/dev/null | grep -q 'EXIT STATUS' || ! command -v man >/dev/null"
else
  echo "skipping the make install checks: pandoc is missing (make deps)"
fi
finish
