"""Frozen-dataclass configs, their range checks, and the ``key=value`` overrides the CLI maps onto them.

Every setting is checked in one place, :func:`check_settings`: its type, that a number is finite, and the
bounds or choices declared on the field with :func:`setting`::

    @dataclasses.dataclass(frozen=True)
    class MyConfig(ModelConfig):
        factors: int = setting(128, ge=1)
        weighting: str = setting("bm25", choices=("linear", "bm25"))

Configs built from defaults, ``--set key=value``, or a saved ``config.json`` all pass through it
(:class:`segue.models.base.ModelConfig` checks itself on construction; :func:`apply_overrides` and
:func:`config_from_dict` check again for configs that define their own ``__post_init__``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Iterable

from segue.errors import InputError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_BOUNDS = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
           "le": ("<=", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}


def setting(default, *, ge=None, gt=None, le=None, lt=None, choices: tuple | None = None):
    """A config field with its allowed range: bounds (``ge``/``gt``/``le``/``lt``) or ``choices``."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    return dataclasses.field(default=default, metadata={"bounds": bounds, "choices": choices})


def _kind(hint) -> tuple[type, bool]:
    """The base type of a field's annotation and whether ``None`` is allowed."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def _check_value(name: str, value, hint, field: dataclasses.Field) -> None:
    kind, optional = _kind(hint)
    if value is None:
        if optional:
            return
        raise InputError(f"setting {name}=None: expected {_KIND_NAMES.get(kind, kind)}.")
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    ok = {bool: isinstance(value, bool), int: is_int, str: isinstance(value, str),
          float: is_int or (isinstance(value, numbers.Real) and not isinstance(value, bool))}.get(kind, True)
    if not ok:
        raise InputError(f"setting {name}={value!r}: expected {_KIND_NAMES[kind]}.")
    if kind is float and not math.isfinite(value):
        raise InputError(f"setting {name}={value!r}: expected a finite number.")
    choices = field.metadata.get("choices")
    if choices is not None and value not in choices:
        raise InputError(f"setting {name}={value!r}: expected one of {', '.join(map(str, choices))}.")
    for key, bound in field.metadata.get("bounds", {}).items():
        symbol, holds = _BOUNDS[key]
        if not holds(value, bound):
            raise InputError(f"setting {name}={value!r}: must be {symbol} {bound}.")


def check_settings(config) -> None:
    """Raise :class:`InputError` naming the first setting of ``config`` of the wrong type or out of range."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        _check_value(field.name, getattr(config, field.name), hints.get(field.name, object), field)


def _coerce(name: str, text: str, hint):
    kind, optional = _kind(hint)
    if optional and text.lower() in ("none", "null", ""):
        return None
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
    """Return ``config`` with ``key=value`` strings (or a dict) applied and checked; unknown keys are an error."""
    if not overrides:
        check_settings(config)
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
    config = dataclasses.replace(config, **changes)
    check_settings(config)
    return config


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise InputError(f"setting {item!r} should look like key=value.")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def config_from_dict(cls, data: dict):
    """Build and check a config dataclass from saved JSON, ignoring keys this version does not know."""
    if not isinstance(data, dict):
        raise InputError(f"settings should be a JSON object, got {type(data).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    # a setting added after the model was saved takes the value that model was trained with, not today's default
    data = {**getattr(cls, "SAVED_BEFORE_IT_EXISTED", {}), **data}
    config = cls(**{k: v for k, v in data.items() if k in names})
    check_settings(config)
    return config
