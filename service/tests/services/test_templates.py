"""Templates file validation (errors name the bad template) and rendering."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from app.core.config import Settings
from app.errors import InvalidRequest
from app.main import create_app
from app.services.templates import TemplateConfigError, load_templates, parse_templates

GOOD = """
templates:
  ok:
    version: 1
    messages: [{role: user, content: "hi {{ name }}"}]
    variables: {name: }
"""


def test_a_valid_file_loads() -> None:
    store = parse_templates(GOOD)

    assert store.get("ok").render({"name": "Ada"}) == [{"role": "user", "content": "hi Ada"}]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '    messages: [{role: user, content: "hi {{ who }}"}]\n',
            "template 'broken': messages.0.content: placeholder 'who' is not declared in variables",
        ),
        (
            '    variables: {extra: }\n    messages: [{role: user, content: "hi"}]\n',
            "template 'broken': variables: extra declared but never used",
        ),
        (
            '    messages: [{role: robot, content: "hi"}]\n',
            "template 'broken': messages.0.role: Input should be",
        ),
        ("    messages: []\n", "template 'broken': messages: List should have at least 1 item"),
        (
            '    colour: red\n    messages: [{role: user, content: "hi"}]\n',
            "template 'broken': colour: Extra inputs are not permitted",
        ),
        (
            '    parameters: {temperature: 5}\n    messages: [{role: user, content: "hi"}]\n',
            "template 'broken': parameters.temperature: Input should be less than or equal to 2",
        ),
        (
            '    messages: [{role: user, content: "hi"}]\n',
            "template 'broken': version: Field required",
        ),
    ],
)
def test_an_invalid_template_is_rejected_with_its_name_and_field(body: str, expected: str) -> None:
    version = "" if "Field required" in expected else "    version: 1\n"
    text = GOOD + "  broken:\n" + version + body

    with pytest.raises(TemplateConfigError) as error:
        parse_templates(text, "templates.yaml")

    assert str(error.value).startswith("templates.yaml: ")
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("templates:\n  a: {version: 1}\n  a: {version: 2}\n", "duplicate key 'a' at line 3"),
        ("templates:\n  'bad name!': {version: 1}\n", "template name 'bad name!'"),
        ("other: 1\n", "expected one top-level key 'templates'"),
        ("templates: [1, 2]\n", "'templates' must map template names"),
        ("templates:\n  t: [\n", "not valid YAML"),
    ],
)
def test_file_level_errors(text: str, expected: str) -> None:
    with pytest.raises(TemplateConfigError, match="x.yaml: .*" + expected.replace("(", r"\(")):
        parse_templates(text, "x.yaml")


def test_missing_file_and_no_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateConfigError, match="cannot read"):
        load_templates(tmp_path / "absent.yaml")
    assert load_templates(None).templates == {}


def test_the_app_refuses_to_start_with_a_bad_template(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text("templates:\n  greet:\n    version: 1\n    messages: [{role: user}]\n")
    settings = Settings(
        upstream_api_key=SecretStr("sk-test-unused"),
        redis_url=SecretStr("redis://127.0.0.1:9/0"),
        database_url=SecretStr("postgresql://x:y@127.0.0.1:9/z"),
        templates_file=path,
    )

    with pytest.raises(TemplateConfigError, match=r"template 'greet': messages\.0\.content"):
        create_app(settings)


def test_rendering_errors_name_the_variable() -> None:
    template = parse_templates(
        """
templates:
  t:
    version: 1
    variables: {a: , b: {default: B, max_length: 3}}
    messages: [{role: user, content: "{{a}} {{ b }}"}]
"""
    ).get("t")

    assert template.render({"a": "A"})[0]["content"] == "A B"
    for values, param in (
        ({}, "variables.a"),
        ({"a": "A", "c": "C"}, "variables.c"),
        ({"a": "A", "b": "long"}, "variables.b"),
    ):
        with pytest.raises(InvalidRequest) as error:
            template.render(values)
        assert error.value.param == param
