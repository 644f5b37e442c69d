#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fill keys/<distro>/ from the host's distribution keyring packages, so builds never depend on the
# user's ~/.gnupg. Run by `make keys` (and `make deps`). To refresh: upgrade the packages
# (apt-get install --only-upgrade archlinux-keyring debian-archive-keyring) and run `make keys`.
#
#   keys/archlinux/archlinux.gpg        public keys (from archlinux-keyring)
#   keys/archlinux/archlinux-trusted    "FPR:LEVEL:" lines: the keys pacman-key --populate trusts
#   keys/archlinux/archlinux-revoked    fingerprints pacman-key disables
#   keys/debian/debian-archive-keyring.gpg   the Debian archive signing keys
set -eu
cd "$(dirname "$0")"
changed=0
copy() {  # copy SRC DEST if it differs
  if [ ! -f "$1" ]; then echo "keys: $1 is missing (install its package: make deps)" >&2; return 1; fi
  mkdir -p "$(dirname "$2")"
  if ! cmp -s "$1" "$2"; then cp "$1" "$2"; chmod 644 "$2"; changed=1; fi
}
copy /usr/share/keyrings/archlinux.gpg archlinux/archlinux.gpg
copy /usr/share/keyrings/archlinux-trusted archlinux/archlinux-trusted
copy /usr/share/keyrings/archlinux-revoked archlinux/archlinux-revoked
copy /usr/share/keyrings/debian-archive-keyring.gpg debian/debian-archive-keyring.gpg
[ $changed -eq 1 ] && echo "keys: refreshed keys/archlinux and keys/debian from the host's keyring packages"
exit 0
