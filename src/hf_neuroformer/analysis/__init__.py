"""Analyses of trained models: directed connectivity read from attention (:mod:`.connectivity`),
attention of spike tokens over a video's frames in pixels (:mod:`.visual_attention`)."""

from .connectivity import (
    attention_connectivity,
    ccg_asymmetry,
    correlation_connectivity,
    glm_connectivity,
    score_connectivity,
)
from .visual_attention import pool_windows, visual_attention_maps

__all__ = [
    "attention_connectivity",
    "correlation_connectivity",
    "ccg_asymmetry",
    "glm_connectivity",
    "score_connectivity",
    "visual_attention_maps",
    "pool_windows",
]
