"""``bits_per_spike``: log-likelihood gained over a homogeneous Poisson null, in bits per spike.

An ``evaluate`` metric module that wraps :func:`hf_neuroformer.metrics.bits_per_spike.bits_per_spike`
(see that module's docstring for why the token model's canonical-sequence probability and the
Poisson count probability are scored on the same outcomes). Load it offline with
``hf_neuroformer.metrics.load_metric("bits_per_spike")``; it needs ``hf_neuroformer`` installed.
"""

import datasets
import evaluate
import numpy as np

from hf_neuroformer.metrics.bits_per_spike import bits_per_spike

_DESCRIPTION = """\
Bits per spike (Pei et al. 2021, Neural Latents Benchmark, Sec. 3.2): (sum of the model's window
log-likelihoods - sum of the null's) / (total spikes * ln 2). The null is independent homogeneous
Poisson units on the tokenizer's dt bins (hf_neuroformer.metrics.bits_per_spike.
homogeneous_poisson_log_likelihood, rates fitted on training windows by poisson_rates_from_windows).
0 = no better than a constant rate per unit; higher is better.
"""

_KWARGS_DESCRIPTION = """\
One example per window (the same windows on both sides).

Args:
    model_log_likelihood: float64 log-likelihood of the window under the model, nats (the
        log-probability of its canonical token sequence, EOS included, given the past window).
    null_log_likelihood: float64 log-likelihood of the window under the Poisson null, nats.
    n_spikes: number of spikes in the window, a whole number (read as float64 so that a fractional
        value is refused by ``bits_per_spike``, naming ``n_spikes``, instead of being truncated).

Returns:
    bits_per_spike (NaN when there are no spikes), model_log_likelihood_sum,
    null_log_likelihood_sum (nats), n_spikes (total), n_windows.

Examples:
    >>> from hf_neuroformer.metrics import load_metric
    >>> bps = load_metric("bits_per_spike")
    >>> out = bps.compute(model_log_likelihood=[-3.0, -1.0], null_log_likelihood=[-4.0, -2.0], n_spikes=[1, 1])
    >>> round(out["bits_per_spike"], 4)
    1.4427
"""

_CITATION = """\
@inproceedings{pei2021neural,
  title     = {Neural Latents Benchmark '21: Evaluating latent variable models of neural population activity},
  author    = {Pei, Felix and Ye, Joel and Zoltowski, David M. and Wu, Anqi and Chowdhury, Raeed H. and
               Sohn, Hansem and O'Doherty, Joseph E. and Shenoy, Krishna V. and Kaufman, Matthew T. and
               Churchland, Mark and Jazayeri, Mehrdad and Miller, Lee E. and Pillow, Jonathan and
               Park, Il Memming and Dyer, Eva L. and Pandarinath, Chethan},
  booktitle = {Advances in Neural Information Processing Systems, Datasets and Benchmarks Track},
  year      = {2021},
  note      = {arXiv:2109.04463}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BitsPerSpike(evaluate.Metric):
    """Bits per spike over a homogeneous Poisson null (see the module's description)."""

    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "model_log_likelihood": datasets.Value("float64"),
                "null_log_likelihood": datasets.Value("float64"),
                # float64, not int64: the int64 feature truncated 1.5 to 1 before the check below saw it
                "n_spikes": datasets.Value("float64"),
            }),
            reference_urls=["https://arxiv.org/abs/2109.04463"],
        )

    def _compute(self, model_log_likelihood, null_log_likelihood, n_spikes):
        m = np.asarray(model_log_likelihood, dtype=np.float64)
        z = np.asarray(null_log_likelihood, dtype=np.float64)
        n = np.asarray(n_spikes, dtype=np.float64)
        bps = bits_per_spike(m, z, n)  # refuses negative or fractional counts, naming n_spikes
        return {
            "bits_per_spike": bps,
            "model_log_likelihood_sum": float(m.sum()),
            "null_log_likelihood_sum": float(z.sum()),
            "n_spikes": int(n.sum()),
            "n_windows": int(m.size),
        }
