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


def _sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _synthetic_setup(size: str, duration: float, seed: int, device: str = "cpu"):
    """``(recording, tokenizer, model)`` of one model size: Poisson spikes of ``SIZES[size]``'s units
    over ``[0, duration)`` s (numpy seed ``seed``), enough that every past window fills the past
    block, and an untrained ``NeuroformerForPreTraining`` (torch seed 0) in eval mode on ``device``."""
    import numpy as np
    import torch

    import hf_neuroformer as nf

    spec = SIZES[size]
    cfg = nf.NeuroformerConfig(
        current_window=0.1, past_window=1.0, dt_resolution=0.005, max_window_length=WINDOW_SPIKES + 2,
        max_past_length=spec["past_tokens"] + 1, hidden_dropout=0.0,
        **{k: spec[k] for k in ("hidden_size", "num_attention_heads", "intermediate_size", "num_past_layers",
                                "num_hidden_layers")},
    )
    rng = np.random.default_rng(seed)
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
    return rec, tok, nf.NeuroformerForPreTraining(cfg).eval().to(device)


def run_case(size: str, use_cache: bool, batch: int, n_windows: int, threads: int, device: str = "cpu") -> dict:
    """One measurement, in this process. On a CUDA ``device`` the peak memory is the GPU's
    (``torch.cuda.max_memory_allocated`` during the call minus the allocation before it)."""
    import numpy as np
    import torch

    import hf_neuroformer as nf

    torch.set_num_threads(threads)
    cuda = str(device).startswith("cuda")
    spec = SIZES[size]
    rec, tok, model = _synthetic_setup(size, 1.0 + 0.1 * n_windows + 0.1, 0, device)
    n_params = sum(p.numel() for p in model.parameters())
    starts = 1.0 + 0.1 * np.arange(n_windows)
    kw = dict(batch_size=batch, seed=0, min_spikes=WINDOW_SPIKES, max_spikes=WINDOW_SPIKES, use_cache=use_cache,
              progress=False)
    nf.generate_spikes(model, tok, rec, starts[:1], **{**kw, "batch_size": 1, "max_spikes": 3, "min_spikes": 3})
    if cuda:
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        rss0 = torch.cuda.memory_allocated(device) / 1024
    else:
        Path("/proc/self/clear_refs").write_text("5")
        rss0 = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    g = nf.generate_spikes(model, tok, rec, starts, **kw)
    _sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 1024 if cuda else _rss_kib("VmHWM")
    floors = _floors_ms(model, batch, spec["past_tokens"], device) if use_cache else None
    return {
        "size": size, "use_cache": use_cache, "batch": batch, "n_windows": n_windows, "threads": threads,
        "device": str(device), "floors_ms": floors,
        "n_parameters": int(n_params), "past_tokens": spec["past_tokens"], "n_units": spec["n_units"],
        "n_spikes": int(g.n_spikes), "seconds": seconds, "spikes_per_second": g.n_spikes / seconds,
        "peak_extra_mib": (peak - rss0) / 1024, "rss_before_mib": rss0 / 1024,
    }


def _floors_ms(model, batch: int, past_tokens: int, device: str = "cpu", repeats: int = 30) -> dict:
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
    xs = {w.shape[1]: torch.randn(batch, w.shape[1], device=device) for w in weights}
    heads, dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    q = torch.randn(batch, heads, 1, dim, device=device)
    kv = [(torch.randn(batch, heads, past_tokens + 1, dim, device=device),
           torch.randn(batch, heads, past_tokens + 1, dim, device=device)) for _ in model.neuroformer.layers]

    def timed(fn, n=repeats):
        fn()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        _sync(device)
        return (time.perf_counter() - t0) / n * 1e3

    ids = torch.randint(3, cfg.vocab_size, (batch, past_tokens + 1), device=device)
    dts = torch.randint(0, cfg.num_past_dt_bins, (batch, past_tokens + 1), device=device)
    with torch.no_grad():
        return {
            "weights": timed(lambda: [F.linear(xs[w.shape[1]], w) for w in weights]),
            "cross_attention": timed(lambda: [F.scaled_dot_product_attention(q, k, v) for k, v in kv]),
            "encode_per_window": timed(lambda: model.neuroformer.encode_past(ids, dts), n=2),
        }


