# Sourced (". ./java-env.sh") by the device scripts that run from a folder stage.sh filled (it
# copies this file there): unpacks the jlink'd runtime once per machine and sets
#   java      the runtime's java
#   cp        the fatbin, test classes + every jar but JUnit's console launcher (absolute paths,
#             so it holds after a cd, e.g. to the repository root for MoeLayerBench)
#   launcher  JUnit's console launcher jar
#   fixtures  the checkout's fixtures/ (the staged folder sits somewhere under it), or ""
#   jopts     the JVM options the GPU tests need (native access, heap, fixtures)
# JAVA_ENV_UNPACK=later skips the unpack: call java_unpack yourself (e.g. in the background
# while something else runs, then wait for it before starting java).
# The kernels' fatbin travels as fatbin.xz beside a kernels jar without it (3 MB instead of 7: the
# device tool carries 64 MiB with the checkout); it is unpacked into kfatbin/, first on the class
# path.
java_unpack() {
  [ -x /tmp/mt/jre/bin/java ] || { mkdir -p /tmp/mt && tar -C /tmp/mt -xJf jre.tar.xz; }
  if [ -f fatbin.xz ] && [ ! -f kfatbin/moetune/kernels/moetune.fatbin ]; then
    # without it every GPU test would skip as "kernels not built": stop the calling script instead
    mkdir -p kfatbin/moetune/kernels \
      && xz -dc fatbin.xz > kfatbin/moetune/kernels/moetune.fatbin.part \
      && mv kfatbin/moetune/kernels/moetune.fatbin.part kfatbin/moetune/kernels/moetune.fatbin \
      || { echo "java-env.sh: fatbin.xz did not unpack into kfatbin/ (is xz installed?)" >&2; exit 1; }
  fi
}
[ "${JAVA_ENV_UNPACK:-now}" = later ] || java_unpack
java=/tmp/mt/jre/bin/java
staged="$(pwd)"
cp="$staged/kfatbin:$staged/test-classes:$(ls "$staged"/lib/*.jar 2>/dev/null | grep -v console-standalone | tr '\n' ':')"
launcher="$staged/lib/junit-platform-console-standalone-1.14.1.jar"
fixtures=""
for up in .. ../.. ../../..; do [ -d "$up/fixtures/tiny-mixtral" ] && fixtures="$(cd "$up" && pwd)/fixtures" && break; done
jopts=(--enable-native-access=ALL-UNNAMED -Xmx8g -Dmoetune.fixtures="$fixtures")
