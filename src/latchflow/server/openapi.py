"""The OpenAPI document, finished with what FastAPI cannot know from the routes.

- Operation ids are the routes' names (``list_flows``, ``get_run``): what a generated client
  calls its methods.
- A parameter left out is absent, never null: ``str | None`` is documented as a string.
- A 422 answer carries the app's ``ValidationErrorBody`` (``errors.py`` answers FastAPI's own
  validation errors in that shape), never FastAPI's ``HTTPValidationError``.
- A flow document's request body is the flow JSON Schema with the installed triggers and actions
  (what ``latchflow schema`` prints), and a connection's vendor one of the installed vendors.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel

from latchflow.flows.document import full_schema
from latchflow.plugin.host import Registry
from latchflow.server.schemas import ValidationErrorBody

REF = "#/components/schemas/"
FLOW_DOCUMENT_OPERATIONS = ("save_flow", "put_flow")
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute) -> str:
    """A route's operation id: its name, unique in the app (FastAPI warns of a duplicate)."""
    return route.name


def refine(document: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """Finish the document FastAPI built (in place), for the installed plugins."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    invalid_body = {"application/json": {"schema": _component(schemas, ValidationErrorBody)}}
    for operation in _operations(document):
        for parameter in operation.get("parameters", []):
            parameter["schema"] = _without_null(parameter.get("schema", {}))
        invalid = operation.get("responses", {}).get("422")
        if invalid is not None:
            invalid["content"] = invalid_body
        if operation.get("operationId") in FLOW_DOCUMENT_OPERATIONS:
            body = operation["requestBody"]["content"]["application/json"]
            body["schema"] = {"$ref": REF + "FlowDocument"}
    if any(op.get("operationId") in FLOW_DOCUMENT_OPERATIONS for op in _operations(document)):
        schemas["FlowDocument"] = flow_document_schema(registry)
    vendor = schemas.get("ConnectionIn", {}).get("properties", {}).get("vendor")
    if vendor is not None:
        vendor["enum"] = sorted(registry.vendors)
        vendor["description"] = "An installed vendor (GET /api/catalog lists them)"
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return document


def flow_document_schema(registry: Registry) -> dict[str, Any]:
    """The flow JSON Schema as an OpenAPI component (without its own ``$schema`` and ``$id``)."""
    schema = {k: v for k, v in full_schema(registry).items() if k not in ("$schema", "$id")}
    schema["description"] = (
        "A flow document. The server also checks what JSON Schema cannot state (each step's"
        " references and expressions, a version higher than the stored one) and answers 422"
        " with the JSON path of each problem."
    )
    return schema


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` as X, keeping the keywords beside ``anyOf`` (description, pattern)."""
    choices = schema.get("anyOf", [])
    kept = [choice for choice in choices if choice != {"type": "null"}]
    if len(kept) != 1 or len(choices) != 2:
        return schema
    return {**kept[0], **{k: v for k, v in schema.items() if k != "anyOf"}}


def _component(schemas: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    """A reference to a model's schema, added to the components if no route added it."""
    if model.__name__ not in schemas:
        schema = model.model_json_schema(ref_template=REF + "{model}", mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {"$ref": REF + model.__name__}


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for methods in document.get("paths", {}).values()
        for operation in methods.values()
        if isinstance(operation, dict)
    ]
