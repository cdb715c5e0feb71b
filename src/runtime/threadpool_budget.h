/* How many libuv threadpool threads this addon may hold at once, for the
 * whole process: the main thread, every worker_thread and every Jest module
 * reload share one budget, because they share one threadpool (libuv's pool
 * is process-wide, its size read once from UV_THREADPOOL_SIZE).
 *
 * The budget is half the pool, so fs, dns.lookup, crypto and zlib always find
 * a thread. With a pool of one thread nothing can be left free: the addon
 * takes that thread and warns once (threadpool_budget_warn_once).
 *
 * Each environment keeps its own FIFO of jobs (scheduler.c) and owns one
 * threadpool_waiter_t here. A slot freed in any environment goes to the
 * environment that has waited longest, which is woken on its own loop with
 * its uv_async_t; an environment that used a handed-over slot and still has
 * jobs waiting queues again at the back, so no environment starves.
 *
 * No Node-API here: this runs under a mutex and may be called from any
 * environment's main thread. */
#ifndef THREADPOOL_BUDGET_H
#define THREADPOOL_BUDGET_H

#include <stdbool.h>
#include <uv.h>

typedef struct threadpool_waiter threadpool_waiter_t;

/* One per environment. Every field is guarded by the budget's mutex. */
struct threadpool_waiter {
  uv_async_t *wake;          /* owner's loop; only sent under the mutex, so the
                                owner can close it once it has left */
  unsigned granted;          /* slots handed over by a release, not yet used */
  bool joined;               /* counted in environments until leave */
  bool queued;               /* in the FIFO of environments waiting for a slot */
  threadpool_waiter_t *next; /* in that FIFO */
};

typedef struct {
  unsigned pool_size;    /* libuv's threadpool size, as read at the first load */
  unsigned slots;        /* the budget */
  unsigned used;         /* slots held (jobs on the pool, or handed over) */
  unsigned peak;         /* most slots ever held at once */
  unsigned environments; /* environments that joined and have not left */
  unsigned waiting;      /* environments waiting for a slot */
} threadpool_usage_t;

/* Once per process, on the first load: reads UV_THREADPOOL_SIZE as libuv
 * does. Later calls return the first one's result. Call it right after
 * something has started libuv's pool (scheduler.c queues a no-op job), so
 * both read the variable at the same moment. */
bool aav_threadpool_budget_init(void);
unsigned aav_threadpool_budget_slots(void);
/* True exactly once per process when the pool has a single thread, which
 * this addon then takes. */
bool aav_threadpool_budget_warn_once(void);

/* Owner's thread. `wake` must stay open until threadpool_budget_leave. */
void aav_threadpool_budget_join(threadpool_waiter_t *w, uv_async_t *wake);
/* Owner's thread. True: one slot is the caller's until it calls release.
 * False: the caller is queued and its `wake` is sent when a slot is handed
 * to it; it must then call acquire again from its own thread. */
bool aav_threadpool_budget_acquire(threadpool_waiter_t *w);
/* Owner's thread, after queueing ended without using what was handed over
 * (nothing left to run): gives those slots on. */
void aav_threadpool_budget_give_back(threadpool_waiter_t *w);
/* Any environment's thread: a job that held a slot is done with it. The
 * releaser (its environment's waiter, or NULL if that has left) is not woken
 * if the slot goes to it: it must call acquire right after, as scheduler.c's
 * completion does. */
void aav_threadpool_budget_release(const threadpool_waiter_t *releaser);
/* Owner's thread, before closing `wake`: leaves the queue, gives back any
 * slot handed over and not used. Slots of jobs still on the pool come back
 * through release as they complete. */
void aav_threadpool_budget_leave(threadpool_waiter_t *w);

threadpool_usage_t aav_threadpool_budget_usage(void);

#endif
