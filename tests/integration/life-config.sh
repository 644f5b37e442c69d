#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The host's setting for how many generations are kept (issue 9: "how many are kept is a
# setting"): HOST/etc/mkmachine/mkmachine.conf [Generations] Keep=N, overridden by
# --keep-generations; a bad file is refused naming its line.
source "$(dirname "$0")/../tools/it-lib.sh"

arch_fixture
HOST=$WORK/host
M=$HOST/var/lib/machines
N=cfg
mkm() { "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" --systemd-version 252 "$@"; }
cat >"$WORK/$N.recipe" <<R
[Machine]
Name=$N

[Bootstrap]
Distribution=arch
Mirror=file://$FX/repo/\$repo/os/\$arch
Repositories=core extra
Packages=base-test
Keyring=$FX/keyring
R
kept() { ls -A "$M" | grep -c "^\.#$N\.gen-[0-9]*\$"; }
mkdir -p "$HOST/etc/mkmachine"

printf '# three older generations\n[Generations]\nKeep=3\n' >"$HOST/etc/mkmachine/mkmachine.conf"
ok_all=1
for i in 1 2 3 4 5; do mkm -q "$WORK/$N.recipe" >/dev/null 2>"$WORK/b$i.log" || { cat "$WORK/b$i.log"; ok_all=0; }; done
check "five builds succeed" test $ok_all -eq 1
check "Keep=3 in mkmachine.conf: three older generations are kept" test "$(kept)" -eq 3

mkm -q --keep-generations 1 "$WORK/$N.recipe" >/dev/null 2>"$WORK/b6.log"
check "--keep-generations 1 overrides the file: one older generation is kept" test "$(kept)" -eq 1

printf '[Generations]\nKeep=0\n' >"$HOST/etc/mkmachine/mkmachine.conf"
mkm -q "$WORK/$N.recipe" >/dev/null 2>"$WORK/b7.log"
check "Keep=0: only the live tree is left" test "$(kept)" -eq 0

printf '[Generations]\n\nKeep=many\n' >"$HOST/etc/mkmachine/mkmachine.conf"
mkm -q "$WORK/$N.recipe" >/dev/null 2>"$WORK/bad.log"
check "a bad Keep= is a usage error (exit 2)" test $? -eq 2
check "naming the file, the line and what was expected" \
  contains "$WORK/bad.log" "$HOST/etc/mkmachine/mkmachine.conf:3: [Generations] Keep=: expected a number from 0 to 100, got 'many'"
printf '[Build]\nKeep=1\n' >"$HOST/etc/mkmachine/mkmachine.conf"
mkm -q "$WORK/$N.recipe" >/dev/null 2>"$WORK/bad2.log"
check "an unknown section is refused, naming its line" contains "$WORK/bad2.log" "mkmachine.conf:1: [Build]: unknown section"
finish
