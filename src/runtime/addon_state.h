/* Per-environment state (main thread, each worker thread, each Jest module
 * reload): nothing mutable lives in a C global except what is process-wide by
 * nature, the driver's set-up (driver.c) and the threadpool budget
 * (threadpool_budget.c). */
#ifndef ADDON_STATE_H
#define ADDON_STATE_H

#include <node_api.h>

#include "core/backoff.h"
#include "runtime/scheduler.h"

/* lib/errors.js's classes: one reference each, set by setErrorClasses
 * (napi/errors.c, which indexes them by its aav_error_class_t). */
#define AAV_ADDON_ERROR_CLASSES 10

typedef struct {
  scheduler_t scheduler;
  backoff_rng_t rng;  /* backoff jitter; main thread only */
  unsigned live_jobs; /* jobs allocated and not yet freed */
  bool torn_down;     /* the environment is gone: free when live_jobs is 0 */
  napi_async_cleanup_hook_handle teardown;         /* until the handles have closed */
  napi_ref error_classes[AAV_ADDON_ERROR_CLASSES]; /* owned; deleted by the finalizer */
} addon_state_t;

typedef enum {
  ADDON_STATE_OK,
  ADDON_STATE_NO_MEMORY,  /* ERR_ASSET_NO_MEMORY */
  ADDON_STATE_NO_HANDLES, /* ERR_ASSET_INIT: the libuv handles */
  ADDON_STATE_NO_HOOKS,   /* ERR_ASSET_INIT: the teardown hook or instance data */
} addon_state_status_t;

/* Module init: creates the state and registers teardown. Throws nothing:
 * the caller (napi/binding.c) turns a failure into an error. */
addon_state_status_t aav_addon_state_create(napi_env env);
addon_state_t *aav_addon_state_get(napi_env env);

/* Every job counts itself in and out so the state outlives its last job. */
void aav_addon_state_job_started(addon_state_t *state);
void aav_addon_state_job_finished(addon_state_t *state);

#endif
