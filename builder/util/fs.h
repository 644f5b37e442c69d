/* SPDX-License-Identifier: MIT */
/* File system helpers. Everything under an untrusted root goes through fs_open_in_root(). */
#pragma once

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* openat2(rootfd, path, flags|O_CLOEXEC, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS): path is resolved
 * as if rootfd were "/", so "..", absolute names and symlinks can never leave it.
 * extra_resolve adds RESOLVE_* flags (e.g. RESOLVE_NO_SYMLINKS). Returns an fd or -errno;
 * -ENOSYS when the kernel lacks openat2 (we then refuse rather than walk unsafely). */
int fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode, uint64_t extra_resolve);

/* Read a whole file into a NUL-terminated buffer; fails with -EFBIG above max bytes.
 * Caller owns *ret. dirfd may be AT_FDCWD. path is opened with plain openat(): its symlinks are
 * followed wherever they lead, so it is for host paths only; inside a machine's tree use
 * chase_and_open_in_root() (util/chase.h) and fs_read_fd(). */
int fs_read_file_follow_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len);

/* Whose permissions a source is read with: a recipe's sources are the host's files that a root
 * process opens for a recipe someone else may have written, so they are opened with the file
 * system identity of the recipe's owner (fsuid, fsgid and supplementary groups, for the calling
 * thread only): a recipe can take into its machine only what its owner could read. uid 0 (root's
 * own recipe) reads as the process is. */
#define FS_READER_GROUPS_MAX 64
struct fs_reader {
        uid_t uid;
        gid_t gid;
        int n_groups;
        gid_t groups[FS_READER_GROUPS_MAX];
};
/* uid's entry in the user database (getpwuid_r(3) with a buffer that grows to FS_PASSWD_ENTRY_MAX
 * bytes; *ret_buf holds its strings, the caller frees it): 1, or 0 when the database does not
 * know uid, -MKM_E_USERDB when the lookup fails (an entry larger than that, an NSS module's error). */
struct passwd;
int fs_getpwuid(uid_t uid, struct passwd *ret_pw, char **ret_buf);
/* The same for gid's entry in the group database. */
struct group;
int fs_getgrgid(gid_t gid, struct group *ret_gr, char **ret_buf);

/* The identity of uid from the user database: its primary group and the groups it is a member of
 * (the first FS_READER_GROUPS_MAX: fewer groups can only read less). A uid the database does not
 * know reads with the overflow group (65534) and no others. A lookup of its passwd entry that
 * fails (fs_getpwuid()) is -MKM_E_USERDB, never a guess at its primary group. (getgrouplist(3)
 * cannot tell a failed group lookup from no groups: then the user reads with fewer groups, the
 * safe side, and a source only they could read is refused as not readable.) */
#define FS_PASSWD_ENTRY_MAX (1024 * 1024)
int fs_reader_for_uid(uid_t uid, struct fs_reader *ret);

/* Switch the calling thread's file system identity to rd (NULL, or uid 0, or a process that is
 * not root: nothing changes) until fs_reader_leave(s). The capabilities that bypass permission
 * checks (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) leave the effective set with the
 * fsuid and come back with it, as the kernel does for setfsuid(2). Only opens, stats and reads
 * belong between the two: nothing is created as the reader. -MKM_E_IDENTITY when the switch did not
 * take (a root without CAP_SETUID or CAP_SETGID), worded by fs_beside_refusal(): its own code, so
 * that it is never told as another refusal or as a plain EPERM. */
struct fs_reader_saved {
        bool active;
        uid_t fsuid;
        gid_t fsgid;
        int n_groups;
        gid_t groups[FS_READER_GROUPS_MAX];
};
int fs_reader_enter(const struct fs_reader *rd, struct fs_reader_saved *s);
void fs_reader_leave(struct fs_reader_saved *s);

/* Open path, which must lie in the directory dir (both absolute, dir as resolved when the recipe
 * was read), without ever leaving dir. Untrusted input names it (a recipe's Include=, Copy=,
 * RootAuthorizedKeys=), so every lookup is our own walk (chase_in_root(): each symlink read and
 * spliced in by us, so a magic link such as /proc/PID/root never takes it into another mount
 * namespace): dir is walked from "/" and must still resolve to itself (a directory swapped for a
 * link since is refused, -EXDEV), and path's
 * rest is walked inside that directory's fd (chase_in_root(): ".." out of it and a link with an
 * absolute target are -EXDEV), so nothing outside is looked up, opened or told about.
 * Only a regular file, or with allow_dir a directory, is opened (O_RDONLY|O_NONBLOCK, through
 * the walk's O_PATH fd, checked to be the same inode): a device or FIFO never is. *ret_real: dir
 * + the path inside; *ret_st its stat. Returns the fd or a negative errno (-EXDEV: not in dir, as
 * written or where it leads; -EBADFD: another type; -EINVAL: a relative path; -MKM_E_ANYONE_WRITES:
 * in, or itself, a directory anyone can write (fs_anyone_writes()); -EMLINK and -EBUSY as
 * fs_check_own_link() for the file; -EACCES when as may not read it; -ENOLINK when the walk
 * would follow a symbolic link that neither root nor as owns). *ret_dir_st: the stat of the
 * directory holding it (dir's, for dir itself). path may be dir itself (a
 * directory; its own mode is the caller's to judge). Everything inside dir is looked up and
 * opened as the reader as (fs_reader_enter(); NULL: as the process is); dir itself is reached as
 * the process is, so a recipe kept in root's directory for a tenant still finds its sources. */
