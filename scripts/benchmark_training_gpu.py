"""Training throughput and model FLOPs utilisation on a GPU at the original Neuroformer's shapes
(issue 7, acceptance 5).

    python scripts/benchmark_training_gpu.py --out DIR          # on a CUDA machine; writes DIR/training_gpu.json
    python scripts/benchmark_training.py --render               # then, here: the BENCHMARKS.md section

Same recording, shapes and model as ``scripts/benchmark_training.py`` (500 Poisson units, 0.05 s
current window with a 100-token block, 701-token past block, hidden 256, 8 heads, 6 + 6 layers),
measured two ways, each in its own process:

* ``loop``: the unchanged ``hf_neuroformer.training.train`` loop (Accelerate bf16 autocast,
  data loading and collation on the CPU in the main process, AdamW, clipping, scheduler), as a
  user runs it; spike tokens per second as in the CPU benchmark.
* ``model step``: forward + backward + AdamW on batches collated beforehand and already on the
  GPU (bf16 autocast, ``torch.cuda.synchronize`` around the timed steps): what the network
  itself sustains, without the Python data path.

Model FLOPs utilisation (MFU) = model FLOPs per step / step time / the GPU's dense peak. Model
FLOPs are counted from the shapes (:func:`training_flops`): every matrix multiply of the forward
pass (projections, MLPs, heads, the temporal-embedding projection, and the attention score and
value products over the padded blocks as computed, 2 FLOPs per multiply-add), times 3 for the
backward pass (the usual convention, as in PaLM's MFU; recomputation by activation
checkpointing is not counted). Peak: NVIDIA's H100/H200 SXM datasheet figure for dense BF16
tensor cores, 989.4 TFLOP/s (1,979 with sparsity); other GPUs need ``--peak-tflops``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchmark_training as bt  # noqa: E402
from benchmarks_md import write_atomic  # noqa: E402

#: Dense BF16 tensor-core peak, TFLOP/s (NVIDIA H100 SXM / H200 datasheets: 1,979 with sparsity).
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4}


def training_flops(cfg, batch: int, cur_len: int, past_len: int) -> float:
    """Model FLOPs of one training step (forward x 3) at padded lengths ``cur_len`` / ``past_len``."""
    h, inter, heads_v, dt_bins = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, cfg.num_dt_bins
    f_temp = 2 * cfg.num_temporal_frequencies
    past = cfg.num_past_layers * (past_len * (4 * h * h + 2 * h * inter) + 2 * past_len * past_len * h)
    dec = cfg.num_hidden_layers * (cur_len * (4 * h * h + 2 * h * h + 2 * h * inter)  # self q,k,v,o; cross q,o; MLP
                                   + past_len * 2 * h * h                               # cross k, v over the past
                                   + 2 * cur_len * cur_len * h + 2 * cur_len * past_len * h)  # scores and values
    heads = cur_len * (h * heads_v + h * dt_bins)
    temporal = (cur_len + past_len) * f_temp * h
    macs = batch * (past + dec + heads + temporal)
    return 3 * 2 * macs


def _windows(batch: int, n_batches: int, seed: int):
    """Collated batches of the benchmark's synthetic recording, in training order."""
    import numpy as np

    import hf_neuroformer as nf
    from hf_neuroformer.tokenization_neuroformer import NeuroformerTokenizer
    from hf_neuroformer.windows import NeuroformerCollator, tokenize_windows

    cfg = nf.NeuroformerConfig(**bt.MODEL)
    duration = bt.PAST_WINDOW + (n_batches + 1) * batch * bt.CURRENT_WINDOW + 1.0
    rng = np.random.default_rng(seed)
    n = rng.poisson(bt.RATE_HZ * bt.N_UNITS * duration)
    rec = nf.SpikeRecording(spike_times=np.sort(rng.uniform(0.0, duration, n)), unit_ids=rng.integers(0, bt.N_UNITS, n),
                            unit_names=[f"u{i}" for i in range(bt.N_UNITS)], time_domain=(0.0, duration))
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    # windows tiled from the first full past on (no `datasets` needed for this case)
    starts = bt.PAST_WINDOW + bt.CURRENT_WINDOW * np.arange(n_batches * batch)
    cols = tokenize_windows(rec, tok, starts)
    col = NeuroformerCollator(cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id)
    rows = [dict(zip(cols, vals)) for vals in zip(*cols.values())]
    rng.shuffle(rows)
    return cfg, [col(rows[i * batch:(i + 1) * batch]) for i in range(n_batches)]


