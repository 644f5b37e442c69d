#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Distribution=arch end to end, against the generated signed repo and the real pacman:
# the tree equals pacman's, pacman -Qkk is clean, install orders match pacman's, two builds are
# identical, the lock pins the set, and every hostile package or failure is refused with its
# message while the previous machine and the host stay exactly as they were.
source "$(dirname "$0")/../tools/it-lib.sh"

arch_fixture pacman
start_httpd "$FX/repo"
HTTP="http://127.0.0.1:$HTTPD_PORT"
HOST=$WORK/host
CACHE=$WORK/cache
M=$HOST/var/lib/machines

recipe() {  # recipe FILE NAME MIRROR REPOS PACKAGES...
  local f=$1 name=$2 mirror=$3 repos=$4; shift 4
  cat >"$f" <<R
[Machine]
Name=$name

[Bootstrap]
Distribution=arch
Mirror=$mirror/\$repo/os/\$arch
Repositories=$repos
Packages=$*
Keyring=$FX/keyring
R
}
mkm() { "$MKMACHINE" --host-root "$HOST" --cache-dir "${CACHE_OVERRIDE:-$CACHE}" "$@"; }
pac() { pacman --root "$1" --dbpath "$1/var/lib/pacman" "${@:2}"; }

# --- 1. build over HTTP, compare with the real pacman ---------------------------------------
TARGETS="base-test app cron-user confpkg scripted hardlinks caps"
recipe "$WORK/t1.recipe" t1 "$HTTP" "core extra" $TARGETS
mkm t1.recipe >/dev/null 2>&1 || true   # not a file here: must fail cleanly
( cd "$WORK" && mkm -v t1.recipe ) >"$WORK/b1.log" 2>&1
check "build over http exits 0" test $? -eq 0 -a -d "$M/t1"
# One key signs the db and the packages: gpg judges its first signature, every later one is
# checked in-process.
npkg=$(awk '$1=="package"' "$WORK/t1.recipe.lock" | wc -l)
sigline=$(grep -o '([0-9]* checked in-process, [0-9]* by gpg)' "$WORK/b1.log")
native=$(echo "$sigline" | tr -dc '0-9 ' | awk '{print $1}')
check "signatures by a key gpg accepted are checked in-process: $sigline, $npkg packages" \
  test "${sigline#* checked in-process, }" = "1 by gpg)" -a "${native:-0}" -ge $((npkg - 1))
check "the lock is written beside the recipe" test -s "$WORK/t1.recipe.lock"
pac "$M/t1" -Qkk >"$WORK/qkk.log" 2>&1
check "pacman -Qkk on the tree is clean" bash -c "! grep -v ' 0 altered files' '$WORK/qkk.log' | grep -q ."
pac "$M/t1" -Qq | sort >"$WORK/q.txt"
awk '$1=="package"{print $2}' "$WORK/t1.recipe.lock" | sort >"$WORK/lockq.txt"
check "pacman -Q lists exactly the resolved set" cmp -s "$WORK/q.txt" "$WORK/lockq.txt"

mkdir -p "$WORK/oracle"
bash "$TOP/tests/tools/pacman-oracle.sh" "$WORK/oracle" "file://$FX/repo" "$FX/pacman-gpg" $TARGETS \
  >"$WORK/oracle.log" 2>&1
check "the real pacman installs the same targets" test $? -eq 0
# Scripts run on both sides. Documented exceptions: pacman's log, sync dbs and hook dir; our
# mirrorlist; install dates.
EXC=(--exclude '^var/log/pacman.log$' --exclude '^var/lib/pacman/sync' --exclude '^etc/pacman.d/hooks$'
     --exclude '^etc/pacman.d/mirrorlist$' --exclude '^proc$' --exclude '^var/cache/pacman')
