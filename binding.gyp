{
  "targets": [
    {
      "target_name": "atomic_asset_version",
      "sources": [
        "src/napi/binding.c",
        "src/napi/errors.c",
        "src/napi/insert_batch.c",
        "src/napi/napi_util.c",
        "src/napi/repository.c",
        "src/runtime/addon_state.c",
        "src/runtime/batch.c",
        "src/runtime/ca_bundle.c",
        "src/runtime/driver.c",
        "src/runtime/scheduler.c",
        "src/runtime/store.c",
        "src/runtime/threadpool_budget.c",
        "src/core/asset_doc.c",
        "src/core/attempt.c",
        "src/core/backoff.c",
        "src/core/duplicate.c",
        "src/core/server_types.c",
        "src/core/read_tops.c",
        "src/core/version_index.c"
      ],
      "include_dirs": ["src"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": [
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-error=deprecated-declarations",
        "-Wunused-parameter",
        "-D_POSIX_C_SOURCE=200809L",
        "<!@(pkg-config --cflags libmongoc-1.0)"
      ],
      "libraries": ["<!@(pkg-config --libs libmongoc-1.0)"]
    }
  ]
}
