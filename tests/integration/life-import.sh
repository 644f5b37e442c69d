#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkmachine import of hostile sources. The tarballs are made with bsdtar from a small tree (no
# build needed), with NAME.nspawn and SHA256SUMS as export writes them.
#  - A local tarball rewritten in place after it was checked against SHA256SUMS and before it is
#    extracted is refused: what is extracted must be what was verified (the rewrite happens at a
#    deterministic point, see below).
source "$(dirname "$0")/../tools/it-lib.sh"

need_root
command -v bsdtar >/dev/null || skip "skipped: bsdtar missing (make deps)"
HOST=$WORK/host
imp() { "$MKMACHINE" --host-root "$HOST" "$@"; }

# mk_export DIR CONTENT: DIR/m.tar.gz (a tree whose /etc/hostname says CONTENT), DIR/m.nspawn and
# DIR/SHA256SUMS listing both.
mk_export() {
  mkdir -p "$1/tree/etc"
  echo "$2" >"$1/tree/etc/hostname"
  bsdtar -C "$1/tree" --numeric-owner -czf "$1/m.tar.gz" .
  printf '[Exec]\nEnvironment=FROM=%s\n' "$2" >"$1/m.nspawn"
  (cd "$1" && sha256sum m.nspawn m.tar.gz >SHA256SUMS)
  rm -rf "$1/tree"
}
mk_export "$WORK/good" good
mk_export "$WORK/evil" evil
# The two tarballs differ, and the evil one is not what good/SHA256SUMS lists.
check "the fixture tarballs differ" bash -c "! cmp -s '$WORK/good/m.tar.gz' '$WORK/evil/m.tar.gz'"

imp import "$WORK/good/m.tar.gz" ok >/dev/null 2>"$WORK/ok.log"
check "the fixture export imports, checksums verified" contains "$WORK/ok.log" "(checksums verified)"
check "... with its tree" test "$(cat "$HOST/var/lib/machines/ok/etc/hostname" 2>/dev/null)" = good

# --- 1. the tarball rewritten between its check and its extraction ------------------------------
# import --trust-settings reads the host's policy after it has hashed the tarball and before it
# reads it again to extract it: with the policy a FIFO, the import waits in that read until the
# test has rewritten the tarball in place (same inode, as its owner can) and then written the
# policy. Deterministic: opening the FIFO for writing returns only once the import opened it.
cp -a "$WORK/good" "$WORK/race"
mkdir -p "$HOST/etc/mkmachine"
mkfifo "$HOST/etc/mkmachine/policy.conf"
imp import --trust-settings "$WORK/race/m.tar.gz" raced >/dev/null 2>"$WORK/race.log" &
pid=$!
CLEANUP+=("kill $pid 2>/dev/null")
timeout 60 bash -c 'exec 3>"$1" && cat "$2" >"$3" && printf "[Recipes]\nAllowHostNetwork=yes\n" >&3' _ \
  "$HOST/etc/mkmachine/policy.conf" "$WORK/evil/m.tar.gz" "$WORK/race/m.tar.gz"
check "the tarball was rewritten while the import waited for the policy" test $? -eq 0
wait $pid
rc=$?
rm -f "$HOST/etc/mkmachine/policy.conf"
check "a tarball rewritten after its check is refused (exit 1)" test $rc -eq 1
check "... saying it changed" contains "$WORK/race.log" "m.tar.gz changed while it was imported"
check "... and nothing is deployed" test ! -e "$HOST/var/lib/machines/raced" -a ! -e "$HOST/etc/systemd/nspawn/raced.nspawn"
check "... not even a generation's state" bash -c "! ls '$HOST/var/lib/mkmachine/raced/gen/'* >/dev/null 2>&1"
check "... no staging tree left" bash -c "! ls -d '$HOST/var/lib/machines/.#raced.'* >/dev/null 2>&1"

finish
