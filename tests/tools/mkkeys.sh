#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Generate throwaway OpenPGP keys, keyrings and signatures for tests/unit/test-verify.c.
#
#   tests/tools/mkkeys.sh OUTDIR
#
# Everything happens in a private GNUPGHOME under OUTDIR (never ~/.gnupg); its gpg-agent is killed
# before the script exits. Keys are ed25519 without passphrase, so the whole run takes a few seconds.
#
# OUTDIR/simple/      keyring dir without a -trusted file (every primary key is a trust anchor):
#                     trusted.gpg (binary: T), more.asc (armored: E expired, R revoked, S, and K,
#                     whose signing subkey made data.K.sig)
# OUTDIR/pacman/      pacman-style keyring: test.gpg (M1 M2 M3 PG PW PN X), test-trusted (M1..M3 at
#                     level 4, as archlinux-trusted), test-revoked (X). PG is certified by all three
#                     masters, PW by one (marginal only), PN by none, X by all three but revoked.
# OUTDIR/fast/        keyring dir for the native fast path: T, K, RS (rsa2048)
# OUTDIR/keys.gpg     T, K, RS, RW (rsa1024), DW (dsa1024): every kind of key, for the parser tests
# OUTDIR/weak-rsa/    keyring dir (every key an anchor) with RS and RW: refused (RW is weak)
# OUTDIR/weak-dsa/    keyring dir with T and DW: refused (DW is weak)
# OUTDIR/weak-sub/    SW (Ed25519) with an RSA-1024 signing subkey: refused
# OUTDIR/weak-encr/   SE (Ed25519) with an RSA-1024 encryption subkey: loads
# OUTDIR/weak-untrusted/  pacman-style: M1 M2 M3, PG (certified by all three) and RW, DW
#                     (certified by none): loads, the weak keys are not trusted
# OUTDIR/fpr.NAME     each key's primary fingerprint
# OUTDIR/data         the signed payload; OUTDIR/data.NAME.sig (binary) and data.T.asc (armored)
# OUTDIR/data.TS.sig  a signature by T that expired; OUTDIR/data.TU.sig signed by T and U at once
# OUTDIR/data.RS.sig (SHA512), data.RS256.sig (SHA256), data.RW.sig: by the RSA keys
# OUTDIR/inrelease.NAME   clearsigned by NAME, with junk before and after the signed part
# OUTDIR/inrelease.double two clearsigned messages in one file
#
#   tests/tools/mkkeys.sh --expiring OUTDIR SECONDS
# makes only OUTDIR/expiring/keys.gpg, a key EX that expires SECONDS from now, and
# OUTDIR/data.EX.sig (for the test that a key expiring during a build stops being accepted).
#
#   tests/tools/mkkeys.sh --expiring-cert OUTDIR SECONDS
# makes only OUTDIR/certs/ (pacman-style: M1 M2 M3 at level 4 and PG, whose three certifications
# by them expire SECONDS from now), OUTDIR/masters/ (X1 X2 X3, whose keys expire SECONDS from now,
# and PQ, certified by them for ever) and OUTDIR/data.PG.sig, data.PQ.sig (for the test that a key
# whose validity lapses during a build stops being accepted: gpg's trustdb is due for a check then).
set -euo pipefail
expiring= certs=
if [ "${1:-}" = --expiring ]; then expiring=${3:?usage: mkkeys.sh --expiring OUTDIR SECONDS}; shift; fi
if [ "${1:-}" = --expiring-cert ]; then certs=${3:?usage: mkkeys.sh --expiring-cert OUTDIR SECONDS}; shift; fi
out=${1:?usage: mkkeys.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export GNUPGHOME="$out/gen"
mkdir -m 0700 -p "$GNUPGHOME"
trap 'gpgconf --homedir "$GNUPGHOME" --kill all >/dev/null 2>&1 || true' EXIT
g() { gpg --batch --no-tty --quiet --pinentry-mode loopback --passphrase '' "$@"; }
past='--faked-system-time=20190101T000000!'

gen() {  # gen NAME [EXPIRE] [extra gpg options]
  local name=$1 exp=${2:-never}; shift 2 || shift
  g "$@" --quick-gen-key "$name test key <$name@example.invalid>" ed25519 sign,cert "$exp" 2>/dev/null
  g --with-colons --list-keys "<$name@example.invalid>" | awk -F: '/^fpr/ {print $10; exit}' >"$out/fpr.$name"
}
fpr() { cat "$out/fpr.$1"; }

if [ -n "$expiring" ]; then
  gen EX "seconds=$expiring"
  printf 'payload for the signature tests\nline 2\n' >"$out/data"
  g -u "$(fpr EX)" --detach-sign -o "$out/data.EX.sig" "$out/data"
  mkdir -p "$out/expiring"
  g --export "$(fpr EX)" >"$out/expiring/keys.gpg"
  gpgconf --homedir "$GNUPGHOME" --kill all >/dev/null 2>&1 || true
  rm -rf "$GNUPGHOME"
  exit 0
fi

if [ -n "$certs" ]; then
  for k in M1 M2 M3 PG PQ; do gen "$k"; done
  for k in X1 X2 X3; do gen "$k" "seconds=$certs"; done
  for m in M1 M2 M3; do g --default-cert-expire "seconds=$certs" -u "$(fpr "$m")" --quick-sign-key "$(fpr PG)" >/dev/null; done
  for m in X1 X2 X3; do g -u "$(fpr "$m")" --quick-sign-key "$(fpr PQ)" >/dev/null; done
  printf 'payload for the signature tests\nline 2\n' >"$out/data"
  g -u "$(fpr PG)" --detach-sign -o "$out/data.PG.sig" "$out/data"
  g -u "$(fpr PQ)" --detach-sign -o "$out/data.PQ.sig" "$out/data"
  mkdir -p "$out/certs" "$out/masters"
  g --export "$(fpr M1)" "$(fpr M2)" "$(fpr M3)" "$(fpr PG)" >"$out/certs/test.gpg"
  for m in M1 M2 M3; do echo "$(fpr "$m"):4:"; done >"$out/certs/test-trusted"
  # PQ's certifications never expire, its certifiers' keys do: only the trustdb knows.
  g --export "$(fpr X1)" "$(fpr X2)" "$(fpr X3)" "$(fpr PQ)" >"$out/masters/test.gpg"
  for m in X1 X2 X3; do echo "$(fpr "$m"):4:"; done >"$out/masters/test-trusted"
  gpgconf --homedir "$GNUPGHOME" --kill all >/dev/null 2>&1 || true
  rm -rf "$GNUPGHOME"
  exit 0
fi

# Simple keyring keys. T and E are created in the past so that old signatures can be made.
gen T never "$past"
gen U
gen E 2d "$past"
gen R
gen S
# K signs with a subkey; its primary key is the one that counts.
gen K
g --quick-add-key "$(fpr K)" ed25519 sign never
g --with-colons --list-keys "$(fpr K)" | awk -F: '/^sub/ {s=1; next} s && /^fpr/ {print $10; exit}' >"$out/fpr.Ksub"
# Pacman-style keys.
for k in M1 M2 M3 PG PW PN X; do gen "$k"; done
# RSA keys for the fast path: one it handles, one too weak to be trusted (gpg still accepts it);
# a DSA key too weak to be trusted.
for k in RS:rsa2048 RW:rsa1024 DW:dsa1024; do
  g --quick-gen-key "${k%%:*} test key <${k%%:*}@example.invalid>" "${k#*:}" sign,cert never 2>/dev/null
  g --with-colons --list-keys "<${k%%:*}@example.invalid>" | awk -F: '/^fpr/ {print $10; exit}' >"$out/fpr.${k%%:*}"
done

# SW: an Ed25519 primary key with an RSA-1024 signing subkey; SE: with an RSA-1024 encryption
# subkey (which signs nothing, so it does not count).
gen SW
g --quick-add-key "$(fpr SW)" rsa1024 sign never
g --with-colons --list-keys "$(fpr SW)" | awk -F: '/^sub/ {s=1; next} s && /^fpr/ {print $10; exit}' >"$out/fpr.SWsub"
gen SE
g --quick-add-key "$(fpr SE)" rsa1024 encr never

printf 'payload for the signature tests\nline 2\n' >"$out/data"
sign() {  # sign NAME [options]: detached binary signature
  local n=$1; shift
  g -u "$(fpr "$n")" "$@" --detach-sign -o "$out/data.$n.sig" "$out/data"
}
for k in T U R PG PW PN X S; do sign "$k"; done
g -u "$(fpr Ksub)!" --detach-sign -o "$out/data.K.sig" "$out/data"
g -u "$(fpr RS)" --digest-algo SHA512 --detach-sign -o "$out/data.RS.sig" "$out/data"
g -u "$(fpr RS)" --digest-algo SHA256 --detach-sign -o "$out/data.RS256.sig" "$out/data"
g -u "$(fpr RW)" --detach-sign -o "$out/data.RW.sig" "$out/data"
g -u "$(fpr DW)" --detach-sign -o "$out/data.DW.sig" "$out/data"
g -u "$(fpr T)" --armor --detach-sign -o "$out/data.T.asc" "$out/data"
# E signs while its key was valid; the key has expired since.
g "--faked-system-time=20190101T120000!" -u "$(fpr E)" --detach-sign -o "$out/data.E.sig" "$out/data" 2>/dev/null
# An expired signature by a valid key.
g "--faked-system-time=20190101T120000!" --default-sig-expire 1d -u "$(fpr T)" --detach-sign -o "$out/data.TS.sig" "$out/data" 2>/dev/null
# Two signatures in one file: a trusted key and an unknown one.
g -u "$(fpr T)" -u "$(fpr U)" --detach-sign -o "$out/data.TU.sig" "$out/data"

# Clearsigned (Debian InRelease-like) with junk around the signed part.
printf 'Origin: Test\nSuite: stable\n- dashed line\n' >"$out/release"
for k in T U; do
  g -u "$(fpr "$k")" --clearsign -o "$out/release.$k.asc" "$out/release"
  { printf 'INJECTED-BEFORE: evil\n'; cat "$out/release.$k.asc"; printf 'INJECTED-AFTER: evil\n'; } >"$out/inrelease.$k"
done
cat "$out/release.T.asc" "$out/release.T.asc" >"$out/inrelease.double"

# Certifications for the pacman-style keyring.
for m in M1 M2 M3; do
  g -u "$(fpr "$m")" --quick-sign-key "$(fpr PG)" >/dev/null
  g -u "$(fpr "$m")" --quick-sign-key "$(fpr X)" >/dev/null
done
g -u "$(fpr M1)" --quick-sign-key "$(fpr PW)" >/dev/null

# Revoke R with the revocation certificate gpg generated (strip the protective ':').
sed 's/^:-----BEGIN/-----BEGIN/' "$GNUPGHOME/openpgp-revocs.d/$(fpr R).rev" >"$out/R.rev"
g --import "$out/R.rev" 2>/dev/null

mkdir -p "$out/simple" "$out/pacman" "$out/fast" "$out/weak-rsa" "$out/weak-dsa" "$out/weak-untrusted" \
  "$out/weak-sub" "$out/weak-encr"
g --export "$(fpr SW)" >"$out/weak-sub/keys.gpg"
g --export "$(fpr SE)" >"$out/weak-encr/keys.gpg"
g --export "$(fpr T)" "$(fpr K)" "$(fpr RS)" >"$out/fast/keys.gpg"
g --export "$(fpr T)" "$(fpr K)" "$(fpr RS)" "$(fpr RW)" "$(fpr DW)" >"$out/keys.gpg"
g --export "$(fpr RS)" >"$out/weak-rsa/a.gpg"
g --armor --export "$(fpr RW)" >"$out/weak-rsa/b.asc"
g --export "$(fpr T)" "$(fpr DW)" >"$out/weak-dsa/keys.gpg"
g --export "$(fpr M1)" "$(fpr M2)" "$(fpr M3)" "$(fpr PG)" "$(fpr RW)" "$(fpr DW)" >"$out/weak-untrusted/test.gpg"
for m in M1 M2 M3; do echo "$(fpr "$m"):4:"; done >"$out/weak-untrusted/test-trusted"
g --export "$(fpr T)" >"$out/simple/trusted.gpg"
g --armor --export "$(fpr E)" "$(fpr R)" "$(fpr S)" "$(fpr K)" >"$out/simple/more.asc"
g --export "$(fpr M1)" "$(fpr M2)" "$(fpr M3)" "$(fpr PG)" "$(fpr PW)" "$(fpr PN)" "$(fpr X)" >"$out/pacman/test.gpg"
for m in M1 M2 M3; do echo "$(fpr "$m"):4:"; done >"$out/pacman/test-trusted"
fpr X >"$out/pacman/test-revoked"
gpgconf --homedir "$GNUPGHOME" --kill all >/dev/null 2>&1 || true
rm -rf "$GNUPGHOME"
