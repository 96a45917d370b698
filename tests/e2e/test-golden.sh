#!/bin/bash
# The golden render cases (tests/golden.sh; `make golden` updates them).
exec "$(dirname "$0")/../golden.sh"
