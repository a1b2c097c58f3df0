"""The ``actionrec`` command's core (no Prefect): predict, inspect, train, evaluate, synth, query,
report, models. The pipeline layers add tag, retrain, demo and serve through ``extensions``.

Exit status (``actionrec.errors``): 0 all good; 1 the work ran but some videos failed (each has a
line with its reason); 2 usage or configuration error, with one clear line; 3 the run did not
finish (a shard lost, storage unreachable, a download failed): a rerun takes the rest; 130 interrupted.

Options that mirror a settings dataclass (``InferenceSettings``, ``TagSettings``, ``TrainConfig``,
``RetrainSettings``) are generated from its fields, so a flag's default and help are the
dataclass's, and every command that has the flag means the same thing by it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from actionrec.data.labels import LabelRules
from actionrec.engines.choice import EXPORT_FORMATS
from actionrec.errors import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    ActionRecError,
    ConfigError,
    Terminated,
    exit_status,
)
from actionrec.inference.settings import DEFAULTS, InferenceSettings
from actionrec.names import DEFAULT_MODEL_NAME
from actionrec.stopping import stop_on_signals

__all__ = ["EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_SOME_FAILED", "EXIT_USAGE", "main"]


# -- output ---------------------------------------------------------------------------------------
def json_default(value: Any) -> Any:
    """JSON for what ``json`` cannot write: datetimes in ISO 8601, paths as text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def emit_json(obj: Any) -> None:
    print(json.dumps(obj, default=json_default), flush=True)


