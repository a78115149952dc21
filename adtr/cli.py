"""The ``adtr`` command: ``synth``, ``fit``, ``evaluate`` (and ``python -m adtr``).

Problems with the input end in one line, ``error: ...``, and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from adtr import profiles
from adtr.errors import AdtrError, ConfigError

if TYPE_CHECKING:
    from adtr.schema import RunResult


def _stages(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"stages must be comma-separated integers such as 0,1,2,3, got {text!r}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adtr", description="ADTR: anomaly detection by transformer feature reconstruction."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write the offline MVTec-layout data set")
    synth.add_argument("--out", required=True, type=Path, help="folder to write it to")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--profile", default="cpu", choices=profiles.profile_names(),
                       help="which profile's data set sizes to use (default: cpu)")
    synth.add_argument("--categories", nargs="+",
                       help="categories to generate (default: the profile's, else all)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")

    fit = commands.add_parser("fit", help="train on train/good, evaluate on test")
    fit.add_argument("--data-root", type=Path, help="MVTec-layout folder (default: profile's)")
    fit.add_argument("--category", help="the category to train on and test")
    fit.add_argument("--unified", action="store_true",
                     help="one model for several categories (UniAD's protocol), tested on each")
    fit.add_argument("--categories", nargs="+",
                     help="--unified: the categories (default: every one in the data root)")
    fit.add_argument("--profile", default="cpu", help=f"one of {profiles.profile_names()}")
    fit.add_argument("--backbone", help="timm model name, e.g. efficientnet_b4")
    fit.add_argument("--weights", help="'imagenet' (default), 'random' or a state-dict file")
    fit.add_argument("--stages", type=_stages,
                     help="timm feature indices, e.g. 0,1,2,3 (strides 2-16)")
    fit.add_argument("--variant", help=f"the Table 4 ablation: one of {list(profiles.VARIANTS)}")
    fit.add_argument("--objective", choices=profiles.OBJECTIVES,
                     help="reconstruction (ADTR, default) or adtr_plus: train ADTR into "
                     "OUT/base, then fine-tune it with anomalies")
    fit.add_argument("--plus-anomalies", help="ADTR+: 'confetti' (default) or a folder of images")
    fit.add_argument("--plus-epochs", type=int, help="ADTR+ fine-tuning epochs")
    fit.add_argument("--epochs", type=int)
    fit.add_argument("--batch-size", type=int)
    fit.add_argument("--lr", type=float)
    fit.add_argument("--image-size", type=int)
    fit.add_argument("--seed", type=int)
    fit.add_argument("--device", help="auto, cpu or cuda[:N]")
    fit.add_argument("--precision", choices=profiles.PRECISIONS,
                     help="the transformer's arithmetic: auto (bf16 autocast on CUDA, fp32 "
                     "on the CPU), fp32 or bf16 (autocast on the CPU too)")
    fit.add_argument("--out", type=Path, help="output folder (default: runs/<profile>/<category>)")
    fit.add_argument("--cache-dir", type=Path, help="feature cache (default: ~/.cache/adtr)")
    fit.add_argument("--quiet", action="store_true", help="no progress bars")

    evaluate = commands.add_parser("evaluate", help="score a checkpoint on a test split")
    evaluate.add_argument("--checkpoint", required=True, type=Path)
    evaluate.add_argument("--data-root", required=True, type=Path)
    evaluate.add_argument("--category", required=True)
    evaluate.add_argument("--out", type=Path, help="output folder (default: the checkpoint's)")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--cache-dir", type=Path)
    evaluate.add_argument("--quiet", action="store_true")
    batch = commands.add_parser("reproduce", help="run the experiment notebooks with papermill")
    batch.add_argument("--profile", default="cpu", help=f"one of {profiles.profile_names()}")
    batch.add_argument("--only", nargs="+", help="notebook names or numbers, e.g. 01 02")
    batch.add_argument("--force", action="store_true", help="rerun up-to-date notebooks too")
    batch.add_argument("--jobs", type=int, default=1, help="notebooks run side by side")
    batch.add_argument("--data-root", help="data folder (default: the profile's)")
    batch.add_argument("--categories", nargs="+")
    batch.add_argument("--seeds", nargs="+", type=int)
    batch.add_argument("--backbone")
    batch.add_argument("--epochs", type=int)
    batch.add_argument("--image-size", type=int)
    batch.add_argument("--device")
    batch.add_argument("--plus-epochs", type=int, help="ADTR+ fine-tuning epochs")
    batch.add_argument("--cifar-root", help="folder holding cifar-10-batches-py (one-class)")
    batch.add_argument("--cifar100-root", help="folder holding cifar-100-python (ADTR+)")
    batch.add_argument("--results-dir", default="results")
    return parser


def _synth(args: argparse.Namespace) -> None:
    from adtr import synth

    sizes = dict(profiles.SYNTH_SIZES[args.profile])
    if args.categories:
        sizes["categories"] = args.categories
    summary = synth.generate(args.out, seed=args.seed, progress=not args.quiet, **sizes)
    print(f"wrote {args.out} ({', '.join(summary['categories'])})")


def _print_metrics(result: RunResult, out: Path) -> None:
    numbers = {k: round(v, 4) for k, v in result.metrics().items()}
    print(json.dumps({"category": result.category, **numbers,
                      "wall_time_s": result.record.wall_time_s}))
    print(f"wrote {out / 'metrics.json'}")


def _fit(args: argparse.Namespace) -> None:
    from adtr import pipeline

    config = profiles.resolve(
        args.profile, data_root=None if args.data_root is None else str(args.data_root),
        backbone=args.backbone, weights=args.weights, stages=args.stages, variant=args.variant,
        objective=args.objective, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        image_size=args.image_size,
        seed=args.seed, device=args.device, precision=args.precision,
        plus_anomalies=args.plus_anomalies, plus_epochs=args.plus_epochs,
    )
    if args.unified:
        _fit_unified(args, config)
        return
    if not args.category or args.categories:
        raise ConfigError("fit needs --category (one category), or --unified with "
                          "--categories (one model for several)")
    out = args.out or Path("runs") / config.profile / args.category
    run = pipeline.category_data(config, args.category)
    result = pipeline.fit(config, run, out, args.cache_dir, progress=not args.quiet)
    _print_metrics(result, out)


def _fit_unified(args: argparse.Namespace, config: profiles.RunConfig) -> None:
    from adtr import data, pipeline

    if args.category:
        raise ConfigError("--unified takes --categories (several), not --category")
    categories = args.categories or data.available_categories(config.data_root)
    out = args.out or Path("runs") / config.profile / "unified"
    runs = [pipeline.category_data(config, category) for category in categories]
    for result in pipeline.fit_unified(config, runs, out, args.cache_dir,
                                       progress=not args.quiet):
        _print_metrics(result, out / result.category)


def _evaluate(args: argparse.Namespace) -> None:
    from adtr import pipeline

    result = pipeline.evaluate(args.checkpoint, args.data_root, args.category, args.out,
                            args.cache_dir, args.device, progress=not args.quiet)
    _print_metrics(result, args.out or args.checkpoint.parent)


def _reproduce(args: argparse.Namespace) -> int:
    from adtr.reproduce import reproduce

    parameters = {"data_root": args.data_root, "categories": args.categories,
                  "seeds": args.seeds, "backbone": args.backbone, "epochs": args.epochs,
                  "image_size": args.image_size, "device": args.device,
                  "plus_epochs": args.plus_epochs, "cifar_root": args.cifar_root,
                  "cifar100_root": args.cifar100_root, "results_dir": args.results_dir}
    outcomes = reproduce(args.profile, args.only, args.force, args.jobs, parameters)
    failed = [o for o in outcomes if o.status == "failed"]
    ran = sum(o.seconds for o in outcomes)
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} notebooks up to date "
          f"({ran:.0f} s of notebook time)")
    for outcome in failed:
        print(f"FAILED {outcome.name}: {outcome.error}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"synth": _synth, "fit": _fit, "evaluate": _evaluate, "reproduce": _reproduce}
    try:
        code = handlers[args.command](args)
    except AdtrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume from the last checkpoint",
              file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
