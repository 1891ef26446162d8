"""Numbers quoted in the notes of BENCHMARKS.md that no stored JSON held, recomputed from the shared
recordings and the stored split plans, so that they can be re-derived from the repository.

    python scripts/benchmark_provenance.py                          # (a), (b) and (d), ~20 s on one core
    python scripts/benchmark_provenance.py --validation-baselines   # and (c), ~10 s more

(a) ``split_overlap``: how much the test sets of the repeated block splits
    (``scripts/decoding_repeated_splits.py``; split plans stored in
    ``benchmarks/decoding_repeated_splits.json`` -> ``entries[*].plans[seed].test_segments``)
    overlap: the number of contiguous test stretches per split and of distinct ones over the
    splits, and the mean over pairs of splits of the Jaccard overlap of their test blocks (the
    time their test segments cover, in seconds) and of their decoded test windows (the window
    starts that ``build_decoding_datasets`` keeps: the test windows that tile the split, survive
    the dataset's window mask, nelpy's running + on-track mask refitted on that split's training
    windows, and have a defined target, A2929's head angle). Each split's plan is planned again
    (``load_dataset`` with that ``split_seed``) and must equal the stored test segments, and the
    number of decoded test windows must equal the stored ``n_test_windows``; otherwise this fails.
(b) ``nelpy_track_fit``: the distances behind the nelpy on-track threshold (the benchmark's
    split 0): the distances (px) of the training split's running windows to the fitted track
    segment (``LinearTrack.distance``), where their continuum ends and the carried-in windows
    begin, the rule's 1.5 x 99th percentile, Tukey's far-out fence (Q3 + 3 IQR), and the first
    test windows of the lift-off. The track is fitted again by ``benchmark_decoding.nelpy_mask``
    and must equal the one stored in ``benchmarks/decoding.json``.
(c) ``validation_baselines`` (``--validation-baselines``): the baselines scored on the nelpy
    VALIDATION split (``evaluate_baselines(..., test_split="validation")``, seeds 0-2) on the
    benchmark's rows (the config settings of its run in ``benchmarks/decoding.json``: training
    windows every 125 ms), and the GRU with tiling training windows. The same rows scored on test
    must reproduce the stored test R² of ridge, lasso and the GLM (deterministic).
(d) ``steinmetz_unit_rates``: the Steinmetz benchmark draws its 64 units among those firing
    >= 2 Hz over the whole session, test trials included (no label is read); the rates of the
    drawn units on split 0's training trials alone, and the candidates of that train-only rule.

Writes ``benchmarks/provenance.json`` (a section not recomputed in this invocation is kept as it
was). Reuses the benchmark scripts' functions: ``benchmark_decoding.load_dataset`` /
``nelpy_mask`` / ``make_target``, ``hf_neuroformer.decoding.build_decoding_datasets``,
``hf_neuroformer.baselines.evaluate_baselines``. The tokenizer is built from the dataset's config
and recording as pretraining builds it (the benchmark's checkpoints are not in the repository);
the window rows do not depend on anything else of the checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import copy
import itertools
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_decoding as bd  # noqa: E402
from benchmarks_md import write_atomic  # noqa: E402

OUT = ROOT / "benchmarks" / "provenance.json"
SPLITS_JSON = ROOT / "benchmarks" / "decoding_repeated_splits.json"
DECODING_JSON = ROOT / "benchmarks" / "decoding.json"


# --------------------------------------------------------------------------------------- overlap
def _union(iv) -> np.ndarray:
    """``(m, 2)`` sorted, disjoint union of ``(n, 2)`` float ``[start, stop)`` intervals (s): the
    rows sorted by start and merged where they touch or overlap (``support_segments`` with no
    tolerance)."""
    from hf_neuroformer.metrics.fidelity import support_segments

    iv = np.asarray(iv, dtype=np.float64).reshape(-1, 2)
    if np.any(iv[:, 1] < iv[:, 0]):
        raise ValueError(f"intervals: expected start <= stop, got {iv[iv[:, 1] < iv[:, 0]][:3].tolist()}")
    return support_segments(iv[np.argsort(iv[:, 0], kind="stable")], tolerance=0.0)


def interval_jaccard(a, b) -> float:
    """Jaccard overlap of two sets of ``(n, 2)`` ``[start, stop)`` intervals, by length:
    ``|A ∩ B| / |A ∪ B|`` in seconds (0 when both are empty).

    Raises:
        ValueError: an interval with ``stop < start``.
    """
    ua, ub = _union(a), _union(b)
    inter = sum(max(0.0, min(y, d) - max(x, c)) for x, y in ua for c, d in ub)
    union = float(np.sum(np.diff(ua, axis=1)) + np.sum(np.diff(ub, axis=1))) - inter
    return inter / union if union > 0 else 0.0


def set_jaccard(a, b) -> float:
    """Jaccard overlap ``|A ∩ B| / |A ∪ B|`` of two 1-d arrays of window starts (s), compared exactly
    (``window_starts_for_split`` rounds them to a 1-ns grid); 0 when both are empty."""
    a, b = np.unique(np.asarray(a, dtype=np.float64)), np.unique(np.asarray(b, dtype=np.float64))
    union = len(np.union1d(a, b))
    return len(np.intersect1d(a, b)) / union if union else 0.0


def decoding_rows(name: str, model: dict, overrides: dict | None = None):
    """``(dsd, report, tokenizer, config, target)``: the rows of ``build_decoding_datasets`` that the
    benchmark builds for ``name`` with architecture ``model`` (its ``split_seed`` picks the split) and
    the fine-tuning config settings ``overrides`` (``window_stride``: the training windows)."""
    import datasets

    import hf_neuroformer as nf
    from hf_neuroformer.decoding import build_decoding_datasets
    from hf_neuroformer.finetuning import apply_config_overrides
    from hf_neuroformer.windows import SplitPlan

    rec, cfg, mask, _ = bd.load_dataset(name, False, model)
    cfg = copy.deepcopy(cfg)
    apply_config_overrides(cfg, dict(overrides or {}))
    tok = nf.NeuroformerTokenizer.from_config(cfg)  # as training builds it from the recording
    tok.add_units(rec)
    plan = SplitPlan.from_dict(mask.plan) if mask is not None else nf.plan_splits(rec, cfg)
    target = bd.make_target(name)
    datasets.disable_progress_bars()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the readers' notes, as load_dataset
        dsd, report = build_decoding_datasets(rec, tok, cfg, plan, [target], window_mask=mask)
    return dsd, report, tok, cfg, target


def split_overlap(entry: dict) -> dict:
    """(a) for one entry of ``decoding_repeated_splits.json``: see the module docstring.

    Raises:
        RuntimeError: a split plan planned again differs from the stored test segments, or the
            decoded test windows differ in number from the stored ``n_test_windows``.
    """
    name, seeds = entry["dataset"], entry["split_seeds"]
    full = str(max(entry["fractions"]))
    segs, decoded, per_split = {}, {}, {}
    for s in seeds:
        stored = np.asarray(entry["plans"][str(s)]["test_segments"], dtype=np.float64).reshape(-1, 2)
        dsd, report, _, _, _ = decoding_rows(name, dict(bd.MODEL, split_seed=s))
        planned = np.asarray(report["split_plan"]["segments"]["test"], dtype=np.float64).reshape(-1, 2)
        if planned.shape != stored.shape or not np.allclose(planned, stored, rtol=0, atol=1e-6):
            raise RuntimeError(f"{SPLITS_JSON.name}: {name} split seed {s}: the test segments planned again "
                               f"{planned.tolist()} differ from the stored plans[{s}].test_segments {stored.tolist()}")
        starts = np.asarray(dsd["test"]["window_start"], dtype=np.float64)
        want = entry["results"][str(s)][full].get("n_test_windows")
        if want is not None and len(starts) != want:
            raise RuntimeError(f"{SPLITS_JSON.name}: {name} split seed {s}: {len(starts)} decoded test windows, the "
                               f"stored results[{s}][{full}].n_test_windows is {want}")
        segs[s], decoded[s] = stored, starts
        per_split[str(s)] = {"test_stretches": len(stored), "test_seconds": float(np.sum(np.diff(stored, axis=1))),
                             "decoded_test_windows": int(len(starts)),
                             "test_windows_removed": {"by_mask": report["test"]["n_dropped_mask"],
                                                      "undefined_target": report["test"]["n_dropped"]}}
    pairs = list(itertools.combinations(seeds, 2))
    jb = [interval_jaccard(segs[a], segs[b]) for a, b in pairs]
    jw = [set_jaccard(decoded[a], decoded[b]) for a, b in pairs]
    distinct = {tuple(np.round(x, 6)) for s in seeds for x in segs[s]}
    n_str = [len(segs[s]) for s in seeds]
    return {
        "dataset": name, "split_seeds": seeds, "n_pairs": len(pairs),
        "test_stretches_per_split": [min(n_str), max(n_str)],
        "distinct_test_stretches": len(distinct),
        "mean_jaccard_test_blocks": float(np.mean(jb)),
        "mean_jaccard_decoded_test_windows": float(np.mean(jw)),
        "per_split": per_split,
        "jaccard_test_blocks_per_pair": {f"{a}-{b}": round(j, 4) for (a, b), j in zip(pairs, jb)},
        "jaccard_decoded_test_windows_per_pair": {f"{a}-{b}": round(j, 4) for (a, b), j in zip(pairs, jw)},
    }


# --------------------------------------------------------------------------------------- track fit
def nelpy_track_fit() -> dict:
    """(b): see the module docstring.

    Raises:
        RuntimeError: the refitted track differs from ``benchmarks/decoding.json``'s ``track_fit``.
    """
    from hf_neuroformer.decoding import DecodingTarget, target_values
    from hf_neuroformer.io.nelpy import LinearTrack
    from hf_neuroformer.windows import SplitPlan

    rec, cfg, mask, notes = bd.load_dataset("nelpy")
    stored = json.loads(DECODING_JSON.read_text())["datasets"]["nelpy"]["notes"]["track_fit"]
    if not all(np.allclose(notes["track_fit"][k], v, rtol=1e-9, atol=1e-9) for k, v in stored.items()):
        raise RuntimeError(f"{DECODING_JSON.name}: the nelpy track fitted again {notes['track_fit']} differs from the "
                           f"stored datasets.nelpy.notes.track_fit {stored}")
    plan, track, t0 = SplitPlan.from_dict(mask.plan), mask.track, float(rec.time_domain[0])

    def xy(starts):  # window-mean LED position, as nelpy_mask reads it
        return np.stack([target_values(rec, DecodingTarget(c, "regression"), starts, cfg.current_window)
                         for c in "xy"], 1)

    st = bd.mask_windows(plan, "train", cfg)  # the windows nelpy_mask fits on
    running, _ = mask.parts(rec, st)
    refit = LinearTrack.fit(xy(st)[running])
    if not np.isclose(refit.half_width, track.half_width, rtol=1e-12):
        raise RuntimeError(f"LinearTrack.fit on the training running windows gives half-width {refit.half_width}, "
                           f"the mask's track has {track.half_width}")
    d = track.distance(xy(st)[running])
    inside, outside = np.sort(d[d <= track.half_width]), d > track.half_width
    q1, q3 = np.quantile(d, [0.25, 0.75])
    tukey = float(q3 + 3 * (q3 - q1))
    p99 = float(np.quantile(d, 0.99))
    # test: the windows of nelpy_mask's test counts; the lift-off = the first running window off the track,
    # and before it the running on-track windows that Tukey's fence would have cut (walking back until one it keeps)
    ts = bd.mask_windows(plan, "test", cfg)
    r, on = mask.parts(rec, ts)
    dt = track.distance(xy(ts))
    first_off = int(np.flatnonzero(r & ~on)[0])
    i = first_off
    while i > 0 and r[i - 1] and on[i - 1] and dt[i - 1] > tukey:
        i -= 1
    lift = list(range(i, first_off))
    ctx = range(max(first_off - 8, 0), min(first_off + 3, len(ts)))
    return {
        "split_seed": 0,
        "n_train_running_windows": int(running.sum()),
        "continuum_max_px": float(inside[-1]),
        "continuum_largest_step_px": float(np.max(np.diff(inside))),
        "carry_in": {"n_windows": int(outside.sum()), "min_px": float(d[outside].min()), "max_px": float(d[outside].max()),
                     "window_starts_s_into_run": [round(float(t - t0), 3) for t in st[running][outside]]},
        "p99_px": p99,
        "half_width_px": float(track.half_width),
        "half_width_is_1.5_x_p99": bool(np.isclose(track.half_width, 1.5 * p99, rtol=1e-12)),
        "tukey_fence_px": tukey,
        "train_running_windows_on_track_beyond_tukey": int(np.sum((d > tukey) & (d <= track.half_width))),
        "test_first_off_track_window_s_into_run": round(float(ts[first_off] - t0), 3),
        "test_liftoff_on_track_windows": [{"start_s_into_run": round(float(ts[j] - t0), 3), "distance_px": float(dt[j])}
                                          for j in lift],
        "test_windows_around_liftoff": [{"start_s_into_run": round(float(ts[j] - t0), 3), "distance_px": round(float(dt[j]), 1),
                                         "running": bool(r[j]), "on_track": bool(on[j])} for j in ctx],
    }


# --------------------------------------------------------------------------------------- baselines
def validation_baselines(seeds=(0, 1, 2)) -> dict:
    """(c): see the module docstring.

    Raises:
        RuntimeError: ridge, lasso or the GLM on these rows do not reproduce the stored test R².
    """
    from hf_neuroformer.baselines import evaluate_baselines

    run = json.loads(DECODING_JSON.read_text())["datasets"]["nelpy"]
    sets = dict(run["run"].get("config_overrides") or {})
    tiling = {k: v for k, v in sets.items() if k != "window_stride"}

    def score(overrides, split, baselines):
        t = time.perf_counter()
        dsd, _, tok, cfg, target = decoding_rows("nelpy", dict(bd.MODEL), overrides)
        res = evaluate_baselines(dsd, tok, cfg, target, seeds=tuple(seeds), baselines=baselines, test_split=split)
        return {"config_overrides": overrides, "split": split, "n_train": res["n_train"], "n_scored": res["n_test"],
                "seconds": round(time.perf_counter() - t, 1),
                "r2": {b: {"mean": float(res["results"][b]["mean"]["r2"]),
                           "per_seed": [float(x["r2"]) for x in res["results"][b]["per_seed"]]} for b in baselines}}

    from hf_neuroformer.baselines import BASELINES

    test = score(sets, "test", ("ridge", "lasso", "glm"))
    for b in ("ridge", "lasso", "glm"):
        want = run["baselines"]["1.0"]["results"][b]["per_seed"][0]["r2"]
        if not np.isclose(test["r2"][b]["mean"], want, rtol=0, atol=1e-6):
            raise RuntimeError(f"{DECODING_JSON.name}: {b} on these rows scores test R² {test['r2'][b]['mean']:.6f}, the "
                               f"stored datasets.nelpy.baselines['1.0'].results.{b} has {want:.6f}: not the benchmark's rows")
    return {"seeds": list(seeds), "check_test_deterministic": test,
            "strided": score(sets, "validation", tuple(BASELINES)),
            "tiling": score(tiling, "validation", ("gru",))}


# --------------------------------------------------------------------------------------- Steinmetz units
def steinmetz_unit_rates() -> dict:
    """The Steinmetz benchmark draws its 64 units among those firing >= STEINMETZ_MIN_RATE Hz over
    the whole session (spikes / the seconds of its time domain, the reader's 0.1-s gaps between
    trials included; the recording's ``firing_rates`` count the trials alone), test
    trials included (no label is read). The rates of those 64 units on split 0's training trials
    alone, and how many units that train-only rule would have made candidates."""
    import copy

    from hf_neuroformer.io import load_recording
    from hf_neuroformer.windows import plan_splits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = load_recording(bd.DATA / "steinmetz2019_spcount" / "NS_sp_count.mat", bin_size=0.01, seed=0)
        rec, cfg, _, notes = bd.load_dataset("steinmetz")
    # over the time domain, gaps between trials included, as benchmark_decoding.load_dataset draws them
    session = dataclasses.replace(full, time_support=None).firing_rates()
    cand = np.flatnonzero(session >= bd.STEINMETZ_MIN_RATE)
    units = np.sort(np.random.default_rng(0).choice(cand, bd.STEINMETZ_UNITS, replace=False))
    if rec.n_units != len(units) or rec.n_spikes != int(np.isin(full.unit_ids, units).sum()):
        raise RuntimeError("the units drawn here are not the benchmark's (benchmark_decoding.load_dataset)")
    c = copy.deepcopy(cfg)
    c.split_seed = 0
    train = plan_splits(rec, c).segments["train"]
    counts = np.zeros(full.n_units)
    for a, b in train:
        lo, hi = np.searchsorted(full.spike_times, [a, b], side="left")
        np.add.at(counts, full.unit_ids[lo:hi], 1)
    train_rate = counts / float(np.sum(train[:, 1] - train[:, 0]))
    return {"min_rate_hz": bd.STEINMETZ_MIN_RATE, "n_units": int(full.n_units), "candidates_whole_session": int(len(cand)),
            "candidates_train_trials_only": int(np.sum(train_rate >= bd.STEINMETZ_MIN_RATE)),
            "n_train_trials_s": float(np.sum(train[:, 1] - train[:, 0])),
            "drawn_units_passing_on_train_trials_only": int(np.sum(train_rate[units] >= bd.STEINMETZ_MIN_RATE)),
            "drawn_units_min_train_rate_hz": float(train_rate[units].min()),
            "drawn_units_min_session_rate_hz": float(session[units].min())}


# --------------------------------------------------------------------------------------- main
DESCRIPTIONS = {
    "split_overlap": "(a) Test sets of the repeated block splits (decoding_repeated_splits.json): contiguous test "
                     "stretches per split, distinct stretches over the splits, and the mean over pairs of splits of "
                     "the Jaccard overlap of their test blocks (seconds covered by the stored test segments) and of "
                     "their decoded test windows (window starts kept by build_decoding_datasets: tiling test windows "
                     "that pass the dataset's mask, nelpy's running + on-track mask refitted per split, and have a "
                     "defined target, A2929's head angle). Plans re-planned and checked against the stored segments, "
                     "window counts against the stored n_test_windows.",
    "nelpy_track_fit": "(b) nelpy on-track threshold (split 0): distances (px) of the training split's running "
                       "windows to the fitted track segment (LinearTrack.distance), the largest of those within the "
                       "half-width (the continuum) and the carried-in windows beyond it, the 99th percentile (the "
                       "half-width is 1.5 x it), Tukey's far-out fence Q3 + 3 IQR of the same distances, and the "
                       "lift-off: the running on-track test windows just before the first off-track one that "
                       "Tukey's fence would have cut. Times are window starts, s into the run epoch.",
    "validation_baselines": "(c) The baselines on the nelpy validation split (evaluate_baselines(..., "
                            "test_split='validation'), seeds 0-2) on the benchmark's rows (its run's config settings, "
                            "training windows every 125 ms), and the GRU with tiling training windows; ridge, lasso "
                            "and GLM on test checked against decoding.json.",
    "steinmetz_unit_rates": "(d) The Steinmetz benchmark's 64 units are drawn (seed 0) among those firing >= 2 Hz over the "
                            "whole session, test trials included (no label read): their rates on split 0's training "
                            "trials alone (spikes / the trials' seconds), and the candidates of that train-only rule.",
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--validation-baselines", action="store_true",
                   help="also recompute (c), the baselines on the nelpy validation split (~10 s on one core)")
    p.add_argument("--output", default=str(OUT), help="the JSON written (default %(default)s)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    bd._threads()
    out = Path(args.output)
    doc = json.loads(out.read_text()) if out.is_file() else {}
    stamp = {"commit": bd.git_commit(), "date": time.strftime("%Y-%m-%d")}
    t = time.perf_counter()
    splits = json.loads(SPLITS_JSON.read_text())
    seen, overlap = set(), {}
    for e in splits["entries"]:  # entries of one dataset with the same split seeds share their plans
        key = (bd.source_of(e["dataset"]), tuple(e["split_seeds"]))
        if e["dataset"] in ("nelpy", "a2929") and key not in seen:
            seen.add(key)
            overlap[e["dataset"]] = split_overlap(e)
    doc["split_overlap"] = {"description": DESCRIPTIONS["split_overlap"], **stamp, **overlap}
    doc["nelpy_track_fit"] = {"description": DESCRIPTIONS["nelpy_track_fit"], **stamp, **nelpy_track_fit()}
    doc["steinmetz_unit_rates"] = {"description": DESCRIPTIONS["steinmetz_unit_rates"], **stamp, **steinmetz_unit_rates()}
    if args.validation_baselines:
        doc["validation_baselines"] = {"description": DESCRIPTIONS["validation_baselines"], **stamp,
                                       **validation_baselines()}
    doc = {k: doc[k] for k in ("split_overlap", "nelpy_track_fit", "validation_baselines", "steinmetz_unit_rates") if k in doc}
    write_atomic(out, json.dumps(doc, indent=1) + "\n")
    for name, o in overlap.items():
        print(f"[provenance] {name}: {o['test_stretches_per_split'][0]}-{o['test_stretches_per_split'][1]} test stretches "
              f"per split, {o['distinct_test_stretches']} distinct; mean Jaccard test blocks "
              f"{o['mean_jaccard_test_blocks']:.3f}, decoded test windows {o['mean_jaccard_decoded_test_windows']:.3f}")
    tf = doc["nelpy_track_fit"]
    lift = tf["test_liftoff_on_track_windows"]
    print(f"[provenance] nelpy track: continuum up to {tf['continuum_max_px']:.1f} px, carry-in {tf['carry_in']['min_px']:.1f}-"
          f"{tf['carry_in']['max_px']:.1f} px, p99 {tf['p99_px']:.1f} (half-width {tf['half_width_px']:.1f}), Tukey "
          f"{tf['tukey_fence_px']:.1f}; lift-off {lift[0]['start_s_into_run']}-{lift[-1]['start_s_into_run']} s, "
          f"{lift[0]['distance_px']:.1f}-{lift[-1]['distance_px']:.1f} px")
    if "validation_baselines" in doc:
        vb = doc["validation_baselines"]
        print("[provenance] validation R² (windows every 125 ms): " + ", ".join(
            f"{b} {r['mean']:.3f} ({' / '.join(f'{x:.3f}' for x in r['per_seed'])})" for b, r in vb["strided"]["r2"].items())
            + f"; GRU with tiling windows {vb['tiling']['r2']['gru']['mean']:.3f}")
    su = doc["steinmetz_unit_rates"]
    print(f"[provenance] Steinmetz: {su['drawn_units_passing_on_train_trials_only']} of the 64 drawn units fire >= "
          f"{su['min_rate_hz']} Hz on the training trials alone (lowest {su['drawn_units_min_train_rate_hz']:.2f} Hz); "
          f"candidates {su['candidates_whole_session']} (session) vs {su['candidates_train_trials_only']} (train trials)")
    print(f"[provenance] wrote {out} in {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
