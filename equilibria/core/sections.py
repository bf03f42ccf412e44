"""Typed config sections: the base every section derives from, core or method, and its value types.

A section is a pydantic model that refuses unknown keys. Its fields use the types below, which
take what a YAML file or ``--set`` gives and nothing looser: integers are not floats or booleans,
``true`` is not ``"yes"``, a number written ``1e-3`` (a string to YAML 1.1) is a number, and
infinities and NaN are refused. ``option`` declares a field with its default, its description
(docs/CONFIG.md is generated from them) and its bounds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field, Strict


class ConfigError(ValueError):
    """A configuration key, value or file that is not allowed."""


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(value: Any) -> Any:
    """Numbers pass; a string that spells a number becomes one (YAML 1.1 reads ``1e-3`` as a string)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return value


Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Float = Annotated[float, BeforeValidator(_number), AllowInfNan(False)]


def option(default: Any, description: str, **bounds: Any) -> Any:
    """A field: its default, what it means (one line of docs/CONFIG.md) and its bounds (ge, gt, le, lt)."""
    return Field(default, description=description, **bounds)


def section(factory: Any, description: str) -> Any:
    """A nested section: built by ``factory`` when the file does not give it."""
    return Field(default_factory=factory, description=description)


class Section(BaseModel):
    """A config section: unknown keys are errors; values are checked once, when it is built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodConfig(Section):
    """A method's section: off unless ``enabled``."""

    enabled: Bool = option(False, "switch the method on")
