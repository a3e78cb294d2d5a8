#!/usr/bin/env bash
# Lints the protos and regenerates libs/grpc/src/generated from them.
#   tools/scripts/gen-proto.sh          regenerate in place
#   tools/scripts/gen-proto.sh --check  fail when the committed code is stale
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root/proto"
buf="$root/node_modules/.bin/buf"
"$buf" lint
target="$root/libs/grpc/src/generated"
if [[ "${1:-}" == "--check" ]]; then
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  cp -r "$target" "$scratch/committed"
  rm -rf "$target"
  "$buf" generate
  if ! diff -r "$scratch/committed" "$target" >/dev/null; then
    diff -r "$scratch/committed" "$target" | head -20 >&2
    rm -rf "$target"; cp -r "$scratch/committed" "$target"
    echo "generated gRPC code is stale: run tools/scripts/gen-proto.sh and commit the result" >&2
    exit 1
  fi
  echo "generated gRPC code is up to date"
else
  rm -rf "$target"
  "$buf" generate
  echo "generated $target"
fi