int fs_open_beside(const char *dir, const char *path, bool allow_dir, const struct fs_reader *as, char **ret_real,
                   struct stat *ret_st, struct stat *ret_dir_st);

/* A regular file opened (stat st) as name in dirfd, a directory that untrusted input chose: refused
 * when it may be a hard link its author made to a file they cannot read (possible wherever
 * fs.protected_hardlinks is or was ever off): -EMLINK when, checked by one stat of the name after
 * the open, the inode has more than one link and another owner than the directory; -EBUSY when
 * the name is gone or is another inode by then (a link made and removed around the open). 0 for
 * anything else (another type, a single link, or the directory owner's own file). */
int fs_check_own_link(int dirfd, const char *name, const struct stat *st);
/* A directory anyone can write (o+w, sticky or not, as /tmp): the files in it may be anyone's,
 * root's included, so none is taken as what untrusted input put beside itself. */
bool fs_anyone_writes(const struct stat *st);
#define FS_ANYONE_WRITES_REFUSED \
        "is in (or is) a directory anyone can write: its files may be anyone's, not the recipe's"

/* One entry of a directory that untrusted input chose (a copied source directory), looked up and
 * opened with the permissions of the reader as (NULL: as the process is): *ret_st its lstat; a
 * regular file or a directory is opened (O_RDONLY, never blocking on a FIFO swapped in, *ret_fd,
 * checked to be the inode judged; a regular file refused as fs_check_own_link() says), a
 * symbolic link's target read into target (NUL-terminated); nothing else is opened (*ret_fd -1).
 * Returns 0 or a negative errno: -EACCES (as may not look it up or read it), -EBUSY (it changed
 * meanwhile), -EMLINK, or another, with *ret_step saying what failed ("cannot stat the source",
 * "cannot open the source", "cannot read the symlink", "cannot take the recipe owner's
 * permissions to read"). */
int fs_open_entry_as(int dirfd, const char *name, const struct fs_reader *as, struct stat *ret_st, int *ret_fd,
                     char *target, size_t size, const char **ret_step);

/* Walk a source directory as a copy takes it (hooks' Copy=): no directory in it one anyone can
 * write (-MKM_E_ANYONE_WRITES), every entry as fs_open_entry_as() takes it, only files, directories and
 * symbolic links (-EBADFD), at most max_depth levels below dirfd (-ELOOP), every listing whole
 * (readdir's error, step "cannot list the source directory"). One walk for the copy and for the
 * judge that `check` and the build run before anything is fetched, so that they cannot differ.
 * v->entry (v NULL: only judge) gets each entry, with parent (top for dirfd's own entries), what
 * was opened (fd of a file or directory, no longer non-blocking; target of a link) and for a
 * directory sets *ret_child, what its entries get as their parent; v->leave(child, q) is called for
 * every child entry set (after the directory's entries, or at once when entry or the walk failed
 * first) with the result so far, and returns it or its own failure, which counts only when q >= 0
 * (the first failure stands). On a
 * failure *ret_where (the caller frees it) is the entry's path relative to dirfd ("." for dirfd
 * itself), *ret_step as fs_open_entry_as() says (or NULL), and *ret_visitor whether v failed (in
 * its own words) rather than the walk refused. */
struct fs_tree_visitor {
        int (*entry)(void *parent, const char *name, const struct stat *st, int fd, const char *target,
                     void **ret_child);
        int (*leave)(void *child, int q);
};
int fs_walk_source_tree(int dirfd, const struct fs_reader *as, unsigned max_depth, const struct fs_tree_visitor *v,
                        void *top, char **ret_where, const char **ret_step, bool *ret_visitor);
