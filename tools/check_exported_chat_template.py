#!/usr/bin/env python3
"""Checks with transformers that the chat_template moetune exports for a FastChat template
renders exactly what FastChat renders (what the model was trained on).

For each built-in template it asks moetune for the Jinja (`moetune template jinja`) and the
FastChat renderings of a few conversations (`moetune template render`), then renders the same
conversations with transformers' apply_chat_template (tokenize=False; an open last assistant
turn = add_generation_prompt=True) and compares.

Usage:
    pip install transformers jinja2
    python3 tools/check_exported_chat_template.py "bin/moetune" fixtures/tiny-mixtral
    # or, in a built checkout:
    python3 tools/check_exported_chat_template.py \
        "$JAVA_HOME/bin/java -cp app/target/classes:templates/target/classes:datasets/target/classes:CLASSPATH moetune.app.Main" \
        fixtures/tiny-mixtral   # CLASSPATH: mvn dependency:build-classpath of templates and app
"""
import json
import shlex
import subprocess
import sys
import tempfile

from transformers import PreTrainedTokenizerFast

CONVERSATIONS = [
    {"system": None, "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
    {
        "system": "Be brief, 'friend'.",
        "messages": [
            {"role": "user", "content": "What's 'x' \\ \"y\"?\nTwo lines"},
            {"role": "assistant", "content": "It's {{ 1 }} & {% no %}"},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": None},
        ],
    },
    {"system": "", "messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                                {"role": "user", "content": "Q2"}, {"role": "assistant", "content": None}]},
]


def main(moetune, model_dir):
    cmd = shlex.split(moetune)
    names = [l.split()[0] for l in subprocess.run(cmd + ["template", "list"], check=True,
                                                  capture_output=True, text=True).stdout.splitlines()]
    names = [n for n in names if n != "hf"]
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json", bos_token="<s>", eos_token="</s>")
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        inp = f"{d}/in.jsonl"
        with open(inp, "w", encoding="utf-8") as f:
            for c in CONVERSATIONS:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
        for name in names:
            jinja = subprocess.run(cmd + ["template", "jinja", "--template", name], check=True,
                                   capture_output=True, text=True).stdout
            out = f"{d}/{name}.jsonl"
            subprocess.run(cmd + ["template", "render", "--template", name, "--input", inp, "--output", out],
                           check=True, capture_output=True)
            with open(out, encoding="utf-8") as f:
                expected = [json.loads(l)["prompt"] for l in f]
            tok.chat_template = jinja
            for c, want in zip(CONVERSATIONS, expected):
                msgs = ([{"role": "system", "content": c["system"]}] if c["system"] is not None else [])
                msgs += c["messages"]
                gen = msgs[-1]["role"] == "assistant" and msgs[-1]["content"] is None
                if gen:
                    msgs = msgs[:-1]
                got = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
                if got != want:
                    failed += 1
                    print(f"MISMATCH {name}: want {want!r}\n{' ' * len(name)}            got  {got!r}")
    print(f"{len(names)} templates x {len(CONVERSATIONS)} conversations, {failed} mismatches")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
