#!/usr/bin/env bash
# Stages what a GPU host needs to run moetune's GPU tests without a JDK or Maven into DEST
# (default ../main/.device): a jlink'd runtime (xz), the built jars and test classes, their
# runtime dependencies, JUnit's console launcher and run-gpu-tests.sh. Then, with the device
# tool: run `cd .device && ./run-gpu-tests.sh` with carry [".device"].
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dest="${1:-$repo/../../main/.device}"
# absolute: Maven resolves a relative -DoutputDirectory against each module's folder, which put
# the runtime jars into engine/.device/... instead (session 48)
case "$dest" in /*) ;; *) dest="$PWD/$dest" ;; esac
. "$repo/scripts/find-jdk.sh"
rm -rf "$dest"
mkdir -p "$dest/lib"
cd "$repo"
mvn -B -q -pl engine -am -DskipTests package dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$dest/lib"
cp engine/target/engine-*.jar "$dest/lib/"
cp -r engine/target/test-classes "$dest/test-classes"
mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1 \
  -DoutputDirectory="$dest/lib"
# The test fixtures are tracked in the repository (fixtures/), so they travel with the checkout.
# Only JCuda's driver binding is used: keep just its native library (the NVPTX compiler
# binding alone is 24 MB of the 64 MB the device tool carries).
natives="$(ls "$dest"/lib/jcuda-natives-*.jar)"
tmpn="$(mktemp -d)"
(cd "$tmpn" && unzip -q "$natives" && find lib -name '*.so' ! -name 'libJCudaDriver-*' -delete && rm "$natives" \
  && zip -q -r "$natives" .)
rm -rf "$tmpn"
# the fatbin under xz -9e beside the kernels jar without it (java-env.sh unpacks it): 3 MB of the
# 7 MB the jar's deflate left
kjar="$(ls "$dest"/lib/kernels-*.jar)"
tmpk="$(mktemp -d)"
(cd "$tmpk" && unzip -q "$kjar" && xz -9e -T2 -c moetune/kernels/moetune.fatbin > "$dest/fatbin.xz" \
  && rm moetune/kernels/moetune.fatbin "$kjar" && zip -q -r "$kjar" .)
rm -rf "$tmpk"
tmp="$(mktemp -d)"
"$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging,jdk.unsupported,java.management,java.xml,jdk.zipfs \
  --strip-debug --no-header-files --no-man-pages --compress=zip-0 --output "$tmp/jre"
# uncompressed modules under xz -9e: 15 MB instead of 24 MB with zip-9 inside plain xz
tar -C "$tmp" -cf - jre | xz -9e -T2 > "$dest/jre.tar.xz"
rm -rf "$tmp"
# every device script (check-moe-fused.sh, moe-breakdown.sh, ncu-dw.sh, ...) and the summaries
# they use (the clock stretches, ncu-source.sh's source page) go along, so a session does not copy
# them by hand after each staging (which wipes DEST)
cp "$here"/*.sh "$dest/"
rm -f "$dest/stage.sh" "$dest/stage-release.sh"
cp "$repo/tools/clock_stretches.py" "$repo/tools/ncu_source_summary.py" "$dest/"
du -sh "$dest"
