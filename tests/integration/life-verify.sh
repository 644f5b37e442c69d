#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkmachine verify: a freshly built machine is clean; each kind of change made by hand in the live
# tree (content, mode, owner, type, link target, xattr, added data, removed package file) is found
# and listed, with exit 1; so is a host file (the .nspawn, a drop-in) changed or added by hand,
# which recovery keeps and a rebuild or rm refuses to replace; what a running machine writes
# itself (/var/log, resolv.conf) is listed as runtime with exit 0; --json is one document (parsed, not grepped); verify writes nothing in
# the tree and records its verdict in last-verify. A rebuild, rollback or rm of a drifted machine is
# refused without --force, listing the drift; runtime changes do not block.
source "$(dirname "$0")/../tools/it-lib.sh"

arch_fixture
HOST=$WORK/host
M=$HOST/var/lib/machines/v1
S=$HOST/var/lib/mkmachine/v1
mkm() { "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" "$@"; }

cat >"$WORK/v1.recipe" <<R
[Machine]
Name=v1

[Bootstrap]
Distribution=arch
Mirror=file://$FX/repo/\$repo/os/\$arch
Repositories=core extra
Packages=base-test
Keyring=$FX/keyring

[Exec]
Environment=FOO=bar
R
mkm -q build "$WORK/v1.recipe" >"$WORK/build.log" 2>&1
check "the fixture machine builds" test $? -eq 0 -a -d "$M"
[ -d "$M" ] || { cat "$WORK/build.log"; finish; exit 1; }
G=$(live_gen "$HOST" v1)   # the live generation's state: manifest, digest

# verify RC_VAR OUT_FILE ARGS...: run verify, keep stdout, stderr and the exit status.
verify() {
  local out=$1; shift
  mkm "$@" verify v1 >"$out" 2>"$out.err"
  echo $? >"$out.rc"
}
rc() { cat "$1.rc"; }
# json_check FILE PYTHON-EXPRESSION...: each expression (over d, the document, and e, a dict of
# its entries by path) must be true.
json_check() {
  local f=$1; shift
  python3 - "$f" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = {x["path"]: x for x in d["entries"]}
bad = [x for x in sys.argv[2:] if not eval(x)]
for x in bad:
    print("  false:", x)
if bad:
    print("  document:", json.dumps(d, indent=1)[:3000])
sys.exit(1 if bad else 0)
PY
}

# --- 1. a fresh machine is clean ------------------------------------------------------------
before=$(snapshot "$M")
verify "$WORK/v0"
check "verify of a fresh build exits 0" test "$(rc "$WORK/v0")" = 0
check "and says clean, with the digest" contains "$WORK/v0" "v1: clean, the tree matches its manifest $(cat "$G/digest")"
check "and lists nothing" test "$(wc -l <"$WORK/v0")" = 1
verify "$WORK/j0" --json
check "verify --json of a fresh build exits 0" test "$(rc "$WORK/j0")" = 0
check "the document says clean, no entries, absolute paths" json_check "$WORK/j0" \
  'd["status"] == "clean" and d["clean"] is True and d["blocking"] == 0' 'd["entries"] == []' \
  "d['tree'] == '$M' and d['manifest'] == '$G/manifest' and d['name'] == 'v1'" \
  "d['digest'] == open('$G/digest').read().strip()"
check "last-verify records clean, the time and the digest" \
  grep -qxE "clean [0-9]{10} $(cat "$G/digest")" "$G/last-verify"
check "verify wrote nothing in the tree" test "$before" = "$(snapshot "$M")"

