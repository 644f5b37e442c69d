#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The command line as users expect it (issue 9), with the Arch fixture: global options after the
# command, relative --host-root/--cache-dir/--keys-dir (with a Run= hook, which needs the sandbox
# to get an absolute root), --json on build, check, lock, vercmp and on errors (parsed, not
# grepped), every recipe error reported at once with its line, one message prefix, -q's result
# line, the build's summary line, check's listing of the host files (equal to what the build
# writes), a failing mirror reported while it is retried, and Ctrl-C (SIGINT) exiting 130.
source "$(dirname "$0")/../tools/it-lib.sh"
[ -x /bin/busybox ] || skip "skipped: /bin/busybox missing (busybox-static)"
command -v python3 >/dev/null || skip "skipped: python3 missing (make deps)"

arch_fixture
start_httpd "$FX/repo"
HTTP="http://127.0.0.1:$HTTPD_PORT"
cd "$WORK" || exit 1

# A recipe beside its key, and the fixture's keyring as the distro keyring of a relative keys dir.
mkdir -p rel/recipes rel/keys
cp -a "$FX/keyring" rel/keys/archlinux
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5Zm9ybWttYWNoaW5lY2xpdGVzdHNvbmx5 cli@test" >rel/recipes/admin.pub
recipe() {  # recipe FILE MIRROR [EXTRA LINES...]
  local f=$1 mirror=$2; shift 2
  {
    printf '[Machine]\nName=clitest\n\n[Bootstrap]\nDistribution=arch\nMirror=%s\nRepositories=core\nPackages=base-test\n\n' "$mirror"
    printf '[Hooks]\nRun=echo ran >/etc/ran-by-run\nRootAuthorizedKeys=admin.pub\nFuse=yes\n\n[Files]\nBind=/srv/clitest:/data\n'
    printf '%s\n' "$@"
  } >"$f"
}
recipe rel/recipes/cli.recipe "$HTTP/\$repo/os/\$arch"
json_get() {  # json_get FILE PYTHON-EXPR(j): prints the value; fails if the file is not one JSON document
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1" "$2"
}
M=$WORK/host/var/lib/machines

# --- options after the command, relative paths everywhere -------------------------------------
"$MKMACHINE" build rel/recipes/cli.recipe --host-root host --cache-dir cache --keys-dir rel/keys \
  --systemd-version 250 >b1.out 2>b1.log
rc=$?
check "build with options after the command and relative paths exits 0 (rc $rc)" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    | /' b1.log | tail -20
check "the machine is under the relative --host-root" test -d "$M/clitest"
check "Run= ran in the sandbox (it needs an absolute root)" grep -qx ran "$M/clitest/etc/ran-by-run"
check "RootAuthorizedKeys= was read relative to the recipe" grep -q "cli@test" "$M/clitest/root/.ssh/authorized_keys"
check "the relative --cache-dir holds the downloads" bash -c "find cache -type f | grep -q ."
check "nothing was made relative to another directory" test ! -e "$WORK/rel/recipes/host" -a ! -e "$M/clitest/host"
check "the lock is written beside the recipe" test -s rel/recipes/cli.recipe.lock

# --- progress: phase lines, one message prefix, the summary -------------------------------------
check "phase lines are shown" contains b1.log ":: synchronizing package databases"
check "a warning carries the prefix 'mkmachine: warning: '" contains b1.log "mkmachine: warning: RootAuthorizedKeys= is set but the package set has no OpenSSH server"
check "no message without the prefix (warning:/error: at the start of a line)" bash -c "! grep -E '^(warning|error): ' b1.log"
npkg=$(awk '$1=="package"' rel/recipes/cli.recipe.lock | wc -l)
check "the summary line gives packages, bytes downloaded and time ($npkg packages)" \
  grep -qE "^done in [0-9]+\.[0-9] s: $npkg packages, [0-9.]+ (B|KiB|MiB) downloaded \([1-9][0-9]* files\)$" b1.log
check "stdout stays empty without --json or -q" test ! -s b1.out

# --- check: every host file the build writes, plain and JSON, equal to what it wrote -------------
"$MKMACHINE" check rel/recipes/cli.recipe --host-root host --systemd-version 250 >c1.out 2>c1.err
check "check exits 0" test $? -eq 0
check "check lists the .nspawn under the host root" contains c1.out "# $WORK/host/etc/systemd/nspawn/clitest.nspawn"
check "... with the recipe's Bind= and the Fuse hook's" bash -c "grep -qx '#   Bind=/srv/clitest:/data' c1.out && grep -qx '#   Bind=/dev/fuse' c1.out"
check "check lists the drop-in" contains c1.out "# $WORK/host/etc/systemd/system/systemd-nspawn@clitest.service.d/mkmachine.conf"
check "check lists the modules-load.d entry" bash -c "grep -q '^# $WORK/host/etc/modules-load.d/mkmachine-clitest.conf\$' c1.out && grep -qx '#   fuse' c1.out"
"$MKMACHINE" --json check rel/recipes/cli.recipe --host-root host --systemd-version 250 >c1.json 2>/dev/null
check "check --json parses" test "$(json_get c1.json 'j["machine"]["name"]')" = clitest
for f in nspawn dropin modules_load; do
  p=$(json_get c1.json "j['host_files']['$f']['path']")
  python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["host_files"][sys.argv[2]]["content"])' \
    c1.json "$f" >"want.$f"
  check "check --json's $f is what the build wrote to $p" cmp "want.$f" "$p"
