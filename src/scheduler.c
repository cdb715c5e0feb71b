#include "scheduler.h"

#include <stdlib.h>

static void pump(scheduler_t *s);
static void on_timer(uv_timer_t *timer);

/* Threadpool thread. */
static void on_execute(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  job->execute(job);
}

/* Main thread. The slot is released before the job's own completion so that
 * a job which resubmits itself queues behind the ones already waiting. */
static void on_complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  scheduler_t *s = job->scheduler;
  s->running--;
  napi_delete_async_work(env, job->work);
  job->work = NULL;
  /* Once stopped, the job's completion may free the state that holds us. */
  bool stopped = s->stopped;
  job->complete(env, job, status != napi_ok);
  if (!stopped)
    pump(s);
}

static void start(scheduler_t *s, job_t *job) {
  napi_value name;
  if (job->before_run)
    job->before_run(job);
  napi_status status = napi_create_string_utf8(s->env, job->name, NAPI_AUTO_LENGTH, &name);
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
    job->complete(s->env, job, true);
    return;
  }
  s->running++;
  if (s->running > s->peak)
    s->peak = s->running;
}

static void pump(scheduler_t *s) {
  while (!s->stopped && s->running < s->slots && s->waiting_head) {
    job_t *job = s->waiting_head;
    s->waiting_head = job->next;
    if (!s->waiting_head)
      s->waiting_tail = NULL;
    job->next = NULL;
    start(s, job);
  }
}

void scheduler_submit(scheduler_t *s, job_t *job) {
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

static void arm_timer(scheduler_t *s) {
  if (!s->parked) {
    uv_timer_stop(s->timer); /* an idle timer must not keep the process alive */
    return;
  }
  uint64_t now = uv_now(s->timer->loop);
  uint64_t due = s->parked->due_ms;
  uv_timer_start(s->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Main thread, from libuv rather than from JavaScript: napi values need a
 * handle scope of our own here. */
static void on_timer(uv_timer_t *timer) {
  scheduler_t *s = timer->data;
  napi_handle_scope scope;
  if (!s || napi_open_handle_scope(s->env, &scope) != napi_ok)
    return;
  uint64_t now = uv_now(timer->loop);
  while (s->parked && s->parked->due_ms <= now) {
    job_t *job = s->parked;
    s->parked = job->next;
    scheduler_submit(s, job);
  }
  arm_timer(s);
  napi_close_handle_scope(s->env, scope);
}

void scheduler_submit_after(scheduler_t *s, job_t *job, uint64_t delay_ms) {
  job->scheduler = s;
  if (s->stopped) {
    job->complete(s->env, job, true);
    return;
  }
  job->due_ms = uv_now(s->timer->loop) + delay_ms;
  job_t **at = &s->parked;
  while (*at && (*at)->due_ms <= job->due_ms)
    at = &(*at)->next;
  job->next = *at;
  *at = job;
  arm_timer(s);
}

typedef struct {
  uv_timer_t timer; /* first: libuv hands back this pointer */
  void (*closed)(void *data);
  void *data;
} closing_timer_t;

static void on_timer_closed(uv_handle_t *handle) {
  closing_timer_t *t = (closing_timer_t *)handle;
  void (*closed)(void *) = t->closed;
  void *data = t->data;
  free(t);
  if (closed)
    closed(data);
}

bool scheduler_init(scheduler_t *s, napi_env env, unsigned slots) {
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok)
    return false;
  s->env = env;
  s->slots = slots > 0 ? slots : 1;
  s->running = s->peak = 0;
  s->waiting_head = s->waiting_tail = s->parked = NULL;
  s->stopped = false;
  s->timer = calloc(1, sizeof(closing_timer_t));
  if (!s->timer || uv_timer_init(loop, s->timer) != 0) {
    free(s->timer);
    s->timer = NULL;
    return false;
  }
  s->timer->data = s;
  return true;
}

void scheduler_stop(scheduler_t *s) {
  if (s->stopped)
    return;
  s->stopped = true;
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
  if (s->timer)
    uv_timer_stop(s->timer);
}

void scheduler_close_timer(scheduler_t *s, void (*closed)(void *data), void *data) {
  if (!s->timer) {
    if (closed)
      closed(data);
    return;
  }
  closing_timer_t *t = (closing_timer_t *)s->timer;
  s->timer = NULL;
  t->timer.data = NULL;
  t->closed = closed;
  t->data = data;
  uv_timer_stop(&t->timer);
  uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}

unsigned scheduler_threadpool_size(void) {
  const char *env = getenv("UV_THREADPOOL_SIZE");
  long n = env ? strtol(env, NULL, 10) : 0;
  if (n <= 0)
    return 4;
  return n > 1024 ? 1024 : (unsigned)n;
}