# --- 2. what a running machine writes itself: listed, not drift --------------------------------
echo "boot log" >"$M/var/log/x"
echo "nameserver 192.0.2.53" >"$M/etc/resolv.conf"
verify "$WORK/v1"
check "runtime changes alone exit 0" test "$(rc "$WORK/v1")" = 0
check "and are counted but not listed without -v" contains "$WORK/v1" "v1: clean, the tree matches its manifest"
check "(count)" grep -q "[1-9][0-9]* runtime and [0-9]* time-only changes* not shown (-v lists them)" "$WORK/v1"
check "(no entry line)" bash -c "! grep -q '^[-+M] ' '$WORK/v1'"
verify "$WORK/v1v" -v
check "-v lists them, marked runtime" contains "$WORK/v1v" "+ ./var/log/x [runtime]"
check "(resolv.conf)" contains "$WORK/v1v" "+ ./etc/resolv.conf [runtime]"
check "(the directories' times, not blocking)" contains "$WORK/v1v" "M ./etc (time "
verify "$WORK/j1" --json
check "--json lists them as runtime, not blocking" json_check "$WORK/j1" \
  'd["status"] == "clean" and d["blocking"] == 0 and d["runtime"] >= 2' \
  'e["./var/log/x"]["kind"] == "added" and e["./var/log/x"]["runtime"] and not e["./var/log/x"]["blocking"]' \
  'e["./etc/resolv.conf"]["runtime"] and e["./etc/resolv.conf"]["type"] == "file"' \
  'e["./etc"]["what"] == ["time"] and not e["./etc"]["runtime"] and not e["./etc"]["blocking"]'
mkm -q build "$WORK/v1.recipe" >"$WORK/rebuild.log" 2>&1
check "runtime changes do not block a rebuild" test $? -eq 0
G=$(live_gen "$HOST" v1)
verify "$WORK/v1b"
check "the rebuilt machine is clean" test "$(rc "$WORK/v1b")" = 0

# A real systemd-nspawn run writes only what the runtime list covers (resolv.conf, localtime,
# the journal's directory) and directory times.
if command -v systemd-nspawn >/dev/null; then
  timeout 120 systemd-nspawn --register=no --keep-unit --pipe -q -M "vit$$" -D "$M" /usr/bin/sh -c true \
    >"$WORK/nspawn.log" 2>&1
  check "the machine ran under systemd-nspawn" test $? -eq 0
  verify "$WORK/vn" -v
  check "after a systemd-nspawn run it is still clean (exit 0)" test "$(rc "$WORK/vn")" = 0
  check "(what nspawn wrote is listed, none of it blocking)" bash -c "! grep -v -e '\[runtime\]\$' -e '\[time only\]\$' '$WORK/vn' | grep -q '^[-+M] '"
else
  echo "skipping the systemd-nspawn run: systemd-nspawn is missing (make deps)"
fi

# --- 3. every kind of change by hand -----------------------------------------------------------
printf 'repaired\n' >"$M/etc/hostname"                       # content, same size
chmod 0700 "$M/usr/bin/app"                                  # mode
chown 1000:1000 "$M/etc/passwd"                              # owner
rm "$M/usr/lib/libfoo.so.1" && ln -s libfoo.so.2 "$M/usr/lib/libfoo.so.1"   # file -> symlink
ln -sfn /elsewhere/busybox "$M/usr/bin/sh"                   # link target
python3 -c "import os; os.setxattr('$M/etc/group', 'user.x', b'1')"        # xattr
mkdir -p "$M/var/lib/foo" && echo rows >"$M/var/lib/foo/db"  # data outside the runtime list
rm "$M/usr/lib/libc-fake.so.6"                               # a package file removed
echo "boot log" >"$M/var/log/x"                              # and a runtime change beside them
before=$(snapshot "$M")
verify "$WORK/v2"
check "drift exits 1" test "$(rc "$WORK/v2")" = 1
check "content" contains "$WORK/v2" "M ./etc/hostname (content, time "
check "mode" contains "$WORK/v2" "M ./usr/bin/app (mode 0755→0700"
check "owner" contains "$WORK/v2" "M ./etc/passwd (owner 0:0→1000:1000"
check "file replaced by a symlink" contains "$WORK/v2" "M ./usr/lib/libfoo.so.1 (type file→link"
check "symlink retargeted" contains "$WORK/v2" "M ./usr/bin/sh (link busybox→/elsewhere/busybox"
check "xattr" contains "$WORK/v2" "M ./etc/group (xattr user.x added"
check "added data" contains "$WORK/v2" "+ ./var/lib/foo"
check "(and its content)" contains "$WORK/v2" "+ ./var/lib/foo/db"
check "removed package file" contains "$WORK/v2" "- ./usr/lib/libc-fake.so.6"
check "the summary counts what blocks" contains "$WORK/v2" "v1: drift: 9 paths differ from the manifest (2 added, 1 removed, 6 changed)"
check "runtime entries stay hidden without -v" bash -c "! grep -q 'var/log/x' '$WORK/v2'"
verify "$WORK/j2" --json
check "--json: exit 1 and one document describing each change" json_check "$WORK/j2" \
  'd["status"] == "drift" and d["clean"] is False and d["blocking"] == 9' \
  'e["./etc/hostname"]["what"][0] == "content" and e["./etc/hostname"]["blocking"]' \
  '[c for c in e["./usr/bin/app"]["changes"] if c["what"] == "mode"] == [{"what": "mode", "old": "0755", "new": "0700"}]' \
  '"owner" in e["./etc/passwd"]["what"]' \
  'e["./usr/lib/libfoo.so.1"]["what"] == ["type"] and e["./usr/lib/libfoo.so.1"]["type"] == "link"' \
  '[c["new"] for c in e["./usr/bin/sh"]["changes"] if c["what"] == "link"] == ["/elsewhere/busybox"]' \
  '{"what": "xattr", "name": "user.x", "old": None, "new": "31"} in e["./etc/group"]["changes"]' \
  'e["./var/lib/foo/db"]["kind"] == "added" and e["./var/lib/foo/db"]["blocking"]' \
  'e["./usr/lib/libc-fake.so.6"]["kind"] == "removed" and e["./usr/lib/libc-fake.so.6"]["type"] == "file"' \
  'e["./var/log/x"]["runtime"] and not e["./var/log/x"]["blocking"]'
