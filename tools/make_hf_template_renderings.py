#!/usr/bin/env python3
"""Renders conversations with real Hugging Face chat templates through transformers'
apply_chat_template, for moetune's `hf` template tests (HfTemplateParityTest).

Usage (CPU only; no torch needed):
    pip install transformers jinja2
    python3 tools/make_hf_template_renderings.py fixtures/tiny-mixtral \
        templates/src/test/resources/hf/renderings.json

The tokenizer is a PreTrainedTokenizerFast built from the fixture's tokenizer.json with each
family's special tokens; the chat_template string is set on it and apply_chat_template(...,
tokenize=False) renders. A conversation the template rejects (raise_exception) is stored with
the exception's message instead of a text. Templates with {% generation %} blocks also store
the assistant character ranges that transformers' AssistantTracker reports.

Where each template string comes from (the model's tokenizer_config.json `chat_template`, as
quoted in public code found with the search tools):
- mixtral_v01: Mixtral-8x7B-Instruct-v0.1 / Mistral-7B-Instruct-v0.2, the mistralai 'v1'
  template with an optional system message; ggml-org/llama.cpp tests/test-chat-template.cpp.
- mistral_v03: the mistralai 'v3' template with tools (Mistral-7B-Instruct-v0.3,
  Mistral-Large-Instruct-2407); ggml-org/llama.cpp tests/test-chat-template.cpp.
- llama3: Meta-Llama-3-8B-Instruct; quoted as LLAMA3 in a public fine-tuning script and in
  llama.cpp's test (which drops the add_generation_prompt test).
- qwen2: Qwen2 instruct (ChatML with the default system prompt), as in a distillation config
  for Qwen/Qwen2-1.5B.
- zephyr: HuggingFaceH4/zephyr-7b-beta (DEFAULT_ZEPHYR_CHAT_TEMPLATE in the alignment
  handbook and its copies); its layout depends on trim_blocks.
- gemma: google/gemma-7b-it (with its leading bos_token).
- python_methods: written for this test: Python str / dict methods, loop controls, namespace,
  tojson options and `not ... in` as templates use them.
- chatml_generation: qwen2's template with {% generation %} around the assistant reply,
  written for this test (transformers' documented way to mark assistant tokens).
"""
import json
import sys

from transformers import PreTrainedTokenizerFast

TEMPLATES = {
    "mixtral_v01": (
        "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n",
        "<s>",
        "</s>",
    ),
    "mistral_v03": (
        "{%- if messages[0][\"role\"] == \"system\" %}\n    {%- set system_message = messages[0][\"content\"] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | list %}\n\n{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}\n{%- set ns = namespace() %}\n{%- set ns.index = 0 %}\n{%- for message in loop_messages %}\n    {%- if not (message.role == \"tool\" or message.role == \"tool_results\" or (message.tool_calls is defined and message.tool_calls is not none)) %}\n        {%- if (message[\"role\"] == \"user\") != (ns.index % 2 == 0) %}\n            {{- raise_exception(\"After the optional system message, conversation roles must alternate user/assistant/user/assistant/...\") }}\n        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n    {%- endif %}\n{%- endfor %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message[\"role\"] == \"user\" %}\n        {%- if tools is not none and (message == user_messages[-1]) %}\n            {{- \"[AVAILABLE_TOOLS] [\" }}\n            {%- for tool in tools %}\n                {%- set tool = tool.function %}\n                {{- '{\"type\": \"function\", \"function\": {' }}\n                {%- for key, val in tool.items() if key != \"return\" %}\n                    {%- if val is string %}\n                        {{- '\"' + key + '\": \"' + val + '\"' }}\n                    {%- else %}\n                        {{- '\"' + key + '\": ' + val|tojson }}\n                    {%- endif %}\n                    {%- if not loop.last %}\n                        {{- \", \" }}\n                    {%- endif %}\n                {%- endfor %}\n                {{- \"}}\" }}\n                {%- if not loop.last %}\n                    {{- \", \" }}\n                {%- else %}\n                    {{- \"]\" }}\n                {%- endif %}\n            {%- endfor %}\n            {{- \"[/AVAILABLE_TOOLS]\" }}\n            {%- endif %}\n        {%- if loop.last and system_message is defined %}\n            {{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n        {%- else %}\n            {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n        {%- endif %}\n    {%- elif message.tool_calls is defined and message.tool_calls is not none %}\n        {{- \"[TOOL_CALLS] [\" }}\n        {%- for tool_call in message.tool_calls %}\n            {%- set out = tool_call.function|tojson %}\n            {{- out[:-1] }}\n            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n                {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n            {%- endif %}\n            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n            {%- if not loop.last %}\n                {{- \", \" }}\n            {%- else %}\n                {{- \"]\" + eos_token }}\n            {%- endif %}\n        {%- endfor %}\n    {%- elif message[\"role\"] == \"assistant\" %}\n        {{- \" \" + message[\"content\"]|trim + eos_token}}\n    {%- elif message[\"role\"] == \"tool_results\" or message[\"role\"] == \"tool\" %}\n        {%- if message.content is defined and message.content.content is defined %}\n            {%- set content = message.content.content %}\n        {%- else %}\n            {%- set content = message.content %}\n        {%- endif %}\n        {{- '[TOOL_RESULTS] {\"content\": ' + content|string + \", \" }}\n        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}\n            {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n        {%- endif %}\n        {{- '\"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n    {%- else %}\n        {{- raise_exception(\"Only user and assistant roles are supported, with the exception of an initial optional system message!\") }}\n    {%- endif %}\n{%- endfor %}\n",
        "<s>",
        "</s>",
    ),
    "llama3": (
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
        "<|begin_of_text|>",
        "<|eot_id|>",
    ),
    "qwen2": (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        None,
        "<|im_end|>",
    ),
    "zephyr": (
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
        "<s>",
        "</s>",
    ),
    "gemma": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
        "<bos>",
        "<eos>",
    ),
    "python_methods": (
        "{%- set ns = namespace(n=0) -%}\n"
        "{%- for m in messages -%}\n"
        "{%- if m['role'] == 'system' -%}{%- continue -%}{%- endif -%}\n"
        "{%- if ns.n >= 3 -%}{%- break -%}{%- endif -%}\n"
        "{%- set ns.n = ns.n + 1 -%}\n"
        "{{- m['role'].title() + '|' + m['role'].upper() + '|' + m['content'].strip() + '|' + m['content'].lstrip().rstrip('! ') + '|' -}}\n"
        "{{- m['content'].split() | join(',') + '|' + m['content'].split(' ', 1) | tojson + '|' -}}\n"
        "{%- if m['content'].startswith(('  Hi', 'What')) -%}{{- 'starts|' -}}{%- endif -%}\n"
        "{%- if m['content'].strip().endswith('?') -%}{{- 'asks|' -}}{%- endif -%}\n"
        "{{- m['content'].replace('a', 'A') + '|' + m['content'].lower() + '|' + m.get('name', 'anon') + '\\n' -}}\n"
        "{%- endfor -%}\n"
        "{%- if tools -%}{{- tools | tojson(indent=2, sort_keys=true) -}}{%- endif -%}\n"
        "{{- messages | tojson(separators=(',', ':')) -}}\n"
        "{%- if not 'x' in 'abc' -%}{{- '|not-in' -}}{%- endif -%}\n"
        "{%- if add_generation_prompt -%}{{- '|gen' -}}{%- endif -%}\n",
        None,
        None,
    ),
    "chatml_generation": (
        "{%- for message in messages %}\n    {%- if loop.first and messages[0]['role'] != 'system' %}\n        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n    {%- if message['role'] == 'assistant' %}\n        {{- '<|im_start|>assistant\\n' }}\n        {%- generation %}\n            {{- message['content'] + '<|im_end|>' }}\n        {%- endgeneration %}\n        {{- '\\n' }}\n    {%- else %}\n        {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n",
        None,
        "<|im_end|>",
    ),
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name, e.g. Zürich"}},
                "required": ["city"],
            },
        },
    }
]


