"""Behaviour decoding over repeated block splits: how much of a Neuroformer-vs-baseline gap on ONE
test split is the split (issue 4).

    python scripts/decoding_repeated_splits.py                       # nelpy, split seeds 1-8 (~25 min, 2 cores)
    python scripts/decoding_repeated_splits.py --set decoding_pool=current+past   # another read-out, kept beside
    python scripts/decoding_repeated_splits.py --report-only         # table + figure again from the JSON
    python scripts/decoding_repeated_splits.py --pretrain-set pretrain_steps=3000   # another pretrained model

The decoding benchmark (``scripts/benchmark_decoding.py``) scores every method on one pre-declared
test split (``split_seed`` 0: 15 % of the 30-s blocks). On nelpy that split is ~1 min of running,
and its validation partner ranked the methods differently from it. This script repeats the
benchmark's whole protocol on other random assignments of the same 30-s blocks to
train/validation/test (``NeuroformerConfig.split_seed`` = 1, 2, ...; the same 70/15/15 fractions,
blocks, windows, mask rule and model): for each split seed it pretrains a Neuroformer on that
split's training blocks (no labels), refits the nelpy track on that split's training windows,
fine-tunes from the checkpoint and from scratch (fine-tuning seed 0; checkpoint chosen on that
split's validation blocks), fits every baseline on the same rows, and scores each once on that
split's test blocks. Seed 0, the benchmark's split, is left out by default: its numbers are in
``benchmarks/decoding.json`` and it is the split whose results were already seen.

Nothing is chosen here. The fine-tuning settings default to the ones the benchmark's run of the
dataset recorded (``benchmarks/decoding.json`` -> ``datasets.<name>.run``: steps, learning rate,
auxiliary loss weight, ``--set`` config settings), which were chosen on the split-0 validation
split; ``--set`` replaces config settings, and each distinct setting is kept as its own entry of
the JSON, so variants sit side by side. ``--pretrain-set`` replaces the PRETRAINED model's architecture
(``hidden_size``, ``intermediate_size``, ``num_attention_heads``, ``num_hidden_layers``) or its
``pretrain_steps``; such a variant's runs go under ``<output-dir>/pretrain-<settings>/`` (a
checkpoint found there is reused only if its ``config.json`` and step count are the variant's) and
its results are an entry of their own. ``--regression-loss hl_gauss --num-bins K --hl-gauss-sigma-ratio R``
trains the dataset's own regression target of the pretrained and the from-scratch Neuroformer with the
histogram loss (``DecodingTarget(loss="hl_gauss", ...)``: cross-entropy over K value bins against a Gaussian of
sigma R bin widths, prediction the expected bin centre) instead of MSE; the entry's settings record it
(``regression_loss``), each Neuroformer result records the loss with its bins' ``bin_range``, and it is an entry
of its own (the baselines are unchanged). ``--fractions 1.0`` runs only 100 % of the training windows.

Statistics, per fraction of the training windows (the first contiguous block, as the benchmark):
mean +/- sd over split seeds; paired differences (Neuroformer pretrained minus each other method,
per split seed), how many split seeds the difference is > 0 on (lower-is-better metrics: < 0),
and the two-sided Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``: exact for these n when no
difference is zero or tied, else its normal approximation).

Writes ``benchmarks/decoding_repeated_splits.json``, ``benchmarks/decoding_repeated_splits.png``
and the "Decoding over repeated block splits" section of ``BENCHMARKS.md``. Runs go under
``runs/decoding_repeated_splits/<dataset>/split<seed>/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_decoding as bd  # noqa: E402
from benchmarks_md import replace_section, seeds_arg, write_atomic  # noqa: E402

START = "<!-- decoding-repeated-splits:start -->"
END = "<!-- decoding-repeated-splits:end -->"
JSON = ROOT / "benchmarks" / "decoding_repeated_splits.json"
PNG = ROOT / "benchmarks" / "decoding_repeated_splits.png"
BASELINES = ("ridge", "lasso", "glm", "mlp", "gru")
LABELS = {"neuroformer_pretrained": "Neuroformer pretrained + fine-tuned", "neuroformer_scratch": "Neuroformer from scratch",
          "ridge": "Ridge", "lasso": "Lasso", "glm": "GLM", "mlp": "MLP", "gru": "GRU"}


def benchmark_settings(name: str) -> dict:
    """The fine-tuning settings the decoding benchmark recorded for ``name`` (its run line)."""
    path = ROOT / "benchmarks" / "decoding.json"
    run = json.loads(path.read_text())["datasets"].get(name, {}).get("run") if path.is_file() else None
    if not run:
        raise SystemExit(f"{path}: no benchmark run of {name!r} to take the fine-tuning settings from; run "
                         f"`python scripts/benchmark_decoding.py --datasets {name}` first")
    model = ", ".join(f"{k}={v}" for k, v in bd.MODEL.items())
    if run.get("model") != model:  # this script builds bd.MODEL; the benchmark may have run with --hidden-size ...
        raise SystemExit(f"{path}: the benchmark's run of {name!r} used the model {run.get('model')!r}, this script "
                         f"builds {model!r}; rerun the benchmark with the default model first")
    keys = ("pretrain_steps", "finetune_steps", "learning_rate", "eval_steps", "generative_loss_weight",
            "class_weight", "select_on", "config_overrides", "freeze_backbone_steps", "commit")
    return {k: run.get(k) for k in keys}


def validation_share_of_test(name: str, split_seeds: list) -> dict:
    """``{split seed: share}``: the part of each split seed's test time (s) that is split 0's
    validation time, on which the benchmark's fine-tuning settings were chosen (the same 30-s
    blocks, or Steinmetz's trials, are reassigned, so a split seed's test blocks can be split 0's
    validation blocks)."""
    import copy

    from hf_neuroformer.windows import plan_splits

    rec, cfg, _, _ = bd.load_dataset(name)

    def segments(seed: int, split: str) -> np.ndarray:
        c = copy.deepcopy(cfg)
        c.split_seed = seed
        return plan_splits(rec, c).segments[split]

    val0 = segments(0, "validation")
    out = {}
    for sd in split_seeds:
        test = segments(sd, "test")
        both = sum(max(0.0, min(b, d) - max(a, c)) for a, b in val0 for c, d in test)
        out[str(sd)] = float(both / np.sum(test[:, 1] - test[:, 0]))
    return out


def paired(results: dict, split_seeds: list, fraction: str, metric: str, higher: bool, a: str, b: str) -> dict:
    """Per-split differences ``a - b`` of ``metric`` and their summary (wins for ``a``, Wilcoxon p)."""
    from scipy.stats import wilcoxon

    d = []
    for s in split_seeds:
        r = results[str(s)].get(fraction, {})
        if a in r and b in r and np.isfinite(r[a][metric]) and np.isfinite(r[b][metric]):
            d.append(r[a][metric] - r[b][metric])
    d = np.asarray(d)
    wins = int((d > 0).sum() if higher else (d < 0).sum())
    p = float(wilcoxon(d).pvalue) if len(d) >= 2 and np.any(d != 0) else float("nan")
    return {"diff": d.tolist(), "mean": float(d.mean()) if len(d) else float("nan"),
            "sd": float(d.std(ddof=1)) if len(d) > 1 else float("nan"), "wins": wins, "n": int(len(d)), "wilcoxon_p": p}


def summarise(entry: dict) -> dict:
    name = entry["dataset"]
    metric, _, higher = bd.PRIMARY[bd.DATASETS[name]["kind"]]
    seeds = entry["split_seeds"]
    out = {}
    for f in entry["fractions"]:
        fk = str(f)
        methods = {}
        for m in ("neuroformer_pretrained", "neuroformer_scratch") + BASELINES:
            v = [entry["results"][str(s)][fk][m][metric] for s in seeds if m in entry["results"][str(s)].get(fk, {})]
            v = [x for x in v if x is not None and np.isfinite(x)]  # the table says n when some are missing
            methods[m] = {"mean": float(np.mean(v)) if v else float("nan"),
                          "sd": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"), "n": len(v), "per_split": v}
        others = [m for m in ("neuroformer_scratch",) + BASELINES]
        out[fk] = {"methods": methods, "paired": {m: paired(entry["results"], seeds, fk, metric, higher,
                                                            "neuroformer_pretrained", m) for m in others}}
    return out


#: what ``--pretrain-set`` may replace: the pretrained model's architecture (:data:`benchmark_decoding.MODEL`)
#: and the number of pretraining steps
PRETRAIN_KEYS = tuple(bd.MODEL) + ("pretrain_steps",)


def pretrain_setting(text: str) -> tuple:
    """``KEY=VALUE`` of ``--pretrain-set`` -> ``(key, int)``: KEY one of :data:`PRETRAIN_KEYS`, VALUE an integer >= 1."""
    key, sep, value = text.partition("=")
    if not sep or key not in PRETRAIN_KEYS:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY one of {', '.join(PRETRAIN_KEYS)}, got {text!r}")
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1 or str(number) != value.strip():
        raise argparse.ArgumentTypeError(f"{key}: expected an integer >= 1, got {value!r}")
    return key, number


def pretrain_variant(parser, pairs: list, name: str) -> dict:
    """The ``--pretrain-set`` pairs as a dict (sorted by key), checked before anything runs: a key given
    twice, or an architecture ``NeuroformerConfig`` refuses for ``name``, is a ``parser.error`` naming it."""
    from hf_neuroformer import NeuroformerConfig

    sets = {}
    for k, v in pairs:
        if k in sets:
            parser.error(f"--pretrain-set: {k} given twice ({sets[k]} and {v})")
        sets[k] = v
    try:
        NeuroformerConfig(**bd.DATASETS[bd.source_of(name)]["config"], **variant_model(sets))
    except ValueError as err:
        parser.error(f"--pretrain-set: {err}")
    return dict(sorted(sets.items()))


def variant_model(sets: dict | None) -> dict:
    """The pretrained model's architecture: :data:`benchmark_decoding.MODEL` with the ``--pretrain-set`` keys."""
    return dict(bd.MODEL, **{k: v for k, v in (sets or {}).items() if k != "pretrain_steps"})