/* The words for what fs_walk_source_tree() refused (q and step as it returned them, the visitor
 * not at fault), so that `check` and the copy say the same: about what (the failing entry as the
 * message names it, quoted, or the source itself), or for the walk's depth about source, into
 * *ret_words (allocated: a long path never cuts the reason off; the caller frees it). Returns the
 * code to report: -MKM_E_RECIPE for what the source holds (a device, FIFO or socket; what
 * fs_beside_refusal() words, with its code), -ELOOP for the depth, -EBUSY for an entry that
 * changed while it was read; 0 (no words) when q is no refusal but a failure to read (an I/O
 * error: the caller says it with step and strerror); -ENOMEM. */
int fs_walk_refusal_words(int q, const char *step, const char *what, const char *source, unsigned max_depth,
                          char **ret_words);

/* fs_walk_source_tree() that only judges. */
int fs_judge_source_tree(int dirfd, const struct fs_reader *as, unsigned max_depth, char **ret_where,
                         const char **ret_step);

/* Who speaks for the owners of the file fd is open on (O_PATH will do): a FUSE file system's
 * owners and modes are whatever its daemon reports, so one that a user mounted (allow_other) can
 * show root's ownership for that user's files and links; the kernel records who mounted it
 * (user_id= in /proc/self/mountinfo, found by the fd's mount ID). Returns that uid for a FUSE
 * mount (fstatfs()'s f_type, set by the kernel), 65534 when it cannot be told (the mount is no
 * longer in the table, as after a lazy unmount, or the table cannot be read), 0 for any other file
 * system (the kernel's own owners). */
uid_t fs_fuse_mounter(int fd);
/* fs_fuse_mounter()'s reading of one /proc/self/mountinfo line for a file system whose f_type is
 * FUSE's: -1 when the line is another mount's (its first field is not mnt_id), the user_id= of a
 * fuse or fuseblk mount (of any subtype), 0 for virtiofs (the kernel's FUSE, a share root
 * mounted), 65534 for anything else. Exposed for the tests. */
long fs_mountinfo_fuse_mounter(const char *line, uint64_t mnt_id);

/* The owner of what st describes (fd open on it), as far as it can be told: st's owner, or on a
 * FUSE file system that a user mounted, that user (65534 when the two disagree or the mounter
 * cannot be told). */
uid_t fs_owner_of(int fd, const struct stat *st);

/* A random number for temporary names (getrandom(2)): another user who can write the directory
 * cannot foresee the names and take them all first. */
unsigned long fs_random_ulong(void);

/* What fs_open_beside() or fs_walk_source_tree() refused a source for, as words following its
 * name ("'x' is a hard link ..."): for -EMLINK, -EBUSY, -EACCES, -ENOLINK, -MKM_E_ANYONE_WRITES
 * and -MKM_E_IDENTITY; NULL for any other code (strerror() then: an open's own EPERM, from a FUSE
 * daemon, a fanotify listener or seccomp, is told as "Operation not permitted"). */
const char *fs_beside_refusal(int r);

/* The code a failure to read a recipe's source (or the recipe) is reported with: -MKM_E_RECIPE (the
 * recipe's files must change), except the host's own lacks, kept: -MKM_E_IDENTITY (this process
 * cannot take the owner's permissions) and -MKM_E_USERDB (the owner's user database entry cannot
 * be read), which no change to the recipe mends (exit 1, not an invalid recipe's 2). */
int fs_source_failure_code(int r);

#define FS_READER_REFUSED \
        "is not readable by the recipe's owner: sources are read with the permissions of the owner of the " \
        "recipe's files"
#define FS_IDENTITY_REFUSED \
        "cannot be read as the recipe's owner: mkmachine cannot take their permissions (it needs CAP_SETUID " \
        "and CAP_SETGID; in a user namespace, their uid and groups mapped and setgroups allowed)"
#define FS_FOREIGN_LINK_REFUSED \
        "leads through a symbolic link that neither root nor the recipe's owner owns: it is read with the " \
        "permissions of the owner of the recipe's files"
#define FS_HARD_LINK_REFUSED \
        "is a hard link to a file of another owner than its directory's: it may be a host file that the " \
        "recipe's author cannot read"


/* Read fd to EOF into a NUL-terminated buffer; -EFBIG as soon as it exceeds max bytes. */
int fs_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* write() all of data, retrying on EINTR and short writes. */
int fs_write_all(int fd, const void *data, size_t len);

/* Write data to dirfd/name atomically: a temporary file beside it, fsync, rename, fsync dir.
 * Readers see the old content or the new one, never a part. */
int fs_write_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* Whether process pid has ended: it does not exist, or it is a zombie (dead, not yet reaped: an
 * init that reaps late keeps kill(pid, 0) succeeding for a while, though nothing of the process
 * runs or holds a file any more). */
bool fs_pid_is_gone(pid_t pid);

