#!/usr/bin/env bash
# Builds the prebuilt addon that `npm pack` ships: prebuilds/linux-x64/
# atomic_asset_version.glibc.node, with libmongoc, libbson and OpenSSL linked
# in statically, so that installing the package needs no compiler and no
# libmongoc (docs/prebuilt.md says what it leaves out and why).
#
# Why not Debian's libmongoc-dev: its static libmongoc drags in ICU, SASL and
# libmongocrypt, which do not link into a shared object. So mongo-c-driver is
# built here from Debian's source package (it carries Debian's security
# patches), with only what the addon needs, against Debian's static
# libssl/libcrypto. The source comes through a private apt configuration in a
# temporary directory that adds the deb-src lines; the system's stays as it is.
#
# Linked with --exclude-libs,ALL, --gc-sections and a version script, the
# addon exports only the Node-API entry points: nothing in it can bind to (or
# be bound from) the OpenSSL inside Node, and no RTLD_DEEPBIND is needed.
#
# Work files go to .cache/prebuild (the static libraries are reused while the
# Debian source version and this script's configuration stay the same). The
# binary is never committed (.gitignore); `files` in package.json packs it.
#
#   bash scripts/build-prebuild.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || { echo "build-prebuild: only linux-x64 is built so far" >&2; exit 1; }

name=atomic_asset_version
out=prebuilds/linux-x64
work=$PWD/.cache/prebuild
mkdir -p "$work" "$out"

# ---- tools -----------------------------------------------------------------
# Only what this configuration needs, not `apt-get build-dep mongo-c-driver`
# (which would bring ICU, SASL, snappy, zstd and libmongocrypt, all left out).
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
[ -f /usr/lib/x86_64-linux-gnu/libssl.a ] || need+=(libssl-dev)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "build-prebuild: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "build-prebuild: missing ${need[*]} (Debian: apt-get install -y ${need[*]})" >&2
    exit 1
  fi
fi