check "verify --json exits 1 on drift" test "$(rc "$WORK/j2")" = 1
check "last-verify records drift" grep -qxE "drift [0-9]{10} $(cat "$G/digest")" "$G/last-verify"
check "verify wrote nothing in the drifted tree either" test "$before" = "$(snapshot "$M")"
mkm -q verify v1 >"$WORK/q" 2>&1
check "-q prints only the summary" test "$(wc -l <"$WORK/q")" = 1

# --- 4. a drifted machine is neither replaced nor removed without --force ----------------------
mkm build "$WORK/v1.recipe" >"$WORK/refused.log" 2>&1; r=$?
check "a rebuild of the drifted machine is refused (exit 1)" test $r = 1
check "the refusal says why" contains "$WORK/refused.log" "drift: 9 paths changed by hand since the build would be lost"
check "and lists the drift" contains "$WORK/refused.log" "M ./usr/bin/app (mode 0755→0700"
check "(added data too)" contains "$WORK/refused.log" "+ ./var/lib/foo/db"
check "(but not the runtime changes)" bash -c "! grep -q 'var/log/x' '$WORK/refused.log'"
check "the drifted tree is untouched" test "$before" = "$(snapshot "$M")"
mkm rollback v1 >"$WORK/refused-rb.log" 2>&1; r=$?
check "rollback of the drifted machine is refused" bash -c "[ $r = 1 ] && grep -q 'drift: 9 paths' '$WORK/refused-rb.log'"
mkm rm v1 >"$WORK/refused-rm.log" 2>&1; r=$?
check "rm of the drifted machine is refused" bash -c "[ $r = 1 ] && grep -q 'drift: 9 paths' '$WORK/refused-rm.log'"
check "(the tree is still there, untouched)" test "$before" = "$(snapshot "$M")"
mkm --force -q build "$WORK/v1.recipe" >"$WORK/forced.log" 2>&1; r=$?
check "--force rebuilds it anyway" test $r = 0
G=$(live_gen "$HOST" v1)
# The new generation has the same digest, but no verify has looked at its tree yet.
check "ls: the rebuilt machine's drift is unknown, not the old tree's verdict" \
  bash -c "mkm_ls() { '$MKMACHINE' --host-root '$HOST' --json ls; }; mkm_ls | python3 -c 'import json,sys; d=json.load(sys.stdin); print([m[\"drift\"] for m in d[\"machines\"] if m[\"name\"] == \"v1\"][0])' | grep -qx unknown"
