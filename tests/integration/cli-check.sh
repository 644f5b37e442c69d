#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkmachine check: the example recipes load and print their canonical form; recipe errors exit 2
# with file:line and a suggestion; .nspawn misplacements are explained; every key the parser
# knows is documented in docs/mkmachine.recipe.5.md.
set -euo pipefail
: "${MKMACHINE:?}"
cd "${TOP:-$(dirname "$0")/../..}"
tmp=$(mktemp -d /tmp/mkm-cli-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

expect_line() {   # FILE LINE: LINE must appear as a whole line in FILE
  grep -qxF -- "$2" "$1" || { cat "$1" >&2; fail "missing line '$2'"; }
}

# 1. The example recipes.
"$MKMACHINE" check recipes/mastodon.recipe >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; fail "mastodon.recipe: exit $?"; }
expect_line "$tmp/out" "[Machine]"
expect_line "$tmp/out" "Name=mastodon"
expect_line "$tmp/out" "Distribution=arch"
expect_line "$tmp/out" "Repositories=core extra"
expect_line "$tmp/out" "Packages=base openssh docker docker-compose"
expect_line "$tmp/out" "EnableServices=sshd.service docker.service"
expect_line "$tmp/out" "Fuse=yes"
expect_line "$tmp/out" "DockerStorageDriver=overlay2"
expect_line "$tmp/out" "VirtualEthernet=yes"
expect_line "$tmp/out" "Bind=/srv/mastodon/data:/opt/mastodon/data"
grep -q '^Include=' "$tmp/out" && fail "includes must be merged, not printed"
# The host files follow the recipe as comment lines (so the output still reads as the recipe).
sed '/^# What a build of this recipe writes on the host:$/,$d' "$tmp/out" >"$tmp/recipe-part"
grep -q '^# What a build of this recipe writes on the host:$' "$tmp/out" || fail "check lists the host files"
grep -q '^#' "$tmp/recipe-part" && fail "the canonical form has no comments"
sed -n '/^# What a build/,$p' "$tmp/out" | grep -qv '^#' && fail "the host files are all comment lines"
[ -s "$tmp/err" ] && { cat "$tmp/err"; fail "check printed to stderr"; }
# The section order is fixed.
[ "$(grep '^\[' "$tmp/recipe-part" | tr '\n' ' ')" = "[Machine] [Bootstrap] [Hooks] [Exec] [Files] [Network] " ] \
  || fail "section order: $(grep '^\[' "$tmp/recipe-part" | tr '\n' ' ')"

ok "mastodon.recipe: canonical lines, fixed section order, no comments or includes"
# Docker's default is a user-namespaced machine: a UID base and the keyring calls, no capability.
grep -qE '^#   PrivateUsers=[0-9]+$' "$tmp/out" || fail "DockerStorageDriver=: PrivateUsers= resolved to a base"
grep -qx '#   SystemCallFilter=@keyring' "$tmp/out" || fail "DockerStorageDriver=: SystemCallFilter=@keyring"
grep -qE '^#   (Capability=|PrivateUsers=no)' "$tmp/out" && fail "DockerStorageDriver=: no Capability=, no PrivateUsers=no by default"
# (Include= reads recipes beside the including one: the recipes are copied next to it.)
cp recipes/mastodon.recipe recipes/base-arch.recipe "$tmp/"
printf '[Machine]\nInclude=mastodon.recipe\n[Hooks]\nDockerPrivileged=yes\n' >"$tmp/priv.recipe"
"$MKMACHINE" check "$tmp/priv.recipe" >"$tmp/priv" 2>"$tmp/err" || { cat "$tmp/err"; fail "DockerPrivileged=yes: exit $?"; }
expect_line "$tmp/priv" "DockerPrivileged=yes"
expect_line "$tmp/priv" "#   Capability=all"
expect_line "$tmp/priv" "#   PrivateUsers=no"
expect_line "$tmp/priv" "#   SystemCallFilter=@keyring bpf"

ok "DockerStorageDriver=: user namespacing by default, the privileged form with DockerPrivileged=yes"
# The canonical text is a fixed point (up to the privileges listing, which names the file read).
cp "$tmp/out" "$tmp/canon.recipe"
"$MKMACHINE" check "$tmp/canon.recipe" >"$tmp/out2"
sed -i '/^# privileges of machine/,$d' "$tmp/out" "$tmp/out2"
cmp -s "$tmp/out" "$tmp/out2" || { diff "$tmp/out" "$tmp/out2" >&2; fail "canonical text is not stable"; }

