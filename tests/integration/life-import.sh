#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkmachine import of hostile sources. The tarballs are made with bsdtar from a small tree (no
# build needed), with NAME.nspawn and SHA256SUMS as export writes them.
#  - A local tarball rewritten in place after it was checked against SHA256SUMS and before it is
#    extracted is refused as changed: what is extracted must be what was verified (the rewrite
#    happens at a deterministic point, see below). Three rewrites: a shorter valid tarball (it
#    extracts; its hash differs), a longer one (cut at the verified size, so its extraction fails)
#    and one of the same size that is no longer an archive (its extraction fails).
#  - The files found beside the tarball (NAME.nspawn, SHA256SUMS, SHA256SUMS.gpg) are read as
#    root from a directory others may own: a symbolic link among them is refused (a co-tenant's
#    m.nspawn -> a root-only file would be copied into the machine's state and /etc), and so is a
#    FIFO (it would hang the import) or anything else that is not a regular file. The tarball
#    itself too. A file:// URL is such a path (not downloaded: libcurl would follow the links).
#  - Over HTTP, a side file larger than 1 MiB (SHA256SUMS, NAME.nspawn) is cut off while it
#    downloads, not accepted up to the tarball's 256 GiB cap.
#  - An existing machine is replaced only with --force, which also overrides "running", as for a
#    build (what mkmachine(1) says).
source "$(dirname "$0")/../tools/it-lib.sh"

need_root
command -v bsdtar >/dev/null || skip "skipped: bsdtar missing (make deps)"
HOST=$WORK/host
imp() { "$MKMACHINE" --host-root "$HOST" "$@"; }

# mk_export DIR CONTENT [PAD]: DIR/m.tar.gz (a tree whose /etc/hostname says CONTENT, with PAD
# random bytes in /etc/pad: the tarball's size is set by PAD, not by how its few bytes compress),
# DIR/m.nspawn and DIR/SHA256SUMS listing both.
mk_export() {
  mkdir -p "$1/tree/etc"
  echo "$2" >"$1/tree/etc/hostname"
  [ -z "${3:-}" ] || head -c "$3" /dev/urandom >"$1/tree/etc/pad"
  bsdtar -C "$1/tree" --numeric-owner -czf "$1/m.tar.gz" .
  printf '[Exec]\nEnvironment=FROM=%s\n' "$2" >"$1/m.nspawn"
  (cd "$1" && sha256sum m.nspawn m.tar.gz >SHA256SUMS)
  rm -rf "$1/tree"
}
mk_export "$WORK/good" good 4096
mk_export "$WORK/evil" evil
mk_export "$WORK/long" evil 8192
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
mkdir -p "$HOST/etc/mkmachine"
# race NAME FILE DESC: import a copy of good/ as NAME, rewriting its tarball with FILE meanwhile;
# the import is refused as changed and deploys nothing. The log is $WORK/NAME.log.
race() {
  local name=$1 file=$2 desc=$3
  cp -a "$WORK/good" "$WORK/$name"
  mkfifo "$HOST/etc/mkmachine/policy.conf"
  imp import --trust-settings "$WORK/$name/m.tar.gz" "$name" >/dev/null 2>"$WORK/$name.log" &
  local pid=$!
  CLEANUP+=("kill $pid 2>/dev/null")
  timeout 60 bash -c 'exec 3>"$1" && cat "$2" >"$3" && printf "[Recipes]\nAllowHostNetwork=yes\n" >&3' _ \
    "$HOST/etc/mkmachine/policy.conf" "$file" "$WORK/$name/m.tar.gz"
  check "$desc: the tarball was rewritten while the import waited for the policy" test $? -eq 0
  wait $pid
  local rc=$?
  rm -f "$HOST/etc/mkmachine/policy.conf"
  check "$desc: refused (exit 1)" test $rc -eq 1
  check "$desc: ... saying it changed" contains "$WORK/$name.log" "m.tar.gz changed while it was imported"
  check "$desc: ... and nothing is deployed" test ! -e "$HOST/var/lib/machines/$name" -a ! -e "$HOST/etc/systemd/nspawn/$name.nspawn"
  check "$desc: ... not even a generation's state" bash -c "! ls '$HOST/var/lib/mkmachine/$name/gen/'* >/dev/null 2>&1"
  check "$desc: ... no staging tree left" bash -c "! ls -d '$HOST/var/lib/machines/.#$name.'* >/dev/null 2>&1"
}
check "the shorter rewrite is shorter" test "$(stat -c %s "$WORK/evil/m.tar.gz")" -lt "$(stat -c %s "$WORK/good/m.tar.gz")"
race raced "$WORK/evil/m.tar.gz" "a shorter tarball"
check "... which extracted, and its bytes differ" contains "$WORK/raced.log" "the bytes extracted have sha256"
check "the longer rewrite is longer" test "$(stat -c %s "$WORK/long/m.tar.gz")" -gt "$(stat -c %s "$WORK/good/m.tar.gz")"
race raced-long "$WORK/long/m.tar.gz" "a longer tarball"
# Read only as far as what was verified, it is a truncated archive: the error says both.
check "... which failed to extract" contains "$WORK/raced-long.log" "extracting it failed:"
# The same size, its gzip magic changed: no longer an archive, and only its hash (not its size)
# says that it changed.
cp "$WORK/good/m.tar.gz" "$WORK/flipped.tar.gz"
printf 'X' | dd of="$WORK/flipped.tar.gz" bs=1 seek=0 conv=notrunc status=none
check "the same-size rewrite differs" bash -c "! cmp -s '$WORK/good/m.tar.gz' '$WORK/flipped.tar.gz'"
race raced-flip "$WORK/flipped.tar.gz" "a tarball of the same size, a byte changed"
check "... which failed to extract" contains "$WORK/raced-flip.log" "extracting it failed:"

