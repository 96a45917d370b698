#!/bin/bash
# The installer contract's example install.sh (seed 003), as written but
# for two changes: the site config goes under $FIRSTBOOT_ROOT ("/" on a
# server, the test's root under `firstboot run --root`), and a failing
# apt-get exits 2, an installation error, as the contract says (under
# set -e the example exited with apt-get's own 100, which is not retried).
# apt-get, nginx and systemctl are whatever PATH finds: on a server the
# real ones, in tests/e2e/test-seed-installer.sh stand-ins that record
# their calls.
set -euo pipefail

# Logging
log() { echo "[$(date +'%Y-%m-%d %H:%M:%S')] $*"; }
error() { log "ERROR: $*"; exit "${2:-2}"; }

# Validate required variables
[[ -z "${SERVER_NAME:-}" ]] && error "SERVER_NAME not set" 1

# Check idempotency
if command -v nginx &> /dev/null; then
    log "Already installed, updating config only"
fi

# Non-interactive installation
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || error "apt-get update failed"
apt-get install -y -qq nginx || error "apt-get install failed"

# Configuration (no prompts)
cat > "${FIRSTBOOT_ROOT%/}/etc/nginx/sites-available/default" <<EOF
server {
    server_name $SERVER_NAME;
    # ...
}
EOF

# Validation
nginx -t || error "Config test failed" 3

# Service management
systemctl enable nginx
systemctl restart nginx

log "Installation completed"
exit 0
