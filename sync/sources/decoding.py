"""A record's JSON decoded straight into the fields its columns read, without a dict: how a new or
changed record of a stream whose columns read the record itself (legacy) is typed.

Pure, and only this: it knows msgspec and the fields' names and types, never a column, a page or
the store (base.py, which owns the row's layout, asks it for the struct)."""

from __future__ import annotations

from typing import Any

import msgspec


def record_struct(fields: dict[str, Any]) -> tuple[type, dict[str, str]]:
    """(a msgspec Struct of these JSON fields and types, each field's attribute name). Fields the
    JSON lacks are None; fields it has that are not named are skipped. Attributes are `a0`, `a1`...,
    since a field may be a Python keyword ("from"). The struct's `get(field)` is a dict's, for the
    few readers written for a dict; a field it lacks raises KeyError (a column the declaration
    missed, which tests/unit/test_sources.py would catch), never a silent None."""
    names = {f"a{i}": field for i, field in enumerate(fields)}
    attrs = {field: name for name, field in names.items()}

    def get(self: Any, field: str, default: Any = None) -> Any:
        return getattr(self, attrs[field])

    # gc=False: decoded JSON holds no cycles, and these live from one decode to one row.
    struct = msgspec.defstruct("Record", [(name, fields[field], None) for name, field in names.items()],
                               rename=names, namespace={"get": get}, gc=False)
    return struct, attrs


def decoder(struct: type) -> Any:
    """JSON text -> an instance of `struct`; msgspec.MsgspecError when a value does not fit its type."""
    return msgspec.json.Decoder(struct).decode


ERRORS = msgspec.MsgspecError
