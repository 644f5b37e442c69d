#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian resolver against mmdebstrap itself, on the real bookworm main/amd64 index of the
# host's mirror: for
#   (a) --variant=minbase, and
#   (b) --variant=minbase --include=systemd-sysv,dbus,openssh-server,fuse3,docker.io
# (both with mmdebstrap's merged-usr hook, as debootstrap sets up /usr), our plan must list the
# same packages at the same versions as `dpkg-query -W` in the tree mmdebstrap built.
#
# The index is downloaded once, its InRelease checked with gpgv and the Packages.xz against the
# SHA256 the InRelease lists. mmdebstrap runs as root, both cases at once, into a tmpfs under
# the test's scratch dir (dpkg --force-unsafe-io: nothing here needs to survive a crash); it
# keeps its apt lists so the test can confirm mmdebstrap saw the very InRelease we resolved
# against. mmdebstrap's answer is cached in $BUILD/debian-oracle/, keyed by that InRelease's
# sha256, mmdebstrap's version and the case: a rerun on the same mirror state takes seconds.
# DEBRESOLVE_ORACLE_REFRESH=1 ignores the cache.
#
# DEBRESOLVE_EXTRA=1 adds more package sets (other variants, mail transport agents, desktops,
# a Conflicts that undoes an earlier choice) against tests/tools/debresolve-aptsim.py, which
# replays mmdebstrap's apt steps with `apt-get -s` (about half a minute each here);
# DEBRESOLVE_EXTRA_CASES="variant pkg,pkg;variant;..." replaces the list.
set -u
# shellcheck source=../tools/it-lib.sh
. "$TOP/tests/tools/it-lib.sh"
BUILD=${BUILD:-$TOP/build}
T0=$(date +%s)

need_root
command -v mmdebstrap >/dev/null || skip "skipped: mmdebstrap missing (make deps)"
command -v xz >/dev/null || skip "skipped: xz missing (make deps)"
[ -r "$BUILD/libmkm.a" ] || skip "skipped: $BUILD/libmkm.a not built (make)"