python3 "$TOP/tests/tools/treelist.py" "${EXC[@]}" "$WORK/oracle" | grep -v '/desc f ' >"$WORK/o.txt"
python3 "$TOP/tests/tools/treelist.py" "${EXC[@]}" "$M/t1" | grep -v '/desc f ' >"$WORK/m.txt"
if diff -u "$WORK/o.txt" "$WORK/m.txt" >"$WORK/tree.diff"; then ok "tree equals pacman's path by path (type, mode, owner, size, content, links, xattrs)"
else bad "tree equals pacman's"; head -40 "$WORK/tree.diff"; fi
descdiff=0
for d in "$WORK"/oracle/var/lib/pacman/local/*/desc; do
  rel=${d#"$WORK/oracle/"}
  diff <(sed '/^%INSTALLDATE%$/{n;d}' "$d") <(sed '/^%INSTALLDATE%$/{n;d}' "$M/t1/$rel") || { descdiff=1; echo "  differs: $rel"; }
done
check "local db desc files equal pacman's except %INSTALLDATE%" test $descdiff -eq 0
check "the capability survived extraction" bash -c "getcap '$M/t1/usr/bin/pinger' 2>/dev/null | grep -q cap_net_raw || ! command -v getcap >/dev/null"
check "the machine's mirrorlist names the mirror used" grep -qF "Server = $HTTP/\$repo/os/\$arch" "$M/t1/etc/pacman.d/mirrorlist"

# --- 2. install order equals pacman's ---------------------------------------------------------
order_case() {
  local name=$1; shift
  recipe "$WORK/$name.recipe" "$name" "file://$FX/repo" "core extra" "$@"
  ( cd "$WORK" && mkm -q lock "$name.recipe" ) >"$WORK/$name.log" 2>&1 || { bad "lock $name"; cat "$WORK/$name.log"; return; }
  awk '$1=="package"{print $10, $2, $3}' "$WORK/$name.recipe.lock" | sort -n | awk '{print $2"-"$3}' >"$WORK/$name.ours"
  rm -rf "$WORK/or-$name"; mkdir -p "$WORK/or-$name"
  bash "$TOP/tests/tools/pacman-oracle.sh" "$WORK/or-$name" "file://$FX/repo" "$FX/pacman-gpg" --noscriptlet "$@" >"$WORK/or-$name.log" 2>&1
  pac "$WORK/or-$name" -Q | tr ' ' '-' | sort >"$WORK/$name.theirset"
  sed -n 's/^installing \(.*\)\.\.\.$/\1/p' "$WORK/or-$name.log" >"$WORK/$name.theirorder"
  sed 's/-[^-]*-[^-]*$//' "$WORK/$name.ours" >"$WORK/$name.ournames"
  if diff -u "$WORK/$name.theirorder" "$WORK/$name.ournames" >/dev/null && diff <(sort "$WORK/$name.ours") "$WORK/$name.theirset" >/dev/null; then
    ok "install order and versions equal pacman's for: $*"
  else
    bad "install order equals pacman's for: $*"; paste "$WORK/$name.theirorder" "$WORK/$name.ours"
  fi
}
order_case o1 base-test app cron-user confpkg scripted hooktarget
order_case o2 caps hardlinks needs-libfoo2 needs-epoch cron-user fcron
order_case o3 libfoo
order_case o4 depcycle-a
order_case o5 new-tool old-tool
order_case o6 uses-old-tool
order_case o7 extra-app

# --- 3. reproducibility and the lock ------------------------------------------------------------
snapshot "$M/t1" >"$WORK/t1.snap"
( cd "$WORK" && umask 077 && "$MKMACHINE" -q --host-root "$WORK/host2" --cache-dir "$WORK/cache2" t1.recipe ) >"$WORK/b2.log" 2>&1
check "a second build elsewhere (other host root, cache, umask) succeeds" test $? -eq 0
snapshot "$WORK/host2/var/lib/machines/t1" >"$WORK/t1b.snap"
check "both builds are identical, time stamps included" cmp -s "$WORK/t1.snap" "$WORK/t1b.snap"
G1=$(live_gen "$HOST" t1)
check "both builds report the same machine digest" cmp -s "$G1/digest" "$(live_gen "$WORK/host2" t1)/digest"
check "the manifest in the live generation's state lists the tree" grep -q '^./usr/bin/busybox type=file ' "$G1/manifest"
( cd "$WORK" && "$MKMACHINE" -q --json --host-root "$WORK/host3" --cache-dir "$CACHE" t1.recipe ) >"$WORK/b.json" 2>/dev/null
check "--json reports the digest of the machine" python3 -c "
import json, sys
d = json.load(open('$WORK/b.json'))
sys.exit(0 if d['digest'] == open('$G1/digest').read().strip() and d['packages'] > 0 else 1)"
cp "$WORK/t1.recipe.lock" "$WORK/lock.first"
( cd "$WORK" && mkm -q lock t1.recipe ) >/dev/null 2>&1
check "mkmachine lock rewrites the identical lock" cmp -s "$WORK/lock.first" "$WORK/t1.recipe.lock"
check "the lock names the signing key" grep -q "^key $(cat "$FX/FINGERPRINT")$" "$WORK/t1.recipe.lock"
# From the lock, with the mirror gone: everything comes from the cache.
sed -i "s|^Mirror=.*|Mirror=http://127.0.0.1:9/gone/\$repo/os/\$arch|" "$WORK/t1.recipe"
( cd "$WORK" && mkm -q t1.recipe ) >"$WORK/b3.log" 2>&1
check "a locked rebuild works from the cache when the mirror is gone" test $? -eq 0
snapshot "$M/t1" >"$WORK/t1c.snap"
check "... and gives the identical tree (but for the mirrorlist naming the new mirror)" \
  cmp -s <(grep -v '^etc/pacman.d/mirrorlist ' "$WORK/t1.snap") <(grep -v '^etc/pacman.d/mirrorlist ' "$WORK/t1c.snap")
n1=${G1##*/}
check "the previous generation is kept as .#t1.gen-$n1, the tree its state describes" \
  test "$(stat -c %d:%i "$M/.#t1.gen-$n1" 2>/dev/null)" = "$(sed -n 's/^root=//p' "$G1/meta")"