verify "$WORK/v3"
check "and the new machine is clean" test "$(rc "$WORK/v3")" = 0

# --- 4b. host files changed by hand: kept, shown, and not thrown away without --force ----------
NS=$HOST/etc/systemd/nspawn/v1.nspawn
DI=$HOST/etc/systemd/system/systemd-nspawn@v1.service.d
check "the machine has a .nspawn" test -s "$NS"
cp "$NS" "$WORK/v1.nspawn.built"
printf '\n[Files]\nBind=/srv/data\n' >>"$NS"
cp "$NS" "$WORK/v1.nspawn.edited"
mkm ls >/dev/null 2>&1            # any command as root runs recovery
mkm --json ls >/dev/null 2>&1
check "recovery keeps a .nspawn edited by hand (ls ran twice)" cmp "$NS" "$WORK/v1.nspawn.edited"
verify "$WORK/h1"
check "verify: an edited .nspawn is drift (exit 1)" test "$(rc "$WORK/h1")" = 1
check "verify names it" contains "$WORK/h1" "host file $NS: changed by hand (not what generation"
check "... and says the tree itself is clean" contains "$WORK/h1" "drift: the tree matches its manifest"
verify "$WORK/h1j" --json
check "verify --json: host_files lists it, blocking, and the document is not clean" json_check "$WORK/h1j" \
  'd["clean"] is False' 'd["status"] == "drift"' \
  '[(h["path"], h["change"], h["blocking"]) for h in d["host_files"]] == [("'"$NS"'", "changed", True)]'
mkdir -p "$DI"
echo '[Service]' >"$DI/zz-mine.conf"      # not mkmachine's: no generation lists it, never touched
mkm build "$WORK/v1.recipe" >"$WORK/h-refused.log" 2>&1; r=$?
check "a rebuild is refused while the .nspawn is edited (exit 1)" test $r = 1
check "... naming the host file" contains "$WORK/h-refused.log" "host file: $NS was changed by hand since generation"
check "... and the .nspawn is still the edited one" cmp "$NS" "$WORK/v1.nspawn.edited"
mkm rm v1 >"$WORK/h-rm.log" 2>&1; r=$?
check "rm is refused too" bash -c "[ $r = 1 ] && grep -q 'changed by hand' '$WORK/h-rm.log'"
mkm export v1 "$WORK/h-exp" >"$WORK/h-exp.out" 2>"$WORK/h-exp.log"; r=$?
check "export is refused: it would carry the edited settings" \
  bash -c "[ $r = 1 ] && grep -q '$NS was changed by hand since generation' '$WORK/h-exp.log' && [ ! -e '$WORK/h-exp/v1.nspawn' ]"
mkm -q --force export v1 "$WORK/h-expf" >/dev/null 2>"$WORK/h-expf.log"
check "export --force carries them, with a warning" \
  bash -c "cmp -s '$WORK/h-expf/v1.nspawn' '$WORK/v1.nspawn.edited' && grep -q 'because of --force' '$WORK/h-expf.log'"
# Back as built, then a hand-written modules-load file (a standard path the generation has none of).
cp "$WORK/v1.nspawn.built" "$NS"
ML=$HOST/etc/modules-load.d/mkmachine-v1.conf
if [ ! -e "$ML" ]; then
  mkdir -p "$(dirname "$ML")"; echo fuse >"$ML"
  verify "$WORK/h2"
  check "verify: a host file added by hand is drift" bash -c "[ \"\$(cat '$WORK/h2.rc')\" = 1 ] && grep -q 'host file $ML: added by hand' '$WORK/h2'"
  mkm build "$WORK/v1.recipe" >"$WORK/h-refused2.log" 2>&1; r=$?
  check "a rebuild is refused: the added host file would be removed" \
    bash -c "[ $r = 1 ] && grep -q 'host file: $ML was added by hand' '$WORK/h-refused2.log'"
  rm "$ML"
else
  check "the modules-load path is mkmachine's own (the fixture wrote it)" false
