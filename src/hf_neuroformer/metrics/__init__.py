"""Metrics: fidelity of generated recordings and count-based token baselines."""

from .fidelity import binned_count_correlation, compare_recordings, firing_rate_correlation, unit_id_f1
from .token_baselines import TokenBaselines

__all__ = [
    "binned_count_correlation",
    "compare_recordings",
    "firing_rate_correlation",
    "unit_id_f1",
    "TokenBaselines",
]
