#!/bin/bash
# vmfail: a module that refuses its configuration (exit 3).
set -euo pipefail
echo "vmfail: checking the configuration"
echo "vmfail: /etc/vmfail.conf is missing" >&2
echo "vmfail-last-words: giving up (exit 3)" >&2
exit 3