ok "canonical text is a fixed point"
for r in recipes/debian-ssh.recipe recipes/minimal.recipe; do
  "$MKMACHINE" check "$r" >"$tmp/out" || fail "$r: exit $?"
  expect_line "$tmp/out" "Distribution=debian"
  expect_line "$tmp/out" "Suite=bookworm"
done
"$MKMACHINE" check recipes/debian-ssh.recipe >"$tmp/out"
expect_line "$tmp/out" "EnableServices=ssh.service"
expect_line "$tmp/out" "Packages=systemd systemd-sysv dbus openssh-server"

ok "debian-ssh.recipe and minimal.recipe"
# No registry host names and no Mirror= in the examples.
grep -n '^Mirror=' recipes/*.recipe && fail "example recipes must not set Mirror="

# --json, as a global option and after the subcommand.
"$MKMACHINE" --json check recipes/mastodon.recipe >"$tmp/json"
"$MKMACHINE" check --json recipes/mastodon.recipe >"$tmp/json2"
cmp -s "$tmp/json" "$tmp/json2" || fail "--json placement changes the output"
python3 - "$tmp/json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["machine"]["name"] == "mastodon", j
assert j["bootstrap"]["distribution"] == "arch"
assert j["bootstrap"]["packages"] == ["base", "openssh", "docker", "docker-compose"], j["bootstrap"]["packages"]
assert j["hooks"]["fuse"] is True
assert j["hooks"]["docker_privileged"] is None, j["hooks"]
assert len(j["files"]) == 2 and j["files"][1].endswith("/recipes/base-arch.recipe"), j["files"]
assert [(s["section"], s["key"]) for s in j["nspawn"]] == [("Exec", "Boot"), ("Network", "VirtualEthernet"), ("Files", "Bind")], j["nspawn"]
PY

ok "--json output"
# --json quotes every string right (json-c builds it): a recipe whose path holds a quote, a
# backslash and control characters, and a Run= command with quotes and backslashes, come back
# unchanged through a JSON parser.
odd="$tmp/$(printf 'we"ird\\back\001ctl\tname').recipe"
printf '[Machine]\nName=web\n[Bootstrap]\nDistribution=arch\nRepositories=core\nPackages=base\n[Hooks]\nRun=printf %s\n' \
  "'a\"b\\\\c'" >"$odd"
"$MKMACHINE" check --json "$odd" >"$tmp/odd.json" || fail "check --json of an oddly named recipe: exit $?"
python3 -c 'import json,sys; json.load(sys.stdin)' <"$tmp/odd.json" || { cat "$tmp/odd.json" >&2; fail "--json output is not JSON"; }
ODD="$odd" python3 - "$tmp/odd.json" <<'PY' || fail "--json changed a name"
import json, os, sys
j = json.load(open(sys.argv[1]))
odd = os.environ["ODD"]
assert any(c < " " for c in odd) and '"' in odd and "\\" in odd, repr(odd)
assert j["path"] == odd, (j["path"], odd)
assert j["files"] == [odd], j["files"]
assert j["hooks"]["run"] == ["printf 'a\"b\\\\c'"], j["hooks"]["run"]
PY

ok "--json: a quote, a backslash and control characters round-trip"
# 2. A misspelt key: exit 2, file:line and a suggestion on stderr, nothing on stdout.
cat >"$tmp/typo.recipe" <<'R'
[Machine]
Name=typo

[Bootstrap]
Distribution=arch
Pakages=base
R
rc=0; "$MKMACHINE" check "$tmp/typo.recipe" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ $rc -eq 2 ] || fail "misspelt key: exit $rc, expected 2"
[ -s "$tmp/out" ] && fail "misspelt key: stdout not empty"
grep -qF "$tmp/typo.recipe:6: [Bootstrap] Pakages=: unknown key; did you mean 'Packages='?" "$tmp/err" \
  || { cat "$tmp/err"; fail "misspelt key message"; }

ok "misspelt key: exit 2, file:line, did you mean"
# 3. [Exec] DeviceAllow= is refused with where it belongs.
printf '[Machine]\nName=f\n[Bootstrap]\nDistribution=arch\nPackages=base\n[Exec]\nDeviceAllow=/dev/fuse rwm\n' >"$tmp/dev.recipe"
rc=0; "$MKMACHINE" check "$tmp/dev.recipe" >/dev/null 2>"$tmp/err" || rc=$?
[ $rc -eq 2 ] || fail "DeviceAllow: exit $rc"
grep -qF "$tmp/dev.recipe:7: [Exec] DeviceAllow=: DeviceAllow= is not a .nspawn setting: it belongs in a systemd-nspawn@NAME.service.d/ drop-in (the Fuse= hook writes it for you)" "$tmp/err" \
  || { cat "$tmp/err"; fail "DeviceAllow message"; }

ok "DeviceAllow= refused with where it belongs"
# 4. Other failures exit 2 and name the file.
rc=0; "$MKMACHINE" check "$tmp/missing.recipe" 2>"$tmp/err" || rc=$?
[ $rc -eq 2 ] || fail "missing file: exit $rc"
grep -qF "cannot read recipe '$tmp/missing.recipe': No such file or directory" "$tmp/err" || { cat "$tmp/err"; fail "missing file message"; }

printf '[Machine]\nName=e\n[Bootstrap]\nDistribution=arch\n' >"$tmp/empty.recipe"
rc=0; "$MKMACHINE" check "$tmp/empty.recipe" 2>"$tmp/err" || rc=$?
[ $rc -eq 2 ] || fail "no packages: exit $rc"
grep -qF "$tmp/empty.recipe: [Bootstrap] Packages=: empty; a build needs at least one package" "$tmp/err" || { cat "$tmp/err"; fail "no packages message"; }

printf '[Machine]\nName=a\nInclude=b.recipe\n' >"$tmp/a.recipe"
printf '[Machine]\nInclude=a.recipe\n' >"$tmp/b.recipe"
rc=0; "$MKMACHINE" check "$tmp/a.recipe" 2>"$tmp/err" || rc=$?
[ $rc -eq 2 ] || fail "include cycle: exit $rc"
grep -qF "include cycle: $tmp/a.recipe -> $tmp/b.recipe -> $tmp/a.recipe" "$tmp/err" || { cat "$tmp/err"; fail "cycle message"; }

printf '[Machine]\nName=x\x00\n' >"$tmp/nul.recipe"
rc=0; "$MKMACHINE" check "$tmp/nul.recipe" 2>"$tmp/err" || rc=$?
[ $rc -eq 2 ] || fail "NUL byte: exit $rc"
grep -qF "$tmp/nul.recipe:2: NUL byte in line" "$tmp/err" || { cat "$tmp/err"; fail "NUL message"; }

rc=0; "$MKMACHINE" check 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "no argument: exit $rc"

ok "missing file, no packages, include cycle, NUL byte, no argument: exit 2 with messages"
# A recipe another user owns is read with that user's permissions; a mkmachine that cannot take
# them (here without CAP_SETGID: setgroups fails) says so and exits 1: the host lacks something,
# no change to the recipe mends it, so it is not an invalid recipe's exit 2.
mkdir "$tmp/tenant"
cp recipes/minimal.recipe "$tmp/tenant/t.recipe"
chown -R 4321:4321 "$tmp/tenant"
for args in "check" "check --json"; do
  rc=0; setpriv --bounding-set -setgid --inh-caps -setgid "$MKMACHINE" $args "$tmp/tenant/t.recipe" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ $rc -eq 1 ] || { cat "$tmp/err"; fail "$args without CAP_SETGID: exit $rc, want 1"; }
  grep -qF "cannot take the recipe owner's permissions (needs CAP_SETUID and CAP_SETGID" "$tmp/err" || { cat "$tmp/err"; fail "$args without CAP_SETGID: message"; }
done
grep -qF '"exit":1' "$tmp/out" || { cat "$tmp/out"; fail "--json without CAP_SETGID: no \"exit\":1 in the error document"; }
# A root's recipe with an error of its own, then an include the tenant owns (which makes the
# tenant the reader of what follows), then another include: the recipe's error is listed, and the
# exit is still the host's 1.
printf '[Machine]\nName=r\nBogusKey=1\nInclude=tenant/inc.recipe\nInclude=more.recipe\n' >"$tmp/root.recipe"
printf '[Bootstrap]\nDistribution=debian\n' >"$tmp/tenant/inc.recipe"
printf '[Bootstrap]\nPackages=systemd\n' >"$tmp/more.recipe"
chown 4321:4321 "$tmp/tenant/inc.recipe"
rc=0; setpriv --bounding-set -setgid --inh-caps -setgid "$MKMACHINE" check "$tmp/root.recipe" >/dev/null 2>"$tmp/err" || rc=$?
[ $rc -eq 1 ] || { cat "$tmp/err"; fail "a recipe error, then an include read as its owner without CAP_SETGID: exit $rc, want 1"; }
grep -qF "$tmp/root.recipe:3: [Machine] BogusKey=: unknown key" "$tmp/err" || { cat "$tmp/err"; fail "the recipe's own error, listed too"; }
grep -qF "more.recipe' cannot be read as the recipe's owner: mkmachine cannot take their permissions" "$tmp/err" || { cat "$tmp/err"; fail "the include's identity failure"; }
"$MKMACHINE" check "$tmp/tenant/t.recipe" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "the tenant's recipe with every capability"; }
ok "a recipe owner's permissions that cannot be taken: exit 1, said so (plain and --json)"
# The owner's user database entry cannot be read (here: over 1 MiB, as an NSS module's error would
# be): their groups are not guessed; exit 1, said so. In a mount namespace whose /etc/passwd is ours.
cp /etc/passwd "$tmp/passwd"
# (the large entry first: the files module reads the file in order, and an entry it cannot hold
# fails the lookup of every user after it; mkmprobe, in no other database, shows it is read)
printf 'mkmprobe:x:4320:4320::/nonexistent:/bin/sh\n' >>"$tmp/passwd"
{ printf 'bigtenant:x:4323:4323:'; head -c 40000 /dev/zero | tr '\0' g; printf ':/nonexistent:/bin/sh\n'; } >>"$tmp/passwd"
{ printf 'huge:x:4321:4321:'; head -c 1100000 /dev/zero | tr '\0' h; printf ':/nonexistent:/bin/sh\n'; } >>"$tmp/passwd"
in_ns() { unshare -m sh -c 'mount --make-rprivate / && mount --bind "$1" /etc/passwd && shift && exec "$@"' sh "$tmp/passwd" "$@"; }
if ! in_ns getent passwd 4320 | grep -q '^mkmprobe:'; then
  echo "skipped: the user database cases: lookups are not answered from /etc/passwd here (nscd or sssd)"
else
  rc=0; in_ns "$MKMACHINE" check "$tmp/tenant/t.recipe" >/dev/null 2>"$tmp/err" || rc=$?
  [ $rc -eq 1 ] || { cat "$tmp/err"; fail "an owner whose user database entry cannot be read: exit $rc, want 1"; }
  grep -qF "cannot read recipe '$tmp/tenant/t.recipe': cannot look up the recipe owner's groups in the user database" "$tmp/err" \
    || { cat "$tmp/err"; fail "an owner whose user database entry cannot be read: message"; }
  # One whose entry is large (40 kB) is read whole: named in what check prints.
  mkdir "$tmp/big"
  cp recipes/minimal.recipe "$tmp/big/b.recipe"
  chown -R 4323:4323 "$tmp/big"
  rc=0; in_ns "$MKMACHINE" check "$tmp/big/b.recipe" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ $rc -eq 0 ] || { cat "$tmp/err"; fail "an owner with a 40 kB user database entry: exit $rc"; }
  grep -qF "# the permissions of bigtenant (uid 4323), the owner of its files." "$tmp/out" \
    || { grep -F "permissions of" "$tmp/out"; fail "an owner with a 40 kB user database entry: not named"; }
  ok "a recipe owner whose user database entry cannot be read: exit 1, said so; a large one is read"
fi
# 5. Documentation coverage: every key the parser accepts has a "`Key=`" line in the reference.
# The key table is read from the source, so a key added there without docs fails here.
keys=$(sed -n '/^static const struct recipe_key keys\[\] = {/,/^};/p' builder/recipe.c \
       | grep -o '{ "[A-Za-z]*", "[A-Za-z]*"' | sed 's/.*"\([A-Za-z]*\)"$/\1/')
[ "$(echo "$keys" | wc -l)" -gt 60 ] || fail "could not extract the key table"
missing=0
for k in $keys; do
  grep -q "^\`$k=\`" docs/mkmachine.recipe.5.md || { echo "undocumented key: $k=" >&2; missing=1; }
done
[ $missing -eq 0 ] || fail "docs/mkmachine.recipe.5.md lacks keys"
if command -v pandoc >/dev/null; then
  pandoc -s -t man docs/mkmachine.recipe.5.md -o "$tmp/recipe.5" || fail "pandoc cannot render the reference"
  grep -q '^\.SH NAME' "$tmp/recipe.5" || fail "rendered man page has no NAME section"
fi
ok "every parser key is documented; the reference renders"
echo "cli-check: all assertions passed"