done
check "check --json gives the recipe's path absolute" test "$(json_get c1.json 'j["path"]')" = "$WORK/rel/recipes/cli.recipe"

# --- -q: the one-line result; --json on build and lock --------------------------------------------
"$MKMACHINE" rel/recipes/cli.recipe -q --host-root host --cache-dir cache --keys-dir rel/keys --systemd-version 250 \
  >q.out 2>q.err
check "-q after the recipe (implicit build) exits 0" test $? -eq 0
check "-q prints one line: NAME DIGEST" grep -qxE 'clitest sha256:[0-9a-f]{64}' q.out
check "-q prints it alone" test "$(wc -l <q.out)" -eq 1
check "-q is quiet on stderr (no phase lines)" bash -c "! grep -q '^::' q.err"
"$MKMACHINE" build --host-root=host rel/recipes/cli.recipe --json --cache-dir cache --keys-dir rel/keys \
  --systemd-version 250 >b2.json 2>b2.log
check "build --json exits 0" test $? -eq 0
check "build --json: one document, the digest equals -q's" test "$(json_get b2.json 'j["name"]+" "+j["digest"]')" = "$(cat q.out)"
check "build --json: paths are absolute" test "$(json_get b2.json 'j["path"]')" = "$M/clitest" \
  -a "$(json_get b2.json 'j["lock"]')" = "$WORK/rel/recipes/cli.recipe.lock"
"$MKMACHINE" lock rel/recipes/cli.recipe --json --cache-dir cache --keys-dir rel/keys >l.json 2>l.log
check "lock --json exits 0 and parses" test "$(json_get l.json 'j["packages"]')" = "$npkg"
check "lock --json: the lock's path is absolute" test "$(json_get l.json 'j["lock"]')" = "$WORK/rel/recipes/cli.recipe.lock"

# --- vercmp: --json, options after, '-' and '--' ------------------------------------------------
"$MKMACHINE" vercmp 1.0-1 1.0-2 --json >v.json
check "vercmp --json after the versions" test "$(json_get v.json 'j["result"]')" = -1
check "vercmp 2 1 --debian (the flag after the versions)" test "$("$MKMACHINE" vercmp 2 1 --debian)" = 1
check "vercmp -1 -2 takes versions starting with '-' literally (as pacman's: -1)" test "$("$MKMACHINE" vercmp -1 -2)" = -1
check "vercmp -- 1: '--' is a version to vercmp, as to pacman's" test "$("$MKMACHINE" vercmp -- 1)" = -1
"$MKMACHINE" check -- rel/recipes/cli.recipe >/dev/null 2>&1
check "'--' before a recipe ends the options" test $? -eq 0
printf '1 2\n2 1\n' | "$MKMACHINE" vercmp - --json >vs.json
check "vercmp - --json: one document a line" python3 -c 'import json,sys; r=[json.loads(l)["result"] for l in open(sys.argv[1])]; sys.exit(r != [-1, 1])' vs.json

# --- errors under --json: one document on stdout, exit codes, absolute paths ---------------------
err_json() {  # err_json WHAT EXIT TEXT ARGS...: exit EXIT, stdout {"error": {...}} with TEXT in message
  local what=$1 want=$2 text=$3; shift 3
  "$MKMACHINE" "$@" >e.json 2>e.err
  local rc=$?
  check "$what: exit $want (got $rc)" test $rc -eq "$want"
  check "$what: the JSON error says exit $want" test "$(json_get e.json 'j["error"]["exit"]')" = "$want"
  check "$what: the JSON message" bash -c "python3 -c 'import json,sys; m=json.load(open(\"e.json\"))[\"error\"][\"message\"]; sys.exit(sys.argv[1] not in m)' \"\$1\"" _ "$text"
  check "$what: stderr has the prefixed message" grep -q '^mkmachine: error: ' e.err
}
err_json "a missing recipe" 2 "cannot read recipe '$WORK/no-such.recipe'" check no-such.recipe --json
err_json "a bad --jobs" 2 "--jobs: expected a number from 1 to 64, got '0'" --json build x.recipe -j 0
err_json "an unknown option before the command" 2 "unrecognized option '--frobnicate'" --json --frobnicate check x.recipe
recipe rel/recipes/nopkg.recipe "$HTTP/\$repo/os/\$arch" "[Bootstrap]" "Packages=no-such-package"
err_json "a build that fails" 1 "no-such-package" build rel/recipes/nopkg.recipe --json --host-root host \
  --cache-dir cache --keys-dir rel/keys

