"""The ablation of issue 3 (``neuroformer ablate``) on a real recording, into BENCHMARKS.md.

Runs :func:`hf_neuroformer.ablation.run_ablation` (state-only, +past, +stimulus, +behaviour,
+contrastive, whichever apply to the config's modalities; same split, seed and steps) and writes
``benchmarks/ablation_<name>.json`` (``--json``) and the ``ablation-<name>`` section of ``BENCHMARKS.md``
(``--markdown``), as ``benchmark_events.py`` and ``benchmark_multimodal*.py`` do.
One thread. ``--seeds 0,1,2`` trains every variant once per seed (each variant starting from the
previous one's weights within a seed) and gives mean +/- sd and the paired difference to +past.

Usage (the A2929 run in BENCHMARKS.md)::

    PYTHONPATH=src python scripts/benchmark_ablation.py --name a2929 \\
        --config configs/a2929_head_direction.yaml \\
        --data ../shared/data/pynapple_A2929_headdirection/A2929-200711.nwb --epoch position_time_support --steps 300 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from benchmarks_md import seeds_arg  # noqa: E402


def _name(text: str) -> str:
    """``--name``: letters, digits, '-' and '_' (it names the JSON file and the section markers)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise argparse.ArgumentTypeError(f"expected letters, digits, '-' or '_' (it names benchmarks/ablation_<name>.json "
                                         f"and the BENCHMARKS.md markers), got {text!r}")
    return text


def parser() -> argparse.ArgumentParser:
    """The command line (``--json`` and ``--markdown`` as in ``benchmark_events.py``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, type=_name)
    p.add_argument("--config", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--epoch")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seeds", default=[0], type=lambda t: seeds_arg(t, "integers"), help="comma-separated training seeds (default: 0)")
    p.add_argument("--contrastive-loss-weight", type=float, default=0.5)
    p.add_argument("--json", default=None,
                   help=f"the results JSON (default: {ROOT / 'benchmarks'}/ablation_<name>.json)")
    p.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"), help="the file whose section is replaced "
                   "(default %(default)s)")
    return p


def json_path(args) -> Path:
    """Where the results JSON goes: ``--json``, else ``benchmarks/ablation_<name>.json`` of the repository."""
    return Path(args.json) if args.json else ROOT / "benchmarks" / f"ablation_{args.name}.json"


def command_line(args) -> str:
    """The command that reproduces the run, as BENCHMARKS.md shows it (``--seeds 0,1,2`` as typed,
    a ``--data`` beside the repository as ``../...``, ``--contrastive-loss-weight`` when not the
    default 0.5; ``--json`` / ``--markdown`` left out)."""
    data = Path(args.data)
    shown = "../" + str(data.relative_to(ROOT.parent)) if data.is_absolute() and ROOT.parent in data.parents else args.data
    weight = args.contrastive_loss_weight  # the +contrastive variant's loss weight: a non-default one changes that row
    weight_flag = f" --contrastive-loss-weight {weight:g}" if weight != parser().get_default("contrastive_loss_weight") else ""
    return (f"python scripts/benchmark_ablation.py --name {args.name} --config {args.config} --data {shown}"
            f"{f' --epoch {args.epoch}' if args.epoch else ''} --steps {args.steps}"
            f"{' --seeds ' + ','.join(map(str, args.seeds)) if len(args.seeds) > 1 else ''}{weight_flag}")


def section_header(args, result, batch_size: int) -> str:
    """The BENCHMARKS.md section's heading and its paragraph: the command, date, wall time (``result``'s
    ``date`` and ``wall_s``), what every variant shared, and how its checkpoint was chosen
    (:func:`hf_neuroformer.ablation.checkpoint_choice`, as ``neuroformer ablate`` says it: the runs for
    which train selected no step, whose last step is scored, are counted)."""
    from hf_neuroformer.ablation import checkpoint_choice

    seeds = args.seeds
    out = json_path(args)
    shown = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
    cmd, seeds_text = command_line(args), ",".join(map(str, seeds))
    return (f"## Ablation: {args.name}\n\n`{cmd}` ({result['date']}, one thread, {result['wall_s'] / 60:.1f} min for all "
            f"variants{' and seeds' if len(seeds) > 1 else ''}; same as `neuroformer ablate --config {args.config} --data ... "
            f"--max-steps {args.steps}{f' --seeds {seeds_text}' if len(seeds) > 1 else ''}`). "
            f"Every variant: the config's windows, split, seed{'s' if len(seeds) > 1 else ''} ({seeds_text}), batch ({batch_size}) and "
            f"at most {args.steps} steps, {checkpoint_choice(result)}, figures on the test split. Unit-id F1: "
            "`train`'s, from generating every test window (recorded past). Raw numbers: "
            f"`{shown}`.\n")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from benchmarks_md import replace_section, write_atomic
    from hf_neuroformer.ablation import ablation_markdown, run_ablation
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.training import load_yaml_config

    config, training = load_yaml_config(args.config, field="--config")
    training = dataclasses.replace(training, max_steps=args.steps)
    rec = load_recording(args.data, epoch=args.epoch)
    t0 = time.time()
    seeds = args.seeds
    result = run_ablation(rec, config, training, contrastive_loss_weight=args.contrastive_loss_weight, seeds=seeds)
    wall = time.time() - t0
    result.update({"config": args.config, "data": args.data, "epoch": args.epoch, "steps": args.steps,
                   "wall_s": wall, "date": datetime.date.today().isoformat(), "threads": 1})
    out = json_path(args)
    write_atomic(out, json.dumps(result, indent=2, default=str))  # makes the folder if missing
    header = section_header(args, result, training.batch_size)
    start, end = f"<!-- ablation-{args.name}:start -->", f"<!-- ablation-{args.name}:end -->"
    replace_section(Path(args.markdown), start, end, f"{start}\n{ablation_markdown(result, header)}{end}")
    print(ablation_markdown(result, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