def variant_root(out: Path, sets: dict | None) -> Path:
    """Where a pretraining variant's runs go: ``out`` for the current model (no ``--pretrain-set``), else a
    folder of ``out`` named by its settings, so that no variant's checkpoint is found in another's place."""
    if not sets:
        return Path(out)
    return Path(out) / ("pretrain-" + "-".join(f"{k}{v}" for k, v in sorted(sets.items())))


def check_reusable(pre: Path, model: dict, steps: int, flag: str = "--output-dir") -> None:
    """A pretrained checkpoint found on disk is reused only if it is this script's: the same
    architecture and split seed (``config.json``) and the same number of steps (``metrics.json``);
    else a ``SystemExit`` naming ``flag`` (where the checkpoint was looked for)."""
    cfg = json.loads((pre / "config.json").read_text())
    wrong = {k: (cfg.get(k), v) for k, v in model.items() if cfg.get(k) != v}
    done = json.loads((pre / "metrics.json").read_text()).get("total_steps") if (pre / "metrics.json").is_file() else None
    if done != steps:
        wrong["pretraining steps"] = (done, steps)
    if wrong:
        raise SystemExit(f"{flag}: the checkpoint {pre} was not pretrained with these settings "
                         f"(found, wanted: {wrong}); delete it or give another {flag}")


