"""Metrics: fidelity of generated recordings, bits per spike, count-based token baselines, decoding,
and block-bootstrap confidence intervals (:mod:`.bootstrap`).

The fidelity functions (:mod:`.fidelity`) and the bits-per-spike pieces (:mod:`.bits_per_spike`)
are plain numpy/scipy functions; :func:`load_metric` loads the same computations as Hugging Face
``evaluate`` modules shipped inside this package (no network needed).
"""

from __future__ import annotations

from pathlib import Path

from .bits_per_spike import (
    BitsPerSpikeInputError,
    bits_per_spike,
    dt_bin_widths,
    homogeneous_poisson_log_likelihood,
    poisson_rates_from_windows,
    window_spike_counts,
)
from .bootstrap import BootstrapInputError, block_bootstrap_ci, block_sums, window_blocks
from .decoding import (
    DECODING_KINDS,
    DecodingMetricsInputError,
    angular_error,
    decoding_metrics,
    decoding_metrics_ci,
    wrap_angle,
)
from .fidelity import (
    FidelityInputError,
    binned_count_correlation,
    compare_recordings,
    fano_factor,
    firing_rate_correlation,
    interspike_intervals,
    isi_distance,
    match_spike_times,
    pairwise_correlation_structure,
    psth_correlation,
    snap_to_dt_bin_centres,
    spike_timing_f1,
    support_segments,
    trial_psth,
    unit_id_f1,
    usable_trials,
)
from .token_baselines import TokenBaselines

#: Folder holding one ``evaluate`` module folder per metric name (shipped as package data).
EVALUATE_MODULES_DIR = Path(__file__).resolve().parent / "evaluate_modules"

#: Names :func:`load_metric` accepts.
METRIC_NAMES = ("spike_train_fidelity", "bits_per_spike")


class UnknownMetricError(ValueError):
    """A metric name that :func:`load_metric` does not ship."""


def evaluate_module_path(name: str) -> Path:
    """Folder of the shipped ``evaluate`` module ``name`` (pass it to ``evaluate.load``).

    Raises:
        UnknownMetricError: ``name`` is not one of :data:`METRIC_NAMES`.
        FileNotFoundError: the module file is missing from the installed package.
    """
    if name not in METRIC_NAMES:
        raise UnknownMetricError(f"name: expected one of {list(METRIC_NAMES)}, got {name!r}")
    path = EVALUATE_MODULES_DIR / name
    if not (path / f"{name}.py").is_file():
        raise FileNotFoundError(
            f"evaluate module {name!r} not found at {path / (name + '.py')}: the package was installed without "
            "its package data (reinstall hf_neuroformer)"
        )
    return path


def load_metric(name: str, **kwargs):
    """Load one of this package's metrics as an ``evaluate.EvaluationModule``, offline.

    Calls ``evaluate.load(<folder of the module inside this package>, **kwargs)``: a local
    path, so nothing is fetched from the Hub (works with ``HF_HUB_OFFLINE=1``).

    Args:
        name: ``"spike_train_fidelity"`` (one example per unit: ``predictions`` = generated spike
            times, ``references`` = recorded spike times, s; keyword ``support=`` the generated
            windows, plus optional ``trials=``, ``bin_size=``, ...) or ``"bits_per_spike"`` (one
            example per window: ``model_log_likelihood``, ``null_log_likelihood`` in nats,
            ``n_spikes``).
        **kwargs: passed to ``evaluate.load`` (e.g. ``experiment_id``, ``keep_in_memory``).

    Returns:
        the loaded ``evaluate.EvaluationModule``.

    Raises:
        UnknownMetricError: ``name`` is not one of :data:`METRIC_NAMES`.
    """
    import evaluate

    return evaluate.load(str(evaluate_module_path(name)), **kwargs)


__all__ = [
    "BootstrapInputError",
    "block_bootstrap_ci",
    "block_sums",
    "decoding_metrics_ci",
    "window_blocks",
    "DECODING_KINDS",
    "DecodingMetricsInputError",
    "angular_error",
    "decoding_metrics",
    "wrap_angle",
    "EVALUATE_MODULES_DIR",
    "METRIC_NAMES",
    "BitsPerSpikeInputError",
    "FidelityInputError",
    "TokenBaselines",
    "UnknownMetricError",
    "binned_count_correlation",
    "bits_per_spike",
    "compare_recordings",
    "dt_bin_widths",
    "evaluate_module_path",
    "fano_factor",
    "firing_rate_correlation",
    "homogeneous_poisson_log_likelihood",
    "interspike_intervals",
    "isi_distance",
    "load_metric",
    "match_spike_times",
    "pairwise_correlation_structure",
    "poisson_rates_from_windows",
    "psth_correlation",
    "snap_to_dt_bin_centres",
    "spike_timing_f1",
    "support_segments",
    "trial_psth",
    "unit_id_f1",
    "usable_trials",
    "window_spike_counts",
]