check "... and the new one is live, with a state of its own" test "$(live_gen "$HOST" t1)" = "$HOST/var/lib/mkmachine/t1/gen/$((n1 + 1))"
sed -i "s|^Mirror=.*|Mirror=$HTTP/\$repo/os/\$arch|" "$WORK/t1.recipe"

# --- 4. failures leave the machine and the host as they were ---------------------------------
snapshot "$M/t1" >"$WORK/before.snap"
host_snapshot() { find "$HOST" -path "$M/t1" -prune -o -path "$M/.#t1.gen-*" -prune -o -path "$HOST/var/lib/mkmachine/t1/.lock" -prune -o -printf '%P %y %m %s\n' | sort; }
host_snapshot >"$WORK/host.before"
unchanged() {  # unchanged WHAT
  snapshot "$M/t1" >"$WORK/after.snap"
  check "$1: the machine is unchanged" cmp -s "$WORK/before.snap" "$WORK/after.snap"
  host_snapshot >"$WORK/host.after"
  if cmp -s "$WORK/host.before" "$WORK/host.after"; then ok "$1: the host is unchanged (no staging tree left)"
  else bad "$1: the host is unchanged"; diff "$WORK/host.before" "$WORK/host.after" | head; fi
}
fails_with() {  # fails_with WHAT EXPECTED-TEXT RECIPE-ARGS...
  local what=$1 text=$2; shift 2
  recipe "$WORK/f.recipe" t1 "$@"
  ( cd "$WORK" && rm -f f.recipe.lock && mkm f.recipe ) >"$WORK/f.log" 2>&1
  local rc=$?
  check "$what: exit status 1" test $rc -eq 1
  check "$what: message says why" contains "$WORK/f.log" "$text"
  unchanged "$what"
}
for f in /tmp/escape-abs /tmp/escape-dotdot "$WORK/escape-dotdot" "$M/escape-dotdot"; do rm -f "$f"; done
fails_with "evil-dotdot" "refusing entry 'usr/../../escape-dotdot': path contains '..'" "$HTTP" "core hostile" filesystem evil-dotdot
fails_with "evil-abs" "refusing entry '/tmp/escape-abs': absolute path" "$HTTP" "core hostile" filesystem evil-abs
fails_with "evil-symlink" "refusing entry 'usr/share/evil/escape-symlink': it writes through a symlink the same package creates" "$HTTP" "core hostile" filesystem evil-symlink
fails_with "evil-hardlink" "refusing entry 'usr/share/evil-passwd': hard link target outside the package" "$HTTP" "core hostile" filesystem evil-hardlink
fails_with "evil-hardlink-rel" "refusing entry 'usr/share/evil-passwd': hard link target outside the package" "$HTTP" "core hostile" filesystem evil-hardlink-rel
fails_with "evil-device" "refusing entry 'dev/evil': device nodes are not allowed in packages" "$HTTP" "core hostile" filesystem evil-device
fails_with "evil-size" "evil-size: contents exceed the 1 bytes its metadata promised" "$HTTP" "core hostile" filesystem evil-size
fails_with "evil-unsigned" "evil-unsigned: no signature" "$HTTP" "core hostile" filesystem evil-unsigned
fails_with "evil-wrongkey" "evil-wrongkey-1.0-1" "$HTTP" "core hostile" filesystem evil-wrongkey
check "evil-wrongkey: the message says the key is unknown" grep -qiE 'unknown key|not in the keyring|untrusted' "$WORK/f.log"
fails_with "evil-badsig" "evil-badsig-1.0-1" "$HTTP" "core hostile" filesystem evil-badsig
check "evil-badsig: the message says the signature is bad" grep -qi 'bad signature' "$WORK/f.log"
fails_with "evil-tampered" "evil-tampered" "$HTTP" "core hostile" filesystem evil-tampered
check "evil-tampered: the message says the file is not what the db promised" grep -qiE 'checksum|digest|sha256|of [0-9]+ bytes|expected [0-9]+' "$WORK/f.log"
check "nothing escaped to /tmp or beside the machine" bash -c "! ls /tmp/escape-abs /tmp/escape-dotdot '$M/escape-dotdot' '$M/../escape-dotdot' 2>/dev/null | grep -q ."
fails_with "file conflict" "clash-b: /usr/share/clash/file exists in both 'clash-a' and 'clash-b'" "$HTTP" "core hostile" filesystem clash-a clash-b
fails_with "unsatisfiable dependency" "unsat -> libfoo>=3: only 1.4-1 (core), 2.0-1 (extra) available" "$HTTP" "core extra" unsat
fails_with "unknown target" "target not found: no-such-package" "$HTTP" "core extra" no-such-package
mkdir -p "$WORK/partial"; cp -a "$FX/repo/." "$WORK/partial/"; rm -f "$WORK/partial/core/os/x86_64/"confpkg-*.pkg.tar.zst
# (with its own cache: from the shared one the build rightly succeeds)
CACHE_OVERRIDE=$WORK/cache-empty fails_with "missing package on the mirror" "cannot download confpkg-1.0-1-x86_64.pkg.tar.zst" "file://$WORK/partial" "core extra" confpkg
fails_with "mirror down" "core.db" "http://127.0.0.1:9" "core extra" filesystem