def check_regression_loss(parser, args) -> dict | None:
    """``--regression-loss`` / ``--num-bins`` / ``--hl-gauss-sigma-ratio`` checked before anything runs:
    ``None`` for MSE, else ``{"loss": "hl_gauss", "num_bins": K, "hl_gauss_sigma_ratio": R}`` (the keyword
    arguments of ``DecodingTarget``). A dataset whose target is not a regression, bins or a ratio given without
    hl_gauss, or values :func:`hf_neuroformer.argument_checks.check_hl_gauss_settings` refuses, are a
    ``parser.error`` naming the option and the value."""
    if args.regression_loss != "hl_gauss":
        if args.num_bins is not None or args.hl_gauss_sigma_ratio is not None:
            parser.error("--num-bins / --hl-gauss-sigma-ratio: only with --regression-loss hl_gauss")
        return None
    from hf_neuroformer.argument_checks import check_hl_gauss_settings

    kind = bd.DATASETS[args.dataset]["kind"]
    if kind != "regression":
        parser.error(f"--regression-loss hl_gauss: {args.dataset}'s target is {kind}, not a regression")
    try:
        check_hl_gauss_settings(args.num_bins, args.hl_gauss_sigma_ratio, "--{}")
    except ValueError as exc:
        parser.error(str(exc).replace("--num_bins", "--num-bins").replace("--hl_gauss_sigma_ratio",
                                                                         "--hl-gauss-sigma-ratio"))
    return {"loss": "hl_gauss", "num_bins": args.num_bins, "hl_gauss_sigma_ratio": args.hl_gauss_sigma_ratio}


