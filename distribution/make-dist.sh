#!/usr/bin/env bash
# Assembles target/moetune-VERSION-linux-x86_64.tar.gz: a jlink'd Java runtime (a small fixed set of
# JDK modules), every jar but JavaFX's, and bin/moetune, which runs moetune on a Linux GPU server
# without a JDK.
# Called by Maven (mvn -Pdist package).
set -euo pipefail
java_home="$1" target="$2" version="$3"
command -v zip >/dev/null || { echo "moetune dist: needs the zip command to trim the jars (apt-get install zip)" >&2; exit 1; }
name="moetune-$version"
stage="$target/$name"
rm -rf "$stage" "$target/$name-linux-x86_64.tar.gz"
mkdir -p "$stage/bin" "$stage/lib"
cp "$target"/lib/*.jar "$stage/lib/"
# A GPU-server build: the desktop app's JavaFX jars stay out (the app runs from a source
# build), and native libraries for other platforms are cut from the jars that bundle them
# (DJL's tokenizers ships four platforms, JCuda's natives an unused PTX compiler): together
# that keeps the tarball small enough to copy to a GPU host in one go.
rm -f "$stage"/lib/javafx-*.jar
zip -q -d "$stage"/lib/tokenizers-*.jar 'native/lib/linux-aarch64/*' 'native/lib/win-x86_64/*' \
  'native/lib/osx-aarch64/*' >/dev/null
zip -q -d "$stage"/lib/jcuda-natives-*.jar 'lib/libJNvPTXCompiler*' >/dev/null
# The Parquet codecs (snappy-java, zstd-jni) bundle natives for a dozen platforms: keep Linux x64's.
for jar in "$stage"/lib/snappy-java-*.jar "$stage"/lib/zstd-jni-*.jar; do
  others="$(unzip -Z1 "$jar" | grep -E '\.(so|dll|dylib|jnilib|a)$' \
    | grep -v -E '(^|/)(linux/amd64|Linux/x86_64)/' || true)"
  if [ -n "$others" ]; then
    # shellcheck disable=SC2086
    zip -q -d "$jar" $others >/dev/null
  fi
done
# Modules: the headless command line needs only these (Jackson, picocli and DJL use java.desktop
# and java.sql only optionally; jdeps lists them, but no code path moetune takes loads them).
# jinjava (the 'hf' chat templates) does use java.desktop (java.beans, for its expression
# resolvers) and java.xml; jdk.jfr: the Parquet reader, Hardwood, defines JFR events.
modules="java.base,java.logging,jdk.unsupported,java.management,jdk.zipfs,java.desktop,java.xml,jdk.jfr"
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
