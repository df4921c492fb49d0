#!/usr/bin/env bash
# Assembles target/desktop/moetune: a Linux desktop app image made by jpackage, with a Java runtime,
# every jar including JavaFX's, and bin/moetune, which opens the desktop app when run with no
# arguments on a display (and is the full command line otherwise).
# Called by Maven (mvn -Pdesktop package). Run it: target/desktop/moetune/bin/moetune
set -euo pipefail
java_home="$1" target="$2" version="$3"
input="$target/desktop-input"
rm -rf "$input" "$target/desktop"
mkdir -p "$input"
cp "$target"/lib/*.jar "$input/"
ls "$input"/javafx-graphics-*.jar >/dev/null 2>&1 || {
  echo "moetune desktop: no JavaFX jars in $target/lib; the app image needs them" >&2
  exit 1
}
main_jar="$(cd "$input" && ls app-*.jar | head -n 1)"
# jpackage wants a numeric version: 0.1.0-SNAPSHOT -> 0.1.0
"$java_home/bin/jpackage" --type app-image --name moetune --app-version "${version%%-*}" \
  --description "Finetune mixture-of-experts (Mixtral) models" \
  --input "$input" --main-jar "$main_jar" --main-class moetune.app.Main \
  --java-options --enable-native-access=ALL-UNNAMED --dest "$target/desktop"
rm -rf "$input"
echo "moetune desktop: $target/desktop/moetune ($(du -sh "$target/desktop/moetune" | cut -f1));" \
  "run $target/desktop/moetune/bin/moetune"
