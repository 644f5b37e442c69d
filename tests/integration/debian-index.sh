#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian metadata parsers (builder/debian/index.h) on the real archive. Downloads
# dists/bookworm/InRelease and main/binary-amd64/Packages.xz from the host's mirror (debian_mirror
# in it-lib.sh), then checks, through tests/tools/deb-index-dump built against libmkm.a with this
# build's flags:
#   - the signed text (gpgv with debian-archive-keyring, which also extracts it) parses, and
#     reads exactly as tests/tools/deb-index-oracle.py, an independent Python reading, reads it;
#   - the Release's SHA256 entry for main/binary-amd64/Packages.xz is the sha256sum and size of
#     the file downloaded;
#   - every one of the ~63k packages, all kept fields, relationships included, equals the Python
#     reading line by line; the count equals grep -c '^Package:';
#   - hostile edits of the real index (a Filename with "..", a SHA256 line removed, a NUL byte)
#     are refused with LABEL:LINE pointing at the edited line;
#   - without sanitizers: the parse takes under 1.5 s of CPU (the aim is 0.6 s; this only
#     catches gross regressions on a loaded machine) and the parsed index costs less than 0.85
#     of the text it came from (peak RSS with /usr/bin/time -v, minus reading the file alone).
# Skips, saying why, when the mirror is not configured or not reachable.
set -u
. "$TOP/tests/tools/it-lib.sh"
: "${BUILD:?}"

# debian_mirror itself, on fixture apt directories
mkdir -p "$WORK/apt1/sources.list.d" "$WORK/apt2"
printf 'Types: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\nEnabled: no\n\n# comment\nTypes: deb-src deb\nURIs: http://one.invalid/debian/\nSuites: sid bookworm\n' \
  >"$WORK/apt1/sources.list.d/a.sources"
printf 'deb-src http://src.invalid/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://two.invalid/debian/ bookworm main\n' \
  >"$WORK/apt2/sources.list"
check "debian_mirror: deb822 sources, disabled stanzas skipped" \
  test "$(MKMACHINE_DEBIAN_MIRROR='' APT_ETC="$WORK/apt1" debian_mirror)" = "http://one.invalid/debian"
check "debian_mirror: one-line sources with options" \
  test "$(MKMACHINE_DEBIAN_MIRROR='' APT_ETC="$WORK/apt2" debian_mirror)" = "http://two.invalid/debian"
check "debian_mirror: no source for the suite" \
  bash -c ". '$TOP/tests/tools/it-lib.sh'; ! MKMACHINE_DEBIAN_MIRROR='' APT_ETC='$WORK/apt1' debian_mirror trixie"
check "debian_mirror: MKMACHINE_DEBIAN_MIRROR wins" \
  test "$(MKMACHINE_DEBIAN_MIRROR=http://env.invalid/d/ APT_ETC="$WORK/apt1" debian_mirror)" = "http://env.invalid/d"

MIRROR=$(debian_mirror bookworm) || skip "skipped: no bookworm 'deb' source in the host's apt sources (set MKMACHINE_DEBIAN_MIRROR)"
command -v xz >/dev/null || skip "skipped: xz missing (make deps)"

fetch() {  # fetch URL FILE
  if command -v curl >/dev/null; then
    curl -sSfL --retry 2 --max-time 300 -o "$2" "$1"
  else
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$1" "$2"
  fi
}
fetch "$MIRROR/dists/bookworm/InRelease" "$WORK/InRelease" 2>"$WORK/fetch.err" ||
  skip "skipped: cannot download dists/bookworm/InRelease from the host's mirror: $(tail -1 "$WORK/fetch.err")"
fetch "$MIRROR/dists/bookworm/main/binary-amd64/Packages.xz" "$WORK/Packages.xz" 2>"$WORK/fetch.err" ||
  skip "skipped: cannot download main/binary-amd64/Packages.xz: $(tail -1 "$WORK/fetch.err")"

# shellcheck disable=SC2046,SC2086
cc -O2 -g ${SANFLAGS:-} -std=c11 -D_GNU_SOURCE -I"$TOP/builder" -o "$WORK/dump" "$TOP/tests/tools/deb-index-dump.c" \
  "$BUILD/libmkm.a" $(pkg-config --libs libcurl libarchive gpgme libzstd libcrypto libseccomp) -lpthread ||
  { bad "deb-index-dump builds against libmkm.a"; finish; exit 1; }
DUMP=$WORK/dump
ORACLE=$TOP/tests/tools/deb-index-oracle.py

# ---- Release ----
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
if command -v gpgv >/dev/null && [ -r "$KEYRING" ]; then
  if gpgv --keyring "$KEYRING" --output "$WORK/Release" "$WORK/InRelease" 2>"$WORK/gpgv.log"; then
    ok "InRelease signature checks out (gpgv, debian-archive-keyring)"
  else
    bad "InRelease signature checks out:"; cat "$WORK/gpgv.log"
  fi
else
  echo "# gpgv or $KEYRING missing: stripping the armor instead of checking it"
  sed -n '/^-----BEGIN PGP SIGNED MESSAGE-----$/,/^-----BEGIN PGP SIGNATURE-----$/p' "$WORK/InRelease" |
    sed '1,/^$/d;$d' | sed 's/^- //' >"$WORK/Release"
fi
if "$DUMP" release "$WORK/Release" >"$WORK/release.ours" 2>"$WORK/release.err"; then
  ok "Release parses ($(grep -c '^[0-9a-f]\{64\} ' "$WORK/release.ours") SHA256 entries)"
else
  bad "Release parses: $(cat "$WORK/release.err")"
