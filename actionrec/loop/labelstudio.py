"""The Label Studio round trip: the labeling queue as tasks to import, people's answers back.

Export writes what a Label Studio project for video classification takes: ``label_config.xml``
(a ``<Video>`` and single-choice ``<Choices>`` over the model's classes) and ``tasks.json`` (one
task per queued video: the video's URL, its lake URI, the model's top-k as text, and the top-1 as
a pre-annotation, so a person confirms or corrects instead of starting blank).

A video's URL is what the browser of the person labeling can open: for ``s3://`` a presigned GET
URL that expires (at most 7 days: the S3 limit for SigV4); for a local file, Label Studio's
local-files URL (``/data/local-files/?d=<path below LOCAL_FILES_DOCUMENT_ROOT>``, served when Label
Studio runs with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true``).

Import reads Label Studio's exports (JSON, JSON_MIN, CSV) and a plain CSV (``video_uri, label``
and optional ``annotator, labeled_at, split``). Each task carries its lake URI in ``data.video_uri``, so
answers map back to videos whatever URL was used.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from actionrec.errors import ConfigError
from actionrec.io import atomic
from actionrec.io.uris import is_s3, local_path
from actionrec.loop.labels import Answer

UTC = timezone.utc
FROM_NAME, TO_NAME = "action", "video"  # the names in label_config.xml: answers are read by them
MAX_EXPIRY_S = 7 * 24 * 3600  # SigV4 presigned URLs last at most 7 days
FORMATS = ("auto", "json", "json-min", "csv")


def label_config(classes: list[str]) -> str:
    """Label Studio's labeling config for one single-choice video classification."""
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return ("<View>\n"
            f'  <Video name="{TO_NAME}" value="$video"/>\n'
            '  <Header value="Model\'s guess: $model_top_k"/>\n'
            f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single-radio" required="true">\n'
            f"{choices}\n"
            "  </Choices>\n"
            "</View>\n")


@dataclass(frozen=True)
class VideoUrls:
    """How a lake URI becomes a URL the labeler's browser opens."""

    expiry_s: int = 7 * 24 * 3600
    document_root: str = "/"  # Label Studio's LOCAL_FILES_DOCUMENT_ROOT

    def __post_init__(self) -> None:
        if isinstance(self.expiry_s, bool) or not isinstance(self.expiry_s, int) or not 0 < self.expiry_s <= MAX_EXPIRY_S:
            raise ConfigError(f"URL expiry must be 1..{MAX_EXPIRY_S} seconds (7 days, the S3 limit), "
                              f"got {self.expiry_s!r}")

    def url(self, uri: str) -> str:
        if is_s3(uri):
            from actionrec.io.s3 import presigned_get

            return presigned_get(uri, self.expiry_s)
        path = local_path(uri).resolve()
        root = Path(self.document_root).resolve()
        try:
            rel = path.relative_to(root)
        except ValueError as e:
            raise ConfigError(f"{path} is not under the Label Studio document root {root} "
                              "(--document-root: Label Studio's LOCAL_FILES_DOCUMENT_ROOT)") from e
        return f"/data/local-files/?d={quote(rel.as_posix())}"


def _top_k_text(top_k: list[dict[str, Any]]) -> str:
    return ", ".join(f"{x['label']} {float(x['score']):.2f}" for x in top_k)


def tasks(rows: list[dict[str, Any]], urls: VideoUrls) -> list[dict[str, Any]]:
    """Label Studio tasks for queue rows (``labeling_queue`` columns), each with the model's top-1 as
    a pre-annotation (``predictions``) and its top-k as text."""
    out = []
    for r in rows:
        top = list(r.get("top_k") or [])
        task: dict[str, Any] = {"data": {
            "video": urls.url(r["video_uri"]), "video_uri": r["video_uri"], "model_top_k": _top_k_text(top),
            "queue_reason": r.get("reason"), "queue_run_id": r.get("run_id")}}
        if top:
            task["predictions"] = [{
                "model_version": f"{r.get('model_name')}@{r.get('model_version')}",
                "score": float(top[0]["score"]),
                "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                            "value": {"choices": [top[0]["label"]]}}],
            }]
        out.append(task)
    return out


def write_export(out_dir: str | os.PathLike, task_list: list[dict[str, Any]], classes: list[str]) -> dict[str, str]:
    """``tasks.json`` and ``label_config.xml`` in ``out_dir`` (each written whole); their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {"tasks_file": str(atomic.write_text(out / "tasks.json", json.dumps(task_list, indent=2) + "\n")),
            "label_config": str(atomic.write_text(out / "label_config.xml", label_config(classes)))}


# -- reading answers back ------------------------------------------------------------------------
def _when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(f"not a time: {text!r}") from e
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _annotator(value: Any) -> str | None:
    """``completed_by`` is a user id in Label Studio's JSON export, or a user object in some versions."""
    if isinstance(value, dict):
        return str(value.get("email") or value.get("username") or value.get("id") or "") or None
    return None if value is None else str(value)


def _choice(result: list[dict[str, Any]]) -> str | None:
    for item in result or []:
        if item.get("type") == "choices" and item.get("from_name", FROM_NAME) == FROM_NAME:
            chosen = (item.get("value") or {}).get("choices") or []
            return str(chosen[0]) if chosen else None
    return None


def _video_uri(data: dict[str, Any], where: str) -> str:
    uri = data.get("video_uri")
    if not uri:
        raise ConfigError(f"{where}: the task has no data.video_uri (export tasks with `actionrec label export`, "
                          "which records each video's lake URI)")
    return str(uri)


