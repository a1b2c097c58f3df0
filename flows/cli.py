"""Orchestrated commands of the ``actionrec`` CLI: tag, retrain, query, demo."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any

from actionrec.cli import EXIT_OK, EXIT_SOME_FAILED
from actionrec.tagging import DEFAULT_MODEL_NAME


def _lake_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lake", default=os.environ.get("ACTIONREC_LAKE", "./actionrec-lake"),
                   help="folder or s3://bucket/prefix (default ./actionrec-lake, or $ACTIONREC_LAKE)")
    p.add_argument("--s3-endpoint-url", default=None,
                   help="S3-compatible endpoint (MinIO, Ceph, R2...); same as AWS_ENDPOINT_URL")


def _endpoint(args: argparse.Namespace) -> None:
    if getattr(args, "s3_endpoint_url", None):
        os.environ["AWS_ENDPOINT_URL"] = args.s3_endpoint_url


def cmd_tag(args: argparse.Namespace) -> int:
    _endpoint(args)
    from flows.tag import tag_flow

    flow = tag_flow
    if args.dask_address:
        from prefect_dask import DaskTaskRunner

        flow = tag_flow.with_options(task_runner=DaskTaskRunner(address=args.dask_address))
    row = flow(source=args.source, lake=args.lake, model=args.model, top_k=args.top_k, clips=args.clips,
               shard_size=args.shard_size, batch_size=args.batch_size, decode_workers=args.decode_workers,
               device=args.device, decode_backend=args.decode_backend, decode_timeout_s=args.decode_timeout,
               torch_compile=args.torch_compile)
    print(json.dumps(row, default=str))
    return EXIT_SOME_FAILED if row["failed"] else EXIT_OK


def cmd_retrain(args: argparse.Namespace) -> int:
    _endpoint(args)
    from flows.retrain import retrain_flow

    options: dict[str, Any] = {"seed": args.seed, "optimizer": args.optimizer}
    if args.lr is not None:
        options["lr"] = args.lr
    if args.pretrained:
        options["pretrained"] = args.pretrained
    summary = retrain_flow(labels=args.labels, lake=args.lake, model_name=args.name, arch=args.arch, epochs=args.epochs,
                           loss=args.loss, init=args.init, split=args.split, clips=args.clips, margin=args.margin,
                           train_options=options)
    print(json.dumps(summary, default=str))
    return EXIT_OK


def print_rows(cols: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "json":
        for r in rows:
            print(json.dumps(dict(zip(cols, r, strict=True)), default=str))
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows(rows)
    else:
        cells = [[str(c) for c in cols]] + [["" if v is None else str(v) for v in r] for r in rows]
        widths = [min(max(len(row[i]) for row in cells), 60) for i in range(len(cols))]
        for n, row in enumerate(cells):
            print("  ".join(v[:60].ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                print("  ".join("-" * w for w in widths))


def cmd_query(args: argparse.Namespace) -> int:
    _endpoint(args)
    from actionrec.query import query

    cols, rows = query(args.lake, args.sql)
    print_rows(cols, rows, args.format)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo

    out = run_demo(args.dir, per_class=args.per_class, epochs=args.epochs)
    r = out["retrain"]
    print(f"\nretrain: candidate {r['candidate_version']} top-1 {r['candidate_top1']:.1%} on {r['test_videos']} "
          f"held-out videos -> {'promoted' if r['promoted'] else 'not promoted'} ({r['reason']})")
    run = out["run"]
    print(f"tag run {run['run_id']}: {run['ok']} ok, {run['partial']} partial, {run['failed']} failed "
          f"in {run['seconds']:.1f} s\n")
    print_rows(out["columns"], out["rows"], "table")
    print(f"\nlake: {out['lake']}   try: actionrec query \"select * from runs\" --lake {out['lake']}")
    return EXIT_OK


def add_commands(sub: Any) -> None:
    p = sub.add_parser("tag", help="run the tag flow once over a folder or s3:// prefix")
    p.add_argument("source")
    _lake_arg(p)
    p.add_argument("--model", default=None, help=f"model reference (default: the lake's champion of {DEFAULT_MODEL_NAME!r})")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--clips", type=int, default=1)
    p.add_argument("--shard-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--decode-workers", type=int, default=2)
    p.add_argument("--device", default=None)
    p.add_argument("--decode-backend", choices=["process", "thread"], default="process",
                   help="process (default): an FFmpeg crash costs one video; thread: lighter")
    p.add_argument("--decode-timeout", type=float, default=300.0,
                   help="seconds one video may take to decode before it fails (process backend; default 300)")
    p.add_argument("--torch-compile", action="store_true",
                   help="torch.compile the model: 1.07-1.25x on CPU for long runs, after a compile per shard")
    p.add_argument("--dask-address", default=None, help="run shards on this Dask scheduler (tcp://host:8786)")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("retrain", help="run the retrain flow once: train, evaluate, promote if better")
    p.add_argument("--labels", required=True)
    _lake_arg(p)
    p.add_argument("--name", default=DEFAULT_MODEL_NAME, help="model name in the lake's registry")
    p.add_argument("--arch", default="tiny3d")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--loss", choices=["ce", "focal"], default="ce")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pretrained", default=None, help="torchvision weights for --arch (from the local cache)")
    p.add_argument("--init", default="scratch", help="scratch, champion, or a model reference")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--margin", type=float, default=0.0, help="top-1 the candidate must gain to be promoted")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("query", help="read-only SQL over the lake views")
    p.add_argument("sql")
    _lake_arg(p)
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("demo", help="offline end-to-end demo: synthetic archive, retrain, tag, summary")
    p.add_argument("--dir", default="actionrec-demo")
    p.add_argument("--per-class", type=int, default=30)
    p.add_argument("--epochs", type=int, default=25)
    p.set_defaults(func=cmd_demo)
