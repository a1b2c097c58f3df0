"""Retraining: read the labels, train a candidate, evaluate it and the champion on the same held-out
split with multi-clip testing, and promote the candidate only if it beats the champion."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from actionrec.retraining import INIT_CHOICES, should_promote
from actionrec.tagging import DEFAULT_MODEL_NAME, default_lake
from tasks.retraining import (
    evaluate_candidate,
    evaluate_champion,
    promote,
    publish_summary,
    read_labels,
    train_candidate,
)


@flow(name="retrain")
def retrain_flow(labels: str, lake: str | None = None, model_name: str = DEFAULT_MODEL_NAME, arch: str = "tiny3d",
                 epochs: int = 40, loss: str = "ce", init: str = "scratch", split: str = "test", clips: int = 3,
                 margin: float = 0.0, train_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``init``: "scratch", "champion" (fine-tune the current champion) or any model reference.
    ``train_options``: further ``TrainConfig`` fields (lr, optimizer, seed, pretrained, ...)."""
    log = get_run_logger()
    lake = lake or default_lake()
    if init not in INIT_CHOICES:
        log.info("starting from model reference %s", init)
    table = read_labels(labels)
    log.info("labels %s: %d train / %d val / %d test videos, %d classes", table["sha256"][:12], table["train"],
             table["val"], table["test"], len(table["classes"]))
    config = {"arch": arch, "epochs": epochs, "loss": loss, **(train_options or {})}
    version = train_candidate(labels, lake, model_name, config, init)
    champion = evaluate_champion(lake, model_name, labels, split, clips)
    candidate = evaluate_candidate(lake, model_name, version, labels, split, clips, champion)
    promoted, reason = should_promote(candidate, champion, margin)
    if promoted:
        promote(lake, model_name, version)
    log.info("candidate %s: %s -> %s", version, reason, "promoted" if promoted else "not promoted")
    summary = {"model_name": model_name, "candidate_version": version, "candidate_top1": candidate.top1,
               "candidate_top5": candidate.top5, "candidate_mean_class_accuracy": candidate.mean_class_accuracy,
               "champion_version": champion.version if champion else None,
               "champion_top1": champion.top1 if champion else None, "promoted": promoted, "reason": reason,
               "split": split, "test_videos": candidate.num_videos}
    publish_summary("\n".join([f"# Retrain `{model_name}`", "", f"**{'Promoted' if promoted else 'Not promoted'}**: "
                               f"{reason}.", "", "| | version | top-1 | top-5 | mean class acc |", "|---|---|---:|---:|---:|",
                               f"| candidate | `{version}` | {candidate.top1:.1%} | {candidate.top5:.1%} | "
                               f"{candidate.mean_class_accuracy:.1%} |"] +
                              ([f"| champion | `{champion.version}` | {champion.top1:.1%} | {champion.top5:.1%} | "
                                f"{champion.mean_class_accuracy:.1%} |"] if champion else [])) + "\n")
    return summary
