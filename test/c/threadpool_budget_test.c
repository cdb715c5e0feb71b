/* The threadpool budget (threadpool_budget.c) under real threads, built with
 * -fsanitize=thread by scripts/test-sanitizers.sh. ENVS environments, each
 * on a thread of its own with its own uv loop and wake handle, as Node's main
 * thread and worker_threads are, run JOBS jobs each on libuv's one
 * process-wide pool, taking a slot before queueing a job and releasing it in
 * the job's completion, the way scheduler.c does. Checks: every job ran, no
 * more jobs were ever on the pool than the budget allows, and the budget
 * ends empty. ThreadSanitizer checks the rest: every field shared between
 * environments is touched under the budget's lock, and a wake is never sent
 * to a handle its owner has closed. */
#include "threadpool_budget.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ENVS 6
#define JOBS 400
#define PER_ENV 3 /* jobs an environment wants on the pool at once */

typedef struct {
  uv_loop_t loop;
  uv_async_t wake;
  threadpool_waiter_t waiter;
  uv_work_t reqs[PER_ENV];
  unsigned
      runs[PER_ENV];  /* each written by its job on the pool, read after its completion */
  bool busy[PER_ENV]; /* the rest: this environment's thread only */
  unsigned queued, completed, wakes;
  unsigned long work_done;
} env_t;

static atomic_uint on_pool, most_on_pool;

/* Pool thread. */
static void work(uv_work_t *req) {
  unsigned now = atomic_fetch_add(&on_pool, 1) + 1;
  unsigned seen = atomic_load(&most_on_pool);
  while (now > seen && !atomic_compare_exchange_weak(&most_on_pool, &seen, now)) {
  }
  env_t *e = req->data;
  /* A job waiting on the network; long enough for jobs to overlap. */
  nanosleep(&(struct timespec){.tv_nsec = 200000}, NULL);
  e->runs[req - e->reqs]++;
  atomic_fetch_sub(&on_pool, 1);
}

static void after_work(uv_work_t *req, int status);

/* Environment thread: queue jobs while the budget gives slots. */
static void schedule(env_t *e) {
  while (e->queued < JOBS) {
    int free_req = -1;
    for (int i = 0; i < PER_ENV; i++)
      if (!e->busy[i])
        free_req = i;
    if (free_req < 0)
      return;
    if (!aav_threadpool_budget_acquire(&e->waiter))
      return; /* queued: the wake handle fires when a slot is handed over */
    e->busy[free_req] = true;
    e->reqs[free_req].data = e;
    e->queued++;
    if (uv_queue_work(&e->loop, &e->reqs[free_req], work, after_work) != 0) {
      fprintf(stderr, "FAIL uv_queue_work\n");
      exit(1);
    }
  }
  /* Nothing left to queue: slots handed over meanwhile go on to others. */
  aav_threadpool_budget_give_back(&e->waiter);
}

static void on_wake(uv_async_t *handle) {
  env_t *e = handle->data;
  e->wakes++;
  schedule(e);
}

/* Environment thread, the job's completion. */
static void after_work(uv_work_t *req, int status) {
  env_t *e = req->data;
  if (status != 0) {
    fprintf(stderr, "FAIL job status %d\n", status);
    exit(1);
  }
  e->work_done += e->runs[req - e->reqs];
  e->runs[req - e->reqs] = 0;
  e->busy[req - e->reqs] = false;
  e->completed++;
  aav_threadpool_budget_release(&e->waiter);
  if (e->completed == JOBS) {
    aav_threadpool_budget_leave(&e->waiter);
    uv_close((uv_handle_t *)&e->wake, NULL);
    return;
  }
  schedule(e);
}

static void env_main(void *arg) {
  env_t *e = arg;
  if (uv_loop_init(&e->loop) != 0 || uv_async_init(&e->loop, &e->wake, on_wake) != 0) {
    fprintf(stderr, "FAIL loop init\n");
    exit(1);
  }
  e->wake.data = e;
  aav_threadpool_budget_join(&e->waiter, &e->wake);
  schedule(e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&e->loop) != 0) {
    fprintf(stderr, "FAIL loop close\n");
    exit(1);
  }
}

int main(void) {
  /* Before anything starts the pool, so that libuv and the budget read the same size. */
  setenv("UV_THREADPOOL_SIZE", "4", 1);
  if (!aav_threadpool_budget_init()) {
    fprintf(stderr, "FAIL budget init\n");
    return 1;
  }
  static env_t envs[ENVS];
  uv_thread_t threads[ENVS];
  for (int i = 0; i < ENVS; i++)
    if (uv_thread_create(&threads[i], env_main, &envs[i]) != 0) {
      fprintf(stderr, "FAIL thread create\n");
      return 1;
    }
  for (int i = 0; i < ENVS; i++)
    uv_thread_join(&threads[i]);

  int failed = 0;
  unsigned long jobs = 0, wakes = 0;
  for (int i = 0; i < ENVS; i++) {
    jobs += envs[i].work_done;
    wakes += envs[i].wakes;
    if (envs[i].completed != JOBS) {
      fprintf(stderr, "FAIL environment %d completed %u of %u jobs\n", i,
              envs[i].completed, JOBS);
      failed = 1;
    }
  }
  threadpool_usage_t u = aav_threadpool_budget_usage();
  unsigned most = atomic_load(&most_on_pool);
  if (most > u.slots) {
    fprintf(stderr, "FAIL %u jobs on the pool at once, budget %u\n", most, u.slots);
    failed = 1;
  }
  if (u.slots != 2 || u.used != 0 || u.waiting != 0 || u.environments != 0 ||
      u.peak != u.slots) {
    fprintf(
        stderr,
        "FAIL budget at the end: slots %u used %u waiting %u environments %u peak %u\n",
        u.slots, u.used, u.waiting, u.environments, u.peak);
    failed = 1;
  }
  if (wakes == 0) {
    fprintf(stderr, "FAIL no slot was ever handed over between environments\n");
    failed = 1;
  }
  printf("threadpool budget: %lu jobs in %d environments, at most %u on the pool (budget "
         "%u), %lu hand-overs: %s\n",
         jobs, ENVS, most, u.slots, wakes, failed ? "FAILED" : "ok");
  return failed;
}
