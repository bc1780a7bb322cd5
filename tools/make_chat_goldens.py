#!/usr/bin/env python3
"""Make the chat-template goldens for kiln (tests/unit/test_chat_template.c).

The reference is Hugging Face transformers' `apply_chat_template(tokenize=False)`,
which renders a model's Jinja chat template in a sandboxed Jinja2 environment.
No model is downloaded: the tokenizer is an empty fast tokenizer built in
memory whose only job is to carry bos_token, eos_token and chat_template.

The templates themselves are the models' own data, stored byte for byte in
tests/data/chat/templates/*.jinja (their sources are listed in
tests/data/chat/templates/SOURCES.md and in TEMPLATES below). This script
renders a fixed set of conversations through each of them, with and without
add_generation_prompt, and records either the exact output string or the fact
that the template raised (with the reference's message).

Usage: python3 tools/make_chat_goldens.py
It creates the virtual environment tools/.venv/chat (python3 -m venv) with
tools/requirements-chat.txt on first use, re-runs itself inside it, and
rewrites tests/data/chat/cases.json. The output is deterministic.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_reexec import run_in_venv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tools" / ".venv" / "chat"
REQUIREMENTS = ROOT / "tools" / "requirements-chat.txt"
DATA = ROOT / "tests" / "data" / "chat"




run_in_venv(VENV, [REQUIREMENTS])

import jinja2  # noqa: E402  (only importable inside the venv)
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, models  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

# Special-token texts of each family (from the models' tokenizer configs).
LLAMA2_TOK = ("<s>", "</s>")
LLAMA3_TOK = ("<|begin_of_text|>", "<|eot_id|>")
QWEN_TOK = ("<|endoftext|>", "<|im_end|>")
PHI3_TOK = ("<s>", "<|endoftext|>")

# file, kiln format name, what detection must return, (bos, eos), model(s).
TEMPLATES = [
    ("llama2-chat.jinja", "llama2", "llama2", LLAMA2_TOK, "meta-llama/Llama-2-7b-chat-hf"),
    ("llama3-instruct.jinja", "llama3", "llama3", LLAMA3_TOK, "meta-llama/Meta-Llama-3-8B-Instruct"),
    ("llama3.1-instruct.jinja", "llama3.1", "llama3.1", LLAMA3_TOK,
     "meta-llama/Llama-3.1-8B-Instruct (same as Llama-3.3-70B-Instruct)"),
    ("mistral-v0.1.jinja", "mistral-v0.1", "mistral-v0.1", LLAMA2_TOK,
     "mistralai/Mistral-7B-Instruct-v0.1 (original template)"),
    ("mistral-v0.2.jinja", "mistral-v0.2", "mistral-v0.2", LLAMA2_TOK,
     "mistralai/Mistral-7B-Instruct-v0.2 and Mixtral-8x7B-Instruct-v0.1 (original template)"),
    ("mistral-v1.jinja", "mistral-v1", "mistral-v1", LLAMA2_TOK,
     "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template, with a system prompt)"),
    ("mistral-v3.jinja", "mistral-v3", "mistral-v3", LLAMA2_TOK,
     "mistralai/Mistral-Large-Instruct-2407 (mistralai 'v3' template, as in Mistral-7B-Instruct-v0.3)"),
    ("mistral-nemo.jinja", "mistral-v3-tekken", "mistral-v3-tekken", LLAMA2_TOK,
     "mistralai/Mistral-Nemo-Instruct-2407 (mistralai 'v3-tekken' template)"),
    ("mistral-v7.jinja", "mistral-v7", "mistral-v7", LLAMA2_TOK,
     "mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)"),
    ("chatml.jinja", "chatml", "chatml", QWEN_TOK, "teknium/OpenHermes-2.5-Mistral-7B"),
    ("qwen2.jinja", "qwen2", "qwen2", QWEN_TOK, "Qwen/Qwen2 / Qwen1.5 chat models"),
    ("qwen2.5-instruct.jinja", "qwen2.5", "qwen2.5", QWEN_TOK, "Qwen/Qwen2.5-7B-Instruct"),
    ("phi3-mini.jinja", "phi3", "phi3", PHI3_TOK, "microsoft/Phi-3-mini-4k-instruct"),
    ("phi3.5-mini.jinja", "phi3.5", "phi3.5", PHI3_TOK, "microsoft/Phi-3.5-mini-instruct"),
    ("phi3-small.jinja", "phi3-small", "phi3-small", PHI3_TOK, "microsoft/Phi-3-small-8k-instruct and -128k-instruct"),
    ("phi3-medium.jinja", "phi3-medium", "phi3-medium", PHI3_TOK, "microsoft/Phi-3-medium-4k-instruct"),
    ("phi3-mini-legacy.jinja", "phi3-legacy", "phi3-legacy", PHI3_TOK,
     "microsoft/Phi-3-mini-4k-instruct (first release)"),
    ("kiln-plain.jinja", "plain", "unknown", LLAMA2_TOK,
     "kiln's own fallback for models without a template"),
]


def m(role: str, content: str) -> dict:
    return {"role": role, "content": content}


# Conversations: (id, messages). Roles are kiln's three; the contents exercise
# whitespace stripping (ASCII and Unicode spaces), non-ASCII text and empty strings.
CONVERSATIONS = [
    ("user", [m("user", "Hello")]),
    ("system_user", [m("system", "You are a helpful assistant."), m("user", "Hi there")]),
    ("multi_turn", [m("system", "Be brief."), m("user", "What is 2+2?"), m("assistant", "4"),
                    m("user", "And 3+3?")]),
    ("no_system_multi", [m("user", "First"), m("assistant", "Answer one"), m("user", "Second")]),
    ("ends_assistant", [m("user", "Say hi"), m("assistant", "Hi!")]),
    ("system_user_assistant", [m("system", "Sys"), m("user", "Q"), m("assistant", "A")]),
    ("whitespace", [m("system", "  padded system \n"), m("user", "\t spaced user  \n"),
                    m("assistant", "  spaced answer  "), m("user", " again ")]),
    ("unicode", [m("user", "\u00a0h\u00e9llo \u4e16\u754c \U0001F642\u3000"),
                 m("assistant", "\u2003r\u00e9ponse\u2028"), m("user", "\u00fcber \u0394")]),
    ("empty_contents", [m("system", ""), m("user", ""), m("assistant", ""), m("user", "")]),
    ("only_system", [m("system", "Just a system prompt")]),
    ("assistant_first", [m("assistant", "I start"), m("user", "Then me")]),
    ("two_users", [m("user", "One"), m("user", "Two")]),
    ("system_in_middle", [m("user", "U1"), m("system", "late system"), m("user", "U2")]),
    ("system_after_assistant", [m("user", "U1"), m("assistant", "A1"), m("system", "late"),
                                m("user", "U2")]),
    ("two_systems", [m("system", "S1"), m("system", "S2"), m("user", "U")]),
    ("markup_in_content", [m("user", "[INST] <<SYS>> <|im_end|> {{ x }} {% raw %}")]),
]


def render(template: str, bos: str, eos: str, messages: list, gen: bool) -> dict:
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()),
                                  bos_token=bos, eos_token=eos)
    tok.chat_template = template
    try:
        out = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
    except jinja2.exceptions.TemplateError as e:
        return {"error": str(e)}
    return {"expect": out}


def compact_json(doc: dict) -> str:
    """JSON with one conversation or case per line (small, and diffs stay readable)."""
    def line(v) -> str:
        return json.dumps(v, ensure_ascii=False)
    parts = ["{\n \"generator\": " + line(doc["generator"]) + ",\n \"conversations\": [\n"]
    parts.append(",\n".join("  " + line(c) for c in doc["conversations"]))
    parts.append("\n ],\n \"templates\": [\n")
    tparts = []
    for t in doc["templates"]:
        head = {k: v for k, v in t.items() if k != "cases"}
        body = ",\n".join("    " + line(c) for c in t["cases"])
        tparts.append("  " + line(head)[:-1] + ", \"cases\": [\n" + body + "\n  ]}")
    parts.append(",\n".join(tparts))
    parts.append("\n ]\n}\n")
    return "".join(parts)


def main() -> None:
    templates = []
    for fname, fmt, detect, (bos, eos), model in TEMPLATES:
        text = (DATA / "templates" / fname).read_text(encoding="utf-8")
        cases = []
        for ci, (_, msgs) in enumerate(CONVERSATIONS):
            for gen in (False, True):
                case = {"conv": ci, "gen": gen}
                case.update(render(text, bos, eos, msgs, gen))
                cases.append(case)
        templates.append({"file": fname, "format": fmt, "detect": detect, "model": model,
                          "bos": bos, "eos": eos, "cases": cases})
    doc = {
        "generator": "tools/make_chat_goldens.py: transformers %s (tokenizers %s, Jinja2 %s), "
                     "PreTrainedTokenizerFast.apply_chat_template(tokenize=False)"
                     % (transformers.__version__, tokenizers.__version__, jinja2.__version__),
        "conversations": [{"id": cid, "messages": msgs} for cid, msgs in CONVERSATIONS],
        "templates": templates,
    }
    out = DATA / "cases.json"
    out.write_text(compact_json(doc), encoding="utf-8")
    n = sum(len(t["cases"]) for t in templates)
    n_err = sum(1 for t in templates for c in t["cases"] if "error" in c)
    print(f"wrote {out.relative_to(ROOT)}: {len(templates)} templates, {n} cases ({n_err} errors)")


if __name__ == "__main__":
    main()
