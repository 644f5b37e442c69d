#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian trust chain, against doctored metadata served on loopback: a small archive made here
# (dpkg-deb packages, a Packages index, a Release clearsigned by a throwaway key) is built once;
# then each of these is refused with its own message, and the deployed machine and its state stay
# exactly as they were:
#   a tampered InRelease, an expired Valid-Until, a Release signed for another suite, a Packages
#   index with the wrong hash, a .deb with the wrong hash, an unknown signing key, an unsigned
#   Release, and a lock whose pinned digest was altered.
# Also: a mirror without InRelease is used through Release + Release.gpg.
source "$(dirname "$0")/../tools/it-lib.sh"
need_root
command -v dpkg-deb >/dev/null || skip "skipped: dpkg-deb missing"
command -v gpg >/dev/null || skip "skipped: gpg missing (make deps)"

export GNUPGHOME=$WORK/gnupg
mkdir -m 0700 "$GNUPGHOME"
CLEANUP+=("gpgconf --homedir '$GNUPGHOME' --kill all")
g() { gpg --batch --no-tty --quiet --pinentry-mode loopback --passphrase '' "$@"; }
g --quick-gen-key 'mkmachine test archive <a@test>' ed25519 sign never
g --quick-gen-key 'mkmachine stranger <s@test>' ed25519 sign never
g --export 'mkmachine test archive' >"$WORK/archive.gpg"

# ---- a small archive ----
A=$WORK/archive
mkpkg() {  # mkpkg NAME VERSION
  local d=$WORK/pkg/$1
  mkdir -p "$d/DEBIAN" "$d/usr/share/$1"
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: t <t@test>\nDescription: test package\n' "$1" "$2" >"$d/DEBIAN/control"
  echo "$1 $2" >"$d/usr/share/$1/version"
  mkdir -p "$A/pool/main/${1:0:1}/$1"
  dpkg-deb --root-owner-group -Zxz --build "$d" "$A/pool/main/${1:0:1}/$1/${1}_${2}_all.deb" >/dev/null
}
mkpkg hello 1.0
mkpkg world 2.0
index() {  # write Packages for every .deb in the pool
  local f
  mkdir -p "$A/dists/bookworm/main/binary-amd64"
  : >"$A/dists/bookworm/main/binary-amd64/Packages"
  for f in $(cd "$A" && find pool -name '*.deb' | sort); do
    dpkg-deb -f "$A/$f" | grep -v '^Description' >>"$A/dists/bookworm/main/binary-amd64/Packages"
    printf 'Installed-Size: 4\nFilename: %s\nSize: %s\nSHA256: %s\nDescription: test package\n\n' "$f" \
      "$(stat -c %s "$A/$f")" "$(sha256sum "$A/$f" | cut -d' ' -f1)" >>"$A/dists/bookworm/main/binary-amd64/Packages"
  done
  xz -kf "$A/dists/bookworm/main/binary-amd64/Packages"
}
release() {  # release [CODENAME [VALID_UNTIL_DAYS [KEY]]]: write and sign dists/bookworm/{Release,InRelease,Release.gpg}
  local code=${1:-bookworm} days=${2:-30} key=${3:-mkmachine test archive} rel=$A/dists/bookworm/Release f
  {
    printf 'Origin: mkmachine-test\nLabel: mkmachine-test\nSuite: stable\nCodename: %s\n' "$code"
    printf 'Date: %s\n' "$(LC_ALL=C date -u -R -d '-1 hour' | sed 's/+0000/UTC/')"
    printf 'Valid-Until: %s\n' "$(LC_ALL=C date -u -R -d "$days days" | sed 's/+0000/UTC/')"
    printf 'Architectures: amd64\nComponents: main\nDescription: test\nSHA256:\n'
    for f in main/binary-amd64/Packages main/binary-amd64/Packages.xz; do
      printf ' %s %16s %s\n' "$(sha256sum "$A/dists/bookworm/$f" | cut -d' ' -f1)" "$(stat -c %s "$A/dists/bookworm/$f")" "$f"
    done
  } >"$rel"
  rm -f "$A/dists/bookworm/InRelease" "$rel.gpg"
  g -u "$key" --clearsign -o "$A/dists/bookworm/InRelease" "$rel"
  g -u "$key" --detach-sign --armor -o "$rel.gpg" "$rel"
}
index
release
start_httpd "$A"
URL=http://127.0.0.1:$HTTPD_PORT

