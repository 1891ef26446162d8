"""Refit the classical decoders of the behaviour-decoding table with the current code, on the
same rows, and set them beside the table's numbers (issue 4).

Why: the table in ``BENCHMARKS.md`` ("Behaviour decoding") was written by
``scripts/benchmark_decoding.py`` at the commits its run lines name. Three later fixes change
what the baselines compute: the Poisson GLM's alpha grid now scales with the target's training mean
(``6c02515``: on nelpy's x in px, cross-validation wanted an alpha past the old grid's end), and
a feature constant over the training windows (a unit silent there) now reads its training value
at prediction instead of moving the MLP's and GRU's predictions through untrained weights
(``93f1881``); and the time-blocked cross-validation folds that choose ridge's, lasso's and the
GLM's alpha leave out the ``n_history_bins`` training windows on each side of each validation
block, which share bins with it through their history features (``ab69518``; with overlapping
training windows, as nelpy's ``window_stride=0.125``, more windows share bins: a later fix purges
``hf_neuroformer.baselines.shared_bin_windows`` of them, 9 for nelpy, ``14c7fc2``; the MLP's and
GRU's early-stopping block is purged the same way, ``3dadfd2``). Rerunning the
whole table (pretraining and 90 fine-tuning runs per dataset) is not needed for that: only the
baselines changed, so only they are refitted here.

How: each dataset is loaded as ``benchmark_decoding.py`` loads it (same recording, window mask,
window settings and, from ``benchmarks/decoding.json``, the same fine-tuning ``config_overrides``
that set the training rows, e.g. nelpy's ``window_stride=0.125``); the split plan and tokenizer
are made as ``neuroformer train`` makes them (``plan_splits``; ``add_units``), which is what the
pretrained checkpoints' ``splits.json`` holds (nelpy's is also checked against the plan its
track was fitted on); then ``benchmark_decoding.baselines_task`` runs unchanged. Nothing is
chosen here: the baselines' hyperparameters come from their own time-blocked cross-validation on
the training block, as before.

Writes ``benchmarks/decoding_baselines_recheck.json`` and the "Baselines refitted" section of
``BENCHMARKS.md``; prints the same table. A ``--datasets`` subset refits those datasets only and
keeps the others' stored results, each with the run (commit, date) that refitted it. About 4 min on 2 CPU cores (4.2 min at baea91f).

Usage: ``python scripts/decoding_baselines_recheck.py [--datasets nelpy,a2929] [--workers 2]``
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_decoding as bd  # noqa: E402
from benchmarks_md import replace_section, write_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- decoding-baselines-recheck:start -->", "<!-- decoding-baselines-recheck:end -->"
BASELINES = ("ridge", "lasso", "glm", "mlp", "gru")


def prepare(name: str, run: dict, folder: Path, model: dict | None = None) -> tuple:
    """Write the tokenizer and ``splits.json`` that ``neuroformer train`` would write for ``name``
    into ``folder``; return the task options for :func:`benchmark_decoding.baselines_task`.
    ``model``: the config's architecture and split settings (default :data:`benchmark_decoding.MODEL`;
    ``decoding_repeated_splits_recheck.py`` adds a ``split_seed``)."""
    from hf_neuroformer import NeuroformerTokenizer
    from hf_neuroformer.windows import plan_splits

    model = dict(bd.MODEL if model is None else model)
    rec, cfg, mask, _ = bd.load_dataset(name, False, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = NeuroformerTokenizer.from_config(cfg)
        tok.add_units(rec)
        plan = plan_splits(rec, cfg)
    bd.check_plan(mask, plan)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(folder)
    write_atomic(folder / "splits.json", json.dumps(plan.to_dict()))
    opts = dict(quick=False, model=model, config_overrides=dict(run.get("config_overrides") or {}))
    return str(folder), opts


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(bd.DATASETS), help="comma-separated subset of "
                   + ",".join(bd.DATASETS))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--report-only", action="store_true", help="rewrite the section from "
                   "benchmarks/decoding_baselines_recheck.json without fitting")
    args = p.parse_args(argv)
    if args.report_only:
        out = json.loads((ROOT / "benchmarks" / "decoding_baselines_recheck.json").read_text())
        replace_section(ROOT / "BENCHMARKS.md", START, END, write_section(out))
        return
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in bd.DATASETS]
    if unknown:
        raise SystemExit(f"--datasets: unknown {unknown}; expected among {list(bd.DATASETS)}")
    table = json.loads((ROOT / "benchmarks" / "decoding.json").read_text())
    seeds, fractions = table["meta"]["seeds"], table["meta"]["fractions"]
    bd._threads()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="baselines_recheck_") as tmp:
        tasks = []
        for n in names:
            pre, opts = prepare(n, table["datasets"][n]["run"], Path(tmp) / n)
            tasks += [(n, pre, f, seeds, opts) for f in fractions]
        results = bd.run_pool(bd.baselines_task, tasks, args.workers, "baselines")
    run = {"commit": bd.git_commit(), "date": time.strftime("%Y-%m-%d"), "minutes": (time.perf_counter() - t0) / 60,
           "datasets": names}
    out = {"seeds": seeds, "fractions": fractions, "datasets": {}}
    for (n, f), res in results:
        metric = bd.PRIMARY[bd.DATASETS[n]["kind"]][0]
        d = out["datasets"].setdefault(n, {"metric": metric, "run": run, "methods": {}})
        old = table["datasets"][n]["baselines"][str(f)]["results"]
        for m in BASELINES:
            now = [row[metric] for row in res["results"][m]["per_seed"]]
            was = [row[metric] for row in old[m]["per_seed"]]
            d["methods"].setdefault(m, {})[str(f)] = {"now": now, "table": was}
    out = keep_other_datasets(out, ROOT / "benchmarks" / "decoding_baselines_recheck.json")
    write_atomic(ROOT / "benchmarks" / "decoding_baselines_recheck.json", json.dumps(out, indent=1))
    section = write_section(out)
    replace_section(ROOT / "BENCHMARKS.md", START, END, section)
    print(section)


def _run_of(d: dict, stored: dict) -> dict:
    """The run that refitted dataset entry ``d``: its own ``run``, or (a file written before runs were
    kept per dataset) the file's top-level commit, date and minutes, with every dataset it held."""
    return d.get("run") or {k: stored[k] for k in ("commit", "date", "minutes")} | {"datasets": list(stored["datasets"])}