def identity_check(device: str, threads: int) -> list[dict]:
    """Acceptance 1 of issue 6 on ``device``: the KV-cached engine and the uncached reference, same
    seed, same windows, same model (the ``default`` size, untrained: its windows run to the
    100-spike cap), greedy and sampled, in both past modes. Returns one row per case with the number of windows whose tokens differ."""
    import numpy as np
    import torch

    import hf_neuroformer as nf

    torch.set_num_threads(threads)
    rec, tok, model = _synthetic_setup("default", 4.0, 1, device)
    starts = 1.0 + 0.1 * np.arange(16)
    rows = []
    for mode in ("teacher_forced", "free_running"):
        for greedy in (True, False):
            kw = dict(seed=11, greedy=greedy, mode=mode, batch_size=8, progress=False, top_k=8, top_p=0.9,
                      dt_temperature=0.7)
            a = nf.generate_spikes(model, tok, rec, starts, use_cache=True, **kw)
            b = nf.generate_spikes(model, tok, rec, starts, use_cache=False, **kw)
            differ = 0
            for lo, hi in a.time_support:
                ia = (a.spike_times >= lo) & (a.spike_times < hi)
                ib = (b.spike_times >= lo) & (b.spike_times < hi)
                same = (ia.sum() == ib.sum() and np.array_equal(a.spike_times[ia], b.spike_times[ib])
                        and np.array_equal(a.unit_ids[ia], b.unit_ids[ib]))
                differ += not same
            rows.append({"mode": mode, "greedy": greedy, "windows": len(starts), "windows_differing": int(differ),
                         "spikes_cached": int(a.n_spikes), "spikes_reference": int(b.n_spikes),
                         "identical": bool(differ == 0 and a.n_spikes == b.n_spikes)})
    return rows


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


# On a GPU the reference at batch 64 is cheap enough to time too, and batch 1 runs more windows.
GPU_CASES = [
    ("default", True, 1, 20),
    ("default", False, 1, 5),
    ("default", True, 64, 64),
    ("default", False, 64, 64),
    ("original", True, 1, 20),
    ("original", False, 1, 5),
    ("original", True, 64, 64),
    ("original", False, 64, 64),
]

GPU_START, GPU_END = "<!-- generation-speed-gpu:start -->", "<!-- generation-speed-gpu:end -->"


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
    p.add_argument("--device", default="cpu",
                   help="'cpu' (default: every case, then BENCHMARKS.md) or a CUDA device such as 'cuda': the GPU "
                        "cases and the cached-vs-reference token check, written to --out DIR/generation_gpu.json "
                        "(BENCHMARKS.md untouched; render it with --render-gpu)")
    p.add_argument("--out", type=Path, help="folder for generation_gpu.json (with --device cuda)")
    p.add_argument("--render-gpu", type=Path, metavar="JSON",
                   help="write the GPU section of BENCHMARKS.md from a generation_gpu.json (copied to benchmarks/)")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case as JSON
    p.add_argument("--identity", action="store_true", help=argparse.SUPPRESS)  # internal
    args = p.parse_args(argv)
    if args.case:
        size, cache, batch, n = json.loads(args.case)
        print(json.dumps(run_case(size, cache, batch, n, args.threads, args.device)))
        return 0
    if args.identity:
        print(json.dumps(identity_check(args.device, args.threads)))
        return 0
    if args.render_gpu:
        return render_gpu(args.render_gpu)
    if args.device != "cpu":
        if args.out is None:
            p.error("--device other than cpu needs --out DIR (the GPU results are rendered here with --render-gpu)")
        return run_gpu(args)
    rows = []
    for size, cache, batch, n_full, n_quick in CASES:
        n = n_quick if args.quick else n_full
        case = json.dumps([size, cache, batch, n])
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--case", case],
                             capture_output=True, text=True, env=_child_env())
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