def _same_task(got: tuple, expected: tuple) -> None:
    if tuple(got) != tuple(expected):
        raise RuntimeError(f"run_pool returned the result of task {got!r} in the place of task {expected!r}: results "
                           "would be assigned to the wrong split seed")


def run_entry(name: str, split_seeds: list, fractions: list, settings: dict, workers: int, out: Path,
              pretrain_only: bool = False):
    model = variant_model(settings.get("pretrain_overrides"))
    out = variant_root(out, settings.get("pretrain_overrides"))
    opts_base = dict(quick=False, device="cpu", learning_rate=settings["learning_rate"],
                     eval_steps=settings["eval_steps"], generative_loss_weight=settings["generative_loss_weight"],
                     config_overrides=dict(settings["config_overrides"] or {}), select_on=settings["select_on"],
                     class_weight=settings["class_weight"],
                     freeze_backbone_steps=settings.get("freeze_backbone_steps") or 0,
                     regression_loss=settings.get("regression_loss"))
    opts = {s: dict(opts_base, model=dict(model, split_seed=s)) for s in split_seeds}
    pre = {s: bd.pretrained_dir(out, name, s) for s in split_seeds}
    t0 = time.perf_counter()
    for s in split_seeds:
        if (pre[s] / "model.safetensors").is_file():
            check_reusable(pre[s], dict(model, split_seed=s), settings["pretrain_steps"])
    todo = [(name, str(pre[s]), settings["pretrain_steps"], opts[s]) for s in split_seeds
            if not (pre[s] / "model.safetensors").is_file()]
    pretraining = {}
    for s, (_, info) in zip([t[1] for t in todo], bd.run_pool(bd.pretrain_task, todo, workers, "pretraining")):
        pretraining[s] = info
    if pretrain_only:
        return None
    keep = ("validation/id_nll", "test/id_nll", "test/unigram_id_nll", "best_step", "total_steps", "train_time_s")
    pretrain_record = {}
    for s in split_seeds:
        m = json.loads((pre[s] / "metrics.json").read_text())
        pretrain_record[str(s)] = {"reused": str(pre[s]) not in pretraining, **{k: m.get(k) for k in keep}}
    # the split plans (and the nelpy track fitted on each split's training windows), for the record
    plans = {}
    for s in split_seeds:
        plan = json.loads((pre[s] / "splits.json").read_text())
        _, _, _, notes = bd.load_dataset(name, False, opts[s]["model"])
        plans[str(s)] = {"test_segments": plan.get("segments", {}).get("test"), "mask_counts": notes.get("mask_counts")}
    results = {str(s): {str(f): {} for f in fractions} for s in split_seeds}
    base_tasks = [(name, str(pre[s]), f, (0,), opts[s]) for s in split_seeds for f in fractions]
    metric = bd.PRIMARY[bd.DATASETS[name]["kind"]][0]
    # the results carry no split seed: it is the task's, so run_pool must (and does) return them in task order;
    # what they do carry is checked against the task, so that a reordering fails loudly instead of mixing splits
    for task, (key, res) in zip(base_tasks, bd.run_pool(bd.baselines_task, base_tasks, workers, "baselines")):
        _same_task(key, (task[0], task[2]))
        f, s = task[2], task[4]["model"]["split_seed"]
        for b in BASELINES:
            if b in res["results"]:
                results[str(s)][str(f)][b] = res["results"][b]["per_seed"][0]
        results[str(s)][str(f)]["n_train_windows"] = res.get("n_train")
        results[str(s)][str(f)]["n_test_windows"] = res.get("n_test")
    ft = [(name, str(pre[s]), str(out / name / f"split{s}" / f"ft_{init}_{f}"), f, 0, init, settings["finetune_steps"],
           opts[s]) for f in sorted(fractions, reverse=True) for s in split_seeds for init in ("pretrained", "scratch")]
    for task, (key, r) in zip(ft, bd.run_pool(bd.finetune_task, ft, workers, "fine-tuning")):
        _same_task(key, (task[0], task[3], task[4], task[5]))
        f, init, s = task[3], task[5], task[7]["model"]["split_seed"]
        results[str(s)][str(f)][f"neuroformer_{init}"] = {**r["test"], "validation_" + metric: r["validation"].get(metric),
                                                          "best_step": r["best_step"],
                                                          # the loss as the decoder's config holds it (HL-Gauss: with
                                                          # the bins' range); only when it is not MSE
                                                          **({"regression_loss": r["regression_loss"]}
                                                             if settings.get("regression_loss") else {})}
    return {"dataset": name, "split_seeds": split_seeds, "fractions": fractions, "settings": settings,
            "run": {"commit": bd.git_commit(), "date": time.strftime("%Y-%m-%d"), "machine": bd.machine_description("cpu"),
                    "workers": workers, "minutes": (time.perf_counter() - t0) / 60,
                    "model": ", ".join(f"{k}={v}" for k, v in model.items()),
                    "pretraining_reused": [s for s in split_seeds if str(pre[s]) not in pretraining]},
            "pretraining": pretrain_record, "plans": plans, "results": results}


