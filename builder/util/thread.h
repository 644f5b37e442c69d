/* SPDX-License-Identifier: MIT */
/* Helper threads (downloads, signature checks, hashing, writeback) that never take a signal. */
#pragma once

#include <pthread.h>

/* pthread_create() with every signal blocked in the new thread: INT/TERM/HUP must reach the
 * thread that decides about them (the build blocks them around the deploy), never a helper whose
 * default action would end the process in the middle of it. Returns 0 or a positive error
 * number, as pthread_create() does. */
int thread_create_nosig(pthread_t *ret, void *(*fn)(void *), void *arg);
