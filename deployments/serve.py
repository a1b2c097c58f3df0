"""The deployments with their schedules, served from one local process (Prefect ``serve``)."""

from __future__ import annotations

from typing import Any

from deployments.definitions import NIGHTLY_TAG, RETRAIN_ON_LABELS, WEEKLY_RETRAIN, DeploymentSpec, Env


def _parameters(spec: DeploymentSpec, env: dict[str, Any]) -> dict[str, Any]:
    return {k: env[v.name] if isinstance(v, Env) else v for k, v in spec.parameters.items()}


def _deployment(flow: Any, spec: DeploymentSpec, env: dict[str, Any], cron: str) -> Any:
    from prefect.schedules import Cron

    return flow.to_deployment(name=spec.name, schedules=[Cron(cron, timezone=spec.timezone)],
                              parameters=_parameters(spec, env), description=spec.description, tags=list(spec.tags),
                              concurrency_limit=spec.concurrency_limit)


def deployments(source: str, lake: str, labels: str | None, model: str | None = None,
                tag_cron: str = NIGHTLY_TAG.cron, retrain_cron: str = WEEKLY_RETRAIN.cron,
                embeddings: bool = False) -> list[Any]:
    """The deployments ``serve`` registers: nightly tagging (storing embeddings too with
    ``embeddings``) and retraining on people's answers always (it does nothing until enough answers
    arrive), weekly retraining when there is a label table."""
    from flows.retrain import retrain_flow, retrain_on_labels_flow
    from flows.tag import tag_flow

    env = {"ACTIONREC_SOURCE": source, "ACTIONREC_LAKE": lake, "ACTIONREC_LABELS": labels}
    out = [_deployment(tag_flow, NIGHTLY_TAG, env, tag_cron)]
    if model is not None:
        out[0].parameters["model"] = model
    if embeddings:
        out[0].parameters["embeddings"] = True
    if labels:
        out.append(_deployment(retrain_flow, WEEKLY_RETRAIN, env, retrain_cron))
    out.append(_deployment(retrain_on_labels_flow, RETRAIN_ON_LABELS, env, RETRAIN_ON_LABELS.cron))
    return out


def serve(source: str, lake: str, labels: str | None, model: str | None = None, **kwargs: Any) -> None:
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(source, lake, labels, model, **kwargs))
