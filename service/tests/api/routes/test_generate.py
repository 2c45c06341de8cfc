"""POST /v1/generate (prompt or template) and the seed's POST /generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MakeService, RunningService, parse_sse
from tests.fake_upstream import Behaviour, FakeUpstream

TEMPLATES = Path(__file__).parents[2] / "data" / "templates.yaml"


@pytest.fixture
def templated(make_service: MakeService) -> RunningService:
    return make_service(templates_file=TEMPLATES)


def test_prompt_returns_text_model_usage_cache_flag_and_request_id(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.push(Behaviour(reply="generated text", usage=(11, 3)))

    first = service.client.post("/v1/generate", json={"prompt": "hi", "temperature": 0})
    second = service.client.post("/v1/generate", json={"prompt": "hi", "temperature": 0})

    assert first.status_code == 200
    assert first.json() == {
        "id": first.headers["x-request-id"],
        "text": "generated text",
        "model": "model-a",
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
        "cached": False,
        "finish_reason": "stop",
    }
    assert second.json()["cached"] is True
    assert second.json()["text"] == "generated text"
    assert upstream.call_count == 1
    assert upstream.calls[0].body["messages"] == [{"role": "user", "content": "hi"}]


def test_prompt_with_system_message_and_sampling_fields(
    service: RunningService, upstream: FakeUpstream
) -> None:
    service.client.post(
        "/v1/generate",
        json={"prompt": "hi", "system": "be brief", "model": "model-b", "top_p": 0.3, "seed": 7},
    )

    body = upstream.calls[0].body
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (body["model"], body["top_p"], body["seed"]) == ("model-b", 0.3, 7)


def test_template_is_rendered_with_variables_and_its_defaults(
    templated: RunningService, upstream: FakeUpstream
) -> None:
    response = templated.client.post(
        "/v1/generate", json={"template": "summarize", "variables": {"text": "Long {{ tone }}"}}
    )

    assert response.status_code == 200
    body = upstream.calls[0].body
    assert body["messages"] == [
        {"role": "system", "content": "You are concise."},
        # A value is never expanded again: '{{ tone }}' inside it stays as written.
        {"role": "user", "content": "Summarise in a neutral tone:\nLong {{ tone }}"},
    ]
    assert (body["temperature"], body["max_tokens"]) == (0, 200)


def test_template_model_and_request_overrides(
    templated: RunningService, upstream: FakeUpstream
) -> None:
    templated.client.post(
        "/v1/generate",
        json={"template": "translate", "variables": {"text": "hi", "language": "fr"}},
    )
    templated.client.post(
        "/v1/generate",
        json={
            "template": "summarize",
            "variables": {"text": "x"},
            "temperature": 0.7,
            "model": "model-c",
        },
    )

    assert upstream.calls[0].body["model"] == "model-b"
    assert (upstream.calls[1].body["model"], upstream.calls[1].body["temperature"]) == (
        "model-c",
        0.7,
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"template": "summarize"}, "variables.text"),
        (
            {"template": "summarize", "variables": {"text": "x", "colour": "red"}},
            "variables.colour",
        ),
        (
            {"template": "translate", "variables": {"text": "x" * 51, "language": "de"}},
            "variables.text",
        ),
        ({"template": "nope"}, "template"),
        ({"prompt": "a", "template": "summarize"}, "prompt"),
        ({}, "prompt"),
        ({"prompt": "a", "variables": {"x": "y"}}, "variables"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "a", "colour": "red"}, "colour"),
    ],
)
def test_invalid_generate_requests_name_the_field(
    templated: RunningService, upstream: FakeUpstream, body: dict[str, object], param: str
) -> None:
    response = templated.client.post("/v1/generate", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert upstream.call_count == 0


def test_template_version_is_part_of_the_cache_key(
    make_service: MakeService, upstream: FakeUpstream, tmp_path: Path
) -> None:
    files = []
    for version in ("1", "2"):
        path = tmp_path / f"v{version}.yaml"
        path.write_text(
            "templates:\n"
            f"  greet:\n    version: '{version}'\n    parameters: {{temperature: 0}}\n"
            "    messages: [{role: user, content: hello}]\n"
        )
        files.append(path)
    name = "t-shared-scope"
    old = make_service(templates_file=files[0], service_name=name)
    new = make_service(templates_file=files[1], service_name=name)

    old.client.post("/v1/generate", json={"template": "greet"})
    old.client.post("/v1/generate", json={"template": "greet"})
    new.client.post("/v1/generate", json={"template": "greet"})

    assert upstream.call_count == 2  # same messages, new version: a new entry


def test_streamed_generate_sends_text_then_a_final_event(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.push(Behaviour(reply="stream of words", chunk_chars=5, usage=(9, 4)))

    response = service.client.post("/v1/generate", json={"prompt": "go", "stream": True})

    events, done = parse_sse(response.text)
    assert done
    request_id = response.headers["x-request-id"]
    assert [e["text"] for e in events[:-1]] == ["strea", "m of ", "words"]
    assert all(e["id"] == request_id for e in events)
    assert events[-1] == {
        "id": request_id,
        "text": "",
        "done": True,
        "model": "model-a",
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
        "cached": False,
        "finish_reason": "stop",
    }


def test_streamed_generate_reports_a_broken_stream(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.push(Behaviour(kind="cut", reply="never complete", cut_after=1))

    response = service.client.post("/v1/generate", json={"prompt": "go", "stream": True})

    events, done = parse_sse(response.text)
    assert not done
    assert events[-1]["error"]["code"] == "upstream_stream_interrupted"


def test_legacy_generate_keeps_the_seed_fields(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.push(Behaviour(reply="legacy answer"))

    response = service.client.post("/generate", json={"prompt": "old client", "max_tokens": 12})

    assert response.status_code == 200
    assert response.json() == {"response": "legacy answer"}
    assert upstream.calls[0].body["max_tokens"] == 12
    assert upstream.calls[0].body["messages"] == [{"role": "user", "content": "old client"}]
    assert service.client.post("/generate", json={"max_tokens": 1}).json()["error"]["param"] == (
        "prompt"
    )


def test_templates_are_listed(templated: RunningService) -> None:
    response = templated.client.get("/v1/templates")

    assert response.status_code == 200
    data = response.json()["data"]
    assert [t["name"] for t in data] == ["summarize", "translate"]
    summarize = data[0]
    assert summarize["version"] == "3"
    assert summarize["variables"] == {
        "text": {"required": True, "default": None},
        "tone": {"required": False, "default": "neutral"},
    }
    assert summarize["parameters"] == {"temperature": 0.0, "max_tokens": 200}
    assert data[1]["version"] == "1"  # an integer in YAML, text in the API
