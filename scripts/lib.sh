# Shared by the scripts in this folder: paths, logging, package installation, builds.
# shellcheck shell=bash
set -euo pipefail

CACHET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHET_BUILD="${CACHET_BUILD:-$CACHET_ROOT/build}"
CACHET_BUILD_ASAN="${CACHET_BUILD_ASAN:-$CACHET_ROOT/build-asan}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages: what the build needs, and what the tests and benchmarks drive.
CACHET_BUILD_PACKAGES=(meson ninja-build pkg-config g++ libfmt-dev libxxhash-dev liburing-dev
  libjemalloc-dev libgtest-dev libgmock-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libdpdk-dev)
CACHET_TEST_PACKAGES=(memcached libmemcached-tools python3-pymemcache nutcracker iproute2
  util-linux procps dpdk)

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

build_release() {
  configure_build "$CACHET_BUILD" --buildtype=release
  ninja -C "$CACHET_BUILD" >&2
}

build_sanitized() {
  configure_build "$CACHET_BUILD_ASAN" --buildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false -Djemalloc=disabled
  ninja -C "$CACHET_BUILD_ASAN" >&2
}
