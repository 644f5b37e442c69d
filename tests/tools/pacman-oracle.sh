#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# pacman-oracle.sh ROOT REPO_URL_BASE KEYRING [--noscriptlet] PKG...
#
# Installs PKG... into ROOT with the real pacman (Debian's pacman-package-manager), the way
# pacstrap would but without its mounts except /proc: a temporary pacman.conf with
#   SigLevel = Required DatabaseOptional, [core] and [extra] (or $PACMAN_ORACLE_REPOS, space
#   separated, e.g. "core extra hostile"), Server = REPO_URL_BASE/$repo/os/$arch
# REPO_URL_BASE: file:///path/to/OUT/repo or http://127.0.0.1:PORT
# KEYRING: either a ready pacman gpgdir (has pubring.kbx or pubring.gpg, e.g. mkarchrepo's
#   OUT/pacman-gpg) or a keyring dir of NAME.gpg + NAME-trusted files (e.g. OUT/keyring), from
#   which a gpgdir is built (keys imported; "FPR:N:" keys get ultimate ownertrust, which is what
#   pacman-key --populate's local signature achieves). The gpgdir is copied to a temp dir, so
#   the given one is never modified.
# /proc is mounted on ROOT/proc for the transaction (busybox applets in scriptlets and hooks
# re-exec /proc/self/exe) and unmounted on exit. pacman's output goes to stderr.
# Extra pacman options may be passed in $PACMAN_ORACLE_OPTS (word-split).
set -euo pipefail
export LC_ALL=C

usage() { echo "usage: pacman-oracle.sh ROOT REPO_URL_BASE KEYRING [--noscriptlet] PKG..." >&2; exit 2; }
[ $# -ge 4 ] || usage
ROOT=$1 BASE=${2%/} KEYRING=$3
shift 3
extra=()
if [ "$1" = --noscriptlet ]; then extra+=(--noscriptlet); shift; fi
[ $# -ge 1 ] || usage
command -v pacman >/dev/null || { echo "pacman-oracle.sh: pacman not installed" >&2; exit 1; }

mkdir -p "$ROOT"
ROOT=$(cd "$ROOT" && pwd)
TMP=$(mktemp -d /tmp/pacman-oracle.XXXXXX)
PROC_MOUNTED=
cleanup() {
  if [ -n "$PROC_MOUNTED" ]; then umount "$ROOT/proc" || umount -l "$ROOT/proc" || true; fi
  gpgconf --homedir "$TMP/gpg" --kill all >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# ---- gpgdir
G=$TMP/gpg
if [ -e "$KEYRING/pubring.kbx" ] || [ -e "$KEYRING/pubring.gpg" ]; then
  mkdir -p "$G"
  # copy only the key material and trust db (not sockets, not the agent's state)
  for f in pubring.kbx pubring.gpg trustdb.gpg gpg.conf; do
    [ -e "$KEYRING/$f" ] && cp -p "$KEYRING/$f" "$G/"
  done
elif compgen -G "$KEYRING/*.gpg" >/dev/null; then
  mkdir -p "$G"
  for k in "$KEYRING"/*.gpg; do
    GNUPGHOME=$G gpg --batch --quiet --import "$k" 2>/dev/null
  done
  cat "$KEYRING"/*-trusted 2>/dev/null | awk -F: 'NF >= 2 && $1 != "" {print $1 ":6:"}' |
    GNUPGHOME=$G gpg --batch --quiet --import-ownertrust 2>/dev/null
  GNUPGHOME=$G gpg --batch --quiet --check-trustdb 2>/dev/null || true
  printf 'no-greeting\nno-permission-warning\nlock-never\n' >"$G/gpg.conf"
  touch "$G/pubring.gpg" # as pacman-key --init does (pacman warns without it)
else
  echo "pacman-oracle.sh: $KEYRING is neither a gpgdir nor a keyring dir" >&2
  exit 1
fi
chmod 700 "$G"

# ---- pacman.conf
CONF=$TMP/pacman.conf
{
  printf '[options]\nArchitecture = x86_64\nSigLevel = Required DatabaseOptional\n'
  printf 'LocalFileSigLevel = Optional\nCheckSpace\n'
  for r in ${PACMAN_ORACLE_REPOS:-core extra}; do
    printf '\n[%s]\nServer = %s/$repo/os/$arch\n' "$r" "$BASE"
  done
} >"$CONF"

mkdir -p "$ROOT/var/lib/pacman" "$ROOT/etc/pacman.d/hooks" "$TMP/cache"
if [ ! -d "$ROOT/proc" ]; then mkdir -m 0555 "$ROOT/proc"; fi
if ! mountpoint -q "$ROOT/proc"; then
  mount -t proc proc "$ROOT/proc"
  PROC_MOUNTED=1
fi

# shellcheck disable=SC2086
pacman --root "$ROOT" --dbpath "$ROOT/var/lib/pacman" --cachedir "$TMP/cache" --gpgdir "$G" \
  --hookdir "$ROOT/etc/pacman.d/hooks" --logfile "$ROOT/var/log/pacman.log" --config "$CONF" \
  --noprogressbar --color never -Sy --noconfirm ${extra[@]+"${extra[@]}"} \
  ${PACMAN_ORACLE_OPTS:-} "$@" >&2