def keep_other_datasets(out: dict, path: Path) -> dict:
    """``out`` with the datasets a ``--datasets`` subset run did not refit taken from the stored
    results at ``path`` (each with the run that refitted it), in ``benchmark_decoding.DATASETS`` order;
    ``out`` alone where there is no stored file or it used other seeds or fractions (its figures
    would not compare). Before, a subset run replaced the file and the section with its datasets only."""
    if not path.exists():
        return out
    stored = json.loads(path.read_text())
    if stored.get("seeds") != out["seeds"] or stored.get("fractions") != out["fractions"]:
        dropped = [n for n in stored.get("datasets", {}) if n not in out["datasets"]]
        if dropped:
            print(f"[recheck] {path}: stored results of {', '.join(dropped)} used seeds {stored.get('seeds')} / "
                  f"fractions {stored.get('fractions')}, this run {out['seeds']} / {out['fractions']}: not kept "
                  "(refit them with --datasets)", file=sys.stderr)
        return out
    merged = {n: out["datasets"][n] if n in out["datasets"]
              else stored["datasets"][n] | {"run": _run_of(stored["datasets"][n], stored)}
              for n in bd.DATASETS if n in out["datasets"] or n in stored["datasets"]}
    return out | {"datasets": merged}


def _ms(v):
    import numpy as np

    v = np.asarray(v, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def write_section(out: dict) -> str:
    runs = []
    for d in out["datasets"].values():
        r = _run_of(d, out)
        if r not in runs:
            runs.append(r)
    said = "; ".join(f"commit `{r['commit']}` on {r['date']}, {r['minutes']:.1f} min on 2 CPU cores ("
                     f"{', '.join(n for n, d in out['datasets'].items() if _run_of(d, out) == r)})" for r in runs)
    lines = [START, "## Baselines refitted with the current code (`scripts/decoding_baselines_recheck.py`)", "",
             f"Run{'s' if len(runs) > 1 else ''}: {said}. The classical "
             "decoders of the behaviour-decoding table, refitted on the same rows, splits, targets and seeds "
             f"({out['seeds']}) after the fixes to them (`6c02515`: the Poisson GLM's alpha grid scales with the "
             "target's training mean; `93f1881`: a unit silent in the training block reads its training value at "
             "prediction; `ab69518`: the cross-validation folds that choose ridge's, lasso's and the GLM's alpha leave "
             "out the training windows that share history bins with the validation block; `14c7fc2`: with "
             "overlapping training windows, as nelpy's `window_stride=0.125`, that is every window sharing a bin, 9 "
             "on each side for nelpy where 4 were left out; `3dadfd2`: the MLP's and GRU's early-stopping block is "
             "purged the same way; `986e3aa`: classification folds keep two classes with the purge, or the fit says "
             "it fell back; `f573163`: the GRU's class weights count only the windows it fits, which moves the "
             "Steinmetz GRU). Each cell: now (the "
             "table's value, from the code of its run line; Steinmetz's baseline rows, rerun at `7957bb4`, already "
             "have the first two fixes); mean ± sd over seeds. The Neuroformer rows of the table do not read this code and are "
             "unchanged.", ""]
    for n, d in out["datasets"].items():
        deg = "deg" in d["metric"]
        fmt = (lambda m, s: f"{m:.1f} ± {s:.1f}") if deg else (lambda m, s: f"{m:.3f} ± {s:.3f}")
        lines += [f"### {n}: {d['metric']}", "", "| method | " + " | ".join(f"{float(f):.0%}" for f in out["fractions"])
                  + " |", "|---" * (len(out["fractions"]) + 1) + "|"]
        for m, by_f in d["methods"].items():
            cells = [f"{fmt(*_ms(v['now']))} ({fmt(*_ms(v['table']))})" for v in by_f.values()]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        higher = bd.PRIMARY[bd.DATASETS[n]["kind"]][2]
        full = str(out["fractions"][-1])
        best = {}
        for when in ("now", "table"):
            means = {m: _ms(by_f[full][when])[0] for m, by_f in d["methods"].items()}
            m = (max if higher else min)(means, key=means.get)
            best[when] = f"{m} {fmt(*_ms(d['methods'][m][full][when]))}"
        lines += ["", f"Best baseline at {float(full):.0%}: now {best['now']}; in the table {best['table']}."]
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