fi
python3 "$ORACLE" release "$WORK/Release" >"$WORK/release.theirs"
check "Release reads as the Python reading does" diff -u "$WORK/release.theirs" "$WORK/release.ours"
check "Release: codename bookworm, a date" \
  bash -c "grep -qx 'codename bookworm' '$WORK/release.ours' && grep -q '^date [1-9][0-9]*$' '$WORK/release.ours'"

entry=$(awk '$3 == "main/binary-amd64/Packages.xz" { print $1, $2 }' "$WORK/release.ours")
actual="$(sha256sum "$WORK/Packages.xz" | cut -d' ' -f1) $(stat -c %s "$WORK/Packages.xz")"
if [ -n "$entry" ] && [ "$entry" = "$actual" ]; then
  ok "SHA256 entry of main/binary-amd64/Packages.xz is the download's sha256sum and size"
else
  bad "SHA256 entry of main/binary-amd64/Packages.xz: Release says '$entry', the file is '$actual'"
fi

# ---- Packages ----
xz -dc "$WORK/Packages.xz" >"$WORK/Packages" || { bad "Packages.xz decompresses"; finish; exit 1; }
want=$(grep -c '^Package:' "$WORK/Packages")
if "$DUMP" packages "$WORK/Packages" >"$WORK/pkgs.ours" 2>"$WORK/pkgs.err"; then
  ok "Packages parses"
else
  bad "Packages parses: $(cat "$WORK/pkgs.err")"
fi
check "package count $(wc -l <"$WORK/pkgs.ours") equals grep -c '^Package:' ($want)" test "$(wc -l <"$WORK/pkgs.ours")" -eq "$want"
check "over 50000 packages (the real index, not an error page)" test "$want" -gt 50000
python3 "$ORACLE" packages "$WORK/Packages" >"$WORK/pkgs.theirs"
if cmp -s "$WORK/pkgs.theirs" "$WORK/pkgs.ours"; then
  ok "all $want packages, every kept field, equal the Python reading"
else
  bad "packages differ from the Python reading (first differences, Python first):"
  diff "$WORK/pkgs.theirs" "$WORK/pkgs.ours" | head -20
fi
python3 "$ORACLE" packages "$WORK/Packages" --sample 200 --seed "$RANDOM" >"$WORK/sample"
n=$(awk 'NR == FNR { want[$1 + 1] = substr($0, index($0, "\t") + 1); next }
           (FNR in want) && $0 == want[FNR] { n++ } END { print n + 0 }' "$WORK/sample" "$WORK/pkgs.ours")
check "a random sample of 200 packages agrees (a second look at the same comparison)" test "$n" -eq 200
check "essential and required packages are there (dpkg Essential, apt Priority)" \
  bash -c "awk -F'\t' '\$1 == \"dpkg\" && \$10 == \"yes\" { e = 1 } \$8 == \"required\" { r++ } END { exit !(e && r > 20) }' '$WORK/pkgs.ours'"

# ---- hostile edits of the real index, with the line they are on ----
refuses() {  # refuses NAME FILE EXPECTED-MESSAGE
  local out
  if out=$("$DUMP" count "$2" 2>&1); then
    bad "$1: accepted"
  elif [ "$out" = "$3" ]; then
    ok "$1: $out"
  else
    bad "$1: said '$out', expected '$3'"
  fi
}
# (the 1000th Filename short enough that the message quotes it whole)
line=$(awk '/^Filename: / && length($0) < 80 && ++n == 1000 { print NR; exit }' "$WORK/Packages")
sed "${line}s|^Filename: pool/|Filename: pool/../../|" "$WORK/Packages" >"$WORK/P1"
refuses "a Filename with '..'" "$WORK/P1" \
  "$WORK/P1:$line: Filename: '.' or '..' in path: '$(sed -n "${line}p" "$WORK/P1" | cut -c11-)'"
line=$(grep -n '^SHA256: ' "$WORK/Packages" | sed -n '2000p' | cut -d: -f1)
start=$(head -n "$line" "$WORK/Packages" | grep -n '^Package: ' | tail -1)
sed "${line}d" "$WORK/Packages" >"$WORK/P2"
refuses "a package without SHA256" "$WORK/P2" "$WORK/P2:${start%%:*}: package '${start#*: }' has no SHA256 field"
line=$(grep -n '^Version: ' "$WORK/Packages" | sed -n '3000p' | cut -d: -f1)
sed "${line}s|^Version: |Version: \x00|" "$WORK/Packages" >"$WORK/P3"
refuses "a NUL byte" "$WORK/P3" "$WORK/P3:$line: NUL byte"

# ---- speed and memory (meaningless under sanitizers) ----
if [ -z "${SANFLAGS:-}" ]; then
  "$DUMP" bench "$WORK/Packages" 3 >"$WORK/bench" || bad "bench runs"
  echo "# $(cat "$WORK/bench")"
  cpu=$(awk '{ for (i = 1; i < NF; i++) if ($i == "cpu") print $(i + 2) }' "$WORK/bench")
  check "parse under 1.5 s of CPU (best of 3: ${cpu}s)" awk -v c="$cpu" 'BEGIN { exit !(c < 1.5) }'
  rss() { /usr/bin/time -f %M "$DUMP" "$1" "$WORK/Packages" 2>&1 >/dev/null | tail -1; }
  if [ -x /usr/bin/time ]; then
    base=$(rss read) full=$(rss count) text=$(($(stat -c %s "$WORK/Packages") / 1024))
    echo "# peak RSS: reading the text ${base} KiB, reading and parsing ${full} KiB, text ${text} KiB"
    check "the parsed index costs $((full - base)) KiB, under 0.85 of the text's $text KiB" \
      test $(((full - base) * 100)) -lt $((text * 85))
  fi
fi
finish