H=$WORK/host
mkdir -p "$H"
recipe() {  # recipe FILE [LOCKED]
  cat >"$1" <<EOF
[Machine]
Name=trusty
[Bootstrap]
Distribution=debian
Mirror=$URL
Suite=bookworm
Architecture=amd64
Variant=extract
Packages=hello world
Keyring=archive.gpg
EOF
}
cp "$WORK/archive.gpg" "$WORK/r/archive.gpg" 2>/dev/null || { mkdir -p "$WORK/r"; cp "$WORK/archive.gpg" "$WORK/r/"; }
recipe "$WORK/r/trusty.recipe"
run() {  # run LABEL: build with a fresh cache; output in $WORK/LABEL.out
  local c=$WORK/cache.$1
  mkdir -m 0700 -p "$c"
  "$MKMACHINE" --host-root "$H" --cache-dir "$c" build "$WORK/r/trusty.recipe" >"$WORK/$1.out" 2>&1
}
if run good; then ok "a build from the signed test archive succeeds"; else bad "good build"; cat "$WORK/good.out"; finish; fi
check "the packages are in the tree" test -f "$H/var/lib/machines/trusty/usr/share/world/version"
check "the lock pins the Release it was planned from" grep -q '^index bookworm/' "$WORK/r/trusty.recipe.lock"
# The machine, its state, its host files, and what else is in the machines directory (a failed
# build may touch the directory's own time stamp: it made and removed its staging tree there).
hoststate() {
  snapshot "$H/var/lib/machines/trusty"; snapshot "$H/var/lib/mkmachine"
  [ -d "$H/etc" ] && snapshot "$H/etc"
  ls -A "$H/var/lib/machines"
}
before=$(hoststate)

refused() {  # refused LABEL TEXT DESCRIPTION: the build failed, said TEXT, and changed nothing
  local label=$1 text=$2 what=$3
  if run "$label"; then bad "$what: the build succeeded"; return; fi
  if grep -qiF -- "$text" "$WORK/$label.out"; then ok "$what: refused ('$text')"; else
    bad "$what: the message lacks '$text'"; sed 's/^/    | /' "$WORK/$label.out" | tail -5; fi
  local after; after=$(hoststate)
  if [ "$after" = "$before" ]; then ok "$what: the machine and its state are unchanged"; else
    bad "$what: the host changed"; diff <(echo "$before") <(echo "$after") | head -10; fi
}
saved=$WORK/saved
cp -a "$A" "$saved"
restore() { rm -rf "$A"; cp -a "$saved" "$A"; }
rm -f "$WORK/r/trusty.recipe.lock"

# Keyring= outside the recipe's directory: for Debian its bytes are copied into the machine, so a
# co-tenant's recipe naming another tenant's key file (or a link to it) would hand it over.
sed -i "s|^Keyring=.*|Keyring=$WORK/archive.gpg|" "$WORK/r/trusty.recipe"
refused keyout "Keyring=: '$WORK/archive.gpg' is not beside the recipe that names it" "a Keyring= outside the recipe's directory"
ln -s "$WORK/archive.gpg" "$WORK/r/link.gpg"
sed -i "s|^Keyring=.*|Keyring=link.gpg|" "$WORK/r/trusty.recipe"
refused keylink "Keyring=: '$WORK/r/link.gpg' is not beside the recipe that names it" "a Keyring= link out of the recipe's directory"
rm -f "$WORK/r/link.gpg"
recipe "$WORK/r/trusty.recipe"

# a tampered InRelease: one byte of the signed text changed
sed -i 's/^Label: mkmachine-test/Label: mkmachine-evil/' "$A/dists/bookworm/InRelease"
refused tampered "bad signature" "a tampered InRelease"
restore

# an expired Valid-Until (properly signed)
release bookworm -2
refused expired "expired" "an InRelease past its Valid-Until"
restore

# a Release signed for another suite, served as bookworm (a downgrade or cross-suite replay)
release trixie
refused othersuite "not for 'bookworm'" "a Release of another suite"
restore

# an unknown signing key
release bookworm 30 'mkmachine stranger'
refused stranger "not in the keyring" "a Release signed by an unknown key"
restore

# no signature at all: Release only
rm -f "$A/dists/bookworm/InRelease" "$A/dists/bookworm/Release.gpg"
refused unsigned "unsigned Release" "an unsigned Release"
restore

