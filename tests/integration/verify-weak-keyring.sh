#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A recipe whose Keyring= would trust a weak key (RSA-1024, DSA-1024) is refused when the keyring
# is loaded, before anything is fetched (the mirror does not exist): exit 1, one error naming the
# keyring, the file, the key and why, in plain and --json output. Listed in a -revoked file beside
# it, the same key no longer stops the load (the build then fails later, at the missing mirror).
source "$(dirname "$0")/../tools/it-lib.sh"
command -v gpg >/dev/null || skip "skipped: gpg missing (make deps)"
export GNUPGHOME=$WORK/gnupg
mkdir -m 0700 "$GNUPGHOME"
CLEANUP+=("gpgconf --homedir '$GNUPGHOME' --kill all")
g() { gpg --batch --no-tty --quiet --pinentry-mode loopback --passphrase '' "$@"; }
g --quick-gen-key 'weak rsa <w@test>' rsa1024 sign,cert never 2>/dev/null
g --quick-gen-key 'weak dsa <d@test>' dsa1024 sign,cert never 2>/dev/null
fpr() { g --with-colons --list-keys "$1" | awk -F: '/^fpr/ {print $10; exit}'; }
W=$(fpr w@test) D=$(fpr d@test)
mkdir -p "$WORK/kr" "$WORK/krd"
g --export "$W" >"$WORK/kr/weak.gpg"
g --armor --export "$D" >"$WORK/krd/dsa.asc"

recipe() {  # recipe FILE KEYRING
  printf '[Machine]\nName=weak\n[Bootstrap]\nDistribution=arch\nMirror=file://%s/none/$repo/os/$arch\nRepositories=core\nPackages=filesystem\nKeyring=%s\n' \
    "$WORK" "$2" >"$1"
}
mkm() { "$MKMACHINE" --host-root "$WORK/host" --cache-dir "$WORK/cache" "$@"; }

recipe "$WORK/r.recipe" kr
mkm plan "$WORK/r.recipe" >"$WORK/out" 2>"$WORK/err"
rc=$?
check "a weak RSA key: exit 1" test "$rc" -eq 1
check "the error names the file, the key and why" contains "$WORK/err" \
  "mkmachine: error: plan failed: keyring $WORK/kr: $WORK/kr/weak.gpg: trusted key $W 'weak rsa <w@test>' is too weak to be trusted: RSA with a 1024-bit modulus (at least 2048 bits are required)"
check "one error line" test "$(grep -c 'error:' "$WORK/err")" -eq 1
check "nothing fetched" test -z "$(find "$WORK/cache/sha256" -type f 2>/dev/null)"

mkm --json plan "$WORK/r.recipe" >"$WORK/out.json" 2>"$WORK/err.json"
check "--json: exit 1" test $? -eq 1
check "--json: one error document naming the key" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
m = d["error"]["message"]
assert sys.argv[2] in m and "too weak to be trusted" in m and d["error"]["exit"] == 1, d
' "$WORK/out.json" "$W"

recipe "$WORK/d.recipe" krd
mkm plan "$WORK/d.recipe" >"$WORK/out" 2>"$WORK/err"
check "a weak DSA key in an armored file: exit 1" test $? -eq 1
check "the error names the .asc file and DSA" contains "$WORK/err" \
  "$WORK/krd/dsa.asc: trusted key $D 'weak dsa <d@test>' is too weak to be trusted: DSA with a 1024-bit prime"

echo "$W" >"$WORK/kr/weak-revoked"
mkm plan "$WORK/r.recipe" >"$WORK/out" 2>"$WORK/err"
check "listed as revoked: the keyring loads (the missing mirror fails instead)" \
  bash -c '! grep -q "too weak" "$1" && grep -q "error:" "$1"' _ "$WORK/err"
finish
