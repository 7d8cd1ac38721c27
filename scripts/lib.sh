# Shared by the scripts in this folder: paths, logging, package installation, builds.
# shellcheck shell=bash
set -euo pipefail

CACHET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHET_BUILD="${CACHET_BUILD:-$CACHET_ROOT/build}"
CACHET_BUILD_ASAN="${CACHET_BUILD_ASAN:-$CACHET_ROOT/build-asan}"
CACHET_BUILD_FUZZ="${CACHET_BUILD_FUZZ:-$CACHET_ROOT/build-fuzz}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages: what the build needs, and what the tests and benchmarks drive.
CACHET_BUILD_PACKAGES=(meson ninja-build pkg-config g++ libfmt-dev libxxhash-dev liburing-dev
  libjemalloc-dev libgtest-dev libgmock-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libdpdk-dev libsodium-dev libtbb-dev libpq-dev libmd-dev libmemcached-dev)
CACHET_TEST_PACKAGES=(memcached libmemcached-tools python3-pymemcache nutcracker iproute2
  util-linux procps dpdk postgresql python3-psycopg2)
# What ./perf/run drives besides the build: stock memcached, dpdk-testpmd (Debian's dpdk-dev)
# as the packet-I/O ceiling, taskset (util-linux), pkg-config for DPDK's version, PostgreSQL
# (./perf/run invalidate), matplotlib for the plots, memcslap (libmemcached-tools) beside the
# load of ./perf/run soak.
CACHET_PERF_PACKAGES=(memcached dpdk dpdk-dev util-linux pkg-config postgresql python3-psycopg2
  python3-matplotlib libmemcached-tools)
# The fuzz targets: clang and its runtime libraries (libFuzzer, ASan, UBSan).
CACHET_FUZZ_PACKAGES=(clang libclang-rt-dev)

# Installs whichever of the given packages are missing (apt-get; needs root).
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root or install them"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure_build DIR [meson options...]: sets up DIR once, then reconfigures as needed.
configure_build() {
  local dir="$1"; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$CACHET_ROOT" "$@" >/dev/null
  fi
}

# build_release [TARGET...]: the release tree; only the named targets (paths in the build tree,
# e.g. dataplane/daemon/cachetd) when given, else everything.
build_release() {
  configure_build "$CACHET_BUILD" --buildtype=release
  ninja -C "$CACHET_BUILD" -j2 "$@" >&2
}

# The sanitized trees are built at -O1 with line tables only (-g1): what ASan recommends, and half
# the compile time of -O2 -g under ASan+UBSan (51 s -> 24 s for control/api.cc), while reports
# still name file and line.
CACHET_SANITIZED_FLAGS=(--buildtype=plain -Doptimization=1 -Dcpp_args=-g1
  -Db_sanitize=address,undefined -Db_lundef=false -Djemalloc=disabled)

build_sanitized() {
  configure_build "$CACHET_BUILD_ASAN" "${CACHET_SANITIZED_FLAGS[@]}"
  ninja -C "$CACHET_BUILD_ASAN" >&2
}

# The libFuzzer targets (tests/fuzz) in a clang tree of their own, sanitized; only they are built.
build_fuzz() {
  CXX=clang++ configure_build "$CACHET_BUILD_FUZZ" "${CACHET_SANITIZED_FLAGS[@]}" \
    -Dfuzzing=true -Ddpdk=disabled -Dtests=disabled
  ninja -C "$CACHET_BUILD_FUZZ" fuzz >&2
}
