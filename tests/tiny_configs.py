"""A tiny NeuroformerConfig for the modality tests (Allen-sized windows: 10 ms current, 20 ms
past), shared by test_modalities, test_video and test_visual_attention."""

import hf_neuroformer as nf


def small_config(**kw):
    base = dict(current_window=0.01, past_window=0.02, dt_resolution=0.002, max_window_length=64,
                max_past_length=96, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                intermediate_size=64, hidden_dropout=0.0)
    base.update(kw)
    return nf.NeuroformerConfig(**base)
