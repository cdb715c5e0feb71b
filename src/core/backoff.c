#include "backoff.h"

uint64_t aav_backoff_ms(int round, double first, double cap, double random01) {
  double window = first;
  for (int i = 1; i < round && window < cap; i++)
    window *= 2;
  if (window > cap)
    window = cap;
  return (uint64_t)(window + random01 * 2 * window);
}
