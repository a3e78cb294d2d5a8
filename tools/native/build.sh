#!/usr/bin/env bash
# Builds the engine's optional native addon (tools/native/blas → build/Release/xyp_blas.node), which
# libs/engine/src/native.ts loads when present; the engine runs on WASM without it.
#
# Idempotent: installs the Debian packages it needs when they are missing (as root, else it says which),
# then runs node-gyp (npm's bundled copy, no download) against the local Node headers.
#   bash tools/native/build.sh            build (or rebuild) the addon
#   bash tools/native/build.sh --check    only report whether the built addon loads
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
addon="$here/blas/build/Release/xyp_blas.node"

check() {
  node -e '
    const m = { exports: {} };
    process.dlopen(m, process.argv[1]);
    console.log(`xyp_blas: ${m.exports.config()}, ${m.exports.threads()} thread(s)`);
  ' "$addon"
}
if [ "${1:-}" = "--check" ]; then check; exit; fi

# libopenblas0-pthread: the threaded OpenBLAS (libopenblas-dev alone may pull the serial or OpenMP one).
packages=(libopenblas-dev libopenblas0-pthread)
command -v make >/dev/null || packages+=(make)
command -v cc >/dev/null || packages+=(gcc libc6-dev)
command -v python3 >/dev/null || packages+=(python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tools/native/build.sh: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm's bundled node-gyp; headers from npm's nodedir, else from the prefix Node is installed under.
gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
nodedir="$(npm config get nodedir 2>/dev/null || true)"
if [ -z "$nodedir" ] || [ "$nodedir" = "undefined" ] || [ "$nodedir" = "null" ]; then
  nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
fi
[ -f "$nodedir/include/node/node_api.h" ] || { echo "tools/native/build.sh: no Node headers under $nodedir/include/node" >&2; exit 1; }

cd "$here/blas"
node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn
check
