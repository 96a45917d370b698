#!/bin/bash
# Writes a site configuration from the inputs, and the password to a
# 0600 file (never to the log: firstboot masks it anyway).
set -euo pipefail
conf="$FIRSTBOOT_ROOT/etc/nginx/sites-available/$SERVER_NAME.conf"
mkdir -p "$(dirname "$conf")" "$FIRSTBOOT_ROOT/etc/stack"
cat >"$conf" <<EOC
server {
    listen 443 ssl;
    server_name $SERVER_NAME;
    location /api/ { proxy_pass http://127.0.0.1:$API_PORT; }
}
EOC
(umask 077 && printf '%s' "$DB_PASSWORD" >"$FIRSTBOOT_ROOT/etc/stack/db_password")
echo "wrote $conf for $SERVER_NAME -> 127.0.0.1:$API_PORT (password: $DB_PASSWORD)"
