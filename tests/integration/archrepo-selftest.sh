#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Self-test of the Arch test fixtures: builds the repository with tests/tools/mkarchrepo.sh and
# proves with the real pacman (tests/tools/pacman-oracle.sh), gpgv and bsdtar that it is what
# the other Arch tests assume: installable, signed, deterministic, and hostile where it says so.
set -uo pipefail
export LC_ALL=C
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
TOOLS=$TOP/tests/tools

for t in pacman repo-add bsdtar zstd gpg gpgv python3; do
  if ! command -v "$t" >/dev/null; then
    echo "SKIP: $t is not installed (pacman-package-manager, makepkg, bsdtar, zstd, gnupg)"
    exit 77
  fi
done

W=$(mktemp -d /tmp/archrepo-selftest.XXXXXX)
HTTPD_PID=
cleanup() {
  [ -n "$HTTPD_PID" ] && kill "$HTTPD_PID" 2>/dev/null && wait "$HTTPD_PID" 2>/dev/null
  # the oracle unmounts its /proc itself; this is for an interrupted run
  grep -o " $W/[^ ]*/proc " /proc/mounts 2>/dev/null | while read -r m; do umount -l "$m"; done
  local g
  for g in "$W"/out/gnupg "$W"/out/untrusted/gnupg "$W"/out2/gnupg "$W"/out2/untrusted/gnupg; do
    [ -d "$g" ] && gpgconf --homedir "$g" --kill all >/dev/null 2>&1
  done
  rm -rf "$W"
}
trap cleanup EXIT

