"""The run report as one self-contained HTML page, and where it is written.

The page has no script and fetches nothing: styles inline, charts inline SVG, pictures ``data:``
URIs, and a Content-Security-Policy that forbids anything else (so even a string that escaped
escaping could not run or load). Every string that comes from the lake (video URIs, labels,
errors, sources, reasons) goes through ``esc``.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from typing import Any

from actionrec.errors import ConfigError
from actionrec.io.uris import is_s3, local_path, split_s3
from actionrec.names import check_name
from actionrec.report.charts import OTHER, Bar, colors_for, esc, histogram, stacked_shares
from actionrec.report.data import Example, ReportData, ReportSettings, gather, run_date_of
from actionrec.report.thumbs import Thumb, Wanted, thumbnails

UTC = timezone.utc
CONFUSION_MAX_BYTES = 1_500_000  # a bigger confusion picture is scaled down before it is embedded
CONFUSION_MAX_SIDE = 1600
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
:root{--fg:#1d1d1f;--muted:#6b6b70;--line:#e3e3e8;--bg:#fafafa;--bad:#b42318;--badbg:#fef3f2;--ok:#067647;--okbg:#ecfdf3;
--warn:#b54708;--warnbg:#fffaeb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1180px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:22px;margin:6px 0 4px;word-break:break-all}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:14px;margin:14px 0 6px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 18px;margin:14px 0}
nav{font-size:13px;color:var(--muted)} nav a{color:#175cd3;text-decoration:none;margin-right:12px}
table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 10px 4px 0;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.meta td:first-child{color:var(--muted);padding-right:16px}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;margin-right:6px}
.badge.ok{background:var(--okbg);color:var(--ok)} .badge.bad{background:var(--badbg);color:var(--bad)}
.badge.warn{background:var(--warnbg);color:var(--warn)} .badge.plain{background:#f2f4f7;color:#344054}
.stats{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:12px}
.stat{border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:92px}
.stat b{display:block;font-size:20px;font-variant-numeric:tabular-nums} .stat span{color:var(--muted);font-size:12px}
.stat.bad b{color:var(--bad)}
.cols{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start} .cols>div{min-width:0}
.cols>div.picture{flex:1 1 420px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin:6px 0 10px}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.card{width:172px;border:1px solid var(--line);border-radius:6px;padding:5px;font-size:12px;background:#fff}
.card img{display:block;max-width:160px;max-height:160px;margin:0 auto 4px;border-radius:3px;background:#eee}
.card .name{word-break:break-all;color:var(--muted)}
.missing{width:160px;height:90px;margin:0 auto 4px;border-radius:3px;background:repeating-linear-gradient(45deg,#f2f4f7,
#f2f4f7 8px,#e4e7ec 8px,#e4e7ec 16px);color:#475467;font-size:11px;padding:6px;overflow:hidden;word-break:break-word}
.note{color:var(--muted)} .more{color:var(--muted);font-style:italic;margin-top:6px}
.drift-flag{border-left:4px solid var(--bad);background:var(--badbg);padding:8px 12px;border-radius:4px}
.section-error{border-left:4px solid var(--warn);background:var(--warnbg);padding:8px 12px;border-radius:4px}
img.confusion{max-width:100%;height:auto;border:1px solid var(--line)}
footer{color:var(--muted);font-size:12px;text-align:center}
"""


# -- formatting -------------------------------------------------------------------------------------
def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def num(x: Any, fmt: str = "{:.3f}") -> str:
    return fmt.format(x) if _finite(x) else "&ndash;"


def pct(x: Any) -> str:
    return f"{x * 100:.1f}%" if _finite(x) else "&ndash;"


def when(value: Any) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return esc(value) if value is not None else "&ndash;"


