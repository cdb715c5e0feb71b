#include "addon_state.h"

#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

#include "napi_check.h"

static uv_once_t driver_once = UV_ONCE_INIT;

/* libmongoc logs to stderr by default, including a harmless endSessions
 * warning when a pool is destroyed against FerretDB. Applications get errors
 * through promises, so only critical driver messages are printed, unless
 * ATOMIC_ASSET_VERSION_DEBUG is set. */
static void driver_log(mongoc_log_level_t level, const char *domain,
                       const char *message, void *data) {
  (void)data;
  if (level <= MONGOC_LOG_LEVEL_CRITICAL || getenv("ATOMIC_ASSET_VERSION_DEBUG"))
    mongoc_log_default_handler(level, domain, message, NULL);
}

/* Once per process, never undone: mongoc_cleanup() would pull the driver out
 * from under other environments still using it. */
static void driver_init(void) {
  mongoc_init();
  mongoc_log_set_handler(driver_log, NULL);
}

static void free_state(addon_state_t *state) {
  free(state);
}

static void on_timer_closed(void *data) {
  addon_state_t *state = data;
  napi_remove_async_cleanup_hook(state->teardown);
  state->teardown = NULL;
}

/* Environment teardown (a worker ending, the process exiting). The cleanup
 * hook is the asynchronous kind because the timer's close callback is code in
 * this library: Node unloads an addon with its last environment, and must
 * not before libuv has called it. */
static void on_teardown(napi_async_cleanup_hook_handle handle, void *data) {
  (void)handle;
  addon_state_t *state = data;
  scheduler_stop(&state->scheduler);
  scheduler_close_timer(&state->scheduler, on_timer_closed, state);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  addon_state_t *state = data;
  if (state->error_factory)
    napi_delete_reference(env, state->error_factory);
  state->error_factory = NULL;
  scheduler_stop(&state->scheduler);
  state->torn_down = true;
  if (state->live_jobs == 0)
    free_state(state);
}

bool addon_state_create(napi_env env) {
  uv_once(&driver_once, driver_init);
  addon_state_t *state = calloc(1, sizeof *state);
  if (!state) {
    napi_throw_error(env, "ERR_ASSET_NO_MEMORY", "out of memory");
    return false;
  }
  /* Half the threadpool: uploads still flow and fs/crypto always find a thread. */
  unsigned slots = scheduler_threadpool_size() / 2;
  if (!scheduler_init(&state->scheduler, env, slots)) {
    free(state);
    napi_throw_error(env, "ERR_ASSET_INIT", "could not set up the libuv timer");
    return false;
  }
  state->rng = uv_hrtime() ^ ((uint64_t)(uintptr_t)state << 16) ^ (uint64_t)uv_os_getpid();
  if (state->rng == 0)
    state->rng = 0x9e3779b97f4a7c15ULL;
  NAPI_CALL_BOOL(env, napi_add_async_cleanup_hook(env, on_teardown, state, &state->teardown));
  NAPI_CALL_BOOL(env, napi_set_instance_data(env, state, on_finalize, NULL));
  return true;
}

addon_state_t *addon_state_get(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) != napi_ok)
    return NULL;
  return data;
}

void addon_state_job_started(addon_state_t *state) { state->live_jobs++; }

void addon_state_job_finished(addon_state_t *state) {
  state->live_jobs--;
  if (state->torn_down && state->live_jobs == 0)
    free_state(state);
}

double addon_state_random(addon_state_t *state) {
  uint64_t x = state->rng; /* xorshift64*: jitter, not secrets */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  state->rng = x;
  return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}
