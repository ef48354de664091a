#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 (the storage tests run on it too).
set -euo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ready; then exit 0; fi
if ! command -v pg_ctlcluster >/dev/null; then
  echo "error: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1
fi
ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
if [ -z "$ver" ]; then
  echo "error: no PostgreSQL cluster found in /etc/postgresql" >&2; exit 1
fi
echo "starting PostgreSQL $ver"
pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
for _ in $(seq 100); do ready && exit 0; sleep 0.1; done
echo "error: PostgreSQL did not start on 127.0.0.1:5432 (see /var/log/postgresql)" >&2
exit 1
