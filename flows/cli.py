"""Orchestrated commands of the ``actionrec`` CLI: tag, retrain, demo.

Inputs are checked before Prefect starts (settings, the lake location, the model), so a
configuration error exits 2 at once with one line. Prefect's own console log is quiet unless
``--verbose`` (the run's logs still reach the Prefect server and its UI); the command prints its
own summary, and one line on stderr when the run failed or did not finish.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from actionrec.cli import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    add_json,
    add_lake,
    add_options,
    add_quiet,
    emit_json,
    lake_of,
    options_from,
    print_rows,
    show_progress,
)
from actionrec.data.labels import LabelRules
from actionrec.errors import ActionRecError, RunIncompleteError
from actionrec.names import DEFAULT_MODEL_NAME
from actionrec.pipelines.settings import RetrainSettings, TagSettings
from actionrec.stopping import reraise_stop
from actionrec.training.config import TrainConfig
from flows.server import prefect_api


def quiet_prefect_console(verbose: bool) -> None:
    """Prefect logs to the console through one handler on the root logger: quiet it for a person at
    the command line (``--verbose`` keeps it); the logs still go to the Prefect API."""
    import prefect.main  # noqa: F401  (sets up Prefect's logging, once per process)

    level = logging.INFO if verbose else logging.CRITICAL
    for handler in logging.getLogger().handlers:
        if type(handler).__name__ == "PrefectConsoleHandler":
            handler.setLevel(level)


@contextmanager
def orchestrated(verbose: bool) -> Iterator[None]:
    """For the block: a Prefect API (a temporary server when none is set, stopped on every way out),
    Prefect's console log quiet unless ``verbose``, Ctrl-C and SIGTERM ending the run in order.
    Import the flows inside the block."""
    with prefect_api():
        quiet_prefect_console(verbose)
        yield


def run_flow(flow: Any, **parameters: Any) -> Any:
    """Run a flow in this process; its error (our own, typed) is raised again as it was raised."""
    from prefect.states import get_state_exception

    state = flow(**parameters, return_state=True)
    reraise_stop()
    if state.is_completed():
        return state.result()
    exc = get_state_exception(state)
    if isinstance(exc, ActionRecError):
        raise exc
    raise RunIncompleteError(f"the run did not finish: {state.message or type(exc).__name__}") from exc


def _add_verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", action="store_true", help="show Prefect's log on the console (default: off)")


def cmd_tag(args: argparse.Namespace) -> int:
    from actionrec.io.storage import list_videos
    from actionrec.io.uris import is_s3
    from actionrec.lake.lake import Lake
    from actionrec.pipelines.tagging import resolve_model

    settings = TagSettings(**options_from(args, TagSettings))
    lake = lake_of(args)
    Lake(lake).check_writable()
    if not is_s3(args.source):
        list_videos(args.source)  # a missing source is a ConfigError now, not after Prefect started
    if settings.lease_wait_s == 0:
        from actionrec.errors import LakeBusyError
        from actionrec.lake.lease import Lease

        held = Lease(lake, "tag", "check", ttl_s=settings.lease_ttl_s).holder()
        if held is not None:  # say so now, rather than after Prefect started
            raise LakeBusyError(f"lake {lake} is being tagged by {held['owner']} (lease until {held['expires']}); "
                                "rerun later, or wait with --lease-wait")
    pinned = resolve_model(args.model, lake, settings)
    with orchestrated(args.verbose):
        from flows.tag import tag_flow

        flow = tag_flow
        if args.dask_address:
            from prefect_dask import DaskTaskRunner

            flow = tag_flow.with_options(task_runner=DaskTaskRunner(address=args.dask_address))
        try:
            row = run_flow(flow, source=args.source, lake=lake, model=pinned.ref, progress=show_progress(args),
                           **{k: getattr(settings, k) for k in options_from(args, TagSettings)})
        except RunIncompleteError as e:
            if e.row is not None:
                _print_run(e.row, args.json)
            raise
    _print_run(row, args.json)
    return EXIT_SOME_FAILED if row["failed"] else EXIT_OK


def _print_run(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(row)
        return
    print(f"tag run {row['run_id']} ({row['status']}): {row['videos_listed']} listed, {row['videos_skipped']} "
          f"skipped, {row['ok']} ok, {row['partial']} partial, {row['failed']} failed, {row['videos_lost']} lost, "
          f"{row['seconds']:.1f} s; model {row['model_name']}@{row['model_version']}")
    if row["damaged_files"]:
        print(f"{row['damaged_files']} damaged lake file(s) were skipped: see `actionrec lake check`")
    if row.get("drift_flag"):
        print(f"drift: {row['drift_reason']}")
    _print_report(row)


def _print_report(row: dict[str, Any]) -> None:
    """Where the run's report is, when the flow wrote it (it says so in its log when it could not)."""
    from actionrec.lake.lake import Lake
    from actionrec.report import report_key

    try:
        store = Lake(row["lake"]).store
        key = report_key(row["run_id"], row["started_at"].date())
        if store.exists(key):
            print(f"report: {store.uri(key)}")
    except ActionRecError:  # the lake cannot be reached now: the run itself is done and was reported above
        pass


