"""Choose the decoding benchmark's fine-tuning settings on the VALIDATION split only (issue 4).

    python scripts/decoding_validation_sweep.py --dataset a2929 --steps 2000 --eval-steps 100
    python scripts/decoding_validation_sweep.py --dataset nelpy --steps 500 --eval-steps 25 \\
        --generative-loss-weight 0.5 --seeds 0,1,2
    python scripts/decoding_validation_sweep.py --dataset nelpy --split-seed 3 \\
        --runs-dir runs/decoding_repeated_splits ...   # another split's validation blocks

Runs ``finetune`` exactly as ``scripts/benchmark_decoding.py`` does (same recording, windows,
mask, split plan, pretrained checkpoint from its ``--output-dir``), for the settings given, and
prints and appends to ``benchmarks/decoding_validation_sweep.jsonl`` ONLY the validation metrics
of the checkpoint that validation selected, with the settings and the best step. The test
metrics that ``finetune`` also computes are discarded here (and each run's output directory, whose
``metrics.json`` holds them, is deleted after the run), so that a choice made from this file
cannot have looked at the test split.

Needs the pretrained checkpoints of a benchmark run (``runs/benchmark_decoding/<recording>/pretrained``,
``<recording>`` = the dataset whose recording it uses, ``nelpy`` for ``nelpy_speed``;
``python scripts/benchmark_decoding.py --datasets <dataset>`` writes them); each run's temporary
output folder is made beside that checkpoint. With ``--split-seed S``
(another assignment of the blocks to train / validation / test, ``NeuroformerConfig.split_seed``)
it reads ``scripts/decoding_repeated_splits.py``'s layout instead,
``<runs-dir>/<recording>/split<S>/pretrained`` (``decoding_repeated_splits.py --pretrain-only``
writes them). With ``--pretrain-set KEY=VALUE`` (as that script's) it reads the checkpoint of that
pretraining variant, ``<runs-dir>/pretrain-<settings>/<recording>/split<S>/pretrained``, and refuses
one whose ``config.json`` or step count is not the variant's. With ``--extra-targets speed`` (nelpy) the
model decodes speed beside position (multitask fine-tuning, one head per target, their losses summed);
the checkpoint is still chosen on the dataset's own target (position's R²), and the row also holds
the extra targets' validation metrics (``validation_extra``). With ``--ema-decay D`` the validations, the
checkpoint chosen and its metrics use an exponential moving average of the fine-tuned weights over the steps
(``finetune(ema_decay=D)``, Polyak averaging); the row records the decay ``finetune`` ran with (``ema_decay``).
With ``--spike-dropout P`` each spike token of the current and past windows of every TRAINING batch is dropped
with probability P (``finetune(spike_dropout=P)``, augmentation of the training windows only); the row records P
and the spike tokens the training batches held and dropped (``spike_dropout``, ``spike_dropout_tokens``).
With ``--anchor-decay L`` every parameter of the pretrained model (not the new heads and read-out) is pulled
towards its pretrained value after each optimiser step, ``w <- w - lr_t * L * (w - w0)`` (``finetune(anchor_decay=L)``,
decoupled L2-SP); the row records L (``anchor_decay``).
With ``--regression-loss hl_gauss --num-bins K --hl-gauss-sigma-ratio R`` the dataset's own regression target
is trained with the histogram loss (``DecodingTarget(loss="hl_gauss", num_bins=K, hl_gauss_sigma_ratio=R)``:
cross-entropy over K value bins against a Gaussian of sigma R bin widths, prediction the expected bin centre).
Every row records the loss its target was trained with (``regression_loss``: ``{"loss": "mse"}``, or the
HL-Gauss settings with the bins' ``bin_range`` in standardised units).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_decoding as bd  # noqa: E402
import decoding_repeated_splits as rs  # noqa: E402
from benchmarks_md import seeds_arg  # noqa: E402


def _fraction(text: str) -> float:
    """``--fraction``: one fraction in (0, 1] (:func:`benchmark_decoding.fractions_arg`)."""
    fr = bd.fractions_arg(text)
    if len(fr) != 1:
        raise argparse.ArgumentTypeError(f"expected one fraction in (0, 1], got {text!r}")
    return fr[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=list(bd.DATASETS))
    p.add_argument("--init", default="pretrained", choices=("pretrained", "scratch"))
    p.add_argument("--fraction", type=_fraction, default=1.0,
                   help="share of the training windows (first contiguous block), as the benchmark's --fractions")
    p.add_argument("--seeds", default="0", type=seeds_arg, help="comma-separated integers, e.g. 0,1,2 (default 0)")
    p.add_argument("--steps", type=int, default=120, help="fine-tuning steps (the benchmark's --finetune-steps)")
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--eval-steps", type=int, default=None,
                   help="validate and keep a checkpoint every this many steps; default steps // 10")
    p.add_argument("--generative-loss-weight", type=float, default=0.0,
                   help="weight of the auxiliary next-spike loss")
    p.add_argument("--freeze-backbone-steps", type=int, default=0,
                   help="only the new heads train for the first N steps (finetune's freeze_backbone_steps; default 0)")
    p.add_argument("--set", dest="config_overrides", metavar="KEY=VALUE", action="append", type=bd.config_setting,
                   default=[], help=bd.SET_HELP + " (the benchmark's --set)")
    p.add_argument("--split-seed", type=int, default=None,
                   help="another split of the blocks (NeuroformerConfig.split_seed >= 1); reads the pretrained "
                        "checkpoint of scripts/decoding_repeated_splits.py's layout under --runs-dir "
                        "(<recording>/split<S>/pretrained); default: the benchmark's split 0")
    p.add_argument("--pretrain-set", dest="pretrain_sets", metavar="KEY=VALUE", action="append",
                   type=rs.pretrain_setting, default=[],
                   help="with --split-seed: the pretraining variant whose checkpoint to fine-tune, as "
                        "decoding_repeated_splits.py --pretrain-set (read from <runs-dir>/pretrain-<settings>/; its "
                        "config.json and step count must be the variant's); KEY one of " + ", ".join(rs.PRETRAIN_KEYS))
    p.add_argument("--extra-targets", default="",
                   help="comma-separated targets decoded beside the dataset's own (multitask fine-tuning), each the target "
                        "of another dataset of the same recording (nelpy: speed; nelpy_speed: x); the checkpoint is still "
                        "chosen on the dataset's own validation metric; default: none")
    p.add_argument("--ema-decay", type=float, default=None,
                   help="average the fine-tuned weights over the steps with this decay per step, in (0, 1) (finetune's "
                        "ema_decay; 0.99 ~ the last 100 steps); every validation and the checkpoint use the average; "
                        "default: off")
    p.add_argument("--spike-dropout", type=float, default=0.0,
                   help="drop each spike token of the current and past windows of every training batch with this "
                        "probability, in [0, 1) (finetune's spike_dropout; validation windows are never thinned); "
                        "default: 0 (off)")
    p.add_argument("--anchor-decay", type=float, default=None,
                   help="after each optimiser step pull every pretrained parameter towards its pretrained value by "
                        "learning rate x this share of the distance (finetune's anchor_decay, decoupled L2-SP; "
                        "learning rate x it must be < 1); default: off")
    p.add_argument("--regression-loss", choices=("mse", "hl_gauss"), default="mse",
                   help="loss of the dataset's own regression target: mse (default) or hl_gauss (the histogram loss "
                        "with a Gaussian target, DecodingTarget's loss; needs --num-bins and --hl-gauss-sigma-ratio)")
    p.add_argument("--num-bins", type=int, default=None,
                   help="with --regression-loss hl_gauss: value bins, an integer >= 2 (e.g. 64)")
    p.add_argument("--hl-gauss-sigma-ratio", type=float, default=None,
                   help="with --regression-loss hl_gauss: the Gaussian's sigma in bin widths, > 0 (e.g. 0.75)")
    p.add_argument("--runs-dir", default=str(ROOT / "runs" / "benchmark_decoding"),
                   help="the benchmark's --output-dir (holds <recording>/pretrained); default %(default)s")
    p.add_argument("--log", default=str(ROOT / "benchmarks" / "decoding_validation_sweep.jsonl"),
                   help="JSON-lines file each run's row is appended to; default: the committed log %(default)s")
    args = p.parse_args(argv)
    args.config_overrides = bd.check_settings(p, args.config_overrides, [args.dataset])  # before any run
    if not Path(args.log).parent.is_dir():  # else the first row would fail after its fine-tuning run
        p.error(f"--log: the folder {Path(args.log).parent} does not exist")

    from hf_neuroformer.argument_checks import check_anchor_decay, check_spike_dropout
    from hf_neuroformer.finetuning import check_ema_decay

    try:
        check_ema_decay(args.ema_decay, "--ema-decay")
        check_spike_dropout(args.spike_dropout, "--spike-dropout")
        check_anchor_decay(args.anchor_decay, "--anchor-decay", learning_rate=args.learning_rate)
    except ValueError as exc:
        p.error(str(exc))
    regression_loss = None
    if args.regression_loss == "hl_gauss":
        from hf_neuroformer.argument_checks import check_hl_gauss_settings

        if bd.DATASETS[args.dataset]["kind"] != "regression":
            p.error(f"--regression-loss hl_gauss: {args.dataset}'s target is {bd.DATASETS[args.dataset]['kind']}, "
                    "not a regression")
        try:
            check_hl_gauss_settings(args.num_bins, args.hl_gauss_sigma_ratio, "--{}")
        except ValueError as exc:
            p.error(str(exc).replace("--num_bins", "--num-bins").replace("--hl_gauss_sigma_ratio",
                                                                         "--hl-gauss-sigma-ratio"))
        regression_loss = {"loss": "hl_gauss", "num_bins": args.num_bins, "hl_gauss_sigma_ratio": args.hl_gauss_sigma_ratio}
    elif args.num_bins is not None or args.hl_gauss_sigma_ratio is not None:
        p.error("--num-bins / --hl-gauss-sigma-ratio: only with --regression-loss hl_gauss")
    if not 0 <= args.freeze_backbone_steps <= args.steps:
        p.error(f"--freeze-backbone-steps: expected 0 to --steps={args.steps}, got {args.freeze_backbone_steps}")
    # target name -> the dataset whose target it is (same recording, windows and mask)
    others = {bd.DATASETS[n]["target"]: n for n in bd.DATASETS
              if n != args.dataset and bd.source_of(n) == bd.source_of(args.dataset)}
    extra = [t.strip() for t in args.extra_targets.split(",")] if args.extra_targets else []
    bad = [t for t in extra if t not in others]
    if bad or len(set(extra)) != len(extra):
        p.error(f"--extra-targets: expected distinct targets of {args.dataset}'s recording other than its own "
                f"({', '.join(others) or 'none'}), got {args.extra_targets!r}")
    if args.split_seed is not None and args.split_seed < 1:
        p.error(f"--split-seed: expected an integer >= 1 (leave it out for the benchmark's split 0), got {args.split_seed}")
    if args.pretrain_sets and args.split_seed is None:
        p.error("--pretrain-set: only with --split-seed (the checkpoints of scripts/decoding_repeated_splits.py)")
    variant = rs.pretrain_variant(p, args.pretrain_sets, args.dataset)
    model = None
    # the checkpoint of the dataset's source (nelpy_speed's is nelpy's, as the benchmark writes it): it looked
    # for runs/nelpy_speed/pretrained without --split-seed
    pre = bd.pretrained_dir(args.runs_dir, args.dataset)
    if args.split_seed is not None:
        model = dict(rs.variant_model(variant), split_seed=args.split_seed)
        pre = bd.pretrained_dir(rs.variant_root(Path(args.runs_dir), variant), args.dataset, args.split_seed)
        if not (pre / "model.safetensors").is_file():
            sets = "".join(f" --pretrain-set {k}={v}" for k, v in variant.items())
            raise SystemExit(f"--runs-dir: no pretrained checkpoint at {pre}; run `python scripts/decoding_repeated_splits.py "
                             f"--dataset {args.dataset} --split-seeds {args.split_seed}{sets} --pretrain-only --output-dir "
                             f"{args.runs_dir}` first")
        if variant:  # the repeated-splits run's pretraining steps: the benchmark's unless the variant gives them
            steps = variant.get("pretrain_steps") or rs.benchmark_settings(args.dataset)["pretrain_steps"]
            rs.check_reusable(pre, model, steps, "--runs-dir")
    if not (pre / "model.safetensors").is_file():
        raise SystemExit(f"--runs-dir: no pretrained checkpoint at {pre}; run "
                         f"`python scripts/benchmark_decoding.py --datasets {args.dataset} --output-dir {args.runs_dir}` "
                         "first (or point --runs-dir at that script's --output-dir)")
    opts = dict(quick=False, model=model, class_weight="balanced", learning_rate=args.learning_rate,
                select_on="auto", device="cpu", eval_steps=args.eval_steps,
                generative_loss_weight=args.generative_loss_weight, config_overrides=dict(args.config_overrides),
                freeze_backbone_steps=args.freeze_backbone_steps, extra_targets=[others[t] for t in extra],
                ema_decay=args.ema_decay, spike_dropout=args.spike_dropout, anchor_decay=args.anchor_decay,
                regression_loss=regression_loss)
    written = time.strftime("%Y-%m-%d %H:%M", time.localtime((pre / "model.safetensors").stat().st_mtime))
    for seed in args.seeds:
        # one fresh directory per run: two sweeps running side by side must not share Trainer checkpoints;
        # deleted afterwards, because finetune also writes the test metrics into its metrics.json there
        t0 = time.perf_counter()
        # beside the checkpoint (runs/<dataset> did not exist for nelpy_speed: FileNotFoundError)
        with tempfile.TemporaryDirectory(prefix=f"sweep_{args.init}_{args.fraction}_{seed}_",
                                         dir=pre.parent) as out:
            _, r = bd.finetune_task((args.dataset, str(pre), out, args.fraction, seed, args.init, args.steps, opts))
        r.pop("test")
        row = {"dataset": args.dataset, "init": args.init, "fraction": args.fraction, "seed": seed,
               "steps": args.steps, "learning_rate": args.learning_rate, "eval_steps": args.eval_steps,
               "generative_loss_weight": args.generative_loss_weight,
               **({"freeze_backbone_steps": args.freeze_backbone_steps} if args.freeze_backbone_steps else {}),
               **({"split_seed": args.split_seed} if args.split_seed is not None else {}),
               **({"pretrain_overrides": variant} if variant else {}),
               **({"config_overrides": dict(args.config_overrides)} if args.config_overrides else {}),
               **({"extra_targets": extra, "validation_extra": r["validation_extra"]} if extra else {}),
               **({"ema_decay": r["ema_decay"]} if "ema_decay" in r else {}),
               **({"anchor_decay": r["anchor_decay"]} if "anchor_decay" in r else {}),
               **{k: r[k] for k in ("spike_dropout", "spike_dropout_tokens") if k in r},
               "regression_loss": r["regression_loss"],
               "best_step": r["best_step"], "validation": r["validation"],
               "pretrained": {"dir": str(pre), "written": written},
               "seconds": round(time.perf_counter() - t0, 1), "date": time.strftime("%Y-%m-%d %H:%M")}
        print(json.dumps(row), flush=True)
        with open(args.log, "a") as fh:
            fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