def entry_key(e: dict) -> str:
    """Entries with the same dataset, settings, split seeds and fractions replace each other; others sit beside."""
    key = [e["dataset"], e["settings"].get("config_overrides") or {}, e["split_seeds"], e["fractions"]]
    if e["settings"].get("freeze_backbone_steps"):  # entries written before it existed keep their keys
        key.append({"freeze_backbone_steps": e["settings"]["freeze_backbone_steps"]})
    key.append({"learning_rate": e["settings"].get("learning_rate")})
    if e["settings"].get("pretrain_overrides"):  # another pretrained model: its own entry
        key.append({"pretrain_overrides": e["settings"]["pretrain_overrides"]})
    if e["settings"].get("regression_loss"):  # another loss of the regression target (HL-Gauss): its own entry
        key.append({"regression_loss": e["settings"]["regression_loss"]})
    return json.dumps(key, sort_keys=True)


def _f(v, d=3):
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{d}f}"


def _cell(m: dict, n_splits: int) -> str:
    """``mean ± sd``, with ``(n=k)`` when only k of the split seeds gave a finite value."""
    return f"{_f(m['mean'])} ± {_f(m['sd'])}" + (f" (n={m['n']})" if m["n"] != n_splits else "")


def write_section(doc: dict) -> str:
    lines = [START, "## Decoding over repeated block splits", "",
             "Written by `scripts/decoding_repeated_splits.py`: the decoding benchmark's whole protocol (pretraining, "
             "track fit, fine-tuning from the checkpoint and from scratch, every baseline on the same rows) repeated on "
             "other random assignments of the same 30-s blocks (Steinmetz: the same whole trials) to train / validation / "
             "test (`split_seed` 1, 2, ...; 70/15/15). One fine-tuning seed (0) per split; settings as the benchmark's run of the dataset (chosen on "
             "split 0's validation), nothing chosen here. Paired: Neuroformer pretrained minus the method, per split "
             "seed; wins = split seeds where Neuroformer pretrained is better; p = two-sided Wilcoxon signed-rank "
             "(`scipy.stats.wilcoxon`).", ""]
    for e in doc["entries"]:
        name = e["dataset"]
        metric, label, higher = bd.PRIMARY[bd.DATASETS[name]["kind"]]
        st, run = e["settings"], e["run"]
        parts = [f"{k}={v}" for k, v in (st.get("config_overrides") or {}).items()]
        if st.get("freeze_backbone_steps"):
            parts.append(f"backbone frozen for the first {st['freeze_backbone_steps']} steps")
        run_sets = ", ".join(parts) or "none"  # the run line names the learning rate itself
        if st.get("learning_rate") not in (None, 5e-4):  # finetune's default: the header names another
            parts.append(f"learning rate {st['learning_rate']:g}")
        if st.get("regression_loss"):  # the run line says MSE nowhere: the header names another loss
            rl = st["regression_loss"]
            parts.append(f"{bd.DATASETS[name]['target']} trained with HL-Gauss ({rl['num_bins']} bins, sigma "
                          f"{rl['hl_gauss_sigma_ratio']:g} bin widths)" if rl["loss"] == "hl_gauss"
                          else f"regression loss {rl['loss']}")
        if st.get("pretrain_overrides"):  # the run line names the model and steps themselves
            parts.append("pretrained model " + ", ".join(f"{k}={v}" for k, v in st["pretrain_overrides"].items()))
        sets = ", ".join(parts) or "none"
        lines += [f"### {name}, {bd.DATASETS[name]['target']} ({label}), config settings: {sets}", "",
                  f"Run: commit `{run['commit']}` on {run['date']}, {run['machine']}, {run['workers']} worker process(es) "
                  f"x 1 thread, {run['minutes']:.1f} min. Neuroformer {run['model']}, pretrained {st['pretrain_steps']} steps "
                  f"per split, fine-tuned {st['finetune_steps']} steps (AdamW {st['learning_rate']:g}, auxiliary "
                  f"next-spike loss weight {st['generative_loss_weight']:g}{', ' + run_sets if run_sets != 'none' else ''}; "
                  "checkpoint on that split's "
                  f"validation {metric}, every {st['eval_steps']} steps). Split seeds {', '.join(map(str, e['split_seeds']))}.", ""]
        share = e["validation_share_of_test"]
        lines += [f"Split 0's validation blocks, where these settings were chosen, are {np.mean(list(share.values())):.0%} "
                  "of these splits' test time on average (per split seed: "
                  + ", ".join(f"{sd}: {v:.0%}" for sd, v in share.items())
                  + "), so the test scores here are not wholly independent of that choice.", ""]
        s = e["summary"]
        fr = [str(f) for f in e["fractions"]]
        lines += ["| method | " + " | ".join(f"{float(f):.0%}" for f in fr) + " |", "|---" * (len(fr) + 1) + "|"]
        for m in ("neuroformer_pretrained", "neuroformer_scratch") + BASELINES:
            lines.append(f"| {LABELS[m]} | " + " | ".join(_cell(s[f]["methods"][m], len(e["split_seeds"])) for f in fr) + " |")
        lines += ["", "Neuroformer pretrained minus ... (mean ± sd of the per-split difference; wins / splits; p):", "",
                  "| vs | " + " | ".join(f"{float(f):.0%}" for f in fr) + " |", "|---" * (len(fr) + 1) + "|"]
        for m in ("neuroformer_scratch",) + BASELINES:
            cells = []
            for f in fr:
                p = s[f]["paired"][m]
                cells.append(f"{p['mean']:+.3f} ± {_f(p['sd'])}; {p['wins']}/{p['n']}; p={_f(p['wilcoxon_p'], 3)}")
            lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
        full = str(1.0) if str(1.0) in s else fr[-1]
        per = [(sd, e["results"][str(sd)][full]) for sd in e["split_seeds"]]
        lines += ["", f"Per split seed at {float(full):.0%} ({metric}; Neuroformer pretrained / GRU / scratch; test windows): "
                  + "; ".join(f"{sd}: {_f(r['neuroformer_pretrained'][metric])} / {_f(r['gru'][metric])} / "
                              f"{_f(r['neuroformer_scratch'][metric])} ({r.get('n_test_windows')})" for sd, r in per) + "."]
        lines += [""] + list(e.get("notes_md", [])) + ([""] if e.get("notes_md") else [])
    lines += [f"![repeated splits]({PNG.relative_to(ROOT).as_posix()})", "", END]
    return "\n".join(lines)


