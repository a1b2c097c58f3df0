"""Settings fields and their checks, written once: every settings dataclass declares its fields
with ``option`` (the help text the CLI shows with the default) and validates numbers with these
checks, so ``nan``, ``inf`` and out-of-range values are refused where they are parsed."""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any

from actionrec.errors import ConfigError


def option(default: Any, help: str, *, cli: bool = True, flag: str | None = None) -> Any:
    """A settings field with its help text (the CLI shows it with the default) and, when the field's
    name would not make the usual flag, the flag to use. A dict default is copied for each instance."""
    metadata = {"help": help, "cli": cli, "flag": flag}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def check_int(owner: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be an integer >= {minimum}, got {value!r}")


def check_positive_seconds(owner: str, name: str, value: Any) -> None:
    """A finite number of seconds > 0 (``nan``, ``inf`` and 0 are refused where they are parsed)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise ConfigError(f"{owner}.{name} must be a finite number of seconds > 0, got {value!r}")


def check_seconds_or_zero(owner: str, name: str, value: Any) -> None:
    """A finite number of seconds >= 0."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok:
        raise ConfigError(f"{owner}.{name} must be a finite number of seconds >= 0, got {value!r}")
