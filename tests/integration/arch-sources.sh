#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Where Arch packages come from and what is required of them: Mirror=, Snapshot= on an archive,
# the host's pacman mirrorlist (as pacstrap), none of these (a clear error), required database
# signatures, and a disk that fills up mid-build (nothing lost).
source "$(dirname "$0")/../tools/it-lib.sh"

arch_fixture
HOST=$WORK/host
M=$HOST/var/lib/machines
mkm() { "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" "$@"; }
recipe() {  # recipe FILE EXTRA-BOOTSTRAP-LINES...
  local f=$1; shift
  { printf '[Machine]\nName=src\n\n[Bootstrap]\nDistribution=arch\nRepositories=core extra\nPackages=filesystem libfoo\nKeyring=%s\n' "$FX/keyring"
    printf '%s\n' "$@"; } >"$f"
}

# No Mirror=, no Snapshot=, no host mirrorlist: a clear error naming the ways out.
recipe "$WORK/none.recipe"
mkm "$WORK/none.recipe" >"$WORK/none.log" 2>&1
check "no mirror anywhere: exit 2" test $? -eq 2
check "no mirror anywhere: says what to do" contains "$WORK/none.log" "no mirror: give Mirror= or Snapshot= in [Bootstrap], or provide $HOST/etc/pacman.d/mirrorlist"
check "no mirror anywhere: no machine" test ! -e "$M/src"

# The host's mirrorlist, as pacstrap uses it (commented and blank lines skipped).
mkdir -p "$HOST/etc/pacman.d"
printf '## a comment\n#Server = http://127.0.0.1:9/$repo/os/$arch\n\nServer = file://%s/repo/$repo/os/$arch\n' "$FX" >"$HOST/etc/pacman.d/mirrorlist"
mkm "$WORK/none.recipe" >"$WORK/host.log" 2>&1
check "the host's mirrorlist is used when the recipe names none" test $? -eq 0 -a -d "$M/src/var/lib/pacman/local/libfoo-1.4-1"
check "the lock records the mirror from the host's list" grep -q "^source mirror file://$FX/repo/\$repo/os/\$arch$" "$WORK/none.recipe.lock"
rm -f "$HOST/etc/pacman.d/mirrorlist"

# Snapshot=: the Arch Linux Archive layout, its base URL from the environment.
mkdir -p "$WORK/archive/2024/06"
ln -s "$FX/repo" "$WORK/archive/2024/06/01"
recipe "$WORK/snap.recipe" "Snapshot=2024/06/01"
mkm "$WORK/snap.recipe" >"$WORK/snap0.log" 2>&1
check "Snapshot= without the archive's address: exit 2" test $? -eq 2
check "Snapshot= without the archive's address: says to set MKMACHINE_ARCH_ARCHIVE" contains "$WORK/snap0.log" "MKMACHINE_ARCH_ARCHIVE"
MKMACHINE_ARCH_ARCHIVE=file://$WORK/archive mkm "$WORK/snap.recipe" >"$WORK/snap.log" 2>&1
check "Snapshot=2024/06/01 builds from the archive's day" test $? -eq 0
check "the lock names the snapshot" grep -q '^source snapshot 2024-06-01$' "$WORK/snap.recipe.lock"
check "the snapshot's date is the time stamp of the tree" test "$(stat -c %Y "$M/src/etc")" = "$(date -u -d 2024-06-01 +%s)"
mkdir -p "$HOST/etc/mkmachine"; echo "file://$WORK/archive" >"$HOST/etc/mkmachine/arch-archive"
mkm "$WORK/snap.recipe" >"$WORK/snap2.log" 2>&1
check "the archive's address may come from the host's etc/mkmachine/arch-archive" test $? -eq 0
rm -f "$HOST/etc/mkmachine/arch-archive"

# Database signatures: verified when present; required only when the recipe says so.
recipe "$WORK/db.recipe" "Mirror=file://$FX/repo/\$repo/os/\$arch"
mkm "$WORK/db.recipe" >"$WORK/db.log" 2>&1
check "an unsigned db (extra) is accepted by default" test $? -eq 0
recipe "$WORK/dbreq.recipe" "Mirror=file://$FX/repo/\$repo/os/\$arch" "RequireDatabaseSignature=yes"
snapshot "$M/src" >"$WORK/before.snap"
mkm "$WORK/dbreq.recipe" >"$WORK/dbreq.log" 2>&1
check "RequireDatabaseSignature=yes refuses the unsigned extra.db: exit 1" test $? -eq 1
check "... saying which db" contains "$WORK/dbreq.log" "extra.db: no signature"
snapshot "$M/src" >"$WORK/after.snap"
check "... and the machine is unchanged" cmp -s "$WORK/before.snap" "$WORK/after.snap"
cp -a "$FX/repo" "$WORK/badsig"
printf 'garbage' >"$WORK/badsig/core/os/x86_64/core.db.sig"
recipe "$WORK/dbbad.recipe" "Mirror=file://$WORK/badsig/\$repo/os/\$arch"
mkm "$WORK/dbbad.recipe" >"$WORK/dbbad.log" 2>&1
check "a db whose signature is bad is refused even by default" test $? -eq 1
check "... saying so" contains "$WORK/dbbad.log" "core.db"

