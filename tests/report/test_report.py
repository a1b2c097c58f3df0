"""The run report: its sections from a lake, escaping of hostile strings, placeholders for videos
that cannot be read, the CLI's refusals, the tag flow writing it beside the run with a link
artifact, and the page rendering in headless Chromium without console errors, every image loaded."""

from __future__ import annotations

import re
import shutil
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.cli import main
from actionrec.lake.lake import Lake
from actionrec.lake.schema import CLIP_PREDICTIONS, LABELING_QUEUE, PREDICTIONS
from actionrec.report import ReportSettings, build_report, report_key, write_report

UTC = timezone.utc
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE_LABEL = '<script>alert("label")</script> & \'co\''
HOSTILE_FILE = '<img src=x onerror=alert(1)> & "q".mp4'
HOSTILE_ERROR = 'boom </table><b onclick="x()">bold</b> & "quotes"'
HOSTILE_REASON = '<iframe src="https://example.com"></iframe> label mix moved'
CLASSES = ["walking", "running", "jumping", HOSTILE_LABEL]


# -- a synthetic lake: three nightly runs, the last one reported ------------------------------------
def _topk(label: str, score: float) -> list[dict]:
    other = next(c for c in CLASSES if c != label)
    return [{"label": label, "class_id": CLASSES.index(label), "score": score},
            {"label": other, "class_id": CLASSES.index(other), "score": 1 - score}]


def _prediction(run_id: str, uri: str, label: str | None, score: float | None, status: str = "ok",
                error: str | None = None, size: int = 1000) -> dict:
    return {"run_id": run_id, "video_uri": uri, "video_etag": "e", "video_bytes": size, "model_name": "actionrec",
            "model_version": "v1", "status": status, "error": error, "duration_s": 1.0, "fps": 25.0, "width": 96,
            "height": 32, "num_clips": 2, "top_k": _topk(label, score) if label else None, "top1_label": label,
            "top1_score": score, "processed_at": datetime(2024, 5, 1, tzinfo=UTC), "engine": "openvino",
            "precision": "f32"}


def _run_row(run_id: str, started: datetime, ok: int, failed: int, drift: dict | None = None) -> dict:
    return {"run_id": run_id, "flow": "tag", "source": "/archive/<nightly>", "lake": "lake", "model_name": "actionrec",
            "model_version": "v1", "started_at": started, "finished_at": started + timedelta(seconds=30),
            "videos_listed": ok + failed, "videos_skipped": 0, "ok": ok, "partial": 0, "failed": failed,
            "seconds": 30.0, "status": "complete", "videos_lost": 0, "damaged_files": 0, "engine": "openvino",
            "precision": "f32", **(drift or {})}


def make_lake(root: Path | str, videos: list[str], *, evaluation_dir: Path | None = None) -> tuple[Lake, str]:
    """Runs on three days over ``videos`` (URIs); the last run has a failure with a hostile reason,
    drift, a labeling queue and clip rows; with ``evaluation_dir`` the champion has an evaluation
    (its files made there). Returns (lake, last run id)."""
    lake = Lake(root)
    last = ""
    for day in range(3):
        started = datetime(2024, 5, 1 + day, 2, 0, tzinfo=UTC)
        run_id = f"{started:%Y%m%dT%H%M%SZ}-0000000{day}"
        rows = [_prediction(run_id, uri, CLASSES[(i + day) % len(CLASSES)], 0.5 + 0.05 * i)
                for i, uri in enumerate(videos)]
        failed = 0
        if day == 2:
            rows.append(_prediction(run_id, "file:///archive/broken.mp4", None, None, "failed", HOSTILE_ERROR))
            failed = 1
        clips = [{"run_id": run_id, "video_uri": r["video_uri"], "model_version": "v1", "clip_index": c,
                  "start_s": 0.5 * c, "end_s": 0.5 * c + 0.4, "top_k": r["top_k"], "top1_label": r["top1_label"],
                  "top1_score": r["top1_score"] - 0.1 * c} for r in rows if r["status"] == "ok" for c in range(2)]
        lake.write_shard(run_id, started.date(), 0, pa.Table.from_pylist(rows, PREDICTIONS),
                         pa.Table.from_pylist(clips, CLIP_PREDICTIONS))
        drift = None
        if day == 2:
            drift = {"drift_measure": "jensen-shannon", "drift_labels": 0.31, "drift_confidence": 0.02,
                     "drift_flag": True, "drift_reason": HOSTILE_REASON}
            queue = [{"run_id": run_id, "video_uri": uri, "video_etag": "e", "model_name": "actionrec",
                      "model_version": "v1", "reason": "margin", "score": 0.9 - 0.1 * i, "rank": i + 1,
                      "top1_label": CLASSES[i % len(CLASSES)], "top1_score": 0.51, "margin": 0.02, "entropy": 0.69,
                      "top_k": _topk(CLASSES[i % len(CLASSES)], 0.51), "queued_at": started}
                     for i, uri in enumerate(videos[:3])]
            lake.write_part("labeling_queue", f"{run_id}-00000", started.date(), pa.Table.from_pylist(queue, LABELING_QUEUE))
        lake.write_run(_run_row(run_id, started, len(videos), failed, drift), started.date())
        last = run_id
    if evaluation_dir is not None:
        _champion_with_evaluation(lake, evaluation_dir)
    return lake, last


