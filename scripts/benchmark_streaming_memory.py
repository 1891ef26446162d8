"""Peak memory of training from streamed, prepared windows at 1x and 10x recording length (issue 7,
acceptance 4), beside the in-memory path.

    python scripts/benchmark_streaming_memory.py            # writes benchmarks/streaming_memory.json + BENCHMARKS.md
    python scripts/benchmark_streaming_memory.py --quick    # shorter recordings, prints only

The recording is a homogeneous Poisson population (``--units`` units at ``--rate`` Hz each), 1x =
``--duration`` seconds and 10x = ten times that, the same seed scheme. For each length:

1. ``prepare``: the windows of every split are written with :func:`hf_neuroformer.windows.prepare_windows`
   (``neuroformer prepare``; its own process; this step holds the recording, by design).
2. ``streamed``: :func:`hf_neuroformer.training.train` on the prepared directory, in a fresh
   process that never loads the recording: the windows stream from the Parquet shards.
3. ``in memory``: the same ``train`` on the recording itself (the windows are built in memory
   first), for contrast.

Every training run takes the same ``--steps`` optimisation steps with the same model and batch,
then scores the validation and test splits as ``train`` always does (streamed too). Peak memory
is the process's peak resident set size (``VmHWM`` from ``/proc/self/status``) at the end of
the run, so it includes Python, torch and the model; the acceptance compares streamed 10x with
streamed 1x (at most 1.5x).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_training import _peak_rss_mib  # noqa: E402  (one reading of VmHWM for both scripts)
from benchmarks_md import replace_section, write_atomic  # noqa: E402

START, END = "<!-- streaming-memory:start -->", "<!-- streaming-memory:end -->"
MODEL = dict(current_window=0.05, past_window=0.25, dt_resolution=0.005, max_window_length=80, max_past_length=320,
             hidden_size=64, num_attention_heads=4, intermediate_size=128, num_past_layers=1, num_hidden_layers=2,
             split_block_length=30.0)


def _recording(units: int, rate: float, duration: float, seed: int):
    import numpy as np

    import hf_neuroformer as nf

    rng = np.random.default_rng(seed)
    n = rng.poisson(units * rate * duration)
    times = np.sort(rng.uniform(0.0, duration, n))
    return nf.SpikeRecording(spike_times=times, unit_ids=rng.integers(0, units, n),
                             unit_names=[f"u{i}" for i in range(units)], time_domain=(0.0, duration))


def run_case(kind: str, units: int, rate: float, duration: float, steps: int, batch: int, seed: int,
             prepared: str, out: str) -> dict:
    """One measurement in this process: ``kind`` is ``prepare``, ``streamed`` or ``in_memory``."""
    import torch

    import hf_neuroformer as nf
    from hf_neuroformer.training import TrainingConfig, train
    from hf_neuroformer.windows import prepare_windows

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    res = {"kind": kind, "duration_s": duration}
    if kind == "prepare":
        rec = _recording(units, rate, duration, seed)
        manifest = prepare_windows(rec, prepared, nf.NeuroformerConfig(**MODEL), num_shards=max(1, int(duration // 300)),
                                   progress=False)
        res.update(n_spikes=rec.n_spikes, n_windows={s: e["n_windows"] for s, e in manifest["splits"].items()},
                   n_shards=manifest["num_shards"],
                   bytes_on_disk=sum(p.stat().st_size for p in Path(prepared).rglob("*.parquet")))
    else:
        tc = TrainingConfig(max_steps=steps, batch_size=batch, warmup_ratio=0.0, seed=seed, eval_every=10**9)
        source = prepared if kind == "streamed" else _recording(units, rate, duration, seed)
        loop_peak = []  # after the second-to-last step: the training steps, before the final validation pass

        def mark(step, loss):
            if step == steps - 1:
                loop_peak.append(_peak_rss_mib())

        metrics = train(source, out, None if kind == "streamed" else nf.NeuroformerConfig(**MODEL), tc, progress=False,
                        on_step_end=mark)
        res.update(peak_rss_mib_training_loop=loop_peak[0], n_train_windows=metrics["n_train_windows"], test_id_nll=metrics.get("test/id_nll"),
                   total_steps=metrics["total_steps"])
    res.update(peak_rss_mib=_peak_rss_mib(), wall_s=time.perf_counter() - t0)
    return res


def _section(results, meta) -> str:
    from hf_neuroformer.recording import count_noun

    by = {(r["kind"], r["scale"]): r for r in results}
    rows = []
    for kind, label in (("streamed", "streamed from the prepared directory"), ("in_memory", "in memory (for contrast)"),
                        ("prepare", "`prepare` (writing the shards; holds the recording)")):
        a, b = by[(kind, "1x")], by[(kind, "10x")]
        loop = (f"{a['peak_rss_mib_training_loop']:.0f} / {b['peak_rss_mib_training_loop']:.0f} "
                f"({b['peak_rss_mib_training_loop'] / a['peak_rss_mib_training_loop']:.2f}x)"
                if "peak_rss_mib_training_loop" in a else "-")
        rows.append(f"| {label} | {a['peak_rss_mib']:.0f} | {b['peak_rss_mib']:.0f} | "
                    f"{b['peak_rss_mib'] / a['peak_rss_mib']:.2f}x | {loop} | {a['wall_s']:.0f} / {b['wall_s']:.0f} |")
    p1, p10 = by[("prepare", "1x")], by[("prepare", "10x")]
    ratio = by[("streamed", "10x")]["peak_rss_mib"] / by[("streamed", "1x")]["peak_rss_mib"]
    return "\n".join([
        START,
        "## Training memory from streamed windows (`scripts/benchmark_streaming_memory.py`)",
        "",
        f"{meta['date']}, {meta['machine']}, torch {meta['torch']}, 1 thread per run, each run its own process. "
        f"Recording: {meta['units']} Poisson units at {meta['rate']} Hz; 1x = {meta['duration']:.0f} s "
        f"({p1['n_spikes']:,} spikes, {sum(p1['n_windows'].values()):,} windows in {count_noun(p1['n_shards'], 'shard')} per split, "
        f"{p1['bytes_on_disk'] / 2**20:.0f} MiB of Parquet), 10x = {10 * meta['duration']:.0f} s "
        f"({p10['n_spikes']:,} spikes, {sum(p10['n_windows'].values()):,} windows, {p10['n_shards']} shards per split, "
        f"{p10['bytes_on_disk'] / 2**20:.0f} MiB). Model: hidden {MODEL['hidden_size']}, "
        f"{MODEL['num_past_layers']} + {MODEL['num_hidden_layers']} layers, current window {MODEL['current_window']} s "
        f"(block {MODEL['max_window_length']}), past {MODEL['past_window']} s (block {MODEL['max_past_length']}); "
        f"{meta['steps']} steps of batch {meta['batch']}, then validation and test scoring, as `train` always does.",
        "",
        f"| training data | peak RSS 1x, MiB | peak RSS 10x, MiB | 10x / 1x | peak after step {meta['steps'] - 1} (before any validation), 1x / 10x MiB | wall s (1x / 10x) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Acceptance 4 (streamed 10x within 1.5x of 1x): **{'met' if ratio <= 1.5 else 'not met'}** ({ratio:.2f}x). "
        "Peak RSS is the whole process (Python, torch, the model, the shuffle buffer of "
        f"{meta['shuffle_buffer_size']} windows); the streamed runs never load the recording. The "
        "'peak after step' column is the high-water mark after all but the last optimisation step, before the first "
        "validation pass (validation runs at the last step, then the test split is scored and the token baselines "
        "fitted, over 10x more windows at 10x; those passes are where most of the streamed growth comes from). "
        f"Wall time at 10x: {by[('streamed', '10x')]['wall_s']:.0f} s streamed vs "
        f"{by[('in_memory', '10x')]['wall_s']:.0f} s in memory (in memory tokenizes every window of the recording "
        "first; streamed reads and decodes the Parquet shards as it goes; both then score the 10x validation and test "
        "splits).",
        END,
    ])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--rate", type=float, default=5.0, help="Hz per unit")
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of the 1x recording")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="1x = 60 s, 10 steps; print only")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        print("RESULT " + json.dumps(run_case(**json.loads(args.case))))
        return 0
    if args.quick:
        args.duration, args.steps = 60.0, 10
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale, mult in (("1x", 1), ("10x", 10)):
            prepared = str(Path(tmp) / f"prepared-{scale}")
            for kind in ("prepare", "streamed", "in_memory"):
                case = dict(kind=kind, units=args.units, rate=args.rate, duration=args.duration * mult, steps=args.steps,
                            batch=args.batch, seed=args.seed, prepared=prepared, out=str(Path(tmp) / f"{kind}-{scale}"))
                proc = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)], env=env,
                                      capture_output=True, text=True)
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode or not line:
                    print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                    return 1
                r = {**json.loads(line[0][len("RESULT "):]), "scale": scale}
                results.append(r)
                print(f"{scale:>3s} {kind:<9s} peak RSS {r['peak_rss_mib']:7.0f} MiB  wall {r['wall_s']:6.1f} s", flush=True)
    if args.quick:
        return 0
    import torch

    from hf_neuroformer.training import TrainingConfig

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.machine())
    meta = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": f"{cpu}, {os.cpu_count()} cores",
            "torch": torch.__version__, "units": args.units, "rate": args.rate, "duration": args.duration,
            "steps": args.steps, "batch": args.batch, "shuffle_buffer_size": TrainingConfig().shuffle_buffer_size}
    out = ROOT / "benchmarks" / "streaming_memory.json"
    write_atomic(out, json.dumps({"meta": meta, "model": MODEL, "results": results}, indent=2))
    replace_section(ROOT / "BENCHMARKS.md", START, END, _section(results, meta))
    print(f"wrote {out} and the streaming-memory section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
