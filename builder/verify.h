/* SPDX-License-Identifier: MIT */
/* OpenPGP signature verification through gpgme, against a private keyring.
 *
 * Where the keys live. verify_keyring_new() creates a private temporary GNUPGHOME (mkdtemp, 0700;
 * never the user's ~/.gnupg and never $GNUPGHOME) and imports the keyring into it (or copies a
 * home prepared earlier from verify_keyring_new_cached()'s cache into it). The home is
 * passed to gpgme with gpgme_ctx_set_engine_info(), not through the environment. Its gpg.conf
 * says no-autostart (no gpg-agent or dirmngr during verification), no-auto-key-retrieve (no
 * network) and trust-model pgp. verify_keyring_free() removes the home again.
 *
 * The trust model. The keyring is a single .gpg (binary) or .asc (armored) file, or a directory:
 * every `*.gpg` and `*.asc` in it is imported, and pacman-style trust files are read:
 *   NAME-trusted  lines `FINGERPRINT:LEVEL:` (gpg's ownertrust format; Arch ships level 4)
 *   NAME-revoked  one fingerprint a line
 * - With a -trusted file (Arch): as `pacman-key --populate` does, the listed keys get their
 *   ownertrust and are locally signed by a throwaway key that exists only in the temporary home
 *   (and is ultimately trusted). gpg then computes every other key's validity through the web of
 *   trust: a packager key is valid when the master keys certified it (with Arch's level 4 =
 *   marginal, three master certifications are needed; one gives only marginal validity, which
 *   is not enough). A signature is accepted only when its key's validity is full or ultimate.
 * - Without a -trusted file (Debian's archive keyring, a recipe's Keyring=, test keyrings): every
 *   primary key in the keyring is a trust anchor (ultimate ownertrust), so a signature by any
 *   key in it, or by one of its subkeys, is accepted.
 * - Keys in a -revoked file are never accepted (their signatures fail with -MKM_E_SIG_REVOKED),
 *   even when they are certified or also listed in -trusted; they are never made trust anchors.
 *   A key whose revocation certificate is in the keyring fails the same way.
 *
 * Decisions, per signature; the first listed code wins when several apply:
 *   good signature by a valid (full/ultimate) key   accepted, result filled in
 *   data or signature altered                        -MKM_E_SIG_BAD      "bad signature ..."
 *   revoked key (certificate or -revoked list)       -MKM_E_SIG_REVOKED  "... revoked ..."
 *   expired key or expired signature                 -MKM_E_SIG_EXPIRED  "... expired ..."
 *   key not in the keyring                           -MKM_E_SIG_UNTRUSTED "signed by unknown key X"
 *   key in the keyring but not valid                 -MKM_E_SIG_UNTRUSTED "... is not trusted ..."
 *   empty signature / no clearsigned block           -MKM_E_SIG_MISSING
 *   garbage instead of an OpenPGP signature          -MKM_E_SIG_BAD      "... not an OpenPGP signature ..."
 * Several signatures (e.g. Debian's InRelease): accepted when at least one is good and trusted and
 * none is bad (an additional signature by an unknown, expired or revoked key is ignored); the
 * result describes the first good one. Otherwise the most severe failure above is returned.
 *
 * Speed. gpg costs a process per signature. Once gpg has accepted a detached signature made by a
 * key (all the rules above applied), further detached signatures by that same key are checked
 * in-process (pgp.h) when they are the common kind: one binary v4 signature over binary data,
 * SHA-2, RSA >= 2048 bits or Ed25519, no expiration time, no unknown critical subpacket; and
 * only while nothing gpg's verdict on that key depends on has lapsed since gpg judged it: the
 * key's (and its primary key's) expiry, a signature expiration on its binding signature, its
 * back-signature, a direct-key signature or a user ID certification of its primary key
 * (pgp_keyblock_sig_expiry), the trustdb's next check (when gpg recomputes validity), and at
 * most 300 s after gpg's verdict. Anything else, and any signature that does not check out that
 * way, goes to gpg, which also words every error; the decisions above are the same either way.
 *
 * Weak keys. A keyring that would trust a weak key (pgp_key_weakness: RSA under 2048 bits or
 * with e < 65537, DSA or ElGamal under 2048 bits; a primary key or a subkey that may sign, of a
 * key with full or ultimate validity after the trust setup that is neither revoked, expired nor
 * listed in -revoked) fails to load with -EKEYREJECTED, naming the key, the file it came from and
 * why, before any signature is checked. Weak keys it does not trust are left alone (gpg refuses
 * their signatures as untrusted): Arch's keyring holds old DSA-1024 packager keys that are not
 * valid.
 *
 * Signatures are checked on the raw bytes, before any parser sees them. The functions here take
 * raw bytes or fds; parsing is the caller's business, and only after 0 was returned.
 * A verify_keyring is not thread-safe: use one per thread. gpgme_check_version() must have been
 * called before (main() does; tests must too). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/fs.h"

struct mkm_ctx;
struct mkm_err;
struct verify_keyring;

#define VERIFY_FPR_MAX 65                               /* 40 hex digits (v4), 64 (v5) + NUL */
#define VERIFY_MAX_DATA ((size_t)64 * 1024 * 1024)      /* in-memory data and clearsigned input */
#define VERIFY_MAX_SIG ((size_t)1024 * 1024)            /* a detached signature */
#define VERIFY_MAX_KEYRING ((size_t)64 * 1024 * 1024)   /* one keyring file; a directory's files together */

struct verify_result {
        char fingerprint[VERIFY_FPR_MAX];       /* primary key fingerprint of the signer, upper-case hex */
        char uid[256];                          /* the key's first user id, truncated */
        char signing_key[VERIFY_FPR_MAX];       /* the key or subkey that made it, upper-case hex */
        int64_t key_expires;                    /* when that key or its primary key expires; 0: never */
        int64_t created;                        /* signature creation time (seconds since the epoch) */
};