def merge_entry(doc: dict, entry: dict) -> dict:
    """Put ``entry`` into ``doc["entries"]``: in place of the entries with its ``entry_key`` (at the
    first one's position), else at the end; the others are kept as they are. The notes written
    for a replaced entry's numbers are not shown any more but kept, with that run's commit and
    date, in ``entry["superseded_notes"]`` (a list, oldest first), and said so on stdout."""
    key = entry_key(entry)
    old = [e for e in doc["entries"] if entry_key(e) == key]
    superseded = []
    for e in old:
        superseded += e.get("superseded_notes", [])
        if e.get("notes_md"):
            superseded.append({"commit": e.get("run", {}).get("commit"), "date": e.get("run", {}).get("date"),
                               "notes_md": e["notes_md"]})
            print(f"[repeated splits] the {len(e['notes_md'])} notes of the replaced {e['dataset']} entry (run "
                  f"{e.get('run', {}).get('commit')}) are kept under superseded_notes, not shown", flush=True)
    if superseded:
        entry["superseded_notes"] = superseded
    entry["notes_md"] = []
    at = next((i for i, e in enumerate(doc["entries"]) if entry_key(e) == key), len(doc["entries"]))
    rest = [e for e in doc["entries"] if entry_key(e) != key]
    doc["entries"] = rest[:at] + [entry] + rest[at:]
    return doc


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = doc["entries"]
    fig, axes = plt.subplots(len(entries), 2, figsize=(11, 4 * len(entries)), squeeze=False)
    for row, e in zip(axes, entries):
        name = e["dataset"]
        metric, label, higher = bd.PRIMARY[bd.DATASETS[name]["kind"]]
        sets = ", ".join(f"{k}={v}" for k, v in (e["settings"].get("config_overrides") or {}).items()) or "no config settings"
        full = str(1.0) if str(1.0) in e["summary"] else str(e["fractions"][-1])
        ax = row[0]
        methods = ("neuroformer_pretrained", "neuroformer_scratch") + BASELINES
        for sd in e["split_seeds"]:
            r = e["results"][str(sd)][full]
            ax.plot(range(len(methods)), [r.get(m, {}).get(metric, np.nan) for m in methods], "o-", alpha=0.5, lw=1)
        ax.set_xticks(range(len(methods)), [LABELS[m].replace("Neuroformer ", "NF ").replace(" + fine-tuned", "")
                                             for m in methods], rotation=30, ha="right")
        ax.set_ylabel(f"test {label}")
        ax.set_title(f"{name}, {float(full):.0%} of train: one line per split seed\n({sets})", fontsize=9)
        ax = row[1]
        fr = [str(f) for f in e["fractions"]]
        for j, other in enumerate(("neuroformer_scratch", "gru")):
            for i, f in enumerate(fr):
                d = e["summary"][f]["paired"][other]["diff"]
                ax.scatter(np.full(len(d), i + (j - 0.5) * 0.25), d, s=18, color=f"C{j}",
                           label=f"minus {LABELS[other]}" if i == 0 else None)
        ax.axhline(0, color="k", lw=0.8)
        diffs = np.abs(np.concatenate([e["summary"][f]["paired"][o]["diff"] for f in fr
                                       for o in ("neuroformer_scratch", "gru")] + [[0.0]]))
        typical = float(np.median(diffs[diffs > 0])) if np.any(diffs > 0) else 0.0
        if typical > 0 and diffs.max() > 20 * typical:
            # a few huge differences (R² far below 0 at 1 %) would flatten the others into the zero line
            ax.set_yscale("symlog", linthresh=typical)
            ax.set_title("paired differences per split seed (symmetric log scale)", fontsize=9)
        ax.set_xticks(range(len(fr)), [f"{float(f):.0%}" for f in fr])
        ax.set_xlabel("fraction of training windows")
        ax.set_ylabel(f"NF pretrained minus method ({label})\n{'above' if higher else 'below'} 0: NF pretrained better")
        if ax.get_yscale() == "linear":
            ax.set_title("paired differences per split seed", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    from hf_neuroformer.plotting import save_figure

    save_figure(fig, path, dpi=120)  # atomic
    plt.close(fig)


def render(doc: dict) -> None:
    for e in doc["entries"]:
        e["summary"] = summarise(e)
        if "validation_share_of_test" not in e:  # entries written before it was recorded
            e["validation_share_of_test"] = validation_share_of_test(e["dataset"], e["split_seeds"])
    write_atomic(JSON, json.dumps(doc, indent=1))
    plot(doc, PNG)
    section = write_section(doc)
    replace_section(ROOT / "BENCHMARKS.md", START, END, section)
    print(section)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--dataset", default="nelpy", choices=list(bd.DATASETS))
    p.add_argument("--split-seeds", type=lambda t: seeds_arg(t, "split seeds", "1,2,3"), default=list(range(1, 9)),
                   help="comma-separated split seeds (NeuroformerConfig.split_seed); default 1-8 (0 is the benchmark's)")
    p.add_argument("--fractions", type=lambda t: list(bd.fractions_arg(t)), default=[0.01, 0.05, 0.1, 1.0],
                   help="fractions of the training windows (first contiguous block); default %(default)s")
    p.add_argument("--set", dest="config_overrides", metavar="KEY=VALUE", action="append", type=bd.config_setting,
                   default=[], help="replaces one of the benchmark run's config settings; " + bd.SET_HELP)
    p.add_argument("--workers", type=int, default=2, help="worker processes (each one torch / BLAS thread)")
    p.add_argument("--output-dir", default=str(ROOT / "runs" / "decoding_repeated_splits"),
                   help="runs go under <output-dir>/<dataset>/split<seed>/; a split's pretrained checkpoint there is "
                        "reused (pretraining does not read the fine-tuning settings)")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="replaces the benchmark run's fine-tuning learning rate (AdamW)")
    p.add_argument("--freeze-backbone-steps", type=int, default=None,
                   help="replaces the benchmark run's freeze_backbone_steps (only the new heads train for the first "
                        "N fine-tuning steps)")
    p.add_argument("--pretrain-set", dest="pretrain_sets", metavar="KEY=VALUE", action="append", type=pretrain_setting,
                   default=[], help="replaces one setting of the PRETRAINED model, repeatable; KEY one of "
                   + ", ".join(PRETRAIN_KEYS) + " (default: the benchmark's model, " + ", ".join(
                       f"{k}={v}" for k, v in bd.MODEL.items()) + ", and its run's pretraining steps); VALUE an integer "
                   ">= 1. Such a variant's runs go under <output-dir>/pretrain-<settings>/, and it is an entry of its own")
    p.add_argument("--pretrain-only", action="store_true",
                   help="only pretrain the split seeds' checkpoints (for decoding_validation_sweep.py --split-seed); "
                        "nothing is fine-tuned, scored or written to the table")
    p.add_argument("--regression-loss", choices=("mse", "hl_gauss"), default="mse",
                   help="loss of the dataset's own regression target when the Neuroformer is fine-tuned: mse (default) "
                        "or hl_gauss (the histogram loss, DecodingTarget's loss; needs --num-bins and "
                        "--hl-gauss-sigma-ratio); recorded in the entry's settings, and an entry of its own")
    p.add_argument("--num-bins", type=int, default=None,
                   help="with --regression-loss hl_gauss: value bins, an integer >= 2 (e.g. 64)")
    p.add_argument("--hl-gauss-sigma-ratio", type=float, default=None,
                   help="with --regression-loss hl_gauss: the Gaussian's sigma in bin widths, > 0 (e.g. 0.75)")
    p.add_argument("--report-only", action="store_true", help=f"rewrite the table and figure from {JSON.name}")
    args = p.parse_args(argv)
    doc = json.loads(JSON.read_text()) if JSON.is_file() else {"entries": []}
    if args.report_only:
        if not doc["entries"]:
            raise SystemExit(f"{JSON}: nothing to report; run without --report-only first")
        render(doc)
        return 0
    settings = benchmark_settings(args.dataset)
    sets = dict(settings["config_overrides"] or {})
    sets.update(bd.check_settings(p, args.config_overrides, [args.dataset]))
    settings["config_overrides"] = sets
    variant = pretrain_variant(p, args.pretrain_sets, args.dataset)
    if variant:
        settings["pretrain_overrides"] = variant
        settings["pretrain_steps"] = variant.get("pretrain_steps", settings["pretrain_steps"])
    if args.learning_rate is not None:
        if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
            p.error(f"--learning-rate: expected a finite number > 0, got {args.learning_rate}")
        settings["learning_rate"] = args.learning_rate
    if args.freeze_backbone_steps is not None:
        if not 0 <= args.freeze_backbone_steps <= settings["finetune_steps"]:
            p.error(f"--freeze-backbone-steps: expected 0 to the benchmark's {settings['finetune_steps']} fine-tuning "
                    f"steps, got {args.freeze_backbone_steps}")
        settings["freeze_backbone_steps"] = args.freeze_backbone_steps
    regression_loss = check_regression_loss(p, args)
    if regression_loss:  # MSE entries keep the settings (and keys) they had before the option existed
        settings["regression_loss"] = regression_loss
    print(f"[repeated splits] {args.dataset}: split seeds {args.split_seeds}, fractions {args.fractions}, settings "
          f"{settings}", flush=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    bd._threads()
    entry = run_entry(args.dataset, args.split_seeds, args.fractions, settings, args.workers, Path(args.output_dir),
                      pretrain_only=args.pretrain_only)
    if entry is None:
        print(f"[repeated splits] pretrained checkpoints under "
              f"{variant_root(Path(args.output_dir), variant) / bd.source_of(args.dataset)}")
        return 0
    merge_entry(doc, entry)
    render(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
