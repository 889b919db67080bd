"""Frozen-dataclass configs and the ``key=value`` overrides the CLI maps onto them."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable

from segue.errors import InputError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string"}


def _coerce(name: str, text: str, kind):
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if text.lower() in ("none", "null", ""):
            return None
        kind = args[0]
    if kind is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise InputError(f"setting {name}={text!r}: expected true or false.")
    if kind in _KIND_NAMES:
        try:
            return kind(text)
        except ValueError:
            raise InputError(f"setting {name}={text!r}: expected {_KIND_NAMES[kind]}.") from None
    raise InputError(f"setting {name}: values of type {kind} cannot be set from the command line.")


def apply_overrides(config, overrides: Iterable[str] | dict | None):
    """Return ``config`` with ``key=value`` strings (or a dict) applied; unknown keys are an error."""
    if not overrides:
        return config
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes = {}
    items = overrides.items() if isinstance(overrides, dict) else (_split(o) for o in overrides)
    for key, value in items:
        key = key.replace("-", "_")
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise InputError(f"unknown setting {key!r} for {type(config).__name__}; known settings: {known}.")
        changes[key] = _coerce(key, value, hints[key]) if isinstance(value, str) else value
    return dataclasses.replace(config, **changes)


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise InputError(f"setting {item!r} should look like key=value.")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def config_from_dict(cls, data: dict):
    """Build a config dataclass from saved JSON, ignoring keys this version does not know."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
