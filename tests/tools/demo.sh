#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make demo: build a real machine end to end on this host.
#
# Arch mirrors are out of reach here, so the demo generates a small signed Arch repository
# (tests/tools/mkarchrepo.sh), serves it on loopback, and builds recipes/demo.recipe from it into
# build/demo/host (a scratch host root: nothing under the real /var/lib/machines is touched).
# Then it checks the result with the real pacman and runs a command inside the machine.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
MKM=${MKMACHINE:-$TOP/mkmachine}
D=$TOP/build/demo
mkdir -p "$D"
if [ ! -f "$D/repo/FINGERPRINT" ]; then
  echo ":: generating a signed Arch test repository in $D/repo"
  rm -rf "$D/repo"
  bash "$TOP/tests/tools/mkarchrepo.sh" "$D/repo" >"$D/mkarchrepo.log" 2>&1 || { cat "$D/mkarchrepo.log"; exit 1; }
fi
python3 "$TOP/tests/tools/httpd.py" --root "$D/repo/repo" --port-file "$D/port" &
HTTPD=$!
trap 'kill $HTTPD 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$D/port" ] && break; sleep 0.05; done
PORT=$(cat "$D/port"); rm -f "$D/port"

# The recipe as a user would write it, with this run's mirror and keyring filled in.
sed -e "s|@MIRROR@|http://127.0.0.1:$PORT/\$repo/os/\$arch|" -e "s|@KEYRING@|$D/repo/keyring|" \
  "$TOP/recipes/demo.recipe.in" >"$D/demo.recipe"
echo ":: mkmachine check $D/demo.recipe"
"$MKM" check "$D/demo.recipe"
echo ":: mkmachine --host-root $D/host build $D/demo.recipe"
"$MKM" --host-root "$D/host" --cache-dir "$D/cache" build "$D/demo.recipe"
R=$D/host/var/lib/machines/demo
echo ":: pacman --root $R -Qkk"
pacman --root "$R" --dbpath "$R/var/lib/pacman" -Qkk 2>&1 | tail -n 3
echo ":: chroot $R /usr/bin/sh -c 'id; ls /usr/bin | head -5'"
chroot "$R" /usr/bin/sh -c 'id; ls /usr/bin | head -5'
echo ":: the lock that pins this machine: $D/demo.recipe.lock"
head -n 6 "$D/demo.recipe.lock"
