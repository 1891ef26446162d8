"""Refit the classical decoders of "Decoding over repeated block splits" with the current code, on
the same rows of every split seed, and set the stored Neuroformer results beside them (issue 4).

    python scripts/decoding_repeated_splits_recheck.py --datasets nelpy,a2929 --workers 2
    python scripts/decoding_repeated_splits_recheck.py --report-only

Why: ``benchmarks/decoding_repeated_splits.json`` (``scripts/decoding_repeated_splits.py``) scored
the baselines before the fixes that ``scripts/decoding_baselines_recheck.py`` refits them after
(purged cross-validation folds and early-stopping block, ``shared_bin_windows``; two-class folds).
On split 0 that dropped nelpy's GRU at 100 % from R² 0.594 to 0.557, so the repeated-split
comparison (Neuroformer vs the baselines over split seeds) still holds the old baseline numbers.
Only the baselines changed, so only they are refitted; the Neuroformer results are read, as
stored, from the entries of that JSON.

How: for each requested dataset and each split seed held by an entry of the JSON at a requested
fraction, the split's rows are built as ``decoding_repeated_splits.run_entry`` builds them: the
config with that ``split_seed`` (``benchmark_decoding.load_dataset``: nelpy's track refitted on that
split's training windows, the window mask), the tokenizer and split plan as ``neuroformer train``
writes them (``decoding_baselines_recheck.prepare``; the plan's test segments, and nelpy's mask
counts, are checked against the ones the entry recorded), the entry's ``config_overrides``; then
``benchmark_decoding.baselines_task`` runs unchanged with baseline seed 0, as the original did.
Entries that share a split seed and ``window_stride`` (the only fine-tuning setting the baselines
read) share one refit, after checking their stored baselines agree. Nothing is tuned.

Statistics (``decoding_repeated_splits.paired``): per Neuroformer setting (config settings,
learning rate, frozen-backbone steps; split seeds taken from every entry holding that setting),
Neuroformer pretrained minus the best baseline now (best mean over the same split seeds), per split
seed: mean, wins, two-sided Wilcoxon signed-rank p.

Writes ``benchmarks/decoding_repeated_splits_recheck.json`` and the "Repeated block splits:
baselines refitted" section of ``BENCHMARKS.md`` (right after the repeated-splits section).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_decoding as bd  # noqa: E402
import decoding_repeated_splits as rs  # noqa: E402
from benchmarks_md import int_at_least, names_arg, seeds_arg, replace_section, write_atomic  # noqa: E402
from decoding_baselines_recheck import prepare  # noqa: E402

START = "<!-- decoding-repeated-splits-recheck:start -->"
END = "<!-- decoding-repeated-splits-recheck:end -->"
OUT = ROOT / "benchmarks" / "decoding_repeated_splits_recheck.json"
BASELINES = rs.BASELINES
BASELINE_KEYS = ("window_stride",)  # the fine-tuning config settings the baselines' rows read


def baseline_settings(entry: dict) -> dict:
    """The part of an entry's ``config_overrides`` that the baselines read."""
    sets = entry["settings"].get("config_overrides") or {}
    return {k: sets[k] for k in BASELINE_KEYS if k in sets}


def nf_setting(entry: dict) -> str:
    """A label of the Neuroformer fine-tuning setting of ``entry``: entries with equal labels are
    one setting over more split seeds (``freeze_backbone_steps`` None and 0 are the same)."""
    st = entry["settings"]
    parts = [f"{k}={v}" for k, v in sorted((st.get("config_overrides") or {}).items())]
    parts.append(f"learning rate {st.get('learning_rate'):g}")
    if st.get("freeze_backbone_steps"):
        parts.append(f"backbone frozen for {st['freeze_backbone_steps']} steps")
    return ", ".join(parts)


