"""Both deployments with their schedules, served from one local process (Prefect ``serve``)."""

from __future__ import annotations

from typing import Any

TAG_CRON = "0 2 * * *"  # nightly at 02:00
RETRAIN_CRON = "0 4 * * 0"  # Sundays at 04:00


def deployments(source: str, lake: str, labels: str | None, model: str | None = None,
                tag_cron: str = TAG_CRON, retrain_cron: str = RETRAIN_CRON) -> list[Any]:
    from flows.retrain import retrain_flow
    from flows.tag import tag_flow

    out = [tag_flow.to_deployment(name="nightly-tag", cron=tag_cron,
                                  parameters={"source": source, "lake": lake, "model": model},
                                  description="Tag new or changed videos into the lake.")]
    if labels:
        out.append(retrain_flow.to_deployment(name="weekly-retrain", cron=retrain_cron,
                                              parameters={"labels": labels, "lake": lake},
                                              description="Retrain, evaluate, promote only if better."))
    return out


def serve(source: str, lake: str, labels: str | None, model: str | None = None, **kwargs: Any) -> None:
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(source, lake, labels, model, **kwargs))
