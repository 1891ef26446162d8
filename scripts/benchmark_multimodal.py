"""Allen gratings: does conditioning on the grating orientation help? (issue 3, acceptance 1)

Neuroformers with the same windows, split, seed, steps and batch are trained on
``../shared/data/allen_vcn_gratings`` (1000 units, 200 trials of 100 ms, 4 orientations):

* ``unconditioned``: spikes only (the current window and its past, clipped at the trial start);
* ``orientation``: the same plus the trial's orientation as a categorical input
  (``source: trial:orientation_deg``), through one cross-attention stage;
* ``video``: the same plus RENDERED grating video instead (``source: stimulus:frames``,
  :func:`hf_neuroformer.stimuli.render_drifting_gratings` with its default ASSUMED values:
  spatial frequency 0.04 cycles/deg, temporal frequency 2 Hz, contrast 0.8, 60 Hz frames of
  32x32 px over 64x64 deg; the data store only the orientation): the 3 frames on screen from
  20 ms before the window to its end, Conv3d patches 1x8x8 (48 tokens), one self-attention
  layer over them, one cross-attention stage.

The models train in parallel processes (``--workers``), one thread each.

Trials are split whole, stratified by orientation (``split_stratify_by``). Windows: 10 ms current
window, 20 ms past, 1 ms dt bins, ``max_window_length`` 192 (the most spikes in a 10 ms window of
this data is 169, so no spike is truncated; the count is reported).

Reported, on the test trials:

1. token NLL (nats per spike token) of the unit id and of dt, and the unigram baseline;
2. free-running generation of every test trial (10 chained windows; the past is clipped at the
   trial start, so no recorded spike is used), ``--samples`` repeats: per-orientation PSTHs
   (10 ms bins, averaged over the test trials of that orientation and the repeats, per unit),
   correlated with the recorded ones: Pearson r over all (unit, bin) values per orientation, and
   the same for the orientation-specific part (each PSTH minus the mean PSTH over the four
   orientations, computed separately for recorded and generated). The split-half reliability of
   the recorded PSTHs (odd vs even test trials) is given for scale.

Writes ``benchmarks/multimodal_allen.json`` and the ``multimodal-allen`` section of
``BENCHMARKS.md``. Runs on one thread; about 5 minutes per model with the defaults on 2 shared
cores.

Usage: ``PYTHONPATH=src python scripts/benchmark_multimodal.py [--steps 300] [--samples 4]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from benchmarks_md import data_root  # noqa: E402

START, END = "<!-- multimodal-allen:start -->", "<!-- multimodal-allen:end -->"


MODELS = ("unconditioned", "orientation", "video")


def make_config(kind: str, seed: int):
    from hf_neuroformer import NeuroformerConfig

    mods = []
    if kind == "orientation":
        mods = [{"name": "orientation", "source": "trial:orientation_deg", "kind": "categorical",
                 "window": [-0.02, 0.01]}]
    elif kind == "video":
        mods = [{"name": "video", "source": "stimulus:frames", "kind": "video", "window": [-0.02, 0.01],
                 "frame_shape": [32, 32], "num_frames": 3, "patch_size": [1, 8, 8], "num_layers": 1}]
    return NeuroformerConfig(
        current_window=0.01, past_window=0.02, dt_resolution=0.001, max_window_length=192, max_past_length=384,
        hidden_size=64, num_attention_heads=2, intermediate_size=128, num_hidden_layers=2, num_past_layers=1,
        split_by="trials", split_stratify_by="orientation_deg", split_seed=seed, modalities=mods,
    )


def psth_by_orientation(rec, trials: np.ndarray, orient: np.ndarray, bin_size: float, n_bins: int, n_units: int):
    """``{orientation: (n_units, n_bins) mean counts per trial}`` and the per-trial counts."""
    counts = np.zeros((len(trials), n_units, n_bins))
    for k, (a, _) in enumerate(trials):
        lo, hi = np.searchsorted(rec.spike_times, [a, a + n_bins * bin_size - 1e-12])
        b = np.clip(np.floor((rec.spike_times[lo:hi] - a) / bin_size + 1e-9).astype(int), 0, n_bins - 1)
        np.add.at(counts[k], (rec.unit_ids[lo:hi], b), 1)
    return {int(o): counts[orient == o].mean(0) for o in np.unique(orient)}, counts


def corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def psth_correlations(real: dict, gen: dict) -> dict:
    oris = sorted(real)
    mean_r = np.mean([real[o] for o in oris], 0)
    mean_g = np.mean([gen[o] for o in oris], 0)
    return {
        "r_psth": {o: corr(real[o], gen[o]) for o in oris},
        "r_orientation_specific": {o: corr(real[o] - mean_r, gen[o] - mean_g) for o in oris},
    }


def load_data():
    from hf_neuroformer.io import read_allen_gratings
    from hf_neuroformer.stimuli import render_drifting_gratings

    return render_drifting_gratings(read_allen_gratings(data_root() / "allen_vcn_gratings"))


def run_one(name: str, steps: int, lr: float, samples: int, seed: int, workdir: Path) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from hf_neuroformer.generation import generate_spikes, load_pretrained
    from hf_neuroformer.training import TrainingConfig, train
    from hf_neuroformer.windows import tiling_windows

    torch.set_num_threads(1)
    rec = load_data()
    out = workdir / name
    t0 = time.time()
    metrics = train(rec, out, make_config(name, seed),
                    TrainingConfig(max_steps=steps, max_epochs=1000, batch_size=16, learning_rate=lr,
                                   eval_every=max(steps // 6, 1), seed=seed),
                    overwrite=True, progress=False)
    train_s = time.time() - t0
    model, tok, plan = load_pretrained(out)
    starts, clips = tiling_windows(plan, "test", model.config, use="generated")  # the scored test windows
    t1 = time.time()
    gens = generate_spikes(model, tok, rec, starts, past_clip_starts=clips, mode="free_running",
                           num_samples=samples, seed=seed, progress=False)
    gens = gens if isinstance(gens, list) else [gens]
    gen_s = time.time() - t1
    return {"name": name, "metrics": metrics, "train_seconds": train_s, "generation_seconds": gen_s,
            "plan": plan, "generated": gens, "n_params": metrics["num_parameters"]}


def section(out: dict, workers: int) -> str:
    """The BENCHMARKS.md section (between ``START`` and ``END``) of the result ``out`` as read from the JSON
    this script writes (orientation keys are strings there), run with ``workers`` processes: the figures as
    printed there."""
    rows, half = out["models"], out["recorded_split_half_r"]
    u, o, v = rows["unconditioned"], rows["orientation"], rows["video"]
    oris = sorted(half, key=float)  # orientations in degrees (JSON keys)

    def bold(x, other):  # NLL below the unconditioned model's in bold
        return f"**{x:.4f}**" if x < other else f"{x:.4f}"

    lines = [
        START,
        "## Multimodal: orientation or rendered video as input (Allen gratings)",
        "",
        f"`python scripts/benchmark_multimodal.py --steps {out['steps']} --samples {out['samples']} --workers "
        f"{workers}` ({out['date']}, one thread per model). Same windows, split, seed, steps and batch for the "
        "three models; the conditioned ones add the trial's orientation as a categorical input, or rendered grating "
        "video (one cross-attention stage each). The video is drawn from the orientation with ASSUMED values, as the "
        "data store only the orientation: spatial frequency 0.04 cycles/deg, temporal frequency 2 Hz, contrast 0.8, "
        "60 Hz frames of 32x32 px over 64x64 deg, drifting along the orientation angle, mean grey between trials "
        "(`hf_neuroformer.stimuli.GratingParams`); each window reads the 3 frames on screen from 20 ms before it to "
        "its end (Conv3d patches 1x8x8, 48 tokens, one self-attention layer). Checkpoint chosen on the validation "
        "split. Trials split whole, stratified by orientation "
        f"({out['n_test_trials']} test trials, { {int(k): n for k, n in out['test_trials_per_orientation'].items()} } per orientation). Windows: 10 ms "
        "current, 20 ms past (clipped at the trial start), 1 ms dt bins, max_window_length 192: "
        f"**{u['n_truncated_spikes']} truncated spikes** of {sum(u['n_spikes_by_split'].values()):,} "
        f"({u['n_truncated_past_spikes']} past spikes dropped). Raw numbers: `benchmarks/multimodal_allen.json`.",
        "",
        "Test token NLL (nats per spike token, lower is better):",
        "",
        "| model | parameters | unit-id NLL | dt NLL | steps (best) | train s |",
        "|---|---|---|---|---|---|",
        f"| unigram baseline | - | {u['test_unigram_id_nll']:.4f} | - | - | - |",
        f"| unconditioned | {u['num_parameters']:,} | {bold(u['test_id_nll'], o['test_id_nll'])} | {u['test_dt_nll']:.4f} | "
        f"{u['total_steps']} ({u['best_step']}) | {u['train_seconds']:.0f} |",
        f"| orientation input | {o['num_parameters']:,} | {bold(o['test_id_nll'], u['test_id_nll'])} | {o['test_dt_nll']:.4f} | "
        f"{o['total_steps']} ({o['best_step']}) | {o['train_seconds']:.0f} |",
        f"| rendered video input | {v['num_parameters']:,} | {bold(v['test_id_nll'], u['test_id_nll'])} | "
        f"{v['test_dt_nll']:.4f} | {v['total_steps']} ({v['best_step']}) | {v['train_seconds']:.0f} |",
        "",
        f"Free-running generation of every test trial ({out['samples']} samples, 10 chained 10 ms windows, no recorded "
        "spike used), per-orientation PSTHs (10 ms bins, trial-averaged per unit) against the recorded ones: Pearson r "
        "over all (unit, bin) values, and of the orientation-specific part (PSTH minus the mean over orientations):",
        "",
        "| model | " + " | ".join(f"r {k} deg" for k in oris) + " | r mean | " +
        " | ".join(f"r specific {k} deg" for k in oris) + " | r specific mean | spikes per trial |",
        "|---|" + "---|" * (2 * len(oris) + 3),
    ]
    for name, r in (("unconditioned", u), ("orientation input", o), ("rendered video input", v)):
        lines.append(f"| {name} | " + " | ".join(f"{r['r_psth'][k]:.3f}" for k in oris) + f" | {r['r_psth_mean']:.3f} | "
                     + " | ".join(f"{r['r_orientation_specific'][k]:.3f}" for k in oris)
                     + f" | {r['r_orientation_specific_mean']:.3f} | {r['generated_spikes_per_trial']:.0f} |")
    lines += [
        "| recorded, odd vs even test trials | " + " | ".join(f"{half[k]:.3f}" for k in oris)
        + f" | {np.mean(list(half.values())):.3f} | " + " | ".join("-" for _ in oris) + f" | - | {out['recorded_spikes_per_test_trial']:.0f} |",
        "",
        f"Conditioned minus unconditioned test unit-id NLL: orientation {o['test_id_nll'] - u['test_id_nll']:+.3f}, "
        f"video {v['test_id_nll'] - u['test_id_nll']:+.3f} nats per spike token; orientation-specific PSTH r: "
        f"{u['r_orientation_specific_mean']:.3f} (unconditioned), {o['r_orientation_specific_mean']:.3f} (orientation), "
        f"{v['r_orientation_specific_mean']:.3f} (video). The generated PSTHs can correlate with the recorded test PSTHs "
        "more than the recorded odd and even test trials do with each other because they average "
        f"{out['samples']} samples of every test trial, which removes most of the trial-to-trial noise; the split-half "
        "figure is for scale, not a ceiling. One seed; each model's checkpoint was chosen on the validation split "
        "(best step in brackets).",
        "",
        END,
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--samples", type=int, default=4, help="generated repeats of every test trial")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="models trained at once, one process (and thread) each")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "multimodal_allen.json"))
    ap.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args(argv)

    from benchmarks_md import replace_section, write_atomic

    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    rec = load_data()
    orient_all = np.asarray(rec.trial_info["orientation_deg"])
    results = {}
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.workers, mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_one, name, args.steps, args.lr, args.samples, args.seed, Path(tmp))
                   for name in MODELS]
        for fut in futures:
            r = fut.result()
            results[r["name"]] = r
            m = r["metrics"]
            print(f"[{r['name']}] test id NLL {m['test/id_nll']:.4f}  dt NLL {m['test/dt_nll']:.4f}  "
                  f"(unigram {m['test/unigram_id_nll']:.4f}); train {r['train_seconds']:.0f} s")

    plan = results["orientation"]["plan"]
    for name in MODELS:
        assert np.array_equal(plan.trial_index["test"], results[name]["plan"].trial_index["test"])
    test_idx = plan.trial_index["test"]
    trials, orient = rec.trials[test_idx], orient_all[test_idx]
    n_bins, bin_size = 10, 0.01
    real, real_counts = psth_by_orientation(rec, trials, orient, bin_size, n_bins, rec.n_units)
    # split-half reliability of the recorded PSTHs (odd vs even test trials of each orientation)
    half = {}
    for o in sorted(real):
        k = np.flatnonzero(orient == o)
        half[o] = corr(real_counts[k[0::2]].mean(0), real_counts[k[1::2]].mean(0))
    rows = {}
    for name, r in results.items():
        gen_psth = [psth_by_orientation(g, trials, orient, bin_size, n_bins, rec.n_units)[0] for g in r["generated"]]
        gen = {o: np.mean([g[o] for g in gen_psth], 0) for o in real}
        c = psth_correlations(real, gen)
        m = r["metrics"]
        rows[name] = {
            "test_id_nll": m["test/id_nll"], "test_dt_nll": m["test/dt_nll"],
            "validation_id_nll": m["validation/id_nll"], "test_unigram_id_nll": m["test/unigram_id_nll"],
            "test_markov_id_nll": m["test/markov_id_nll"],
            "n_truncated_spikes": m["n_truncated_spikes"], "n_truncated_past_spikes": m["n_truncated_past_spikes"],
            "n_spikes_by_split": m["n_spikes_by_split"], "best_step": m["best_step"], "total_steps": m["total_steps"],
            "num_parameters": m["num_parameters"], "train_seconds": r["train_seconds"],
            "generation_seconds": r["generation_seconds"],
            "generated_spikes_per_trial": float(np.mean([g.n_spikes for g in r["generated"]]) / len(test_idx)),
            "n_capped_windows": int(sum(g.generation_stats["n_capped_windows"] for g in r["generated"])),
            **c,
            "r_psth_mean": float(np.mean(list(c["r_psth"].values()))),
            "r_orientation_specific_mean": float(np.mean(list(c["r_orientation_specific"].values()))),
        }
    recorded_per_trial = float(real_counts.sum((1, 2)).mean())
    out = {
        "date": datetime.date.today().isoformat(),
        "data": "allen_vcn_gratings (1000 units, 200 trials x 100 ms, 4 orientations)",
        "steps": args.steps, "batch_size": 16, "learning_rate": args.lr, "seed": args.seed, "samples": args.samples,
        "windows": {"current_window": 0.01, "past_window": 0.02, "dt_resolution": 0.001, "max_window_length": 192,
                    "max_past_length": 384},
        "n_test_trials": int(len(test_idx)),
        "test_trials_per_orientation": {int(o): int((orient == o).sum()) for o in np.unique(orient)},
        "recorded_spikes_per_test_trial": recorded_per_trial,
        "recorded_split_half_r": half,
        "models": rows,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(args.json), json.dumps(out, indent=2))

    text = section(json.loads(json.dumps(out)), args.workers)
    replace_section(Path(args.markdown), START, END, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
