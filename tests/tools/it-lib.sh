# SPDX-License-Identifier: MIT
# Shared helpers for integration tests (sourced). Each check prints "ok - WHAT" or
# "not ok - WHAT" with details; finish() exits 1 if any check failed.
set -u
: "${MKMACHINE:?}" "${TOP:?}"
FAILS=0
CHECKS=0
WORK=$(mktemp -d /tmp/mkm-it.XXXXXX)
CLEANUP=()
cleanup() {
  local c
  for c in "${CLEANUP[@]}"; do eval "$c" || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "not ok - $*"; }
check() {  # check "what" command...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
contains() {  # contains FILE TEXT
  grep -qF -- "$2" "$1" || { echo "  expected to find: $2"; echo "  in:"; sed 's/^/    | /' "$1" | tail -20; return 1; }
}
skip() { echo "$*"; exit 77; }
# fuse_like_udev: udev makes /dev/fuse 0666; a host without its rule keeps the kernel's 0600,
# which the root of a user-namespaced machine (an unprivileged UID on the host) cannot open
# (mkmachine warns at build time; test-hooks checks that). Tests that use FUSE inside a machine
# make it 0666 as udev would, restored at exit.
fuse_like_udev() {
  [ -c /dev/fuse ] || return 0
  local m; m=$(stat -c %a /dev/fuse)
  [ "$m" = 666 ] && return 0
  chmod 0666 /dev/fuse && CLEANUP+=("chmod $m /dev/fuse") &&
    echo "# the host's /dev/fuse was mode 0$m (no udev rule here): made 0666 for this test, as udev does; restored at exit"
}
finish() {
  echo "$((CHECKS - FAILS)) passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}
need_root() { [ "$(id -u)" -eq 0 ] || skip "skipped: needs root (creates files owned by other users)"; }

# Start tests/tools/httpd.py on DIR; sets HTTPD_PORT. Stopped at exit.
start_httpd() {
  local dir=$1 pf="$WORK/httpd.port.$RANDOM"
  python3 "$TOP/tests/tools/httpd.py" --root "$dir" --port-file "$pf" --log "$WORK/httpd.log" &
  local pid=$!
  CLEANUP+=("kill $pid 2>/dev/null; wait $pid 2>/dev/null")
  for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
  HTTPD_PORT=$(cat "$pf")
}

# A listing of a tree that changes when anything in it changes (for "unchanged" checks).
snapshot() { python3 "$TOP/tests/tools/treelist.py" --mtime "$1"; }

# Build the signed Arch fixture repository into $FX (tests/tools/mkarchrepo.sh); with "pacman"
# as argument, the real pacman is needed too (as an oracle). Skips visibly without the tools.
arch_fixture() {
  need_root
  command -v repo-add >/dev/null || skip "skipped: repo-add missing (make deps)"
  if [ "${1:-}" = pacman ]; then command -v pacman >/dev/null || skip "skipped: pacman missing (make deps)"; fi
  FX=$WORK/fx
  # Generating takes 30-90 s; the suite has many users of it. With $BUILD (as make check sets
  # it) the repository is generated once per version of its generator and fixtures, under a
  # lock, and each test gets its own copy (without the signing agent's sockets), so no test can
  # change another's. ARCH_FIXTURE_FRESH=1 generates afresh.
  if [ -n "${BUILD:-}" ] && [ -z "${ARCH_FIXTURE_FRESH:-}" ]; then
    local key cache
    key=$(cd "$TOP/tests/tools" && { cat mkarchrepo.sh; find arch-fixtures -type f -print0 | sort -z |
      xargs -0 sha256sum; } | sha256sum | cut -c1-16)
    cache=$BUILD/arch-fixture/$key
    mkdir -p "$BUILD/arch-fixture"
    (
      flock 9
      if [ ! -e "$cache/.complete" ]; then
        rm -rf "$cache" "$cache.tmp"
        bash "$TOP/tests/tools/mkarchrepo.sh" "$cache.tmp" >"$WORK/mkarchrepo.log" 2>&1 ||
          { cat "$WORK/mkarchrepo.log"; exit 1; }
        find "$cache.tmp" -type s -delete
        touch "$cache.tmp/.complete"
        mv "$cache.tmp" "$cache"
        # Older generations of the fixture are of no more use.
        find "$BUILD/arch-fixture" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
      fi
    ) 9>"$BUILD/arch-fixture/.lock" || exit 1
    cp -a "$cache" "$FX"
    rm -f "$FX/.complete"
    return 0
  fi
  bash "$TOP/tests/tools/mkarchrepo.sh" "$FX" >"$WORK/mkarchrepo.log" 2>&1 || { cat "$WORK/mkarchrepo.log"; exit 1; }
}

# The Debian mirror tests download from, without a trailing '/': $MKMACHINE_DEBIAN_MIRROR when
# set, else the first enabled "deb" source of the host's apt configuration that carries SUITE
# (default bookworm): deb822 stanzas (URIs:, Suites:, Types:, Enabled:) in
# /etc/apt/sources.list.d/*.sources, then one-line entries ("deb [opts] URI SUITE COMP...") in
# /etc/apt/sources.list and sources.list.d/*.list. Returns 1 (printing nothing) when none.
# A mirror's host name is never written into the repository: this is the only way tests find it.
# (APT_ETC=DIR reads DIR instead of /etc/apt, for testing this function itself.)
debian_mirror() {
  local suite=${1:-bookworm} m=${MKMACHINE_DEBIAN_MIRROR:-} f etc=${APT_ETC:-/etc/apt}
  local -a d822=() lines=()
  if [ -z "$m" ]; then
    for f in "$etc"/sources.list.d/*.sources; do [ -r "$f" ] && d822+=("$f"); done
    for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do [ -r "$f" ] && lines+=("$f"); done
    if [ ${#d822[@]} -gt 0 ]; then
      m=$(awk -v suite="$suite" '
        function flush() {
          if (deb && has && on && uri != "") { print uri; done = 1; exit }
          deb = 0; has = 0; on = 1; uri = ""
        }
        BEGIN { on = 1 }
        FNR == 1 { flush() }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
        tolower($1) == "uris:" { uri = $2 }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
        tolower($1) == "enabled:" && tolower($2) == "no" { on = 0 }
        END { if (!done) flush() }' "${d822[@]}")
    fi
    if [ -z "$m" ] && [ ${#lines[@]} -gt 0 ]; then
      m=$(awk -v suite="$suite" '
        $1 == "deb" {
          i = 2
          if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) == suite) { print $i; exit }
        }' "${lines[@]}")
    fi
  fi
  [ -n "$m" ] || return 1
  printf '%s\n' "${m%/}"
}

# The state directory of machine NAME's live generation under host root HOST: the gen/N whose
# meta root=DEV:INO is the live tree's (builder/state.h). Prints nothing and returns 1 if none.
live_gen() {  # live_gen HOST NAME
  local root m
  root=$(stat -c '%d:%i' "$1/var/lib/machines/$2" 2>/dev/null) || return 1
  m=$(grep -lx "root=$root" "$1/var/lib/mkmachine/$2"/gen/*/meta 2>/dev/null | head -1)
  [ -n "$m" ] || return 1
  dirname "$m"
}