# --- every error of a recipe at once ------------------------------------------------------------
cat >rel/recipes/bad.recipe <<'R'
[Machine]
Name=-bad

[Bootstrap]
Distribution=arch
Pakages=base
Snapshot=yesterday
Packages=base-test

[Hooks]
Fuse=maybe
broken line
R
"$MKMACHINE" check rel/recipes/bad.recipe >bad.out 2>bad.err
check "a recipe with five errors: exit 2" test $? -eq 2
for l in 2 6 7 11 12; do
  check "... the error on line $l is reported" grep -q "^mkmachine: error: rel/recipes/bad.recipe:$l: " bad.err
done
check "... and only those" test "$(grep -c '^mkmachine: error: ' bad.err)" -eq 5
"$MKMACHINE" check rel/recipes/bad.recipe --json >bad.json 2>/dev/null
check "check --json lists the errors with their lines" \
  test "$(json_get bad.json '[e["line"] for e in j["error"]["errors"]]')" = "[2, 6, 7, 11, 12]"
check "... and absolute file names" \
  test "$(json_get bad.json '{e["file"] for e in j["error"]["errors"]}')" = "{'$WORK/rel/recipes/bad.recipe'}"

# --- a failing mirror is reported while it is retried, and the failover ------------------------
recipe rel/recipes/retry.recipe "$HTTP/fault/503-once/\$repo/os/\$arch"
"$MKMACHINE" build rel/recipes/retry.recipe --host-root host2 --cache-dir cache-r --keys-dir rel/keys >r.out 2>r.log
check "a mirror failing once: the build succeeds" test $? -eq 0
check "... and said so while retrying" contains r.log "mkmachine: warning: mirror '$HTTP' failed (The requested URL returned error: 503); retrying in 1.0 s"
check "... before the next phase began (not after)" \
  test "$(grep -n "retrying in" r.log | head -1 | cut -d: -f1)" -lt "$(grep -n '^:: resolving dependencies' r.log | cut -d: -f1)"
P1=$HTTPD_PORT
start_httpd "$FX/repo"
recipe rel/recipes/failover.recipe "http://127.0.0.1:$P1/fault/404/\$repo/os/\$arch http://127.0.0.1:$HTTPD_PORT/\$repo/os/\$arch"
"$MKMACHINE" build rel/recipes/failover.recipe --host-root host3 --cache-dir cache-f --keys-dir rel/keys >f.out 2>f.log
check "a mirror without the files: the build succeeds on the next" test $? -eq 0
check "... saying it tries the next mirror" contains f.log "mkmachine: warning: mirror 'http://127.0.0.1:$P1' failed (The requested URL returned error: 404); trying the next mirror, 'http://127.0.0.1:$HTTPD_PORT'"
# Once per download round (databases, packages), not once per file.
check "... once for that mirror, not once per file" test "$(grep -c "trying the next mirror" f.log)" -le 2

# --- Ctrl-C: exit 130, the host as it was ---------------------------------------------------------
recipe rel/recipes/slow.recipe "$HTTP/fault/slow/\$repo/os/\$arch"
before=$(snapshot "$M")
"$MKMACHINE" build rel/recipes/slow.recipe --host-root host --cache-dir cache-slow-$RANDOM --keys-dir rel/keys \
  --systemd-version 250 >s.out 2>s.log &
pid=$!
for _ in $(seq 200); do ls -d "$M"/.#clitest.?????? >/dev/null 2>&1 && break; sleep 0.05; done
sleep 0.3
kill -INT $pid
wait $pid
rc=$?
check "SIGINT during a build exits 130 (got $rc)" test $rc -eq 130
check "... saying it was interrupted, with the prefix" contains s.log "mkmachine: error: build of rel/recipes/slow.recipe interrupted (Interrupt)"
check "... and the machine is as it was" test "$(snapshot "$M")" = "$before"
"$MKMACHINE" build rel/recipes/slow.recipe --json --host-root host --cache-dir cache-slow2-$RANDOM --keys-dir rel/keys \
  --systemd-version 250 >s2.json 2>s2.log &
pid=$!
for _ in $(seq 200); do ls -d "$M"/.#clitest.?????? >/dev/null 2>&1 && break; sleep 0.05; done
sleep 0.3
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM during a build exits 143 (got $rc)" test $rc -eq 143
check "... with a JSON error under --json" test "$(json_get s2.json 'j["error"]["exit"]')" = 143

finish