# a Packages index that is not the one the Release lists
printf 'Package: evil\nVersion: 1\nArchitecture: all\nFilename: pool/x.deb\nSize: 1\nSHA256: %064d\n\n' 0 | xz >"$A/dists/bookworm/main/binary-amd64/Packages.xz"
refused badindex "Packages.xz" "a Packages index with the wrong hash"
restore

# a .deb that is not the one the index lists (same size, other bytes)
deb=$(find "$A/pool" -name 'world_*.deb')
printf 'X' | dd of="$deb" bs=1 seek=100 conv=notrunc status=none
refused baddeb "world_2.0_all.deb" "a .deb with the wrong hash"
restore

# a .deb whose control file disagrees with the signed index: Multi-Arch: same and an
# "architecture" that walks out of /var/lib/dpkg/info (found in review: it wrote host files)
evil=$WORK/pkg/world
printf 'Package: world\nVersion: 2.0\nArchitecture: x/../../../../../../../../../../%s/escaped\nMulti-Arch: same\nMaintainer: t <t@test>\nDescription: evil\n' \
  "${WORK#/}" >"$evil/DEBIAN/control"
echo 'echo pwned' >"$evil/DEBIAN/sh"
mkdir -p "$evil/var/lib/dpkg/info/world:x"
deb=$(find "$A/pool" -name 'world_*.deb')
dpkg-deb --nocheck --root-owner-group -Zxz --build "$evil" "$deb" >/dev/null 2>&1
index
# the index keeps the honest fields, with the new file's size and digest
P=$A/dists/bookworm/main/binary-amd64/Packages
python3 - "$P" "$(stat -c %s "$deb")" "$(sha256sum "$deb" | cut -d' ' -f1)" <<'PY'
import sys
p, size, sha = sys.argv[1:]
paras = open(p).read().strip("\n").split("\n\n")
out = []
for para in paras:
    if para.startswith("Package: world"):
        para = "\n".join("Architecture: all" if l.startswith("Architecture:") else l
                         for l in para.split("\n") if not l.startswith("Multi-Arch:"))
    out.append(para)
open(p, "w").write("\n\n".join(out) + "\n")
PY
xz -kf "$P"
release
refused evilarch "the signed index lists" "a .deb whose control file disagrees with the index"
check "nothing was written outside the machine" test -z "$(ls "$WORK"/escaped* 2>/dev/null)"
restore
rm -rf "$WORK/pkg/world/var" "$WORK/pkg/world/DEBIAN/sh"

# Release + Release.gpg when the mirror has no InRelease
rm -f "$A/dists/bookworm/InRelease"
if run fallback; then ok "Release + Release.gpg are used when there is no InRelease"; else bad "fallback to Release.gpg"; tail -5 "$WORK/fallback.out"; fi
restore

# a conffiles entry naming another package's file: recorded, but that file is not touched
cf=$WORK/pkg/hello
echo "/usr/share/world/version" >"$cf/DEBIAN/conffiles"
deb=$(find "$A/pool" -name 'hello_*.deb')
dpkg-deb --nocheck --root-owner-group -Zxz --build "$cf" "$deb" >/dev/null 2>&1
index
release
rm -f "$WORK/r/trusty.recipe.lock"     # it pins the hello before this one
if run conffile; then
  check "another package's file named as a conffile stays where it is" test -f "$H/var/lib/machines/trusty/usr/share/world/version"
  check "...and is not staged as .dpkg-new" test ! -e "$H/var/lib/machines/trusty/usr/share/world/version.dpkg-new"
  check "...and the status file records it for hello" grep -q '^ /usr/share/world/version newconffile' "$H/var/lib/machines/trusty/var/lib/dpkg/status"
else
  bad "a build with a foreign conffile entry"; tail -5 "$WORK/conffile.out"
fi
rm -f "$cf/DEBIAN/conffiles"
restore
rm -f "$WORK/r/trusty.recipe.lock"

# a lock whose pinned digest was altered (a co-tenant's lock is untrusted input)
run relock || { bad "a build that writes the lock"; tail -5 "$WORK/relock.out"; }
before=$(hoststate)
sed -i -E '/^package world /s/ [0-9a-f]{64} / 0000000000000000000000000000000000000000000000000000000000000000 /' "$WORK/r/trusty.recipe.lock"
refused badlock "not in the signed indexes" "a lock with an altered digest"
finish
