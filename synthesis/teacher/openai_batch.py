"""The OpenAI Batch API's JSONL, in and out: the format vLLM's `run_batch` and hosted batch APIs use.

Input line::

    {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "m", "messages": [...], "max_tokens": 64, "temperature": 0.7,
              "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {...}}}}}

becomes a TeacherRequest (id = custom_id; `url` /v1/completions takes `prompt` instead of `messages`). The
body's `model` is informational: the backend decides which model answers (and the key hashes that one).
Output line (one per request, `--output-format openai_batch`)::

    {"id": "batch_req_<key[:24]>", "custom_id": "q1",
     "response": {"status_code": 200, "request_id": "<key>", "body": {<chat.completion>}}, "error": null}

with `error: {"code": <error_type>, "message": ...}` and `response: null` for a failed request.
"""

from __future__ import annotations

from typing import Any

from synthesis.teacher.request import TeacherRequest, TeacherResult

URLS = {"/v1/chat/completions": "messages", "/v1/completions": "prompt"}
#: body fields we map onto SamplingParams (OpenAI name -> ours)
_SAMPLING = {
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "stop": "stop",
    "n": "n",
}
_OTHER = {"model", "messages", "prompt", "response_format"}


def is_batch_line(obj: Any) -> bool:
    return isinstance(obj, dict) and "custom_id" in obj


def _schema(response_format: Any) -> dict | None:
    """The JSON schema a `response_format` asks for (json_schema, or json_object with/without a schema)."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_schema":
        try:
            return response_format["json_schema"]["schema"]
        except (KeyError, TypeError):
            raise ValueError("body.response_format: type json_schema needs json_schema.schema") from None
    if kind == "json_object":
        return response_format.get("schema") or {"type": "object"}
    raise ValueError(f"body.response_format: type {kind!r} is not one of text, json_object, json_schema")


def request_from_batch_line(obj: dict) -> TeacherRequest:
    """One Batch API input line as a TeacherRequest; ValueError naming the field for anything we cannot
    honour."""
    extra = set(obj) - {"custom_id", "method", "url", "body"}
    if extra:
        raise ValueError(f"unknown top-level field(s) {sorted(extra)} in a Batch API line")
    if obj.get("method", "POST") != "POST":
        raise ValueError(f"field 'method': {obj['method']!r} (only POST)")
    input_field = URLS.get(obj.get("url", "/v1/chat/completions"))
    if input_field is None:
        raise ValueError(f"field 'url': {obj.get('url')!r} is not one of {sorted(URLS)}")
    body = obj.get("body")
    if not isinstance(body, dict):
        raise ValueError("field 'body': expected an object")  # noqa: TRY004 (bad data, reported per line)
    unknown = set(body) - set(_SAMPLING) - _OTHER
    if unknown:
        raise ValueError(f"field 'body': unsupported parameter(s) {sorted(unknown)}")
    sampling = {ours: body[theirs] for theirs, ours in _SAMPLING.items() if body.get(theirs) is not None}
    if isinstance(sampling.get("stop"), str):
        sampling["stop"] = [sampling["stop"]]
    return TeacherRequest.model_validate(
        {
            "id": str(obj["custom_id"]),
            input_field: body.get(input_field),
            "sampling": sampling,
            "response_schema": _schema(body.get("response_format")),
            "template_version": "openai-batch",
        }
    )


def batch_output_line(req: TeacherRequest, res: TeacherResult | None, model_id: str) -> dict:
    """The Batch API output line for one request and its stored result (None: never answered)."""
    key = req.key(model_id)
    base = {"id": f"batch_req_{key[:24]}", "custom_id": req.id}
    if res is None or not res.ok:
        code = res.error_type if res is not None else "missing"
        message = res.error if res is not None else "no result in the store"
        return {**base, "response": None, "error": {"code": code, "message": message}}
    chat = req.messages is not None
    choices = [
        (
            {"index": i, "message": {"role": "assistant", "content": c.text}}
            if chat
            else {"index": i, "text": c.text}
        )
        | {"finish_reason": c.finish_reason}
        for i, c in enumerate(res.choices)
    ]
    usage = {
        "prompt_tokens": res.prompt_tokens,
        "completion_tokens": res.completion_tokens,
        "total_tokens": (res.prompt_tokens or 0) + (res.completion_tokens or 0),
    }
    body = {
        "id": key,
        "object": "chat.completion" if chat else "text_completion",
        "model": res.model_id,
        "choices": choices,
        "usage": usage,
    }
    return {**base, "response": {"status_code": 200, "request_id": key, "body": body}, "error": None}