def _champion_with_evaluation(lake: Lake, work: Path) -> None:
    from actionrec.evaluation.metrics import evaluate_scores
    from actionrec.evaluation.report import per_class_table, plot_confusion

    work.mkdir(parents=True, exist_ok=True)
    (work / "model.pt").write_bytes(b"not used by the report")
    lake.register_model("actionrec", work / "model.pt", "v1")
    lake.promote("actionrec", "v1", reason="better than <nothing> & more")
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(len(CLASSES)), size=24)
    result = evaluate_scores(scores, [i % len(CLASSES) for i in range(24)], CLASSES)
    png = plot_confusion(result, work / "confusion.png")
    row = {"model_name": "actionrec", "model_version": "v1", "labels_sha256": "ab" * 32, "split": "test",
           "num_videos": 24, "clips_per_video": 3, "top1": result.top1, "top5": result.top5,
           "mean_class_accuracy": result.mean_class_accuracy, "ece": result.ece,
           "created_at": datetime(2024, 4, 30, tzinfo=UTC), "promoted": True, "champion_version": None,
           "champion_top1": None}
    lake.write_evaluation("actionrec", "v1", row, per_class_table(result), {"confusion.png": png})


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    (d / "videos").mkdir()
    files = [write_indexed(d / "videos" / f"v{i}.mp4", 25) for i in range(5)]
    files.append(write_indexed(d / "videos" / HOSTILE_FILE, 25))
    lake, run_id = make_lake(d / "lake", [f.resolve().as_uri() for f in files], evaluation_dir=d / "model-v1")
    return {"dir": d, "lake": lake, "run_id": run_id}


# -- what the page holds --------------------------------------------------------------------------
class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(page)
    return parser.tags


def test_the_report_shows_every_section_of_the_run(synthetic):
    page = build_report(synthetic["lake"].root)  # no run id: the latest tag run
    assert f"Tag run <span class=\"mono\">{synthetic['run_id']}</span>" in page
    for sid in ("counts", "recent", "drift", "failures", "examples", "queue", "evaluation"):
        assert f'<section id="{sid}">' in page
    assert 'class="section-error"' not in page
    assert page.count("<svg") == 2  # the label distribution over the runs and the score histogram
    assert len(re.findall(r"<g><title>run ", page)) == 3  # one bar per tag run
    assert "jensen-shannon" in page and "Drift flagged." in page and "0.3100" in page
    assert "champion <span class=\"mono\">actionrec@v1</span>".lower() in page.lower()
    assert 'src="data:image/png;base64,' in page  # the confusion matrix, embedded
    images = [a for t, a in _elements(page) if t == "img"]
    # 4 labels x up to 4 examples (6 videos) + 3 queued + the confusion matrix: all data: URIs
    assert len(images) == 6 + 3 + 1
    assert all((a.get("src") or "").startswith("data:image/") for a in images)
    assert "No labeling-queue entries" not in page and "margin" in page
    assert len(page.encode()) < 400_000


