"""Analyses of trained models: directed connectivity read from attention (:mod:`.connectivity`)."""

from .connectivity import (
    attention_connectivity,
    ccg_asymmetry,
    correlation_connectivity,
    glm_connectivity,
    score_connectivity,
)

__all__ = [
    "attention_connectivity",
    "correlation_connectivity",
    "ccg_asymmetry",
    "glm_connectivity",
    "score_connectivity",
]
