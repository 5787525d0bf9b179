#!/usr/bin/env bash
# Regenerates the initial migration from the models (allowed only while no
# release exists: after the first release, add migrations with `flask db migrate`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>/tmp/mimamori-migration.lock
flock 9
tmp=$(mktemp -d)
rm -f migrations/versions/*.py
MIMAMORI_INSTANCE="$tmp" DATABASE_URL="sqlite:///$tmp/m.sqlite3" MIMAMORI_ENV=testing .venv/bin/flask --app portal db migrate -m "initial schema" --rev-id 0001 >/dev/null
rm -rf "$tmp"
ls migrations/versions/
