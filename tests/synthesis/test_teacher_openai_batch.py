"""`python -m synthesis generate --requests` takes the OpenAI Batch API's JSONL (what vLLM's run_batch and
hosted batch APIs use) and writes results in the matching output format; run against the real llama.cpp
server."""

from __future__ import annotations

import json

import pytest
import yaml

from synthesis.teacher.openai_batch import request_from_batch_line

SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 5}},
    "required": ["score"],
}


def _line(custom_id: str, body: dict, url: str = "/v1/chat/completions") -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": {"model": "any", **body}}


def test_batch_lines_become_teacher_requests():
    chat = request_from_batch_line(
        _line(
            "a",
            {
                "messages": [{"role": "user", "content": "Rate: photosynthesis."}],
                "max_tokens": 12,
                "temperature": 0.5,
                "stop": "\n",
                "seed": 3,
                "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}},
            },
        )
    )
    assert chat.id == "a" and chat.messages[0].content == "Rate: photosynthesis."
    assert (chat.sampling.max_tokens, chat.sampling.temperature, chat.sampling.stop, chat.sampling.seed) == (
        12,
        0.5,
        ("\n",),
        3,
    )
    assert chat.response_schema == SCHEMA
    comp = request_from_batch_line(
        _line("b", {"prompt": "Once upon", "max_completion_tokens": 5}, url="/v1/completions")
    )
    assert comp.prompt == "Once upon" and comp.messages is None and comp.sampling.max_tokens == 5
    obj = request_from_batch_line(
        _line(
            "c", {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}
        )
    )
    assert obj.response_schema == {"type": "object"}


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ({**_line("a", {"messages": []}), "method": "GET"}, "field 'method': 'GET'"),
        (_line("a", {"messages": [{"role": "user", "content": "x"}]}, url="/v1/embeddings"), "field 'url'"),
        (
            _line("a", {"messages": [{"role": "user", "content": "x"}], "logprobs": True}),
            "unsupported parameter(s) ['logprobs']",
        ),
        (
            _line("a", {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}),
            "response_format: type 'xml'",
        ),
    ],
)
def test_bad_batch_lines_name_the_field(line, needle):
    with pytest.raises(ValueError) as err:
        request_from_batch_line(line)
    assert needle in str(err.value)


def test_generate_cli_reports_file_and_line_of_a_bad_batch_line(tmp_path, capsys):
    from synthesis.cli import main

    f = tmp_path / "batch.jsonl"
    f.write_text(
        json.dumps(_line("a", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})) + "\n"
    )
    assert main(["generate", "--requests", str(f), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{f}:1" in err and "sampling.max_tokens" in err


def test_batch_file_in_and_batch_results_out_on_the_real_server(llama_server, tmp_path):
    from synthesis.cli import main

    lines = [
        _line(
            "chat-1",
            {
                "messages": [{"role": "user", "content": "Define entropy in one sentence."}],
                "max_tokens": 12,
                "temperature": 0,
            },
        ),
        _line(
            "json-1",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": 'Rate the educational value of "The water cycle '
                        'moves water between sea, air and land" from 0 to 5.',
                    }
                ],
                "max_tokens": 16,
                "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}},
            },
        ),
        _line("text-1", {"prompt": "The capital of France is", "max_tokens": 4}, url="/v1/completions"),
    ]
    requests = tmp_path / "batch.jsonl"
    requests.write_text("".join(json.dumps(x) + "\n" for x in lines))
    config = tmp_path / "teacher.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "backend": {
                    "kind": "openai_http",
                    "base_url": llama_server.base_url,
                    "model": llama_server.model_alias,
                    "structured_output": "json_object_schema",
                }
            }
        )
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "generate",
                "--requests",
                str(requests),
                "--output",
                str(out),
                "--config",
                str(config),
                "--output-format",
                "openai_batch",
                "--no-progress",
            ]
        )
        == 0
    )
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["custom_id"] for r in rows] == ["chat-1", "json-1", "text-1"]
    for r in rows:
        assert r["error"] is None and r["response"]["status_code"] == 200 and r["id"].startswith("batch_req_")
        body = r["response"]["body"]
        assert body["model"] == llama_server.model_alias and body["usage"]["completion_tokens"] > 0
    chat, structured, text = (r["response"]["body"] for r in rows)
    assert chat["object"] == "chat.completion" and chat["choices"][0]["message"]["content"].strip()
    assert 0 <= json.loads(structured["choices"][0]["message"]["content"])["score"] <= 5
    assert text["object"] == "text_completion" and text["choices"][0]["text"]
    # a rerun answers from the store and writes the same lines
    assert (
        main(
            [
                "generate",
                "--requests",
                str(requests),
                "--output",
                str(out),
                "--config",
                str(config),
                "--output-format",
                "openai_batch",
                "--no-progress",
            ]
        )
        == 0
    )
    assert [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()] == rows
