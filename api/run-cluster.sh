#!/usr/bin/env bash
# `make run-cluster`: a throwaway PostgreSQL cluster in a temporary directory and two mig-api
# replicas on it (http://127.0.0.1:1664/api/v2/ and http://127.0.0.1:1665/api/v2/), until
# Ctrl-C, which stops them and removes the directory. For trying replicas out, never for
# production: trust authentication on loopback, fsync off.
#   usage: api/run-cluster.sh path/to/mig-api
set -euo pipefail
api=$(realpath "${1:?usage: run-cluster.sh path/to/mig-api}")
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL's server binaries are missing: apt-get install postgresql" >&2; exit 1; }
dir=$(mktemp -d /tmp/mig-cluster.XXXXXX)
chmod 755 "$dir"
port=${PGPORT_CLUSTER:-55432}
# initdb refuses root: the cluster runs as the package's postgres user then.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir "$dir/pg"
[ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  as_owner "$bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
as_owner "$bin/initdb" -U mig --auth=trust -E UTF8 -D "$dir/pg/data" >/dev/null
as_owner "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir/pg -c fsync=off" start >/dev/null
"$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U mig -d postgres -c "CREATE DATABASE mig" >/dev/null
url="postgresql://mig@127.0.0.1:$port/mig"
for n in 1 2; do
  mkdir "$dir/r$n"
  # Every replica reads the same freshness key from its own disk (docs/design.md §6.6): here the
  # development one, which the development mig-loader requires.
  install -m 600 "$repo/conf/dev-keys/freshness.sec.asc" "$dir/r$n/freshness.key"
  cat > "$dir/r$n/api.cfg" <<CFG
[server]
listen = 127.0.0.1:$((1663 + n))
[database]
; the file bodies' local cache lives beside this path
path = $dir/r$n/mig-api.db
url = $url
[freshness]
key = $dir/r$n/freshness.key
CFG
done
# Both replicas start together: the schema is migrated once, under PostgreSQL's lock.
for n in 1 2; do
  "$api" --config "$dir/r$n/api.cfg" > "$dir/r$n/api.log" 2>&1 &
  pids+=($!)
done
for n in 1 2; do
  for _ in $(seq 100); do grep -q "listening on" "$dir/r$n/api.log" && break; sleep 0.1; done
  grep "listening on" "$dir/r$n/api.log" || { cat "$dir/r$n/api.log"; exit 1; }
done
cat <<TXT

PostgreSQL: $url
replica 1:  $dir/r1/api.cfg, log $dir/r1/api.log
replica 2:  $dir/r2/api.cfg, log $dir/r2/api.log
The first administrator (the development key admin1; any replica's config will do):
  $api --config $dir/r1/api.cfg investigator add --name admin1 \\
      --pubkey $repo/conf/dev-keys/admin1.pub.asc --perms PermAdmin,PermManifest,PermLoader
Ctrl-C stops both replicas and the database and removes $dir.
TXT
wait