# --- 2. side files and the tarball: symbolic links, FIFOs -------------------------------------
# A root-only file a co-tenant points a side file at. Without SHA256SUMS (--verify=auto imports
# unverified with a warning) nothing else would stop it.
printf '[Exec]\nEnvironment=SECRET=hunter2\n' >"$WORK/secret"
chmod 600 "$WORK/secret"
# refused DESC SOURCE TEXT [ARGS...]: importing SOURCE (as a machine of its own) fails (exit 1,
# within 30 s: nothing hangs) with TEXT, and deploys nothing.
NREFUSED=0
refused() {
  local desc=$1 src=$2 text=$3; shift 3
  local x=x$((NREFUSED += 1))
  timeout 30 "$MKMACHINE" --host-root "$HOST" import "$@" "$src" $x >/dev/null 2>"$WORK/$x.log"
  local rc=$?
  check "$desc: refused (exit 1)" test $rc -eq 1
  check "$desc: the message names it" contains "$WORK/$x.log" "$text"
  check "$desc: nothing deployed" test ! -e "$HOST/var/lib/machines/$x" -a ! -e "$HOST/var/lib/machines/$x.nspawn" \
    -a ! -e "$HOST/etc/systemd/nspawn/$x.nspawn"
}
cp -a "$WORK/good" "$WORK/s-nspawn"
rm "$WORK/s-nspawn/SHA256SUMS" "$WORK/s-nspawn/m.nspawn"
ln -s "$WORK/secret" "$WORK/s-nspawn/m.nspawn"
refused "m.nspawn a symbolic link" "$WORK/s-nspawn/m.tar.gz" "$WORK/s-nspawn/m.nspawn is a symbolic link"
refused "m.nspawn a symbolic link, --trust-settings" "$WORK/s-nspawn/m.tar.gz" "m.nspawn is a symbolic link" --trust-settings
check "the root-only file was copied nowhere" bash -c "! grep -rqs hunter2 '$HOST'"
ln -sfn /nonexistent "$WORK/s-nspawn/m.nspawn"
refused "m.nspawn a dangling symbolic link" "$WORK/s-nspawn/m.tar.gz" "m.nspawn is a symbolic link"

cp -a "$WORK/good" "$WORK/s-sums"
mv "$WORK/s-sums/SHA256SUMS" "$WORK/sums-elsewhere"
ln -s "$WORK/sums-elsewhere" "$WORK/s-sums/SHA256SUMS"
refused "SHA256SUMS a symbolic link" "$WORK/s-sums/m.tar.gz" "$WORK/s-sums/SHA256SUMS is a symbolic link"

