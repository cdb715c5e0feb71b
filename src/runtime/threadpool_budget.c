#include "runtime/threadpool_budget.h"

#include <stdlib.h>

/* libuv's own ceiling for UV_THREADPOOL_SIZE (threadpool.c, since 1.30). */
#define POOL_SIZE_MAX 1024u

static uv_once_t once = UV_ONCE_INIT;
static bool ready;
static unsigned pool_size, slots; /* written once under `once`, read-only after */

/* Everything below is guarded by `lock`. */
static uv_mutex_t lock;
static unsigned used, peak, environments;
static threadpool_waiter_t *queue_head, *queue_tail;
static bool warned;

/* The size libuv gives its pool, parsed exactly as libuv's init_threads()
 * does: atoi into an unsigned, 0 means 1, and anything above the ceiling
 * (a negative number wraps there too) is the ceiling. */
static unsigned read_pool_size(void) {
  const char *value = getenv("UV_THREADPOOL_SIZE");
  unsigned n = value ? (unsigned)atoi(value) : 4;
  if (n == 0)
    n = 1;
  return n > POOL_SIZE_MAX ? POOL_SIZE_MAX : n;
}

/* Read once: libuv never reads the variable again after starting its pool,
 * and JavaScript may change it later (process.env writes call setenv), which
 * a per-environment read would wrongly follow. */
static void init_once(void) {
  if (uv_mutex_init(&lock) != 0)
    return;
  pool_size = read_pool_size();
  /* Half the pool, and so at least one thread left to the application; with
   * a single thread that is impossible, and refusing to work would be worse
   * than taking it: threadpool_budget_warn_once says so. */
  slots = pool_size / 2 > 0 ? pool_size / 2 : 1;
  ready = true;
}

bool aav_threadpool_budget_init(void) {
  uv_once(&once, init_once);
  return ready;
}

unsigned aav_threadpool_budget_slots(void) { return slots; }

bool aav_threadpool_budget_warn_once(void) {
  bool warn = false;
  uv_mutex_lock(&lock);
  if (pool_size < 2 && !warned)
    warn = warned = true;
  uv_mutex_unlock(&lock);
  return warn;
}

void aav_threadpool_budget_join(threadpool_waiter_t *w, uv_async_t *wake) {
  uv_mutex_lock(&lock);
  w->wake = wake;
  w->granted = 0;
  w->queued = false;
  w->next = NULL;
  w->joined = true;
  environments++;
  uv_mutex_unlock(&lock);
}

/* Under the lock. The slot goes to the environment that has waited longest;
 * it is woken on its own loop, since only its thread may start its jobs,
 * unless it is the releaser, which looks at its queue next anyway. The send
 * happens under the lock so that the waiter cannot leave and close its
 * handle in between. */
static void release_locked(const threadpool_waiter_t *releaser) {
  threadpool_waiter_t *w = queue_head;
  if (!w) {
    used--;
    return;
  }
  queue_head = w->next;
  if (!queue_head)
    queue_tail = NULL;
  w->next = NULL;
  w->queued = false;
  w->granted++;
  if (w != releaser)
    uv_async_send(w->wake);
}

bool aav_threadpool_budget_acquire(threadpool_waiter_t *w) {
  bool ok = false;
  uv_mutex_lock(&lock);
  if (w->granted > 0) {
    w->granted--;
    ok = true;
  } else if (w->joined && !queue_head && used < slots) {
    /* A free slot is taken only when nobody queues for it: a newcomer must
     * not overtake an environment that waits. */
    used++;
    if (used > peak)
      peak = used;
    ok = true;
  } else if (w->joined && !w->queued) {
    w->queued = true;
    w->next = NULL;
    if (queue_tail)
      queue_tail->next = w;
    else
      queue_head = w;
    queue_tail = w;
  }
  uv_mutex_unlock(&lock);
  return ok;
}

void aav_threadpool_budget_give_back(threadpool_waiter_t *w) {
  uv_mutex_lock(&lock);
  while (w->granted > 0) {
    w->granted--;
    release_locked(NULL);
  }
  uv_mutex_unlock(&lock);
}

void aav_threadpool_budget_release(const threadpool_waiter_t *releaser) {
  uv_mutex_lock(&lock);
  release_locked(releaser);
  uv_mutex_unlock(&lock);
}

void aav_threadpool_budget_leave(threadpool_waiter_t *w) {
  uv_mutex_lock(&lock);
  if (w->queued) {
    threadpool_waiter_t **at = &queue_head, *prev = NULL;
    while (*at && *at != w) {
      prev = *at;
      at = &(*at)->next;
    }
    if (*at) {
      *at = w->next;
      if (queue_tail == w)
        queue_tail = prev;
    }
    w->queued = false;
    w->next = NULL;
  }
  while (w->granted > 0) {
    w->granted--;
    release_locked(NULL);
  }
  if (w->joined)
    environments--;
  w->joined = false;
  w->wake = NULL;
  uv_mutex_unlock(&lock);
}

threadpool_usage_t aav_threadpool_budget_usage(void) {
  threadpool_usage_t u = {0};
  uv_mutex_lock(&lock);
  u.pool_size = pool_size;
  u.slots = slots;
  u.used = used;
  u.peak = peak;
  u.environments = environments;
  for (threadpool_waiter_t *w = queue_head; w; w = w->next)
    u.waiting++;
  uv_mutex_unlock(&lock);
  return u;
}
