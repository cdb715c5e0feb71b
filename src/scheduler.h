/* Runs blocking jobs on the libuv threadpool without hogging it, and parks
 * jobs that must wait (retry backoff) on a timer on the loop instead of
 * sleeping on a threadpool thread.
 *
 * The threadpool (4 threads unless UV_THREADPOOL_SIZE says otherwise) is
 * shared with the application's fs, dns.lookup, crypto and zlib, so at most
 * `slots` of our jobs are queued there at once; the rest wait in our FIFO.
 * Everything here runs on the environment's main thread except job->execute. */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct job job_t;
typedef struct scheduler scheduler_t;

/* Threadpool thread: may touch only the job's own C data, never napi_*. */
typedef void (*job_execute_fn)(job_t *job);
/* Main thread: settles the job's promise and frees the job, or resubmits it.
 * `cancelled` is true when it never ran (shutdown) or Node cancelled it. */
typedef void (*job_complete_fn)(napi_env env, job_t *job, bool cancelled);

struct job {
  job_execute_fn execute;
  job_complete_fn complete;
  /* Optional. Main thread, right before the job goes to the threadpool: the
   * last moment to look at main-thread state it depends on. */
  void (*before_run)(job_t *job);
  const char *name;       /* async resource name, a static string */
  scheduler_t *scheduler; /* set by submit */
  napi_async_work work;   /* exists only while queued on the threadpool */
  uint64_t due_ms;        /* while parked */
  job_t *next;            /* in the waiting FIFO or the parked list */
};

struct scheduler {
  napi_env env;
  uv_timer_t *timer;   /* heap: libuv holds it until its close callback,
                          which frees it (scheduler_close_timer) */
  unsigned slots;      /* threadpool threads we may occupy at once */
  unsigned running;
  unsigned peak;       /* most jobs ever on the threadpool at once */
  job_t *waiting_head; /* FIFO of jobs ready to run */
  job_t *waiting_tail;
  job_t *parked;       /* sorted by due_ms; the timer fires for the first */
  bool stopped;
};

bool scheduler_init(scheduler_t *s, napi_env env, unsigned slots);
/* Runs the job as soon as a slot is free, in submission order. */
void scheduler_submit(scheduler_t *s, job_t *job);
/* Runs the job after delay_ms on the loop's clock, then as submit does. */
void scheduler_submit_after(scheduler_t *s, job_t *job, uint64_t delay_ms);
/* Environment teardown: completes waiting and parked jobs as cancelled. Jobs
 * already on the threadpool complete as Node decides. */
void scheduler_stop(scheduler_t *s);
/* Closes the timer; `closed(data)` runs once libuv is done with it. Until
 * then this library must stay loaded: see addon_state.c. */
void scheduler_close_timer(scheduler_t *s, void (*closed)(void *data), void *data);

/* Threadpool size for this process, as libuv reads it. */
unsigned scheduler_threadpool_size(void);

#endif