cp -a "$WORK/good" "$WORK/s-sig"
ln -s "$WORK/secret" "$WORK/s-sig/SHA256SUMS.gpg"
refused "SHA256SUMS.gpg a symbolic link" "$WORK/s-sig/m.tar.gz" "SHA256SUMS.gpg is a symbolic link" \
  --verify=signature --keyring "$WORK/secret"

cp -a "$WORK/good" "$WORK/f-nspawn"
rm "$WORK/f-nspawn/m.nspawn"
mkfifo "$WORK/f-nspawn/m.nspawn"
refused "m.nspawn a FIFO" "$WORK/f-nspawn/m.tar.gz" "$WORK/f-nspawn/m.nspawn is not a regular file"
cp -a "$WORK/good" "$WORK/f-sums"
rm "$WORK/f-sums/SHA256SUMS"
mkfifo "$WORK/f-sums/SHA256SUMS"
refused "SHA256SUMS a FIFO" "$WORK/f-sums/m.tar.gz" "SHA256SUMS is not a regular file"
cp -a "$WORK/good" "$WORK/d-sums"
rm "$WORK/d-sums/SHA256SUMS"
mkdir "$WORK/d-sums/SHA256SUMS"
refused "SHA256SUMS a directory" "$WORK/d-sums/m.tar.gz" "SHA256SUMS is not a regular file"

# A hard link to the root-only file (possible where fs.protected_hardlinks=0; root can make one
# anywhere): refused as well.
cp -a "$WORK/good" "$WORK/l-nspawn"
rm "$WORK/l-nspawn/SHA256SUMS" "$WORK/l-nspawn/m.nspawn"
ln "$WORK/secret" "$WORK/l-nspawn/m.nspawn"
refused "m.nspawn a hard link" "$WORK/l-nspawn/m.tar.gz" "$WORK/l-nspawn/m.nspawn has 2 hard links"
check "... the root-only file was copied nowhere" bash -c "! grep -rqs hunter2 '$HOST'"

# The tarball: the same rule. Its side files are looked for beside the path given, so a link
# would pair the target with files beside the link; give the file's own path.
mkdir "$WORK/s-tar"
cp "$WORK/good/SHA256SUMS" "$WORK/good/m.nspawn" "$WORK/s-tar/"
ln -s "$WORK/good/m.tar.gz" "$WORK/s-tar/m.tar.gz"
refused "the tarball a symbolic link" "$WORK/s-tar/m.tar.gz" "$WORK/s-tar/m.tar.gz is a symbolic link; import follows none (give the path of the file it points to)"
mkdir "$WORK/f-tar"
mkfifo "$WORK/f-tar/m.tar.gz"
refused "the tarball a FIFO" "$WORK/f-tar/m.tar.gz" "$WORK/f-tar/m.tar.gz is not a regular file"
# A symbolic link in the directory part of the path is followed (the administrator typed it),
# the four files are all read from the one directory it led to.
ln -s "$WORK/good" "$WORK/good-link"
imp import "$WORK/good-link/m.tar.gz" vialink >/dev/null 2>"$WORK/vialink.log"
check "a link to the export's directory is followed, checksums verified" contains "$WORK/vialink.log" "(checksums verified)"

# --- 3. file:// URLs are local paths ----------------------------------------------------------
mkdir "$WORK/sp ace"
cp "$WORK/good/"* "$WORK/sp ace/"
imp import "file://$WORK/sp%20ace/m.tar.gz" viaurl >/dev/null 2>"$WORK/viaurl.log"
check "a file:// URL (percent-encoded) imports, checksums verified" contains "$WORK/viaurl.log" "(checksums verified)"
check "... the settings came along" cmp "$HOST/var/lib/machines/viaurl.nspawn" "$WORK/good/m.nspawn"
imp import "file://localhost$WORK/good/m.tar.gz" viahost >/dev/null 2>"$WORK/viahost.log"
check "file://localhost/PATH too" contains "$WORK/viahost.log" "(checksums verified)"
cp -a "$WORK/good" "$WORK/u-nspawn"
rm "$WORK/u-nspawn/SHA256SUMS" "$WORK/u-nspawn/m.nspawn"
ln -s "$WORK/secret" "$WORK/u-nspawn/m.nspawn"
refused "file://: m.nspawn a symbolic link" "file://$WORK/u-nspawn/m.tar.gz" "$WORK/u-nspawn/m.nspawn is a symbolic link"
check "... the root-only file was copied nowhere" bash -c "! grep -rqs hunter2 '$HOST'"
refused "file://: the tarball a FIFO" "file://$WORK/f-tar/m.tar.gz" "$WORK/f-tar/m.tar.gz is not a regular file"
imp import "FILE://LOCALHOST$WORK/good/m.tar.gz" viacaps >/dev/null 2>"$WORK/viacaps.log"
check "FILE://LOCALHOST/PATH: scheme and host are case-insensitive" contains "$WORK/viacaps.log" "(checksums verified)"
imp import "file:$WORK/good/m.tar.gz" viashort >/dev/null 2>"$WORK/viashort.log"
check "file:/PATH (no authority) too" contains "$WORK/viashort.log" "(checksums verified)"
imp import "file://otherhost$WORK/good/m.tar.gz" y >/dev/null 2>"$WORK/otherhost.log"
check "file://HOST/PATH: a usage error (exit 2)" test $? -eq 2
check "... saying what is expected" contains "$WORK/otherhost.log" "expected file:///PATH"