fails=0 oks=0
ok() { oks=$((oks + 1)); echo "ok $oks - $*"; }
not_ok() { fails=$((fails + 1)); echo "not ok - $*"; }
check() { # DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}
expect_eq() { # DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; printf '  expected: %s\n  actual:   %s\n' "$2" "$3"; fi
}
expect_grep() { # DESCRIPTION FIXED-STRING FILE
  if grep -qF -- "$2" "$3"; then ok "$1"; else not_ok "$1 (no '$2' in $3)"; sed 's/^/  | /' "$3" | tail -20; fi
}

OUT=$W/out
CORE=$OUT/repo/core/os/x86_64 EXTRA=$OUT/repo/extra/os/x86_64 HOSTILE=$OUT/repo/hostile/os/x86_64

# ------------------------------------------------------------------ build (twice: deterministic)
start=$(date +%s%N)
if ! bash "$TOOLS/mkarchrepo.sh" "$OUT" >"$W/build.log" 2>&1; then
  cat "$W/build.log"; echo "mkarchrepo.sh failed"; exit 1
fi
ms=$(( ($(date +%s%N) - start) / 1000000 ))
# Reported, not asserted: a timed test fails on a busy machine and proves nothing (speed is
# measured by make bench).
echo "# mkarchrepo.sh took ${ms} ms"
cat "$W/build.log"
expect_grep "summary: core has 26 packages and a signed db" "core      26 packages  db signed: yes" "$W/build.log"
expect_grep "summary: extra has 4 packages and an unsigned db" "extra      4 packages  db signed: no" "$W/build.log"
expect_grep "summary: hostile has 13 packages and a signed db" "hostile   13 packages  db signed: yes" "$W/build.log"
FPR=$(cat "$OUT/FINGERPRINT")
check "FINGERPRINT is a 40-hex-digit fingerprint" grep -qE '^[0-9A-F]{40}$' "$OUT/FINGERPRINT"
expect_eq "keyring/test-trusted is FPR:4:" "$FPR:4:" "$(cat "$OUT/keyring/test-trusted")"
expect_eq "packages.txt lists 43 packages" 43 "$(wc -l <"$OUT/packages.txt")"

bash "$TOOLS/mkarchrepo.sh" "$W/out2" >/dev/null 2>&1
( cd "$OUT/repo" && sha256sum */os/*/*.pkg.tar.zst ) >"$W/sums1"
( cd "$W/out2/repo" && sha256sum */os/*/*.pkg.tar.zst ) >"$W/sums2"
check "package files are byte-identical across two builds" cmp -s "$W/sums1" "$W/sums2"
check "the second build made a different key (keys are per build)" \
  test "$FPR" != "$(cat "$W/out2/FINGERPRINT")"
rm -rf "$W/out2"

# ------------------------------------------------------------------ package format
p=$CORE/scripted-1.0-1-x86_64.pkg.tar.zst
expect_eq "scripted: metadata first, in makepkg's (C-sorted) order" \
  ".BUILDINFO .INSTALL .MTREE .PKGINFO usr/" "$(bsdtar -tf "$p" | head -5 | tr '\n' ' ' | sed 's/ $//')"
check "packages are zstd-compressed" sh -c "zstd -t -q '$p'"
expect_eq "every entry of app is root:root with mtime SOURCE_DATE_EPOCH" "" \
  "$(python3 -c '
import sys, tarfile, subprocess, io
data = subprocess.run(["zstd", "-dc", sys.argv[1]], capture_output=True, check=True).stdout
for m in tarfile.open(fileobj=io.BytesIO(data)):
    if (m.uid, m.gid, m.uname, m.gname, m.mtime) != (0, 0, "root", "root", 1700000000):
        print(m.name)' "$CORE/app-1.0-1-x86_64.pkg.tar.zst")"
bsdtar -xOf "$CORE/app-1.0-1-x86_64.pkg.tar.zst" .PKGINFO >"$W/app.PKGINFO"
for l in "pkgname = app" "pkgbase = app" "pkgver = 1.0-1" "builddate = 1700000000" "arch = x86_64" \
  "size = 23" "group = base-test" "depend = libfoo.so=1-64" "depend = libc.so" "depend = sh" \
  "optdepend = cron: run app periodically" "packager = mkmachine tests <test@mkmachine.invalid>" \
  "license = MIT"; do
  expect_grep "app .PKGINFO has '$l'" "$l" "$W/app.PKGINFO"
done
bsdtar -xOf "$CORE/new-tool-2.0-1-x86_64.pkg.tar.zst" .PKGINFO >"$W/nt.PKGINFO"
for l in "conflict = old-tool" "provides = old-tool=2.0" "replaces = old-tool"; do
  expect_grep "new-tool .PKGINFO has '$l'" "$l" "$W/nt.PKGINFO"
done
bsdtar -xOf "$CORE/hardlinks-1.0-1-x86_64.pkg.tar.zst" .MTREE | zcat >"$W/hl.mtree"
expect_grep ".MTREE is bsdtar's mtree with makepkg's keywords" "/set type=file uid=0 gid=0 mode=644" "$W/hl.mtree"
expect_grep ".MTREE has sha256 digests" "./usr/share/hardlinks/a time=1700000000.0 size=21 md5digest=" "$W/hl.mtree"
check "hardlinks: b is a hard link entry to a" \
  sh -c "bsdtar -tvf '$CORE/hardlinks-1.0-1-x86_64.pkg.tar.zst' | grep -q 'usr/share/hardlinks/b link to usr/share/hardlinks/a'"
expect_grep "hardlinks: size counts the shared inode once" "size = 21" \
  <(bsdtar -xOf "$CORE/hardlinks-1.0-1-x86_64.pkg.tar.zst" .PKGINFO)
if command -v setcap >/dev/null; then
  check "caps: usr/bin/pinger carries security.capability (pax xattr)" sh -c \
    "zstd -dc '$CORE/caps-1.0-1-x86_64.pkg.tar.zst' | grep -aq 'SCHILY.xattr.security.capability'"
fi
bsdtar -xOf "$CORE/busybox-sh-1.35.0-1-x86_64.pkg.tar.zst" >/dev/null
check "busybox-sh: usr/bin/sh -> busybox" sh -c \
  "bsdtar -tvf '$CORE/busybox-sh-1.35.0-1-x86_64.pkg.tar.zst' | grep -q 'usr/bin/sh -> busybox'"
check "filesystem: tmp is 1777, root 0750, usr/sbin -> bin" sh -c "
  bsdtar -tvf '$CORE/filesystem-2024.01-1-any.pkg.tar.zst' >'$W/fs.list' &&
  grep -q '^drwxrwxrwt .* tmp/\$' '$W/fs.list' && grep -q '^drwxr-x--- .* root/\$' '$W/fs.list' &&
  grep -q 'usr/sbin -> bin\$' '$W/fs.list' && grep -q 'bin -> usr/bin\$' '$W/fs.list'"

# ------------------------------------------------------------------ signatures
verify() { gpgv --keyring "$OUT/keyring/test.gpg" "$1.sig" "$1" >/dev/null 2>&1; }
bad=
for f in "$CORE"/*.pkg.tar.zst "$EXTRA"/*.pkg.tar.zst; do verify "$f" || bad+=" ${f##*/}"; done
expect_eq "every core and extra package verifies with gpgv --keyring keyring/test.gpg" "" "$bad"
check "core.db.sig verifies" verify "$CORE/core.db"
check "hostile.db.sig verifies" verify "$HOSTILE/hostile.db"
check "extra has no db signature" test ! -e "$EXTRA/extra.db.sig"
check "the db carries %PGPSIG%" sh -c "bsdtar -xOf '$CORE/core.db' app-1.0-1/desc | grep -qx '%PGPSIG%'"
for n in evil-dotdot evil-abs evil-symlink evil-hardlink evil-hardlink-rel evil-device evil-size; do
  check "$n is validly signed (only its content is hostile)" verify "$HOSTILE/$n-1.0-1-x86_64.pkg.tar.zst"
done
check "evil-unsigned has no .sig" test ! -e "$HOSTILE/evil-unsigned-1.0-1-x86_64.pkg.tar.zst.sig"
check "evil-unsigned has no %PGPSIG% in the db" sh -c \
  "! bsdtar -xOf '$HOSTILE/hostile.db' evil-unsigned-1.0-1/desc | grep -q PGPSIG"
check "evil-wrongkey does not verify with the test keyring" sh -c \
  "! gpgv --keyring '$OUT/keyring/test.gpg' '$HOSTILE/evil-wrongkey-1.0-1-x86_64.pkg.tar.zst.sig' '$HOSTILE/evil-wrongkey-1.0-1-x86_64.pkg.tar.zst' 2>'$W/wk.err'"
expect_grep "evil-wrongkey: gpgv reports a missing public key" "No public key" "$W/wk.err"
for n in evil-badsig evil-tampered; do
  f=$HOSTILE/$n-1.0-1-x86_64.pkg.tar.zst
  gpgv --keyring "$OUT/keyring/test.gpg" "$f.sig" "$f" >"$W/$n.err" 2>&1
  expect_grep "$n: gpgv reports a BAD signature" "BAD signature" "$W/$n.err"
done
dbsha() { bsdtar -xOf "$HOSTILE/hostile.db" "$1-1.0-1/desc" | sed -n '/^%SHA256SUM%$/{n;p;q}'; }
expect_eq "evil-badsig: the db's sha256 matches the file" \
  "$(sha256sum <"$HOSTILE/evil-badsig-1.0-1-x86_64.pkg.tar.zst" | cut -d' ' -f1)" "$(dbsha evil-badsig)"
check "evil-tampered: the db's sha256 does not match the file" test \
  "$(sha256sum <"$HOSTILE/evil-tampered-1.0-1-x86_64.pkg.tar.zst" | cut -d' ' -f1)" != "$(dbsha evil-tampered)"
check "the untrusted key is not in keyring/test.gpg" sh -c \
  "! gpg --no-default-keyring --keyring '$OUT/keyring/test.gpg' --list-keys \"\$(GNUPGHOME='$OUT/untrusted/gnupg' gpg --with-colons --list-keys 2>/dev/null | awk -F: '/^fpr/{print \$10; exit}')\" >/dev/null 2>&1"

# ------------------------------------------------------------------ hostile content
hl() { bsdtar -tvf "$HOSTILE/$1-1.0-1-x86_64.pkg.tar.zst" 2>/dev/null; }
check "evil-dotdot has usr/../../escape-dotdot" sh -c "bsdtar -tf '$HOSTILE/evil-dotdot-1.0-1-x86_64.pkg.tar.zst' | grep -qx 'usr/../../escape-dotdot'"
check "evil-abs has /tmp/escape-abs" sh -c "bsdtar -tf '$HOSTILE/evil-abs-1.0-1-x86_64.pkg.tar.zst' | grep -qx '/tmp/escape-abs'"
expect_eq "evil-symlink: symlink usr/share/evil -> /tmp, then a file beneath it" \
  "lrwxrwxrwx usr/share/evil -> /tmp|-rw-r--r-- usr/share/evil/escape-symlink" \
  "$(hl evil-symlink | awk '/usr\/share\/evil( |\/escape)/ {printf "%s%s %s", sep, $1, $9; if ($10) printf " %s %s", $10, $11; sep="|"}')"
check "evil-hardlink: hard link to /etc/passwd" sh -c "bsdtar -tvf '$HOSTILE/evil-hardlink-1.0-1-x86_64.pkg.tar.zst' | grep -q 'usr/share/evil-passwd link to /etc/passwd\$'"
check "evil-hardlink-rel: hard link to ../../../../../../../../etc/passwd" sh -c "bsdtar -tvf '$HOSTILE/evil-hardlink-rel-1.0-1-x86_64.pkg.tar.zst' | grep -q 'usr/share/evil-passwd link to ../../../../../../../../etc/passwd\$'"
check "evil-device: char device dev/evil 1,1" sh -c "bsdtar -tvf '$HOSTILE/evil-device-1.0-1-x86_64.pkg.tar.zst' | grep -q '^crw-rw-rw- .* 1,1 .* dev/evil\$'"
check "evil-dotdot's .MTREE lists the escaping entry too" sh -c \
  "bsdtar -xOf '$HOSTILE/evil-dotdot-1.0-1-x86_64.pkg.tar.zst' .MTREE | zcat | grep -q '^./usr/../../escape-dotdot '"
expect_grep "evil-size: db %ISIZE% is 1" "$(printf '%%ISIZE%%\n1')" <(bsdtar -xOf "$HOSTILE/hostile.db" evil-size-1.0-1/desc)
check "evil-size: content is 8 MiB" sh -c "bsdtar -tvf '$HOSTILE/evil-size-1.0-1-x86_64.pkg.tar.zst' | grep -q ' 8388608 .*usr/share/evil-size/big'"

# ------------------------------------------------------------------ real pacman, file://
oracle() { bash "$TOOLS/pacman-oracle.sh" "$@"; }
R=$W/root1
TARGETS=(base-test app cron-user confpkg scripted hooktarget)
if oracle "$R" "file://$OUT/repo" "$OUT/pacman-gpg" "${TARGETS[@]}" 2>"$W/i1.log"; then
  ok "pacman installs ${TARGETS[*]} over file://"
else
  not_ok "pacman installs ${TARGETS[*]} over file://"; cat "$W/i1.log"
fi
check "no /proc left mounted in the root" sh -c "! mountpoint -q '$R/proc'"
expect_eq "install order (pacman's)" \
  "filesystem libc-fake libfoo busybox-sh app cronie cron-user confpkg scripted hookpkg hooktarget" \
  "$(sed -n 's/^installing \(.*\)\.\.\.$/\1/p' "$W/i1.log" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "pacman -Q" \
  "app 1.0-1,busybox-sh 1.35.0-1,confpkg 1.0-1,cron-user 1.0-1,cronie 1.7.0-1,filesystem 2024.01-1,hookpkg 1.0-1,hooktarget 1.0-1,libc-fake 2.38-1,libfoo 1.4-1,scripted 1.0-1" \
  "$(pacman --root "$R" -Q | paste -sd,)"
expect_eq "dependencies have install reason 'dependency' (pacman -Qd)" \
  "cronie hookpkg libc-fake libfoo" "$(pacman --root "$R" -Qdq | paste -sd' ')"
if pacman --root "$R" -Qkk >"$W/qkk.log" 2>&1; then ok "pacman -Qkk is clean"; else not_ok "pacman -Qkk is clean"; cat "$W/qkk.log"; fi
check "pacman -Qkk reports no altered files" sh -c "! grep -v ' 0 altered files' '$W/qkk.log'"
expect_eq "post_install ran inside the root" "installed 1.0-1" "$(cat "$R/var/lib/scripted.marker" 2>&1)"
expect_eq "pre_install ran inside the root" "pre_install 1.0-1" "$(cat "$R/var/lib/scripted.pre" 2>&1)"
expect_eq "the PostTransaction hook got its sorted targets on stdin" \
  "usr/share/test-hook/ usr/share/test-hook/one usr/share/test-hook/sub/ usr/share/test-hook/sub/two" \
  "$(tr '\n' ' ' <"$R/var/lib/test-hook.targets" 2>&1 | sed 's/ $//')"
check "busybox sh works in the root" sh -c "test \"\$(chroot '$R' /bin/sh -c 'echo hi')\" = hi"
check "confpkg's backup file is recorded with its md5" sh -c \
  "grep -A1 '^%BACKUP%' '$R/var/lib/pacman/local/confpkg-1.0-1/files' | grep -q '^etc/conf.d/confpkg.conf	[0-9a-f]\{32\}\$'"
check "packages were validated by signature" sh -c \
  "grep -A1 '^%VALIDATION%' '$R/var/lib/pacman/local/app-1.0-1/desc' | grep -qx pgp"

# --noscriptlet: no scriptlet ran; hooks still run
R3=$W/root3
oracle "$R3" "file://$OUT/repo" "$OUT/pacman-gpg" --noscriptlet scripted hooktarget 2>"$W/i3.log" ||
  { not_ok "pacman --noscriptlet installs scripted hooktarget"; cat "$W/i3.log"; }
check "--noscriptlet: no post_install marker" test ! -e "$R3/var/lib/scripted.marker"
check "--noscriptlet: the hook still ran" test -s "$R3/var/lib/test-hook.targets"

# unsatisfiable dependency
if oracle "$W/root-unsat" "file://$OUT/repo" "$OUT/keyring" unsat 2>"$W/unsat.log"; then
  not_ok "pacman -S unsat fails"
else
  ok "pacman -S unsat fails"
fi
expect_grep "unsat: pacman names the dependency" "unable to satisfy dependency 'libfoo>=3' required by unsat" "$W/unsat.log"

# ------------------------------------------------------------------ real pacman, http://
mkdir -p "$W/http"
PORT=
if [ -f "$TOOLS/httpd.py" ]; then # the project's loopback server
  python3 "$TOOLS/httpd.py" --root "$OUT/repo" --port-file "$W/http/port" --log "$W/http/log" \
    >"$W/http/out" 2>&1 &
  HTTPD_PID=$!
  for _ in $(seq 200); do
    [ -s "$W/http/port" ] && PORT=$(cat "$W/http/port") && break
    sleep 0.05
  done
else
  python3 -u -m http.server --bind 127.0.0.1 --directory "$OUT/repo" 0 >"$W/http/log" 2>&1 &
  HTTPD_PID=$!
  for _ in $(seq 200); do
    PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$W/http/log" | head -1)
    [ -n "$PORT" ] && break
    sleep 0.05
  done
fi
check "http server started on 127.0.0.1:$PORT" test -n "$PORT"
R2=$W/root2
if oracle "$R2" "http://127.0.0.1:$PORT" "$OUT/pacman-gpg" caps hardlinks needs-libfoo2 needs-epoch cron-user fcron \
  2>"$W/i2.log"; then
  ok "pacman installs over http://"
else
  not_ok "pacman installs over http://"; cat "$W/i2.log"
fi
expect_grep "pacman fetched the db over http (server log)" "GET /core/os/x86_64/core.db" "$W/http/log"
expect_grep "pacman fetched a package over http (server log)" "GET /extra/os/x86_64/libfoo-2.0-1-x86_64.pkg.tar.zst" "$W/http/log"
expect_eq "http install order" \
  "caps hardlinks filesystem libc-fake libfoo needs-libfoo2 epochpkg needs-epoch busybox-sh fcron cron-user" \
  "$(sed -n 's/^installing \(.*\)\.\.\.$/\1/p' "$W/i2.log" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "libfoo>=2 resolves to extra's libfoo 2.0-1 (core's 1.4-1 does not satisfy it)" \
  "libfoo 2.0-1" "$(pacman --root "$R2" -Q libfoo 2>&1)"
