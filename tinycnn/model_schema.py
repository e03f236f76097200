"""The JSON schema of a model file's ``architecture`` entry, and the small checker that applies it.

:data:`SCHEMA` is written in (a subset of) JSON Schema, the same text that
``docs/model_file_format.md`` shows (a test keeps the two equal). :func:`check` walks a
parsed JSON value against it and raises :class:`SchemaError` naming *where* the value is
wrong (``layers[2].config``, ``meta.input_shape[1]``) and *how*. Only the keywords used
below are implemented: ``type``, ``enum``, ``required``, ``properties``,
``additionalProperties``, ``propertyNames``, ``items``, ``minItems``, ``minimum``,
``pattern``, ``$ref``.

:func:`to_json` turns what a user put into ``model.meta`` (NumPy scalars and arrays, tuples)
into plain JSON values, or raises ``TypeError`` naming the key that cannot be stored.
"""
import re

import numpy as np

__all__ = ["SCHEMA", "SchemaError", "check", "to_json"]

IDENTIFIER = "^[A-Za-z_][A-Za-z0-9_]*$"

SCHEMA = {
    "type": "object",
    "required": ["format", "tinycnn_version", "layers", "meta"],
    "additionalProperties": False,
    "properties": {
        "format": {"type": "integer", "enum": [1, 2]},
        "tinycnn_version": {"type": "string"},
        "layers": {"type": "array", "items": {"$ref": "#/definitions/layer"}},
        "meta": {"$ref": "#/definitions/meta"},
    },
    "definitions": {
        "layer": {
            "type": "object",
            "required": ["class", "config"],
            "additionalProperties": False,
            "properties": {
                "class": {"type": "string", "pattern": IDENTIFIER},
                "config": {"type": "object", "propertyNames": {"pattern": IDENTIFIER}},
                "children": {
                    "type": "object",
                    "propertyNames": {"pattern": IDENTIFIER},
                    "additionalProperties": {"type": "array", "items": {"$ref": "#/definitions/layer"}},
                },
            },
        },
        "meta": {
            "type": "object",
            "properties": {
                "input_shape": {"type": ["array", "null"], "minItems": 1,
                                "items": {"type": "integer", "minimum": 1}},
                "mean": {"type": ["number", "array"], "minItems": 1, "items": {"type": "number"}},
                "std": {"type": ["number", "array"], "minItems": 1, "items": {"type": "number"}},
                "class_names": {"type": "array", "items": {"type": "string"}},
                "dataset": {"type": "string"},
                "seed": {"type": ["integer", "null"]},
                "samples": {"type": "integer", "minimum": 1},
                "threshold": {"type": "number"},
                "standardize": {"type": "string"},
            },
        },
    },
}


class SchemaError(ValueError):
    """A JSON value does not fit :data:`SCHEMA`; the message names the place and the rule."""


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
          int: "an integer", float: "a number", type(None): "null"}


def _describe(value):
    text = repr(value)
    return f"{_NAMES.get(type(value), type(value).__name__)} ({text[:60] + '...' if len(text) > 60 else text})"


def check(value, schema=SCHEMA, where="architecture", root=SCHEMA):
    """Raise :class:`SchemaError` unless ``value`` fits ``schema``; ``where`` names the place."""
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](value) for t in types):
            raise SchemaError(f"{where} must be {' or '.join(types)}, got {_describe(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where} must be one of {schema['enum']}, got {_describe(value)}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        raise SchemaError(f"{where} must match {schema['pattern']}, got {value[:60]!r}")
    if _TYPES["number"](value) and "minimum" in schema and not value >= schema["minimum"]:
        raise SchemaError(f"{where} must be >= {schema['minimum']}, got {value!r}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise SchemaError(f"{where} must have at least {schema['minItems']} item(s), got []")
        if "items" in schema:
            for k, item in enumerate(value):
                check(item, schema["items"], f"{where}[{k}]", root)
    if isinstance(value, dict):
        _check_object(value, schema, where, root)


def _check_object(value, schema, where, root):
    props = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in value:
            raise SchemaError(f"{where} lacks the key {key!r}")
    for key, item in value.items():
        if "propertyNames" in schema:
            check(key, schema["propertyNames"], f"{where} key {key[:60]!r}", root)
        if key in props:
            check(item, props[key], f"{where}.{key}", root)
        elif schema.get("additionalProperties") is False:
            raise SchemaError(f"{where} has an unknown key {key[:60]!r} (allowed: {', '.join(sorted(props))})")
        elif isinstance(schema.get("additionalProperties"), dict):
            check(item, schema["additionalProperties"], f"{where}.{key}", root)


def to_json(value, where):
    """``value`` with NumPy scalars/arrays and tuples turned into JSON types; TypeError names ``where``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return int(value) if isinstance(value, int) else float(value)
    if isinstance(value, np.generic) and value.dtype.kind in "biufU":
        return to_json(value.item(), where)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufU":
        return to_json(value.tolist(), where)
    if isinstance(value, (list, tuple)):
        return [to_json(item, f"{where}[{k}]") for k, item in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, np.str_):
                key = str(key)
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r} ({type(key).__name__}); "
                                "model files hold only string keys")
            out[key] = to_json(item, f"{where}[{key!r}]")
        return out
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    raise TypeError(f"{where} has type {type(value).__name__}{f' (dtype kind {kind!r})' if kind else ''}, "
                    "which a model file cannot hold (it stores JSON: numbers, strings, booleans, None, "
                    "lists and dicts; NumPy scalars and numeric/string arrays are converted)")