# A cache entry with the right size and the wrong bytes (the cache syncs once per build, so a
# crash can leave one): reported as the cache's fault, dropped, and fetched again next time.
recipe "$WORK/d.recipe" t1 "$HTTP" "core extra" filesystem confpkg
( cd "$WORK" && CACHE_OVERRIDE=$WORK/cache-dmg mkm -q lock d.recipe ) >"$WORK/d.log" 2>&1
check "damaged cache: seeding the cache with mkmachine lock works" test $? -eq 0
dsha=$(awk '$1 == "package" && $2 == "confpkg" {print $6}' "$WORK/d.recipe.lock")
dfile=$WORK/cache-dmg/sha256/${dsha:0:2}/$dsha
check "damaged cache: the package is in the cache" test -f "$dfile"
chmod u+w "$dfile"; printf 'X' | dd of="$dfile" bs=1 seek=100 conv=notrunc status=none
CACHE_OVERRIDE=$WORK/cache-dmg fails_with "damaged cache entry" "confpkg: the cached package was damaged" "$HTTP" "core extra" filesystem confpkg
check "damaged cache: the message says the next build downloads it again" contains "$WORK/f.log" "the next build downloads it again"
check "damaged cache: the entry was removed" test ! -e "$dfile"
( cd "$WORK" && CACHE_OVERRIDE=$WORK/cache-dmg mkm -q lock d.recipe ) >"$WORK/d.log" 2>&1
check "damaged cache: the next run fetches it again and succeeds" test $? -eq 0
check "damaged cache: ... with the right content" test "$(sha256sum <"$dfile" | cut -d' ' -f1)" = "$dsha"