# --- 4. side files over HTTP are capped at 1 MiB as they download ------------------------------
start_httpd "$WORK"
HTTP="http://127.0.0.1:$HTTPD_PORT"
imp import "$HTTP/good/m.tar.gz" overhttp >/dev/null 2>"$WORK/overhttp.log"
check "over HTTP the export imports, checksums verified" contains "$WORK/overhttp.log" "(checksums verified)"
cp -a "$WORK/good" "$WORK/h-sums"
head -c $((2 << 20)) /dev/zero | tr '\0' '\n' >>"$WORK/h-sums/SHA256SUMS"   # empty lines: valid
refused "SHA256SUMS of 2 MiB over HTTP" "$HTTP/h-sums/m.tar.gz" \
  "cannot download $HTTP/h-sums/SHA256SUMS: '$HTTP/h-sums/SHA256SUMS': announces $(stat -c %s "$WORK/h-sums/SHA256SUMS") bytes, more than the limit of 1048576"
cp -a "$WORK/good" "$WORK/h-nspawn"
head -c $((2 << 20)) /dev/zero | tr '\0' '\n' >>"$WORK/h-nspawn/m.nspawn"
refused "m.nspawn of 2 MiB over HTTP" "$HTTP/h-nspawn/m.tar.gz" "cannot download $HTTP/h-nspawn/m.nspawn: '$HTTP/h-nspawn/m.nspawn': announces"
# --verify=no reads no SHA256SUMS, so it does not download it either (a 2 MiB one is no error).
imp import --verify=no "$HTTP/h-sums/m.tar.gz" noverify >/dev/null 2>"$WORK/noverify.log"
check "--verify=no over HTTP does not fetch SHA256SUMS (exit 0 beside a 2 MiB one)" test $? -eq 0
check "... and says nothing was checked" bash -c "! grep -q 'checksums verified' '$WORK/noverify.log'"
# Without a Content-Length the body is cut at the cap (httpd.py big-nolen: the file plus 4 KiB).
mkdir -p "$WORK/h-nolen"
cp "$WORK/good/m.tar.gz" "$WORK/h-nolen/"
head -c $(((1 << 20) - 100)) /dev/zero | tr '\0' '\n' >"$WORK/h-nolen/SHA256SUMS"
(cd "$WORK/h-nolen" && sha256sum m.tar.gz >>SHA256SUMS)
refused "SHA256SUMS that grows past 1 MiB while it downloads" "$HTTP/fault/big-nolen/h-nolen/m.tar.gz" \
  "SHA256SUMS': sent more than the limit of 1048576 bytes"