def collect(doc: dict, name: str, fractions: list) -> dict:
    """What is refitted for ``name`` and what it is compared with: ``{"overrides", "split_seeds",
    "stored" {seed: {fraction: {method: metrics}}}, "plans" {seed: plan}, "neuroformer" [{label,
    split_seeds, pretrained {fraction: {seed: value}}}]}``.

    Raises:
        SystemExit: no entry of ``name`` at the fractions; entries with different baseline settings;
            two entries whose stored baselines (or Neuroformer results of one setting) disagree on a split.
    """
    metric = bd.PRIMARY[bd.DATASETS[name]["kind"]][0]
    entries = [e for e in doc["entries"] if e["dataset"] == name]
    found = {"overrides": None, "config_overrides": None, "split_seeds": set(), "stored": {}, "plans": {}, "n_test": {},
             "neuroformer": {}}
    for e in entries:
        fr = [str(f) for f in fractions if f in e["fractions"]]
        if not fr:
            continue
        if found["overrides"] is None:
            found["overrides"], found["config_overrides"] = baseline_settings(e), dict(e["settings"]["config_overrides"] or {})
        elif baseline_settings(e) != found["overrides"]:
            raise SystemExit(f"{rs.JSON.name}: {name} entries with different baseline settings "
                             f"({found['overrides']} and {baseline_settings(e)}); not handled")
        g = found["neuroformer"].setdefault(nf_setting(e), {"label": nf_setting(e), "split_seeds": set(), "pretrained": {}})
        for s in e["split_seeds"]:
            found["split_seeds"].add(s)
            g["split_seeds"].add(s)
            found["plans"].setdefault(s, e["plans"][str(s)])
            for f in fr:
                r = e["results"][str(s)][f]
                old = found["stored"].setdefault(s, {}).setdefault(f, {m: r[m] for m in BASELINES if m in r})
                if any(not np.isclose(old[m][metric], r[m][metric], rtol=1e-9) for m in old if m in r):
                    raise SystemExit(f"{rs.JSON.name}: {name} split seed {s} at {f}: entries disagree on the stored "
                                     "baselines; refit them separately")
                found["n_test"].setdefault(s, {})[f] = r.get("n_test_windows")
                v = r.get("neuroformer_pretrained", {}).get(metric)
                prev = g["pretrained"].setdefault(f, {}).setdefault(str(s), v)
                if prev != v:
                    raise SystemExit(f"{rs.JSON.name}: {name} split seed {s} at {f}: two entries of the setting "
                                     f"{g['label']!r} hold different Neuroformer results")
    if found["overrides"] is None:
        raise SystemExit(f"--fractions: {rs.JSON.name} has no {name} entry at {fractions}")
    found["split_seeds"] = sorted(found["split_seeds"])
    found["neuroformer"] = [dict(g, split_seeds=sorted(g["split_seeds"])) for g in found["neuroformer"].values()]
    return found


def check_rows(name: str, s: int, folder: str, recorded: dict) -> None:
    """The refit's split plan (test segments) and nelpy's mask counts must be the ones the entry recorded."""
    plan = json.loads((Path(folder) / "splits.json").read_text())
    test = np.asarray(plan["segments"]["test"], float)
    old = np.asarray(recorded.get("test_segments"), float)
    if test.shape != old.shape or not np.allclose(test, old):
        raise SystemExit(f"{name} split seed {s}: the split plan's test segments differ from the recorded ones")
    counts = bd.load_dataset(name, False, dict(bd.MODEL, split_seed=s))[3].get("mask_counts")
    if recorded.get("mask_counts") is not None and counts != recorded["mask_counts"]:
        raise SystemExit(f"{name} split seed {s}: the window mask's counts {counts} differ from the recorded "
                         f"{recorded['mask_counts']} (the track fitted on this split's training windows is not the same)")


def _ranges(seeds: list) -> str:
    """``[1, 2, 3, 5]`` -> ``'1-3, 5'``."""
    parts, seeds = [], sorted(seeds)
    for s in seeds:
        if parts and s == parts[-1][1] + 1:
            parts[-1][1] = s
        else:
            parts.append([s, s])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts)