/* Build a private GNUPGHOME from path: a directory (see above) or a single .gpg/.asc file.
 * Fails with -MKM_E_PARSE for a file holding no key or a malformed -trusted/-revoked line,
 * -EKEYREJECTED when the keyring would trust a weak key (see "Weak keys" above),
 * -ENOENT when a directory holds no *.gpg or *.asc file, or the errno of the failed step. The keyring
 * borrows ctx (for debug events), which must outlive it. Caller owns *ret. */
int verify_keyring_new(struct mkm_ctx *ctx, const char *path, struct verify_keyring **ret,
                       struct mkm_err *reterr);

/* The same, with the prepared home cached under cache_dir (NULL: no cache, as verify_keyring_new).
 * Preparing a pacman-style home takes seconds for Arch's keyring (import, ownertrust, lsigns by a
 * throwaway key under a short-lived gpg-agent); a cached one is copied into the fresh private home
 * in milliseconds. The entry is cache_dir/gnupg/<sha256>, keyed by a format version, gpg's version,
 * gpg.conf and every input file's kind, name and bytes (not its path): any changed byte in the
 * keyring gives another entry. It holds pubring.kbx, trustdb.gpg and a "digest" file with the key,
 * the key counts and each file's sha256; never a secret key (the throwaway key's secret part is
 * deleted after the trust setup, with or without a cache). An entry that is incomplete, altered or
 * fails to load is rebuilt and replaced; entries are written under gnupg/.tmp.XXXXXX and renamed,
 * so concurrent builds never see a partial one. Failing to store an entry is not an error (a debug
 * event says why). A load from the cache emits the debug event
 * "keyring PATH: N keys, M revoked, from the cache (ENTRY), home HOME". Errors as verify_keyring_new. */
int verify_keyring_new_cached(struct mkm_ctx *ctx, const char *path, const char *cache_dir,
                              struct verify_keyring **ret, struct mkm_err *reterr);

/* The same from fd, an open file or directory (opened by the caller where it judged the path:
 * a recipe's Keyring=, recipe_open_source()); label names it in messages. A directory's entries
 * are opened inside fd, and one that is a symbolic link is refused (-ELOOP): it could lead to a
 * file the recipe's author cannot read; they are looked up and opened with the permissions of as
 * (the recipe's owner, fs_reader_enter(); NULL: the process's), and one it may not read is
 * -EACCES. (verify_keyring_new_cached() follows them: its path is the host's.) A single file is
 * read from fd's current offset. */
int verify_keyring_new_cached_fd(struct mkm_ctx *ctx, int fd, const char *label, const struct fs_reader *as,
                                 const char *cache_dir, struct verify_keyring **ret, struct mkm_err *reterr);

/* Stop any gpg-agent started for the home, remove the home, free k. Accepts NULL; returns NULL. */
struct verify_keyring *verify_keyring_free(struct verify_keyring *k);
static inline void verify_keyring_freep(struct verify_keyring **k) { (void)verify_keyring_free(*k); }

/* A second handle on the same prepared GNUPGHOME, for verifying from another thread (a keyring
 * is not thread-safe, and preparing a home from the real Arch keyring takes seconds). The clone
 * emits no events and must be freed before the original. */
int verify_keyring_clone(const struct verify_keyring *k, struct verify_keyring **ret);

/* Remove the private homes a process pid created and could not remove itself (it was killed):
 * they are named after their creator's pid. For the build's guard process. */
void verify_remove_homes_of(pid_t pid);

/* Remove the private homes of processes that no longer exist (killed together with their
 * guard), once they have been left alone for ten minutes. Every new keyring does this first. */
void verify_remove_stale_homes(void);

/* Number of primary keys imported (for diagnostics and tests). */
unsigned verify_keyring_count(const struct verify_keyring *k);

/* How many detached signatures were accepted by the native fast path and how many by gpg, over
 * k and all its clones (see "Speed" above). */
void verify_keyring_stats(const struct verify_keyring *k, unsigned *ret_native, unsigned *ret_gpg);

/* Check a detached signature (binary or armored, up to VERIFY_MAX_SIG bytes) over data (up to
 * VERIFY_MAX_DATA bytes). Returns 0 and fills *ret (may be NULL) when accepted. */
int verify_detached(struct verify_keyring *k, const void *data, size_t len, const void *sig, size_t siglen,
                    struct verify_result *ret, struct mkm_err *reterr);

/* The same for data read from fd (from its current offset to EOF; any size, e.g. a package file).
 * The fd is borrowed and left open; its offset afterwards is unspecified (the fast path reads
 * with pread and leaves it, gpg reads to the end). */
int verify_detached_fd(struct verify_keyring *k, int fd, const void *sig, size_t siglen,
                       struct verify_result *ret, struct mkm_err *reterr);

/* Check a clearsigned message (Debian's InRelease), up to VERIFY_MAX_DATA bytes. On success
 * *ret_text is a NUL-terminated malloc'd copy of the verified plaintext as gpg output it (dash
 * escaping removed) and *ret_len its length; caller frees. Text before the
 * "-----BEGIN PGP SIGNED MESSAGE-----" line or after the signature is ignored by gpg and never
 * returned, so a caller that parses only *ret_text cannot be fooled by unsigned additions.
 * Input with more than one signed message is refused (-MKM_E_SIG_BAD), none is -MKM_E_SIG_MISSING. */
int verify_clearsigned(struct verify_keyring *k, const void *data, size_t len, char **ret_text, size_t *ret_len,
                       struct verify_result *ret, struct mkm_err *reterr);
