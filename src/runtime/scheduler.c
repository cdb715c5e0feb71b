#include "runtime/scheduler.h"

#include <stddef.h>
#include <stdlib.h>

/* The two handles live apart from the state: libuv holds them until their
 * close callbacks, which may run after the state is freed. */
struct scheduler_handles {
  uv_timer_t timer; /* backoff: the first parked job's due time */
  uv_async_t wake;  /* another environment handed us a slot */
  int open;         /* handles not yet closed */
  void (*closed)(void *data);
  void *data;
};

static void pump(scheduler_t *s);
static void on_timer(uv_timer_t *timer);

/* Threadpool thread. */
static void on_execute(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  job->execute(job);
}

/* Main thread. The slot is released before the job's own completion so that
 * a job which resubmits itself queues behind the ones already waiting, here
 * and in other environments. */
static void on_complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  scheduler_t *s = job->scheduler;
  s->running--;
  aav_threadpool_budget_release(s->stopped ? NULL : &s->waiter);
  napi_delete_async_work(env, job->work);
  job->work = NULL;
  /* Once stopped, the job's completion may free the state that holds us. */
  bool stopped = s->stopped;
  job->complete(env, job, status != napi_ok);
  if (!stopped)
    pump(s);
}

/* Main thread, holding a slot for the job. */
static void start(scheduler_t *s, job_t *job) {
  napi_value name;
  napi_status status =
      napi_create_string_utf8(s->env, job->name, NAPI_AUTO_LENGTH, &name);
  if (status == napi_ok)
    status = napi_create_async_work(s->env, NULL, name, on_execute, on_complete, job,
                                    &job->work);
  if (status == napi_ok) {
    status = napi_queue_async_work(s->env, job->work);
    if (status != napi_ok)
      napi_delete_async_work(s->env, job->work);
  }
  if (status != napi_ok) {
    job->work = NULL;
    aav_threadpool_budget_release(&s->waiter); /* pump, our caller, acquires next */
    job->complete(s->env, job, true);
    return;
  }
  s->running++;
}

/* While jobs wait for a slot that another environment will hand over, the
 * wake-up handle is what keeps this loop alive (nothing of ours may be on the
 * threadpool then); otherwise it must not keep the process running. */
static void keep_alive(scheduler_t *s) {
  if (!s->handles)
    return;
  if (s->waiting_head && !s->stopped)
    uv_ref((uv_handle_t *)&s->handles->wake);
  else
    uv_unref((uv_handle_t *)&s->handles->wake);
}

static void pump(scheduler_t *s) {
  while (!s->stopped && s->waiting_head && aav_threadpool_budget_acquire(&s->waiter)) {
    job_t *job = s->waiting_head;
    s->waiting_head = job->next;
    if (!s->waiting_head)
      s->waiting_tail = NULL;
    job->next = NULL;
    start(s, job);
  }
  /* A slot handed over and not used (the last waiting job could not be
   * started, say) goes on; kept here, it would be lost to every environment. */
  if (!s->waiting_head && !s->stopped)
    aav_threadpool_budget_give_back(&s->waiter);
  keep_alive(s);
}

void aav_scheduler_submit(scheduler_t *s, job_t *job) {
  job->scheduler = s;
  job->next = NULL;
  if (s->stopped) {
    job->complete(s->env, job, true);
    return;
  }
  if (s->waiting_tail)
    s->waiting_tail->next = job;
  else
    s->waiting_head = job;
  s->waiting_tail = job;
  pump(s);
}

/* Main thread, from libuv rather than from JavaScript: napi values need a
 * handle scope of our own here. Another environment handed us a slot. */
static void on_wake(uv_async_t *wake) {
  scheduler_t *s = wake->data;
  napi_handle_scope scope;
  if (!s || napi_open_handle_scope(s->env, &scope) != napi_ok)
    return;
  pump(s);
  napi_close_handle_scope(s->env, scope);
}

static void arm_timer(scheduler_t *s) {
  uv_timer_t *timer = &s->handles->timer;
  if (!s->parked) {
    uv_timer_stop(timer); /* an idle timer must not keep the process alive */
    return;
  }
  uint64_t now = uv_now(timer->loop);
  uint64_t due = s->parked->due_ms;
  uv_timer_start(timer, on_timer, due > now ? due - now : 0, 0);
}

/* Main thread, from libuv: as on_wake. */
static void on_timer(uv_timer_t *timer) {
  scheduler_t *s = timer->data;
  napi_handle_scope scope;
  if (!s || napi_open_handle_scope(s->env, &scope) != napi_ok)
    return;
  uint64_t now = uv_now(timer->loop);
  while (s->parked && s->parked->due_ms <= now) {
    job_t *job = s->parked;
    s->parked = job->next;
    aav_scheduler_submit(s, job);
  }
  if (s->handles)
    arm_timer(s);
  napi_close_handle_scope(s->env, scope);
}