def _child_env() -> dict:
    """The environment of a case's process: this checkout's ``src`` first, then any PYTHONPATH given."""
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _child(args, *extra) -> dict | list:
    out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--device", args.device, *extra],
                         capture_output=True, text=True, env=_child_env())
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"{extra} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_gpu(args) -> int:
    """Every GPU case in its own process, then the token check; writes ``--out``/generation_gpu.json."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    out_path = args.out / "generation_gpu.json"
    if out_path.exists():
        raise SystemExit(f"--out: {out_path} exists; give an empty folder (results are never overwritten)")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size, cache, batch, n in GPU_CASES:
        if args.quick:
            n = min(n, 2)
        t0 = time.perf_counter()
        r = _child(args, "--case", json.dumps([size, cache, batch, n]))
        rows.append(r)
        print(f"{size:>8s} cache={cache!s:5s} batch={batch:>2d} windows={n:>3d}: {r['spikes_per_second']:9.1f} "
              f"spikes/s ({time.perf_counter() - t0:.0f} s incl. start-up), GPU peak +{r['peak_extra_mib']:.0f} MiB",
              flush=True)
    identity = _child(args, "--identity")
    for r in identity:
        print(f"identity {r['mode']:>14s} greedy={r['greedy']!s:5s}: {r['windows_differing']} of {r['windows']} "
              f"windows differ ({r['spikes_cached']} vs {r['spikes_reference']} spikes)", flush=True)
    props = torch.cuda.get_device_properties(0)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "gpu": props.name,
            "torch": torch.__version__, "cuda": torch.version.cuda, "cpus": os.cpu_count(), "threads": args.threads,
            "window_spikes": WINDOW_SPIKES, "precision": "fp32 (TF32 off: torch's default for matmul)",
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "quick": bool(args.quick)}
    import transformers

    meta["transformers"] = transformers.__version__
    write_atomic(out_path, json.dumps({"meta": meta, "rows": rows, "identity": identity}, indent=2))
    print(_table(rows))
    print(f"wrote {out_path}")
    return 0


def render_gpu(path: Path, benchmarks_md: Path = ROOT / "BENCHMARKS.md",
               dest: Path = ROOT / "benchmarks" / "generation_gpu.json") -> int:
    """The GPU section of ``benchmarks_md`` (after the CPU one, or in place of an earlier GPU
    section), from ``path``, which is copied to ``dest``."""
    data = json.loads(Path(path).read_text())
    meta, rows, identity = data["meta"], data["rows"], data["identity"]
    if meta.get("quick"):
        raise SystemExit(f"{path}: a --quick run; rerun without --quick to render it")
    table = _table(rows).replace("for this fp32 model here", f"for this fp32 model on the {meta['gpu']}")
    table = table.replace(" (issue 6's measurement on this machine kind)",
                          " (issue 6's measurement of the original on the 2-core CPU: another machine, not a like-for-like ratio)")
    ident = "; ".join(f"{r['mode'].replace('_', '-')} {'greedy' if r['greedy'] else 'sampled'}: "
                      f"{r['windows'] - r['windows_differing']} of {r['windows']} windows identical"
                      for r in identity)
    section = (
        f"{GPU_START}\n### GPU: {meta['gpu']} ({meta['date']}, torch {meta['torch']}, CUDA {meta['cuda']}, "
        f"transformers {meta['transformers']})\n\n"
        f"`python scripts/benchmark_generation.py --device cuda --out DIR`, then `--render-gpu DIR/generation_gpu.json` "
        f"here. The same models, windows, seeds and cases as above, on the GPU in fp32 (TF32 off); peak memory is "
        f"the GPU's (`torch.cuda.max_memory_allocated` during the call minus before). Raw numbers: "
        f"`benchmarks/generation_gpu.json`.\n\n" + table +
        f"\n- cached vs reference tokens on the GPU (same seed, 16 windows of the default-size model, batch 8): "
        f"{ident}\n{GPU_END}"
    )
    bm = Path(benchmarks_md)
    text = bm.read_text()
    if GPU_START in text:
        replace_section(bm, GPU_START, GPU_END, section)
    else:
        if END not in text:
            raise SystemExit(f"{bm}: no generation-speed section ({END}) to put the GPU section after")
        write_atomic(bm, text.replace(END, END + "\n\n" + section, 1))
    dest = Path(dest)
    if Path(path).resolve() != dest.resolve():
        write_atomic(dest, Path(path).read_text())
    print(f"wrote {bm} and {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