def _parse_time(value: Any) -> Any:
    """An ISO 8601 text as a datetime (shown in UTC), anything else as it is."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def file_name(uri: str) -> str:
    """The video's file name as a person wrote it (a ``file://`` URI's escapes decoded)."""
    if uri.startswith("file://"):
        return local_path(uri).name or uri
    return uri.rstrip("/").rsplit("/", 1)[-1] or uri


def _table(head: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """``head``: (escaped title, numeric); ``rows``: cells already escaped or formatted."""
    out = [f'<table class="{cls}"><thead><tr>']
    out += [f'<th class="n">{h}</th>' if numeric else f"<th>{h}</th>" for h, numeric in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="n">{c}</td>' if numeric else f"<td>{c}</td>"
                                    for c, (_, numeric) in zip(row, head, strict=True)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _more(shown: int, total: int, what: str, hint: str = "") -> str:
    if total <= shown:
        return ""
    return f'<p class="more">and {total - shown} more {esc(what)}{esc(hint)}</p>'


def _section(sid: str, title: str, body: str, errors: dict[str, str], *keys: str) -> str:
    failed = [f'<p class="section-error">Part of this section could not be built: {esc(errors[k])}</p>'
              for k in keys if k in errors]
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{"".join(failed)}{body}</section>'


# -- sections ---------------------------------------------------------------------------------------
def _header(d: ReportData) -> str:
    r = d.run
    status = r.get("status") or "unknown"
    badges = [f'<span class="badge {"ok" if status == "complete" else "bad"}">{esc(status)}</span>']
    if r.get("failed"):
        badges.append(f'<span class="badge bad">{int(r["failed"])} failed</span>')
    if r.get("drift_flag"):
        badges.append('<span class="badge bad">drift</span>')
    elif r.get("drift_flag") is False:
        badges.append('<span class="badge ok">no drift</span>')
    model = f'{esc(r.get("model_name"))}@{esc(r.get("model_version"))}'
    meta = [
        ("Model", f'<span class="mono">{model}</span>'),
        ("Engine", f'{esc(r.get("engine"))}, {esc(r.get("precision"))}'),
        ("Source", f'<span class="mono">{esc(r.get("source"))}</span>'),
        ("Lake", f'<span class="mono">{esc(r.get("lake"))}</span>'),
        ("Started", when(r.get("started_at"))),
        ("Finished", when(r.get("finished_at"))),
        ("Took", num(r.get("seconds"), "{:.1f} s")),
    ]
    rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in meta)
    nav = "".join(f'<a href="#{sid}">{title}</a>' for sid, title in (
        ("counts", "Counts"), ("recent", "Recent runs"), ("drift", "Drift"), ("failures", "Failures"),
        ("examples", "Top examples"), ("queue", "Labeling queue"), ("evaluation", "Evaluation")))
    return (f'<header><nav>{nav}</nav><h1>Tag run <span class="mono">{esc(r["run_id"])}</span></h1>'
            f'<p>{"".join(badges)}</p><table class="meta">{rows}</table></header>')


def _counts(d: ReportData, settings: ReportSettings) -> str:
    r = d.run

    def stat(value: Any, what: str, bad: bool = False) -> str:
        v = int(value) if _finite(value) else 0
        return f'<div class="stat{" bad" if bad and v else ""}"><b>{v}</b><span>{what}</span></div>'

    stats = "".join([stat(r.get("videos_listed"), "listed"), stat(r.get("videos_skipped"), "skipped (done before)"),
                     stat(r.get("ok"), "ok"), stat(r.get("partial"), "partial", True),
                     stat(r.get("failed"), "failed", True), stat(r.get("videos_lost"), "lost (shard failed)", True),
                     stat(r.get("damaged_files"), "damaged lake files", True)])
    body = [f'<div class="stats">{stats}</div>']
    if r.get("videos_lost"):
        body.append(f'<p class="drift-flag">{int(r["videos_lost"])} videos were not tagged because their shard '
                    "failed after its retries; the next run takes them.</p>")
    tagged = sum(n for _, n, _ in d.labels)
    shown = d.labels[: settings.top_labels]
    left = "<p class=\"note\">No video of this run has a label (nothing new was tagged, or every video failed).</p>"
    if shown:
        colors = chart_labels(d, settings)[1]
        left = _table([("Label", False), ("Videos", True), ("Share", True), ("Mean top-1 score", True)],
                      [(_swatch(label, colors) + esc(label), str(n), pct(n / tagged if tagged else None), num(mean))
                       for label, n, mean in shown])
        left += _more(len(shown), d.labels_total, "labels")
    right = ""
    if sum(d.confidence):
        right = ("<div><h3>Top-1 score of this run's videos</h3>" + histogram(d.confidence, d.confidence_before)
                 + '<p class="note">Bars: this run. Dashed line: the earlier runs of the chart below.</p></div>')
    body.append(f'<div class="cols"><div>{left}</div>{right}</div>')
    return "".join(body)


def chart_labels(d: ReportData, settings: ReportSettings) -> tuple[list[str], dict[str, str], int]:
    """The labels the chart colours (the most frequent over the window), their colours, and how many
    labels the window has in all."""
    totals: dict[str, int] = {}
    for run in d.recent:
        for label, n in run["labels"].items():
            totals[label] = totals.get(label, 0) + n
    order = sorted(totals, key=lambda k: (-totals[k], k))[: settings.chart_labels]
    return order, colors_for(order), len(totals)


def _swatch(label: str, colors: dict[str, str]) -> str:
    color = colors.get(label)
    return f'<span class="sw" style="background:{color}"></span>' if color else '<span class="sw"></span>'


def _recent(d: ReportData, settings: ReportSettings) -> str:
    if not d.recent:
        return '<p class="note">No runs to show.</p>'
    order, colors, labels_in_window = chart_labels(d, settings)
    bars = []
    for run in d.recent:
        started = run["started_at"]
        if isinstance(started, datetime):
            started = started.astimezone(UTC)
            name, sub = started.strftime("%m-%d"), started.strftime("%H:%M")
        else:
            name, sub = str(started), ""
        bars.append(Bar(name, sub, run["labels"], f'run {run["run_id"]}: {sum(run["labels"].values())} videos tagged',
                        current=run["run_id"] == d.run["run_id"]))
    shown = [*order, OTHER] if labels_in_window > len(order) else order
    legend = "".join(f"<span>{_swatch(label, colors)}{esc(label)}</span>" for label in shown)
    body = [f'<p class="note">Share of each top-1 label among the videos each tag run tagged (the last '
            f'{len(d.recent)} tag runs; this one outlined; the number above a bar is its videos). A run tags only '
            'new or changed videos, so a small bar may be a quiet night.</p>',
            stacked_shares(bars, order, colors), f'<div class="legend">{legend}</div>']
    rows = []
    for run in reversed(d.recent):
        flag = run.get("drift_flag")
        drift = ('<span class="badge bad">drift</span>' if flag else '<span class="badge ok">no</span>'
                 if flag is False else '<span class="note">not measured</span>')
        rid = esc(run["run_id"])
        rows.append((f'<span class="mono">{"<b>" + rid + "</b>" if run["run_id"] == d.run["run_id"] else rid}</span>',
                     when(run["started_at"]), esc(run.get("model_version")), str(int(run.get("ok") or 0)),
                     str(int(run.get("partial") or 0)), str(int(run.get("failed") or 0)), esc(run.get("status")),
                     num(run.get("drift_labels")), num(run.get("drift_confidence")), drift))
    body.append("<h3>Runs</h3>" + _table([("Run", False), ("Started", False), ("Model version", False), ("ok", True),
                                          ("partial", True), ("failed", True), ("Status", False),
                                          ("Label drift", True), ("Confidence drift", True), ("Drift", False)], rows))
    return "".join(body)


def _drift(d: ReportData) -> str:
    r = d.run
    keys = ("drift_measure", "drift_labels", "drift_confidence", "drift_flag", "drift_reason")
    if all(r.get(k) is None for k in keys):
        return '<p class="note">Not measured for this run.</p>'
    parts = []
    if r.get("drift_flag"):
        parts.append(f'<p class="drift-flag"><b>Drift flagged.</b> {esc(r.get("drift_reason") or "")}</p>')
    elif r.get("drift_reason"):
        parts.append(f'<p>{esc(r["drift_reason"])}</p>')
    flag = {True: '<span class="badge bad">yes</span>', False: '<span class="badge ok">no</span>'}.get(
        r.get("drift_flag"), '<span class="note">not decided</span>')
    compared = "nothing to compare with yet"
    rows = [("Measure", esc(r.get("drift_measure")) if r.get("drift_measure") else "&ndash;"),
            ("Label mix divergence", num(r.get("drift_labels"), "{:.4f}") if r.get("drift_labels") is not None
             else compared),
            ("Confidence divergence", num(r.get("drift_confidence"), "{:.4f}") if r.get("drift_confidence") is not None
             else compared),
            ("Flagged", flag)]
    parts.append('<table class="meta">' + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>")
    return "".join(parts)


def _failures(d: ReportData) -> str:
    if not d.failures_total:
        return '<p class="note">Every video of this run was tagged ok.</p>'
    rows = [(f'<span class="mono">{esc(uri)}</span>',
             f'<span class="badge {"bad" if status == "failed" else "warn"}">{esc(status)}</span>',
             esc(error) if error else '<span class="note">no reason recorded</span>') for uri, status, error in d.failures]
    hint = f' (actionrec query "select video_uri, status, error from predictions where run_id = \'{d.run["run_id"]}\' ' \
           "and status <> 'ok'\" lists them all)"
    return (_table([("Video", False), ("Status", False), ("Reason", False)], rows)
            + _more(len(d.failures), d.failures_total, "videos", hint))


def _card(ex: Example, thumb: Thumb, lines: Sequence[str]) -> str:
    if thumb.data_uri:
        picture = (f'<img src="{thumb.data_uri}" width="{thumb.width}" height="{thumb.height}" '
                   f'alt="{esc(file_name(ex.video_uri))} at {ex.at_s:.1f} s" loading="eager">')
    else:
        picture = f'<div class="missing" title="{esc(thumb.reason)}">no picture: {esc(thumb.reason)}</div>'
    text = "".join(f"<div>{line}</div>" for line in lines)
    return (f'<div class="card">{picture}{text}'
            f'<div class="name" title="{esc(ex.video_uri)}">{esc(file_name(ex.video_uri))} @ {ex.at_s:.1f} s</div></div>')


def _examples(d: ReportData, thumbs: dict[tuple[str, float], Thumb], settings: ReportSettings) -> str:
    if not d.examples:
        return '<p class="note">No video was tagged ok by this run (nothing new to tag, or every video failed).</p>'
    colors = chart_labels(d, settings)[1]
    out = [f'<p class="note">For the {len(d.examples)} most frequent labels of this run, the videos it scored '
           'highest; each picture is the middle of the clip that scored that label highest.</p>']
    for label, n, exs in d.examples:
        cards = "".join(_card(ex, thumbs[(ex.video_uri, ex.at_s)], [f"top-1 score <b>{num(ex.score)}</b>"])
                        for ex in exs)
        out.append(f'<h3>{_swatch(label, colors)}{esc(label)} <span class="note">&middot; {n} videos</span></h3><div class="grid">{cards}</div>')
    out.append(_more(len(d.examples), d.labels_total, "labels"))
    return "".join(out)


def _queue(d: ReportData, thumbs: dict[tuple[str, float], Thumb]) -> str:
    if not d.queue_total:
        return '<p class="note">No labeling-queue entries for this run.</p>'
    cards = []
    for ex in d.queue:
        x = ex.extra
        lines = [f'#{esc(x.get("rank")) if x.get("rank") is not None else "&ndash;"} <b>{esc(x.get("reason"))}</b> '
                 f'score {num(x.get("score"))}',
                 f'{esc(ex.label)} {num(ex.score, "{:.2f}")}',
                 f'margin {num(x.get("margin"), "{:.2f}")} &middot; entropy {num(x.get("entropy"), "{:.2f}")}']
        cards.append(_card(ex, thumbs[(ex.video_uri, ex.at_s)], lines))
    return (f'<p class="note">The videos a person should label first ({d.queue_total} queued by this run), '
            'most worth a look first; each picture is the clip the model was least sure of.</p>'
            f'<div class="grid">{"".join(cards)}</div>' + _more(len(d.queue), d.queue_total, "queued videos"))


def _confusion_uri(png: bytes) -> str:
    if len(png) > CONFUSION_MAX_BYTES:
        from PIL import Image

        image = Image.open(io.BytesIO(png))
        image.thumbnail((CONFUSION_MAX_SIDE, CONFUSION_MAX_SIDE))
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="PNG", optimize=True)
        png = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _evaluation(d: ReportData) -> str:
    note = f'<p class="note">{esc(d.evaluation_note)}</p>' if d.evaluation_note else ""
    ev = d.evaluation
    if ev is None:
        return note or '<p class="note">No evaluation to show.</p>'
    m = ev.metrics
    who = ""
    if ev.champion:
        c = ev.champion
        who = (f'<p>Champion <span class="mono">{esc(ev.model_name)}@{esc(ev.version)}</span>, promoted '
               f'{when(_parse_time(c.get("promoted_at")))} by {esc(c.get("by"))}: {esc(c.get("reason"))}</p>')
    rows = [("Split", esc(m.get("split"))), ("Videos", esc(m.get("num_videos"))),
            ("Clips per video", esc(m.get("clips_per_video"))), ("Top-1 accuracy", pct(m.get("top1"))),
            ("Top-5 accuracy", pct(m.get("top5"))), ("Mean class accuracy", pct(m.get("mean_class_accuracy"))),
            ("ECE", num(m.get("ece"))), ("Evaluated", when(m.get("created_at"))),
            ("Labels (sha256)", f'<span class="mono">{esc((m.get("labels_sha256") or "")[:16])}</span>')]
    if m.get("champion_version"):
        rows.append(("Against the champion of then", f'<span class="mono">{esc(m["champion_version"])}</span> '
                                                     f'(top-1 {pct(m.get("champion_top1"))})'))
    metrics = '<table class="meta">' + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"
    per_class = ""
    if ev.per_class:
        shown = ev.per_class[:200]
        per_class = "<h3>Per class</h3>" + _table(
            [("Class", False), ("Support", True), ("Precision", True), ("Recall", True), ("F1", True)],
            [(esc(c.get("class")), esc(c.get("support")), num(c.get("precision")), num(c.get("recall")), num(c.get("f1")))
             for c in shown]) + _more(len(shown), len(ev.per_class), "classes")
    picture = ""
    if ev.confusion_png:
        picture = ('<h3>Confusion matrix</h3><img class="confusion" alt="confusion matrix of '
                   f'{esc(ev.model_name)}@{esc(ev.version)}" src="{_confusion_uri(ev.confusion_png)}">')
    return f'{who}{note}<div class="cols"><div>{metrics}{per_class}</div><div class="picture">{picture}</div></div>'


# -- the page ---------------------------------------------------------------------------------------
def render(d: ReportData, thumbs: dict[tuple[str, float], Thumb], settings: ReportSettings) -> str:
    from actionrec import __version__

    e = d.errors
    body = [
        _header(d),
        _section("counts", "Counts", _counts(d, settings), e, "counts"),
        _section("recent", "Labels over recent runs", _recent(d, settings), e, "recent"),
        _section("drift", "Drift", _drift(d), e),
        _section("failures", "Failures", _failures(d), e, "failures"),
        _section("examples", "Top examples per label", _examples(d, thumbs, settings), e, "examples"),
        _section("queue", "Labeling queue", _queue(d, thumbs), e, "queue"),
        _section("evaluation", "The champion's latest evaluation", _evaluation(d), e, "evaluation"),
        f'<footer>actionrec {esc(__version__)} &middot; report made {when(datetime.now(UTC))}</footer>',
    ]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f'<title>Tag run {esc(d.run["run_id"])} &middot; actionrec</title><style>{STYLE}</style></head>'
            f'<body><main>{"".join(body)}</main></body></html>\n')


def _wanted(d: ReportData) -> list[Wanted]:
    exs = [ex for _, _, group in d.examples for ex in group] + list(d.queue)
    return [Wanted(ex.video_uri, ex.at_s, ex.video_bytes) for ex in exs]


def build_report(lake: str | os.PathLike, run_id: str | None = None,
                 settings: ReportSettings | None = None) -> str:
    """The HTML page of one tag run (the latest when ``run_id`` is None). ``ConfigError`` when the
    lake has no such run (or no tag run at all)."""
    return _build(os.fspath(lake), run_id, settings or ReportSettings())[1]


def _build(lake: str, run_id: str | None, settings: ReportSettings) -> tuple[ReportData, str]:
    data = gather(lake, run_id, settings)
    thumbs = thumbnails(_wanted(data), size=settings.thumb_size, workers=settings.thumb_workers,
                        budget_s=settings.thumb_budget_s, max_s3_bytes=settings.thumb_max_mb * 1_000_000)
    return data, render(data, thumbs, settings)


def report_key(run_id: str, run_date: date) -> str:
    """The report's place in the lake: ``reports/run_date=YYYY-MM-DD/<run_id>.html``."""
    return f"reports/run_date={run_date.isoformat()}/{check_name('run id', run_id)}.html"


def write_report(lake: str | os.PathLike, run_id: str | None = None, out: str | os.PathLike | None = None,
                 settings: ReportSettings | None = None) -> str:
    """Build the report and write it whole or not at all: to ``out`` (a local path or ``s3://`` URI),
    or beside the run in the lake (``report_key``). Returns where it went."""
    from actionrec.io import atomic
    from actionrec.lake.lake import Lake

    lake = os.fspath(lake)
    if out is not None and not is_s3(os.fspath(out)) and local_path(os.fspath(out)).is_dir():
        raise ConfigError(f"{os.fspath(out)} is a folder: name the HTML file to write")
    data, page = _build(lake, run_id, settings or ReportSettings())
    payload = page.encode("utf-8")
    if out is None:
        return Lake(lake).store.write_bytes(report_key(data.run["run_id"], run_date_of(data.run)), payload)
    target = os.fspath(out)
    if is_s3(target):
        from actionrec.io.s3 import put_bytes

        bucket, key = split_s3(target)
        put_bytes(bucket, key, payload)
        return target
    return str(atomic.write_bytes(local_path(target), payload))
