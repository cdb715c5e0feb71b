#include "jitter.h"

#include <uv.h>

void aav_jitter_seed(jitter_t *j, uint64_t salt) {
  j->state = uv_hrtime() ^ (salt << 16) ^ (uint64_t)uv_os_getpid();
  if (j->state == 0) /* xorshift's one fixed point */
    j->state = 0x9e3779b97f4a7c15ULL;
}

double aav_jitter_random(jitter_t *j) {
  uint64_t x = j->state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  j->state = x;
  return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}
