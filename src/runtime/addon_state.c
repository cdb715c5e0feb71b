#include "runtime/addon_state.h"

#include <stdlib.h>
#include <uv.h>

#include "runtime/driver.h"

static void free_state(addon_state_t *state) { free(state); }

/* The state never became the environment's: nothing else refers to it. */
static void free_after_close(void *data) { free(data); }

static void on_handles_closed(void *data) {
  addon_state_t *state = data;
  napi_remove_async_cleanup_hook(state->teardown);
  state->teardown = NULL;
}

/* Environment teardown (a worker ending, the process exiting). The cleanup
 * hook is the asynchronous kind because the scheduler's handles' close
 * callbacks are code in this library: Node unloads an addon with its last
 * environment, and must not before libuv has called them. */
static void on_teardown(napi_async_cleanup_hook_handle handle, void *data) {
  (void)handle;
  addon_state_t *state = data;
  /* Node calls cleanup hooks outside any handle scope, and closing rejects
   * the jobs still waiting for a slot (a worker terminated while others hold
   * the threadpool): their napi values need one. */
  napi_env env = state->scheduler.env;
  napi_handle_scope scope;
  bool scoped = napi_open_handle_scope(env, &scope) == napi_ok;
  aav_scheduler_close(&state->scheduler, on_handles_closed, state);
  if (scoped)
    napi_close_handle_scope(env, scope);
}

/* Main thread, when the environment ends. The error classes' references are
 * this state's own: deleting them reads no other reference. */
static void on_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  addon_state_t *state = data;
  for (size_t i = 0; i < AAV_ADDON_ERROR_CLASSES; i++) {
    if (state->error_classes[i])
      napi_delete_reference(env, state->error_classes[i]);
    state->error_classes[i] = NULL;
  }
  aav_scheduler_stop(&state->scheduler);
  state->torn_down = true;
  if (state->live_jobs == 0)
    free_state(state);
}

/* Main thread, during module init. With UV_THREADPOOL_SIZE=1 the budget takes
 * the pool's only thread (threadpool_budget.c): the application's fs,
 * dns.lookup, crypto and zlib then wait while an upload attempt runs. Said
 * once per process, as a process warning the application can see or
 * silence. */
static void warn_single_thread(napi_env env) {
  napi_value global, process, emit, args[2];
  if (napi_get_global(env, &global) != napi_ok ||
      napi_get_named_property(env, global, "process", &process) != napi_ok ||
      napi_get_named_property(env, process, "emitWarning", &emit) != napi_ok ||
      napi_create_string_utf8(
          env,
          "UV_THREADPOOL_SIZE=1: atomic-asset-version takes the threadpool's only "
          "thread for its uploads, so fs, dns.lookup, crypto and zlib wait while an "
          "upload attempt runs. Set UV_THREADPOOL_SIZE to 2 or more.",
          NAPI_AUTO_LENGTH, &args[0]) != napi_ok ||
      napi_create_object(env, &args[1]) != napi_ok)
    return;
  napi_value code;
  if (napi_create_string_utf8(env, "ATOMIC_ASSET_VERSION_THREADPOOL", NAPI_AUTO_LENGTH,
                              &code) == napi_ok)
    napi_set_named_property(env, args[1], "code", code);
  if (napi_call_function(env, process, emit, 2, args, NULL) != napi_ok) {
    napi_value ignored; /* a warning must not fail the module's load */
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

addon_state_status_t aav_addon_state_create(napi_env env) {
  aav_driver_init_once();
  addon_state_t *state = calloc(1, sizeof *state);
  if (!state)
    return ADDON_STATE_NO_MEMORY;
  if (!aav_scheduler_init(&state->scheduler, env)) {
    free(state);
    return ADDON_STATE_NO_HANDLES;
  }
  /* Environments and processes started together must not draw alike. */
  aav_backoff_rng_seed(&state->rng, uv_hrtime() ^ ((uint64_t)(uintptr_t)state << 16) ^
                                        (uint64_t)uv_os_getpid());
  if (aav_threadpool_budget_warn_once())
    warn_single_thread(env);
  napi_status status =
      napi_add_async_cleanup_hook(env, on_teardown, state, &state->teardown);
  if (status == napi_ok) {
    status = napi_set_instance_data(env, state, on_finalize, NULL);
    if (status != napi_ok)
      napi_remove_async_cleanup_hook(state->teardown);
  }
  if (status != napi_ok) {
    aav_scheduler_close(&state->scheduler, free_after_close, state);
    return ADDON_STATE_NO_HOOKS;
  }
  return ADDON_STATE_OK;
}

addon_state_t *aav_addon_state_get(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) != napi_ok)
    return NULL;
  return data;
}

void aav_addon_state_job_started(addon_state_t *state) { state->live_jobs++; }

void aav_addon_state_job_finished(addon_state_t *state) {
  state->live_jobs--;
  if (state->torn_down && state->live_jobs == 0)
    free_state(state);
}