# A failure while later packages still download: the downloads are cancelled at once (the mirror
# stalls them for 30 s) and leave nothing in the cache's tmp/.
recipe "$WORK/s.recipe" t1 "$HTTP" "core extra hostile" filesystem evil-dotdot confpkg epochpkg
( cd "$WORK" && CACHE_OVERRIDE=$WORK/cache-stall mkm -q lock s.recipe ) >"$WORK/s.log" 2>&1
check "cancel: seeding the cache works" test $? -eq 0
# Keep in the cache only what installs up to evil-dotdot; the rest must come from the mirror.
dot=$(awk '$1 == "package" && $2 == "evil-dotdot" {print $10}' "$WORK/s.recipe.lock")
awk -v o="$dot" '$1 == "package" && $10 > o {print $6}' "$WORK/s.recipe.lock" >"$WORK/s.later"
check "cancel: some packages install after evil-dotdot" test -s "$WORK/s.later"
while read -r sha; do rm -f "$WORK/cache-stall/sha256/${sha:0:2}/$sha"; done <"$WORK/s.later"
sed -i "s|^Mirror=.*|Mirror=$HTTP/fault/stall/\$repo/os/\$arch|" "$WORK/s.recipe"
start=$(date +%s)
( cd "$WORK" && CACHE_OVERRIDE=$WORK/cache-stall mkm s.recipe ) >"$WORK/s.log" 2>&1
rc=$?
check "cancel: the build fails (exit status 1)" test $rc -eq 1
check "cancel: ... on the hostile package" contains "$WORK/s.log" "refusing entry 'usr/../../escape-dotdot'"
check "cancel: ... without waiting for the stalled downloads" test $(( $(date +%s) - start )) -lt 20
check "cancel: tmp/ keeps the partial bodies, named after their digest" \
  bash -c "ls '$WORK/cache-stall/tmp' | grep -qE '^dl-[0-9a-f]{64}\.part\$'"
check "cancel: ... and nothing else (no locks, no unique names)" \
  bash -c "! ls -A '$WORK/cache-stall/tmp' | grep -vqE '^dl-[0-9a-f]{64}\.part\$'"
unchanged "a failure with downloads in flight"
# The next build that wants those files resumes them where the cancelled one stopped.
sed -i "s|^Mirror=.*|Mirror=$HTTP/\$repo/os/\$arch|" "$WORK/s.recipe"
n0=$(wc -l <"$WORK/httpd.log")
( cd "$WORK" && CACHE_OVERRIDE=$WORK/cache-stall mkm -q lock s.recipe ) >"$WORK/s2.log" 2>&1
check "resume: the next run succeeds" test $? -eq 0
check "resume: it asked the mirror for the rest only (Range: bytes=N-)" \
  bash -c "tail -n +$((n0 + 1)) '$WORK/httpd.log' | grep -qE '^GET /(core|extra|hostile)/os/x86_64/[^ ]+ bytes=[1-9][0-9]*-\$'"
check "resume: tmp/ is empty afterwards" test -z "$(find "$WORK/cache-stall/tmp" -mindepth 1 -print -quit)"
# A flaky mirror: every file fails once with 503. The pipeline retries each (with backoff) and
# the run succeeds with every package verified.
sed -i "s|^Mirror=.*|Mirror=$HTTP/fault/503-once/\$repo/os/\$arch|" "$WORK/s.recipe"
n0=$(wc -l <"$WORK/httpd.log")
( cd "$WORK" && CACHE_OVERRIDE=$WORK/cache-flaky mkm -q lock s.recipe ) >"$WORK/s4.log" 2>&1
check "flaky mirror: the run succeeds" test $? -eq 0
check "flaky mirror: each package was asked for twice" \
  test "$(tail -n +$((n0 + 1)) "$WORK/httpd.log" | grep -cE '^GET /fault/503-once/[a-z]+/os/x86_64/[^ ]+\.pkg\.tar\.zst -$')" \
  -eq $((2 * $(awk '$1 == "package"' "$WORK/s.recipe.lock" | wc -l)))
sed -i "s|^Mirror=.*|Mirror=$HTTP/\$repo/os/\$arch|" "$WORK/s.recipe"
# A partial body with wrong bytes (from a bad mirror, earlier): resumed, found wrong at the end,
# downloaded once more from the first byte, and the build goes on.
csha=$(awk '$1 == "package" && $2 == "confpkg" {print $6}' "$WORK/s.recipe.lock")
cfile=$(awk '$1 == "package" && $2 == "confpkg" {print $5}' "$WORK/s.recipe.lock")
rm -f "$WORK/cache-stall/sha256/${csha:0:2}/$csha"
head -c 100 /dev/urandom >"$WORK/cache-stall/tmp/dl-$csha.part"
n0=$(wc -l <"$WORK/httpd.log")
( cd "$WORK" && CACHE_OVERRIDE=$WORK/cache-stall mkm -q lock s.recipe ) >"$WORK/s3.log" 2>&1
check "bad partial: the run succeeds" test $? -eq 0
check "bad partial: it resumed first (bytes=100-)" \
  bash -c "tail -n +$((n0 + 1)) '$WORK/httpd.log' | grep -qE '^GET /[a-z]+/os/x86_64/$cfile bytes=100-\$'"
