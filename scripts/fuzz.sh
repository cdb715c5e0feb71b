#!/usr/bin/env bash
# Fuzzes the C conversion code (test/fuzz/fuzz_asset.c) with libFuzzer,
# AddressSanitizer and UBSan for FUZZ_SECONDS (default 20). Fails on any crash,
# leak or undefined behaviour. Needs clang (Debian: apt-get install clang).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang >/dev/null || { echo "fuzz: clang is not installed (apt-get install clang)" >&2; exit 1; }
out=build/fuzz
mkdir -p "$out/corpus"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc \
  test/fuzz/fuzz_asset.c src/core/asset_doc.c $(pkg-config --cflags --libs libbson-1.0) -o "$out/fuzz_asset"
# Seeds: real asset documents as the JavaScript layer serializes them.
node -e '
  const { BSON, ObjectId } = require("bson");
  const fs = require("fs");
  const seeds = [
    { orderId: "ord-1", fileName: "proof.pdf", mimeType: "application/pdf", fileSize: 1234 },
    { orderId: new ObjectId(), fileName: "a", meta: { tags: ["x", { y: 1 }], when: new Date(0) }, big: 2n ** 40n },
    { _id: 7, orderId: "o", fileName: "b", version: 9, versionLabel: "v9", blob: Buffer.from([0, 1, 2]) },
  ];
  seeds.forEach((s, i) => fs.writeFileSync(`'"$out"'/corpus/seed-${i}`, BSON.serialize(s)));
'
(cd "$out" && ./fuzz_asset -artifact_prefix=./ -max_total_time="${FUZZ_SECONDS:-20}" -max_len=4096 -print_final_stats=1 corpus) 2>&1 | tail -n 12
echo "fuzz: no crash, leak or undefined behaviour"
