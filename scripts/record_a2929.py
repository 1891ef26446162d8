"""Record a run of ``scripts/reproduce_a2929.sh`` (the figures that
``model_cards/neuroformer-a2929-wake.md`` quotes) into ``benchmarks/a2929_wake.json`` and the
``a2929-card`` section of BENCHMARKS.md, as the benchmark scripts write theirs::

    OMP_NUM_THREADS=1 scripts/reproduce_a2929.sh runs/a2929-wake
    python scripts/record_a2929.py runs/a2929-wake [--commit COMMIT] [--date YYYY-MM-DD] [--machine TEXT]

Reads the run's ``model/metrics.json`` (``neuroformer train``) and ``evaluate_test.json``
(``neuroformer evaluate --model``); copies the figures the card quotes, with the commit and date
and machine of the run (``--commit`` / ``--date`` / ``--machine``: give them when recording later
than the run or elsewhere; by default the repository's commit now, as the other scripts stamp
theirs, the date of ``metrics.json``, and this machine's cores and torch / transformers versions).
No training: rerunning it on the same folder writes the same JSON and section.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from benchmarks_md import replace_section, write_atomic  # noqa: E402

START, END = "<!-- a2929-card:start -->", "<!-- a2929-card:end -->"
CARD = "model_cards/neuroformer-a2929-wake.md"

#: the keys of ``neuroformer train``'s metrics.json that the card quotes or describes the run by
TRAIN_KEYS = ("test/id_nll", "test/unigram_id_nll", "test/markov_id_nll", "test/dt_nll", "test/markov_dt_nll",
              "test/marginal_dt_nll", "test/id_f1", "test/rate_corr", "num_parameters", "n_train_windows",
              "n_validation_windows", "n_test_windows", "n_spikes_by_split", "n_truncated_spikes_by_split",
              "n_truncated_past_spikes", "checkpoint_selection", "best_step", "total_steps", "train_time_s",
              "total_time_s")
#: the keys of ``neuroformer evaluate --model --split test``'s JSON that the card quotes
EVALUATE_KEYS = ("bits_per_spike", "bits_per_spike_scored_rates_null", "rate_ratio_median", "binned_count_corr_mean",
                 "fano_corr", "pairwise_corr_r", "isi_ks_mean", "isi_ks_floor_mean")


def _pick(path: Path, keys) -> dict:
    """``{key: value}`` of ``keys`` in the JSON file ``path``.

    Raises:
        ValueError: the file lacks some of ``keys`` (named, with the file).
    """
    data = json.loads(path.read_text())
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{path}: expected the keys {missing} (written by scripts/reproduce_a2929.sh's commands), "
                         "missing")
    return {k: data[k] for k in keys}


def this_machine() -> str:
    """``'<n> CPU cores, torch <v>, transformers <v>'`` (installed versions, read without importing them)."""
    from importlib.metadata import version

    return f"{os.cpu_count()} CPU cores, torch {version('torch')}, transformers {version('transformers')}"


def record(run_dir, commit: str, date: str, machine: str) -> dict:
    """The record of the run in ``run_dir`` (the OUTDIR of ``reproduce_a2929.sh``)."""
    run_dir = Path(run_dir)
    return {"card": CARD, "command": "OMP_NUM_THREADS=1 scripts/reproduce_a2929.sh OUTDIR", "commit": commit,
            "date": date, "machine": machine, "train": _pick(run_dir / "model" / "metrics.json", TRAIN_KEYS),
            "evaluate_test": _pick(run_dir / "evaluate_test.json", EVALUATE_KEYS)}


def section(rec: dict, json_shown: str) -> str:
    """The BENCHMARKS.md section (between ``START`` and ``END``) of the record ``rec``: the figures
    rounded as the card quotes them."""
    t, e = rec["train"], rec["evaluate_test"]
    x, u, k = t["test/id_nll"], t["test/unigram_id_nll"], t["test/markov_id_nll"]
    n_test, n_trunc = t["n_spikes_by_split"]["test"], t["n_truncated_spikes_by_split"]["test"]
    rows = [
        ("`test/id_nll` (Neuroformer)", f"**{x:.4f}** ({100 * (1 - x / u):.1f} % below unigram, "
                                        f"{100 * (1 - x / k):.1f} % below Markov)"),
        ("`test/markov_id_nll` (previous spike's unit)", f"{k:.4f}"),
        ("`test/unigram_id_nll` (unit frequencies)", f"{u:.4f}"),
        ("`test/dt_nll` (Neuroformer)", f"**{t['test/dt_nll']:.4f}**"),
        ("`test/markov_dt_nll` (previous spike's dt bin in the window)", f"{t['test/markov_dt_nll']:.4f}"),
        ("`test/marginal_dt_nll` (dt-bin frequencies)", f"{t['test/marginal_dt_nll']:.4f}"),
        ("held-out bits per spike vs Poisson units at their train-split rates", f"**{e['bits_per_spike']:.3f}**"),
        ("held-out bits per spike vs Poisson units at their rates in the test windows",
         f"{e['bits_per_spike_scored_rates_null']:.3f}"),
        ("`test/id_f1` (generated vs recorded, per window)", f"{t['test/id_f1']:.4f}"),
        ("`test/rate_corr` (over units)", f"{t['test/rate_corr']:.4f}"),
        ("truncated spikes", f"{n_trunc:,} of {n_test:,} test spikes ({t['n_truncated_past_spikes']:,} past-window spikes)"),
        ("rate ratio, median (generated / recorded)", f"{e['rate_ratio_median']:.3f}"),
        ("binned-count correlation, mean over units (100 ms bins)", f"{e['binned_count_corr_mean']:.3f}"),
        ("Fano factor correlation", f"{e['fano_corr']:.3f}"),
        ("pairwise count-correlation structure", f"{e['pairwise_corr_r']:.3f}"),
        ("ISI KS statistic, mean over units", f"{e['isi_ks_mean']:.3f}"),
        ("ISI KS floor (recorded spikes moved to their dt-bin centres)", f"{e['isi_ks_floor_mean']:.3f}"),
    ]
    table = "| metric (test split) | value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    return (f"{START}\n## A2929 head-direction model card (wake)\n\n"
            f"`{rec['command']}` then `python scripts/record_a2929.py OUTDIR` ({rec['date']}, commit {rec['commit']}, {rec['machine']}): "
            f"the figures [{CARD}]({CARD}) quotes. `neuroformer train` ran {t['total_steps']:,} steps in "
            f"{t['train_time_s']:.0f} s of training time ({t['total_time_s']:.0f} s for the whole call); the checkpoint "
            f"of step {t['best_step']:,} ({t['checkpoint_selection']}) was kept; {t['num_parameters']:,} parameters; "
            f"{t['n_train_windows']:,} / {t['n_validation_windows']:,} / {t['n_test_windows']:,} train / validation / "
            f"test windows. Token NLLs in nats per spike token (baselines fitted on the train split); the fidelity "
            f"figures from `neuroformer evaluate --model` on the generated test windows. Raw numbers: "
            f"`{json_shown}`.\n\n{table}{END}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="the OUTDIR of scripts/reproduce_a2929.sh")
    p.add_argument("--commit", help="the commit the run was made at (default: the repository's now)")
    p.add_argument("--date", type=datetime.date.fromisoformat,
                   help="the run's date, YYYY-MM-DD (default: the date of its model/metrics.json)")
    p.add_argument("--machine", help="where the run ran (default: this machine's cores, torch and transformers versions)")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "a2929_wake.json"), help="default %(default)s")
    p.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"), help="the file whose section is replaced "
                   "(default %(default)s)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    metrics = Path(args.run_dir) / "model" / "metrics.json"
    if not metrics.is_file():
        parser().error(f"run_dir: expected the OUTDIR of scripts/reproduce_a2929.sh (with model/metrics.json), "
                       f"got {args.run_dir!r}")
    if args.commit is None:
        from benchmark_decoding import git_commit

        args.commit = git_commit()
    date = args.date or datetime.datetime.fromtimestamp(metrics.stat().st_mtime, datetime.timezone.utc).date()
    rec = record(args.run_dir, args.commit, date.isoformat(), args.machine or this_machine())
    out = Path(args.json)
    write_atomic(out, json.dumps(rec, indent=2) + "\n")
    shown = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
    text = section(rec, str(shown))
    replace_section(Path(args.markdown), START, END, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
