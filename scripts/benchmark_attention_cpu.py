"""Forward + backward time of PyTorch's scaled-dot-product attention at the attention shapes of
the like-for-like training benchmark (issue 7, acceptance 3), fp32 and bf16, on this CPU.

    python scripts/benchmark_attention_cpu.py            # prints a markdown table (2 threads)

Shapes per step (batch 32, 8 heads of 32, one of each per layer, 6 layers): frame encoder
self-attention 450 x 450 tokens, stimulus cross-attention 100 -> 450, past cross-attention
100 -> 701, current-window self-attention 100 x 100; each with an additive ``(B, 1, Q, K)``
mask, as the model passes it (all zeros here: the kernel's cost does not depend on its values,
so the current window's causal mask is not drawn). Median of ``--repeats`` timed calls after one
untimed call. Prints only (the figures are quoted in the training-speed section's text).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {"frame self-attention": (450, 450), "stimulus cross-attention": (100, 450),
          "past cross-attention": (100, 701), "current self-attention": (100, 100)}


def time_attention(q_len: int, k_len: int, dtype: torch.dtype, batch: int = 32, heads: int = 8,
                   head_dim: int = 32, repeats: int = 3) -> float:
    """Median seconds of one forward + backward of SDPA at these shapes."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(batch, heads, q_len, head_dim, generator=g).to(dtype).requires_grad_()
    k = torch.randn(batch, heads, k_len, head_dim, generator=g).to(dtype).requires_grad_()
    v = torch.randn(batch, heads, k_len, head_dim, generator=g).to(dtype).requires_grad_()
    mask = torch.zeros(batch, 1, q_len, k_len, dtype=dtype)

    def once():
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask).float().sum().backward()

    once()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per shape (>= 1)")
    ap.add_argument("--layers", type=int, default=6)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch 32, 8 heads x 32, fwd+bwd, median of {args.repeats}")
    print("| attention | fp32 ms | bf16 ms |\n|---|---|---|")
    total = {torch.float32: 0.0, torch.bfloat16: 0.0}
    for name, (ql, kl) in SHAPES.items():
        row = {}
        for dt in total:
            row[dt] = time_attention(ql, kl, dt, repeats=args.repeats)
            total[dt] += row[dt]
        print(f"| {name} ({ql} -> {kl}) | {row[torch.float32] * 1e3:.0f} | {row[torch.bfloat16] * 1e3:.0f} |")
    print(f"| all attention of one step ({args.layers} layers each) | {total[torch.float32] * args.layers:.2f} s "
          f"| {total[torch.bfloat16] * args.layers:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