def test_hostile_labels_file_names_and_errors_are_escaped(synthetic):
    page = build_report(synthetic["lake"].root, synthetic["run_id"])
    for hostile in (HOSTILE_LABEL, HOSTILE_FILE, HOSTILE_ERROR, HOSTILE_REASON):
        assert hostile not in page
    assert "&lt;script&gt;alert(&quot;label&quot;)&lt;/script&gt; &amp; &#x27;co&#x27;" in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot;.mp4" in page
    assert "boom &lt;/table&gt;&lt;b onclick=&quot;x()&quot;&gt;bold&lt;/b&gt;" in page
    tags = _elements(page)
    assert not [t for t, _ in tags if t in ("script", "iframe", "object", "embed")]
    assert not [a for _, a in tags if any(k.startswith("on") for k in a)]  # no event handler got through
    assert [a for t, a in tags if t == "link"] == [{"rel": "icon", "href": "data:,"}]
    assert all((a.get("src") or "data:").startswith("data:") for _, a in tags)  # nothing is fetched


def test_a_video_that_cannot_be_read_any_more_gives_a_placeholder(tmp_path):
    (tmp_path / "videos").mkdir()
    good = write_indexed(tmp_path / "videos" / "good.mp4", 25)
    gone = write_indexed(tmp_path / "videos" / "gone.mp4", 25)
    swapped = write_indexed(tmp_path / "videos" / "swapped.mp4", 25)
    lake, run_id = make_lake(tmp_path / "lake", [p.resolve().as_uri() for p in (good, gone, swapped)])
    gone.unlink()
    swapped.write_text("no longer a video\n")
    page = build_report(lake.root, run_id)
    assert 'class="section-error"' not in page
    assert page.count("no picture: cannot read the video any more: file not found") >= 1
    assert "no picture: cannot read the video any more: not a video file" in page
    assert 'alt="good.mp4 at' in page
    assert "no evaluation to show" in page.lower() or "has no champion" in page


