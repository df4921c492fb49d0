# Sourced by build.sh, test.sh and moetune: exports JAVA_HOME pointing at a JDK 25 or newer.
# Order: $JAVA_HOME if it is 25+, then java on PATH if it is 25+, then /usr/lib/jvm/*.
moetune_java_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }
moetune_find_jdk() {
  local c v
  for c in "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")" /usr/lib/jvm/*; do
    [ -n "$c" ] && [ -x "$c/bin/java" ] || continue
    v=$(moetune_java_major "$c")
    if [ -n "$v" ] && [ "${v%%.*}" -ge 25 ] 2>/dev/null; then export JAVA_HOME="$c"; return 0; fi
  done
  echo "moetune: no JDK 25 or newer found (looked at \$JAVA_HOME, java on PATH and /usr/lib/jvm); install one, e.g. 'apt-get install temurin-25-jdk', and set JAVA_HOME" >&2
  return 1
}
moetune_find_jdk || exit 1
