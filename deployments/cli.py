"""The ``actionrec`` console script: core commands, the orchestrated ones, and ``serve``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from actionrec.cli import EXIT_OK
from actionrec.cli import main as core_main
from deployments.serve import RETRAIN_CRON, TAG_CRON
from flows.cli import add_commands


def cmd_serve(args: argparse.Namespace) -> int:
    if args.s3_endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.s3_endpoint_url
    from deployments.serve import serve

    serve(args.source, args.lake, args.labels, args.model, tag_cron=args.tag_cron, retrain_cron=args.retrain_cron)
    return EXIT_OK


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the nightly-tag and weekly-retrain deployments from this process")
    p.add_argument("--source", default=os.environ.get("ACTIONREC_SOURCE", "./videos"))
    p.add_argument("--lake", default=os.environ.get("ACTIONREC_LAKE", "./actionrec-lake"))
    p.add_argument("--labels", default=os.environ.get("ACTIONREC_LABELS"), help="label table for retraining")
    p.add_argument("--model", default=None)
    p.add_argument("--tag-cron", default=TAG_CRON)
    p.add_argument("--retrain-cron", default=RETRAIN_CRON)
    p.add_argument("--s3-endpoint-url", default=None)
    p.set_defaults(func=cmd_serve)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return core_main(argv, extensions=[add_commands, add_serve])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
