#!/usr/bin/env bash
# Installs (when missing) and starts PostgreSQL and Redis on loopback for the tests' second run
# (make test): PostgreSQL's superuser role pt (password pt) on 127.0.0.1:5432, Redis on
# 127.0.0.1:6379. Idempotent: what is installed, running and made already is left as it is.
# Works without systemd (pg_ctlcluster, redis-server --daemonize).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in postgresql redis-server; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}"
fi

# PostgreSQL: the newest installed version's cluster `main` (made when the package's own set-up
# did not), on loopback only
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main"' | grep -q .; then
  $SUDO pg_createcluster "$version" main -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" && $4=="online"' | grep -q .; then
  $SUDO pg_ctlcluster "$version" main start -o "-c listen_addresses=127.0.0.1"
fi
for _ in $(seq 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 0.2
done
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "setup-services: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
as_postgres=(runuser -u postgres --)
if [ "$(id -u)" != 0 ]; then as_postgres=(sudo -u postgres); fi
if [ "$("${as_postgres[@]}" psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'pt'")" != 1 ]; then
  "${as_postgres[@]}" psql -q -c "CREATE ROLE pt LOGIN SUPERUSER PASSWORD 'pt'"
fi

# Redis
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  $SUDO redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && break
    sleep 0.2
  done
  redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG \
    || { echo "setup-services: Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "setup-services: PostgreSQL $version on 127.0.0.1:5432 (role pt), Redis on 127.0.0.1:6379"
