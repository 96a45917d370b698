#!/bin/sh
set -eu
mkdir -p "$FIRSTBOOT_ROOT/var/lib/app"
printf '%s' "$DB_PASSWORD" >"$FIRSTBOOT_ROOT/var/lib/app/db_password"
echo "app on port $PORT (debug $DEBUG)"