# The host's Debian mirror for bookworm: $MKMACHINE_DEBIAN_MIRROR, else the first enabled "deb"
# source for bookworm in apt's deb822 *.sources, else in the one-line sources.list form.
# (This test's own helper; it-lib.sh may grow a shared one.)
debres_mirror() {
  if [ -n "${MKMACHINE_DEBIAN_MIRROR:-}" ]; then
    echo "${MKMACHINE_DEBIAN_MIRROR%/}"
    return 0
  fi
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk '
      function flush() { if (deb && hit && !off && uri != "") { print uri; found = 1; exit } deb = hit = off = 0; uri = "" }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        k = tolower($1)
        if (k == "types:") for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1
        if (k == "suites:") for (i = 2; i <= NF; i++) if ($i == "bookworm") hit = 1
        if (k == "enabled:" && tolower($2) == "no") off = 1
        if (k == "uris:") uri = $2
      }
      END { if (!found) flush() }' "$f")
    [ -n "$uri" ] && { echo "${uri%/}"; return 0; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri=$(sed -e 's/#.*//' -e 's/\[[^]]*\]//g' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
    [ -n "$uri" ] && { echo "${uri%/}"; return 0; }
  done
  return 1
}

MIRROR=$(debres_mirror) || skip "skipped: no bookworm 'deb' source in the host's apt sources (set MKMACHINE_DEBIAN_MIRROR)"

fetch() {  # fetch URL FILE
  curl -sSfL --retry 2 --max-time 300 -o "$2" "$1"
}
fetch "$MIRROR/dists/bookworm/InRelease" "$WORK/InRelease" 2>"$WORK/fetch.err" ||
  skip "skipped: cannot download dists/bookworm/InRelease from the host's mirror: $(tail -1 "$WORK/fetch.err")"

KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
if gpgv --keyring "$KEYRING" --output "$WORK/Release" "$WORK/InRelease" 2>"$WORK/gpgv.log"; then
  ok "InRelease is signed by the Debian archive keyring (gpgv)"
else
  bad "InRelease signature:"; sed 's/^/  /' "$WORK/gpgv.log"; finish; exit 1
fi
want=$(awk '/^SHA256:/ { f = 1; next } /^[^ ]/ { f = 0 } f && $3 == "main/binary-amd64/Packages.xz" { print $1, $2 }' "$WORK/Release")
fetch "$MIRROR/dists/bookworm/main/binary-amd64/Packages.xz" "$WORK/Packages.xz" 2>"$WORK/fetch.err" ||
  skip "skipped: cannot download main/binary-amd64/Packages.xz: $(tail -1 "$WORK/fetch.err")"
got="$(sha256sum "$WORK/Packages.xz" | cut -d' ' -f1) $(stat -c %s "$WORK/Packages.xz")"
if [ -n "$want" ] && [ "$want" = "$got" ]; then
  ok "Packages.xz matches the SHA256 and size the InRelease lists"
else
  bad "Packages.xz: the InRelease lists '$want', the download is '$got'"; finish; exit 1
fi
xz -dc "$WORK/Packages.xz" >"$WORK/Packages" || { bad "Packages.xz decompresses"; finish; exit 1; }
INREL_SHA=$(sha256sum "$WORK/InRelease" | cut -d' ' -f1)

# shellcheck disable=SC2046
cc -O2 -g ${SANFLAGS:-} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$TOP/builder" -o "$WORK/dump" \
  "$TOP/tests/tools/debresolve-dump.c" "$BUILD/libmkm.a" \
  $(pkg-config --libs libcurl libarchive gpgme libzstd libcrypto libseccomp) -lpthread ||
  { bad "debresolve-dump builds against libmkm.a"; finish; exit 1; }

CASES=("a" "b")
INCLUDE_a=""
INCLUDE_b="systemd-sysv,dbus,openssh-server,fuse3,docker.io"

# ---- ours --------------------------------------------------------------------------------------
t=$(date +%s)
for c in "${CASES[@]}"; do
  inc=INCLUDE_$c
  # shellcheck disable=SC2086
  if "$WORK/dump" --variant minbase --flags "$WORK/Packages" -- ${!inc//,/ } >"$WORK/ours.$c.plan" 2>"$WORK/ours.$c.err"; then
    ok "case $c: resolves ($(wc -l <"$WORK/ours.$c.plan") packages)"
  else
    bad "case $c: resolves: $(cat "$WORK/ours.$c.err")"
  fi
  cut -d' ' -f1,2 "$WORK/ours.$c.plan" | sort >"$WORK/ours.$c"
done
echo "# our resolver: $(($(date +%s) - t)) s for both cases (parse included)"

# ---- mmdebstrap (or its cached answer) ---------------------------------------------------------
MMV=$(mmdebstrap --version 2>/dev/null | awk '{ print $2; exit }')
CACHE=$BUILD/debian-oracle
mkdir -p "$CACHE"
key() { echo "$INREL_SHA-mmdebstrap$MMV-minbase-merged-usr-${1:-none}" | tr ',' '+'; }

SCRATCH=$WORK/scratch
mkdir -p "$SCRATCH"
if mount -t tmpfs -o size=6g,mode=0755 mkm-debres "$SCRATCH" 2>/dev/null; then
  CLEANUP+=("umount -l '$SCRATCH'")
fi
oracle() {  # oracle CASE: mmdebstrap into $SCRATCH/CASE, writes $WORK/theirs.CASE
  local c=$1 inc=INCLUDE_$1 dir=$SCRATCH/$1
  local args=(--variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --dpkgopt=force-unsafe-io
              --skip=cleanup/apt/lists --aptopt='Acquire::Check-Valid-Until "false"')
  [ -n "${!inc}" ] && args+=("--include=${!inc}")
  mmdebstrap "${args[@]}" bookworm "$dir" "$MIRROR" >"$WORK/mmdebstrap.$c.log" 2>&1 || return 1
  dpkg-query --admindir="$dir/var/lib/dpkg" -W -f='${Package} ${Version}\n' | sort >"$WORK/theirs.$c.new" || return 1
  local lists
  lists=$(find "$dir/var/lib/apt/lists" -maxdepth 1 -name '*_dists_bookworm_InRelease' | head -1)
  [ -n "$lists" ] && sha256sum "$lists" | cut -d' ' -f1 >"$WORK/theirs.$c.inrelease"
  mv "$WORK/theirs.$c.new" "$WORK/theirs.$c"
}
t=$(date +%s)
pids=()
for c in "${CASES[@]}"; do
  inc=INCLUDE_$c
  k=$(key "${!inc}")
  if [ "${DEBRESOLVE_ORACLE_REFRESH:-0}" != 1 ] && [ -s "$CACHE/$k" ]; then
    cp "$CACHE/$k" "$WORK/theirs.$c"
    echo "# case $c: mmdebstrap's answer from the cache ($CACHE/$k)"
    echo "$INREL_SHA" >"$WORK/theirs.$c.inrelease"
  else
    oracle "$c" &
    pids+=("$!:$c")
  fi
done
for p in "${pids[@]}"; do
  if wait "${p%%:*}"; then
    c=${p#*:}
    if [ "$(cat "$WORK/theirs.$c.inrelease" 2>/dev/null)" = "$INREL_SHA" ]; then
      ok "case $c: mmdebstrap built the tree from the same InRelease"
      inc=INCLUDE_$c
      cp "$WORK/theirs.$c" "$CACHE/$(key "${!inc}")"
    else
      bad "case $c: mmdebstrap used another InRelease than ours (did the mirror change? run again)"
    fi
  else
    bad "case ${p#*:}: mmdebstrap failed:"; tail -20 "$WORK/mmdebstrap.${p#*:}.log" | sed 's/^/  | /'
  fi
done
echo "# mmdebstrap: $(($(date +%s) - t)) s"

# ---- compare -----------------------------------------------------------------------------------
for c in "${CASES[@]}"; do
  inc=INCLUDE_$c
  what="case $c (minbase${!inc:+ + ${!inc}})"
  [ -s "$WORK/theirs.$c" ] || { bad "$what: no answer from mmdebstrap"; continue; }
  if cmp -s "$WORK/theirs.$c" "$WORK/ours.$c"; then
    ok "$what: the same $(wc -l <"$WORK/ours.$c") packages and versions as mmdebstrap"
  else
    bad "$what: differs from mmdebstrap (< mmdebstrap, > ours):"
    diff "$WORK/theirs.$c" "$WORK/ours.$c" | sed 's/^/  /'
  fi
done

# ---- more sets, against apt-get itself (opt-in) -------------------------------------------------
if [ "${DEBRESOLVE_EXTRA:-0}" = 1 ] || [ -n "${DEBRESOLVE_EXTRA_CASES:-}" ]; then
  A=$WORK/archive/dists/bookworm
  mkdir -p "$A/main/binary-amd64"
  ln "$WORK/InRelease" "$A/InRelease"
  ln "$WORK/Packages" "$WORK/Packages.xz" "$A/main/binary-amd64/"
  extra=${DEBRESOLVE_EXTRA_CASES:-"important;standard;buildd;essential;apt;custom apt;minbase exim4;minbase postfix,bsd-mailx;minbase libreoffice-writer;minbase task-kde-desktop;minbase task-gnome-desktop;standard openssh-server,locales"}
  IFS=';' read -r -a xcases <<<"$extra"
  for xc in "${xcases[@]}"; do
    read -r v inc <<<"$xc"
    # shellcheck disable=SC2086
    if ! python3 "$TOP/tests/tools/debresolve-aptsim.py" "$WORK/archive" bookworm amd64 "$v" ${inc//,/ } >"$WORK/x.theirs" 2>"$WORK/x.err"; then
      bad "extra $v${inc:+ + $inc}: apt-get simulation failed: $(tail -3 "$WORK/x.err")"
      continue
    fi
    # shellcheck disable=SC2086
    "$WORK/dump" --variant "$v" "$WORK/Packages" -- ${inc//,/ } 2>"$WORK/x.err" | sort >"$WORK/x.ours"
    if cmp -s "$WORK/x.theirs" "$WORK/x.ours"; then
      ok "extra $v${inc:+ + $inc}: the same $(wc -l <"$WORK/x.ours") packages as apt-get"
    else
      bad "extra $v${inc:+ + $inc}: differs from apt-get (< apt-get, > ours) $(cat "$WORK/x.err")"
      diff "$WORK/x.theirs" "$WORK/x.ours" | head -40 | sed 's/^/  /'
    fi
  done
fi

# The plan's shape on the real data: the essential set first, each package after its
# Pre-Depends, minbase's sizes as known (88 with the merged-usr hook, 144 with case b's).
check "case a: 88 packages" test "$(wc -l <"$WORK/ours.a")" -eq 88
check "case b: 144 packages" test "$(wc -l <"$WORK/ours.b")" -eq 144
check "case a: the essential set comes first, then the rest" \
  awk '$3 == 0 { rest = 1 } $3 == 1 && rest { exit 1 }' "$WORK/ours.a.plan"
check "case a: dpkg, base-files, usr-is-merged in the essential set; apt explicit, not essential" \
  awk '$1 == "dpkg" && $3 == 1 { d = 1 } $1 == "base-files" && $3 == 1 { b = 1 } $1 == "usr-is-merged" && $3 == 1 { u = 1 }
       $1 == "apt" && $3 == 0 && $4 == 1 { a = 1 } END { exit !(d && b && u && a) }' "$WORK/ours.a.plan"
predeps_ok() {  # every Pre-Depends of a planned package that names a planned package comes earlier
  awk 'NR == FNR { pos[$1] = FNR; next }
       /^Package: / { p = $2 }
       /^Pre-Depends: / && (p in pos) {
         s = substr($0, 14); n = split(s, g, ",")
         for (i = 1; i <= n; i++) { split(g[i], a, "|"); for (j in a) { x = a[j]; gsub(/^ +| .*$|:.*$/, "", x)
           if ((x in pos) && pos[x] > pos[p]) { print p " before its Pre-Depends " x; bad = 1 } } }
       }
       END { exit bad }' "$1" "$WORK/Packages"
}
check "case b: every package after its Pre-Depends" predeps_ok "$WORK/ours.b.plan"

echo "# whole test: $(($(date +%s) - T0)) s"
finish