# Malformed repository data is the mirror's fault, not the user's: exit status 1, not 2.
cp -a "$FX/repo" "$WORK/baddb"
python3 - "$WORK/baddb/extra/os/x86_64/extra.db" <<'PY'
import io, sys, tarfile
desc = b"%NAME%\nbroken\n\n%VERSION%\n1.0\n\n%FILENAME%\nbroken-1.0.pkg.tar.zst\n\n"
with tarfile.open(sys.argv[1], "w:gz") as t:
    ti = tarfile.TarInfo("broken-1.0/desc"); ti.size = len(desc)
    t.addfile(ti, io.BytesIO(desc))
PY
recipe "$WORK/baddb.recipe" "Mirror=file://$WORK/baddb/\$repo/os/\$arch"
mkm "$WORK/baddb.recipe" >"$WORK/baddb.log" 2>&1
check "a malformed repository db: exit status 1" test $? -eq 1
check "a malformed repository db: the message names the db and the entry" contains "$WORK/baddb.log" "extra.db: entry 'broken-1.0/desc'"

# Output: one rewritten progress line on a terminal, plain per-file lines in a log.
recipe "$WORK/out.recipe" "Mirror=file://$FX/repo/\$repo/os/\$arch"
sed -i 's/^Name=src$/Name=outp/' "$WORK/out.recipe"
"$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache-log" build "$WORK/out.recipe" >"$WORK/plain.log" 2>&1
check "in a log: a plain line per downloaded file" grep -q '^fetched filesystem-.*pkg.tar.zst (' "$WORK/plain.log"
check "in a log: no terminal control sequences" bash -c "! grep -q \$'\\r' '$WORK/plain.log'"
if command -v script >/dev/null; then
  # 'mkmachine RECIPE' is 'mkmachine build RECIPE'; script(1) gives it a terminal.
  script -qec "'$MKMACHINE' --host-root '$HOST' --cache-dir '$WORK/cache-tty' '$WORK/out.recipe'" /dev/null >"$WORK/tty.log" 2>&1
  check "on a terminal (and without the 'build' verb): the build succeeds" grep -q "machine 'outp' deployed" "$WORK/tty.log"
  check "on a terminal: a rewritten progress line" grep -q $'\r\e\[K' "$WORK/tty.log"
  check "on a terminal: no per-file lines" bash -c "! grep -q '^fetched ' '$WORK/tty.log'"
else
  echo "skipping the terminal output checks: script(1) is missing"
fi

# A full disk mid-build: the error says so, and nothing is lost.
SMALL=$WORK/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=1500k tmpfs "$SMALL" 2>/dev/null; then
  CLEANUP+=("umount -l '$SMALL'")
  recipe "$WORK/tiny.recipe" "Mirror=file://$FX/repo/\$repo/os/\$arch"
  "$MKMACHINE" --host-root "$SMALL" --cache-dir "$WORK/cache" "$WORK/tiny.recipe" >"$WORK/tiny.log" 2>&1
  check "a small machine fits on the small disk" test $? -eq 0
  snapshot "$SMALL/var/lib/machines/src" >"$WORK/small.before"
  ls -a "$SMALL/var/lib/machines" >"$WORK/small.ls.before"
  recipe "$WORK/big.recipe" "Mirror=file://$FX/repo/\$repo/os/\$arch"
  sed -i 's/^Packages=.*/Packages=base-test app/' "$WORK/big.recipe"
  "$MKMACHINE" --host-root "$SMALL" --cache-dir "$WORK/cache" "$WORK/big.recipe" >"$WORK/big.log" 2>&1
  check "disk full: exit 1" test $? -eq 1
  check "disk full: the message says so" contains "$WORK/big.log" "No space left on device"
  snapshot "$SMALL/var/lib/machines/src" >"$WORK/small.after"
  check "disk full: the machine is unchanged" cmp -s "$WORK/small.before" "$WORK/small.after"
  ls -a "$SMALL/var/lib/machines" >"$WORK/small.ls.after"
  check "disk full: no staging tree is left" cmp -s "$WORK/small.ls.before" "$WORK/small.ls.after"
else
  echo "skipping the disk-full checks: cannot mount a tmpfs here"
fi
finish
