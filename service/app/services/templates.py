"""Prompt templates from a YAML file, validated when the service starts.

File format::

    templates:
      summarize:
        version: "3"                  # part of the cache key: bump it when you edit
        description: Summarise a text
        model: gpt-4o-mini            # optional, else the service's default model
        parameters: {temperature: 0, max_tokens: 200}   # defaults a request may override
        variables:
          text:                       # required
          tone: {default: neutral}    # optional, with a default
        messages:
          - {role: system, content: "You are concise."}
          - {role: user, content: "Summarise in a {{ tone }} tone:\\n{{ text }}"}

Placeholders are ``{{ name }}``. Substitution is plain text replacement, done once: a
variable's value is never itself expanded, and nothing can reach Python attributes (unlike
``str.format``). Every placeholder must be declared and every declared variable used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import InvalidRequest
from app.services.sampling import SamplingFields

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_VARIABLE_CHARS = 100_000


class TemplateConfigError(ValueError):
    """The templates file is unusable; the message names the file and the bad template."""


class TemplateParameters(SamplingFields):
    """Sampling defaults a template may set; the request's own values win."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    response_format: dict[str, Any] | None = None


class VariableSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str | None = None
    max_length: int = Field(default=MAX_VARIABLE_CHARS, ge=1)


class TemplateMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "developer", "user", "assistant"]
    content: str = Field(min_length=1)


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    model: str | None = None
    parameters: TemplateParameters = TemplateParameters()
    variables: dict[str, VariableSpec] = {}
    messages: list[TemplateMessage] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("variables", mode="before")
    @classmethod
    def _bare_name_is_required(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    def check_placeholders(self) -> None:
        used: set[str] = set()
        for index, message in enumerate(self.messages):
            for name in _PLACEHOLDER.findall(message.content):
                if name not in self.variables:
                    raise ValueError(
                        f"messages.{index}.content: placeholder '{name}' is not declared "
                        "in variables"
                    )
                used.add(name)
        unused = sorted(set(self.variables) - used)
        if unused:
            raise ValueError(f"variables: {', '.join(unused)} declared but never used")

    def render(self, values: dict[str, str]) -> list[dict[str, str]]:
        """Messages with the variables filled in; 400 naming the variable when one is wrong."""
        for name in values:
            if name not in self.variables:
                raise InvalidRequest(
                    f"Template '{self.name}' has no variable '{name}'.",
                    param=f"variables.{name}",
                )
        resolved: dict[str, str] = {}
        for name, spec in self.variables.items():
            value = values.get(name, spec.default)
            if value is None:
                raise InvalidRequest(
                    f"Template '{self.name}' needs variable '{name}'.", param=f"variables.{name}"
                )
            if len(value) > spec.max_length:
                raise InvalidRequest(
                    f"Variable '{name}' is longer than {spec.max_length} characters.",
                    param=f"variables.{name}",
                )
            resolved[name] = value
        return [
            {
                "role": m.role,
                "content": _PLACEHOLDER.sub(lambda match: resolved[match.group(1)], m.content),
            }
            for m in self.messages
        ]


@dataclass(frozen=True, slots=True)
class TemplateStore:
    templates: dict[str, PromptTemplate]

    @classmethod
    def empty(cls) -> TemplateStore:
        return cls({})

    def get(self, name: str) -> PromptTemplate:
        template = self.templates.get(name)
        if template is None:
            raise InvalidRequest(f"Unknown template '{name}'.", param="template")
        return template


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _mapping_without_duplicates(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise TemplateConfigError(f"duplicate key '{key}' at line {line}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)


def _describe(error: ValidationError) -> str:
    first = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def parse_templates(text: str, source: str = "<templates>") -> TemplateStore:
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  # safe loader subclass
    except TemplateConfigError as exc:
        raise TemplateConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise TemplateConfigError(f"{source}: not valid YAML ({exc})") from None
    if document is None:
        return TemplateStore.empty()
    if not isinstance(document, dict) or set(document) != {"templates"}:
        raise TemplateConfigError(f"{source}: expected one top-level key 'templates'")
    entries = document["templates"] or {}
    if not isinstance(entries, dict):
        raise TemplateConfigError(f"{source}: 'templates' must map template names to templates")
    templates: dict[str, PromptTemplate] = {}
    for name, body in entries.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise TemplateConfigError(
                f"{source}: template name {name!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        if not isinstance(body, dict):
            raise TemplateConfigError(f"{source}: template '{name}': must be a mapping")
        try:
            template = PromptTemplate.model_validate({**body, "name": name})
            template.check_placeholders()
        except ValidationError as exc:
            raise TemplateConfigError(f"{source}: template '{name}': {_describe(exc)}") from None
        except ValueError as exc:
            raise TemplateConfigError(f"{source}: template '{name}': {exc}") from None
        templates[name] = template
    return TemplateStore(templates)


def load_templates(path: Path | None) -> TemplateStore:
    if path is None:
        return TemplateStore.empty()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_templates(text, str(path))
