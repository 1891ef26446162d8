"""The paper's ablation (Neuroformer, arXiv 2311.00136, Table of ablations) on honest splits.

One config and one recording give up to five models trained with the same windows, split, seed
and steps (only the inputs differ):

* ``state-only``: the current window's spikes only (``max_past_length = 1``: the past window
  keeps its length, so the windows and split are the same, but holds only its BOS token; the
  past spikes dropped this way are counted in ``n_truncated_past_spikes``);
* ``+past``: plus the past window's spikes;
* ``+stimulus``: plus the config's modalities read from the stimulus (ids or video frames), the
  trial table or the event streams (``source`` ``stimulus:`` / ``trial:`` / ``events:``);
* ``+behaviour``: plus its ``behaviour:`` modalities;
* ``+contrastive``: every modality, with the contrastive loss on.

Variants that do not apply (no stimulus modality, no behaviour modality, no modality at all)
are skipped and listed with the reason.

Initial weights are paired: each variant starts from the previous variant's starting weights
(every parameter of the same name and shape: unit embeddings, past encoder, decoder, heads, and
the modality modules already there), so adding an input changes only the weights of that input's
new modules. (Built alone, a model with modalities drew their modules from the seeded random
stream first, and 22 of 55 shared tensors started from other values than ``+past``: the
difference between variants then held a seed-to-seed part, on A2929 ``+past`` at 300 steps
1.4687 nats with seed 0 and 1.4704 with seed 1.) With several ``seeds`` every variant is trained
once per seed (the pairing within a seed) and the table gives mean +/- sd over seeds and the
paired difference to ``+past``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import tempfile
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .configuration_neuroformer import NeuroformerConfig, is_finite_number

__all__ = ["ablation_variants", "check_contrastive_loss_weight", "checkpoint_choice", "check_same_windows",
           "run_ablation", "ablation_markdown", "check_variant_folders", "check_work_dir", "variant_folder"]


def _kind(mod: dict) -> str:
    return "behaviour" if mod["source"].startswith("behaviour:") else "stimulus"


def check_contrastive_loss_weight(weight) -> None:
    """Refuse a ``+contrastive`` weight that is not a finite number > 0 (``neuroformer ablate``
    checks its flag with this before reading the data).

    Raises:
        ValueError: naming ``contrastive_loss_weight`` (nan, inf, <= 0, a bool or not a number).
    """
    if not (is_finite_number(weight) and weight > 0):
        raise ValueError(f"contrastive_loss_weight: expected a finite number > 0 for the +contrastive variant, "
                         f"got {weight!r}")


def ablation_variants(config: NeuroformerConfig, contrastive_loss_weight: float = 0.5
                      ) -> Tuple[List[Tuple[str, NeuroformerConfig]], List[Tuple[str, str]]]:
    """The configs of the ablation.

    Args:
        config: the full model (its modalities say which variants apply).
        contrastive_loss_weight: weight of the ``+contrastive`` variant when the config's own
            ``contrastive_loss_weight`` is 0 (the config's is used when > 0).

    Returns:
        ``(variants [(name, config)], skipped [(name, reason)])``.

    Raises:
        ValueError: ``contrastive_loss_weight`` not > 0 while the config's is 0.
    """
    def variant(mods, past=True, weight=0.0):
        c = copy.deepcopy(config)
        c.modalities = [dict(m) for m in mods]
        if not past:
            c.max_past_length = 1
        c.contrastive_loss_weight = float(weight)
        c.contrastive_modalities = None
        return c

    stim = [m for m in config.modalities if _kind(m) == "stimulus"]
    beh = [m for m in config.modalities if _kind(m) == "behaviour"]
    variants = [("state-only", variant([], past=False)), ("+past", variant([]))]
    skipped = []
    if stim:
        variants.append(("+stimulus", variant(stim)))
    else:
        skipped.append(("+stimulus", "no stimulus / trial / events modality in the config"))
    if beh:
        variants.append(("+behaviour", variant(stim + beh)))
    else:
        skipped.append(("+behaviour", "no behaviour modality in the config"))
    if config.modalities:
        w = config.contrastive_loss_weight if config.contrastive_loss_weight > 0 else contrastive_loss_weight
        check_contrastive_loss_weight(w)
        c = variant(stim + beh, weight=w)
        c.contrastive_modalities = config.contrastive_modalities
        variants.append(("+contrastive", c))
    else:
        skipped.append(("+contrastive", "no modality to align the spikes with"))
    return variants, skipped


def variant_folder(work_dir, seeds, seed: int, index: int, name: str) -> Path:
    """Where :func:`run_ablation` writes variant ``index`` (``name``) of ``seed``: ``work_dir/<index>-<name>``,
    under ``seed-<seed>/`` when there are several ``seeds``."""
    sub = f"{index}-{name.strip('+')}"
    return Path(work_dir) / sub if len(seeds) == 1 else Path(work_dir) / f"seed-{seed}" / sub


def check_work_dir(work_dir) -> None:
    """Refuse a ``work_dir`` that holds a trained model (or a run's checkpoints): the variants were
    trained into subfolders of that model's folder, mixed into it (and pushed or copied with it).

    A model is recognised as the other commands recognise one: a file of
    :data:`~hf_neuroformer.io.output_folder.MODEL_MARKERS` (``model.safetensors``, ``metrics.json``, ...)
    or a ``checkpoint-*`` folder directly in ``work_dir``. A folder that does not exist, an empty one
    and an earlier ablation's work dir (its models are in the variant subfolders) are accepted.

    Raises:
        FileExistsError: ``work_dir: '<path>' holds a model (...)``, naming up to three of the files
            found and a folder of its own to give instead.
    """
    from .io.output_folder import MODEL_MARKERS
    from .recording import first_few

    d = Path(work_dir)
    if not d.is_dir():
        return
    found = sorted([f for f in MODEL_MARKERS if (d / f).exists()] + [p.name for p in d.glob("checkpoint-*")])
    if found:
        raise FileExistsError(f"work_dir: {str(work_dir)!r} holds a model ({first_few(found)}); the variants would "
                              "train into subfolders of that model's folder: choose a folder of their own, e.g. "
                              f"{str(d) + '-ablation'!r}")


def check_variant_folders(work_dir, seeds, variants, overwrite: bool) -> None:
    """:func:`~hf_neuroformer.training.check_output_dir` on every folder :func:`run_ablation` would
    write (:func:`variant_folder` of each seed and each of ``variants``, as
    :func:`ablation_variants` returns them).

    Raises:
        FileExistsError: ``work_dir`` itself holds a model (a file of
            :data:`~hf_neuroformer.io.output_folder.MODEL_MARKERS` or a ``checkpoint-*`` folder:
            ``work_dir: ...``, whatever ``overwrite``), see :func:`check_work_dir`.
        FileExistsError / PermissionError: as :func:`~hf_neuroformer.training.check_output_dir`
            (``output_dir: ...``).
    """
    from .training import check_output_dir

    check_work_dir(work_dir)
    for seed in seeds:
        for i, (name, _) in enumerate(variants):
            check_output_dir(variant_folder(work_dir, seeds, seed, i, name), overwrite)


def check_same_windows(recording, variants) -> None:
    """Refuse variants that would train or be scored on different windows.

    In time blocks a window is made only where its latest modality window ends inside its block
    (:func:`~hf_neuroformer.windows.window_reach`), so a modality window reaching past the current
    window (``allow_future``) leaves the variants that read it fewer windows per block than the
    spikes-only ones; the rows would then compare NLLs over different windows while the split plan
    (``splits.json``) is the same.

    Args:
        recording: the recording :func:`run_ablation` trains on.
        variants: ``[(name, config)]`` as :func:`ablation_variants` returns them.

    Raises:
        ValueError: naming the modality whose window reaches past the current window and the
            windows per split with it and without it.
    """
    from .windows import plan_splits, split_windows

    def windows(cfg):
        with warnings.catch_warnings():  # train() gives the split's (and overlapping trials') warnings itself
            warnings.simplefilter("ignore")
            plan = plan_splits(recording, cfg)
            # train at the training stride, validation and test tiled (as train() makes them)
            return plan, {split: split_windows(plan, split, cfg)[0] for split in plan.segments}

    name0, cfg0 = variants[0]
    plan0, ref = windows(cfg0)
    for name, cfg in variants[1:]:
        plan, got = windows(cfg)
        differ = [s for s in ref if s not in got or not np.array_equal(ref[s], got[s])]
        if plan.to_dict() == plan0.to_dict() and not differ:
            continue
        late = [(i, m) for i, m in enumerate(cfg.modalities) if float(m["window"][1]) > cfg.current_window + 1e-12]
        what = (", ".join(f"NeuroformerConfig.modalities[{i}] ({m['name']!r}).window ends {float(m['window'][1]):g} s "
                          f"after the window start" for i, m in late)
                + f", past the current window ({cfg.current_window:g} s; allow_future)") if late else "its modalities"
        counts = "; ".join(f"{s}: {len(got.get(s, ()))} windows with it, {len(ref[s])} without" for s in differ) \
            or "another split plan"
        raise ValueError(f"{what}: in time blocks a window is made only where its modality window ends inside "
                         f"its block, so {name} would train and be scored on other windows than {name0} ({counts}) "
                         "and the rows would not compare the same windows; ablate a config whose modality windows "
                         "end by the current window's end, or one split by trials")


def run_ablation(recording, config: NeuroformerConfig, training, work_dir=None, contrastive_loss_weight: float = 0.5,
                 progress: bool = False, overwrite: bool = False, seeds=None,
                 learning_rate_option: str = "learning_rate") -> Dict[str, object]:
    """Train every variant of :func:`ablation_variants` with :func:`~hf_neuroformer.training.train`.

    Every variant uses ``training`` unchanged (steps, batch) and the split of the same config
    fields, so the test windows are the same; this is checked (the saved ``splits.json`` of every
    variant and seed must be equal) and recorded. Each variant starts from the previous variant's
    starting weights (``train(initial_state=...)``, see the module docstring). Test unit-id F1 is
    the one ``train`` computes by generating every test window (recorded past,
    ``training.generation_*`` sampling).

    Args:
        work_dir: where the models are written (one sub-folder per variant, and per seed with
            several seeds; default a temporary folder removed at the end). Models already there
            are replaced only with ``overwrite`` (otherwise ``FileExistsError`` before any training).
        seeds: training seeds (distinct integers); every variant is trained once per seed.
            Default: ``[training.seed]``.
        learning_rate_option: how the reason of a diverged run (``not_scored``, train's warnings)
            names the rate to lower (:func:`~hf_neuroformer.training.train`'s argument;
            ``neuroformer ablate`` names the ``training.learning_rate`` field of its ``--config``).

    Returns:
        ``{"rows": [{variant, id_nll, dt_nll, id_f1, ...}], "per_seed": {seed: rows},
        "seeds": [...], "skipped": [...], "not_scored": [{variant, seed, reason}], "same_split": bool,
        "contrastive_loss_weight": float}``; ``not_scored`` lists the runs whose test split was not generated and
        why (training diverged: their test losses are NaN; the training loss logged and where its
        ``training_log.json`` is, or that ``work_dir`` keeps it), which the table says under it; a row's
        ``best_step`` is None where train selected no step (``checkpoint_selection`` ``last step (...)``,
        kept beside it: no validation split, or a validation loss never finite), n/a in the table;
        a row's figures are means over the seeds that gave a finite value, with ``<key>_sd`` (sample sd; None
        for fewer than two such seeds) and ``<key>_vs_past`` / ``<key>_vs_past_sd`` (mean / sd of the paired per-seed
        difference to ``+past``, over the seeds where both are finite; ``unscored_seeds`` maps each figure some
        seed gave none of, NaN or None as in a diverged run, to those seeds, which the table counts) for ``id_nll``, ``dt_nll``, ``id_f1`` and ``timing_f1_10ms`` (the
        spike-timing F1 within 10 ms; beside it ``timing_f1_10ms_chance_shuffle``, its window-shuffle
        chance level, the mean over seeds; both None when the test split was not generated); the ``+contrastive`` row also
        has ``contrastive_modalities`` (the modalities its InfoNCE aligns with the spikes),
        ``contrastive_temperature`` and ``contrastive_learnable_temperature``, which the table names.

    Raises:
        ValueError: ``seeds`` empty, repeated or not integers, or one outside ``training.seed``'s
            range (``training.seed: ...``, before any variant trains); variants whose windows differ
            (:func:`check_same_windows`: a modality window past the current window in time
            blocks); a modality of ``config`` whose source
            is not in ``recording`` or has no value in the training split (checked before any
            variant trains: the spikes-only variants trained first, and the run failed only when
            the first variant with that modality began).
        FileExistsError: ``work_dir`` holds a model (:func:`check_work_dir`, also with ``overwrite``),
            before any variant trains.
    """
    from .modalities import fit_modalities
    from .training import train
    from .windows import plan_splits

    seeds = [training.seed] if seeds is None else list(seeds)
    if (not seeds or any(not isinstance(x, int) or isinstance(x, bool) for x in seeds)
            or len(set(seeds)) != len(seeds)):
        raise ValueError(f"seeds: expected distinct integers (at least one), got {seeds!r}")
    for seed in seeds:  # refused (training.seed) only once the variants of the seeds before it had trained
        dataclasses.replace(training, seed=seed)
    variants, skipped = ablation_variants(config, contrastive_loss_weight)
    check_same_windows(recording, variants)
    full = copy.deepcopy(variants[-1][1])  # every modality of the config (the last variant holds them all)
    if full.modalities:  # the statistics train() fits first; on a copy, so each variant fits its own
        # their warnings (split plan, modality statistics) point at our caller's line
        fit_modalities(recording, full, plan_splits(recording, full, stacklevel=3), overwrite=True, stacklevel=3)
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="neuroformer-ablate-")
        work_dir = tmp.name
    work_dir = Path(work_dir)

    def folder(seed, i, name):
        return variant_folder(work_dir, seeds, seed, i, name)

    if tmp is None and not overwrite:
        check_variant_folders(work_dir, seeds, variants, False)
    elif tmp is None:  # overwrite replaces earlier variant folders, never a model's folder the variants go into
        check_work_dir(work_dir)
    per_seed, plans, not_scored = {}, [], []
    try:
        for seed in seeds:
            run = dataclasses.replace(training, seed=seed)
            start: Optional[dict] = None
            rows = per_seed[seed] = []
            for i, (name, cfg) in enumerate(variants):
                out = folder(seed, i, name)
                print(f"[neuroformer] ablate: training {name} ({len(cfg.modalities)} "
                      f"{'modality' if len(cfg.modalities) == 1 else 'modalities'}, "
                      f"contrastive weight {cfg.contrastive_loss_weight}, seed {seed})", flush=True)
                began: dict = {}
                # the warnings of each variant's run (stacklevel 3) name our caller's line
                m = train(recording, out, cfg, run, overwrite=tmp is not None or overwrite, progress=progress,
                          initial_state=start, learning_rate_option=learning_rate_option,
                          stacklevel=3,
                          on_train_start=lambda model: began.update(
                              {k: v.detach().clone() for k, v in model.state_dict().items()}))
                start = {**(start or {}), **began}  # the next variant starts from these
                plans.append(json.loads((out / "splits.json").read_text()))
                row = {
                    "variant": name,
                    "modalities": [mm["name"] for mm in cfg.modalities],
                    "id_nll": m.get("test/id_nll"), "dt_nll": m.get("test/dt_nll"), "id_f1": m.get("test/id_f1"),
                    # the spike-timing F1 within 10 ms and its window-shuffle chance (same units and counts per
                    # window, times redrawn): an F1 at that level says the spike times add nothing to the counts
                    "timing_f1_10ms": m.get("test/timing_f1_10ms"),
                    "timing_f1_10ms_chance_shuffle": m.get("test/timing_f1_10ms_chance_shuffle"),
                    "n_test_spike_tokens": m.get("test/n_spike_tokens"), "n_test_windows": m.get("n_test_windows"),
                    "n_truncated_past_spikes": m.get("n_truncated_past_spikes"),
                    # None when train chose no step ('last step (...)': no validation split, or a validation loss
                    # never finite, as in a diverged run): the table showed the last step as the best one
                    "best_step": None if _no_step_selected(m) else m.get("best_step"),
                    "checkpoint_selection": m.get("checkpoint_selection"),
                    "total_steps": m.get("total_steps"), "train_time_s": m.get("train_time_s"),
                    "num_parameters": m.get("num_parameters"),
                    "n_initial_tensors_given": m.get("n_initial_tensors_given"),
                }
                if cfg.contrastive_modality_names():  # what +contrastive aligns, and at which temperature
                    row.update(contrastive_modalities=cfg.contrastive_modality_names(),
                               contrastive_temperature=cfg.contrastive_temperature,
                               contrastive_learnable_temperature=cfg.contrastive_learnable_temperature)
                row.update({k[len("test/retrieval/"):]: v for k, v in m.items() if k.startswith("test/retrieval/")})
                rows.append(row)
                if isinstance(m.get("test/generation"), str):  # why the test split was not generated (diverged)
                    not_scored.append({"variant": name, "seed": seed,
                                       "reason": _not_scored_reason(m["test/generation"], out, tmp is not None)})
    finally:
        if tmp is not None:
            tmp.cleanup()
    cw = next((c.contrastive_loss_weight for n, c in variants if n == "+contrastive"), None)
    return {"rows": _over_seeds(per_seed), "per_seed": per_seed, "seeds": seeds, "skipped": skipped,
            "not_scored": not_scored, "same_split": all(p == plans[0] for p in plans), "contrastive_loss_weight": cw}


def _no_step_selected(metrics: dict) -> bool:
    """Whether train kept the last step's model without choosing it (``checkpoint_selection``
    ``last step (...)``)."""
    return str(metrics.get("checkpoint_selection")).startswith("last step")


#: what train's reason for not generating the test split points to (the variant's training_log.json)
_SEE_LOG = "see train_loss in training_log.json"


def _not_scored_reason(generation: str, out: Path, temporary: bool) -> str:
    """Train's ``test/generation`` reason with its pointer to ``training_log.json`` made usable: the
    training loss it shows (first non-finite step, or the last one logged) and the log's path, or,
    for temporary variant folders (removed at the end), that ``--work-dir`` keeps them."""
    reason = generation.removeprefix("not run: ")
    if _SEE_LOG not in reason:
        return reason
    log = json.loads((out / "training_log.json").read_text()) if (out / "training_log.json").exists() else []
    losses = [(e["step"], e.get("train_loss")) for e in log if "train_loss" in e]
    bad = next(((step, v) for step, v in losses if not is_finite_number(v)), None)
    if bad is not None:
        shown = f"the training loss logged at step {bad[0]} was not finite (NaN or inf)"
    elif losses:
        shown = f"the training loss logged at step {losses[-1][0]} was {losses[-1][1]:.4g}"
    else:
        shown = "no training loss was logged"
    where = ("the variant folders were temporary and are removed: give work_dir (--work-dir) to keep their "
             "training_log.json" if temporary else f"see train_loss in {out / 'training_log.json'}")
    return reason.replace(_SEE_LOG, f"{shown}; {where}")


#: the figures of a row whose sd over seeds and paired difference to ``+past`` :func:`run_ablation` gives
SEED_FIGURES = ("id_nll", "dt_nll", "id_f1", "timing_f1_10ms")


def _over_seeds(per_seed: Dict[int, List[dict]]) -> List[dict]:
    """One row per variant: the figures' mean over seeds, their sd and the paired difference to
    ``+past`` (see :func:`run_ablation`), over the seeds that gave a finite figure; a row's
    ``unscored_seeds`` maps each figure some seed gave no finite value of (NaN, inf or None: a diverged run) to
    those seeds (a mean over every seed was NaN, which hid the other seeds' figures)."""

    seeds = list(per_seed)
    runs = list(per_seed.values())
    past = [next((p for p in run if p["variant"] == "+past"), None) for run in runs]  # per seed
    out = []
    for j, first in enumerate(runs[0]):
        rows = [r[j] for r in runs]
        row = dict(first, unscored_seeds={})

        def over(key, vals):  # the mean and sd of the finite values; the seeds without one recorded
            ok = [v for v in vals if is_finite_number(v)]
            if len(ok) < len(vals):
                row["unscored_seeds"][key] = [s for s, v in zip(seeds, vals) if not is_finite_number(v)]
            mean = float(np.mean(ok)) if ok else None if all(v is None for v in vals) else math.nan
            return mean, (float(np.std(ok, ddof=1)) if len(ok) > 1 else None)

        for key in first:  # figures (floats in some seed; SEED_FIGURES also when None in all) are averaged;
            # counts are the first seed's
            vals = [r.get(key) for r in rows]
            if ((key in SEED_FIGURES or any(isinstance(v, float) for v in vals))
                    and all(v is None or isinstance(v, (int, float)) for v in vals)):
                row[key], sd = over(key, vals)
                if key in SEED_FIGURES:
                    row[key + "_sd"] = sd
        for key in SEED_FIGURES:
            row.setdefault(key + "_sd", None)
            vals = [r.get(key) for r in rows]
            if all(p is not None for p in past) and any(is_finite_number(v) for v in vals):
                d = [v - p[key] if is_finite_number(v) and is_finite_number(p.get(key)) else None
                     for v, p in zip(vals, past)]
                row[key + "_vs_past"], row[key + "_vs_past_sd"] = over(key + "_vs_past", d)
            else:
                row[key + "_vs_past"] = row[key + "_vs_past_sd"] = None
        row["best_step"] = [r["best_step"] for r in rows] if len(rows) > 1 else first["best_step"]
        out.append(row)
    return out


def _unselected_runs(result: Dict[str, object]) -> Dict[str, List[str]]:
    """``{checkpoint_selection: runs}`` of the runs for which train selected no step (best step n/a;
    a run named ``variant (seed s)`` with several seeds; rows of older results lack it)."""
    several = len(result.get("seeds") or [None]) > 1
    unselected: Dict[str, List[str]] = {}
    for seed, runs in (result.get("per_seed") or {}).items():
        for r in runs:
            if r.get("best_step") is None and r.get("checkpoint_selection"):
                unselected.setdefault(r["checkpoint_selection"], []).append(
                    f"{r['variant']}{f' (seed {seed})' if several else ''}")
    return unselected


def checkpoint_choice(result: Dict[str, object]) -> str:
    """How the models scored in a :func:`run_ablation` result were chosen, for a table's header:
    "checkpoint chosen on validation", unless train selected no step for some runs, or for all of
    them (their last step's model is scored; :func:`ablation_markdown` lists them under "Best step n/a")."""
    unselected = sum(len(runs) for runs in _unselected_runs(result).values())
    if not unselected:
        return "checkpoint chosen on validation"
    total = sum(len(runs) for runs in (result.get("per_seed") or {}).values())
    if unselected == total:
        return "no checkpoint chosen on validation (every run's last step is scored: see 'Best step n/a' below)"
    return (f"checkpoint chosen on validation, except for {unselected} of {total} runs (their last step is scored: "
            "see 'Best step n/a' below)")


def _retrieval_unscored(r: dict, name: str, several: bool) -> Optional[str]:
    """Why a row's held-out retrieval of modality ``name`` has no figure (NaN, for one seed's model
    at least with ``several`` seeds; null in a result read back from its .json), or None when it has one."""
    if all(is_finite_number(r.get(f"{name}/{key}")) for key in ("neural_to_modality_top1", "modality_to_neural_top1")):
        return None
    if r.get(f"{name}/n_windows") == 0:
        return "no test window with a token of the modality had another one in its group to retrieve among"
    # retrieval_top1 gives NaN for non-finite embeddings: an argmax over NaN similarities is no retrieval
    # a row's mean is over the seeds that gave a figure (_over_seeds): NaN when none did
    whose = "every seed's model" if several else "the model"
    return f"the embeddings of {whose} are not finite (NaN or inf: training diverged), so no window retrieves another"


def _unscored(r: dict, key: str) -> List[object]:
    """The seeds that gave no finite value of figure ``key`` of row ``r`` (its ``unscored_seeds``; none for
    rows of a single seed's result built without it)."""
    return (r.get("unscored_seeds") or {}).get(key, [])


def _seeds_note(result: Dict[str, object], r: dict, keys, variants=None, why: Optional[str] = None) -> str:
    """`` (1 of 2 seeds; seed 1 not scored: see below)`` for a row whose figure ``keys`` some seeds gave no
    finite value of (its mean and sd are over the others: :func:`_over_seeds`), or ``""``. "see below" where
    each such seed's run of ``variants`` (default the row's) is listed as not scored under the table, else
    ``why`` or "gave no figure"."""
    missing = sorted({s for k in keys for s in _unscored(r, k)}, key=str)
    if not missing:
        return ""
    listed = {(x["variant"], str(x["seed"])) for x in result.get("not_scored") or []}
    if why is None:
        listed_all = all(any((v, str(s)) in listed for v in variants or [r["variant"]]) for s in missing)
        why = "not scored: see below" if listed_all else "gave no figure"
    n = len(result["seeds"])
    return (f" ({n - len(missing)} of {n} seeds; {'seed' if len(missing) == 1 else 'seeds'} "
            f"{', '.join(str(s) for s in missing)} {why})")


def _table_rows(result: Dict[str, object]) -> Tuple[List[dict], Optional[str]]:
    """The rows :func:`ablation_markdown` shows, and a line to say under the table (or None).

    A result written before rows recorded ``unscored_seeds`` (read back from its .json, where a mean
    over every seed, NaN when one seed gave no figure, was written as null) showed ``n/a`` with no
    count of the seeds scored: its rows are made again from its per-seed figures
    (:func:`_over_seeds`: the same means where every seed gave one, and the count), or, without
    them, the line says that the result predates the count."""
    rows = result["rows"]
    seeds = result.get("seeds") or []
    if len(seeds) < 2 or all("unscored_seeds" in r for r in rows):
        return rows, None
    runs = result.get("per_seed") or {}
    per_seed = {s: runs.get(s, runs.get(str(s))) for s in seeds}  # (a .json's keys are strings)
    if any(not isinstance(v, list) or [x.get("variant") for x in v] != [r["variant"] for r in rows]
           for v in per_seed.values()):
        return rows, ("Seeds scored: not known (this result predates their count and holds no per-seed figures): a "
                      "mean over seeds is n/a where any seed gave no figure.")
    rows = _over_seeds(per_seed)
    if not any(r["unscored_seeds"] for r in rows):
        return rows, None
    return rows, ("Seeds scored: counted from the per-seed figures (per_seed), as this result predates their count "
                  "(unscored_seeds); its rows' means over every seed were n/a where a seed gave no figure.")


#: the table's columns of figures that results written before them lack, by their heading
_RECORDED_LATER = {"timing_f1_10ms": "test timing F1 (10 ms)", "timing_f1_10ms_chance_shuffle": "its shuffle chance"}


def _f(v, nd=4):
    return "n/a" if v is None else f"{v:.{nd}f}"


def ablation_markdown(result: Dict[str, object], header: Optional[str] = None) -> str:
    """The ablation as a markdown table (lowest NLLs and highest F1 in bold, in every row that shows the
    best value to 4 decimals, NaN never; with several seeds mean +/- sd over seeds and the paired
    difference of the unit-id NLL to ``+past``, and only the means over every seed are compared for
    the bold: a mean over fewer seeds, its count in the cell, is not, as a line under the table says).

    ``result`` is :func:`run_ablation`'s, or its .json read back; one written before rows recorded
    ``unscored_seeds`` is counted from its ``per_seed`` figures, and a column one predates (timing F1) is
    n/a and said not recorded (lines under the table say so)."""
    rows, counted = _table_rows(result)  # (a result written before the count of seeds scored: counted here)
    several = len(result.get("seeds") or [None]) > 1
    best, left_out = {}, False
    for key, fn in (("id_nll", min), ("dt_nll", min), ("id_f1", max), ("timing_f1_10ms", max)):
        # NaN left out: min / max keep a leading NaN, so the bold depended on the row order
        # (.get: rows of results written before the timing F1 was recorded lack it)
        scored = [r for r in rows if r.get(key) is not None and not math.isnan(r[key])]
        # a mean over fewer seeds than the run's (its count in the cell) was bolded against means over all of them
        full = [r[key] for r in scored if not _unscored(r, key)]
        left_out = left_out or len(full) < len(scored)
        best[key] = fn(full) if full else None

    def cell(r, key):
        s = _f(r.get(key))
        if several and r.get(key + "_sd") is not None:
            s += f" ± {_f(r[key + '_sd'])}"
        if several:  # the mean is over the seeds scored: a NaN of one seed made it NaN and hid the others
            s += _seeds_note(result, r, [key])
        # every row that shows the best value: 0.094600 alone was bold beside an unbold 0.094581, both "0.0946"
        return f"**{s}**" if best[key] is not None and _f(r.get(key)) == _f(best[key]) else s

    def paired(r):
        if r["variant"] == "+past" or r.get("id_nll_vs_past") is None:
            return "—"
        s = f"{r['id_nll_vs_past']:+.4f}"
        s += f" ± {_f(r['id_nll_vs_past_sd'])}" if r.get("id_nll_vs_past_sd") is not None else ""
        return s + _seeds_note(result, r, ["id_nll_vs_past"], [r["variant"], "+past"])

    lines = [header] if header else []
    if several:
        lines += [f"Mean ± sd over seeds {', '.join(str(x) for x in result['seeds'])} (each variant starts from the "
                  "previous one's weights within a seed); the paired column is the per-seed difference of the test "
                  "unit-id NLL to +past (negative: the input helps).", ""]
    lines += ["| variant | inputs | test unit-id NLL (nats/spike) | " + ("unit-id NLL − +past (paired) | " if several else "")
              + "test dt NLL | test unit-id F1 | test timing F1 (10 ms) | its shuffle chance | best step | train s |",
              "|---|---|---:|" + ("---:|" if several else "") + "---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        inputs = "current window" + ("" if r["variant"] == "state-only" else " + past")
        if r["modalities"]:
            inputs += " + " + ", ".join(r["modalities"])
        if r["variant"] == "+contrastive":
            how = f"weight {result['contrastive_loss_weight']}"
            aligned = r.get("contrastive_modalities")  # (rows of results written before it was recorded lack it)
            if aligned:
                how += f", temperature {r['contrastive_temperature']:g}" + (
                    " learned from there" if r["contrastive_learnable_temperature"] else "")
            inputs += " + InfoNCE" + (f" with {', '.join(aligned)}" if aligned else "") + f" ({how})"
        steps = r["best_step"] if isinstance(r["best_step"], list) else [r["best_step"]]
        step = ", ".join("n/a" if x is None else str(x) for x in steps)
        lines.append(f"| {r['variant']} | {inputs} | {cell(r, 'id_nll')} | " + (f"{paired(r)} | " if several else "")
                     + f"{cell(r, 'dt_nll')} | {cell(r, 'id_f1')} | {cell(r, 'timing_f1_10ms')} | "
                     + f"{_f(r.get('timing_f1_10ms_chance_shuffle'))} | {step} | {_f(r['train_time_s'], 0)} |")
    lines.append("")  # (a line right under the table would be read as one more row of it)
    if left_out:
        lines.append(f"Bold: the best mean of its column among the cells scored in all {len(result['seeds'])} seeds; a "
                     "mean over fewer seeds (its count in the cell) is not compared.")
    if counted:
        lines.append(counted)
    # a result written before a column was recorded lacks its key in every row: its 'n/a' read as not scored
    absent = [name for key, name in _RECORDED_LATER.items() if all(key not in r for r in rows)]
    if absent:
        lines.append(f"Not recorded in this result (written before they were): {', '.join(absent)} (n/a).")
    n_tok = {r["n_test_spike_tokens"] for r in rows}
    lines.append(f"Same split for every variant: {'yes' if result['same_split'] else 'NO'} "
                 f"({rows[0]['n_test_windows']} test windows, {', '.join(str(t) for t in sorted(n_tok))} scored spike tokens).")
    for r in rows:
        for key, value in r.items():
            if key.endswith("/neural_to_modality_top1"):
                name = key.split("/")[0]
                why = _retrieval_unscored(r, name, several)
                if why is not None:  # it printed 'top-1 nan, ... -> neural nan' as if the model had been scored
                    lines.append(f"Held-out retrieval ({r['variant']}, {name}): not scored: {why}.")
                    continue
                keys = [f"{name}/neural_to_modality_top1", f"{name}/modality_to_neural_top1"]
                seed_rows = [x for runs in (result.get("per_seed") or {}).values() for x in runs
                             if x["variant"] == r["variant"] and _retrieval_unscored(x, name, False) is not None]
                # the seeds left out of the mean, and why (a diverged seed made the mean NaN: 'not scored')
                note = _seeds_note(result, r, keys, why="not scored: " + "; ".join(
                    sorted({_retrieval_unscored(x, name, False).replace("the model", "its model") for x in seed_rows})))
                lines.append(f"Held-out retrieval ({r['variant']}, {name}{', mean over seeds' if several else ''}"
                             f"{note}): "
                             f"neural -> {name} top-1 {value:.3f}, "
                             f"{name} -> neural {r[name + '/modality_to_neural_top1']:.3f}, chance "
                             f"{r[name + '/chance']:.3f} (groups of {r[name + '/group_size']} test windows).")
    for r in result.get("not_scored") or []:  # (results written before it was recorded lack it)
        # a diverged run showed only 'nan' and 'n/a' in its row, and train's warning was said for the first one only
        seed = f" (seed {r['seed']})" if several else ""
        lines.append(f"Not scored: {r['variant']}{seed}: its test split was not generated: {r['reason']}.")
    for selection, runs in _unselected_runs(result).items():
        lines.append(f"Best step n/a: {', '.join(runs)}: no step was selected ({selection}); the last step's model "
                     "was kept.")
    for name, reason in result["skipped"]:
        lines.append(f"Skipped {name}: {reason}.")
    return "\n".join(lines) + "\n"
