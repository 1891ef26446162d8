"""Connectivity benchmark (issue 5): does a Neuroformer's attention recover a hub network's wiring?

Steps (each writes into --workdir, and an existing product is reused with --reuse):
1. simulate a hub network (brian2 LIF, ``neuroformer simulate --kind hub``; ``--kind hub-glm``
   for the fast point-process version) with 300 units and 3 hubs, seeded -> ``sim.nwb``;
2. pretrain a Neuroformer on it (``hf_neuroformer.training.train``) -> ``model/``;
3. aggregate attention over the windows and compute the baselines on the same spikes
   (``hf_neuroformer.analysis.connectivity.run_connectivity``) -> ``connectivity/``;
4. write ``benchmarks/connectivity.json``, the figure ``benchmarks/connectivity_hub.png`` and the
   section of ``BENCHMARKS.md`` between the ``connectivity`` markers.

Full size (the issue's acceptance 1) on one GPU. brian2 runs on one CPU core (about 3 min for
300 units x 300 s unloaded, 6 min on a loaded 2-core box), so the simulation can be made first on
any machine and carried along; with it in place, ``--reuse`` only trains and scores::

    python -m hf_neuroformer.cli simulate --kind hub --units 300 --hubs 3 --duration 300 --seed 0 \
        --output benchmarks/connectivity_run/sim.nwb
    python scripts/benchmark_connectivity.py --reuse --device cuda --mixed-precision bf16 \
        --duration 300 --max-steps 3000 --n-jobs 16 --threads 1

(the second line alone also simulates, when ``sim.nwb`` is missing). The reduced CPU run in
BENCHMARKS.md: ``--reuse --duration 300 --max-steps 1200 --threads 1``. ``--reuse`` reuses a
``model/`` in the work directory too: delete it to retrain. A ``sim.nwb`` simulated with another
``--kind`` / ``--units`` / ``--hubs`` / ``--duration`` / ``--seed``, or a ``model/`` with other window or
size settings, is refused rather than reused under this run's flags.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
START, END = "<!-- connectivity:start -->", "<!-- connectivity:end -->"

ROWS = (
    ("attention_mean", "Neuroformer attention, mean over layers and heads"),
    ("attention_last_layer", "Neuroformer attention, last layer"),
    ("attention_rollout", "Neuroformer attention rollout"),
    ("uniform_control", "control: uniform attention over the same keys (co-occurrence)"),
    ("correlation", "Pearson correlation of binned counts (undirected)"),
    ("ccg_asymmetry", "cross-correlogram asymmetry"),
    ("glm", "Poisson GLM coupling (scikit-learn PoissonRegressor)"),
    ("truth", "ground truth itself (sanity check)"),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", default="benchmarks/connectivity_run", help="where sim.nwb, model/ and connectivity/ go")
    p.add_argument("--kind", default="hub", choices=["hub", "hub-glm"])
    p.add_argument("--units", type=int, default=300)
    p.add_argument("--hubs", type=int, default=3)
    p.add_argument("--duration", type=float, default=300.0, help="simulated time, s (issue: at most 1200)")
    p.add_argument("--seed", type=int, default=0, help="simulation and training seed")
    p.add_argument("--codegen", default="numpy", choices=["numpy", "cython"], help="brian2 target")
    p.add_argument("--device", default="cpu", help="cpu or cuda (training and the attention pass)")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16"])
    p.add_argument("--max-steps", type=int, default=3000)
    p.add_argument("--max-epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2, help="decoder layers")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--current-window", type=float, default=0.02, help="s")
    p.add_argument("--past-window", type=float, default=0.03, help="s")
    p.add_argument("--dt-resolution", type=float, default=0.002, help="s")
    p.add_argument("--max-windows", type=int, help="cap on windows aggregated for attention (default all)")
    p.add_argument("--n-jobs", type=int, default=1, help="parallel GLM fits")
    p.add_argument("--threads", type=int, help="torch / BLAS threads (default: leave as is)")
    p.add_argument("--reuse", action="store_true", help="reuse sim.nwb / model/ already in --workdir")
    p.add_argument("--no-write", action="store_true",
                   help="smoke run: write nothing outside --workdir (no BENCHMARKS.md, no benchmarks/connectivity*)")
    p.add_argument("--note", help="what the figure shows (a paragraph under the table; kept in the JSON)")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild the BENCHMARKS.md section from benchmarks/connectivity.json (and --note), run nothing")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report_only:
        from benchmarks_md import replace_section, write_atomic

        path = REPO / "benchmarks" / "connectivity.json"
        out = json.loads(path.read_text())
        if args.note:
            out["note"] = args.note
            write_atomic(path, json.dumps(out, indent=1))
        replace_section(REPO / "BENCHMARKS.md", START, END, render(out))
        print("[benchmark] rebuilt the BENCHMARKS.md section from benchmarks/connectivity.json")
        return 0
    if args.threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # Accelerate would otherwise take a visible GPU
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")
    from benchmarks_md import replace_section, write_atomic

    from hf_neuroformer import NeuroformerConfig
    from hf_neuroformer.analysis.connectivity import run_connectivity
    from hf_neuroformer.simulation import (
        HubNetworkParams,
        read_network,
        simulate_hub_glm,
        simulate_hub_network,
        write_network,
    )
    from hf_neuroformer.training import TrainingConfig, train

    work = (REPO / args.workdir) if not Path(args.workdir).is_absolute() else Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    timings = {}
    sim_path = work / "sim.nwb"
    t0 = time.perf_counter()
    if args.reuse and sim_path.is_file():
        net = read_network(sim_path)
        _check_reused_simulation(net, args, sim_path)
        print(f"[benchmark] reusing {sim_path}")
    else:
        params = HubNetworkParams(n_units=args.units, n_hubs=args.hubs)
        if args.kind == "hub":
            net = simulate_hub_network(params, duration=args.duration, seed=args.seed, codegen_target=args.codegen)
        else:
            net = simulate_hub_glm(params, duration=args.duration, seed=args.seed)
        write_network(net, sim_path, overwrite=True)
    timings["simulate_s"] = time.perf_counter() - t0
    rec = net.recording
    print(f"[benchmark] {rec} hubs {net.hub_units.tolist()} ({timings['simulate_s']:.0f} s)")

    rate = rec.n_spikes / rec.n_units / rec.duration
    expect_cur = rate * rec.n_units * args.current_window
    expect_past = rate * rec.n_units * args.past_window
    config = NeuroformerConfig(
        current_window=args.current_window, past_window=args.past_window, dt_resolution=args.dt_resolution,
        max_window_length=int(max(64, np.ceil(3 * expect_cur))), max_past_length=int(max(64, np.ceil(3 * expect_past))),
        hidden_size=args.hidden_size, num_attention_heads=args.heads, num_hidden_layers=args.layers,
        num_past_layers=1, intermediate_size=2 * args.hidden_size, split_block_length=10.0, split_seed=args.seed,
    )
    training = TrainingConfig(
        max_steps=args.max_steps, max_epochs=args.max_epochs, batch_size=args.batch_size, seed=args.seed,
        mixed_precision=args.mixed_precision, eval_batch_size=256, generation_batch_size=512,
    )
    model_dir = work / "model"
    t0 = time.perf_counter()
    if args.reuse and (model_dir / "config.json").is_file():
        _check_reused_model(NeuroformerConfig.from_pretrained(model_dir), config, model_dir)
        print(f"[benchmark] reusing {model_dir}")
        metrics = json.loads((model_dir / "metrics.json").read_text())
    else:
        metrics = train(rec, model_dir, config, training, overwrite=True, progress=False)
    timings["train_s"] = time.perf_counter() - t0
    print(f"[benchmark] trained: {metrics.get('total_steps')} steps, test id NLL {metrics.get('test/id_nll'):.3f} "
          f"(unigram {metrics.get('test/unigram_id_nll'):.3f}) ({timings['train_s']:.0f} s)")

    t0 = time.perf_counter()
    device = args.device
    report = run_connectivity(model_dir, sim_path, work / "connectivity", split="all", max_windows=args.max_windows,
                              device=device, n_jobs=args.n_jobs, overwrite=True, batch_size=64)
    timings["connectivity_s"] = time.perf_counter() - t0
    for name, _ in ROWS:
        s = report["scores"][name]
        print(f"  {name:<22s} hub AUROC {_f(s['hub_auroc'])} AUPRC {_f(s['hub_auprc'])} direction "
              f"{_f(s['hub_direction_accuracy'])} | all-edges AUROC {_f(s['auroc'])} direction {_f(s['direction_accuracy'])}")

    # the model's own config: a reused one's token blocks follow the rate of the data it was trained on
    trained = NeuroformerConfig.from_pretrained(model_dir)
    out = {
        "command": "python " + " ".join(shlex.quote(a) for a in [f"scripts/{Path(__file__).name}", *(argv or sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"platform": platform.platform(), "device": device,
                    "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
                    "threads": torch.get_num_threads()},
        "args": vars(args),
        "simulation": {"kind": net.kind, "n_units": rec.n_units, "n_spikes": rec.n_spikes, "duration_s": rec.duration,
                       "mean_rate_hz": rate, "hub_units": net.hub_units.tolist(),
                       "hub_rates_hz": [float(x) for x in np.bincount(rec.unit_ids, minlength=rec.n_units)[net.hub_units] / rec.duration],
                       "n_hub_edges": int((net.edge_kind == 1).sum()), "n_weak_edges": int((net.edge_kind == 2).sum())},
        "model": {k: getattr(trained, k) for k in ("current_window", "past_window", "dt_resolution", "max_window_length",
                                                   "max_past_length", "hidden_size", "num_attention_heads",
                                                   "num_hidden_layers", "num_past_layers")},
        "training": {k: metrics.get(k) for k in ("total_steps", "best_step", "test/id_nll", "test/unigram_id_nll",
                                                 "test/markov_id_nll", "n_truncated_spikes", "num_parameters")},
        "connectivity": report,
        "timings_s": timings,
        "note": args.note,
    }
    if args.no_write:
        print(f"[benchmark] --no-write: results only in {work}")
        write_atomic((work / "connectivity.json"), json.dumps(out, indent=1, default=float))
        return 0
    bench = REPO / "benchmarks"
    bench.mkdir(exist_ok=True)
    write_atomic((bench / "connectivity.json"), json.dumps(out, indent=1, default=float))
    fig = bench / "connectivity_hub.png"
    fig.write_bytes((work / "connectivity" / "connectivity.png").read_bytes())
    replace_section(REPO / "BENCHMARKS.md", START, END, render(out))
    print("[benchmark] wrote BENCHMARKS.md section, benchmarks/connectivity.json, benchmarks/connectivity_hub.png")
    return 0


def _check_reused_simulation(net, args, path) -> None:
    """Refuse a ``--reuse`` of a ``sim.nwb`` simulated with another ``--kind``, ``--units``, ``--hubs``,
    ``--duration`` or ``--seed`` than this run's: it was reused without a word, and the table then
    gave this run's ``--seed`` as the simulation's (``simulate --seed 3`` then ``--reuse`` said seed 0).

    Raises:
        SystemExit: naming each flag that differs, with the file's value.
    """
    import math

    p = net.params
    duration = p.get("duration_requested", p.get("duration"))  # the glm kinds record the span of whole bins
    differ = [f"{flag} {mine} (the file: {theirs})" for flag, theirs, mine, same in (
        ("--kind", net.kind, args.kind, net.kind == args.kind),
        ("--units", p.get("n_units"), args.units, p.get("n_units") == args.units),
        ("--hubs", p.get("n_hubs"), args.hubs, p.get("n_hubs") == args.hubs),
        ("--duration", duration, args.duration, duration is not None and math.isclose(duration, args.duration)),
        ("--seed", p.get("seed"), args.seed, p.get("seed") == args.seed)) if not same]
    if differ:
        raise SystemExit(f"--reuse: {path} was simulated with other settings than this run's: {'; '.join(differ)}; "
                         "pass the file's values, or delete it to simulate again")


#: The model settings the table reports (``out["model"]``), with the flag that sets each.
MODEL_FLAGS = {"current_window": "--current-window", "past_window": "--past-window", "dt_resolution": "--dt-resolution",
               "hidden_size": "--hidden-size", "num_attention_heads": "--heads", "num_hidden_layers": "--layers",
               "num_past_layers": None}


def _check_reused_model(reused, config, path) -> None:
    """Refuse a ``--reuse`` of a ``model/`` whose settings differ from the ones this run would train
    with: the table described the model this run's flags would have built (``--hidden-size 64``)
    beside the scores of the reused one (hidden 32).

    Raises:
        SystemExit: naming each setting (and its flag) that differs, with the model's value.
    """
    import math

    differ = [f"{flag or name} {getattr(config, name)} (the model: {getattr(reused, name)})"
              for name, flag in MODEL_FLAGS.items()
              if not math.isclose(float(getattr(reused, name)), float(getattr(config, name)))]
    if differ:
        raise SystemExit(f"--reuse: {path} was trained with other settings than this run's: {'; '.join(differ)}; "
                         "pass the model's values, or delete it to train again")


def _f(v):
    return "n/a" if v is None or (isinstance(v, float) and v != v) else f"{v:.3f}"


def render(out: dict) -> str:
    from hf_neuroformer.recording import count_noun

    sim, rep = out["simulation"], out["connectivity"]
    tr, m = out["training"], out["model"]
    lines = [
        START,
        "## Connectivity from attention (simulated hub network, issue 5)",
        "",
        f"`{out['command']}` ({out['date']}, {out['machine']['device']}"
        + (f" {out['machine']['gpu']}" if out['machine']['gpu'] else f", {count_noun(out['machine']['threads'], 'thread')}")
        + "). Raw numbers: `benchmarks/connectivity.json`.",
        "",
        f"Data: {sim['kind']} network (brian2 LIF unless `hub-glm`), {sim['n_units']} units, "
        f"{len(sim['hub_units'])} hubs (units {sim['hub_units']}, {', '.join(f'{r:.1f}' for r in sim['hub_rates_hz'])} Hz), "
        f"{sim['n_hub_edges']} hub edges and {sim['n_weak_edges']} weak random edges, {sim['duration_s']:.0f} s simulated, "
        f"{sim['n_spikes']:,} spikes ({sim['mean_rate_hz']:.1f} Hz mean), seed {out['args']['seed']}. "
        f"Model: {m['num_hidden_layers']} decoder + {count_noun(m['num_past_layers'], 'past layer')}, hidden {m['hidden_size']}, "
        f"{m['num_attention_heads']} heads, {m['current_window'] * 1000:.0f} ms current / {m['past_window'] * 1000:.0f} ms past "
        f"window, {m['dt_resolution'] * 1000:.0f} ms dt bins; {tr['total_steps']} steps (test unit-id NLL "
        f"{_f(tr['test/id_nll'])} nats vs unigram {_f(tr['test/unigram_id_nll'])}). Attention aggregated over "
        f"{rep['n_windows']:,} windows ({rep['n_query_rows']:,} query rows, all splits); baselines on the same time span.",
        "",
        "Hub edges: the hub -> target pairs vs unconnected pairs; all edges: every excitatory edge (hub and weak) vs "
        "unconnected pairs (inhibitory weak edges in neither set). Direction: share of true edges i <- j ranked above "
        "j <- i. AUPRC chance = prevalence "
        f"({_f(rep['scores']['truth']['hub_prevalence'])} hub, {_f(rep['scores']['truth']['prevalence'])} all).",
        "",
        "| estimate | hub AUROC | hub AUPRC | hub direction | all-edges AUROC | all-edges AUPRC | all-edges direction |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, what in ROWS:
        s = rep["scores"][name]
        lines.append(f"| {what} | {_f(s['hub_auroc'])} | {_f(s['hub_auprc'])} | {_f(s['hub_direction_accuracy'])} | "
                     f"{_f(s['auroc'])} | {_f(s['auprc'])} | {_f(s['direction_accuracy'])} |")
    lines += [
        "",
        "Timings: " + ", ".join(f"{k.replace('_s', '')} {v:.0f} s" for k, v in out["timings_s"].items()) + ".",
        "",
        "![connectivity](benchmarks/connectivity_hub.png)",
        "",
        *([out["note"], ""] if out.get("note") else []),
        "Matrices are target x source (row i, column j: influence of j on i); the figure's columns are the sources, "
        "hub units are the ticked columns. How the attention matrices are built and normalised: "
        "`hf_neuroformer/analysis/connectivity.py`.",
        END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
