/* How long a batch waits before trying again. Pure arithmetic, any thread. */
#ifndef BACKOFF_H
#define BACKOFF_H

#include <stdint.h>

/* Round 1, 2, 3 … waits a jittered time from a window that starts at
 * `first` ms and doubles each round up to `cap`: window + random01 * 2 *
 * window, so with first = 5 the first wait is 5–15 ms, as the reference
 * design waits, then 10–30, 20–60 … Writers that collided drift apart.
 * random01 is uniform in [0, 1). */
uint64_t aav_backoff_ms(int round, double first, double cap, double random01);

#endif
