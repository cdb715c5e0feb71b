{
  "targets": [
    {
      "target_name": "atomic_asset_version",
      "sources": [
        "src/binding.c",
        "src/napi_util.c",
        "src/addon_state.c",
        "src/driver.c",
        "src/ca_bundle.c",
        "src/jitter.c",
        "src/scheduler.c",
        "src/threadpool_budget.c",
        "src/errors.c",
        "src/repository.c",
        "src/insert_batch.c",
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
        "-D_POSIX_C_SOURCE=200809L",
        "<!@(pkg-config --cflags libmongoc-1.0)"
      ],
      "libraries": ["<!@(pkg-config --libs libmongoc-1.0)"]
    }
  ]
}
