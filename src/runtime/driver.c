#include "runtime/driver.h"

#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

static uv_once_t once = UV_ONCE_INIT;

/* Written once, before the log handler is installed; read only by it. */
static bool debug_log;

/* Driver threads (the pool's monitors) as well as threadpool threads. libmongoc
 * logs to stderr by default, including a harmless endSessions warning when a
 * pool is destroyed against FerretDB. Applications get errors through
 * promises, so only critical driver messages are printed, unless
 * ATOMIC_ASSET_VERSION_DEBUG was set when the addon was first loaded. The
 * variable is not read here: getenv on these threads would race with
 * JavaScript's setenv on the main thread. */
static void driver_log(mongoc_log_level_t level, const char *domain, const char *message,
                       void *data) {
  (void)data;
  if (level <= MONGOC_LOG_LEVEL_CRITICAL || debug_log)
    mongoc_log_default_handler(level, domain, message, NULL);
}

/* Never undone: mongoc_cleanup() would pull the driver out from under other
 * environments still using it. */
static void init(void) {
  /* Debian's libmongoc already ran mongoc_init from a library constructor
   * when the addon was loaded (lib/native.js handles the one warning that can
   * print then); the call below is for builds without automatic init, and the
   * handler goes first so that its warnings are filtered too. */
  debug_log = getenv("ATOMIC_ASSET_VERSION_DEBUG") != NULL;
  mongoc_log_set_handler(driver_log, NULL);
  mongoc_init();
}

void aav_driver_init_once(void) { uv_once(&once, init); }
