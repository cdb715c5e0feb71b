/* libFuzzer target for the C code that reads what JavaScript hands the addon:
 * validation, preparation and building the stored document, on arbitrary
 * bytes. Built and run by scripts/fuzz.sh with AddressSanitizer and UBSan. */
#include <stdint.h>
#include <stdlib.h>

#include "core/asset_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  asset_problem_t problem;
  bool id_generated;
  /* bson_init_static wants the buffer to live as long as the bson_t: copy it
   * so ASan sees reads past the end of the input itself. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy)
    return 0;
  for (size_t i = 0; i < size; i++)
    copy[i] = data[i];
  bson_t *prepared = aav_asset_prepare(copy, size, &id_generated, &problem);
  if (prepared) {
    bson_t *stored =
        aav_asset_build_stored(prepared, (int64_t)size + 1, 1700000000000LL, NULL);
    bson_destroy(stored);
    bson_destroy(prepared);
  }
  free(copy);
  return 0;
}
