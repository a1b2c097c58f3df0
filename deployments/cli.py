"""The ``actionrec`` console script: core commands, the orchestrated ones, and ``serve``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from actionrec.cli import EXIT_OK, add_lake, lake_of
from actionrec.cli import main as core_main
from deployments.definitions import NIGHTLY_TAG, WEEKLY_RETRAIN
from flows.cli import add_commands


def cmd_serve(args: argparse.Namespace) -> int:
    from deployments.serve import serve

    if not args.labels:
        print("actionrec serve: no --labels (or $ACTIONREC_LABELS): serving nightly-tag only, no retrain "
              "deployment", file=sys.stderr)
    serve(args.source, lake_of(args), args.labels, args.model, tag_cron=args.tag_cron,
          retrain_cron=args.retrain_cron, embeddings=args.embeddings)
    return EXIT_OK


def add_serve(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="serve the nightly-tag and weekly-retrain deployments "
                                                       "from this process")
    p.add_argument("--source", default=os.environ.get("ACTIONREC_SOURCE", "./videos"),
                   help="folder or s3://bucket/prefix to tag (default: $ACTIONREC_SOURCE, else ./videos)")
    add_lake(p)
    p.add_argument("--labels", default=os.environ.get("ACTIONREC_LABELS"),
                   help="label table for retraining; without it no retrain deployment is served "
                        "(default: $ACTIONREC_LABELS)")
    p.add_argument("--model", default=None, help="model for tagging (default: the lake's champion)")
    p.add_argument("--tag-cron", default=NIGHTLY_TAG.cron, help=f"tagging schedule (default: {NIGHTLY_TAG.cron}, "
                                                                f"{NIGHTLY_TAG.timezone})")
    p.add_argument("--embeddings", action="store_true",
                   help="nightly tagging also stores each video's embedding, for `actionrec similar` (default: off)")
    p.add_argument("--retrain-cron", default=WEEKLY_RETRAIN.cron,
                   help=f"retraining schedule (default: {WEEKLY_RETRAIN.cron}, {WEEKLY_RETRAIN.timezone})")
    p.set_defaults(func=cmd_serve)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary local server takes ~10 s to start on 2 cores, more on a busy machine: Prefect's
    # 20 s default has been seen to run out.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    return core_main(argv, extensions=[add_commands, add_serve])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