check "bad partial: ... then fetched the whole file again" \
  bash -c "tail -n +$((n0 + 1)) '$WORK/httpd.log' | grep -qE '^GET /[a-z]+/os/x86_64/$cfile -\$'"
check "bad partial: the cache holds the right file" \
  test "$(sha256sum <"$WORK/cache-stall/sha256/${csha:0:2}/$csha" | cut -d' ' -f1)" = "$csha"

# --locked: a recipe whose [Bootstrap] changed is refused instead of resolved again.
recipe "$WORK/l.recipe" t1 "$HTTP" "core extra" $TARGETS
cp "$WORK/t1.recipe.lock" "$WORK/l.recipe.lock"
sed -i 's/^Packages=.*/Packages=base-test epochpkg/' "$WORK/l.recipe"
( cd "$WORK" && mkm --locked l.recipe ) >"$WORK/l.log" 2>&1
check "--locked with a changed recipe: exit status 1" test $? -eq 1
check "--locked with a changed recipe: message says run mkmachine lock" contains "$WORK/l.log" "does not cover"
check "--locked leaves the lock untouched" cmp -s "$WORK/t1.recipe.lock" "$WORK/l.recipe.lock"
unchanged "--locked refusal"

# A lock naming a repository the recipe does not list is refused (its names end up in URLs).
recipe "$WORK/r.recipe" t1 "$HTTP" "core extra" $TARGETS
sed 's/^\(package [^ ]* [^ ]* \)core /\1..\/..\/hostile /' "$WORK/t1.recipe.lock" >"$WORK/r.recipe.lock"
( cd "$WORK" && mkm r.recipe ) >"$WORK/r.log" 2>&1
check "a lock with a foreign repository: exit status 1" test $? -eq 1
check "a lock with a foreign repository: says which" contains "$WORK/r.log" "comes from repository '../../hostile', which is not in Repositories="
unchanged "a lock with a foreign repository"

# No UID range free for the build's sandbox (here: a user database whose every lookup fails, an
# entry too large to read after the host's users, in a mount namespace whose /etc/passwd is the
# test's): the build fails, saying so, rather than share a range someone may own.
cp /etc/passwd "$WORK/passwd"
{ printf 'mkmhuge:x:4399:4399:'; head -c 1100000 /dev/zero | tr '\0' h; printf ':/:/bin/false\n'; } >>"$WORK/passwd"
( cd "$WORK" && unshare -m sh -c 'mount --make-rprivate / && mount --bind "$1" /etc/passwd && shift && exec "$@"' sh \
    "$WORK/passwd" "$MKMACHINE" --host-root "$HOST" --cache-dir "$CACHE" t1.recipe ) >"$WORK/u.log" 2>&1
check "no free UID range for the sandbox: exit status 1" test $? -eq 1
check "no free UID range for the sandbox: says so" contains "$WORK/u.log" \
  "no free UID range for the build's sandbox: the 256 tried are the machine's own, or a host user's or group's (or the user database cannot be read)"
unchanged "no free UID range for the sandbox"

# --- 5. an interrupted build leaves everything as it was --------------------------------------
interrupt() {  # interrupt WHAT SIGNAL WHO(parent|worker)
  local what=$1 sig=$2 who=$3
  recipe "$WORK/k.recipe" t1 "$HTTP/fault/slow" "core extra" $TARGETS
  rm -f "$WORK/k.recipe.lock"
  ( cd "$WORK" && exec "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache-k-$RANDOM" k.recipe ) >"$WORK/k.log" 2>&1 &
  local pid=$! target
  # Wait until the worker has created its staging tree, then interrupt.
  for _ in $(seq 100); do ls -d "$M"/.#t1.?????? >/dev/null 2>&1 && break; sleep 0.05; done
  sleep 0.5
  local wpid
  wpid=$(pgrep -P "$pid" | head -1)
  target=$pid
  [ "$who" = worker ] && target=$wpid
  kill -s "$sig" "$target"
  wait $pid
  local rc=$?
  check "$what: the build fails" test $rc -ne 0
  check "$what: it says it was interrupted" contains "$WORK/k.log" "interrupted"
  unchanged "$what"
  check "$what: the worker's private GnuPG home is gone" \
    bash -c "! ls -d '${TMPDIR:-/tmp}'/mkm-gnupg.$wpid.* 2>/dev/null | grep -q ."
}
interrupt "SIGTERM to mkmachine" TERM parent
interrupt "SIGKILL to the build worker" KILL worker
interrupt "SIGINT to mkmachine" INT parent

finish
