"""The one check for names that become parts of a lake path: model names, versions, run ids."""

from __future__ import annotations

import re

from actionrec.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_MODEL_NAME = "actionrec"


def check_name(kind: str, value: object) -> str:
    """``value`` when it is safe as one path part: letters, digits, '.', '_', '-', at most 128
    characters, starting with a letter or digit, and no '..'. ``kind`` names it in the error."""
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        raise ConfigError(f"invalid {kind} {value!r}: use letters, digits, '.', '_' and '-' (at most 128)")
    return value
