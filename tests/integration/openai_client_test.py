"""The official openai Python client against a running `kiln serve`.

Streams a chat completion and a completion, reads non-streamed ones, lists
the models and checks an error, all through the client's typed response
objects (which must parse without error). Usage:

    python openai_client_test.py BASE_URL API_KEY

BASE_URL is e.g. http://127.0.0.1:8080/v1. Exit code 0 when every check passes.
"""
import sys

import openai
from openai import OpenAI


def main() -> int:
    base_url, api_key = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
    failures = []

    def check(cond: bool, what: str) -> None:
        if not cond:
            failures.append(what)
            print("FAIL", what)

    models = client.models.list()
    ids = [m.id for m in models.data]
    check(len(ids) == 1, f"one model listed: {ids}")
    model = ids[0]

    # Chat, streamed: text deltas, a finish reason, a usage chunk.
    text, finish, usage = "", None, None
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello"}], max_tokens=5,
        stream=True, stream_options={"include_usage": True}, temperature=0, seed=1)
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                text += choice.delta.content
            if choice.finish_reason:
                finish = choice.finish_reason
    check(len(text) > 0, "chat stream carried text")
    check(finish == "length", f"chat stream finish_reason length, got {finish}")
    check(usage is not None and usage.completion_tokens == 5, f"chat stream usage: {usage}")

    # Chat, not streamed: the same text for the same seed at temperature 0.
    resp = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello"}], max_tokens=5, temperature=0, seed=1)
    check(resp.choices[0].message.role == "assistant", "chat message role")
    check(resp.choices[0].message.content == text, "chat text matches the streamed text")
    check(resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens, "chat usage totals")

    # Completion, streamed and not, with a stop string.
    parts = []
    for chunk in client.completions.create(model=model, prompt="Once upon a time", max_tokens=8, stream=True,
                                           temperature=0):
        for choice in chunk.choices:
            parts.append(choice.text)
    streamed = "".join(parts)
    whole = client.completions.create(model=model, prompt="Once upon a time", max_tokens=8, temperature=0)
    check(whole.choices[0].text == streamed, "completion text equals the streamed text")
    check(whole.choices[0].finish_reason == "length", "completion finish_reason")
    words = streamed.split()
    if len(words) >= 3:
        stopped = client.completions.create(model=model, prompt="Once upon a time", max_tokens=8, temperature=0,
                                            stop=[words[2]])
        check(stopped.choices[0].finish_reason == "stop", "stop string gives finish_reason stop")
        check(words[2] not in stopped.choices[0].text, "stop string not in the text")

    # Errors come back as the client's typed exceptions.
    try:
        client.completions.create(model=model, prompt="x", max_tokens=5, temperature=7)
        check(False, "temperature 7 must be refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400, "400 for temperature 7")
        check("temperature" in str(e), "the error names the field")
    try:
        OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
        check(False, "a wrong key must be refused")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, "401 for a wrong key")

    print(f"openai client: {'ok' if not failures else f'{len(failures)} failures'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