# ---- mongo-c-driver source, from Debian ------------------------------------
# The suite is this machine's Debian release: its libssl.a is the one linked.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
apt_dir=$(mktemp -d)
trap 'rm -rf "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt_dir/sources.list" <<EOF
deb-src [signed-by=$keyring] http://deb.debian.org/debian $codename main
deb-src [signed-by=$keyring] http://deb.debian.org/debian $codename-updates main
deb-src [signed-by=$keyring] http://deb.debian.org/debian-security $codename-security main
EOF
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root -q)
apt-get "${apt_opts[@]}" update >/dev/null
# The newest mongo-c-driver of the release and its security updates.
dsc=$(apt-get "${apt_opts[@]}" source --print-uris mongo-c-driver | grep -o "mongo-c-driver_[^' ]*\.dsc" | head -1)
debian_version=${dsc#mongo-c-driver_}
debian_version=${debian_version%.dsc}
debian_version=$(printf '%b' "${debian_version//%/\\x}") # the URI's %2b is a +
upstream_version=${debian_version%%-*}
src=$work/mongo-c-driver-$debian_version
if [ ! -f "$src/.unpacked" ]; then
  echo "build-prebuild: fetching mongo-c-driver $debian_version (Debian source package)" >&2
  rm -rf "$src" "$work/fetch"
  mkdir -p "$work/fetch"
  (cd "$work/fetch" && apt-get "${apt_opts[@]}" source mongo-c-driver >/dev/null)
  mv "$work/fetch/mongo-c-driver-$upstream_version" "$src"
  rm -rf "$work/fetch"
  touch "$src/.unpacked"
fi

# ---- static libbson + libmongoc ----------------------------------------------
# Left out: SASL (Kerberos/GSSAPI), ICU (SCRAM-SHA-256 with non-ASCII
# passwords), snappy/zlib/zstd (wire compression; the tarball lacks the
# bundled zlib anyway), client-side encryption (libmongocrypt), the
# shared-memory counters, and the library constructor (driver.c calls
# mongoc_init itself). BUILD_VERSION must be given: the tarball has no git.
cmake_opts=(-DCMAKE_BUILD_TYPE=Release "-DBUILD_VERSION=$upstream_version"
  -DENABLE_SSL=OPENSSL -DOPENSSL_USE_STATIC_LIBS=ON -DENABLE_SRV=ON
  -DENABLE_SASL=OFF -DENABLE_ICU=OFF -DENABLE_SNAPPY=OFF -DENABLE_ZLIB=OFF -DENABLE_ZSTD=OFF
  -DENABLE_CLIENT_SIDE_ENCRYPTION=OFF -DENABLE_SHM_COUNTERS=OFF -DENABLE_AUTOMATIC_INIT_AND_CLEANUP=OFF
  -DENABLE_STATIC=BUILD_ONLY -DENABLE_BSON=ON -DENABLE_TESTS=OFF -DENABLE_EXAMPLES=OFF -DENABLE_UNINSTALL=OFF
  -DENABLE_PIC=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  "-DCMAKE_C_FLAGS=-fvisibility=hidden -ffunction-sections -fdata-sections")
build=$work/build-$debian_version
libmongoc=$build/src/libmongoc/libmongoc-static-1.0.a
libbson=$build/src/libbson/libbson-static-1.0.a
stamp="${cmake_opts[*]} $(stat -c %Y /usr/lib/x86_64-linux-gnu/libssl.a)"
if [ ! -f "$libmongoc" ] || [ "$(cat "$build/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "build-prebuild: building static libmongoc $upstream_version" >&2
  start=$SECONDS
  rm -rf "$build"
  cmake -S "$src" -B "$build" "${cmake_opts[@]}" -Wno-dev >"$build.log" 2>&1 || { tail -30 "$build.log" >&2; exit 1; }
  cmake --build "$build" --target mongoc_static bson_static -j"$(nproc)" >>"$build.log" 2>&1 || { tail -30 "$build.log" >&2; exit 1; }
  echo "$stamp" >"$build/.stamp"
  echo "build-prebuild: libmongoc built in $((SECONDS - start)) s" >&2
fi

# ---- the addon -----------------------------------------------------------------
# Node's headers (node_api.h, uv.h): beside this Node when it ships them, as
# scripts/build-addon.js does; otherwise node-gyp's download of them.
prefix=$(cd "$(dirname "$(node -p process.execPath)")/.." && pwd)
node_include=$prefix/include/node
if [ ! -f "$node_include/node_api.h" ] || [ ! -f "$node_include/uv.h" ]; then
  node node_modules/node-gyp/bin/node-gyp.js install >/dev/null
  node_include=$(node -p "require('path').join(require('os').homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node')")
fi
# The sources are binding.gyp's, so the two builds cannot drift apart.
mapfile -t sources < <(node -e "for (const s of JSON.parse(require('fs').readFileSync('binding.gyp', 'utf8')).targets[0].sources) console.log(s)")
objs=$work/obj
rm -rf "$objs"
mkdir -p "$objs"
# Node's include directory has an openssl/ of its own: it goes last.
# Warnings are errors, as in binding.gyp; the driver's own headers are
# system headers here, so their warnings are not ours.
cflags=(-O2 -fPIC -pthread -std=c11 -Wall -Wextra -Werror -Wno-error=deprecated-declarations -fno-omit-frame-pointer
  -fvisibility=hidden -ffunction-sections -fdata-sections
  -D_POSIX_C_SOURCE=200809L -DNAPI_VERSION=8 -DBUILDING_NODE_EXTENSION "-DNODE_GYP_MODULE_NAME=$name"
  -DAAV_BUNDLED_OPENSSL -DBSON_STATIC -DMONGOC_STATIC
  -Isrc -isystem "$src/src/libmongoc/src" -isystem "$build/src/libmongoc/src/mongoc" -isystem "$src/src/libbson/src" -isystem "$build/src/libbson/src/bson"
  -idirafter "$node_include")
pids=()
for s in "${sources[@]}"; do
  o=$objs/$(echo "$s" | tr / _).o
  cc "${cflags[@]}" -c "$s" -o "$o" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

cat >"$work/exports.map" <<'EOF'
{
  global: napi_register_module_v1; node_api_module_get_api_version_v1;
  local: *;
};
EOF
binary=$out/$name.glibc.node
cc -shared -pthread -o "$binary" "$objs"/*.o "$libmongoc" "$libbson" \
  /usr/lib/x86_64-linux-gnu/libssl.a /usr/lib/x86_64-linux-gnu/libcrypto.a -lresolv \
  -static-libgcc -Wl,--exclude-libs,ALL -Wl,--gc-sections -Wl,--version-script="$work/exports.map" \
  -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack
strip --strip-all "$binary"

# ---- what the loader and the checks need to know -----------------------------
glibc_floor=$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
openssl_version=$(dpkg-query -W -f '${Version}' libssl-dev)
cat >"$out/$name.glibc.json" <<EOF
{
  "libc": "glibc",
  "glibcFloor": "$glibc_floor",
  "mongoCDriver": "$debian_version",
  "openssl": "$openssl_version",
  "builtOn": "$(. /etc/os-release && echo "$PRETTY_NAME")"
}
EOF

# ---- licence notices of what is linked in --------------------------------------
notices=$out/THIRD-PARTY-NOTICES.txt
{
  echo "The prebuilt addon $binary links in, statically:"
  echo "  - mongo-c-driver (libmongoc, libbson) $debian_version, Debian's source package"
  echo "  - OpenSSL $openssl_version, Debian's libssl-dev"
  echo "Their licences and notices follow."
  for f in COPYING THIRD_PARTY_NOTICES debian/copyright; do
    printf '\n\n==== mongo-c-driver: %s ====\n\n' "$f"
    cat "$src/$f"
  done
  printf '\n\n==== OpenSSL: Debian copyright file (licence: Apache-2.0) ====\n\n'
  cat /usr/share/doc/libssl-dev/copyright
  if [ -f /usr/share/common-licenses/Apache-2.0 ]; then
    printf '\n\n==== Apache License 2.0 (OpenSSL) ====\n\n'
    cat /usr/share/common-licenses/Apache-2.0
  fi
} >"$notices"

echo "build-prebuild: $binary ($(stat -c %s "$binary") bytes, glibc >= $glibc_floor, mongo-c-driver $debian_version, OpenSSL $openssl_version)"