def model_step_case(batch: int, steps: int, warmup: int, precision: str, compile_model: bool, seed: int) -> dict:
    import torch

    from hf_neuroformer import NeuroformerForPreTraining

    torch.manual_seed(seed)
    cfg, batches = _windows(batch, steps + warmup, seed)
    dev = torch.device(os.environ.get("BENCH_DEVICE", "cuda"))  # BENCH_DEVICE=cpu: a smoke run
    cuda = dev.type == "cuda"
    model = NeuroformerForPreTraining(cfg).to(dev).train()
    step_model = torch.compile(model) if compile_model else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    batches = [{k: v.to(dev) for k, v in b.items()} for b in batches]
    tokens = [int(b["attention_mask"].sum()) for b in batches]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def one(b):
        with torch.autocast(dev.type, dtype=dtype, enabled=precision == "bf16"):
            out = step_model(**b)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for b in batches[:warmup]:
        one(b)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for b in batches[warmup:]:
        one(b)
    if cuda:
        torch.cuda.synchronize()
    el = time.perf_counter() - t0
    shapes = [(b["input_ids"].shape[1], b["past_input_ids"].shape[1]) for b in batches[warmup:]]
    flops = sum(training_flops(cfg, batch, c, p) for c, p in shapes)
    return {"mode": "model step", "precision": precision, "compile": compile_model, "batch": batch, "steps": steps,
            "s_per_step": el / steps, "spike_tokens_per_s": sum(tokens[warmup:]) / el,
            "samples_per_s": steps * batch / el, "achieved_tflops": flops / el / 1e12,
            "peak_gpu_mem_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan"),
            "parameters": sum(p.numel() for p in model.parameters()), "padded_shapes": sorted(set(shapes))}


def loop_case(batch: int, steps: int, warmup: int, precision: str, seed: int) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    old = bt.BATCH
    bt.BATCH = batch
    try:
        r = bt.run_case(precision, steps, warmup, threads=torch.get_num_threads(), seed=seed)
    finally:
        bt.BATCH = old
    import hf_neuroformer as nf

    cfg = nf.NeuroformerConfig(**bt.MODEL, vocab_size=bt.N_UNITS + 3)
    cur, past = bt.MODEL["max_window_length"], bt.MODEL["max_past_length"]
    flops = training_flops(cfg, batch, cur, past)  # an upper bound: batches are padded to their longest window
    return {**r, "mode": "loop", "batch": batch, "achieved_tflops_upper": flops / r["s_per_step"] / 1e12,
            "peak_gpu_mem_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")}


CASES = [
    ("model", dict(batch=32, steps=30, warmup=5, precision="bf16", compile_model=False)),
    ("loop", dict(batch=32, steps=20, warmup=5, precision="bf16")),
    ("model", dict(batch=256, steps=20, warmup=5, precision="bf16", compile_model=False)),
    ("loop", dict(batch=256, steps=10, warmup=3, precision="bf16")),
    ("model", dict(batch=32, steps=30, warmup=5, precision="fp32", compile_model=False)),
    ("loop", dict(batch=32, steps=20, warmup=5, precision="fp32")),
    ("model", dict(batch=256, steps=20, warmup=10, precision="bf16", compile_model=True)),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="folder for training_gpu.json (required)")
    ap.add_argument("--runs", type=int, default=3, help="runs per case (median and range)")
    ap.add_argument("--peak-tflops", type=float, help="dense BF16 peak of this GPU (default: from its name)")
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        kind, kw = json.loads(args.case)
        fn = model_step_case if kind == "model" else loop_case
        print("RESULT " + json.dumps(fn(**kw, seed=0)))
        return 0
    import torch

    if not args.out:
        ap.error("--out: required (the folder for training_gpu.json)")
    if not torch.cuda.is_available():
        raise SystemExit("benchmark_training_gpu.py: no CUDA device visible")
    name = torch.cuda.get_device_name()
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    if peak is None:
        raise SystemExit(f"--peak-tflops: unknown dense BF16 peak for {name!r}; pass it")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for kind, kw in CASES:
        if kw.get("compile_model") and args.skip_compile:
            continue
        runs = []
        for i in range(args.runs if not kw.get("compile_model") else 1):
            t0 = time.time()
            proc = subprocess.run([sys.executable, __file__, "--case", json.dumps([kind, kw])], capture_output=True,
                                  text=True, timeout=600)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"{kind} {kw}: failed\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}", flush=True)
                break
            runs.append(json.loads(line[0][len("RESULT "):]))
            r = runs[-1]
            tf = r.get("achieved_tflops", r.get("achieved_tflops_upper"))
            print(f"{kind:<5s} {kw}: {r['spike_tokens_per_s']:.0f} spike tokens/s, {r['s_per_step'] * 1e3:.1f} ms/step, "
                  f"{tf:.1f} TFLOP/s = MFU {100 * tf / peak:.2f} %, GPU mem {r['peak_gpu_mem_mib']:.0f} MiB "
                  f"({time.time() - t0:.0f} s)", flush=True)
        if runs:
            med = statistics.median(r["spike_tokens_per_s"] for r in runs)
            results.append({"kind": kind, "case": kw, "runs": runs, "median_spike_tokens_per_s": med})
        write_atomic((out / "training_gpu.json"), json.dumps(
            {"gpu": name, "peak_bf16_tflops": peak, "torch": torch.__version__, "cuda": torch.version.cuda,
             "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             "model": bt.MODEL, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        sys.exit(main())
