/* SPDX-License-Identifier: MIT */
/* "Text file busy": a fork in one thread while another holds a freshly written file open for
 * writing.
 *
 * fork() copies every fd, O_CLOEXEC ones included: until the child execs, it holds the file open
 * for writing too, and execve() of that file by anyone fails with ETXTBSY. The build writes the
 * tree's executables in one thread (extract) and runs the package's install script with them
 * right after (bash's own post_install runs /bin/sh), while gpgme forks gpg in a verify thread:
 * under load the script's execve lost that race. So file writes into a tree and forks exclude
 * each other: a write holds this lock shared from open to close, a fork holds it exclusively
 * from before to after the fork (pthread_atfork covers fork() in libraries such as gpgme; a raw
 * clone() runs no atfork handlers and takes it with forklock_fork_begin/end). Writers are many
 * and short, forks rare: a waiting fork goes first, so a stream of writes cannot starve it. */
#pragma once

/* Around open-for-write .. close of a file that may be executed later. */
void forklock_write_begin(void);
void forklock_write_end(void);

/* Around a fork or clone that does not run pthread_atfork handlers (raw clone syscalls). */
void forklock_fork_begin(void);
void forklock_fork_end(void);
