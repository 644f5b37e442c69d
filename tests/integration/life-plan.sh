#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkmachine plan, rebuild and clean with the Arch fixture over loopback HTTP: plan shows the set
# with the db's sizes and what differs from the lock and the deployed machine, and downloads no
# package; rebuild from the stored recipe and lock gives the same digest, rebuild --update picks
# up a new version and says so; clean keeps what the deployed machine's lock names and removes
# the rest (an unreferenced entry, a stale partial download and its lock).
source "$(dirname "$0")/../tools/it-lib.sh"

arch_fixture
start_httpd "$FX/repo"
HTTP="http://127.0.0.1:$HTTPD_PORT"
HOST=$WORK/host
CACHE=$WORK/cache
mkm() { "$MKMACHINE" --host-root "$HOST" --cache-dir "${CACHE_OVERRIDE:-$CACHE}" "$@"; }
R=$WORK/recipes/pl.recipe
mkdir -p "$WORK/recipes/keys"
cp -a "$FX/keyring" "$WORK/recipes/keyring"     # Keyring= lies beside the recipe
ssh_key='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake test@plan'
echo "$ssh_key" >"$WORK/recipes/keys/admin.pub"
# A relative RootAuthorizedKeys= and an Include=: the stored canonical recipe must build without them.
printf '[Bootstrap]\nRepositories=core extra\n' >"$WORK/recipes/common.recipe"
recipe() {  # recipe PACKAGES...
  cat >"$R" <<EOF
[Machine]
Name=pl
Include=common.recipe

[Bootstrap]
Distribution=arch
Mirror=$HTTP/\$repo/os/\$arch
Packages=$*
Keyring=keyring

[Hooks]
RootAuthorizedKeys=keys/admin.pub
EOF
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
# Which of the lock's package files (by sha256) are in the cache.
cached_packages() {  # LOCK CACHE
  awk '$1=="package"{print $6}' "$1" | while read -r h; do
    [ -e "$2/sha256/${h:0:2}/$h" ] && echo "$h"
  done
}

# --- plan: the set, the sizes from the db, no package downloaded ------------------------------
recipe filesystem libfoo
: >"$WORK/httpd.log"
CACHE_OVERRIDE=$WORK/cache-plan mkm plan "$R" >"$WORK/plan1.txt" 2>"$WORK/plan1.err"
check "plan exits 0" test $? -eq 0
check "plan's table names each package with its version" \
  bash -c "grep -qE '^filesystem +2024.01-1 ' '$WORK/plan1.txt' && grep -qE '^libc-fake +2.38-1 ' '$WORK/plan1.txt' && grep -qE '^libfoo +1.4-1 ' '$WORK/plan1.txt'"
check "plan's table has the totals" grep -qE '^3 packages: .* to download, .* installed$' "$WORK/plan1.txt"
check "plan without a lock says so" contains "$WORK/plan1.txt" "against the lock: there is none"
check "plan before the first build: not deployed" contains "$WORK/plan1.txt" "against the deployed machine: not deployed"
check "plan writes no lock" test ! -e "$R.lock"
check "plan asked the server for dbs only" \
  bash -c "test -s '$WORK/httpd.log' && ! grep -vE '^GET /(core|extra)/os/x86_64/(core|extra)\.db(\.sig)? -$' '$WORK/httpd.log'"
n_files=$(find "$WORK/cache-plan/sha256" -type f | wc -l)
check "plan's cache holds the two dbs and one signature only ($n_files files)" test "$n_files" -eq 3
check "plan's cache has no temporaries" test -z "$(ls -A "$WORK/cache-plan/tmp")"

CACHE_OVERRIDE=$WORK/cache-plan mkm --json plan "$R" >"$WORK/plan1.json" 2>/dev/null
check "plan --json exits 0" test $? -eq 0
# The db's %CSIZE% and %ISIZE% for each package, against plan's JSON.
python3 - "$WORK/plan1.json" "$FX/repo/core/os/x86_64/core.db" >"$WORK/sizes.log" 2>&1 <<'PY'
import json, sys, tarfile
plan = json.load(open(sys.argv[1]))
db = {}
with tarfile.open(sys.argv[2]) as t:
    for m in t:
        if m.name.endswith("/desc"):
            f = {}
            key = None
            for line in t.extractfile(m).read().decode().splitlines():
                if line.startswith("%") and line.endswith("%"):
                    key = line
                elif line and key:
                    f.setdefault(key, line)
            db[f["%NAME%"]] = (f["%VERSION%"], int(f["%CSIZE%"]), int(f["%ISIZE%"]))
names = [p["name"] for p in plan["packages"]]
assert sorted(names) == ["filesystem", "libc-fake", "libfoo"], names
for p in plan["packages"]:
    v, c, i = db[p["name"]]
    assert (p["version"], p["download_size"], p["installed_size"]) == (v, c, i), (p, db[p["name"]])
assert plan["download_size"] == sum(db[n][1] for n in names), plan["download_size"]
assert plan["installed_size"] == sum(db[n][2] for n in names), plan["installed_size"]
assert plan["count"] == 3 and plan["source"] == "resolved" and plan["name"] == "pl"
assert plan["against_lock"] is None and plan["against_deployed"] is None
print("sizes ok")
PY
check "plan --json: versions and sizes equal the db's %CSIZE% and %ISIZE%, totals their sums" contains "$WORK/sizes.log" "sizes ok"

# --- build, then plan against the lock and the deployed machine -------------------------------
mkm build "$R" >"$WORK/b1.log" 2>&1
check "the first build exits 0" test $? -eq 0
check "the first build prints no package changes" bash -c "! grep -q '^packages:' '$WORK/b1.log'"
check "the first build records where its recipe was" test "$(cat "$(live_gen "$HOST" pl)/recipe-path")" = "$R"
d1=$(awk '/^digest /{print $2}' "$WORK/b1.log")
mkm plan "$R" >"$WORK/plan2.txt" 2>/dev/null
check "plan with a lock that covers the recipe: the lock's set" contains "$WORK/plan2.txt" "the set pinned by the lock"
check "... no changes against the lock" contains "$WORK/plan2.txt" "against the lock: no changes"
check "... none against the deployed machine" contains "$WORK/plan2.txt" "against the deployed machine: no changes"

recipe filesystem libfoo app
cp "$R.lock" "$WORK/lock.before"
: >"$WORK/httpd.log"
CACHE_OVERRIDE=$WORK/cache-plan mkm --json plan "$R" >"$WORK/plan3.json" 2>/dev/null
check "plan after adding a package exits 0" test $? -eq 0
check "... resolves again (the lock no longer covers the recipe)" test "$(json "$WORK/plan3.json" 'd["source"]')" = resolved
check "... against the lock: app and busybox-sh added" \
  test "$(json "$WORK/plan3.json" '" ".join(p["change"]+":"+p["name"]+":"+p["new_version"] for p in d["against_lock"]["packages"])')" = "added:app:1.0-1 added:busybox-sh:1.35.0-1"
check "... the same against the deployed machine" \
  test "$(json "$WORK/plan3.json" 'd["against_deployed"]["summary"]')" = "2 added"
check "... the lock is untouched" cmp -s "$R.lock" "$WORK/lock.before"
check "... and no package was downloaded (dbs only)" \
  bash -c "! grep -vE '^GET /(core|extra)/os/x86_64/(core|extra)\.db(\.sig)? -$' '$WORK/httpd.log'"
check "... none is in plan's cache" test -z "$(cached_packages "$WORK/lock.before" "$WORK/cache-plan")"
mkm plan "$R" >"$WORK/plan3.txt" 2>/dev/null
check "plan's text lists the added package" grep -qE '^  added +app 1\.0-1$' "$WORK/plan3.txt"

mkm build "$R" >"$WORK/b2.log" 2>&1
check "the second build exits 0" test $? -eq 0
check "a build that changed the set says how" contains "$WORK/b2.log" "packages: 2 added"
check "... with a line per package" grep -qE '^  added +busybox-sh 1\.35\.0-1$' "$WORK/b2.log"
d2=$(awk '/^digest /{print $2}' "$WORK/b2.log")

# --- rebuild: the stored recipe and lock, not the recipe file --------------------------------
cp "$R.lock" "$WORK/lock.2"
# The recipe file and its include are gone: the stored recipe has the include merged and the
# key file's path made absolute (the key file itself is read again).
mkdir -p "$WORK/away"
mv "$R" "$WORK/recipes/common.inc" "$WORK/away/"
mkm --json rebuild pl >"$WORK/r1.json" 2>"$WORK/r1.log"
rc=$?
mv "$WORK/away/pl.recipe" "$WORK/away/common.inc" "$WORK/recipes/"
check "rebuild exits 0 without the recipe file and its include" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    | /' "$WORK/r1.log"
check "rebuild gives the same digest" test "$(json "$WORK/r1.json" 'd["digest"]')" = "$d2" -a -n "$d2"
check "rebuild --json: changes with nothing in them" test "$(json "$WORK/r1.json" 'd["changes"]["summary"]')" = "no changes"
check "rebuild --json: the lock is the new generation's (it exists)" \
  test "$(json "$WORK/r1.json" 'd["lock"]')" = "$(live_gen "$HOST" pl)/lock" -a -f "$(live_gen "$HOST" pl)/lock"
check "rebuild leaves the lock beside the recipe alone" cmp -s "$R.lock" "$WORK/lock.2"
check "rebuild keeps the recipe's path in the state" test "$(cat "$(live_gen "$HOST" pl)/recipe-path")" = "$R"
check "the key was installed from the stored recipe's copy" \
  grep -qF "$ssh_key" "$HOST/var/lib/machines/pl/root/.ssh/authorized_keys"
# A key file swapped for a symlink out of the recipe's directory is refused, as at the first build.
mv "$WORK/recipes/keys/admin.pub" "$WORK/admin.pub.real"
ln -s /etc/passwd "$WORK/recipes/keys/admin.pub"
snapshot "$HOST/var/lib/machines/pl" >"$WORK/pl.before"
mkm rebuild pl >"$WORK/rsym.log" 2>&1
check "rebuild refuses a key file that became a symlink out of the recipe's directory" test $? -eq 2
check "... saying so" contains "$WORK/rsym.log" "is not beside the recipe"
snapshot "$HOST/var/lib/machines/pl" >"$WORK/pl.after"
check "... and the machine is unchanged" cmp -s "$WORK/pl.before" "$WORK/pl.after"
rm "$WORK/recipes/keys/admin.pub"
mv "$WORK/admin.pub.real" "$WORK/recipes/keys/admin.pub"

mkm rebuild nosuch >"$WORK/r0.log" 2>&1
check "rebuild of a machine mkmachine did not build: exit 1" test $? -eq 1
check "... saying so" contains "$WORK/r0.log" "no machine of that name was built by mkmachine"
mkm rebuild ../x >"$WORK/r00.log" 2>&1
check "rebuild of an invalid name: refused" test $? -ne 0 -a ! -e "$HOST/var/lib/x"

# A new version of libfoo appears in core (made as mkarchrepo.sh makes packages, signed by the
# fixture's key, added with repo-add).
add_package() {  # REPO NAME VERSION [PKGINFO-LINES...]
  local repo=$1 name=$2 ver=$3 s="$WORK/newpkg/$2" dir="$FX/repo/$1/os/x86_64"; shift 3
  rm -rf "$s"; mkdir -p "$s/usr/lib"
  echo "$name $ver" >"$s/usr/lib/$name.so.1"
  { printf 'pkgname = %s\npkgbase = %s\npkgver = %s\npkgdesc = new\nbuilddate = 1700000100\n' "$name" "$name" "$ver"
    printf 'size = %s\narch = x86_64\n' "$(stat -c %s "$s/usr/lib/$name.so.1")"
    printf '%s\n' "$@"; } >"$s/.PKGINFO"
  find "$s" -exec touch -h -d @1700000100 {} +
  local f="$dir/$name-$ver-x86_64.pkg.tar.zst"
  ( cd "$s" && bsdtar --uid 0 --gid 0 --uname root --gname root -cnf - .PKGINFO usr usr/lib "usr/lib/$name.so.1" ) | zstd -q -c >"$f"
  GNUPGHOME=$FX/gnupg gpg --batch --yes --quiet --detach-sign --no-armor -o "$f.sig" "$f"
  GNUPGHOME=$FX/gnupg repo-add -q --sign --key "$(cat "$FX/FINGERPRINT")" "$dir/$repo.db.tar.gz" "$f" >"$WORK/repo-add.log" 2>&1
  local rc=$?
  gpgconf --homedir "$FX/gnupg" --kill all >/dev/null 2>&1 || true
  return $rc
}
add_package core libfoo 1.5-1 'provides = libfoo.so=1-64' 'depend = libc.so'
check "the fixture gets libfoo 1.5-1" test $? -eq 0
mkm rebuild pl >"$WORK/r2.log" 2>&1
check "rebuild without --update keeps the locked libfoo 1.4-1" \
  test $? -eq 0 -a -d "$HOST/var/lib/machines/pl/var/lib/pacman/local/libfoo-1.4-1"
mkm plan --update "$R" >"$WORK/plan4.txt" 2>/dev/null
mkm plan --bogus "$R" >/dev/null 2>"$WORK/plan-bad.err"
check "plan --bogus is a usage error (exit 2) naming the option" \
  bash -c '[ $0 -eq 2 ] && grep -qF "plan: unknown option '"'"'--bogus'"'"'" "$1"' $? "$WORK/plan-bad.err"
mkm rebuild --bogus x >/dev/null 2>"$WORK/rebuild-bad.err"
check "rebuild --bogus is a usage error (exit 2) naming the option" \
  bash -c '[ $0 -eq 2 ] && grep -qF "rebuild: unknown option '"'"'--bogus'"'"'" "$1"' $? "$WORK/rebuild-bad.err"
check "plan --update shows the upgrade against the lock" grep -qE '^  upgraded +libfoo 1\.4-1 -> 1\.5-1$' "$WORK/plan4.txt"
mkm rebuild pl --update >"$WORK/r3.log" 2>&1
check "rebuild --update exits 0" test $? -eq 0
check "rebuild --update installs libfoo 1.5-1" test -d "$HOST/var/lib/machines/pl/var/lib/pacman/local/libfoo-1.5-1"
check "rebuild --update shows the upgrade" contains "$WORK/r3.log" "packages: 1 upgraded"
check "... as old -> new" grep -qE '^  upgraded +libfoo 1\.4-1 -> 1\.5-1$' "$WORK/r3.log"
check "... and leaves the lock beside the recipe alone" cmp -s "$R.lock" "$WORK/lock.2"
check "... the new generation's lock pins libfoo 1.5-1" grep -q '^package libfoo 1.5-1 ' "$(live_gen "$HOST" pl)/lock"

# --- clean ----------------------------------------------------------------------------------
LOCK=$(live_gen "$HOST" pl)/lock
junk=$(printf 'not referenced by any lock' | sha256sum | cut -d' ' -f1)
mkdir -p "$CACHE/sha256/${junk:0:2}"
printf 'not referenced by any lock' >"$CACHE/sha256/${junk:0:2}/$junk"
chmod 0444 "$CACHE/sha256/${junk:0:2}/$junk"
part=$(printf 'partial' | sha256sum | cut -d' ' -f1)
printf 'half a download' >"$CACHE/tmp/dl-$part.part"
: >"$CACHE/tmp/dl-$part.lock"
# Every kept generation's lock counts (the live one and the one kept for rollback).
referenced() { cat "$HOST"/var/lib/mkmachine/pl/gen/*/lock | awk '$1=="package"{print $6; if ($9 != "-") print $9}'; }
missing() { referenced | while read -r h; do [ -e "$CACHE/sha256/${h:0:2}/$h" ] || echo "$h"; done; }
check "before clean: every file the kept generations' locks name is in the cache" test -z "$(missing)"
check "two generations are kept (the live one and one for rollback)" test "$(ls "$HOST/var/lib/mkmachine/pl/gen" | wc -l)" -eq 2
find "$CACHE" -type f | sort >"$WORK/cache.before"

mkm clean --dry-run >"$WORK/c0.txt" 2>"$WORK/c0.err"
check "clean --dry-run exits 0" test $? -eq 0
check "clean --dry-run names the unreferenced entry" grep -q "^would remove $CACHE/sha256/${junk:0:2}/$junk " "$WORK/c0.txt"
check "clean --dry-run names the stale partial" grep -q "^would remove $CACHE/tmp/dl-$part.part " "$WORK/c0.txt"
find "$CACHE" -type f | sort >"$WORK/cache.dry"
check "clean --dry-run removes nothing" cmp -s "$WORK/cache.before" "$WORK/cache.dry"

# While a build holds the cache (as cache_open() does), clean refuses and removes nothing.
# (One process holds it, so that killing it releases it: flock(1) would leave its child holding.)
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_SH); open(sys.argv[2], "w").close(); time.sleep(60)' \
  "$CACHE/lock" "$WORK/held" &
holder=$!
for _ in $(seq 100); do [ -e "$WORK/held" ] && break; sleep 0.1; done
mkm clean >"$WORK/cbusy.txt" 2>&1
rc=$?
kill $holder 2>/dev/null; wait $holder 2>/dev/null
check "clean while the cache is in use: exit 1" test $rc -eq 1
check "... saying why" contains "$WORK/cbusy.txt" "is in use by a running build"
find "$CACHE" -type f | sort >"$WORK/cache.busy"
check "... and removes nothing" cmp -s "$WORK/cache.before" "$WORK/cache.busy"

mkm --json clean >"$WORK/c1.json" 2>"$WORK/c1.err"
check "clean --json exits 0" test $? -eq 0
check "clean keeps every file the kept generations' locks reference" test -z "$(missing)"
check "clean removed the unreferenced entry" test ! -e "$CACHE/sha256/${junk:0:2}/$junk"
check "clean removed the stale partial and its lock" test ! -e "$CACHE/tmp/dl-$part.part" -a ! -e "$CACHE/tmp/dl-$part.lock"
check "clean --json lists what it removed" \
  test "$(json "$WORK/c1.json" "sum(1 for e in d['removed'] if e['path'] in ('$CACHE/sha256/${junk:0:2}/$junk', '$CACHE/tmp/dl-$part.part'))")" = 2
check "clean --json: one machine accounted for" test "$(json "$WORK/c1.json" 'd["machines"]')" = "['pl']"
left=$(find "$CACHE/sha256" -type f | wc -l)
check "clean leaves only what the lock references ($left files)" test "$left" -eq "$(referenced | sort -u | wc -l)"
# Generations beyond --keep-generations go first, and with them what only they referenced.
old_gen=$(ls -d "$HOST"/var/lib/mkmachine/pl/gen/* | grep -vx "$(live_gen "$HOST" pl)")
old_only=$(comm -23 <(awk '$1=="package"{print $6}' "$old_gen/lock" | sort) <(awk '$1=="package"{print $6}' "$(live_gen "$HOST" pl)/lock" | sort))
check "the kept generation has a package of its own (libfoo 1.4-1)" test -n "$old_only"
mkm --keep-generations 0 clean --dry-run >"$WORK/c2.txt" 2>/dev/null
check "clean --dry-run --keep-generations 0 names the kept generation" grep -qx "would remove $old_gen" "$WORK/c2.txt"
check "... and the package only it references" grep -q "^would remove $CACHE/sha256/${old_only:0:2}/$old_only " "$WORK/c2.txt"
check "... and removes neither" test -d "$old_gen" -a -e "$CACHE/sha256/${old_only:0:2}/$old_only"
# A machine another command holds is passed over with a warning; the clean goes on.
rm -f "$WORK/held"
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); open(sys.argv[2], "w").close(); time.sleep(60)' \
  "$HOST/var/lib/mkmachine/pl/.lock" "$WORK/held" &
holder=$!
for _ in $(seq 100); do [ -e "$WORK/held" ] && break; sleep 0.1; done
mkm --keep-generations 0 clean >"$WORK/cheld.txt" 2>&1
rc=$?
kill $holder 2>/dev/null; wait $holder 2>/dev/null
check "clean while a machine is held by another command: exit 0" test $rc -eq 0
check "... warning that it was not pruned" contains "$WORK/cheld.txt" "warning: clean: machine 'pl' not pruned"
check "... and its generations are kept" test -d "$old_gen"
mkm --keep-generations 0 clean >"$WORK/c3.txt" 2>&1
check "clean --keep-generations 0 exits 0" test $? -eq 0
check "... removes the kept generation" test ! -e "$old_gen" -a "$(ls "$HOST/var/lib/mkmachine/pl/gen" | wc -l)" -eq 1
check "... and its tree" test -z "$(ls -a "$HOST/var/lib/machines" | grep -F '.#pl.gen-')"
check "... and the package only it referenced" test ! -e "$CACHE/sha256/${old_only:0:2}/$old_only"
check "... keeping every file the live lock references" test -z "$(missing)"
mkm rebuild pl >"$WORK/r4.log" 2>&1
check "a rebuild after clean still works" test $? -eq 0

# --- RECIPE.lock comes with a shared recipe: read only as a file beside it ---------------------
# A co-tenant's lock as a link to a root-only file (its first line would be echoed in the parse
# error), or a FIFO (plan would hang): refused, naming why, and nothing of the file is shown.
mv "$R.lock" "$WORK/lock.saved"
printf 'root:$6$SECRETHASH:19000:0:99999:7:::\n' >"$WORK/shadow"
chmod 600 "$WORK/shadow"
ln -s "$WORK/shadow" "$R.lock"
timeout 30 "$MKMACHINE" --host-root "$HOST" --cache-dir "$CACHE" plan "$R" >"$WORK/lk1.out" 2>&1
check "plan with RECIPE.lock a link to a host file: refused (exit 1)" test $? -eq 1
check "... saying it leads out of the recipe's directory" contains "$WORK/lk1.out" "cannot read $R.lock: a link out of the recipe's directory"
check "... without a word of the file" bash -c "! grep -q SECRETHASH '$WORK/lk1.out'"
rm -f "$R.lock"
mkfifo "$R.lock"
timeout 30 "$MKMACHINE" --host-root "$HOST" --cache-dir "$CACHE" build "$R" >"$WORK/lk2.out" 2>&1
check "build with RECIPE.lock a FIFO: refused at once (exit 1, not a hang)" test $? -eq 1
check "... as not a regular file" contains "$WORK/lk2.out" "cannot read $R.lock: not a regular file"
rm -f "$R.lock"
mv "$WORK/lock.saved" "$R.lock"

# The recipe's directory made writable by anyone (as /tmp): its files may be anyone's, so none is
# taken beside the recipe, the include first.
chmod 1777 "$WORK/recipes"
"$MKMACHINE" --host-root "$HOST" --cache-dir "$CACHE" plan "$R" >"$WORK/ww.out" 2>&1
rc=$?
chmod 0755 "$WORK/recipes"
check "a recipe in a directory anyone can write: plan refused as an invalid recipe (exit 2)" test $rc -eq 2
check "... naming the include and why" contains "$WORK/ww.out" \
  "pl.recipe:3: [Machine] Include=: '$WORK/recipes/common.recipe' is in (or is) a directory anyone can write"
# A recipe without sources there: planned, but a lock beside it is not read (anyone could have put
# it there), and mkmachine lock does not write one there.
mkdir -m 1777 "$WORK/ww"
printf '[Machine]\nName=ww\n[Bootstrap]\nDistribution=arch\nMirror=%s/$repo/os/$arch\nRepositories=core\nPackages=base-test\n' \
  "$HTTP" >"$WORK/ww/ww.recipe"
echo 'planted by someone else' >"$WORK/ww/ww.recipe.lock"
mkdir -p "$WORK/hostkeys" && cp -a "$FX/keyring" "$WORK/hostkeys/archlinux"  # the host's keys: no Keyring= beside
mkm --keys-dir "$WORK/hostkeys" plan "$WORK/ww/ww.recipe" >"$WORK/ww2.out" 2>&1
check "a lock in a directory anyone can write: plan exits 0" test $? -eq 0
check "... saying the lock is not used" contains "$WORK/ww2.out" \
  "warning: $WORK/ww/ww.recipe.lock is not used: the recipe's directory is one anyone can write"
check "... and not reading it" bash -c "! grep -q planted '$WORK/ww2.out'"
mkm --keys-dir "$WORK/hostkeys" lock "$WORK/ww/ww.recipe" >"$WORK/ww3.out" 2>&1
check "mkmachine lock there: refused (exit 1)" test $? -eq 1
check "... not writing it" contains "$WORK/ww3.out" "not writing $WORK/ww/ww.recipe.lock: the recipe's directory is one anyone can write"
check "... which is left as it was" grep -q planted "$WORK/ww/ww.recipe.lock"

# A tenant's recipe kept where they do not own the directory (their mailbox in root's /var/mail):
# what lies beside it is other users' files, read with the tenant's permissions, so refused.
mkdir -m 0755 "$WORK/mail"
echo 'ALICESECRET' >"$WORK/mail/alice"
chown 4242:4242 "$WORK/mail/alice" && chmod 0600 "$WORK/mail/alice"
printf '[Machine]\nName=mb\n[Bootstrap]\nDistribution=arch\nMirror=%s/$repo/os/$arch\nRepositories=core\nPackages=base-test\n[Hooks]\nCopy=alice:/etc/alice\n' \
  "$HTTP" >"$WORK/mail/tenant"
chown 65534:65534 "$WORK/mail/tenant"
mkm --keys-dir "$WORK/hostkeys" check "$WORK/mail/tenant" >"$WORK/mb1.out" 2>&1
check "a tenant's recipe naming another user's file beside it: check refuses (exit 2)" test $? -eq 2
check "... saying the recipe's owner cannot read it" contains "$WORK/mb1.out" \
  "[Hooks] Copy=: '$WORK/mail/alice' is not readable by the recipe's owner"
check "... without a word of the file" bash -c "! grep -q ALICESECRET '$WORK/mb1.out'"
chown 65534:65534 "$WORK/mail/alice"
mkm --keys-dir "$WORK/hostkeys" check "$WORK/mail/tenant" >"$WORK/mb2.out" 2>&1
check "... and takes it once it is the tenant's own" test $? -eq 0
check "check says whose permissions it reads with" contains "$WORK/mb2.out" \
  "# the permissions of $(getent passwd 65534 | cut -d: -f1) (uid 65534), the owner of its files"
mkm --keys-dir "$WORK/hostkeys" check --json "$WORK/mail/tenant" >"$WORK/mb2.json" 2>&1
check "check --json: the reader" test "$(json "$WORK/mb2.json" 'd["reader"]["uid"], d["reader"]["user"]')" = \
  "(65534, '$(getent passwd 65534 | cut -d: -f1)')"
# RECIPE.lock beside it is read the same way
printf '[Machine]\nName=mb\n[Bootstrap]\nDistribution=arch\nMirror=%s/$repo/os/$arch\nRepositories=core\nPackages=base-test\n' \
  "$HTTP" >"$WORK/mail/t2"
chown 65534:65534 "$WORK/mail/t2"
echo 'ROOTLOCK' >"$WORK/mail/t2.lock" && chmod 0600 "$WORK/mail/t2.lock"
mkm --keys-dir "$WORK/hostkeys" plan "$WORK/mail/t2" >"$WORK/mb3.out" 2>&1
check "a root-only lock beside a tenant's recipe: plan refused (exit 1)" test $? -eq 1
check "... saying the recipe's owner cannot read it" contains "$WORK/mb3.out" \
  "cannot read $WORK/mail/t2.lock: the lock is not readable by the recipe's owner"
check "... without a word of it" bash -c "! grep -q ROOTLOCK '$WORK/mb3.out'"
# ... and a lock that is a third user's link (to the tenant's own file beside it) is refused in
# the words every source beside a recipe gets, not as a bare errno.
rm -f "$WORK/mail/t2.lock"
echo 'TENANTLOCK' >"$WORK/mail/t2.real" && chown 65534:65534 "$WORK/mail/t2.real"
ln -s t2.real "$WORK/mail/t2.lock" && chown -h 4242:4242 "$WORK/mail/t2.lock"
mkm --keys-dir "$WORK/hostkeys" plan "$WORK/mail/t2" >"$WORK/mb3b.out" 2>&1
check "a lock that is a third user's link: plan refused (exit 1)" test $? -eq 1
check "... saying whose link it is not" contains "$WORK/mb3b.out" \
  "cannot read $WORK/mail/t2.lock: the lock leads through a symbolic link that neither root nor the recipe's owner owns"
rm -f "$WORK/mail/t2.real"
# A rebuild reads the sources with the permissions the first build recorded (the stored recipe
# is root's): the tenant's file taken by the build, then made another's, is refused by rebuild;
# the tenant cannot make root the reader by making their recipe a link to root's file or by
# removing it. (Tenant uid 4244 here, which the user database does not know: not nobody.)
rm -f "$WORK/mail/t2.lock"
echo 'mine' >"$WORK/mail/mine" && chown 4244:4244 "$WORK/mail/mine" && chmod 0600 "$WORK/mail/mine"
printf '[Hooks]\nCopy=mine:/etc/mine\n' >>"$WORK/mail/t2"
chown 4244:4244 "$WORK/mail/t2"
mkm --keys-dir "$WORK/hostkeys" check --json "$WORK/mail/t2" >"$WORK/mb4.json" 2>&1
check "check --json: a reader the user database does not know has no user name" \
  test "$(json "$WORK/mb4.json" 'd["reader"]["uid"], d["reader"]["user"]')" = "(4244, None)"
mkm --keys-dir "$WORK/hostkeys" check "$WORK/mail/t2" >"$WORK/mb4.txt" 2>&1
check "... and plain check names it by its uid alone" contains "$WORK/mb4.txt" "the permissions of (uid 4244), the owner of its files."
mkm --keys-dir "$WORK/hostkeys" build "$WORK/mail/t2" >"$WORK/mb4.out" 2>&1
check "the tenant's recipe with their own file builds" test $? -eq 0
check "... copying it" grep -qx mine "$HOST/var/lib/machines/mb/etc/mine"
check "... recording whose permissions it read them with" test "$(cat "$(live_gen "$HOST" mb)/recipe-reader")" = 4244
chown 4242:4242 "$WORK/mail/mine"
mkm --keys-dir "$WORK/hostkeys" rebuild mb >"$WORK/mb5.out" 2>&1
check "rebuild once the file is another user's: refused (exit 2)" test $? -eq 2
check "... saying the recipe's owner cannot read it" contains "$WORK/mb5.out" \
  "'$WORK/mail/mine' is not readable by the recipe's owner"
chown 4244:4244 "$WORK/mail/mine"
rm -f "$WORK/mail/t2" && ln -s /etc/hostname "$WORK/mail/t2" && chown -h 4244:4244 "$WORK/mail/t2"
mkm --keys-dir "$WORK/hostkeys" rebuild mb >"$WORK/mb6.out" 2>&1
check "rebuild after the recipe became a link to root's file: reads as the recorded owner (exit 0)" test $? -eq 0
chown 0:0 "$WORK/mail/mine"
mkm --keys-dir "$WORK/hostkeys" rebuild mb >"$WORK/mb7.out" 2>&1
check "... so a root-only file there is refused (exit 2), not read as root" test $? -eq 2
check "... as not readable by the recipe's owner" contains "$WORK/mb7.out" "'$WORK/mail/mine' is not readable by the recipe's owner"
rm -f "$WORK/mail/t2"
mkm --keys-dir "$WORK/hostkeys" rebuild mb >"$WORK/mb8.out" 2>&1
check "rebuild after the recipe was removed: the same (exit 2)" test $? -eq 2
check "... the same words" contains "$WORK/mb8.out" "'$WORK/mail/mine' is not readable by the recipe's owner"
echo 'nobody' >"$(live_gen "$HOST" mb)/recipe-reader"
mkm --keys-dir "$WORK/hostkeys" rebuild mb >"$WORK/mb9.out" 2>&1
check "a generation whose recipe-reader is not a uid: rebuild refused" test $? -ne 0
check "... saying so" contains "$WORK/mb9.out" "mb: the generation's recipe-reader is not a uid"
finish
