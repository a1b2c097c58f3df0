"""The ``actionrec`` command. Exit status: 0 all good; 1 the work ran but some videos failed
(each has a line with its reason); 2 usage or configuration error, with one clear line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from actionrec.errors import ActionRecError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, default=str), flush=True)


# -- commands -------------------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    from actionrec.inference import Predictor
    from actionrec.models import load_model

    model = load_model(args.model, lake=args.lake)
    predictor = Predictor(model, batch_size=args.batch_size, decode_workers=args.decode_workers, device=args.device,
                          decode_backend=args.decode_backend, torch_compile=args.torch_compile)
    results = predictor.predict_all(args.videos, top_k=args.top_k, clips=args.clips)
    failed = 0
    for r in results:
        failed += r.status == "failed"
        if args.json:
            _emit({**r.to_dict(timeline=args.timeline), "model_name": model.name, "model_version": model.version})
        elif r.status == "failed":
            print(f"{r.uri}\tFAILED\t{r.error}")
        else:
            labels = ", ".join(f"{x.label} {x.score:.3f}" for x in r.top_k)
            note = f"\t(partial: {r.error})" if r.status == "partial" else ""
            print(f"{r.uri}\t{labels}{note}")
            if args.timeline:
                for c in r.clips:
                    print(f"  {c.start_s:8.2f}-{c.end_s:8.2f}s\t{c.top_k[0].label} {c.top_k[0].score:.3f}")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from actionrec.models.spec import InputSpec
    from actionrec.sampling import uniform_clips
    from actionrec.sources import open_input
    from actionrec.video import VideoReader

    spec = InputSpec()
    if args.model:
        from actionrec.models import load_model

        spec = load_model(args.model, lake=args.lake).spec
    with open_input(args.video) as source, VideoReader(source) as reader:
        info = reader.info()
        clips = uniform_clips(reader.duration, reader.fps, args.clips, spec.clip_sampling)
        out = {**info.to_dict(), "uri": args.video, "partial": reader.partial_reason,
               "clips": [[round(float(t), 4) for t in c] for c in clips]}
        if args.sheet:
            from actionrec.sheet import contact_sheet

            flat = [t for c in clips for t in c]
            read = reader.read(flat, short_side=spec.short_side)
            contact_sheet(read.frames_thwc, read.frame_times_s, len(clips), args.sheet)
            out["sheet"] = str(args.sheet)
            out["frames_decoded"] = read.stats.frames_decoded
    if args.json:
        _emit(out)
    else:
        for key in ("uri", "container", "codec", "width", "height", "fps", "num_frames", "duration_s", "has_audio",
                    "bytes", "partial"):
            print(f"{key:>12}: {out[key]}")
        for i, c in enumerate(out["clips"]):
            print(f"{'clip ' + str(i):>12}: {', '.join(f'{t:.3f}' for t in c)}")
        if args.sheet:
            print(f"{'sheet':>12}: {args.sheet}")
    return EXIT_OK


def _train_config(args: argparse.Namespace) -> Any:
    from actionrec.training import TrainConfig

    return TrainConfig(
        arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
        lr=args.lr if args.lr is not None else (0.01 if args.optimizer == "sgd" else 2e-3),
        weight_decay=args.weight_decay if args.weight_decay is not None else (1e-4 if args.optimizer == "sgd" else 0.05),
        loss=args.loss, focal_gamma=args.focal_gamma, class_weighted=args.class_weighted,
        balanced_sampling=args.balanced_sampling, label_smoothing=args.label_smoothing,
        augment=not args.no_augment, seed=args.seed, patience=args.patience, pretrained=args.pretrained,
        freeze_backbone=args.freeze_backbone, backbone_lr_mult=args.backbone_lr_mult,
        num_workers=args.num_workers, device=args.device,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from actionrec.labels import read_labels
    from actionrec.training import train

    cfg = _train_config(args)
    labels = read_labels(args.labels)
    init = None
    if args.init:
        from actionrec.models import load_model

        init = load_model(args.init, lake=args.lake)
    state = f"{args.out}.state.pt" if args.resume else None
    result = train(cfg, labels, init=init, out=args.out, progress=not args.quiet, model_name=args.name,
                   state_path=state)
    summary = {"checkpoint": str(args.out), "model_version": result.model.version, "arch": result.model.arch,
               "best_val_top1": result.best_val_top1, "best_epoch": result.best_epoch,
               "epochs_run": len(result.history), "seconds": round(result.seconds, 1)}
    if args.json:
        _emit(summary)
    else:
        for k, v in summary.items():
            print(f"{k:>14}: {v}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from actionrec.evaluation import evaluate_model, write_evaluation
    from actionrec.labels import read_labels
    from actionrec.models import load_model

    model = load_model(args.model, lake=args.lake)
    labels = read_labels(args.labels)
    rows = list(labels.rows) if args.split == "all" else labels.split(args.split)
    ev = evaluate_model(model, rows, clips=args.clips, batch_size=args.batch_size,
                        decode_workers=args.decode_workers, device=args.device)
    out_dir = Path(args.out or f"evaluation-{model.name}-{model.version}")
    write_evaluation(ev, out_dir, model=model, split=args.split, extra={"labels": args.labels})
    summary = {**ev.to_dict(), "model_name": model.name, "model_version": model.version, "split": args.split,
               "report": str(out_dir / "report.md"), "confusion_png": str(out_dir / "confusion.png")}
    if args.json:
        _emit(summary)
    else:
        r = ev.result
        print(f"top-1 {r.top1:.1%}  top-5 {r.top5:.1%}  mean class accuracy {r.mean_class_accuracy:.1%}  "
              f"ECE {r.ece:.3f}  ({r.num_videos} videos, {ev.clips_per_video} clips each)")
        for u, reason in ev.failed:
            print(f"FAILED {u}: {reason}")
        print(f"report: {summary['report']}")
    return EXIT_SOME_FAILED if ev.failed else EXIT_OK


def cmd_synth(args: argparse.Namespace) -> int:
    from actionrec.synth import SynthConfig, write_dataset

    cfg = SynthConfig(per_class=args.per_class, seed=args.seed, size=args.size, num_frames=args.frames, fps=args.fps)
    labels = write_dataset(args.out, cfg, progress=not args.quiet)
    print(labels)
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from actionrec.models import get_architecture, list_architectures

    for name in list_architectures():
        a = get_architecture(name)
        weights = ",".join(a.pretrained) or "-"
        print(f"{name:14} order-aware={'yes' if a.order_aware else 'no ':3}  weights={weights:16} {a.description}")
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------
def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=8, help="clips per model batch (default 8)")
    p.add_argument("--decode-workers", type=int, default=2, help="parallel decoding threads (default 2)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    p.add_argument("--lake", default=os.environ.get("ACTIONREC_LAKE"), help="lake for registered model names")


def _add_training(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", required=True, help="label table (CSV or Parquet: video_uri, label[, split])")
    p.add_argument("--arch", default="tiny3d", help="architecture (see `actionrec models`)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--lr", type=float, default=None, help="default 2e-3 (adamw) or 0.01 (sgd)")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--loss", choices=["ce", "focal"], default="ce")
    p.add_argument("--focal-gamma", type=float, default=2.0)
    p.add_argument("--class-weighted", action="store_true", help="inverse-frequency class weights in the loss")
    p.add_argument("--balanced-sampling", action="store_true", help="sample classes equally often")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--no-augment", action="store_true", help="ignore the dataset's declared flips/reversals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=0, help="early stopping patience in epochs (0: off)")
    p.add_argument("--pretrained", default=None, help="torchvision weights for --arch, e.g. KINETICS400_V1")
    p.add_argument("--init", default=None, help="start from this model reference (fine-tuning)")
    p.add_argument("--freeze-backbone", action="store_true")
    p.add_argument("--backbone-lr-mult", type=float, default=1.0)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--lake", default=os.environ.get("ACTIONREC_LAKE"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true")


def build_parser(extensions: Sequence[Callable[[Any], None]] = ()) -> argparse.ArgumentParser:
    """The core commands; ``extensions`` add more (the pipeline layers add tag, retrain, serve...)."""
    parser = argparse.ArgumentParser(prog="actionrec", description="Batch action recognition for video archives.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="quick answers for a few files, no orchestration")
    p.add_argument("videos", nargs="+")
    p.add_argument("--model", required=True, help="checkpoint path/URI, registered name[@version], or torchvision:<arch>")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--clips", type=int, default=1, help="clips per video, softmax-averaged (default 1)")
    p.add_argument("--timeline", action="store_true", help="also print per-clip predictions")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--decode-backend", choices=["process", "thread"], default="process",
                   help="process (default): a crashing decoder costs one video; thread: lighter")
    p.add_argument("--torch-compile", action="store_true",
                   help="torch.compile the model (static shapes): 1.07-1.25x on CPU once compiled, for many videos")
    _add_runtime(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("inspect", help="container facts, sampled timestamps, contact sheet")
    p.add_argument("video")
    p.add_argument("--model", default=None, help="use this model's input spec (default: 16 frames, stride 2)")
    p.add_argument("--clips", type=int, default=1)
    p.add_argument("--sheet", default=None, help="write a contact sheet of the sampled frames (PNG)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--lake", default=os.environ.get("ACTIONREC_LAKE"))
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("train", help="train one checkpoint, no orchestration")
    _add_training(p)
    p.add_argument("--out", required=True, help="checkpoint to write (card.json goes beside it)")
    p.add_argument("--name", default=None, help="model name recorded in the checkpoint")
    p.add_argument("--resume", action="store_true",
                   help="save the training state to OUT.state.pt every epoch, and resume from it if present")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics, report.md and confusion.png for a model on labeled videos")
    p.add_argument("--model", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--split", choices=["all", "train", "val", "test"], default="all")
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--out", default=None, help="folder for report.md, confusion.png, metrics.json")
    p.add_argument("--json", action="store_true")
    _add_runtime(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("synth", help="write the synthetic temporal dataset (videos + labels.csv)")
    p.add_argument("--out", required=True)
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--fps", type=int, default=16)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("models", help="list the registered architectures")
    p.set_defaults(func=cmd_models)
    for extend in extensions:
        extend(sub)
    return parser


def main(argv: Sequence[str] | None = None, extensions: Sequence[Callable[[Any], None]] = ()) -> int:
    parser = build_parser(extensions)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ActionRecError as e:
        print(f"actionrec {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
