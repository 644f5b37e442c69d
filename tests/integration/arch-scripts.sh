#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Distribution=arch with .INSTALL scriptlets and libalpm hooks, against the real pacman (which
# runs them too): the trees are equal path by path, the scriptlet's markers and the hook's
# NeedsTargets list are pacman's, a failing scriptlet is a warning as in pacman, a hook whose
# Depends= is missing stops the build (stricter than pacman, on purpose), pacman -Qkk is clean,
# and nothing the sandbox used is left in the tree or on the host.
source "$(dirname "$0")/../tools/it-lib.sh"
[ -x /bin/busybox ] || skip "skipped: /bin/busybox missing (busybox-static)"

arch_fixture pacman
export SOURCE_DATE_EPOCH=1700000000

# craftpkg DIR NAME VERSION INSTALLFILE|- [EXTRA_TREE]: a makepkg-like package (metadata first,
# .MTREE, root-owned, fixed mtimes) with a payload file, an optional .INSTALL and optional files.
craftpkg() {
  local dir=$1 name=$2 ver=$3 inst=$4 extra=${5:-} s
  s=$(mktemp -d "$WORK/craft.XXXXXX")
  mkdir -p "$s/usr/share/$name"
  echo "$name $ver" >"$s/usr/share/$name/payload"
  [ -n "$extra" ] && cp -a "$extra/." "$s/"
  [ "$inst" != - ] && { cp "$inst" "$s/.INSTALL"; chmod 644 "$s/.INSTALL"; }
  (
    cd "$s"
    printf 'pkgname = %s\npkgbase = %s\npkgver = %s\npkgdesc = %s\nurl = https://mkmachine.invalid/\n' \
      "$name" "$name" "$ver" "$name test package"
    printf 'builddate = %s\npackager = t <t@mkmachine.invalid>\nsize = %s\narch = x86_64\nlicense = MIT\ndepend = sh\n' \
      "$SOURCE_DATE_EPOCH" "$(find . -type f ! -name '.*' -printf '%s\n' | awk '{s+=$1} END {print s+0}')"
  ) >"$s/.PKGINFO.new"
  mv "$s/.PKGINFO.new" "$s/.PKGINFO"
  (
    cd "$s"
    find . -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    local files meta=(.PKGINFO)
    mapfile -t files < <(find usr etc 2>/dev/null | LC_ALL=C sort)
    [ -e .INSTALL ] && meta+=(.INSTALL)
    LC_ALL=C bsdtar -cnf - --format=mtree --options='!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link' \
      "${meta[@]}" "${files[@]}" | gzip -c -f -n >.MTREE
    touch -d "@$SOURCE_DATE_EPOCH" .MTREE
    bsdtar --uid 0 --gid 0 --uname root --gname root -cnf - .MTREE "${meta[@]}" "${files[@]}" |
      zstd -q -c >"$dir/$name-$ver-x86_64.pkg.tar.zst"
  )
  GNUPGHOME=$FX/gnupg gpg --batch --yes --quiet --detach-sign --no-armor -o "$dir/$name-$ver-x86_64.pkg.tar.zst.sig" \
    "$dir/$name-$ver-x86_64.pkg.tar.zst"
  rm -rf "$s"
}

# A repository of packages made for this test only, signed with the fixture's key.
R=$FX/repo/scrtest/os/x86_64
mkdir -p "$R"
cat >"$WORK/failing.install" <<'EOF'
# pre_install is only named in this comment: pacman's grep ignores comments, so it is not run
post_install() {
	echo "failing-output line 1"
	echo "failing-output line 2" >&2
	echo "ran $1" > /var/lib/failing.marker
	return 7
}
EOF
craftpkg "$R" failing 1.0-1 "$WORK/failing.install"
mkdir -p "$WORK/hookdep-tree/usr/share/libalpm/hooks"
cat >"$WORK/hookdep-tree/usr/share/libalpm/hooks/60-needs.hook" <<'EOF'
[Trigger]
Operation = Install
Type = Package
Target = hookdep

