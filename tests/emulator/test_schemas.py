"""Emulator responses validate against Twilio's official OpenAPI schemas and the v1 reference."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from sync.emulator import Emulator
from sync.emulator.formats import parse_rfc2822, parse_rfc3339

from .helpers import LEGACY_LIST, REFERENCE, get_json, legacy_message

SPEC_URI = "urn:twilio-api-v2010-messages"


@pytest.fixture(scope="module")
def v2010() -> dict[str, Any]:
    return json.loads((REFERENCE / "twilio_api_v2010_messages.json").read_text())


@pytest.fixture(scope="module")
def v1() -> dict[str, Any]:
    return json.loads((REFERENCE / "twilio_comms_v1_messages.json").read_text())


def oas_validator(spec: dict[str, Any], *path: str) -> OAS30Validator:
    """A validator for the schema at `path` in the spec; its `#/components/...` refs resolve in the spec."""
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4))
    pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in path)
    return OAS30Validator({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=registry)


def check_rfc2822_dates(message: dict) -> None:
    for name in ("date_created", "date_sent", "date_updated"):
        value = message[name]
        assert value is None or (re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", value) and parse_rfc2822(value)), value


async def test_a_list_page_validates_against_list_message_response(http, v2010):
    """A full legacy page (every awkward record included) matches the official ListMessageResponse."""
    path = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
    validator = oas_validator(v2010, "paths", path, "get", "responses", "200", "content", "application/json", "schema")
    status, page = await get_json(http, LEGACY_LIST, {"PageSize": "1000"})
    assert status == 200 and len(page["messages"]) == 400
    validator.validate(page)
    for message in page["messages"]:
        check_rfc2822_dates(message)
        assert message["api_version"] == "2010-04-01"
        assert isinstance(message["num_segments"], str) and isinstance(message["num_media"], str)
        assert message["price"] is None or re.fullmatch(r"-\d+\.\d{5}", message["price"])
        assert message["price_unit"] == "USD"


async def test_a_fetched_message_validates_against_the_message_schema(http, emu: Emulator, v2010):
    """GET .../Messages/{Sid}.json matches api.v2010.account.message, with all 20 properties (+ tags)."""
    schema = v2010["components"]["schemas"]["api.v2010.account.message"]
    validator = oas_validator(v2010, "components", "schemas", "api.v2010.account.message")
    for listed in emu.legacy_payloads()[:40]:
        status, message = await get_json(http, legacy_message(listed["sid"]))
        assert status == 200
        validator.validate(message)
        assert set(message) == set(schema["properties"]) | {"tags"}


async def test_error_bodies_validate_against_x_twilio_error(http, v2010):
    """The legacy 400 and 404 bodies match the borrowed x.twilio_error schema, every field present."""
    schema = v2010["components"]["schemas"]["x.twilio_error"]
    validator = oas_validator(v2010, "components", "schemas", "x.twilio_error")
    for url, params in ((LEGACY_LIST, {"PageSize": "5000"}), (legacy_message("SM" + "f" * 32), None)):
        status, body = await get_json(http, url, params)
        validator.validate(body)
        assert set(body) == set(schema["properties"]) and body["status"] == status


def v1_message_schema(v1: dict[str, Any]) -> dict[str, Any]:
    """What the transcribed v1 reference pins down for a list item: required keys, id pattern, status enum."""
    schemas = v1["schemas"]
    message = schemas["Message"]
    nullable_time = {"type": ["string", "null"]}
    return {
        "type": "object",
        "required": message["required_MessageMetadata"],
        "properties": {
            "id": {"type": "string", "pattern": schemas["MessageId"]["pattern"]},
            "status": {"enum": schemas["MessageStatus"]["enum"]},
            "tags": {"type": "object", "maxProperties": 10, "additionalProperties": {"type": "string"}},
            "to": {"type": "array", "minItems": 1},
            "related": {"type": "array"},
            "from": {"type": "object", "required": ["address", "channel"]},
            "createdAt": {"type": "string"},
            "updatedAt": {"type": "string"},
            "scheduledFor": nullable_time,
            "deletedAt": nullable_time,
        },
    }


def v1_operation_schema(v1: dict[str, Any]) -> dict[str, Any]:
    schemas = v1["schemas"]
    stats = schemas["MessageOperationStats"]["properties"]
    return {
        "type": "object",
        "required": schemas["MessageOperation"]["required"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": schemas["OperationId"]["pattern"]},
            "status": {"enum": schemas["CommunicationOperationStatus"]["enum"]},
            "stats": {
                "type": "object",
                "required": list(stats),
                "additionalProperties": False,
                "properties": {name: {"type": "integer", "minimum": 0} for name in stats},
            },
            "createdAt": {"type": "string"},
            "updatedAt": {"type": "string"},
        },
    }


async def test_v1_list_items_match_the_v1_reference(http, emu: Emulator, v1):
    """Every v1 list item has the required MessageMetadata keys, a valid id, a known status, RFC 3339 times."""
    validator = Draft202012Validator(v1_message_schema(v1))
    status, page = await get_json(http, "/v1/Messages", {"pageSize": "1000"})
    assert status == 200 and len(page["messages"]) == 400
    assert set(page) == {"messages", "pagination"} and set(page["pagination"]) == {"next", "self"}
    sender = re.compile(v1["schemas"]["SenderId"]["pattern"])
    for message in page["messages"]:
        validator.validate(message)
        for name in ("createdAt", "updatedAt", "scheduledFor", "deletedAt"):
            assert message[name] is None or parse_rfc3339(message[name]) is not None, message[name]
        agent = message["to"][0] if message["status"] == "INBOUND" else message["from"]
        assert agent["channel"] in v1["schemas"]["MessageSenderChannel"]["enum"]
        assert sender.match(agent["senderId"])


async def test_v1_operations_match_the_v1_reference(http, v1):
    """Every Operation has exactly the documented keys and stats counters, with a valid id and status."""
    validator = Draft202012Validator(v1_operation_schema(v1))
    status, page = await get_json(http, "/v1/Messages/Operations", {"pageSize": "1000"})
    assert status == 200 and page["operations"]
    for operation in page["operations"]:
        validator.validate(operation)
        assert parse_rfc3339(operation["createdAt"]) and parse_rfc3339(operation["updatedAt"])


async def test_v1_error_bodies_have_the_twilio_errors_shape(http):
    """400 and 404 bodies are {"errors": [{code, message, info_url, context}]}."""
    for url, params in (("/v1/Messages", {"pageSize": "0"}), ("/v1/Messages/comms_message_01h2xcejqtf2nbrexx3vqjhp41", None)):
        status, body = await get_json(http, url, params)
        assert status in (400, 404)
        assert list(body) == ["errors"] and len(body["errors"]) == 1
        assert list(body["errors"][0]) == ["code", "message", "info_url", "context"]
