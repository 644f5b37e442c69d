/* SPDX-License-Identifier: MIT */
#include "thread.h"

#include <signal.h>

int thread_create_nosig(pthread_t *ret, void *(*fn)(void *), void *arg) {
        sigset_t all, old;
        sigfillset(&all);
        /* The new thread inherits the creator's mask: block everything just around the create. */
        int r = pthread_sigmask(SIG_BLOCK, &all, &old);
        if (r != 0)
                return r;
        r = pthread_create(ret, NULL, fn, arg);
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
}
