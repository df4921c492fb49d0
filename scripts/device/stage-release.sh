#!/usr/bin/env bash
# Stages the release check for a GPU host into .device/ (git-ignored): the dist tarball (its own
# Java runtime, no JDK needed there), the engine's test classes, JUnit's console launcher and
# the tiny-mixtral weights (no reference files: they do not fit the 64 MiB the device tool
# carries). Then, with the device tool: `bash scripts/device/release-check.sh`, carry [".device"].
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/find-jdk.sh
dest=.device
rm -rf "$dest" && mkdir -p "$dest"
mvn -B -q -Pdist -DskipTests package
mvn -B -q -pl engine -am test-compile
cp distribution/target/moetune-*-linux-x86_64.tar.gz "$dest/"
cp -r engine/target/test-classes "$dest/test-classes"
mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1 \
  -DoutputDirectory="$dest"
du -sh "$dest"
