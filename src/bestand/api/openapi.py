"""The OpenAPI document of the lookup API, built from the same pydantic models it serves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bestand.api.models import (
    IDENTIFIER_PARAMS,
    BatchClassificationRequest,
    BatchClassificationResponse,
    BatchLookupRequest,
    BatchLookupResponse,
    CampaignReport,
    ErrorResponse,
    LookupAnswer,
    OrderClassification,
    PersonExplanation,
)

_REF = "#/components/schemas/{model}"


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


_ERRORS = {
    "400": _json(ErrorResponse, "The request is malformed; `detail` says how."),
    "401": _json(ErrorResponse, "No valid API key."),
    "503": _json(ErrorResponse, "Redis is not reachable; retry later."),
}


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document served at ``/openapi.json``."""
    params = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "Give exactly one identifier.",
        }
        for name in IDENTIFIER_PARAMS
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "bestand lookup API",
            "version": version,
            "description": "Is this an existing customer? Answers by any identifier, in about "
            "a millisecond.",
        },
        "components": {
            "schemas": _schemas(
                LookupAnswer, BatchLookupRequest, BatchLookupResponse, ErrorResponse
            ),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/v1/lookup": {
                "get": {
                    "operationId": "lookup",
                    "summary": "Look up one person by one identifier.",
                    "parameters": params,
                    "responses": {"200": _json(LookupAnswer, "The answer."), **_ERRORS},
                },
                "post": {
                    "operationId": "lookupBatch",
                    "summary": "Look up many identifiers at once.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(BatchLookupRequest)}},
                    },
                    "responses": {
                        "200": _json(BatchLookupResponse, "One item per identifier, in order."),
                        "413": _json(ErrorResponse, "Too many identifiers or too large a body."),
                        **_ERRORS,
                    },
                },
            },
            "/v1/persons/{person_id}/explain": {
                "get": {
                    "operationId": "explainPerson",
                    "summary": "Why identifiers belong to one person (hashed identifiers only).",
                    "parameters": [
                        {
                            "name": "person_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json(PersonExplanation, "Identifiers and history."),
                        "404": _json(ErrorResponse, "No such person."),
                        **_ERRORS,
                    },
                }
            },
            "/v1/reports/campaigns": {
                "get": {
                    "operationId": "campaignReport",
                    "summary": "Orders and net revenue from new vs existing customers per day and "
                    "campaign, affiliate, channel and coupon.",
                    "parameters": [
                        {
                            "name": "from",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "format": "date"},
                        },
                        {
                            "name": "to",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "format": "date"},
                        },
                    ],
                    "responses": {"200": _json(CampaignReport, "The report."), **_ERRORS},
                }
            },
            "/v1/orders/classification": {
                "post": {
                    "operationId": "orderClassificationBatch",
                    "summary": "Classifications of many orders (commission validation).",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": _ref(BatchClassificationRequest)}
                        },
                    },
                    "responses": {
                        "200": _json(BatchClassificationResponse, "One item per order, in order."),
                        "413": _json(ErrorResponse, "Too many orders or too large a body."),
                        **_ERRORS,
                    },
                }
            },
            "/v1/orders/{order_id}/classification": {
                "get": {
                    "operationId": "orderClassification",
                    "summary": "New or existing customer at the time of the order, with changes.",
                    "parameters": [
                        {
                            "name": "order_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json(OrderClassification, "The classification."),
                        "404": _json(ErrorResponse, "No such order."),
                        **_ERRORS,
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness: the process answers.",
                    "security": [],
                    "responses": {"200": {"description": "Alive."}},
                }
            },
            "/ready": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: Redis answers.",
                    "security": [],
                    "responses": {
                        "200": {"description": "Ready."},
                        "503": _json(ErrorResponse, "Redis is not reachable."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics of this API process (text exposition format).",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Request latency by endpoint and status.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
    }
