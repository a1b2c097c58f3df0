"""The embedded default, end to end and offline: a synthetic labeled archive, the retrain flow
(trains and promotes a champion), the tag flow over a fresh, unlabeled archive, a summary query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actionrec.data.synth import SynthConfig, write_dataset
from actionrec.lake.query import query
from flows.retrain import retrain_flow
from flows.tag import tag_flow


def run_demo(directory: str | Path = "actionrec-demo", *, per_class: int = 30, archive_per_class: int = 10,
             epochs: int = 25, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    d = Path(directory).resolve()
    labels = write_dataset(d / "labeled", SynthConfig(per_class=per_class, seed=seed), progress=progress)
    write_dataset(d / "archive", SynthConfig(per_class=archive_per_class, seed=seed + 1), progress=progress)
    lake = str(d / "lake")
    retrain = retrain_flow(labels=str(labels), lake=lake, train_options={"epochs": epochs})
    run = tag_flow(source=str(d / "archive" / "videos"), lake=lake, progress=progress)
    cols, rows = query(lake, "SELECT top1_label AS label, count(*) AS videos, round(avg(top1_score), 3) AS mean_score "
                             "FROM latest_predictions GROUP BY 1 ORDER BY 2 DESC, 1")
    return {"lake": lake, "retrain": retrain, "run": run, "columns": cols, "rows": rows}