void aav_scheduler_submit_after(scheduler_t *s, job_t *job, uint64_t delay_ms) {
  job->scheduler = s;
  if (s->stopped || !s->handles) {
    job->complete(s->env, job, true);
    return;
  }
  job->due_ms = uv_now(s->handles->timer.loop) + delay_ms;
  job_t **at = &s->parked;
  while (*at && (*at)->due_ms <= job->due_ms)
    at = &(*at)->next;
  job->next = *at;
  *at = job;
  arm_timer(s);
}

/* Main thread, from libuv: the last close callback frees the pair. */
static void on_handle_closed(uv_handle_t *handle) {
  scheduler_handles_t *h =
      handle->type == UV_TIMER
          ? (scheduler_handles_t *)((char *)handle - offsetof(scheduler_handles_t, timer))
          : (scheduler_handles_t *)((char *)handle - offsetof(scheduler_handles_t, wake));
  if (--h->open > 0)
    return;
  void (*closed)(void *) = h->closed;
  void *data = h->data;
  free(h);
  if (closed)
    closed(data);
}

/* Threadpool thread: nothing. It exists to be the process's first
 * threadpool work (see start_libuv_pool). */
static void noop_execute(napi_env env, void *data) {
  (void)env;
  (void)data;
}

/* Main thread. `data` is the heap cell that holds the work itself. */
static void noop_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  napi_async_work *work = data;
  napi_delete_async_work(env, *work);
  free(work);
}

/* libuv starts its pool, and reads UV_THREADPOOL_SIZE, on the process's first
 * threadpool work, not before (Node queues none while it boots). Queueing one
 * now makes libuv read the variable at the same moment as the budget does,
 * whatever JavaScript sets it to later; later environments queue one too,
 * which costs nothing. If the pool had started already, libuv read it then:
 * an application that sets the variable must do it before its first
 * asynchronous fs, dns.lookup, crypto or zlib call, as libuv requires anyway. */
static void start_libuv_pool(napi_env env) {
  napi_value name;
  napi_async_work *work = malloc(sizeof *work);
  if (!work)
    return;
  if (napi_create_string_utf8(env, "atomicAssetVersion.startPool", NAPI_AUTO_LENGTH,
                              &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, noop_execute, noop_complete, work, work) !=
          napi_ok) {
    free(work);
    return;
  }
  if (napi_queue_async_work(env, *work) != napi_ok) {
    napi_delete_async_work(env, *work);
    free(work);
  }
}

bool aav_scheduler_init(scheduler_t *s, napi_env env) {
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok)
    return false;
  start_libuv_pool(env);
  if (!aav_threadpool_budget_init())
    return false;
  s->env = env;
  s->slots = aav_threadpool_budget_slots();
  s->running = 0;
  s->waiting_head = s->waiting_tail = s->parked = NULL;
  s->stopped = false;
  scheduler_handles_t *h = calloc(1, sizeof *h);
  if (!h)
    return false;
  uv_timer_init(loop, &h->timer); /* cannot fail */
  h->open = 1;
  if (uv_async_init(loop, &h->wake, on_wake) != 0) {
    uv_close((uv_handle_t *)&h->timer, on_handle_closed);
    return false;
  }
  h->open = 2;
  uv_unref((uv_handle_t *)&h->wake);
  h->timer.data = h->wake.data = s;
  s->handles = h;
  aav_threadpool_budget_join(&s->waiter, &h->wake);
  return true;
}

void aav_scheduler_stop(scheduler_t *s) {
  if (s->stopped)
    return;
  s->stopped = true;
  /* First: from here no other environment hands us a slot or sends to our
   * wake-up handle, and what was handed over goes on to the next. */
  aav_threadpool_budget_leave(&s->waiter);
  while (s->waiting_head) {
    job_t *job = s->waiting_head;
    s->waiting_head = job->next;
    job->complete(s->env, job, true);
  }
  s->waiting_tail = NULL;
  while (s->parked) {
    job_t *job = s->parked;
    s->parked = job->next;
    job->complete(s->env, job, true);
  }
  if (s->handles)
    uv_timer_stop(&s->handles->timer);
  keep_alive(s);
}

void aav_scheduler_close(scheduler_t *s, void (*closed)(void *data), void *data) {
  aav_scheduler_stop(s);
  scheduler_handles_t *h = s->handles;
  if (!h) {
    if (closed)
      closed(data);
    return;
  }
  s->handles = NULL;
  h->closed = closed;
  h->data = data;
  /* libuv calls neither back once closing; should it, they find no state. */
  h->timer.data = h->wake.data = NULL;
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, on_handle_closed);
  uv_close((uv_handle_t *)&h->wake, on_handle_closed);
}
