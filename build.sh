#!/usr/bin/env bash
# Builds every module (kernels too, where nvcc exists) without running the tests.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/find-jdk.sh
exec mvn -B -q -DskipTests install "$@"