def _from_json(tasks_json: list[Any]) -> list[Answer]:
    answers = []
    for n, task in enumerate(tasks_json, start=1):
        if not isinstance(task, dict):
            raise ConfigError(f"task {n} is not a JSON object")
        if "annotations" in task:  # Label Studio JSON: the full task with its annotations
            uri = _video_uri(task.get("data") or {}, f"task {task.get('id', n)}")
            for ann in task.get("annotations") or []:
                label = _choice(ann.get("result") or [])
                if ann.get("was_cancelled") or label is None:
                    continue  # skipped or empty: no answer
                answers.append(Answer(uri, label, _annotator(ann.get("completed_by")),
                                      _when(ann.get("updated_at") or ann.get("created_at")),
                                      str(task["id"]) if task.get("id") is not None else None))
        else:  # JSON_MIN: one flat object per task, the choice under the control's name
            uri = _video_uri(task, f"task {task.get('id', n)}")
            label = task.get(FROM_NAME)
            if isinstance(label, dict):
                label = (label.get("choices") or [None])[0]
            if isinstance(label, list):
                label = label[0] if label else None
            if label:
                answers.append(Answer(uri, str(label), _annotator(task.get("annotator")),
                                      _when(task.get("updated_at") or task.get("created_at")),
                                      str(task["id"]) if task.get("id") is not None else None))
    return answers


def _from_csv(text: str) -> tuple[str, list[Answer]]:
    """(source, answers): ``csv`` for a plain label CSV, ``labelstudio`` for Label Studio's CSV export."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = {h.strip() for h in reader.fieldnames or []}
    rows = list(reader)
    column = "label" if "label" in header else FROM_NAME if FROM_NAME in header else None
    if "video_uri" not in header or column is None:
        raise ConfigError(f"a label CSV needs columns video_uri and label (or Label Studio's {FROM_NAME}), "
                          f"found: {', '.join(sorted(header))}")
    answers = [Answer(r["video_uri"].strip(), r[column].strip(), (r.get("annotator") or "").strip() or None,
                      _when(r.get("labeled_at") or r.get("updated_at") or r.get("created_at")),
                      (r.get("id") or "").strip() or None, (r.get("split") or "").strip() or None)
               for r in rows if (r.get("video_uri") or "").strip() and (r.get(column) or "").strip()]
    return ("csv" if column == "label" else "labelstudio"), answers


def read_answers(data: bytes, name: str, fmt: str = "auto") -> tuple[str, list[Answer]]:
    """(source, answers) from an export's bytes: Label Studio JSON or JSON_MIN (``labelstudio``), or
    a CSV (``labelstudio`` when it has Label Studio's columns, else ``csv``)."""
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    text = data.decode("utf-8-sig", errors="strict") if data else ""
    as_json = fmt in ("json", "json-min") or (fmt == "auto" and text.lstrip()[:1] in ("[", "{"))
    if as_json:
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{name} is not valid JSON: {e}") from e
        if isinstance(parsed, dict):
            parsed = [parsed]
        if not isinstance(parsed, list):
            raise ConfigError(f"{name}: a Label Studio export is a JSON list of tasks")
        return "labelstudio", _from_json(parsed)
    return _from_csv(text)


# -- the two commands' work ----------------------------------------------------------------------
def export_queue(lake: str, out_dir: str | os.PathLike, *, run_id: str | None = None,
                 urls: VideoUrls = VideoUrls()) -> dict[str, Any]:
    """Tasks for every queued video nobody has answered yet (``open_queue``; one run's with
    ``run_id``), and the labeling config over the model's classes plus any label people already use."""
    from actionrec.lake.lake import Lake
    from actionrec.lake.query import query

    where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
    cols, found = query(lake, f"SELECT * FROM open_queue {where} ORDER BY queued_at, run_id, rank", params)
    rows = [dict(zip(cols, r, strict=True)) for r in found]
    if not rows:
        raise ConfigError(f"nothing to label in {lake}: the labeling queue{f' of run {run_id}' if run_id else ''} "
                          "is empty or fully answered")
    classes: set[str] = set()
    lk = Lake(lake)
    for name, version in {(r["model_name"], r["model_version"]) for r in rows}:
        card = lk.card(name, version) if lk.has_model(name, version) else None
        classes.update((card or {}).get("classes") or [])
    classes.update(x["label"] for r in rows for x in r["top_k"] or [])
    classes.update(r[0] for r in query(lake, "SELECT DISTINCT label FROM labels")[1])
    task_list = tasks(rows, urls)
    files = write_export(out_dir, task_list, sorted(classes))
    return {"tasks": len(task_list), "classes": len(classes), **files}


def import_file(lake: str, path: str | os.PathLike, *, fmt: str = "auto", annotator: str | None = None) -> Any:
    """Read an export (or a plain label CSV) and append its answers to the lake's ``labels``.
    Relative video paths in a CSV are taken from the CSV's folder; ``annotator`` names whoever
    answered where the file does not say."""
    from dataclasses import replace

    from actionrec.data.labels import resolve_uri
    from actionrec.loop.labels import import_answers

    source_path = local_path(path)
    try:
        data = source_path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e
    source, answers = read_answers(data, str(path), fmt)
    base = source_path.resolve().parent
    answers = [replace(a, video_uri=resolve_uri(a.video_uri, base), annotator=a.annotator or annotator)
               for a in answers]
    # the import's identity: the file and whom it is attributed to (the same file from another person is
    # another import)
    return import_answers(lake, answers, source=source, content=data + f"\nannotator={annotator}".encode())
