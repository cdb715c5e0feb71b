/* Runs blocking jobs on the libuv threadpool without hogging it, and parks
 * jobs that must wait (retry backoff) on a timer on the loop instead of
 * sleeping on a threadpool thread.
 *
 * The threadpool (4 threads unless UV_THREADPOOL_SIZE says otherwise) is
 * shared with the application's fs, dns.lookup, crypto and zlib, and with
 * every other environment (worker_threads, Jest reloads) of the process, so
 * a job goes there only with a slot of the process-wide budget
 * (threadpool_budget.c); until then it waits in this environment's FIFO.
 * Everything here runs on the environment's main thread except job->execute. */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "runtime/threadpool_budget.h"

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
  const char *name;       /* async resource name, a static string */
  scheduler_t *scheduler; /* set by submit */
  napi_async_work work;   /* exists only while queued on the threadpool */
  uint64_t due_ms;        /* while parked */
  job_t *next;            /* in the waiting FIFO or the parked list */
};

typedef struct scheduler_handles scheduler_handles_t;

struct scheduler {
  napi_env env;
  /* Heap: the backoff timer and the wake-up from other environments. libuv
   * holds them until their close callbacks, which free them (scheduler_close). */
  scheduler_handles_t *handles;
  threadpool_waiter_t waiter; /* our place in the process-wide budget */
  unsigned slots;             /* the process-wide budget: more jobs than this never run
                                 at once, in this environment or in all of them */
  unsigned running;           /* this environment's jobs on the threadpool */
  job_t *waiting_head;        /* FIFO of jobs ready to run */
  job_t *waiting_tail;
  job_t *parked; /* sorted by due_ms; the timer fires for the first */
  bool stopped;
};

/* Also sets up the process-wide budget at the first load. */
bool aav_scheduler_init(scheduler_t *s, napi_env env);
/* Runs the job as soon as a slot is free, in submission order. */
void aav_scheduler_submit(scheduler_t *s, job_t *job);
/* Runs the job after delay_ms on the loop's clock, then as submit does. */
void aav_scheduler_submit_after(scheduler_t *s, job_t *job, uint64_t delay_ms);
/* Environment teardown: leaves the budget, completes waiting and parked jobs
 * as cancelled. Jobs already on the threadpool complete as Node decides, and
 * give their slots back as they do. */
void aav_scheduler_stop(scheduler_t *s);
/* Stops, then closes the timer and the wake-up handle; `closed(data)` runs
 * once libuv is done with both. Until then this library must stay loaded:
 * see addon_state.c. */
void aav_scheduler_close(scheduler_t *s, void (*closed)(void *data), void *data);

#endif