def u(c):
    return {"role": "user", "content": c}


def a(c):
    return {"role": "assistant", "content": c}


def s(c):
    return {"role": "system", "content": c}


CASES = [
    {"messages": [u("Hello"), a("Hi there")]},
    {"messages": [u("Hello"), a("Hi there")], "add_generation_prompt": True},
    {
        "messages": [
            s("You are a helpful assistant"),
            u("Hello"),
            a("  Hi there  "),
            u("Who are you?\nTell me {{ in braces }} & <b>tags</b>"),
            a("I am an assistant.\n\nNice to meet you: ünïcödé ✓ 日本語"),
        ]
    },
    {"messages": [u("Hello"), a("Hi"), u("More?")], "add_generation_prompt": True},
    {"messages": [s("Be brief."), u("One"), a("1"), u("Two")], "add_generation_prompt": True},
    {"messages": [u("Hello"), u("Hello again")]},
    {"messages": [a("I speak first")]},
]

TOOL_CASES = [
    {
        "messages": [
            u("What's the weather in Zürich?"),
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call00001",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Zürich"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call00001", "content": "{\"temp_c\": 21}"},
            a("It is 21 °C in Zürich."),
        ],
        "tools": TOOLS,
    },
    {"messages": [s("Use tools."), u("Weather in Paris?")], "tools": TOOLS, "add_generation_prompt": True},
]


def main(model_dir, out_path):
    out = []
    for family, (template, bos, eos) in TEMPLATES.items():
        tok = PreTrainedTokenizerFast(
            tokenizer_file=f"{model_dir}/tokenizer.json", bos_token=bos, eos_token=eos
        )
        tok.chat_template = template
        cases = []
        for case in CASES + (TOOL_CASES if family in ("mistral_v03", "python_methods") else []):
            gen = case.get("add_generation_prompt", False)
            entry = dict(case)
            entry["add_generation_prompt"] = gen
            try:
                if "{% generation %}" in template or "{%- generation %}" in template:
                    d = tok.apply_chat_template(
                        case["messages"],
                        tools=case.get("tools"),
                        add_generation_prompt=gen,
                        tokenize=True,
                        return_dict=True,
                        return_assistant_tokens_mask=True,
                    )
                    text = tok.apply_chat_template(
                        case["messages"], tools=case.get("tools"), add_generation_prompt=gen, tokenize=False
                    )
                    entry["text"] = text
                    # transformers' char ranges: re-render through its tracker
                    from transformers.utils.chat_template_utils import render_jinja_template

                    _, idx = render_jinja_template(
                        conversations=[case["messages"]],
                        chat_template=template,
                        return_assistant_tokens_mask=True,
                        add_generation_prompt=gen,
                        **tok.special_tokens_map,
                    )
                    entry["generation"] = [list(r) for r in idx[0]]
                else:
                    entry["text"] = tok.apply_chat_template(
                        case["messages"], tools=case.get("tools"), add_generation_prompt=gen, tokenize=False
                    )
            except Exception as e:  # the template's raise_exception
                entry["error"] = str(e)
            cases.append(entry)
        out.append(
            {
                "family": family,
                "chat_template": template,
                "special_tokens": tok.special_tokens_map,
                "cases": cases,
            }
        )
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {sum(len(o['cases']) for o in out)} renderings of {len(out)} templates to {out_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