fi
# A symlink to the very content is not what mkmachine wrote: --force puts a regular file back.
cp "$NS" "$WORK/ns-copy"; ln -sf "$WORK/ns-copy" "$NS"
mkm -q --force build "$WORK/v1.recipe" >"$WORK/h-sym.log" 2>&1
verify "$WORK/h-sym"
check "a .nspawn replaced by a symlink: --force writes a regular file again, and verify is clean" \
  bash -c "[ ! -L '$NS' ] && [ -f '$NS' ] && [ \"\$(cat '$WORK/h-sym.rc')\" = 0 ]"
rm "$NS"
verify "$WORK/h3"
check "verify: a removed .nspawn is listed but no drift (a rebuild writes it again)" \
  bash -c "[ \"\$(cat '$WORK/h3.rc')\" = 0 ] && grep -q 'host file $NS: removed' '$WORK/h3'"
mkm -q build "$WORK/v1.recipe" >"$WORK/h-build.log" 2>&1; r=$?
check "a rebuild goes ahead and writes it again" bash -c "[ $r = 0 ] && cmp -s '$NS' '$WORK/v1.nspawn.built'"
check "a drop-in of the user's own beside ours is untouched" test -s "$DI/zz-mine.conf"
rm -f "$DI/zz-mine.conf"
G=$(live_gen "$HOST" v1)
verify "$WORK/h4"
check "and the machine is clean again" test "$(rc "$WORK/h4")" = 0
# After an interrupted swap (the marker written, the files half replaced) nothing was done by
# hand: verify says so and counts no drift; the next command as root writes them again.
touch "$HOST/var/lib/mkmachine/v1/host-pending"
printf '[Exec]\nBoot=no\n' >"$NS"
verify "$WORK/h5"
check "verify after an interrupted swap: no drift (exit 0)" test "$(rc "$WORK/h5")" = 0
check "... saying what happened and what restores it" contains "$WORK/h5" \
  "host file $NS: not what generation $(basename "$G") installed, left by an interrupted build, rollback or rm (the next mkmachine ls, build, rollback or rm as root writes generation $(basename "$G")'s files again)"
verify "$WORK/h5j" --json
check "... --json: interrupted, not blocking, clean" json_check "$WORK/h5j" 'd["clean"] is True' \
  '[(h["change"], h["blocking"], h["interrupted"]) for h in d["host_files"]] == [("changed", False, True)]'
mkm ls >/dev/null 2>&1
check "... and ls (as root) writes it again" cmp "$NS" "$WORK/v1.nspawn.built"
check "... removing the marker" test ! -e "$HOST/var/lib/mkmachine/v1/host-pending"
verify "$WORK/h6"
check "... after which verify lists no host file" bash -c "[ \"\$(cat '$WORK/h6.rc')\" = 0 ] && ! grep -q 'host file' '$WORK/h6'"

# --- 5. what verify cannot compare: said clearly ----------------------------------------------
mkm verify nosuch >"$WORK/e1" 2>&1; r=$?
check "an unknown machine: exit 1 and a message" bash -c "[ $r = 1 ] && grep -q \"no machine 'nosuch' built by mkmachine\" '$WORK/e1'"
cp "$G/manifest" "$WORK/manifest.good"
printf './zz type=file mode=0644 uid=0 gid=0 size=1 time=1\n' >>"$G/manifest"
mkm verify v1 >"$WORK/e2" 2>&1; r=$?
check "a manifest that does not match its digest is refused" \
  bash -c "[ $r = 1 ] && grep -q 'does not match the digest' '$WORK/e2'"
python3 - "$G" <<'PY'
import hashlib, sys
s = sys.argv[1]
t = open(s + "/manifest", "rb").read()
open(s + "/digest", "w").write("sha256:" + hashlib.sha256(t).hexdigest() + "\n")
PY
n=$(wc -l <"$G/manifest")
mkm verify v1 >"$WORK/e3" 2>&1; r=$?
check "a malformed manifest: the file and the line are named" contains "$WORK/e3" "$G/manifest: line $n: file has no sha256="
check "(exit 1)" test $r = 1
rm "$G/manifest"
mkm verify v1 >"$WORK/e4" 2>&1; r=$?
check "no manifest: said, with its path" bash -c "[ $r = 1 ] && grep -q '$G/manifest' '$WORK/e4'"

finish
