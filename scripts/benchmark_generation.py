"""Generation speed: KV-cached engine vs the uncached reference, batch 1 and 64, 100-spike windows.

    python scripts/benchmark_generation.py            # all cases, writes BENCHMARKS.md section
    python scripts/benchmark_generation.py --quick    # fewer windows (a smoke run)

Each case runs in its own Python process (so its peak memory is its own), with the same model
weights (seeded), the same windows and the same sampling seed; EOS is held back until 100 spikes
and the window stops at 100 (``min_spikes = max_spikes = 100``), so every window is exactly 100
spike tokens. Spikes per second = generated spikes / wall time of ``generate_spikes`` (past
tokenization and encoding included). Peak memory = the process's peak resident set size during
the call minus its size just before (Linux ``VmHWM`` after resetting it through
``/proc/self/clear_refs``).

Two model sizes:

* ``default``: this package's default ``NeuroformerConfig`` (hidden 128, 1 past + 2 decoder
  layers), 100 units, a past window of 200 spike tokens.
* ``original``: sized like the original Neuroformer's Visnav-lateral run that the issue measured
  (24.3 M parameters, 500 units, past block 700, 3 video frames). Its config
  (``configs/Visnav/lateral/mconf_pretrain.yaml`` in a-antoniades/Neuroformer) has
  ``n_embd`` 256, 8 heads, a 100-token current block, a 700-token past block, a 446-token frame
  block, and 6 layers in each of its state, state-history, stimulus, behaviour and self-attention
  stacks. Mapped onto this architecture: hidden 256, 8 heads, 12 decoder layers (each holds one
  self-attention and one cross-attention: the original's 6 state + 6 self-attention layers and
  its 6 history + 6 stimulus cross-attention layers) and 14 encoder layers over a 1146-token
  context (700 past spikes + 446 tokens standing in for the frame patches, since this package has
  no video pathway yet), 24.0 M parameters in all.

Results go to ``benchmarks/generation.json`` and the "Generation speed" section of
``BENCHMARKS.md`` (replaced between its markers, the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import replace_section, write_atomic  # noqa: E402
START, END = "<!-- generation-speed:start -->", "<!-- generation-speed:end -->"
WINDOW_SPIKES = 100
ORIGINAL_SPIKES_PER_S = 10.0  # the measurement of the original generator, batch 1, same machine kind

SIZES = {
    "default": dict(hidden_size=128, num_attention_heads=4, intermediate_size=256, num_past_layers=1,
                    num_hidden_layers=2, n_units=100, past_tokens=200),
    "original": dict(hidden_size=256, num_attention_heads=8, intermediate_size=1024, num_past_layers=14,
                     num_hidden_layers=12, n_units=500, past_tokens=1146),
}


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def run_case(size: str, use_cache: bool, batch: int, n_windows: int, threads: int) -> dict:
    """One measurement, in this process."""
    import numpy as np
    import torch

    import hf_neuroformer as nf

    torch.set_num_threads(threads)
    spec = SIZES[size]
    cfg = nf.NeuroformerConfig(
        current_window=0.1, past_window=1.0, dt_resolution=0.005, max_window_length=WINDOW_SPIKES + 2,
        max_past_length=spec["past_tokens"] + 1, hidden_dropout=0.0,
        **{k: spec[k] for k in ("hidden_size", "num_attention_heads", "intermediate_size", "num_past_layers",
                                "num_hidden_layers")},
    )
    rng = np.random.default_rng(0)
    duration = 1.0 + 0.1 * n_windows + 0.1
    # enough recorded spikes that every past window fills the past block
    rate = 1.3 * spec["past_tokens"] / spec["n_units"]
    n_spk = rng.poisson(rate * duration * spec["n_units"])
    times = np.sort(rng.uniform(0, duration, n_spk))
    rec = nf.SpikeRecording(spike_times=times, unit_ids=rng.integers(0, spec["n_units"], n_spk),
                            unit_names=[f"u{i}" for i in range(spec["n_units"])], time_domain=(0.0, duration),
                            session="bench")
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    n_params = sum(p.numel() for p in model.parameters())
    starts = 1.0 + 0.1 * np.arange(n_windows)
    kw = dict(batch_size=batch, seed=0, min_spikes=WINDOW_SPIKES, max_spikes=WINDOW_SPIKES, use_cache=use_cache,
              progress=False)
    nf.generate_spikes(model, tok, rec, starts[:1], **{**kw, "batch_size": 1, "max_spikes": 3, "min_spikes": 3})
    Path("/proc/self/clear_refs").write_text("5")
    rss0 = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    g = nf.generate_spikes(model, tok, rec, starts, **kw)
    seconds = time.perf_counter() - t0
    peak = _rss_kib("VmHWM")
    floors = _floors_ms(model, batch, spec["past_tokens"]) if use_cache else None
    return {
        "size": size, "use_cache": use_cache, "batch": batch, "n_windows": n_windows, "threads": threads,
        "floors_ms": floors,
        "n_parameters": int(n_params), "past_tokens": spec["past_tokens"], "n_units": spec["n_units"],
        "n_spikes": int(g.n_spikes), "seconds": seconds, "spikes_per_second": g.n_spikes / seconds,
        "peak_extra_mib": (peak - rss0) / 1024, "rss_before_mib": rss0 / 1024,
    }


def _floors_ms(model, batch: int, past_tokens: int, repeats: int = 30) -> dict:
    """Lower bounds (ms) on what one cached decoding step must do on ``batch`` rows, timed alone:

    * ``weights``: the matrix products with every weight a step reads (decoder self-attention
      q/k/v/o, cross-attention q/o, MLP, both heads), back to back with nothing else;
    * ``cross_attention``: attention of one query per row over each layer's cached keys/values of
      the ``past_tokens`` context (what the KV cache must still read every step);
    * ``encode_per_window``: encoding one batch of contexts (paid once per window, not per step).

    At batch 1 the first two are memory-bandwidth measurements.
    """
    import torch
    import torch.nn.functional as F

    cfg = model.config
    weights = []
    for layer in model.neuroformer.layers:
        sa, ca = layer.self_attn, layer.cross_attn
        weights += [sa.q_proj.weight, sa.k_proj.weight, sa.v_proj.weight, sa.o_proj.weight,
                    ca.q_proj.weight, ca.o_proj.weight, layer.mlp.fc_in.weight, layer.mlp.fc_out.weight]
    weights += [model.id_head.weight, model.dt_head.weight]
    xs = {w.shape[1]: torch.randn(batch, w.shape[1]) for w in weights}
    heads, dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    q = torch.randn(batch, heads, 1, dim)
    kv = [(torch.randn(batch, heads, past_tokens + 1, dim), torch.randn(batch, heads, past_tokens + 1, dim))
          for _ in model.neuroformer.layers]

    def timed(fn, n=repeats):
        fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n * 1e3

    ids = torch.randint(3, cfg.vocab_size, (batch, past_tokens + 1))
    dts = torch.randint(0, cfg.num_past_dt_bins, (batch, past_tokens + 1))
    with torch.no_grad():
        return {
            "weights": timed(lambda: [F.linear(xs[w.shape[1]], w) for w in weights]),
            "cross_attention": timed(lambda: [F.scaled_dot_product_attention(q, k, v) for k, v in kv]),
            "encode_per_window": timed(lambda: model.neuroformer.encode_past(ids, dts), n=2),
        }


CASES = [
    # size, use_cache, batch, n_windows (full run), n_windows (quick)
    ("default", True, 1, 20, 3),
    ("default", False, 1, 5, 1),
    ("default", True, 64, 64, 8),
    ("default", False, 64, 64, 8),
    ("original", True, 1, 5, 1),
    ("original", False, 1, 1, 1),
    ("original", True, 64, 64, 4),
]


def _table(rows):
    def get(size, cache, batch):
        for r in rows:
            if (r["size"], r["use_cache"], r["batch"]) == (size, cache, batch):
                return r
        return None

    lines = [
        "| model | parameters | past tokens | engine | batch | windows | spikes/s | s per window | peak extra MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['n_parameters'] / 1e6:.1f} M | {r['past_tokens']} | "
            f"{'KV cache' if r['use_cache'] else 'reference (no cache)'} | {r['batch']} | {r['n_windows']} | "
            f"{r['spikes_per_second']:.0f} | {r['seconds'] / r['n_windows']:.3f} | {r['peak_extra_mib']:.0f} |"
        )
    lines.append("")
    for size in SIZES:
        for b in (1, 64):
            c, ref = get(size, True, b), get(size, False, b)
            if c and ref:
                lines.append(f"- {size}, batch {b}: cached / reference = **{c['spikes_per_second'] / ref['spikes_per_second']:.1f}x**")
    c1, c64 = get("original", True, 1), get("original", True, 64)
    for r in rows:
        if r["use_cache"] and r["batch"] == 1 and r.get("floors_ms"):
            f = r["floors_ms"]
            per_spike = f["weights"] + f["cross_attention"] + f["encode_per_window"] / WINDOW_SPIKES
            lines.append(
                f"- {r['size']}, batch 1, timed alone: the weight reads of one step {f['weights']:.2f} ms, its "
                f"cross-attention over the cached context {f['cross_attention']:.2f} ms, the context encoding "
                f"{f['encode_per_window']:.0f} ms per window ({f['encode_per_window'] / WINDOW_SPIKES:.2f} ms per spike): "
                f"a floor of {per_spike:.2f} ms per spike, at most {1000 / per_spike:.0f} spikes/s for this fp32 model here"
            )
    if c1:
        lines.append(f"- original size, cached, batch 1: **{c1['spikes_per_second']:.0f} spikes/s** = "
                     f"{c1['spikes_per_second'] / ORIGINAL_SPIKES_PER_S:.0f}x the original generator's ~10 spikes/s "
                     "(issue 6's measurement on this machine kind)")
    if c64:
        lines.append(f"- original size, cached, batch 64: aggregate **{c64['spikes_per_second']:.0f} spikes/s**")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few windows per case (smoke run; not written to BENCHMARKS.md)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case as JSON
    args = p.parse_args(argv)
    if args.case:
        size, cache, batch, n = json.loads(args.case)
        print(json.dumps(run_case(size, cache, batch, n, args.threads)))
        return 0
    rows = []
    for size, cache, batch, n_full, n_quick in CASES:
        n = n_quick if args.quick else n_full
        case = json.dumps([size, cache, batch, n])
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--case", case],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            raise SystemExit(f"case {case} failed")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{size:>8s} cache={cache!s:5s} batch={batch:>2d} windows={n:>3d}: {r['spikes_per_second']:8.1f} spikes/s "
              f"({time.perf_counter() - t0:.0f} s incl. start-up), peak +{r['peak_extra_mib']:.0f} MiB", flush=True)
    import torch

    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "torch": torch.__version__, "threads": args.threads, "window_spikes": WINDOW_SPIKES}
    table = _table(rows)
    print(table)
    if args.quick:
        return 0
    out_dir = ROOT / "benchmarks"
    out_dir.mkdir(exist_ok=True)
    write_atomic(out_dir / "generation.json", json.dumps({"meta": meta, "rows": rows}, indent=2))
    section = (
        f"{START}\n## Generation speed\n\n"
        f"`python scripts/benchmark_generation.py` ({meta['date']}, {meta['machine']}, torch {meta['torch']}, "
        f"{meta['threads']} threads). Every window is exactly {WINDOW_SPIKES} spikes (EOS held back until then); same "
        "weights, windows and seed in every case; each case in its own process. The reference is one full forward "
        "pass per spike (past encoder and the whole window), as the original code generated; the KV cache feeds one "
        "token per step and encodes the past once per window. 'original' is sized like the original's Visnav-lateral "
        "model (see the script's docstring: its 446 frame tokens are stood in for by extra past tokens). Raw numbers: "
        "`benchmarks/generation.json`. 's per window' is wall time / windows (amortised over the batch).\n\n" + table + f"\n{END}"
    )
    bm = replace_section(ROOT / "BENCHMARKS.md", START, END, section)
    print(f"wrote {bm} and {out_dir / 'generation.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
