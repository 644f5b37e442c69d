/* SPDX-License-Identifier: MIT */
#include "forklock.h"

#include <pthread.h>

/* The one process-wide lock of util: forks are process-wide. */
static pthread_rwlock_t lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void atfork_child(void) {
        /* The child's only thread is a copy of the one that forked: start afresh. */
        lock = (pthread_rwlock_t)PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
}

static void register_atfork(void) {
        (void)pthread_atfork(forklock_fork_begin, forklock_fork_end, atfork_child);
}

void forklock_write_begin(void) {
        /* Registered before the first write: a fork that could copy a write fd runs the handlers. */
        (void)pthread_once(&once, register_atfork);
        (void)pthread_rwlock_rdlock(&lock);
}

void forklock_write_end(void) {
        (void)pthread_rwlock_unlock(&lock);
}

void forklock_fork_begin(void) {
        (void)pthread_rwlock_wrlock(&lock);
}

void forklock_fork_end(void) {
        (void)pthread_rwlock_unlock(&lock);
}
