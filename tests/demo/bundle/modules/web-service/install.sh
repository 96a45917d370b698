#!/bin/bash
# Runs every boot (frequency: always): checks the configuration and
# records a start, as `systemctl start` would on a real server.
set -euo pipefail
test -s "$FIRSTBOOT_ROOT/opt/stack/docker-compose.yml"
test -s "$FIRSTBOOT_ROOT/etc/stack/db_password"
date -u +%FT%TZ >>"$FIRSTBOOT_ROOT/var/lib/stack-starts"
echo "stack started (boot $(wc -l <"$FIRSTBOOT_ROOT/var/lib/stack-starts"))"
