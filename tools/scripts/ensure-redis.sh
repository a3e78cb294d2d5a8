#!/usr/bin/env bash
# Starts a local redis-server on the given port (default 6379) when none answers,
# installing Debian's redis-server package first where it is missing.
# Redis keeps nothing on disk here (--save "" --appendonly no) and evicts nothing
# (BullMQ requires maxmemory-policy noeviction).
set -euo pipefail
port="${1:-6379}"
if command -v redis-cli >/dev/null 2>&1 && redis-cli -p "$port" ping >/dev/null 2>&1; then
  echo "redis already answers on port $port"
  exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server with apt-get" >&2
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  if ! { $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null; }; then
    echo "redis-server is not installed and apt-get could not install it (run as root or with sudo, or install redis-server yourself)" >&2
    exit 1
  fi
fi
dir="${TMPDIR:-/tmp}/xyp-redis"
log="$dir/redis-$port.log"
mkdir -p "$dir"
: >"$log"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --maxmemory-policy noeviction --dir "$dir" --logfile "$log"
for _ in $(seq 1 50); do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then echo "redis started on port $port"; exit 0; fi
  sleep 0.1
done
# One line: the last two warnings redis-server logged, e.g. "Warning: Could not create
# server TCP listening socket 127.0.0.1:6379: bind: Address already in use; Failed listening ...".
why="$(grep -E '^[0-9]+:[A-Z] .* # ' "$log" 2>/dev/null | tail -n 2 | sed -E 's/^[0-9]+:[A-Z] [^#]* # //' | paste -sd ';' | sed 's/;/; /g' || true)"
echo "redis-server did not answer on port $port: ${why:-nothing logged} (log: $log)" >&2
exit 1