def cmd_retrain(args: argparse.Namespace) -> int:
    from actionrec.lake.lake import Lake
    from actionrec.loop.labels import label_source
    from actionrec.pipelines.retraining import check_labels

    settings = RetrainSettings(**options_from(args, RetrainSettings))
    train_options = options_from(args, TrainConfig)
    TrainConfig(**train_options)
    rules = LabelRules(**options_from(args, LabelRules))
    lake = lake_of(args)
    Lake(lake).check_writable()
    # a missing, malformed or too small table fails before Prefect
    check_labels(label_source(args.labels, lake), settings, rules)
    if settings.init not in ("scratch", "champion"):
        from actionrec.models.refs import pin_model

        pin_model(settings.init, lake)
    with orchestrated(args.verbose):
        from flows.retrain import retrain_flow

        summary = run_flow(retrain_flow, labels=args.labels, lake=lake, train_options=train_options,
                           label_rules=rules, **{k: getattr(settings, k) for k in options_from(args, RetrainSettings)})
    if args.json:
        emit_json(summary)
    else:
        print(f"candidate {summary['candidate_version']}: top-1 {summary['candidate_top1']:.1%} on "
              f"{summary['test_videos']} {summary['split']} videos -> "
              f"{'promoted' if summary['promoted'] else 'not promoted'} ({summary['reason']})")
        print(f"report: {summary['report']}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    with orchestrated(args.verbose):
        from flows.demo import run_demo

        out = run_demo(args.dir, per_class=args.per_class, epochs=args.epochs, progress=show_progress(args))
        reraise_stop()
    r = out["retrain"]
    print(f"\nretrain: candidate {r['candidate_version']} top-1 {r['candidate_top1']:.1%} on {r['test_videos']} "
          f"held-out videos -> {'promoted' if r['promoted'] else 'not promoted'} ({r['reason']})")
    run = out["run"]
    print(f"tag run {run['run_id']}: {run['ok']} ok, {run['partial']} partial, {run['failed']} failed "
          f"in {run['seconds']:.1f} s\n")
    print_rows(out["columns"], out["rows"], "table")
    print(f"\nlake: {out['lake']}   try: actionrec query \"select * from runs\" --lake {out['lake']}")
    return EXIT_OK


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tag", parents=[common], help="run the tag flow once over a folder or s3:// prefix")
    p.add_argument("source", help="folder, video file or s3://bucket/prefix (required)")
    add_lake(p)
    p.add_argument("--model", default=None, help="model reference (default: the lake's champion of "
                                                 f"{DEFAULT_MODEL_NAME!r})")
    add_options(p, TagSettings)
    p.add_argument("--dask-address", default=None,
                   help="run shards on this Dask scheduler, tcp://host:8786 (default: unset, in this process)")
    add_json(p)
    add_quiet(p)
    _add_verbose(p)
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("retrain", parents=[common], help="run the retrain flow once: train, evaluate, promote if better")
    p.add_argument("--labels", required=True, help="label table, CSV or Parquet: video_uri, label[, split]; or `lake`: the lake's "
                        "labels table (people's answers, see `actionrec label`) (required)")
    add_lake(p)
    add_options(p, RetrainSettings)
    add_options(p, TrainConfig)
    add_options(p, LabelRules)
    add_json(p)
    _add_verbose(p)
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("demo", help="offline end-to-end demo: synthetic archive, retrain, tag, summary")
    p.add_argument("--dir", default="actionrec-demo", help="folder for the data and the lake (default: actionrec-demo)")
    p.add_argument("--per-class", type=int, default=30, help="labeled videos per class (default: 30)")
    p.add_argument("--epochs", type=int, default=25, help="training epochs (default: 25)")
    add_quiet(p)
    _add_verbose(p)
    p.set_defaults(func=cmd_demo)