# --- 5. replacing an existing machine, a running one too ---------------------------------------
# systemd-nspawn holds the image lock .#NAME.lck while the machine runs; flock(1) holds it here.
flock "$HOST/var/lib/machines/.#ok.lck" sleep 60 &
LOCKER=$!
CLEANUP+=("kill $LOCKER 2>/dev/null")
for _ in $(seq 50); do flock -n "$HOST/var/lib/machines/.#ok.lck" true 2>/dev/null || break; sleep 0.1; done
imp import "$WORK/evil/m.tar.gz" ok >/dev/null 2>"$WORK/exists.log"
check "an existing machine is not replaced without --force (exit 1)" test $? -eq 1
check "... saying --force replaces it" contains "$WORK/exists.log" "machine 'ok' exists"
check "... it is unchanged" test "$(cat "$HOST/var/lib/machines/ok/etc/hostname")" = good
imp --force import "$WORK/evil/m.tar.gz" ok >/dev/null 2>"$WORK/running.log"
check "import --force replaces a running machine, as a build --force does" test $? -eq 0
check "... warning that it runs" bash -c "grep -qF -- \"--force: going ahead to replace machine 'ok' despite:\" '$WORK/running.log' &&
  grep -qF \"running: machine 'ok' is running\" '$WORK/running.log'"
check "... with the new tree" test "$(cat "$HOST/var/lib/machines/ok/etc/hostname")" = evil
kill $LOCKER; wait $LOCKER 2>/dev/null

# --- 6. --trust-settings: UIDs shared with another machine on the host -----------------------
# A machine set up by hand owns UIDs 1000000-1065535; the export's settings take 1000000 too: its
# root would be that machine's root. Listed, and refused by a policy without privileged machines.
mkdir -p "$HOST/etc/systemd/nspawn" "$HOST/etc/mkmachine"
printf '[Exec]\nPrivateUsers=1000000:65536\n' >"$HOST/etc/systemd/nspawn/neighbour.nspawn"
cp -a "$WORK/good" "$WORK/uids"
printf '[Exec]\nPrivateUsers=1000000\n' >"$WORK/uids/m.nspawn"
(cd "$WORK/uids" && sha256sum m.nspawn m.tar.gz >SHA256SUMS)
printf '[Recipes]\nAllowPrivileged=no\n' >"$HOST/etc/mkmachine/policy.conf"
refused "--trust-settings with another machine's UIDs" "$WORK/uids/m.tar.gz" \
  "[Exec] PrivateUsers=1000000, a machine whose users are also those of the machine 'neighbour' on the host (their UID ranges overlap): the policy $HOST/etc/mkmachine/policy.conf:2 forbids privileged machines" \
  --trust-settings
rm "$HOST/etc/mkmachine/policy.conf"
imp import --trust-settings "$WORK/uids/m.tar.gz" uids >/dev/null 2>"$WORK/uids.log"
check "without a policy it is imported (exit $?)" test $? -eq 0
check "... listing what it grants" contains "$WORK/uids.log" \
  "grants the machine 'uids' [Exec] PrivateUsers=1000000: a machine whose users are also those of the machine 'neighbour' on the host"

# --- 7. a tree whose owner puts it in another machine's UIDs ------------------------------------
# Without trusted settings the machine runs with nspawn's -U, which takes the tree owner's slot
# first: an exporter who owns the tree by 1000000 gets neighbour's UIDs (section 6).
mkdir -p "$WORK/slot/tree/etc"
echo slot >"$WORK/slot/tree/etc/hostname"
chown -R 1000000:1000000 "$WORK/slot/tree"
bsdtar -C "$WORK/slot/tree" --numeric-owner -czf "$WORK/slot/m.tar.gz" .
(cd "$WORK/slot" && sha256sum m.tar.gz >SHA256SUMS)
printf '[Recipes]\nAllowPrivileged=no\n' >"$HOST/etc/mkmachine/policy.conf"
refused "a tree owned by another machine's UID" "$WORK/slot/m.tar.gz" \
  "its tree is owned by UID 1000000, and systemd-nspawn starts it in that UID's slot (983040-1048575, -U and PrivateUsers=yes or pick take the tree owner's slot first), whose UIDs the machines 'neighbour', 'uids' have on this host: the machine's root would be theirs; the policy $HOST/etc/mkmachine/policy.conf:2 forbids privileged machines (AllowPrivileged=no)"
check "... leaving no staging tree" bash -c "! ls -d '$HOST/var/lib/machines/.#'x* >/dev/null 2>&1"
rm "$HOST/etc/mkmachine/policy.conf"
imp import "$WORK/slot/m.tar.gz" slotted >/dev/null 2>"$WORK/slotted.log"
check "without a policy it is imported (exit $?)" test $? -eq 0
check "... with a warning naming the machine" contains "$WORK/slotted.log" \
  "mkmachine: warning: machine 'slotted': its tree is owned by UID 1000000"

finish
