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
# The env file it watches (absent in the failing site): its value as this
# run saw it.
color=none
if [ -f "$R/etc/vmtest/vmhello.env" ]; then
	color=$(sed -n 's/^VMHELLO_COLOR=//p' "$R/etc/vmtest/vmhello.env")
fi
printf '%s\n' "$color" >"$R/var/lib/vmtest/hello-env"
echo "VMHELLO_COLOR=$color"