expect_eq "epochpkg 1:0.9-1 from core satisfies epochpkg>=1.0" "epochpkg 1:0.9-1" "$(pacman --root "$R2" -Q epochpkg 2>&1)"
check "fcron as a target satisfies cron (cronie not installed)" sh -c "! pacman --root '$R2' -Q cronie >/dev/null 2>&1"
check "hard links stay hard links" test "$R2/usr/share/hardlinks/a" -ef "$R2/usr/share/hardlinks/b"
if command -v getcap >/dev/null; then
  expect_eq "file capability survives installation" "$R2/usr/bin/pinger cap_net_raw=ep" "$(getcap "$R2/usr/bin/pinger")"
fi
if pacman --root "$R2" -Qkk >"$W/qkk2.log" 2>&1; then ok "pacman -Qkk is clean (http root)"; else not_ok "pacman -Qkk is clean (http root)"; cat "$W/qkk2.log"; fi

# ------------------------------------------------------------------ pacman on the hostile repo
# (only the cases whose effects stay inside $W; see the report for symlink/hardlink)
export PACMAN_ORACLE_REPOS="core extra hostile"
hostile() { # NAME -> log in $W/h-NAME.log, root $W/h-NAME/root; returns pacman's status
  mkdir -p "$W/h-$1"
  oracle "$W/h-$1/root" "file://$OUT/repo" "$OUT/pacman-gpg" "$1" 2>"$W/h-$1.log"
}
hostile evil-unsigned && not_ok "pacman refuses evil-unsigned" || ok "pacman refuses evil-unsigned"
expect_grep "evil-unsigned: pacman wants the .sig" "failed retrieving file 'evil-unsigned-1.0-1-x86_64.pkg.tar.zst.sig'" "$W/h-evil-unsigned.log"
hostile evil-wrongkey && not_ok "pacman refuses evil-wrongkey" || ok "pacman refuses evil-wrongkey"
expect_grep "evil-wrongkey: key missing" "error: required key missing from keyring" "$W/h-evil-wrongkey.log"
for n in evil-badsig evil-tampered; do
  hostile $n && not_ok "pacman refuses $n" || ok "pacman refuses $n"
  expect_grep "$n: invalid signature" "error: $n: signature from \"mkmachine test repo <test@mkmachine.invalid>\" is invalid" "$W/h-$n.log"
done
hostile evil-dotdot && ok "pacman installs evil-dotdot" || not_ok "pacman installs evil-dotdot"
check "evil-dotdot: pacman wrote outside the root" test -f "$W/h-evil-dotdot/escape-dotdot"
hostile evil-device && ok "pacman installs evil-device" || not_ok "pacman installs evil-device"
check "evil-device: pacman created the char device" test -c "$W/h-evil-device/root/dev/evil"
hostile evil-size && ok "pacman installs evil-size" || not_ok "pacman installs evil-size"
expect_grep "evil-size: pacman believes the lie" "Installed Size  : 1.00 B" \
  <(pacman --root "$W/h-evil-size/root" -Qi evil-size)
unset PACMAN_ORACLE_REPOS

echo "$oks passed, $fails failed"
[ "$fails" -eq 0 ]
