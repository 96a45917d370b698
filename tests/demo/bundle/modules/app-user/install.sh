#!/bin/bash
# Adds $USERNAME to the root's passwd and group files, once.
set -euo pipefail
etc="$FIRSTBOOT_ROOT/etc"
if grep -q "^$USERNAME:" "$etc/passwd"; then
	echo "user $USERNAME exists"
	exit 0
fi
echo "$USERNAME:x:1000:1000::/home/$USERNAME:$LOGIN_SHELL" >>"$etc/passwd"
echo "$USERNAME:x:1000:" >>"$etc/group"
mkdir -p "$FIRSTBOOT_ROOT/home/$USERNAME"
echo "added user $USERNAME"