/* Remove the temporaries fs_write_atomic_at() of process pid left in the directory path (names
 * ".#NAME.PID.XXXXXX", regular files only): for the build's guard after its worker was killed.
 * pid 0: those of every process that no longer exists (what a kill of the whole process group
 * left, for the next build). A missing directory is not an error. Returns how many were
 * removed, or a negative errno. */
int fs_remove_temporaries_of(const char *path, pid_t pid);
/* The same in a recipe's directory dir (absolute, as the recipe was read from), which a co-tenant
 * may own: reached without following a link (fs_open_beside(): one swapped in since is -EXDEV),
 * so that root never removes anything in a directory a link of theirs names. */
int fs_remove_temporaries_beside_recipe(const char *dir, pid_t pid);

/* Remove the directories "PREFIX.PID.*" in path that process pid made (GnuPG homes, import
 * downloads): pid > 0 for the build's guard after its worker was killed; pid 0 for those of every
 * process that no longer exists other than this one, and only those owned by our effective UID
 * whose flock(2) is free. Symlinks and other files are left. A missing directory is not an error.
 * Returns how many were removed, or a negative errno (a listing that fails is one, whatever was
 * removed before it failed). */
int fs_remove_dirs_of(const char *path, const char *prefix, pid_t pid);

/* Whether fd is still the file at path (lstat: same device and inode, and not unlinked). After
 * locking a lock file that others remove when they let go of it (as systemd's
 * release_lock_file() does), a lock on a file no longer at its path locks nothing: open again. */
bool fs_fd_is_path(int fd, const char *path);

/* Whether a directory (st from fstat/fstatat) may be trusted by this process: it belongs to us or
 * to root and nobody else may write into it. Caches and prepared key homes live in such. */
bool fs_dir_is_private(const struct stat *st);

/* A directory stream over a duplicate of dirfd (dirfd stays open and usable), from the first
 * entry. NULL with errno set on failure. Close with closedir(). */
DIR *fs_opendir_dup(int dirfd);

/* The names in dirfd ("." and ".." left out) that keep accepts (NULL: all; it gets dirfd, the
 * name and userdata), sorted by strcmp(), into *ret_names (a NULL-terminated list, empty rather
 * than NULL; caller frees with strv_free()). -E2BIG when more than max are kept (0: no limit). A
 * listing that fails part-way (readdir(3): EIO, a FUSE daemon's error, a directory block that
 * fails its checksum) is that error, never a short list: what is built, digested or exported from
 * a listing must be all of it. (glibc's readdir takes the ENOENT of a directory removed while it
 * is open for the end.) */
typedef bool (*fs_keep_fn)(int dirfd, const char *name, void *userdata);
int fs_list_names(int dirfd, fs_keep_fn keep, void *userdata, size_t max, char ***ret_names);

/* Create or replace dirfd/name without fsync: for trees that are staged and synced once as a
 * whole (syncfs before the deploy swap). What is at name (a file, a symlink, a hard link to
 * another file) is unlinked first and a new inode written, so neither a symlink nor a hard link
 * there is written through; a directory at name is -EISDIR (or -EPERM). */
int fs_write_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* mkdir -p relative to dirfd (AT_FDCWD allowed); existing directories are fine. */
int fs_mkdir_p_at(int dirfd, const char *path, mode_t mode);

/* mkdir -p of path inside the tree at rootfd (mode for created directories), and return an
 * O_PATH|O_DIRECTORY fd of it. Each component is opened with O_NOFOLLOW; a symlinked
 * component is resolved with RESOLVE_IN_ROOT, so the tree's symlinks never lead outside it.
 * Use this, never fs_mkdir_p_at, on an untrusted tree. */
int fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode);

/* Visit every entry below dirfd (not dirfd itself), children before their directory, without
 * following symlinks or descending into another file system. path is "./a/b" relative to
 * dirfd; name is its last component inside the directory dfd. A negative return from fn stops
 * the walk and is returned; deeper than max_depth levels gives -ELOOP. */
typedef int (*fs_walk_fn)(int dfd, const char *name, const char *path, const struct stat *st, void *userdata);
int fs_walk(int dirfd, unsigned max_depth, fs_walk_fn fn, void *userdata);

/* rm -rf of dirfd/name without following symlinks, and without leaving the file system or
 * entering another mount of it (a bind mount, by mount ID): such directories are left alone and
 * -EXDEV returned once the rest is gone. A mount point as name itself is refused (-EXDEV). */
int fs_rm_rf_at(int dirfd, const char *name);

/* Join two path parts with exactly one '/'. Caller owns the result; NULL on ENOMEM. */
char *fs_path_join(const char *a, const char *b);
/* The directory part of path, as dirname(1): "a/b" -> "a", "/a" -> "/", "a" -> ".". NULL on ENOMEM. */
char *fs_path_dirname(const char *path);