[Action]
When = PostTransaction
Depends = no-such-package
Exec = /usr/bin/touch /var/lib/hookdep.ran
EOF
craftpkg "$R" hookdep 1.0-1 - "$WORK/hookdep-tree"
GNUPGHOME=$FX/gnupg repo-add -q --sign --key "$(cat "$FX/FINGERPRINT")" "$R/scrtest.db.tar.gz" "$R"/*.pkg.tar.zst \
  >"$WORK/repo-add.log" 2>&1 || { cat "$WORK/repo-add.log"; exit 1; }

HOST=$WORK/host
M=$HOST/var/lib/machines
recipe() {  # recipe FILE NAME PACKAGES...
  local f=$1 name=$2; shift 2
  cat >"$f" <<R
[Machine]
Name=$name

[Bootstrap]
Distribution=arch
Mirror=file://$FX/repo/\$repo/os/\$arch
Repositories=core extra scrtest
Packages=$*
Keyring=$FX/keyring
R
}
mkm() { ( cd "$WORK" && "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" "$@" ); }
pac() { pacman --root "$1" --dbpath "$1/var/lib/pacman" "${@:2}"; }
oracle() {  # oracle DIR PACKAGES...
  local d=$1; shift
  rm -rf "$d"; mkdir -p "$d"
  PACMAN_ORACLE_REPOS="core extra scrtest" bash "$TOP/tests/tools/pacman-oracle.sh" "$d" "file://$FX/repo" \
    "$FX/pacman-gpg" "$@"
}

# --- 1. scriptlets and hooks, compared with pacman running them ------------------------------
TARGETS="base-test app scripted hooktarget confpkg failing"
recipe "$WORK/s1.recipe" s1 $TARGETS
mountinfo_before=$(grep -c . /proc/self/mountinfo)
mkm -v s1.recipe >"$WORK/b1.log" 2>&1
check "build with scriptlets and hooks exits 0" test $? -eq 0 -a -d "$M/s1"
oracle "$WORK/oracle" $TARGETS >"$WORK/oracle.log" 2>&1
check "the real pacman installs the same targets with scriptlets" test $? -eq 0

check "pre_install ran before the files, with the version (same as pacman)" \
  cmp -s "$WORK/oracle/var/lib/scripted.pre" "$M/s1/var/lib/scripted.pre"
check "... and its content is 'pre_install 1.0-1'" grep -qx 'pre_install 1.0-1' "$M/s1/var/lib/scripted.pre"
check "post_install wrote the same marker as pacman's" cmp -s "$WORK/oracle/var/lib/scripted.marker" "$M/s1/var/lib/scripted.marker"
check "... 'installed 1.0-1'" grep -qx 'installed 1.0-1' "$M/s1/var/lib/scripted.marker"
check "the hook's NeedsTargets list equals pacman's" cmp -s "$WORK/oracle/var/lib/test-hook.targets" "$M/s1/var/lib/test-hook.targets"
printf 'usr/share/test-hook/\nusr/share/test-hook/one\nusr/share/test-hook/sub/\nusr/share/test-hook/sub/two\n' >"$WORK/targets.want"
check "... sorted, relative, directories included (dir/* matches dir/)" cmp -s "$WORK/targets.want" "$M/s1/var/lib/test-hook.targets"

# A failing scriptlet: pacman says "command failed to execute correctly" and goes on (exit 0).
check "pacman: the failing scriptlet is reported and the install goes on" contains "$WORK/oracle.log" "error: command failed to execute correctly"
check "mkmachine: the same, as a warning naming the package" contains "$WORK/b1.log" "warning: failing: post_install scriptlet: command failed to execute correctly, ignoring: '/bin/sh -c . /tmp/alpm_"
check "... with the exit status" contains "$WORK/b1.log" "post_install 1.0-1' exited with status 7:"
check "... and the script's output (stdout and stderr)" bash -c "grep -qx 'failing-output line 1' '$WORK/b1.log' && grep -qx 'failing-output line 2' '$WORK/b1.log'"
check "the failing scriptlet's side effect is there, as in pacman" cmp -s "$WORK/oracle/var/lib/failing.marker" "$M/s1/var/lib/failing.marker"
check "a function named only in a comment is not run (pacman's grep): no 'not found'" bash -c "! grep -q 'pre_install: not found' '$WORK/b1.log' '$WORK/oracle.log'"

# The trees, path by path. Documented exclusions (as arch-build.sh): pacman's log, sync dbs,
# cache and the hook dir pacman-oracle creates; our mirrorlist; /proc (mounted by the oracle);
# install dates in desc files.
EXC=(--exclude '^var/log/pacman.log$' --exclude '^var/lib/pacman/sync' --exclude '^etc/pacman.d/hooks$'
     --exclude '^etc/pacman.d/mirrorlist$' --exclude '^proc$' --exclude '^var/cache/pacman')
python3 "$TOP/tests/tools/treelist.py" "${EXC[@]}" "$WORK/oracle" | grep -v '/desc f ' >"$WORK/o.txt"
python3 "$TOP/tests/tools/treelist.py" "${EXC[@]}" "$M/s1" | grep -v '/desc f ' >"$WORK/m.txt"
if diff -u "$WORK/o.txt" "$WORK/m.txt" >"$WORK/tree.diff"; then ok "tree equals pacman's path by path, scriptlet and hook output included"
else bad "tree equals pacman's"; head -40 "$WORK/tree.diff"; fi
pac "$M/s1" -Qkk >"$WORK/qkk.log" 2>&1
check "pacman -Qkk on the tree is clean" bash -c "! grep -v ' 0 altered files' '$WORK/qkk.log' | grep -q ."
check "the tree's /tmp is empty (the scriptlet lived in the sandbox's tmpfs)" bash -c "[ -z \"\$(ls -A '$M/s1/tmp')\" ]"
check "nothing of the sandbox is still mounted on the host" test "$(grep -c . /proc/self/mountinfo)" -eq "$mountinfo_before"
check "no mount on the host names the machines dir" bash -c "! grep -qF '$HOST' /proc/self/mountinfo"
check "the scriptlet ran in the sandbox (debug log shows the /tmp/alpm_ path)" contains "$WORK/b1.log" "executing \". /tmp/alpm_"

# Reproducible: a second build gives the identical tree, time stamps included.
snapshot "$M/s1" >"$WORK/s1.snap"
( cd "$WORK" && umask 077 && "$MKMACHINE" -q --host-root "$WORK/host2" --cache-dir "$WORK/cache2" s1.recipe ) >"$WORK/b2.log" 2>&1
check "a second build (other host root, cache, umask) succeeds" test $? -eq 0
snapshot "$WORK/host2/var/lib/machines/s1" >"$WORK/s1b.snap"
if cmp -s "$WORK/s1.snap" "$WORK/s1b.snap"; then ok "both builds with scriptlets and hooks are identical"
else bad "both builds are identical"; diff "$WORK/s1.snap" "$WORK/s1b.snap" | head; fi

# --- 2. a hook whose Depends= is not installed --------------------------------------------------
recipe "$WORK/s2.recipe" s2 base-test hookdep
mkm s2.recipe >"$WORK/b2f.log" 2>&1
check "a hook with an unsatisfied Depends= fails the build (exit 1)" test $? -eq 1
check "... saying why" contains "$WORK/b2f.log" "unable to run hook 60-needs.hook: could not satisfy dependencies ('no-such-package' is not installed)"
check "... and deploys nothing" test ! -e "$M/s2"
oracle "$WORK/oracle2" base-test hookdep >"$WORK/oracle2.log" 2>&1
check "pacman detects the same (it prints the error and goes on)" contains "$WORK/oracle2.log" "error: unable to run hook 60-needs.hook: could not satisfy dependencies"
check "pacman did not run that hook either" test ! -e "$WORK/oracle2/var/lib/hookdep.ran"

finish
