#!/usr/bin/env bash
# Reproduce the vertical-slice figures on the real A2929 head-direction recording (wake epoch):
# pretrain with the default budget, generate the test split, evaluate it.
# Usage: scripts/reproduce_a2929.sh [OUTDIR]   (reads ../shared/data or $NEUROFORMER_SHARED_DATA)
# Then `python scripts/record_a2929.py OUTDIR` records the figures in benchmarks/a2929_wake.json and BENCHMARKS.md.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
data="${NEUROFORMER_SHARED_DATA:-$here/../shared/data}/pynapple_A2929_headdirection/A2929-200711.nwb"
out="${1:-runs/a2929-wake}"
mkdir -p "$out"
time neuroformer train --data "$data" --epoch wake --output-dir "$out/model"
neuroformer generate --model "$out/model" --data "$data" --epoch wake --split test --seed 0 --output "$out/generated_test.nwb"
# --model adds held-out bits per spike (the model's likelihood on the test windows, two Poisson nulls)
neuroformer evaluate --real "$data" --epoch wake --generated "$out/generated_test.nwb" --model "$out/model" \
  --split test --output "$out/evaluate_test.json"
python - "$out/model/metrics.json" "$out/evaluate_test.json" <<'PY'
import json, sys
m, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
u, k, x = m["test/unigram_id_nll"], m["test/markov_id_nll"], m["test/id_nll"]
print(f"test/id_nll {x:.4f} = {100 * (1 - x / u):.1f} % below unigram {u:.4f}; "
      f"{100 * (1 - x / k):.1f} % below Markov {k:.4f} ({100 * (1 - k / u):.1f} % below unigram)")
print(f"test/dt_nll {m['test/dt_nll']:.4f} vs Markov dt {m['test/markov_dt_nll']:.4f}, "
      f"marginal {m['test/marginal_dt_nll']:.4f}")
print(f"bits per spike {e['bits_per_spike']:.3f} (train-rate null), "
      f"{e['bits_per_spike_scored_rates_null']:.3f} (scored-rate null)")
print(f"ISI KS mean {e['isi_ks_mean']:.3f}, floor {e['isi_ks_floor_mean']:.3f}")
PY
