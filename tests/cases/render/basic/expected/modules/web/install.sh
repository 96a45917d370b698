#!/bin/sh
set -eu
test -s "$FIRSTBOOT_ROOT/etc/app/app.env"
echo "web for $SERVER_NAME"
