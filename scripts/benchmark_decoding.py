"""Behaviour decoding, few-shot: Neuroformer (pretrained + fine-tuned, and from scratch) against
classical decoders on the same windows, bins, splits and targets (issue 4).

    python scripts/benchmark_decoding.py              # full run (~35 min on 2 shared CPU cores, 2 worker processes)
    python scripts/benchmark_decoding.py --datasets steinmetz   # rerun one dataset, merged into benchmarks/decoding.json
    python scripts/benchmark_decoding.py --workers 16 --device cuda --fresh   # 16 cores + one GPU, every dataset
    python scripts/benchmark_decoding.py --quick      # a few minutes: smoke test of the whole pipeline
    python scripts/benchmark_decoding.py --report-only benchmarks/decoding.json   # table + plot again

Each worker process uses one torch / BLAS thread (``OMP_NUM_THREADS=1`` is set for the workers).
``--device cuda``: pretraining (Accelerate) and fine-tuning (``Trainer``) run on the GPU, every
worker sharing it; the baselines (scikit-learn, and the small GRU) stay on the CPU cores.
``--device cpu`` (default) hides any GPU from the workers. Without ``--fresh`` the datasets run
replace theirs in ``benchmarks/decoding.json`` and the others are kept as they are; each dataset
records its own run (commit, date, machine, workers, device, model, steps) and the section prints
it. The model size (``--hidden-size`` ...), ``--finetune-steps``, ``--learning-rate`` and the fine-tuning
config settings (``--set KEY=VALUE``, e.g. ``--set window_stride=0.125``: overlapping training
windows, for the baselines too; validation and test windows always tile their split) are flags;
their defaults are the settings of the first run, NOT chosen on test numbers; if you change them,
choose on the validation metrics, which the JSON keeps per run (``neuroformer.*.validation``).

Protocol
--------
Three real recordings; one target each, two for nelpy:

* ``nelpy``: rat CA1 on a linear track (``../shared/data/nelpy_hippocampus/linear-track``, 31
  units), epoch ``run`` (the ~16 min before the tracker freezes). Target: LED position ``x``
  (px, regression). Windows of 250 ms with a 1 s past (the recording is sparse: ~16 spikes/s
  in all, ~4 per window), dt bins of 10 ms. Only windows whose mean speed (0.25 s Gaussian-smoothed
  LED position, differentiated) is above 15 px/s are decoded, as place-cell decoding does,
  and only those whose mean LED position lies on the track (``io.nelpy.LinearTrack`` fitted on
  the TRAINING split's running windows: this removes the animal being carried onto the track in
  training and lifted off it at the end of the last test block); the JSON and the table say how
  many windows each condition removes per split.
* ``nelpy_speed``: the same recording, windows, mask, split plan and pretrained checkpoint as
  ``nelpy`` (:func:`source_of`); target: the window-mean running ``speed`` (px/s, regression).
* ``a2929``: pynapple A2929 (15 units, 7 head-direction cells), epoch ``wake``. Target: head
  direction ``ry`` (the yaw, rad; ``rx`` and ``rz`` are pitch and roll and barely move: a
  constant guess of ``rz`` scores ~6 deg), circular: decoded as (cos, sin), error = wrapped
  absolute angle.
  Windows of 100 ms, past 300 ms. Windows before the head tracking starts (670.6 s) have no
  angle and are dropped (counted).
* ``steinmetz``: Steinmetz et al. 2019 subset, 64 units drawn at random (seed 0) among those
  firing >= 2 Hz over the session's time domain, the 0.1-s gaps between trials included
  (as ``scripts/fidelity_report.py``: the full 806 units give ~180 spikes per
  100 ms window). Target: wheel choice ``trial:motorLabel`` (-1/0/1, 3 classes, balanced
  accuracy), one label per trial for every window of the trial; whole trials are the unit of
  splitting. Windows of 100 ms, past 300 ms clipped at the trial start.

For each recording: splits are planned once (contiguous 30 s blocks, or whole trials; 70/15/15;
seed 0) and used by everything. A Neuroformer is pretrained generatively on the train split
(``hf_neuroformer.training.train``, no labels; one pretraining, seed 0). Then for each fraction
of the training windows (1, 5, 10, 20, 100 %: the first contiguous block in time,
``fraction_of_train``) and each of 3 seeds: ``finetune`` from the checkpoint ("pretrained") and
from random weights with the same architecture ("scratch"), same steps, checkpoint selected on
the validation split by the metric of the table (balanced accuracy, R², mean angular error;
``select_on="auto"``), classification with the class-weighted cross-entropy (``"balanced"``,
as the baselines' ``class_weight``); and every baseline of ``hf_neuroformer.baselines`` (ridge, lasso, GLM,
MLP, GRU on the binned counts of the same rows; hyperparameters by time-blocked CV on the
training block only). All are scored once on the same test windows. Ridge, lasso and the GLM
are deterministic (sd 0 over seeds).

Writes ``benchmarks/decoding.json`` (everything: configs, window counts, per-seed metrics,
timings), ``benchmarks/decoding_fewshot.png`` and the "Behaviour decoding" section of
``BENCHMARKS.md`` (with ``--quick``, only the JSON and PNG, into ``--output-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import copy
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import comma_items, data_root, int_at_least, kept_records, names_arg, replace_section, write_atomic  # noqa: E402

START, END = "<!-- behaviour-decoding:start -->", "<!-- behaviour-decoding:end -->"
DATA = data_root()
FRACTIONS = (0.01, 0.05, 0.1, 0.2, 1.0)
RUN_SPEED = 15.0  # px/s, window-mean speed of the nelpy run windows kept
STEINMETZ_UNITS, STEINMETZ_MIN_RATE = 64, 2.0

#: the model size used for every dataset (small: the whole benchmark runs on 2 CPU cores)
MODEL = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_hidden_layers=2)

DATASETS = {
    "nelpy": dict(
        title="nelpy linear track, position x (px) while running",
        target="x", kind="regression",
        config=dict(current_window=0.25, past_window=1.0, dt_resolution=0.01, max_window_length=64,
                    max_past_length=128, split_block_length=30.0),
    ),
    "nelpy_speed": dict(
        title="nelpy linear track, running speed (px/s) while running",
        target="speed", kind="regression", recording="nelpy",
    ),
    "a2929": dict(
        title="A2929 head direction (wake), circular",
        target="ry", kind="circular",
        config=dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=64,
                    max_past_length=128, split_block_length=30.0),
    ),
    "steinmetz": dict(
        title="Steinmetz wheel choice (3 classes), whole trials",
        target="trial:motorLabel", kind="classification",
        config=dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=128,
                    max_past_length=256, split_by="trials"),
    ),
}
# nelpy_speed: the same recording, windows, mask, split plan and pretrained checkpoint as nelpy; only the target differs
DATASETS["nelpy_speed"]["config"] = DATASETS["nelpy"]["config"]


def source_of(name: str) -> str:
    """The dataset whose recording, window mask and pretrained checkpoint ``name`` uses (itself unless
    its entry names a ``recording``): datasets that differ only in the target share one pretraining."""
    return DATASETS[name].get("recording", name)


def pretrained_dir(out, name: str, split_seed=None) -> Path:
    """The pretrained checkpoint ``name`` fine-tunes from, under a run's output folder ``out``:
    ``<out>/<source>/pretrained`` (this script's split 0) or ``<out>/<source>/split<S>/pretrained``
    (``decoding_repeated_splits.py``'s split seed ``S``), ``<source>`` = :func:`source_of` (``nelpy``
    for ``nelpy_speed``)."""
    base = Path(out) / source_of(name)
    return (base if split_seed is None else base / f"split{split_seed}") / "pretrained"


PRIMARY = {"regression": ("r2", "R²", True), "circular": ("mean_angular_error_deg", "mean angular error (deg)", False),
           "classification": ("balanced_accuracy", "balanced accuracy", True)}
SECONDARY = {"regression": "pearson_r", "circular": "median_angular_error_deg", "classification": "accuracy"}
METHODS = ("neuroformer_pretrained", "neuroformer_scratch", "ridge", "lasso", "glm", "mlp", "gru")
LABELS = {"neuroformer_pretrained": "Neuroformer pretrained + fine-tuned", "neuroformer_scratch": "Neuroformer from scratch",
          "ridge": "Ridge", "lasso": "Lasso", "glm": "GLM", "mlp": "MLP", "gru": "GRU"}


# --------------------------------------------------------------------------------------- data
class RunningOnTrackMask:
    """``window_mask(recording, starts)``: windows whose mean smoothed speed exceeds ``threshold``
    px/s AND whose mean LED position lies on the track (``hf_neuroformer.io.nelpy.LinearTrack``,
    fitted on the TRAINING split's running windows only); ``parts`` gives the two conditions
    separately, for the counts in the report."""

    def __init__(self, threshold: float, current_window: float, track=None, plan: dict | None = None):
        self.threshold, self.current_window, self.track = float(threshold), float(current_window), track
        self.plan = plan  # the split plan the track was fitted on (checked against the checkpoint's)

    def parts(self, recording, starts):
        """``(running, on_track)``: two ``(n,)`` bool arrays."""
        from hf_neuroformer.decoding import DecodingTarget, target_values

        def v(name):
            return target_values(recording, DecodingTarget(name, "regression"), starts, self.current_window)

        running = np.nan_to_num(v("speed"), nan=0.0) > self.threshold
        on = np.ones(len(starts), bool) if self.track is None else self.track.contains(np.stack([v("x"), v("y")], 1))
        return running, on

    def __call__(self, recording, starts):
        running, on = self.parts(recording, starts)
        return running & on


def check_plan(mask, plan):
    """The split plan of the pretrained checkpoint must be the one the window mask was fitted on."""
    if mask is not None and getattr(mask, "plan", None) is not None:
        if json.dumps(mask.plan, sort_keys=True) != json.dumps(plan.to_dict(), sort_keys=True):
            raise RuntimeError("the checkpoint's splits.json differs from the split plan the track was fitted on")


_CACHE: dict = {}


def load_dataset(name: str, quick: bool = False, model: dict | None = None):
    """``(recording, NeuroformerConfig, window_mask, notes)`` of one benchmark dataset (cached per process);
    ``model``: the architecture (default :data:`MODEL`)."""
    model = dict(MODEL if model is None else model)
    key = (name, quick, tuple(sorted(model.items())))
    if key in _CACHE:
        return _CACHE[key]
    import hf_neuroformer as nf
    from hf_neuroformer.io import load_recording

    spec = DATASETS[name]
    cfg = nf.NeuroformerConfig(**spec["config"], **model)
    mask, notes = None, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the readers' notes on skipped fields and the one duplicate video frame
        if source_of(name) == "nelpy":
            rec = load_recording(DATA / "nelpy_hippocampus" / "linear-track", epoch="run")
            if quick:
                rec = rec.restrict(rec.time_domain[0], rec.time_domain[0] + 400.0)
            mask, notes = nelpy_mask(rec, cfg)
        elif name == "a2929":
            rec = load_recording(DATA / "pynapple_A2929_headdirection" / "A2929-200711.nwb", epoch="wake")
            if quick:
                rec = rec.restrict(600.0, 900.0)
        else:
            full = load_recording(DATA / "steinmetz2019_spcount" / "NS_sp_count.mat", bin_size=0.01, seed=0)
            # over the time domain, the reader's 0.1-s gaps between trials included: the rule the stored results
            # drew their units with (over the trials alone, its time support, 227 units pass, not 208)
            cand = np.flatnonzero(dataclasses.replace(full, time_support=None).firing_rates() >= STEINMETZ_MIN_RATE)
            units = np.sort(np.random.default_rng(0).choice(cand, STEINMETZ_UNITS, replace=False))
            rec = full.select_units(units)
            notes["units"] = (f"{STEINMETZ_UNITS} of {full.n_units} units, drawn with seed 0 among the {len(cand)} "
                              f"firing >= {STEINMETZ_MIN_RATE} Hz over the whole session, test trials included (no labels read)")
    notes.update(n_units=rec.n_units, n_spikes=rec.n_spikes, time_domain=list(rec.time_domain))
    _CACHE[key] = (rec, cfg, mask, notes)
    return _CACHE[key]


def mask_windows(plan, split: str, cfg) -> np.ndarray:
    """The window starts of ``split`` that :func:`nelpy_mask` fits the track on and counts: as training and
    ``build_decoding_datasets`` make them (:func:`hf_neuroformer.windows.split_windows`), so that the
    validation and test counts are of the windows ``finetune`` and the baselines score (each split tiled
    by ``tiling_windows``). ``cfg`` is :func:`load_dataset`'s, which sets no ``window_stride``: the
    training windows tile their split too (the ``--set`` overrides, e.g. ``window_stride``, apply to the
    fine-tuning and baseline rows, not to the track fit or the counts; the report says so)."""
    from hf_neuroformer.windows import split_windows

    return split_windows(plan, split, cfg, stacklevel=3)[0]


def nelpy_mask(rec, cfg):
    """The running + on-track window mask of the nelpy recording, the track fitted on the window-mean
    LED positions of the TRAINING split's running windows (the split plan of ``plan_splits``, the
    one pretraining then uses and writes to ``splits.json``), and notes with the counts per split."""
    import hf_neuroformer as nf
    from hf_neuroformer.io.nelpy import LinearTrack

    plan = nf.plan_splits(rec, cfg)
    probe = RunningOnTrackMask(RUN_SPEED, cfg.current_window)
    from hf_neuroformer.decoding import DecodingTarget, target_values

    st = mask_windows(plan, "train", cfg)
    running, _ = probe.parts(rec, st)
    xy = np.stack([target_values(rec, DecodingTarget(c, "regression"), st, cfg.current_window) for c in "xy"], 1)
    track = LinearTrack.fit(xy[running])
    mask = RunningOnTrackMask(RUN_SPEED, cfg.current_window, track, plan.to_dict())
    counts = {}
    for split in ("train", "validation", "test"):
        s = mask_windows(plan, split, cfg)
        r, on = mask.parts(rec, s)
        counts[split] = {"windows": int(len(s)), "not_running": int((~r).sum()), "running_off_track": int((r & ~on).sum()),
                         "kept": int((r & on).sum())}
    t0 = rec.time_domain[0]
    test_st = mask_windows(plan, "test", cfg)
    r, on = mask.parts(rec, test_st)
    off_times = sorted({int(t - t0) for t in test_st[r & ~on]})
    notes = {
        "running": f"window-mean speed > {RUN_SPEED} px/s (0.25 s Gaussian-smoothed LED position)",
        "track": (f"window-mean LED position within {track.half_width:.0f} px of the track's centre-line segment "
                  f"({track!r}; fitted on the training split's running windows only: their principal axis, the 1st "
                  "to 99th percentile of their positions along it, half-width 1.5 x the 99th percentile of their "
                  "distances to it; see hf_neuroformer.io.nelpy.LinearTrack)"),
        "mask_counts": counts,
        "test_off_track_seconds": off_times,
        "track_fit": track.to_dict(),
    }
    return mask, notes


def make_target(name, class_weight="balanced", regression_loss=None):
    """The ``DecodingTarget`` of dataset ``name``; ``regression_loss`` (None: MSE) is a dict of its loss
    fields (``{"loss": "hl_gauss", "num_bins": 64, "hl_gauss_sigma_ratio": 0.75}``)."""
    from hf_neuroformer.decoding import DecodingTarget

    return DecodingTarget(DATASETS[name]["target"], DATASETS[name]["kind"], class_weight=class_weight,
                          **(regression_loss or {}))


def finetune_targets(name, opts):
    """``(target, extra, select_on)`` of a fine-tuning run of dataset ``name``: its own target, the extra
    targets decoded beside it (multitask: ``opts["extra_targets"]``, names of other datasets of the same
    recording, whose targets are defined on the same windows) and the ``select_on`` to pass to
    ``finetune``. With extra targets, ``opts["select_on"] == "auto"`` becomes the dataset's own metric
    (``"x/r2"`` for nelpy): ``finetune``'s ``"auto"`` chooses on the summed loss of all targets when there
    are several. ``opts["regression_loss"]`` (absent / None: MSE) gives the loss of the dataset's own
    target only (:func:`make_target`); the extra targets keep MSE."""
    from hf_neuroformer.finetuning import SELECTION_METRICS

    target = make_target(name, opts["class_weight"], opts.get("regression_loss"))
    extra = [make_target(n, opts["class_weight"]) for n in opts.get("extra_targets") or ()]
    select_on = opts["select_on"]
    if extra and select_on == "auto":
        select_on = f"{target.label}/{SELECTION_METRICS[target.kind][0]}"
    return target, extra, select_on


# --------------------------------------------------------------------------------------- tasks
def _threads():
    import torch

    torch.set_num_threads(1)


def pretrain_task(args):
    """Generative pretraining on the train split (no labels)."""
    name, out, steps, opts = args
    _threads()
    from hf_neuroformer.training import TrainingConfig, train

    rec, cfg, _, _ = load_dataset(name, opts["quick"], opts["model"])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = train(rec, out, cfg, TrainingConfig(max_steps=steps, max_epochs=10_000, batch_size=32, seed=0,
                                                eval_every=max(steps // 5, 1)), overwrite=True, progress=False)
    keep = ("validation/id_nll", "validation/dt_nll", "test/id_nll", "test/dt_nll", "test/unigram_id_nll")
    return name, {"seconds": time.perf_counter() - t0, "steps": steps, **{k: m.get(k) for k in keep}}


def target_metrics(m: dict, prefix: str):
    """One target's figures from ``finetune``'s metrics ``m`` (its ``metrics.json``): ``(points,
    intervals, reasons)``, each keyed by the metric's name under ``prefix`` (e.g. ``"test/ry/"``):
    the point values as floats, the 95 % block-bootstrap intervals (``<metric>_ci95``: ``[low,
    high]`` or None) and, for a None interval, its ``<metric>_ci95_reason``. The intervals (lists,
    None) and reasons (str) were read as point values and failed ``float()``. The target's
    ``ci95_n_blocks`` (how many bootstrap blocks its windows fill) is about the intervals, not a
    metric: it is in none of the three (``finetune_task`` reports it as ``test_ci95_n_blocks``)."""
    points, intervals, reasons = {}, {}, {}
    for k, v in m.items():
        if not k.startswith(prefix):
            continue
        name = k[len(prefix):]
        if name.startswith("ci95_"):
            continue
        if name.endswith("_ci95"):
            intervals[name[: -len("_ci95")]] = v
        elif name.endswith("_ci95_reason"):
            reasons[name[: -len("_ci95_reason")]] = v
        elif "_ci95" not in name:
            points[name] = float(v)
    return points, intervals, reasons


def finetune_task(args):
    name, pre_dir, out, fraction, seed, init, steps, opts = args
    _threads()
    from hf_neuroformer.finetuning import finetune
    from hf_neuroformer.windows import SplitPlan

    rec, cfg, mask, _ = load_dataset(name, opts["quick"], opts["model"])
    plan = SplitPlan.from_dict(json.loads((Path(pre_dir) / "splits.json").read_text()))
    check_plan(mask, plan)
    target, extra, select_on = finetune_targets(name, opts)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = finetune(pre_dir, rec, [target, *extra], output_dir=out, fraction=fraction, seed=seed, max_steps=steps,
                     from_scratch=(init == "scratch"), plan=plan, window_mask=mask, overwrite=True,
                     learning_rate=opts["learning_rate"], select_on=select_on,
                     eval_steps=opts.get("eval_steps"), generative_loss_weight=opts.get("generative_loss_weight", 0.0),
                     freeze_backbone_steps=opts.get("freeze_backbone_steps") or 0, ema_decay=opts.get("ema_decay"),
                     spike_dropout=opts.get("spike_dropout") or 0.0, anchor_decay=opts.get("anchor_decay"),
                     config_overrides=opts.get("config_overrides"), use_cpu=opts["device"] == "cpu")
    metrics, intervals, reasons = target_metrics(m, f"test/{target.label}/")
    val, _, _ = target_metrics(m, f"validation/{target.label}/")
    return (name, fraction, seed, init), {"test": metrics, "test_ci95": intervals, "test_ci95_reason": reasons,
                                          "test_ci95_n_blocks": m.get(f"test/{target.label}/ci95_n_blocks"),
                                          "validation": val, "best_step": m.get("best_step"),
                                          **({"validation_extra": {t.label: target_metrics(m, f"validation/{t.label}/")[0]
                                                                   for t in extra}} if extra else {}),
                                          "checkpoint_selection": m.get("checkpoint_selection"),
                                          # as finetune recorded it (metrics.json -> training), only when averaged
                                          **({"ema_decay": m["training"]["ema_decay"]} if "ema_decay" in m["training"] else {}),
                                          # as recorded, only when pulled towards the pretrained weights
                                          **({"anchor_decay": m["training"]["anchor_decay"]}
                                             if "anchor_decay" in m["training"] else {}),
                                          # as recorded, only with spike_dropout: the p and the tokens thinned
                                          **{k: m["training"][k] for k in ("spike_dropout", "spike_dropout_tokens")
                                             if k in m["training"]},
                                          "class_weights": m["targets"][0].get("class_weights"),
                                          # the dataset's own target's loss as the decoder's config holds it
                                          "regression_loss": {k: m["targets"][0][k] for k in
                                                              ("loss", "num_bins", "hl_gauss_sigma_ratio", "bin_range")
                                                              if k in m["targets"][0]} or {"loss": "mse"},
                                          "n_train_windows": m.get("n_train_windows"),
                                          "seconds": time.perf_counter() - t0}


def baselines_task(args):
    name, pre_dir, fraction, seeds, opts = args
    _threads()
    from hf_neuroformer import NeuroformerTokenizer
    from hf_neuroformer.baselines import evaluate_baselines
    from hf_neuroformer.decoding import build_decoding_datasets
    from hf_neuroformer.windows import SplitPlan

    rec, cfg, mask, _ = load_dataset(name, opts["quick"], opts["model"])
    sets = dict(opts.get("config_overrides") or {})
    key = ("dsd", name, opts["quick"], tuple(sorted(opts["model"].items())), json.dumps(sets, sort_keys=True))
    if key not in _CACHE:
        # the fine-tuning settings (window_stride: the training windows) apply to the baselines' rows too,
        # so that every method reads the same windows
        from hf_neuroformer.finetuning import apply_config_overrides

        cfg = copy.deepcopy(cfg)
        apply_config_overrides(cfg, sets)
        tok = NeuroformerTokenizer.from_pretrained(pre_dir)
        plan = SplitPlan.from_dict(json.loads((Path(pre_dir) / "splits.json").read_text()))
        check_plan(mask, plan)
        target = make_target(name)
        dsd, report = build_decoding_datasets(rec, tok, cfg, plan, [target], window_mask=mask)
        _CACHE[key] = (tok, target, dsd, report)
    tok, target, dsd, report = _CACHE[key]
    t0 = time.perf_counter()
    res = evaluate_baselines(dsd, tok, cfg, target, seeds=seeds, train_fraction=fraction)
    res["seconds"] = time.perf_counter() - t0
    res["decoding_report"] = {k: v for k, v in report.items() if k != "split_plan"}
    return (name, fraction), res


def run_pool(fn, tasks, jobs, desc):
    """Run ``fn`` over ``tasks`` (in ``jobs`` spawned processes when > 1) with a tqdm bar; the results
    come back in the order of ``tasks`` (whatever order the workers finish in), so callers may zip them."""
    from tqdm.auto import tqdm

    out = []
    if jobs <= 1:
        for t in tqdm(tasks, desc=desc):
            out.append(fn(t))
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as ex:
        futs = [ex.submit(fn, t) for t in tasks]
        for f in tqdm(as_completed(futs), total=len(futs), desc=desc):
            f.result()  # a failed task raises here, as soon as it fails
        out = [f.result() for f in futs]
    return out


# --------------------------------------------------------------------------------------- report
def _ms(values):
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not v.size:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def summarise(results, fractions):
    """``summary[dataset][method][fraction] = {metric: (mean, sd, n)}`` over seeds."""
    out = {}
    for name, r in results["datasets"].items():
        kind = DATASETS[name]["kind"]
        mets = (PRIMARY[kind][0], SECONDARY[kind])
        s = {}
        for method in METHODS:
            s[method] = {}
            for f in fractions:
                fk = str(f)
                if method.startswith("neuroformer"):
                    runs = r["neuroformer"].get(method.split("_")[1], {}).get(fk, [])
                    rows = [x["test"] for x in runs]
                else:
                    rows = r["baselines"].get(fk, {}).get("results", {}).get(method, {}).get("per_seed", [])
                s[method][fk] = {m: _ms([row.get(m) for row in rows]) for m in mets}
        out[name] = s
    return out


def _fmt(m, sd, metric):
    if not np.isfinite(m):
        return "n/a"
    d = 1 if "deg" in metric else 3
    return f"{m:.{d}f} ± {sd:.{d}f}"


def findings(results, summary, fractions):
    """Acceptance checks, computed: NF vs the best baseline at 100 %, pretrained vs scratch at 1/5/10 %."""
    lines = []
    for name, s in summary.items():
        kind = DATASETS[name]["kind"]
        metric, label, higher = PRIMARY[kind]
        better = (lambda a, b: a > b) if higher else (lambda a, b: a < b)
        full = str(1.0)
        if full in s["neuroformer_pretrained"]:
            nf = s["neuroformer_pretrained"][full][metric][0]
            base = {b: s[b][full][metric][0] for b in ("ridge", "lasso", "glm", "mlp", "gru")}
            base = {b: v for b, v in base.items() if np.isfinite(v)}
            if base and np.isfinite(nf):
                best = max(base, key=base.get) if higher else min(base, key=base.get)
                verdict = "at or above" if not better(base[best], nf) else "below"
                lines.append(f"- {name}, 100 % of train: Neuroformer pretrained {nf:.3f} vs best baseline "
                             f"({best}) {base[best]:.3f} {label}: **{verdict}** the best baseline.")
        few = []
        for f in (0.01, 0.05, 0.1):
            fk = str(f)
            if fk not in s["neuroformer_pretrained"]:
                continue
            p, sc = s["neuroformer_pretrained"][fk][metric][0], s["neuroformer_scratch"][fk][metric][0]
            if np.isfinite(p) and np.isfinite(sc):
                few.append(f"{f:.0%}: {'yes' if better(p, sc) else 'no'} ({p:.3f} vs {sc:.3f})")
        if few:
            lines.append(f"- {name}, pretrained above scratch ({label}): " + "; ".join(few) + ".")
    return lines


def run_line(run: dict, kind: str) -> str:
    """One sentence: which code ran this dataset, where, how."""
    where = run["code"] if run.get("code") else f"commit `{run['commit']}`"  # code: an older JSON's own account
    when = f" on {run['date']}" if run.get("date") else ""
    mins = run.get("minutes_all_datasets")
    took = f"; that invocation took {mins:.1f} min" if mins else ""
    others = run.get("datasets_in_this_invocation")
    if others:
        took += f" for {', '.join(others)}"
    cw = run.get("class_weight")
    sel = "validation loss" if run.get("select_on") in ("loss", None) else "the validation metric of the table"
    loss = (f"{'class-weighted (balanced)' if cw else 'unweighted'} cross-entropy; " if kind == "classification" else "")
    aux = (f", auxiliary next-spike loss weight {run['generative_loss_weight']:g}"
           if run.get("generative_loss_weight") else "")
    every = f", evaluated every {run['eval_steps']} steps" if run.get("eval_steps") else ""
    if run.get("freeze_backbone_steps"):
        aux += f", backbone frozen for the first {run['freeze_backbone_steps']} steps"
    sets = "".join(f", {k}={v}" for k, v in (run.get("config_overrides") or {}).items())
    return (f"Run: {where}{when}, {run.get('machine')}, {run.get('workers')} worker process(es) x 1 thread, "
            f"device {run.get('device', 'cpu')}{took}. Neuroformer {run.get('model')}, pretrained "
            f"{run.get('pretrain_steps')} steps{' (' + run['pretraining'] + ')' if run.get('pretraining') else ''}, fine-tuned {run.get('finetune_steps')} steps (AdamW "
            f"{run.get('learning_rate', 5e-4):g}{aux}{sets}); {loss}checkpoint chosen on {sel}{every}.")


def write_section(results, summary, fractions, png_rel):
    meta = results["meta"]
    parts = [START, "## Behaviour decoding: few-shot fine-tuning against classical decoders\n",
             "Written by `scripts/benchmark_decoding.py` (each dataset's \"Run:\" line says which code and machine "
             f"produced it; datasets can be rerun one at a time and are merged into `benchmarks/decoding.json`). "
             f"Mean ± sd over seeds {meta['seeds']} on the same test windows; columns are the share of the training "
             "windows used (the first contiguous block in time). Neuroformer: pretrained generatively on the train "
             "split (no labels, seed 0), then fine-tuned with `Trainer` (batch 32), the checkpoint chosen on the "
             "validation split; \"scratch\" = the same architecture and steps from random weights. Baselines read "
             "the binned counts of the same rows (bin = current window, history = past window); their "
             "hyperparameters come from time-blocked cross-validation on the training block only; classification "
             "baselines use `class_weight='balanced'`. Ridge, lasso and GLM are deterministic (sd 0).\n"]
    for name, s in summary.items():
        spec, r = DATASETS[name], results["datasets"][name]
        kind = spec["kind"]
        metric, label, higher = PRIMARY[kind]
        rep = r["decoding_report"]
        counts = ", ".join(f"{sp} {rep[sp]['n_windows']}" for sp in ("train", "validation", "test"))
        dropped = ", ".join(f"{sp} {rep[sp]['n_dropped_mask']} by the mask / {rep[sp]['n_dropped']} undefined"
                            for sp in ("train", "validation", "test"))
        cfg = spec["config"]
        parts.append(f"### {spec['title']}\n")
        parts.append(run_line(r.get("run") or legacy_run(meta), kind) + "\n")
        stride = ((r.get("run") or {}).get("config_overrides") or {}).get("window_stride")
        overlap = (f" Training windows start every {stride * 1000:.0f} ms (they overlap; the same rows for every method); "
                   "validation and test windows tile their split." if stride else "")
        parts.append(f"{label} ({'higher' if higher else 'lower'} is better). Windows {cfg['current_window'] * 1000:.0f} ms, "
                     f"past {cfg['past_window'] * 1000:.0f} ms; {r['notes'].get('n_units')} units.{overlap} Windows decoded: "
                     f"{counts} (removed: {dropped}).")
        for k in ("running", "track", "units"):
            if k in r["notes"]:
                parts[-1] += f" {k.capitalize()}: {r['notes'][k]}."
        mc = r["notes"].get("mask_counts")
        if mc:
            parts[-1] += (" The mask, per split" + (" (on windows that tile each split)" if stride else "") +
                          " (windows: not running / running but off the track / kept): ") + "; ".join(
                f"{sp} {c['windows']}: {c['not_running']} / {c['running_off_track']} / {c['kept']}" for sp, c in mc.items())
            if r["notes"].get("test_off_track_seconds"):
                parts[-1] += (" (test windows off the track start at "
                              f"{', '.join(str(t) for t in r['notes']['test_off_track_seconds'])} s into the run)")
            parts[-1] += "."
        parts[-1] += "\n"
        ntrain = [str(r["baselines"].get(str(f), {}).get("n_train", "?")) for f in fractions]
        parts.append("| method | " + " | ".join(f"{f:.0%}" for f in fractions) + " |")
        parts.append("|---|" + "---|" * len(fractions))
        parts.append("| training windows | " + " | ".join(ntrain) + " |")
        for method in METHODS:
            cells = [_fmt(*s[method][str(f)][metric][:2], metric) for f in fractions]
            parts.append(f"| {LABELS[method]} | " + " | ".join(cells) + " |")
        sec = SECONDARY[kind]
        cells = [_fmt(*s[m][str(fractions[-1])][sec][:2], sec) for m in METHODS]
        parts.append(f"\n{sec} at {fractions[-1]:.0%}: " + "; ".join(f"{LABELS[m]} {c}" for m, c in zip(METHODS, cells)) + ".\n")
        if r.get("notes_md"):
            parts.extend(r["notes_md"])
            parts.append("")
    parts.append("### What the numbers say (computed by the script)\n")
    parts.extend(findings(results, summary, fractions))
    if meta.get("notes"):
        parts.append("\n### Notes\n")
        parts.extend(meta["notes"])
    parts.append(f"\n![few-shot decoding]({png_rel})\n")
    parts.append(END)
    return "\n".join(parts)


def plot(results, summary, fractions, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    ncols = len(names) if len(names) <= 3 else 2  # four panels in a row are too small to read
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4 * nrows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    axes = [list(axes.flat[:len(names)])]
    styles = {"neuroformer_pretrained": dict(color="C3", lw=2.5, marker="o"),
              "neuroformer_scratch": dict(color="C3", lw=1.5, ls="--", marker="o", mfc="white")}
    for ax, name in zip(axes[0], names):
        kind = DATASETS[name]["kind"]
        metric, label, _ = PRIMARY[kind]
        x = np.asarray(fractions) * 100
        for i, method in enumerate(METHODS):
            m = np.array([summary[name][method][str(f)][metric][0] for f in fractions])
            sd = np.array([summary[name][method][str(f)][metric][1] for f in fractions])
            if not np.isfinite(m).any():
                continue
            st = styles.get(method, dict(color=f"C{i - 2 if i - 2 < 3 else i - 1}", lw=1, marker="."))
            ax.errorbar(x, m, yerr=sd, label=LABELS[method], capsize=2, **st)
        chance = {"regression": (0.0, "R² = 0"), "circular": (90.0, "chance (90 deg)"),
                  "classification": (1 / 3, "chance (1/3)")}[kind]
        ax.axhline(chance[0], color="0.6", ls=":", lw=1, label=chance[1])
        ax.set_xscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{v:g}" for v in x])
        ax.set_xlabel("training windows used (%)")
        ax.set_ylabel(label)
        ax.set_title(DATASETS[name]["title"], fontsize=9)
        if kind == "regression":
            ax.set_ylim(bottom=max(ax.get_ylim()[0], -1.0))
    for ax in axes[0]:
        ax.legend(fontsize=6)
    fig.tight_layout()
    from hf_neuroformer.plotting import save_figure

    save_figure(fig, path, dpi=110)  # atomic
    plt.close(fig)


# --------------------------------------------------------------------------------------- main
def machine_description(device: str) -> str:
    """CPU model and core count, and the GPU when ``device == "cuda"``."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{os.cpu_count()} CPU cores ({cpu})"
    if device == "cuda":
        import torch

        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


#: the paths whose changes make a run's code or settings differ from its commit (outputs such as BENCHMARKS.md
#: and benchmarks/ do not: an earlier dataset's run rewrites them before the next one stamps)
CODE_PATHS = ("src", "scripts", "configs", "setup.py", "pyproject.toml")


def git_commit(root: Path = ROOT) -> str:
    """Short HEAD commit of the repository at ``root``, with ``+uncommitted`` when the code
    (``CODE_PATHS``: changed, staged or new untracked files) differs from it; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal", "--", *CODE_PATHS],
                               cwd=root, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"
    return commit + ("+uncommitted" if dirty else "")


def legacy_run(meta: dict) -> dict:
    """The per-dataset run record of a JSON written before runs were recorded per dataset."""
    return dict(commit=meta.get("commit"), code=meta.get("code"), machine=meta.get("cpu"), workers=meta.get("jobs"),
                device="cpu", minutes_all_datasets=meta.get("total_minutes"), model=meta.get("model"),
                pretrain_steps=meta.get("pretrain_steps"), finetune_steps=meta.get("finetune_steps"),
                learning_rate=5e-4, class_weight=None, select_on="loss", date=None)


def fractions_arg(text: str) -> tuple:
    """``--fractions``: comma-separated distinct fractions of the training windows, each in (0, 1].

    Raises:
        argparse.ArgumentTypeError: an item that is not a number, none, an empty one, one outside
            (0, 1], or a repeated one (it would run its tasks twice and count its seeds twice in mean and sd).
    """
    try:
        fr = tuple(float(s) for s in comma_items(text, "fractions", "0.05,1.0"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions such as 0.05,1.0, got {text!r}") from None
    if not fr or any(not (0 < f <= 1) for f in fr):
        raise argparse.ArgumentTypeError(f"expected fractions in (0, 1], got {text!r}")
    if len(set(fr)) != len(fr):
        raise argparse.ArgumentTypeError(f"expected distinct fractions in (0, 1], got {text!r}")
    return fr


#: An integer >= 1 (``--seeds``, ``--workers``).
positive_int = int_at_least(1)


def carry_over(old: dict, names: list) -> dict:
    """What a run of the datasets ``names`` keeps from the JSON ``old`` it merges into:
    ``{"datasets": {name: record}}`` for every other dataset (as it was; a record written before
    runs were recorded per dataset gets ``legacy_run``), and ``{"superseded_notes": {name: [...]}}``
    for each rerun dataset: its earlier ``superseded_notes`` plus, when it had hand-written
    ``notes_md`` (about the numbers being replaced), ``{"commit", "date", "notes_md"}`` of that run,
    so they are not shown any more but not lost either (a line on stdout says so)."""
    kept = kept_records(old["datasets"], names, lambda r: legacy_run(old["meta"]))
    superseded = {}
    for n, r in old["datasets"].items():
        if n not in names:
            continue
        notes = list(r.get("superseded_notes", []))
        if r.get("notes_md"):
            run = r.get("run") or {}
            notes.append({"commit": run.get("commit"), "date": run.get("date"), "notes_md": r["notes_md"]})
            print(f"[decoding] {n}: the {len(r['notes_md'])} notes written for the replaced results (run "
                  f"{run.get('commit')}) are kept under superseded_notes in the JSON, not shown", flush=True)
        if notes:
            superseded[n] = notes
    return {"datasets": kept, "superseded_notes": superseded}


def config_setting(text: str):
    """``KEY=VALUE`` of ``--set`` -> ``(key, value)``: :func:`hf_neuroformer.cli.config_setting`, imported
    when a ``--set`` is parsed."""
    from hf_neuroformer.cli import config_setting as parse

    return parse(text)


#: the ``--set`` help of this script and of decoding_validation_sweep.py
SET_HELP = ("fine-tuning config setting (finetune's config_overrides), repeatable; KEY one of hidden_dropout, "
            "attention_dropout (a probability in [0, 1)), decoding_pool (current, current+past or attention), "
            "decoding_head_hidden_size (an integer >= 0; 0 = a linear head), window_stride (s > 0: the step of the "
            "TRAINING windows of every method; validation and test windows tile their split); VALUE is read as JSON "
            "(0.3, null), else as text; e.g. --set window_stride=0.125")


def check_settings(parser, pairs, names, model=None) -> dict:
    """The ``--set`` pairs as a dict, checked against the config of each dataset in ``names``
    before anything runs; a key given twice, one outside ``FINETUNE_CONFIG_KEYS`` or a value the
    config refuses is a ``parser.error`` naming it."""
    from hf_neuroformer import NeuroformerConfig
    from hf_neuroformer.finetuning import apply_config_overrides, config_settings

    try:
        sets = config_settings(pairs)
        for n in names:
            apply_config_overrides(NeuroformerConfig(**DATASETS[n]["config"], **dict(model or MODEL)), sets)
    except ValueError as err:
        parser.error(f"--set: {err}")
    return sets


def main(argv=None):
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--quick", action="store_true", help="shortened recordings, 2 fractions, 1 seed, few steps; "
                   "writes only into --output-dir")
    p.add_argument("--datasets", default=",".join(DATASETS), type=lambda t: names_arg(t, DATASETS, "datasets"),
                   help=f"comma-separated subset of {','.join(DATASETS)} (default: all); the others keep their "
                        "results in benchmarks/decoding.json")
    p.add_argument("--fresh", action="store_true", help="do not merge into the existing benchmarks/decoding.json")
    p.add_argument("--fractions", type=fractions_arg, default=None, help="comma-separated, default 0.01,0.05,0.1,0.2,1.0")
    p.add_argument("--seeds", type=positive_int, default=3, help="fine-tuning seeds 0..N-1 (>= 1)")
    p.add_argument("--pretrain-steps", type=int, default=1000)
    p.add_argument("--finetune-steps", type=int, default=120)
    p.add_argument("--learning-rate", type=float, default=5e-4, help="fine-tuning AdamW learning rate")
    p.add_argument("--eval-steps", type=int, default=None,
                   help="fine-tuning: validate (and keep a checkpoint) every this many steps; default finetune-steps // 10")
    p.add_argument("--generative-loss-weight", type=float, default=0.0,
                   help="fine-tuning: weight of the auxiliary next-spike loss (finetune's generative_loss_weight)")
    p.add_argument("--freeze-backbone-steps", type=int, default=0,
                   help="fine-tuning: only the new heads train for the first N steps (finetune's freeze_backbone_steps)")
    p.add_argument("--set", dest="config_overrides", metavar="KEY=VALUE", action="append", type=config_setting,
                   default=[], help=SET_HELP)
    p.add_argument("--hidden-size", type=int, default=MODEL["hidden_size"])
    p.add_argument("--intermediate-size", type=int, default=MODEL["intermediate_size"])
    p.add_argument("--num-attention-heads", type=int, default=MODEL["num_attention_heads"])
    p.add_argument("--num-hidden-layers", type=int, default=MODEL["num_hidden_layers"])
    p.add_argument("--class-weight", choices=("balanced", "none"), default="balanced",
                   help="Neuroformer classification loss (the baselines always use 'balanced')")
    p.add_argument("--select-on", default="auto", help="fine-tuning checkpoint selection (finetune's select_on): "
                   "auto = the validation metric reported here; or loss")
    p.add_argument("--workers", "--jobs", dest="workers", type=positive_int, default=2,
                   help="worker processes (each one torch / BLAS thread)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where pretraining and fine-tuning run (baselines always on CPU); with cuda every worker "
                        "shares the one GPU")
    p.add_argument("--no-model", action="store_true", help="baselines only (no pretraining or fine-tuning)")
    p.add_argument("--reuse-pretrained", action="store_true", help="reuse checkpoints already in --output-dir")
    p.add_argument("--output-dir", default=str(ROOT / "runs" / "benchmark_decoding"))
    p.add_argument("--report-only", metavar="JSON", default=None,
                   help="rewrite the PNG and the BENCHMARKS.md section from a JSON this script wrote (no fitting); "
                        "a 'notes' list in its meta and in each dataset are printed under the tables")
    args = p.parse_args(argv)
    if args.report_only:
        results = json.loads(Path(args.report_only).read_text())
        fractions = tuple(results["meta"]["fractions"])
        summary = summarise(results, fractions)
        plot(results, summary, fractions, ROOT / "benchmarks" / "decoding_fewshot.png")
        section = write_section(results, summary, fractions, "benchmarks/decoding_fewshot.png")
        replace_section(ROOT / "BENCHMARKS.md", START, END, section)
        print(section)
        return

    names = args.datasets
    model = dict(hidden_size=args.hidden_size, intermediate_size=args.intermediate_size,
                 num_attention_heads=args.num_attention_heads, num_hidden_layers=args.num_hidden_layers)
    # before any pretraining or baseline fit (with --no-model nothing else would look at them)
    args.config_overrides = check_settings(p, args.config_overrides, names, model)
    if not 0 <= args.freeze_backbone_steps <= args.finetune_steps:
        p.error(f"--freeze-backbone-steps: expected 0 to --finetune-steps={args.finetune_steps}, "
                f"got {args.freeze_backbone_steps}")
    fractions = args.fractions or FRACTIONS
    seeds = tuple(range(args.seeds))
    if args.quick:
        fractions = args.fractions or (0.05, 1.0)
        seeds = tuple(range(min(args.seeds, 1)))
        full = args.finetune_steps
        args.pretrain_steps, args.finetune_steps = min(args.pretrain_steps, 40), min(args.finetune_steps, 10)
        # the same share of the (shortened) fine-tuning
        args.freeze_backbone_steps = round(args.freeze_backbone_steps * args.finetune_steps / full)
    # every worker: one thread; the device choice is inherited by the spawned workers
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    _threads()
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device")
    opts = dict(quick=args.quick, model=model, device=args.device, learning_rate=args.learning_rate,
                eval_steps=args.eval_steps, generative_loss_weight=args.generative_loss_weight,
                freeze_backbone_steps=args.freeze_backbone_steps,
                config_overrides=dict(args.config_overrides), select_on=args.select_on,
                class_weight=None if args.class_weight == "none" else args.class_weight)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    bench = out if args.quick else ROOT / "benchmarks"
    bench.mkdir(exist_ok=True)
    jpath, ppath = bench / "decoding.json", bench / "decoding_fewshot.png"
    t_all = time.perf_counter()

    meta = dict(seeds=list(seeds), fractions=list(fractions), quick=args.quick)
    results = {"meta": meta, "datasets": {}}
    superseded = {}  # rerun dataset -> the notes of its replaced results (carry_over)
    if jpath.is_file() and not args.fresh and not args.quick:
        old = json.loads(jpath.read_text())
        if old["meta"].get("fractions") != list(fractions) or old["meta"].get("seeds") != list(seeds):
            raise SystemExit(f"{jpath} holds fractions {old['meta'].get('fractions')} / seeds {old['meta'].get('seeds')}; "
                             "this run's differ: rerun every dataset with --fresh, or match them")
        carried = carry_over(old, names)
        results["datasets"].update(carried["datasets"])
        superseded = carried["superseded_notes"]
        results["meta"]["notes"] = old["meta"].get("notes", [])
    run = dict(commit=git_commit(), date=time.strftime("%Y-%m-%d"), machine=machine_description(args.device),
               workers=args.workers, device=args.device, model=", ".join(f"{k}={v}" for k, v in model.items()),
               pretrain_steps=args.pretrain_steps, finetune_steps=args.finetune_steps,
               learning_rate=args.learning_rate, class_weight=opts["class_weight"], select_on=args.select_on,
               eval_steps=args.eval_steps or max(1, args.finetune_steps // 10),
               generative_loss_weight=args.generative_loss_weight, config_overrides=dict(args.config_overrides),
               freeze_backbone_steps=args.freeze_backbone_steps, datasets_in_this_invocation=names)
    for n in names:
        rec, cfg, mask, notes = load_dataset(n, args.quick, model)
        print(f"[decoding] {n}: {notes['n_units']} units, {notes['n_spikes']} spikes, "
              f"{notes['time_domain'][1] - notes['time_domain'][0]:.0f} s", flush=True)
        results["datasets"][n] = {"notes": notes, "config": DATASETS[n]["config"], "target": DATASETS[n]["target"],
                                  "kind": DATASETS[n]["kind"], "neuroformer": {}, "baselines": {}, "run": dict(run)}
        if n in superseded:
            results["datasets"][n]["superseded_notes"] = superseded[n]

    # 1. generative pretraining (it also fixes the split plan that every method then uses)
    #    (datasets that differ only in the target share one: source_of)
    pre = {n: pretrained_dir(out, n) for n in names}
    sources = list(dict.fromkeys(source_of(n) for n in names))
    todo = [(src, str(out / src / "pretrained"), args.pretrain_steps, opts) for src in sources
            if not (args.reuse_pretrained and (out / src / "pretrained" / "model.safetensors").is_file())]
    for n in names:
        if source_of(n) not in [t[0] for t in todo]:  # reused: say so, with the checkpoint's own metrics and date
            m = json.loads((pre[n] / "metrics.json").read_text()) if (pre[n] / "metrics.json").is_file() else {}
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime((pre[n] / "model.safetensors").stat().st_mtime))
            results["datasets"][n]["pretraining"] = {"reused": str(pre[n]), "written": when,
                                                     **{k: m.get(k) for k in ("validation/id_nll", "test/id_nll")}}
            results["datasets"][n]["run"]["pretraining"] = f"reused checkpoint written {when}"
    for src, info in run_pool(pretrain_task, todo, args.workers, "pretraining"):
        for n in names:
            if source_of(n) == src:
                results["datasets"][n]["pretraining"] = info
        print(f"[decoding] {src}: pretrained in {info['seconds']:.0f} s, test id nll {info['test/id_nll']}", flush=True)

    # 2. baselines, every fraction (all seeds inside one task)
    for (n, f), res in run_pool(baselines_task, [(n, str(pre[n]), f, seeds, opts) for n in names
                                                 for f in fractions], args.workers, "baselines"):
        results["datasets"][n]["decoding_report"] = res.pop("decoding_report")
        results["datasets"][n]["baselines"][str(f)] = res

    # 3. fine-tuning: pretrained and scratch, every fraction and seed (largest fractions first: the
    #    longest tasks start early, so the pool ends together)
    if not args.no_model:
        tasks = [(n, str(pre[n]), str(out / n / f"ft_{init}_{f}_{s}"), f, s, init, args.finetune_steps, opts)
                 for f in sorted(fractions, reverse=True) for n in names for s in seeds for init in ("pretrained", "scratch")]
        for (n, f, s, init), r in run_pool(finetune_task, tasks, args.workers, "fine-tuning"):
            results["datasets"][n]["neuroformer"].setdefault(init, {}).setdefault(str(f), []).append({"seed": s, **r})
        for n in names:  # seed order
            for init in results["datasets"][n]["neuroformer"].values():
                for runs in init.values():
                    runs.sort(key=lambda r: r["seed"])

    minutes = (time.perf_counter() - t_all) / 60
    for n in names:
        results["datasets"][n]["run"]["minutes_all_datasets"] = minutes
    results["datasets"] = {n: results["datasets"][n] for n in DATASETS if n in results["datasets"]}
    fractions = tuple(results["meta"]["fractions"])
    summary = summarise(results, fractions)
    results["summary"] = {n: {m: {f: {k: list(v) for k, v in d.items()} for f, d in fs.items()}
                              for m, fs in s.items()} for n, s in summary.items()}
    results["findings"] = findings(results, summary, fractions)
    write_atomic(jpath, json.dumps(results, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    plot(results, summary, fractions, ppath)
    section = write_section(results, summary, fractions, "benchmarks/decoding_fewshot.png")
    if args.quick:
        (out / "section.md").write_text(section)
    else:
        replace_section(ROOT / "BENCHMARKS.md", START, END, section)
    print(section)
    print(f"[decoding] wrote {jpath}, {ppath}" + ("" if args.quick else ", BENCHMARKS.md") + f" in {minutes:.1f} min")


if __name__ == "__main__":
    main()
