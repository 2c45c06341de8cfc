"""``GET /v1/templates``: the prompt templates this service offers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.services.templates import TemplateStore

router = APIRouter(tags=["templates"])


@router.get("/v1/templates")
async def list_templates(request: Request) -> dict[str, Any]:
    templates: TemplateStore = request.app.state.templates
    return {
        "object": "list",
        "data": [
            {
                "name": t.name,
                "version": t.version,
                "description": t.description,
                "model": t.model,
                "parameters": t.parameters.model_dump(exclude_none=True),
                "variables": {
                    name: {"required": spec.default is None, "default": spec.default}
                    for name, spec in t.variables.items()
                },
                "messages": [m.model_dump() for m in t.messages],
            }
            for t in sorted(templates.templates.values(), key=lambda t: t.name)
        ],
    }
