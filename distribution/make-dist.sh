#!/usr/bin/env bash
# Assembles target/moetune-VERSION-linux-x86_64.tar.gz: a jlink'd Java runtime (the JDK modules
# the jars need, found by jdeps, plus a small base set), every jar, and bin/moetune, which runs
# moetune on a Linux GPU server without a JDK. Called by Maven (mvn -Pdist package).
set -euo pipefail
java_home="$1" target="$2" version="$3"
name="moetune-$version"
stage="$target/$name"
rm -rf "$stage" "$target/$name-linux-x86_64.tar.gz"
mkdir -p "$stage/bin" "$stage/lib"
cp "$target"/lib/*.jar "$stage/lib/"
# Modules: what jdeps finds in the jars (java.desktop appears only if something needs it) plus
# the base set the runtime always wants (logging, Unsafe for JCuda/Jackson, management beans).
base="java.base,java.logging,jdk.unsupported,java.management"
# Jar by jar: a modular jar whose optional dependencies are absent makes jdeps fail as a whole.
modules="$base"
for jar in "$stage"/lib/*.jar; do
  if deps="$("$java_home/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps \
      --class-path "$stage/lib/*" "$jar" 2>/dev/null)"; then
    [ -n "$deps" ] && modules="$modules,$deps"
  fi
done
modules="$(echo "$modules" | tr ',' '\n' | grep -E '^(java|jdk)\.' | sort -u | paste -sd, -)"
"$java_home/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
  --compress=zip-9 --output "$stage/runtime"
cat > "$stage/bin/moetune" <<'LAUNCHER'
#!/usr/bin/env bash
# moetune with its own Java runtime: no JDK needed on this machine.
set -euo pipefail
home="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
exec "$home/runtime/bin/java" --enable-native-access=ALL-UNNAMED ${MOETUNE_JAVA_OPTS:-} \
  -cp "$home/lib/*" moetune.app.Main "$@"
LAUNCHER
chmod +x "$stage/bin/moetune"
echo "$modules" > "$stage/runtime/MODULES"
tar -C "$target" -czf "$target/$name-linux-x86_64.tar.gz" "$name"
echo "moetune dist: $target/$name-linux-x86_64.tar.gz ($(du -h "$target/$name-linux-x86_64.tar.gz" | cut -f1); runtime modules $modules)"