def test_videos_and_lake_on_s3(s3_endpoint, tmp_path):
    """An S3 lake, S3 videos (one deleted since it was tagged), the report written beside the run."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="reports")
    clip = write_indexed(tmp_path / "c.mp4", 25)
    s3.upload_file(str(clip), "reports", "videos/kept.mp4")
    _, run_id = make_lake("s3://reports/lake", ["s3://reports/videos/kept.mp4", "s3://reports/videos/gone.mp4"])
    where = write_report("s3://reports/lake", run_id)
    assert where == f"s3://reports/lake/{report_key(run_id, date(2024, 5, 3))}"
    page = s3.get_object(Bucket="reports", Key=f"lake/{report_key(run_id, date(2024, 5, 3))}")["Body"].read().decode()
    assert 'alt="kept.mp4 at' in page
    assert "object not found" in page
    small = build_report("s3://reports/lake", run_id, ReportSettings(thumb_max_mb=0))
    assert "not fetched" in small and 'alt="kept.mp4 at' not in small


# -- the command line -------------------------------------------------------------------------------
def test_report_command_writes_the_page_and_refuses_what_is_not_there(synthetic, tmp_path, capsys):
    out = tmp_path / "out" / "report.html"
    assert main(["report", "--lake", synthetic["lake"].root, "--run", synthetic["run_id"], "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert str(out) in capsys.readouterr().out

    assert main(["report", "--lake", synthetic["lake"].root, "--run", "20990101T000000Z-deadbeef",
                 "--out", str(out)]) == 2
    assert "no run '20990101T000000Z-deadbeef'" in capsys.readouterr().err
    empty = Lake(tmp_path / "empty")
    empty.store.write_bytes("runs/keep.txt", b"")
    assert main(["report", "--lake", empty.root, "--out", str(out)]) == 2
    assert "no tag runs in lake" in capsys.readouterr().err
    assert main(["report", "--lake", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "no lake at" in capsys.readouterr().err
    assert main(["report", "--lake", synthetic["lake"].root, "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


# -- the tag flow writes it; Chromium renders it ---------------------------------------------------
@pytest.fixture(scope="module")
def tagged(prefect_api, tmp_path_factory):
    """One tag run with the lake's champion (which has an evaluation) over a few tiny videos, one
    of them not a video."""
    d = tmp_path_factory.mktemp("tagged")
    src = d / "archive"
    src.mkdir()
    for i in range(4):
        write_indexed(src / f"v{i}.mp4", 20 + i)
    (src / "bad.mp4").write_text("not a video\n")
    lake = Lake(d / "lake")
    from actionrec.models.card import file_version

    model = write_tiny_checkpoint(d / "model" / "model.pt", ["a", "b"], name="actionrec")
    version = lake.register_model("actionrec", model, file_version(model))
    lake.promote("actionrec", version, reason="test")
    from flows.tag import tag_flow

    state = tag_flow(source=str(src), lake=lake.root, clips=1, return_state=True)
    return {"lake": lake, "row": state.result(), "flow_run_id": state.state_details.flow_run_id}


def test_the_tag_flow_writes_the_report_beside_the_run_and_links_it(tagged):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    row, lake = tagged["row"], tagged["lake"]
    path = Path(lake.store.uri(report_key(row["run_id"], row["started_at"].date())))
    page = path.read_text()
    assert row["run_id"] in page and "not a video" in page
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["tag-report"])))
    mine = [a for a in found if a.flow_run_id == tagged["flow_run_id"]]
    assert len(mine) == 1 and f"({path.as_uri()})" in str(mine[0].data)  # a markdown link to the file


def test_a_report_that_cannot_be_written_does_not_fail_the_run(tagged, monkeypatch, tmp_path):
    from prefect.client.orchestration import get_client

    import actionrec.report

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(actionrec.report, "write_report", broken)
    src = tmp_path / "more"
    src.mkdir()
    write_indexed(src / "new.mp4", 21)
    from flows.tag import tag_flow

    state = tag_flow(source=str(src), lake=tagged["lake"].root, clips=1, return_state=True)
    assert state.is_completed() and state.result()["ok"] == 1
    with get_client(sync_client=True) as client:
        tasks = [t for t in client.read_task_runs() if t.flow_run_id == state.state_details.flow_run_id]
    report = [t for t in tasks if t.name.startswith("write-report")]
    assert len(report) == 1 and report[0].state.is_failed() and "disk full" in (report[0].state.message or "")


def _render(path: Path, screenshot: Path) -> dict:
    """Open the page in headless Chromium; console errors, page errors, failed requests, images."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    problems: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in
                    ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:80]}"))
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.goto(path.resolve().as_uri(), wait_until="load")
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
            scripts = page.evaluate("document.scripts.length")
            sections = page.evaluate("Array.from(document.querySelectorAll('section')).map(s => s.id)")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"problems": problems, "images": images, "scripts": scripts, "sections": sections}


def test_the_flows_report_renders_in_headless_chromium(tagged, tmp_path):
    row, lake = tagged["row"], tagged["lake"]
    seen = _render(Path(lake.store.uri(report_key(row["run_id"], row["started_at"].date()))), tmp_path / "flow.png")
    assert seen["problems"] == []
    assert seen["scripts"] == 0
    assert len(seen["images"]) >= 4 and all(done and width > 0 for done, width, _ in seen["images"])
    assert seen["sections"] == ["counts", "recent", "drift", "failures", "examples", "queue", "evaluation"]
    assert (tmp_path / "flow.png").stat().st_size > 10_000


def test_a_report_with_hostile_strings_renders_without_errors(synthetic, tmp_path):
    out = tmp_path / "hostile.html"
    write_report(synthetic["lake"].root, synthetic["run_id"], out)
    seen = _render(out, tmp_path / "hostile.png")
    assert seen["problems"] == []  # nothing ran (no dialog), nothing was fetched, nothing broke the CSP
    assert seen["scripts"] == 0
    assert len(seen["images"]) == 10 and all(done and width > 0 for done, width, _ in seen["images"])
