"""What the attention analyses share: the unit of each token, and the model's attentions over a
recording's windows, batch by batch."""

from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np

from ..recording import SpikeRecording


def unit_lookup(tokenizer, recording: SpikeRecording, vocab_size: int) -> np.ndarray:
    """``(vocab_size,)`` int64: token id -> unit index in ``recording`` (-1 for special tokens)."""
    lut = np.full(vocab_size, -1, dtype=np.int64)
    ids = np.asarray(tokenizer.unit_token_ids(recording), dtype=np.int64)
    lut[ids] = np.arange(recording.n_units)
    return lut


def attention_batches(model, tokenizer, recording: SpikeRecording, starts: np.ndarray,
                      past_clip_starts: Optional[np.ndarray], batch_size: int,
                      device) -> Iterator[Tuple[range, dict, object]]:
    """Run ``model`` with ``output_attentions=True`` over the windows starting at ``starts`` (s).

    The windows are tokenized with the model's config, so a model with modality inputs reads them
    from ``recording`` as in training. The model is in eval mode while the batches are drawn and
    gets its training mode back at the end.

    Yields:
        ``(window indices, collated batch on device, model output)`` per ``batch_size`` windows.
    """
    from ..windows import NeuroformerCollator, batch_to_device, tokenize_windows

    cols = tokenize_windows(recording, tokenizer, starts, past_clip_starts, config=model.config)
    collate = NeuroformerCollator(tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id,
                                  model.config.modalities)
    was_training = model.training
    model.eval()
    try:
        for b0 in range(0, len(starts), batch_size):
            idx = range(b0, min(len(starts), b0 + batch_size))
            batch = batch_to_device(collate([{k: cols[k][i] for k in cols} for i in idx]), device)
            out = model(
                input_ids=batch["input_ids"], dt_ids=batch["dt_ids"], attention_mask=batch["attention_mask"],
                past_input_ids=batch["past_input_ids"], past_dt_ids=batch["past_dt_ids"],
                past_attention_mask=batch["past_attention_mask"], output_attentions=True,
                **({"modality_inputs": batch["modality_inputs"]} if "modality_inputs" in batch else {}),
            )
            yield idx, batch, out
    finally:
        model.train(was_training)
