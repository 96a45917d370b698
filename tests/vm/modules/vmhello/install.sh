#!/bin/bash
# vmhello: proves a module of the site's own ran under the contract on the
# real server (tests/vm/run.sh reads the file back).
set -euo pipefail
R=${FIRSTBOOT_ROOT:-/}
R=${R%/}
echo "$GREETING (instance $FIRSTBOOT_INSTANCE_ID, provisioning job $PROVISIONING_JOB)"
mkdir -p "$R/var/lib/vmtest"
printf '%s\n' "$FIRSTBOOT_INSTANCE_ID" >"$R/var/lib/vmtest/hello"
echo "wrote /var/lib/vmtest/hello"
