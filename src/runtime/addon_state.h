/* Per-environment state (main thread, each worker thread, each Jest module
 * reload): nothing mutable lives in a C global except what is process-wide by
 * nature, the driver's set-up (driver.c) and the threadpool budget
 * (threadpool_budget.c). */
#ifndef ADDON_STATE_H
#define ADDON_STATE_H

#include <node_api.h>

#include "jitter.h"
#include "scheduler.h"

typedef struct {
  scheduler_t scheduler;
  jitter_t jitter;        /* backoff jitter; main thread only */
  unsigned live_jobs;     /* jobs allocated and not yet freed */
  bool torn_down;         /* the environment is gone: free when live_jobs is 0 */
  napi_async_cleanup_hook_handle teardown; /* until the handles have closed */
} addon_state_t;

/* Module init: creates the state and registers teardown. */
bool aav_addon_state_create(napi_env env);
addon_state_t *aav_addon_state_get(napi_env env);

/* Every job counts itself in and out so the state outlives its last job. */
void aav_addon_state_job_started(addon_state_t *state);
void aav_addon_state_job_finished(addon_state_t *state);

/* Uniform in [0, 1): aav_jitter_random(&state->jitter), kept under this name for
 * insert_batch.c's backoff. */
double aav_addon_state_random(addon_state_t *state);

#endif
