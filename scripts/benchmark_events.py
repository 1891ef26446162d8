"""pynapple A2929: sleep ripple onsets as an event input for the CA1 units (issue 9, acceptance 3).

Two Neuroformers with the same windows, split, seed, steps and batch are trained on the 8 ``ca1``
units of ``../shared/data/pynapple_A2929_headdirection`` during the ``sleep`` epoch (0-600 s,
8,641 spikes, 594 ripples):

* ``no_events``: spikes only;
* ``ripples``: plus the ripple onsets (``events["sleep_ripples"]``: start times of the file's
  ``sleep_ripples`` interval table, unlabelled = one class) as a categorical event modality, window
  [-past window, current window end): every onset in the past window and in the current window
  is one token at its time (s, relative to the window start), one cross-attention stage.

50 ms current window (a sharp-wave ripple lasts 21-286 ms here, mean 63 ms; the CA1 population
fires about 4x its mean rate in the 20 ms around a ripple peak), 250 ms past window, 5 ms dt
bins. Splits: contiguous 30 s blocks split 70/15/15 with a past-window gap; the checkpoint is
selected on validation, the test split is scored once. Reported on the test split: token NLL of
the unit id and dt per spike token (``train``'s metrics: the unit-id softmax includes EOS, so in
these sparse windows, mostly empty, it is dominated by how likely the model finds any spike), and
the NLL of whole test windows (minus the log of the generator's probability of the recorded
window, EOS included, :func:`hf_neuroformer.likelihood.window_log_likelihoods`), averaged over
all test windows, over those whose start lies within 100 ms of a ripple onset, and over the rest.

Writes ``benchmarks/events_a2929.json`` and the ``events-a2929`` section of ``BENCHMARKS.md``.
One thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``).

Usage: ``OMP_NUM_THREADS=1 PYTHONPATH=src python scripts/benchmark_events.py [--steps 8000]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from benchmarks_md import data_root  # noqa: E402

START, END = "<!-- events-a2929:start -->", "<!-- events-a2929:end -->"
CURRENT, PAST, DT = 0.05, 0.25, 0.005
NEAR = 0.1  # s: a test window is "near a ripple" when its start lies within this of an onset


def make_config(with_events: bool, seed: int):
    from hf_neuroformer import NeuroformerConfig

    mods = []
    if with_events:
        mods = [{"name": "ripples", "source": "events:sleep_ripples", "kind": "categorical",
                 "window": [-PAST, CURRENT], "max_tokens": 8}]
    return NeuroformerConfig(
        current_window=CURRENT, past_window=PAST, dt_resolution=DT, max_window_length=48, max_past_length=128,
        hidden_size=64, num_attention_heads=2, intermediate_size=128, num_hidden_layers=2, num_past_layers=1,
        split_block_length=30.0, split_seed=seed, modalities=mods,
    )


def load_ca1_sleep():
    """The 8 CA1 units during the sleep epoch, with the ripple onsets as ``events``."""
    from hf_neuroformer.io import load_recording

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file's skipped-object notices (see io/nwb.py)
        rec = load_recording(data_root() / "pynapple_A2929_headdirection" / "A2929-200711.nwb", epoch="sleep")
    return rec.select_units([i for i, a in enumerate(rec.unit_areas) if a == "ca1"])


def section(out: dict, json_shown: str) -> str:
    """The BENCHMARKS.md section (between ``START`` and ``END``) of the result ``out`` (the JSON this script
    writes, shown as ``json_shown``): the figures as printed there."""
    a, b = out["models"]["no_events"], out["models"]["ripples"]
    better = b["test_id_nll"] < a["test_id_nll"]
    better_w = b["test_windows"]["all"]["nll_per_window"] < a["test_windows"]["all"]["nll_per_window"]
    lines = [
        START,
        "## Event modality: sleep ripples as input for the CA1 units (pynapple A2929)",
        "",
        f"`OMP_NUM_THREADS=1 python scripts/benchmark_events.py --steps {out['steps']}` ({out['date']}, one thread). "
        "The 8 `ca1` units during the sleep epoch (0-600 s), 30 s blocks split 70/15/15 with a past-window gap; "
        f"{out['current_window'] * 1000:.0f} ms current window, {out['past_window'] * 1000:.0f} ms past, {out['dt_resolution'] * 1000:.0f} ms dt bins. Same split, "
        "seed, steps and batch (32) for both; the checkpoint is chosen on validation. The event model reads the ripple "
        f"onsets (594 in the file) in [-{out['past_window'] * 1000:.0f} ms, window end) as tokens of one class, one cross-attention "
        f"stage. Truncated spikes: {b['n_truncated_spikes']}. Raw numbers: "
        f"`{json_shown}`.",
        "",
        "| model | parameters | test unit-id NLL (per spike) | test dt NLL | test window NLL, all (per window) | "
        "near ripples | elsewhere | steps (best) | train s |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| unigram baseline | - | {a['test_unigram_id_nll']:.4f} | - | - | - | - | - | - |",
    ]
    for label, r in (("spikes only", a), ("+ ripple events", b)):
        tw = r["test_windows"]
        lines.append(f"| {label} | {r['num_parameters']:,} | {r['test_id_nll']:.4f} | {r['test_dt_nll']:.4f} | "
                     f"{tw['all']['nll_per_window']:.4f} | {tw['near_ripple']['nll_per_window']:.4f} | "
                     f"{tw['rest']['nll_per_window']:.4f} | "
                     f"{r['total_steps']} ({r['best_step']}) | {r['train_seconds']:.0f} |")
    tw = b["test_windows"]
    lines += [
        "",
        f"Test windows: {tw['all']['n_windows']} ({tw['near_ripple']['n_windows']} start within {out['near_ripple_s'] * 1000:.0f} ms of a "
        f"ripple onset, holding {tw['near_ripple']['n_spikes']} of the {tw['all']['n_spikes']} test spikes). With the "
        f"ripple events the test unit-id NLL per spike is {'lower' if better else 'not lower'} "
        f"({b['test_id_nll']:.4f} vs {a['test_id_nll']:.4f} nats) and the test window NLL is "
        f"{'lower' if better_w else 'not lower'} ({b['test_windows']['all']['nll_per_window']:.4f} vs "
        f"{a['test_windows']['all']['nll_per_window']:.4f} nats per window). The unit-id NLL per spike is above the "
        "unigram baseline for both: its softmax includes EOS, which the models rightly make likely in these mostly "
        "empty windows (the unigram baseline is over units only); the window NLL scores EOS too.",
        "",
        END,
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "events_a2929.json"))
    ap.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args(argv)

    import torch

    from benchmarks_md import replace_section, write_atomic
    from hf_neuroformer.generation import load_pretrained
    from hf_neuroformer.likelihood import window_log_likelihoods
    from hf_neuroformer.training import TrainingConfig, train
    from hf_neuroformer.windows import tiling_windows

    torch.set_num_threads(1)
    rec = load_ca1_sleep()
    onsets = rec.events["sleep_ripples"].times
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for with_events in (False, True):
            name = "ripples" if with_events else "no_events"
            t0 = time.time()
            metrics = train(rec, Path(tmp) / name, make_config(with_events, args.seed),
                            TrainingConfig(max_steps=args.steps, max_epochs=1000, batch_size=32,
                                           learning_rate=args.lr, eval_every=max(args.steps // 6, 1), seed=args.seed),
                            overwrite=True, progress=False)
            train_s = time.time() - t0
            model, tok, plan = load_pretrained(Path(tmp) / name)
            starts, _ = tiling_windows(plan, "test", model.config)  # the scored test windows
            ll = window_log_likelihoods(model, tok, rec, starts)
            k = np.searchsorted(onsets, starts)
            gap = np.minimum(np.abs(starts - onsets[np.clip(k - 1, 0, len(onsets) - 1)]),
                             np.abs(onsets[np.clip(k, 0, len(onsets) - 1)] - starts))
            near = gap <= NEAR
            ok = ~ll["truncated"]
            part = {}
            for label, m in (("near_ripple", near & ok), ("rest", ~near & ok), ("all", ok)):
                part[label] = {"n_windows": int(m.sum()), "n_spikes": int(ll["n_spikes"][m].sum()),
                               "log_likelihood_nats": float(ll["log_likelihood"][m].sum()),
                               "nll_per_window": float(-ll["log_likelihood"][m].mean())}
            rows[name] = {
                "test_id_nll": metrics["test/id_nll"], "test_dt_nll": metrics["test/dt_nll"],
                "test_unigram_id_nll": metrics["test/unigram_id_nll"], "best_step": metrics["best_step"],
                "total_steps": metrics["total_steps"], "n_truncated_spikes": metrics["n_truncated_spikes"],
                "n_truncated_modality_tokens": metrics.get("n_truncated_modality_tokens"),
                "n_spikes_by_split": metrics["n_spikes_by_split"], "num_parameters": metrics["num_parameters"],
                "train_seconds": train_s, "test_windows": part,
            }
            print(f"[{name}] test id NLL {metrics['test/id_nll']:.4f} dt NLL {metrics['test/dt_nll']:.4f}; "
                  f"window NLL all {part['all']['nll_per_window']:.4f} nats/window ({part['all']['n_windows']}), "
                  f"near ripples {part['near_ripple']['nll_per_window']:.4f} ({part['near_ripple']['n_windows']}), "
                  f"rest {part['rest']['nll_per_window']:.4f} ({part['rest']['n_windows']}); best step {metrics['best_step']}; train {train_s:.0f} s", flush=True)
    out = {"date": datetime.date.today().isoformat(), "steps": args.steps, "learning_rate": args.lr, "seed": args.seed,
           "data": "A2929-200711 sleep epoch (0-600 s), 8 ca1 units; events: sleep_ripples onsets (594)",
           "current_window": CURRENT, "past_window": PAST, "dt_resolution": DT, "near_ripple_s": NEAR, "models": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(args.json), json.dumps(out, indent=2))
    shown = Path(args.json).resolve()
    text = section(out, str(shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else args.json))
    replace_section(Path(args.markdown), START, END, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
