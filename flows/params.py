"""What the flows' parameters are made of: typed training options (a typo is refused before any
work starts) and readable run names."""

from __future__ import annotations

import re
import typing
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from actionrec.training.config import TrainConfig


def _train_options_model() -> type[BaseModel]:
    hints = typing.get_type_hints(TrainConfig)
    spec: dict[str, Any] = {f.name: (hints[f.name] | None, None) for f in fields(TrainConfig)}
    return create_model("TrainOptions", __config__=ConfigDict(extra="forbid"),
                        __doc__="TrainConfig fields to change; unset ones keep TrainConfig's defaults.", **spec)


TrainOptions = _train_options_model()


def train_config(options: BaseModel | dict[str, Any] | None) -> TrainConfig:
    """The ``TrainConfig`` for a flow's ``train_options`` (only what was set; the rest are defaults)."""
    if options is None:
        return TrainConfig()
    given = options.model_dump(exclude_unset=True) if isinstance(options, BaseModel) else dict(options)
    return TrainConfig.from_options({k: v for k, v in given.items() if v is not None})


def slug(text: str, limit: int = 40) -> str:
    """The last part of a path or URI, safe in a run name: ``s3://b/archive/`` -> ``archive``."""
    last = [p for p in re.split(r"[/\\]", text.rstrip("/")) if p]
    part = re.sub(r"[^A-Za-z0-9_.-]+", "-", last[-1] if last else "source").strip("-.")
    return part[:limit] or "source"


def run_name(flow: str, about: str) -> str:
    return f"{flow}-{datetime.now(timezone.utc):%Y-%m-%d}-{slug(about)}"


def tag_run_name() -> str:
    from prefect.runtime import flow_run

    return run_name("tag", str(flow_run.parameters.get("source", "")))


def retrain_run_name() -> str:
    from prefect.runtime import flow_run

    return run_name("retrain", str(flow_run.parameters.get("model_name", "")))