def summarise(d: dict, fractions: list) -> dict:
    """Per fraction: each baseline's mean/sd now and as stored over the dataset's split seeds, and
    per Neuroformer setting the paired comparison with the best baseline now (and, for reference,
    with the GRU now and as stored)."""
    metric, higher = d["metric"], d["higher"]
    out = {}
    for fk in map(str, fractions):
        seeds = [s for s in d["split_seeds"] if fk in d["results"][str(s)]]
        base = {}
        for m in BASELINES:
            for when in ("now", "stored"):
                v = [d["results"][str(s)][fk][when][m][metric] for s in seeds if m in d["results"][str(s)][fk][when]]
                base.setdefault(m, {})[when] = {"mean": float(np.mean(v)) if v else float("nan"),
                                                "sd": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"), "n": len(v)}
        comps = []
        for g in d["neuroformer"]:
            gs = [s for s in g["split_seeds"] if s in seeds and g["pretrained"].get(fk, {}).get(str(s)) is not None]
            if not gs:
                continue
            res = {str(s): {fk: {"neuroformer_pretrained": {metric: g["pretrained"][fk][str(s)]},
                                 **d["results"][str(s)][fk]["now"],
                                 **{f"{m} (stored)": v for m, v in d["results"][str(s)][fk]["stored"].items()}}}
                   for s in gs}
            means = {m: np.mean([res[str(s)][fk][m][metric] for s in gs]) for m in BASELINES}
            best = (max if higher else min)(means, key=means.get)
            nf = [g["pretrained"][fk][str(s)] for s in gs]
            c = {"label": g["label"], "split_seeds": gs, "neuroformer_mean": float(np.mean(nf)),
                 "neuroformer_sd": float(np.std(nf, ddof=1)) if len(nf) > 1 else float("nan"), "best_now": best,
                 "best_now_mean": float(means[best])}
            for key, other in (("vs_best_now", best), ("vs_gru_now", "gru"), ("vs_gru_stored", "gru (stored)")):
                c[key] = rs.paired(res, gs, fk, metric, higher, "neuroformer_pretrained", other)
            comps.append(c)
        out[fk] = {"split_seeds": seeds, "baselines": base, "neuroformer": comps}
    return out


def write_section(out: dict) -> str:
    f3 = rs._f
    lines = [START, "## Repeated block splits: baselines refitted with the current code "
             "(`scripts/decoding_repeated_splits_recheck.py`)", "",
             "The classical decoders of \"Decoding over repeated "
             "block splits\" above, refitted on the same rows of every split seed (that split's plan, nelpy's track "
             "refitted on its training windows, the window mask, the tokenizer, baseline seed 0; test segments and mask "
             "counts checked against the ones recorded) after the fixes that \"Baselines refitted with the current code\" "
             "lists (purged cross-validation folds and early-stopping block, `shared_bin_windows`; two-class folds). "
             "Nothing is tuned; no Neuroformer is run: its numbers are the stored ones of each entry above, grouped by "
             "fine-tuning setting over every entry that holds it. Each baseline cell: mean ± sd over split seeds now "
             "(as stored). Neuroformer rows: Neuroformer pretrained + fine-tuned against the baseline with the best mean "
             "now over the same split seeds; diff = mean of the per-split difference (Neuroformer minus baseline); wins = "
             "split seeds where Neuroformer is better; p = two-sided Wilcoxon signed-rank (`scipy.stats.wilcoxon`, as "
             "`decoding_repeated_splits.paired`).", ""]
    for name, d in out["datasets"].items():
        label = d["label"]
        sets = ", ".join(f"{k}={v}" for k, v in d["overrides"].items()) or "none"
        run = d["run"]
        lines += [f"### {name}, {bd.DATASETS[name]['target']} ({label}); baseline rows' settings: {sets}", "",
                  f"Run: commit `{run['commit']}` on {run['date']}, {run['minutes']:.1f} min on 2 CPU cores shared with "
                  f"other work ({run['workers']} worker process(es) x 1 thread), baseline seed 0.", ""]
        for fk, s in d["summary"].items():
            seeds = s["split_seeds"]
            lines += [f"At {float(fk):.0%} of the training windows, split seeds {_ranges(seeds)} ({len(seeds)}):", "",
                      "| baseline | now | as stored |", "|---|---|---|"]
            for m in BASELINES:
                b = s["baselines"][m]
                lines.append(f"| {rs.LABELS[m]} | " + " | ".join(
                    f"{f3(b[w]['mean'])} ± {f3(b[w]['sd'])}" + (f" (n={b[w]['n']})" if b[w]["n"] != len(seeds) else "")
                    for w in ("now", "stored")) + " |")
            lines += ["", "| Neuroformer pretrained, setting | split seeds | Neuroformer | best baseline now | diff; wins; p "
                      "| vs GRU now: diff; wins; p | vs GRU as stored: diff; wins; p |", "|---" * 7 + "|"]
            for c in s["neuroformer"]:
                cells = [f"{c[k]['mean']:+.3f}; {c[k]['wins']}/{c[k]['n']}; p={f3(c[k]['wilcoxon_p'])}"
                         for k in ("vs_best_now", "vs_gru_now", "vs_gru_stored")]
                lines.append(f"| {c['label']} | {_ranges(c['split_seeds'])} | {f3(c['neuroformer_mean'])} ± "
                             f"{f3(c['neuroformer_sd'])} | {rs.LABELS[c['best_now']]} {f3(c['best_now_mean'])} | "
                             + " | ".join(cells) + " |")
            lines.append("")
    lines.append(END)
    return "\n".join(lines)


def render(out: dict, path: Path = ROOT / "BENCHMARKS.md") -> str:
    """Write the section into ``path``: in place of its markers, else right after the repeated-splits section."""
    section = write_section(out)
    text = path.read_text()
    if START not in text and END not in text:
        if text.count(rs.END) != 1:
            raise SystemExit(f"{path}: expected the marker {rs.END!r} once to put the section after it")
        write_atomic(path, text.replace(rs.END, f"{rs.END}\n\n{START}\n{END}", 1))
    replace_section(path, START, END, section)
    return section


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--datasets", type=lambda t: names_arg(t, list(bd.DATASETS), "datasets"), default=["nelpy", "a2929"],
                   help="comma-separated datasets with entries in decoding_repeated_splits.json; default nelpy,a2929")
    p.add_argument("--fractions", type=lambda t: list(bd.fractions_arg(t)), default=[1.0],
                   help="fractions of the training windows; default %(default)s")
    p.add_argument("--split-seeds", type=lambda t: seeds_arg(t, "split seeds", "1,2,3"), default=None,
                   help="only these split seeds (default: every one an entry holds at the fractions)")
    p.add_argument("--workers", type=int_at_least(1), default=2, help="worker processes (each one thread)")
    p.add_argument("--report-only", action="store_true", help=f"rewrite the section from {OUT.name}")
    args = p.parse_args(argv)
    if args.report_only:
        if not OUT.is_file():
            p.error(f"--report-only: {OUT} does not exist; run without --report-only first")
        print(render(json.loads(OUT.read_text())))
        return 0
    doc = json.loads(rs.JSON.read_text())
    found = {n: collect(doc, n, args.fractions) for n in args.datasets}
    if args.split_seeds is not None:
        for n, fd in found.items():
            missing = sorted(set(args.split_seeds) - set(fd["split_seeds"]))
            if missing:
                p.error(f"--split-seeds: {n} has no entry holding split seed(s) {missing} at {args.fractions}; "
                        f"it has {_ranges(fd['split_seeds'])}")
            fd["split_seeds"] = sorted(args.split_seeds)
            for g in fd["neuroformer"]:
                g["split_seeds"] = [s for s in g["split_seeds"] if s in args.split_seeds]
            fd["neuroformer"] = [g for g in fd["neuroformer"] if g["split_seeds"]]
    bd._threads()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="repeated_splits_recheck_") as tmp:
        tasks = []
        for n, fd in found.items():
            for s in fd["split_seeds"]:
                model = dict(bd.MODEL, split_seed=s)
                pre, opts = prepare(n, {"config_overrides": fd["config_overrides"]}, Path(tmp) / n / f"split{s}", model)
                check_rows(n, s, pre, fd["plans"][s])
                bd._CACHE.pop((n, False, tuple(sorted(model.items()))), None)  # one recording per split seed otherwise
                tasks += [(n, pre, f, (0,), opts) for f in args.fractions if str(f) in fd["stored"][s]]
        print(f"[repeated splits recheck] {len(tasks)} baseline fits", flush=True)
        results = bd.run_pool(bd.baselines_task, tasks, args.workers, "baselines")
    run = {"commit": bd.git_commit(), "date": time.strftime("%Y-%m-%d"), "minutes": (time.perf_counter() - t0) / 60,
           "workers": args.workers, "datasets_in_run": list(found), "fractions": args.fractions, "baseline_seeds": [0]}
    # the datasets of an earlier run that this one did not refit are kept, each with its own run
    out = json.loads(OUT.read_text()) if OUT.is_file() else {"datasets": {}}
    out["datasets"] = {n: d for n, d in out["datasets"].items() if n not in found}
    for n, fd in found.items():
        metric, label, higher = bd.PRIMARY[bd.DATASETS[n]["kind"]]
        out["datasets"][n] = {"run": run, "metric": metric, "label": label, "higher": higher, "overrides": fd["overrides"],
                              "split_seeds": fd["split_seeds"], "neuroformer": fd["neuroformer"],
                              "results": {str(s): {} for s in fd["split_seeds"]}}
    for task, (key, res) in zip(tasks, results):
        rs._same_task(key, (task[0], task[2]))
        n, f, s = task[0], str(task[2]), task[4]["model"]["split_seed"]
        stored = found[n]["stored"][s][f]
        if res.get("n_test") != found[n]["n_test"][s][f]:
            raise SystemExit(f"{n} split seed {s} at {f}: {res.get('n_test')} test windows, the entry recorded "
                             f"{found[n]['n_test'][s][f]}; not the same rows")
        out["datasets"][n]["results"][str(s)][f] = {
            "now": {m: res["results"][m]["per_seed"][0] for m in BASELINES if m in res["results"]}, "stored": stored,
            "n_train_windows": res.get("n_train"), "n_test_windows": res.get("n_test")}
    for n, d in out["datasets"].items():
        if n in found:
            d["summary"] = summarise(d, args.fractions)
    write_atomic(OUT, json.dumps(out, indent=1))
    print(render(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
