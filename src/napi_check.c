#include "napi_check.h"

#include <stdio.h>

void napi_check_throw(napi_env env, napi_status status, const char *call) {
  /* Read the last error first: every later napi call overwrites it. */
  const napi_extended_error_info *info = NULL;
  char message[512];
  snprintf(message, sizeof message, "atomic-asset-version: %s failed (status %d: %s)",
           call, (int)status,
           napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message
               ? info->error_message
               : "unknown error");
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending)
    return;
  napi_throw_error(env, "ERR_ASSET_NAPI", message);
}