def print_rows(cols: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "json":
        for r in rows:
            emit_json(dict(zip(cols, r, strict=True)))
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows(rows)
    else:
        def cell(v: Any) -> str:
            return "" if v is None else v.isoformat() if isinstance(v, datetime | date) else str(v)

        cells = [[str(c) for c in cols]] + [[cell(v) for v in r] for r in rows]
        widths = [min(max(len(row[i]) for row in cells), 60) for i in range(len(cols))]
        for n, row in enumerate(cells):
            print("  ".join(v[:60].ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                print("  ".join("-" * w for w in widths))


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only for a person at a terminal (never in logs or pipes), unless --quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


# -- options generated from the settings dataclasses ----------------------------------------------
def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.removesuffix("_s").replace("_", "-")


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def add_options(p: argparse.ArgumentParser, cls: type, *, skip: Sequence[str] = ()) -> None:
    """One flag per CLI field of a settings dataclass; unset flags are not passed on (the dataclass
    default applies, and the help shows it)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.metadata.get("cli", False):
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f"{f.metadata.get('help', '')} (default: {_shown(default)})"
        kind = hints[f.name]
        args = typing.get_args(kind)
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(a for a in args if a is not type(None))
            args = typing.get_args(kind)
        if kind is bool:
            flag = _flag(f) if not default else "--no-" + _flag(f).removeprefix("--")
            p.add_argument(flag, dest=f.name, action="store_false" if default else "store_true",
                           default=argparse.SUPPRESS, help=help_text)
        elif typing.get_origin(kind) is Literal:
            p.add_argument(_flag(f), dest=f.name, choices=list(args), default=argparse.SUPPRESS, help=help_text)
        else:
            p.add_argument(_flag(f), dest=f.name, type=kind, default=argparse.SUPPRESS, help=help_text,
                           metavar=f.name.upper())


def options_from(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` that the command line set."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def add_lake(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lake", default=None,
                   help="lake folder or s3://bucket/prefix (default: $ACTIONREC_LAKE, else ./actionrec-lake)")


def lake_of(args: argparse.Namespace) -> str:
    from actionrec.lake.lake import default_lake

    return args.lake or default_lake()


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout (default: off)")


def add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL_NAME,
                   help="checkpoint path or URI, name[@version] in the lake's registry, or torchvision:<arch>"
                        f"[:<weights>] (default: {DEFAULT_MODEL_NAME}, the lake's champion)")


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar (default: off; bars show on a terminal)")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--s3-endpoint-url", default=None,
                        help="S3-compatible endpoint: MinIO, Ceph, R2... (default: $AWS_ENDPOINT_URL, else AWS)")
    return common


def apply_endpoint(args: argparse.Namespace) -> None:
    if getattr(args, "s3_endpoint_url", None):
        os.environ["AWS_ENDPOINT_URL"] = args.s3_endpoint_url
        from actionrec.io import s3

        s3.reset_clients()


# -- commands -------------------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    from actionrec.inference.model import Model

    settings = InferenceSettings(**options_from(args, InferenceSettings))
    model = Model.load(args.model, lake=lake_of(args))
    results = model.predict(args.videos, top_k=settings.top_k, clips=settings.clips, crops=settings.crops,
                            every=settings.every, progress=show_progress(args), **settings.predictor_options())
    failed = 0
    for r in results:
        failed += r.status == "failed"
        segments = []
        if settings.every is not None:  # a dense timeline: where each label holds (default segment rules)
            from actionrec.moments.segments import video_segments

            segments = video_segments(r)
        if args.json:
            dense = {"segments": [s.to_dict() for s in segments],
                     "shots": [dataclasses.asdict(s) for s in r.shots]} if settings.every is not None else {}
            emit_json({**r.to_dict(timeline=args.timeline), **dense, "model_name": model.name,
                       "model_version": model.version})
        elif r.status == "failed":
            print(f"{r.uri}\tFAILED\t{r.error}")
        else:
            labels = ", ".join(f"{x.label} {x.score:.3f}" for x in r.top_k)
            note = f"\t(partial: {r.error})" if r.status == "partial" else ""
            print(f"{r.uri}\t{labels}{note}")
            if args.timeline:
                for c in r.clips:
                    print(f"  {c.start_s:8.2f}-{c.end_s:8.2f}s\t{c.top_k[0].label} {c.top_k[0].score:.3f}")
            for seg in segments:
                print(f"  segment {seg.start_s:8.2f}-{seg.end_s:8.2f}s\t{seg.label} {seg.score:.3f}")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from actionrec.data.sampling import uniform_clips
    from actionrec.data.spec import InputSpec
    from actionrec.io.storage import open_input
    from actionrec.io.video import VideoReader

    InferenceSettings(clips=args.clips)
    spec = InputSpec()
    if args.model:
        from actionrec.models.refs import load_model

        spec = load_model(args.model, lake=lake_of(args)).spec
    with open_input(args.video) as source, VideoReader(source) as reader:
        info = reader.info()
        clips = uniform_clips(reader.duration, reader.fps, args.clips, spec.clip_sampling)
        out = {**info.to_dict(), "uri": args.video, "partial": reader.partial_reason,
               "clips": [[round(float(t), 4) for t in c] for c in clips]}
        if args.sheet:
            from actionrec.data.sheet import contact_sheet

            flat = [t for c in clips for t in c]
            read = reader.read(flat, short_side=spec.short_side)
            contact_sheet(read.frames_thwc, read.frame_times_s, len(clips), args.sheet)
            out["sheet"] = str(args.sheet)
            out["frames_decoded"] = read.stats.frames_decoded
    if args.json:
        emit_json(out)
    else:
        for key in ("uri", "container", "codec", "width", "height", "fps", "num_frames", "duration_s", "has_audio",
                    "bytes", "partial"):
            print(f"{key:>12}: {out[key]}")
        for i, c in enumerate(out["clips"]):
            print(f"{'clip ' + str(i):>12}: {', '.join(f'{t:.3f}' for t in c)}")
        if args.sheet:
            print(f"{'sheet':>12}: {args.sheet}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from actionrec.data.labels import read_labels
    from actionrec.names import check_name
    from actionrec.pipelines.retraining import initial_model
    from actionrec.training.config import TrainConfig
    from actionrec.training.loop import train

    cfg = TrainConfig(**options_from(args, TrainConfig))
    check_name("model name", args.name)
    labels = read_labels(args.labels, rules=LabelRules(**options_from(args, LabelRules)))
    init = initial_model(args.init, lake_of(args), args.name)
    state = f"{args.out}.state.pt" if args.resume else None
    result = train(cfg, labels, init=init, out=args.out, progress=show_progress(args), model_name=args.name,
                   state_path=state)
    summary = {"checkpoint": str(args.out), "model_name": result.model.name, "model_version": result.model.version,
               "arch": result.model.arch, "best_val_top1": result.best_val_top1, "best_epoch": result.best_epoch,
               "epochs_run": len(result.history), "skipped_videos": len(result.skipped),
               "seconds": round(result.seconds, 1)}
    if args.json:
        emit_json(summary)
    else:
        for k, v in summary.items():
            print(f"{k:>14}: {v}")
        for s in result.skipped:
            print(f"SKIPPED {s['uri']}: {s['reason']}", file=sys.stderr)
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from actionrec.data.labels import read_labels
    from actionrec.errors import ConfigError
    from actionrec.evaluation.evaluate import evaluate_model, write_evaluation
    from actionrec.models.refs import load_model

    settings = InferenceSettings(**options_from(args, InferenceSettings))
    labels = read_labels(args.labels, rules=LabelRules(**options_from(args, LabelRules)))
    rows = list(labels.rows) if args.split == "all" else labels.split(args.split)
    if not rows:
        raise ConfigError(f"labels: the {args.split!r} split of {args.labels} is empty (use --split)")
    model = load_model(args.model, lake=lake_of(args))
    ev = evaluate_model(model, rows, clips=settings.clips, crops=settings.crops, progress=show_progress(args),
                        **settings.predictor_options())
    summary = {**ev.to_dict(), "model_name": model.name, "model_version": model.version, "split": args.split,
               "report": None, "confusion_png": None}
    if args.out:
        out_dir = write_evaluation(ev, args.out, model=model, split=args.split, extra={"labels": args.labels})
        summary.update(report=str(out_dir / "report.md"), confusion_png=str(out_dir / "confusion.png"))
    if args.json:
        emit_json(summary)
    else:
        r = ev.result
        print(f"top-1 {r.top1:.1%}  top-5 {r.top5:.1%}  mean class accuracy {r.mean_class_accuracy:.1%}  "
              f"ECE {r.ece:.3f}  ({r.num_videos} videos, {ev.clips_per_video} clips each)")
        for u, reason in ev.failed:
            print(f"FAILED {u}: {reason}")
        if args.out:
            print(f"report: {summary['report']}")
    return EXIT_SOME_FAILED if ev.failed else EXIT_OK


def cmd_synth(args: argparse.Namespace) -> int:
    from actionrec.data.synth import SynthConfig, write_dataset

    cfg = SynthConfig(per_class=args.per_class, seed=args.seed, size=args.size, num_frames=args.frames, fps=args.fps)
    labels = write_dataset(args.out, cfg, progress=show_progress(args))
    print(labels)
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    from actionrec.lake.query import QueryLimits, query

    cols, rows = query(lake_of(args), args.sql, limits=QueryLimits(**options_from(args, QueryLimits)))
    print_rows(cols, rows, "json" if args.json else args.format)
    return EXIT_OK


def cmd_similar(args: argparse.Namespace) -> int:
    """The nearest videos to one video of the lake by its embedding; exit 2 when it has none."""
    from actionrec.lake.query import QueryLimits
    from actionrec.lake.similar import similar

    name, _, version = (args.model or "").partition("@")
    found = similar(lake_of(args), args.video, args.k, name or None, model_version=version or None,
                    limits=QueryLimits(**options_from(args, QueryLimits)))
    if args.json:
        for rank, n in enumerate(found, 1):
            emit_json({"rank": rank, **n._asdict()})
    else:
        print_rows(["rank", "score", "video_uri"], [(rank, f"{n.score:.4f}", n.video_uri)
                                                    for rank, n in enumerate(found, 1)], "table")
    return EXIT_OK


def cmd_find(args: argparse.Namespace) -> int:
    from actionrec.moments.find import clock, find, known_labels, moments_sheet

    lake = lake_of(args)
    moments = find(lake, args.label, min_score=args.min_score, model=args.model, limit=args.limit)
    for m in moments:
        if args.json:
            emit_json(m.to_dict())
        else:
            print(f"{m.score:.3f}  {clock(m.start_s)}-{clock(m.end_s)}  {m.video_uri}")
    if not moments and not args.json:
        labels = known_labels(lake)
        print(f"no segment labeled {args.label!r} scores {args.min_score:g} or more"
              + (f"; labels with segments: {', '.join(labels[:20])}" if labels else
                 "; the lake has no segments yet (tag with --every SECONDS)"), file=sys.stderr)
    if args.sheet and moments:
        moments_sheet(moments, args.sheet)
        if not args.json:
            print(f"sheet: {args.sheet}")
    return EXIT_OK


def cmd_lake_check(args: argparse.Namespace) -> int:
    """Exit 0 when every lake file is whole, 1 when damaged ones were found (and moved aside with
    --quarantine)."""
    import logging

    from actionrec.lake.lake import Lake

    logging.getLogger("actionrec.lake").setLevel(logging.ERROR)  # this command reports them itself
    lake = Lake(lake_of(args)).require()
    damaged = lake.check()
    for uri, reason in sorted(damaged.items()):
        moved = lake.quarantine(uri) if args.quarantine else None
        if args.json:
            emit_json({"file": uri, "reason": reason, "moved_to": moved})
        else:
            print(f"DAMAGED {uri}: {reason}" + (f"\n  moved to {moved}" if moved else ""))
    if not args.json:
        print(f"{len(damaged)} damaged file(s) in {lake.root}" + (" (moved aside)" if damaged and args.quarantine
                                                                  else ""))
    return EXIT_SOME_FAILED if damaged else EXIT_OK


def cmd_label_export(args: argparse.Namespace) -> int:
    from actionrec.loop.labelstudio import VideoUrls, export_queue

    urls = VideoUrls(expiry_s=args.url_expiry, document_root=args.document_root)
    done = export_queue(lake_of(args), args.out, run_id=args.run, urls=urls)
    if args.json:
        emit_json(done)
    else:
        print(f"{done['tasks']} tasks over {done['classes']} classes: import {done['tasks_file']} into a Label Studio "
              f"project whose labeling config is {done['label_config']}")
    return EXIT_OK


def cmd_label_import(args: argparse.Namespace) -> int:
    from actionrec.loop.labelstudio import import_file

    done = import_file(lake_of(args), args.file, fmt=args.format, annotator=args.annotator)
    if args.json:
        emit_json(done.to_dict())
    else:
        what = "new import" if done.new else "already imported (nothing added)"
        print(f"{done.answers} answers for {done.videos} videos: {what}; labels version {done.labels_version}")
    return EXIT_OK


def cmd_label_like(args: argparse.Namespace) -> int:
    from actionrec.loop.queue import queue_like

    rows = queue_like(lake_of(args), args.label, args.k, model_name=args.model).to_pylist()
    for r in rows:
        if args.json:
            emit_json({k: r[k] for k in ("run_id", "rank", "video_uri", "score", "reason")})
        else:
            print(f"{r['rank']:>3}  {r['score']:.3f}  {r['video_uri']}")
    if not args.json:
        print(f"{len(rows)} videos queued (actionrec label export)")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from actionrec.report import ReportSettings, write_report

    where = write_report(lake_of(args), args.run, args.out, ReportSettings(**options_from(args, ReportSettings)))
    print(where)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from actionrec.engines.export import export
    from actionrec.models.refs import load_model

    done = export(load_model(args.model, lake=lake_of(args)), args.format, args.out)
    if args.json:
        emit_json(done.to_dict())
    else:
        print(f"{done.path} ({done.format}); against torch on a random batch: max probability difference "
              f"{done.max_prob_diff:.2g}, top-1 {'agrees' if done.top1_agree else 'DIFFERS'}")
    return EXIT_OK


def cmd_quantize(args: argparse.Namespace) -> int:
    from actionrec.engines.quantize import check_min_agreement, quantize
    from actionrec.io.storage import list_videos
    from actionrec.models.refs import pin_model

    check_min_agreement(args.min_agreement)
    if args.max_videos < 2:
        raise ConfigError(f"--max-videos must be >= 2, got {args.max_videos}")
    videos = [v.uri for v in list_videos(args.videos) if v.error is None][: args.max_videos]
    lake = lake_of(args)
    done = quantize(pin_model(args.model, lake), videos, clips=args.clips, min_agreement=args.min_agreement,
                    lake=lake)
    if args.json:
        emit_json(done.to_dict())
    else:
        print(f"accepted: int8 agrees with f32 on {done.agreement:.1%} of {done.checked_clips} held-out clips "
              f"({done.calibration_clips} calibration clips); use --precision int8. {done.path}")
    return EXIT_OK


def cmd_models_archs(args: argparse.Namespace) -> int:
    """Every architecture with its input spec, cost and cached weights; ``--measure`` times it first."""
    from actionrec.engines import profile
    from actionrec.models.architectures import get_architecture, list_architectures
    from actionrec.models.weights import weights_cache_path

    names = list_architectures()
    unknown = sorted(set(args.arch or ()) - set(names))
    if unknown:
        raise ConfigError(f"--arch: unknown architecture {', '.join(unknown)}; known: {', '.join(names)}")
    names = [n for n in names if not args.arch or n in args.arch]
    engines = profile.cpu_engines()
    if args.measure:
        from tqdm import tqdm

        jobs = [(n, e) for n in names for e in engines]
        for name, engine in tqdm(jobs, desc="measuring", disable=not show_progress(args) or args.json):
            profile.measure(name, engine)
    rows = []
    for name in names:
        a = get_architecture(name)
        s = a.default_spec
        c = profile.cost(name)
        rows.append({"arch": name, "order_aware": a.order_aware, "weights": list(a.pretrained),
                     "input_spec": s.to_dict(), "description": a.description,
                     "params": c.params if c else None, "gflops_per_clip": c.gflops if c else None,
                     "weights_cached": {w: weights_cache_path(u).exists() for w, u in a.urls.items()},
                     "seconds_per_clip": {e: profile.stored_seconds(name, e) for e in engines}})
    if args.json:
        for r in rows:
            emit_json(r)
        return EXIT_OK

    def window(s: dict[str, Any]) -> str:
        frames = f"{s['frames_per_clip']}@{s['sample_fps']:g}fps" if s["sampling"] == "fps" else \
            f"{s['frames_per_clip']} {s['sampling']}"
        return f"{frames} {s['crop_size']}px" if not s.get("crop_width") else f"{frames} {s['crop_size']}x{s['crop_width']}px"

    def seconds(v: float | None) -> str:
        return "-" if v is None else f"{v:.3g}"

    cols = ["arch", "order_aware", "weights", "cached", "input", "params", "GFLOPs"] + \
        [f"{e}_s/clip" for e in engines] + ["description"]
    print_rows(cols, [(r["arch"], "yes" if r["order_aware"] else "no", ",".join(r["weights"]) or "-",
                       ",".join(w for w, hit in r["weights_cached"].items() if hit) or "-", window(r["input_spec"]),
                       "-" if r["params"] is None else f"{r['params'] / 1e6:.2f}M",
                       "-" if r["gflops_per_clip"] is None else f"{r['gflops_per_clip']:.3g}",
                       *(seconds(r["seconds_per_clip"][e]) for e in engines), r["description"]) for r in rows],
               "table")
    return EXIT_OK


def cmd_models_pull(args: argparse.Namespace) -> int:
    """Exit 0 when the weights are in the cache and verified; 2 for a reference with nothing to fetch or
    a refused file (wrong hash, not on the mirror); 3 when the server could not be reached or the
    download was cut short (nothing kept, try again)."""
    from actionrec.models.download import pull

    done = pull(args.ref, mirror=args.mirror, progress=show_progress(args) and not args.json)
    if args.json:
        emit_json(done)
    elif done.status == "cached":
        print(f"{done.ref}: already in the cache{', verified' if done.verified else ''}: {done.path}")
    else:
        check = "sha256 verified" if done.verified else "no published hash to check"
        print(f"{done.ref}: downloaded {done.bytes / 2**20:.1f} MiB from {done.source} ({check}) to {done.path}")
    return EXIT_OK


def _registry_rows(lake: Any, name: str) -> list[dict[str, Any]]:
    champion = lake.champion(name)
    rows = []
    for version in lake.versions(name):
        card = lake.card(name, version) or {}
        ev = lake.evaluation(name, version) or {}
        rows.append({"model_name": name, "version": version, "champion": version == champion,
                     "arch": card.get("arch"), "classes": len(card.get("classes") or []),
                     "created_at": card.get("created_at"), "eval_split": ev.get("split"), "top1": ev.get("top1"),
                     "eval_videos": ev.get("num_videos"), "promoted": ev.get("promoted")})
    return rows


def cmd_models_list(args: argparse.Namespace) -> int:
    from actionrec.lake.lake import Lake

    lake = Lake(lake_of(args)).require()
    rows = [r for name in ([args.name] if args.name else lake.model_names()) for r in _registry_rows(lake, name)]
    if args.json:
        for r in rows:
            emit_json(r)
    else:
        cols = ["model_name", "version", "champion", "arch", "classes", "created_at", "eval_split", "top1", "promoted"]
        print_rows(cols, [tuple("*" if c == "champion" and r[c] else ("" if c == "champion" else r[c])
                                for c in cols) for r in rows], "table")
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    from actionrec.errors import ConfigError
    from actionrec.lake.lake import Lake
    from actionrec.models.refs import parse_model_ref

    ref = parse_model_ref(args.ref)
    if ref.kind != "registry":
        raise ConfigError(f"models show takes a registry name[@version], got {args.ref!r}")
    lake = Lake(lake_of(args)).require()
    version = ref.version or lake.champion(ref.name)
    if version is None or not lake.has_model(ref.name, version):
        raise ConfigError(f"no model {ref.name}{'@' + version if version else ''} in lake {lake.root}")
    out = {"model_name": ref.name, "version": version, "champion": lake.champion(ref.name),
           "card": lake.card(ref.name, version), "evaluation": lake.evaluation(ref.name, version),
           "report": lake.evaluation_uri(ref.name, version, "report.md"),
           "history": [e.to_dict() for e in lake.history(ref.name)]}
    if args.json:
        emit_json(out)
        return EXIT_OK
    card = out["card"] or {}
    print(f"{ref.name}@{version}{'  (champion)' if version == out['champion'] else ''}")
    print(f"  arch {card.get('arch')}, {card.get('num_classes')} classes, created {card.get('created_at')}")
    print(f"  input spec {card.get('input_spec')}")
    ev = out["evaluation"]
    if ev:
        print(f"  evaluated on {ev['split']} ({ev['num_videos']} videos): top-1 {ev['top1']:.3f}, "
              f"top-5 {ev['top5']:.3f}, mean class accuracy {ev['mean_class_accuracy']:.3f}; report {out['report']}")
    print("  champion history:")
    for e in out["history"]:
        kind = "rollback" if e["rollback"] else "promoted"
        print(f"    {e['promoted_at']}  {kind} {e['version']} (was {e['previous']}) by {e['by']}: {e['reason']}")
    return EXIT_OK


def cmd_models_promote(args: argparse.Namespace) -> int:
    from actionrec.errors import ConfigError
    from actionrec.lake.lake import Lake
    from actionrec.models.refs import parse_model_ref

    ref = parse_model_ref(args.ref)
    if ref.kind != "registry" or ref.version is None:
        raise ConfigError(f"models promote takes name@version, got {args.ref!r}")
    event = Lake(lake_of(args)).require().promote(ref.name, ref.version, reason=args.reason)
    _print_promotion(event, args.json)
    return EXIT_OK


def _print_promotion(event: Any, as_json: bool) -> None:
    if as_json:
        emit_json(event.to_dict())
    else:
        kind = "rollback" if event.rollback else event.reason
        print(f"{event.model_name}: champion {event.previous} -> {event.version} ({kind})")


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from actionrec.lake.lake import Lake
    from actionrec.names import check_name

    event = Lake(lake_of(args)).require().rollback(check_name("model name", args.name), reason=args.reason)
    _print_promotion(event, args.json)
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------
def add_archs_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--measure", action="store_true",
                   help="first time one clip per engine on this CPU (random weights, batch 1, median of 3) and "
                        "keep the figures for later listings; slow for big models (default: off)")
    p.add_argument("--arch", action="append", default=None, metavar="NAME",
                   help="only this architecture; repeat for more (default: every one)")
    add_json(p)
    add_quiet(p)
    p.set_defaults(func=cmd_models_archs)


def build_parser(extensions: Sequence[Callable[[Any, argparse.ArgumentParser], None]] = ()) -> argparse.ArgumentParser:
    """The core commands; ``extensions(sub, common)`` add more (the pipeline layers add tag, retrain, serve...)."""
    from actionrec import __version__
    from actionrec.lake.query import QueryLimits
    from actionrec.report.data import ReportSettings
    from actionrec.training.config import TrainConfig

    common = _common()
    parser = argparse.ArgumentParser(prog="actionrec", description="Batch action recognition for video archives.")
    parser.add_argument("--version", action="version", version=f"actionrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", parents=[common], help="quick answers for a few files, no orchestration")
    p.add_argument("videos", nargs="+", help="local paths, file:// or s3:// URIs (required)")
    add_model(p)
    add_options(p, InferenceSettings)
    p.add_argument("--timeline", action="store_true", help="also print per-clip predictions (default: off)")
    add_json(p)
    add_lake(p)
    add_quiet(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("inspect", parents=[common], help="container facts, sampled timestamps, contact sheet")
    p.add_argument("video", help="local path, file:// or s3:// URI (required)")
    p.add_argument("--model", default=None,
                   help="use this model's input spec (default: unset, the default input spec)")
    p.add_argument("--clips", type=int, default=DEFAULTS.clips, help=f"clips to lay out (default: {DEFAULTS.clips})")
    p.add_argument("--sheet", default=None, help="write a contact sheet of the sampled frames (PNG) (default: unset)")
    add_json(p)
    add_lake(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("train", parents=[common], help="train one checkpoint, no orchestration")
    p.add_argument("--labels", required=True, help="label table, CSV or Parquet: video_uri, label[, split] (required)")
    p.add_argument("--out", required=True, help="checkpoint to write; its card.json goes beside it (required)")
    add_options(p, TrainConfig)
    add_options(p, LabelRules)
    p.add_argument("--name", default=DEFAULT_MODEL_NAME, help=f"model name recorded in the checkpoint (default: "
                                                             f"{DEFAULT_MODEL_NAME})")
    p.add_argument("--init", default="scratch", help="start from: scratch, champion (the lake's champion of --name) "
                                                     "or a model reference (default: scratch)")
    p.add_argument("--resume", action="store_true",
                   help="save the training state to OUT.state.pt every epoch, and resume from it if present "
                        "(default: off)")
    add_json(p)
    add_lake(p)
    add_quiet(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", parents=[common], help="top-1, top-5, mean class accuracy... on labeled videos")
    add_model(p)
    p.add_argument("--labels", required=True, help="label table (required)")
    p.add_argument("--split", choices=["train", "val", "test", "all"], default="test",
                   help="which rows of the label table (default: test)")
    add_options(p, InferenceSettings, skip=("top_k", "every"))  # video-level scores: a fixed number of clips
    add_options(p, LabelRules)
    p.add_argument("--out", default=None, help="folder for report.md, confusion.png, metrics.json "
                                               "(default: unset, nothing written)")
    add_json(p)
    add_lake(p)
    add_quiet(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("synth", help="write the synthetic temporal dataset (videos + labels.csv)")
    p.add_argument("--out", required=True, help="folder to write (required)")
    p.add_argument("--per-class", type=int, default=40, help="videos per class (default: 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--size", type=int, default=64, help="frame side in pixels (default: 64)")
    p.add_argument("--frames", type=int, default=32, help="frames per video (default: 32)")
    p.add_argument("--fps", type=int, default=16, help="frames per second (default: 16)")
    add_quiet(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("query", parents=[common], help="read-only SQL over the lake views")
    p.add_argument("sql", help="one SELECT statement (required)")
    add_lake(p)
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output (default: table)")
    add_options(p, QueryLimits)
    add_json(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("similar", parents=[common],
                       help="videos most like one video, by cosine similarity of embeddings (tag --embeddings)")
    p.add_argument("video", help="video URI or local path, as the lake knows it (required)")
    p.add_argument("--k", type=int, default=10, help="how many neighbours (default: 10)")
    add_lake(p)
    p.add_argument("--model", default=None,
                   help="NAME[@VERSION] whose embeddings to compare (default: unset, the model that embedded the "
                        "video last); only vectors of one model version are ever compared")
    add_options(p, QueryLimits)
    add_json(p)
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("find", parents=[common], help="videos and time ranges where a label occurs, best first "
                                                     "(segments of dense tag runs)")
    p.add_argument("label", help="the label to look for, as the model names it (required)")
    p.add_argument("--min-score", type=float, default=0.0, help="only segments scoring this or more (default: 0)")
    p.add_argument("--model", default=None, help="only segments of this model name (default: unset, every model)")
    p.add_argument("--limit", type=int, default=100, help="at most this many segments (default: 100)")
    p.add_argument("--sheet", default=None, help="write a contact sheet (PNG) with a thumbnail at each segment's "
                                                 "start, 0.5 s in (past a fade or cut) (default: unset)")
    add_lake(p)
    add_json(p)
    p.set_defaults(func=cmd_find)

    p = sub.add_parser("lake", parents=[common], help="look after the lake itself")
    lsub = p.add_subparsers(dest="lake_command", required=True)
    m = lsub.add_parser("check", parents=[common], help="find lake files that are not whole files of their table")
    m.add_argument("--quarantine", action="store_true",
                   help="move them to <lake>/_quarantine/, where no query or run reads them (default: off)")
    add_lake(m)
    add_json(m)
    m.set_defaults(func=cmd_lake_check)

    p = sub.add_parser("label", parents=[common], help="the labeling queue to Label Studio, and answers back")
    lsub = p.add_subparsers(dest="label_command", required=True)
    m = lsub.add_parser("export", parents=[common], help="Label Studio tasks (tasks.json) and labeling config "
                                                         "(label_config.xml) for the videos waiting in the queue")
    m.add_argument("--out", required=True, help="folder for tasks.json and label_config.xml (required)")
    m.add_argument("--run", default=None, help="only this tag run's queue (default: every open entry)")
    m.add_argument("--url-expiry", type=int, default=7 * 24 * 3600,
                   help="seconds an s3:// video's presigned URL stays valid, at most 7 days (default: 604800)")
    m.add_argument("--document-root", default="/",
                   help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT, for local videos (default: /)")
    add_lake(m)
    add_json(m)
    m.set_defaults(func=cmd_label_export)
    m = lsub.add_parser("import", parents=[common], help="people's answers into the lake's labels table: Label "
                                                         "Studio's JSON, JSON_MIN or CSV export, or a plain CSV")
    m.add_argument("file", help="the export, or a CSV with video_uri, label[, annotator, labeled_at] (required)")
    m.add_argument("--format", choices=["auto", "json", "json-min", "csv"], default="auto",
                   help="the file's format (default: auto, from its content)")
    m.add_argument("--annotator", default=None, help="who answered, where the file does not say (default: unset)")
    add_lake(m)
    add_json(m)
    m.set_defaults(func=cmd_label_import)
    m = lsub.add_parser("more-like", parents=[common], help="queue the unlabeled videos most like those labeled "
                                                            "LABEL (needs embeddings: tag --embeddings)")
    m.add_argument("label", help="a label people gave (required)")
    m.add_argument("--k", type=int, default=20, help="videos to queue (default: 20)")
    m.add_argument("--model", default=None, help="model name whose embeddings to compare (default: the "
                                                 "examples' latest)")
    add_lake(m)
    add_json(m)
    m.set_defaults(func=cmd_label_like)

    p = sub.add_parser("report", parents=[common], help="one self-contained HTML page about a tag run, for people")
    p.add_argument("--run", default=None, help="run id (default: unset, the latest tag run)")
    p.add_argument("--out", required=True, help="HTML file to write, a path or s3:// URI (required)")
    add_lake(p)
    add_options(p, ReportSettings)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", parents=[common], help="write a model as OpenVINO IR or ONNX, to serve elsewhere")
    p.add_argument("model", help="model reference: checkpoint, name[@version] in the lake, torchvision:<arch> (required)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="openvino", help="(default: openvino)")
    p.add_argument("--out", required=True, help="folder for the model file and its meta.json (required)")
    add_lake(p)
    add_json(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("quantize", parents=[common],
                       help="make an int8 OpenVINO graph of a model, kept only if it agrees with f32")
    p.add_argument("model", help="model reference: checkpoint, name[@version] in the lake, torchvision:<arch> (required)")
    p.add_argument("--videos", required=True, help="calibration videos: folder, file or s3:// prefix, like the "
                                                   "ones you tag (required)")
    p.add_argument("--max-videos", type=int, default=64, help="videos read, half to calibrate, half to check "
                                                              "(default: 64)")
    p.add_argument("--clips", type=int, default=2, help="clips per video (default: 2)")
    p.add_argument("--min-agreement", type=float, default=0.99,
                   help="top-1 agreement with f32 on the held-out clips needed to accept (default: 0.99)")
    add_lake(p)
    add_json(p)
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("models", parents=[common], help="architectures; pretrained weights; a lake's model registry")
    add_archs_options(p)
    msub = p.add_subparsers(dest="models_command")
    m = msub.add_parser("archs", parents=[common], help="registered architectures, their cost and cached weights "
                                                        "(the default)")
    add_archs_options(m)
    m = msub.add_parser("pull", parents=[common], help="download pretrained weights into the local cache "
                                                       "(run time never downloads)")
    m.add_argument("ref", help="torchvision:|pytorchvideo:<arch>[:<weights>] or hf:<hub id> (required)")
    m.add_argument("--mirror", default=None,
                   help="base URL that hosts the same files (the published URL's path is appended) "
                        "(default: $ACTIONREC_WEIGHTS_MIRROR, else the published URL)")
    add_json(m)
    add_quiet(m)
    m.set_defaults(func=cmd_models_pull)
    m = msub.add_parser("list", parents=[common], help="versions in the lake's registry, with metrics")
    m.add_argument("--name", default=None, help="only this model name (default: unset, every name)")
    add_lake(m)
    add_json(m)
    m.set_defaults(func=cmd_models_list)
    m = msub.add_parser("show", parents=[common], help="a version's card, evaluation and the champion history")
    m.add_argument("ref", help="name (its champion) or name@version (required)")
    add_lake(m)
    add_json(m)
    m.set_defaults(func=cmd_models_show)
    m = msub.add_parser("promote", parents=[common], help="make name@version the champion")
    m.add_argument("ref", help="name@version (required)")
    m.add_argument("--reason", default="promoted by hand", help="recorded in the history (default: promoted by hand)")
    add_lake(m)
    add_json(m)
    m.set_defaults(func=cmd_models_promote)
    m = msub.add_parser("rollback", parents=[common], help="give the champion role back to the model it replaced")
    m.add_argument("name", help="model name (required)")
    m.add_argument("--reason", default="rollback", help="recorded in the history (default: rollback)")
    add_lake(m)
    add_json(m)
    m.set_defaults(func=cmd_models_rollback)

    for extend in extensions:
        extend(sub, common)
    return parser


def main(argv: Sequence[str] | None = None,
         extensions: Sequence[Callable[[Any, argparse.ArgumentParser], None]] = ()) -> int:
    parser = build_parser(extensions)
    args = parser.parse_args(argv)
    try:
        apply_endpoint(args)
        with stop_on_signals():
            return int(args.func(args))
    except BrokenPipeError:  # `actionrec ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (KeyboardInterrupt, Terminated) as e:
        print(f"actionrec {args.command}: stopped ({'SIGTERM' if isinstance(e, Terminated) else 'Ctrl-C'}); what "
              "was finished is kept, a rerun takes the rest", file=sys.stderr)
        return exit_status(e)
    except ActionRecError as e:
        print(f"actionrec {args.command}: {e}", file=sys.stderr)
        return exit_status(e)
    except Exception as e:  # not one of ours: a bug or an outage deep in a library
        if getattr(args, "verbose", False):
            traceback.print_exc()
        hint = "" if getattr(args, "verbose", False) else " (--verbose shows the traceback)"
        print(f"actionrec {args.command}: unexpected {type(e).__name__}: {e}{hint}", file=sys.stderr)
        return exit_status(e)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
