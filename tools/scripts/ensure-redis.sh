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
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi
mkdir -p "${TMPDIR:-/tmp}/xyp-redis"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --maxmemory-policy noeviction --dir "${TMPDIR:-/tmp}/xyp-redis" --logfile "${TMPDIR:-/tmp}/xyp-redis/redis-$port.log"
for _ in $(seq 1 50); do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then echo "redis started on port $port"; exit 0; fi
  sleep 0.1
done
echo "redis-server did not answer on port $port" >&2
exit 1
