#!/usr/bin/env bash
# Builds and runs every test. GPU tests (JUnit tag "gpu") skip visibly without a CUDA device.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/find-jdk.sh
exec mvn -B verify "$@"
