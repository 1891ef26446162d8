"""pynapple A2929: head direction as a continuous input (issue 3, acceptance 2).

Two Neuroformers with the same windows, split, seed, steps and batch are trained on the wake
epoch of ``../shared/data/pynapple_A2929_headdirection`` (15 units: 7 head-direction cells
``adn``, 8 ``ca1``), restricted to ``position_time_support`` (670.6-1200 s, where the head
angles were tracked):

* ``unconditioned``: spikes only;
* ``head_direction``: plus the yaw ``ry`` (radians) as a continuous input, embedded as
  (cos, sin) (``normalization: circular``), window [-50 ms, current window end), averaged in
  10 ms bins, one cross-attention stage.

Splits: contiguous 30 s blocks with a gap of the past window. Reported on the test blocks:
token NLL of the unit id and dt; and from free-running generation of the test windows (each
contiguous stretch is one chain; only the warm start before it is recorded) the tuning curve of
every ``adn`` unit (36 bins of the recorded head direction; spikes per bin / time spent in the
bin) against the recorded tuning curve over the same windows: Pearson r per unit.

Writes ``benchmarks/multimodal_a2929.json`` and the ``multimodal-a2929`` section of
``BENCHMARKS.md``. One thread.

Usage: ``PYTHONPATH=src python scripts/benchmark_multimodal_hd.py [--steps 1500]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from benchmarks_md import data_root  # noqa: E402

START, END = "<!-- multimodal-a2929:start -->", "<!-- multimodal-a2929:end -->"


def make_config(with_hd: bool, seed: int):
    from hf_neuroformer import NeuroformerConfig

    mods = []
    if with_hd:
        mods = [{"name": "head_direction", "source": "behaviour:ry", "kind": "continuous",
                 "normalization": "circular", "window": [-0.05, 0.05], "bin_size": 0.01}]
    return NeuroformerConfig(
        current_window=0.05, past_window=0.25, dt_resolution=0.005, max_window_length=48, max_past_length=128,
        hidden_size=64, num_attention_heads=2, intermediate_size=128, num_hidden_layers=2, num_past_layers=1,
        split_block_length=30.0, split_seed=seed, modalities=mods,
    )


def tuning_curves(rec, hd_t, hd_v, support, n_bins=36):
    """``(n_units, n_bins)`` firing rate (Hz) per head-direction bin over the ``support`` rows,
    and the occupancy (s) per bin."""
    dt = float(np.median(np.diff(hd_t)))
    edges = np.linspace(0, 2 * np.pi, n_bins + 1)

    def inside(t):
        k = np.searchsorted(support[:, 0], t, side="right") - 1
        return (k >= 0) & (t < support[np.clip(k, 0, None), 1])

    m = inside(hd_t)
    occ = np.histogram(np.mod(hd_v[m], 2 * np.pi), edges)[0] * dt
    sm = inside(rec.spike_times)
    st, su = rec.spike_times[sm], rec.unit_ids[sm]
    j = np.clip(np.searchsorted(hd_t, st), 1, len(hd_t) - 1)
    j = np.where(np.abs(hd_t[j - 1] - st) < np.abs(hd_t[j] - st), j - 1, j)
    ang = np.mod(hd_v[j], 2 * np.pi)
    b = np.clip(np.digitize(ang, edges) - 1, 0, n_bins - 1)
    counts = np.zeros((rec.n_units, n_bins))
    np.add.at(counts, (su, b), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / occ[None], occ


def section(out: dict) -> str:
    """The BENCHMARKS.md section (between ``START`` and ``END``) of the result ``out`` (the JSON this script
    writes): the figures as printed there."""
    u, h = out["models"]["unconditioned"], out["models"]["head_direction"]
    names = list(h["tuning_r_adn"])
    lines = [
        START,
        "## Multimodal: head direction as input (pynapple A2929)",
        "",
        f"`python scripts/benchmark_multimodal_hd.py --steps {out['steps']}` ({out['date']}, one thread). Wake epoch where "
        "the head was tracked (670.6-1200 s), 30 s blocks split 70/15/15 with a past-window gap; 50 ms current "
        "window, 250 ms past, 5 ms dt bins. Same split, seed, steps and batch (32) for both models; the conditioned "
        "one reads the yaw `ry` as (cos, sin) in 10 ms bins over [-50 ms, window end), one cross-attention stage. "
        f"Truncated spikes: {h['n_truncated_spikes']}. Raw numbers: `benchmarks/multimodal_a2929.json`.",
        "",
        "| model | parameters | test unit-id NLL | test dt NLL | steps (best) | train s |",
        "|---|---|---|---|---|---|",
        f"| unigram baseline | - | {u['test_unigram_id_nll']:.4f} | - | - | - |",
        f"| unconditioned | {u['num_parameters']:,} | {u['test_id_nll']:.4f} | {u['test_dt_nll']:.4f} | "
        f"{u['total_steps']} ({u['best_step']}) | {u['train_seconds']:.0f} |",
        f"| head direction input | {h['num_parameters']:,} | {h['test_id_nll']:.4f} | {h['test_dt_nll']:.4f} | "
        f"{h['total_steps']} ({h['best_step']}) | {h['train_seconds']:.0f} |",
        "",
        f"Tuning curves of the 7 `adn` units (36 head-direction bins, bins visited >= 0.5 s: {h['n_bins_used']}), "
        f"free-running generation of the {h['test_seconds']:.0f} s of test windows against the recorded spikes in the "
        "same windows, Pearson r:",
        "",
        "| model | " + " | ".join(names) + " | median r | generated / recorded spikes |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for label, r in (("unconditioned", u), ("head direction input", h)):
        lines.append(f"| {label} | " + " | ".join(f"{r['tuning_r_adn'][n]:.3f}" for n in names)
                     + f" | **{r['tuning_r_median']:.3f}** | {r['n_generated_spikes']:,} / "
                     f"{r['n_recorded_spikes_same_windows']:,} |")
    return "\n".join(lines + ["", END])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "multimodal_a2929.json"))
    ap.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args(argv)

    import torch

    from benchmarks_md import replace_section, write_atomic
    from hf_neuroformer.generation import generate_split, load_pretrained
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.training import TrainingConfig, train

    torch.set_num_threads(1)
    rec = load_recording(data_root() / "pynapple_A2929_headdirection" / "A2929-200711.nwb", epoch="wake")
    rec = rec.select_epoch("position_time_support")
    adn = [i for i, a in enumerate(rec.unit_areas) if a == "adn"]
    hd = rec.behaviour["ry"]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for with_hd in (False, True):
            name = "head_direction" if with_hd else "unconditioned"
            t0 = time.time()
            metrics = train(rec, Path(tmp) / name, make_config(with_hd, args.seed),
                            TrainingConfig(max_steps=args.steps, max_epochs=1000, batch_size=32,
                                           learning_rate=args.lr, eval_every=max(args.steps // 6, 1), seed=args.seed),
                            overwrite=True, progress=False)
            train_s = time.time() - t0
            model, tok, plan = load_pretrained(Path(tmp) / name)
            t1 = time.time()
            gen = generate_split(model, tok, rec, plan, "test", mode="free_running", seed=args.seed, progress=False)
            gen_s = time.time() - t1
            sup = gen.time_support
            real_tc, occ = tuning_curves(rec, hd.timestamps, hd.values, sup)
            gen_tc, _ = tuning_curves(gen, hd.timestamps, hd.values, sup)
            ok = occ > 0.5  # bins visited for at least 0.5 s
            r = {rec.unit_names[u]: float(np.corrcoef(real_tc[u, ok], gen_tc[u, ok])[0, 1]) for u in adn}
            rows[name] = {
                "test_id_nll": metrics["test/id_nll"], "test_dt_nll": metrics["test/dt_nll"],
                "test_unigram_id_nll": metrics["test/unigram_id_nll"], "best_step": metrics["best_step"],
                "total_steps": metrics["total_steps"], "n_truncated_spikes": metrics["n_truncated_spikes"],
                "n_spikes_by_split": metrics["n_spikes_by_split"], "num_parameters": metrics["num_parameters"],
                "train_seconds": train_s, "generation_seconds": gen_s, "tuning_r_adn": r,
                "tuning_r_median": float(np.median(list(r.values()))),
                "n_generated_spikes": int(gen.n_spikes),
                "n_recorded_spikes_same_windows": int(sum(np.sum((rec.spike_times >= a) & (rec.spike_times < b))
                                                          for a, b in sup)),
                "test_seconds": float(np.sum(sup[:, 1] - sup[:, 0])), "n_bins_used": int(ok.sum()),
            }
            print(f"[{name}] test id NLL {metrics['test/id_nll']:.4f} dt {metrics['test/dt_nll']:.4f}; tuning r median "
                  f"{rows[name]['tuning_r_median']:.3f} {r}; train {train_s:.0f} s, generation {gen_s:.0f} s")
    out = {"date": datetime.date.today().isoformat(), "steps": args.steps, "learning_rate": args.lr, "seed": args.seed,
           "data": "A2929-200711 wake, position_time_support (670.6-1200 s)", "models": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(args.json), json.dumps(out, indent=2))
    text = section(out)
    replace_section(Path(args.markdown), START, END, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
