"""What the attention analyses share: the unit of each token, and the model's attentions over a
recording's windows, batch by batch.

Private to the package (no public API: the leading underscore): ``__all__`` lists what the package's
own modules import from here (the analyses, and the refusals of a diverged model or bad pass settings
in generation, likelihood, finetuning, contrastive and the command line); each is imported from this
module, where it is defined, never re-exported through it.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional, Sequence, Tuple

import numpy as np

from ..argument_checks import check_model_kind, check_pass_counts
from ..configuration_neuroformer import is_whole_number
from ..recording import SpikeRecording, count_noun


def nonfinite_weights(model):
    """``(names, total)``: the names of ``model``'s parameter tensors holding NaN or infinite
    values (in ``named_parameters`` order) and how many parameter tensors it has."""
    import torch

    names = [n for n, q in model.named_parameters() if not bool(torch.isfinite(q).all())]
    return names, sum(1 for _ in model.parameters())


def check_finite_weights(model, model_dir, flag: str = "--model",
                         gives: str = "every attention weight and embedding it gives",
                         learning_rate_option: str = "learning_rate") -> None:
    """Refuse a model whose weights hold NaN or infinite values (a diverged run, which ``train``
    saves as it is for inspection): the attention matrices of ``connectivity`` were all NaN and
    scored as chance (AUROC 0.500, printed as if measured), the maps of ``attention-map`` NaN, and
    ``embed`` failed in scikit-learn's PCA ("Input X contains NaN"); ``generate`` failed inside
    ``torch.multinomial`` (a traceback) and ``evaluate --model`` blamed truncated windows for its NaN
    log-likelihoods; ``decode`` wrote a CSV of empty predictions and then blamed the data for them.
    ``gives`` names what the command would have computed (the message says it
    would be NaN).

    ``model_dir`` None (a model passed to a Python function): the message names ``flag`` alone.
    ``learning_rate_option`` names the rate to lower (``"learning_rate"``, the argument of
    ``train``'s ``TrainingConfig`` and of ``finetune``; the command line names its own:
    ``training.learning_rate`` of ``neuroformer train``'s ``--config``, or ``neuroformer
    finetune``'s ``--learning-rate``).

    Raises:
        ValueError: naming ``flag``, the directory, how many weight tensors are not finite and
            the first, and what to do.
    """
    names, total = nonfinite_weights(model)
    if names:
        where = f"{flag}: " + ("" if model_dir is None else f"{str(model_dir)!r}: ")
        raise ValueError(f"{where}{len(names)} of {total} weight tensors hold NaN or infinite "
                         f"values (first: {names[0]}): its training diverged (see train_loss in training_log.json), "
                         f"so {gives} would be NaN; retrain it with a lower {learning_rate_option}")


def check_split_has_windows(n_windows: int, split: str, n_segments: int, split_fractions) -> None:
    """Refuse a pass over a split that holds no window (``split_fractions`` with a 0, e.g.
    ``[0.8, 0, 0.2]``: an empty validation split), which failed later inside numpy or the window
    checks, naming no flag (``connectivity``, ``attention-map``).

    Raises:
        ValueError: ``"--split: the model's '<split>' split holds <n> segments and no window ..."``.
    """
    if n_windows == 0:
        raise ValueError(f"--split: the model's {split!r} split holds {count_noun(n_segments, 'segment')} and no "
                         f"window "
                         f"(its splits.json; split_fractions {list(split_fractions)}); choose another "
                         "--split, e.g. 'all'")


def check_pass_settings(*, batch_size=None, max_windows=None, device=None,
                        label: Callable[[str], str] = lambda name: name) -> None:
    """The settings of a pass of a trained model over windows (``embed``, ``connectivity``,
    ``attention-map``), checked before the model or the data is read; ``None`` skips one.
    The CLI passes ``label`` turning ``batch_size`` into ``--batch-size``.

    Raises:
        ValueError: naming the setting (``label(name)``): ``batch_size`` and ``max_windows`` must
            be whole numbers >= 1 (a negative ``max_windows`` was used as a slice and dropped the
            last windows, 0 left none, 2.5 failed inside numpy); ``device`` must be a torch device
            that this machine has (``"cuda"`` without CUDA failed with an AssertionError).
    """
    check_pass_counts(batch_size=batch_size, max_windows=max_windows, label=label)
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"{label('device')}: expected a torch device such as 'cpu' or 'cuda', got {device!r} "
                         f"({err})") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    if not available.get(dev.type, True):
        raise ValueError(f"{label('device')}: {device!r} is not available on this machine "
                         f"(torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}); use 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"{label('device')}: {device!r} does not exist; this machine has "
                         f"{count_noun(torch.cuda.device_count(), 'CUDA device')}")


def check_unit_indices(units: Optional[Sequence], label: str = "units") -> Optional[list]:
    """``units`` as a list of Python ints (``None`` stays ``None``).

    Raises:
        ValueError: naming ``label``, when an entry is not a whole number (3.7 was truncated to 3
            while the report kept 3.7) or the list is empty.
    """
    if units is None:
        return None
    units = list(units)
    bad = [u for u in units if not is_whole_number(u)]
    if bad or not units:
        raise ValueError(f"{label}: expected integer unit indices of the recording, got {bad or units}")
    return [int(u) for u in units]


def unit_lookup(tokenizer, recording: SpikeRecording, vocab_size: int) -> np.ndarray:
    """``(vocab_size,)`` int64: token id -> unit index in ``recording`` (-1 for special tokens)."""
    lut = np.full(vocab_size, -1, dtype=np.int64)
    ids = np.asarray(tokenizer.unit_token_ids(recording), dtype=np.int64)
    lut[ids] = np.arange(recording.n_units)
    return lut


def model_unit_lookup(tokenizer, recording: SpikeRecording, config) -> np.ndarray:
    """:func:`unit_lookup` for a trained model (``config``: its config), after refusing what would
    make it wrong: a recording with a unit the model's vocabulary lacks (the tokenizer's
    ``UnknownUnitError`` advised ``tokenizer.add_units(recording)``, after which the lookup failed
    with a bare numpy ``IndexError``) and a tokenizer that is not the model's.

    Raises:
        UnknownUnitError: from :func:`hf_neuroformer.generation.refuse_foreign_units` (naming the
            model's sessions, advising the recording it was trained on).
        ValueError: from :func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`
            (``len(tokenizer)`` against ``config.vocab_size``, the window settings).
    """
    from ..generation import refuse_foreign_units
    from ..tokenization_neuroformer import check_tokenizer_matches_config

    check_tokenizer_matches_config(tokenizer, config)
    refuse_foreign_units(tokenizer, recording)
    return unit_lookup(tokenizer, recording, config.vocab_size)


def check_attention_model(model, flag: str = "model") -> None:
    """Refuse, before any work, a model the attention analyses
    (:func:`~hf_neuroformer.analysis.connectivity.attention_connectivity`,
    :func:`~hf_neuroformer.analysis.visual_attention.visual_attention_maps`) cannot read: a model
    directory's path failed with "'str' object has no attribute 'config'" and a behaviour decoder
    with "'NeuroformerDecodingOutput' object has no attribute 'past_attentions'", naming no
    argument. (The analyses refuse a recording's path with
    :func:`~hf_neuroformer.recording.check_is_recording` and a processor in place of the tokenizer
    with :func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`.)

    Args:
        model: a ``NeuroformerForPreTraining`` or its backbone ``NeuroformerModel`` (any class of
            either name along the MRO passes: a model loaded as Hub remote code is another class
            object).
        flag: the argument named in the message (``"model"``, as the analyses call it).

    Raises:
        TypeError: ``model`` of another kind; the message names its type and says to load one with
            ``AutoModelForPreTraining.from_pretrained``.

    The check is :func:`~hf_neuroformer.argument_checks.check_model_kind`'s, with this kind's hints.
    """
    check_model_kind(
        model, ("NeuroformerForPreTraining", "NeuroformerModel"), flag,
        expected="a NeuroformerForPreTraining (or its backbone NeuroformerModel)",
        hints={"NeuroformerForBehaviorDecoding": "its outputs hold no past attentions"})


def attention_batches(model, tokenizer, recording: SpikeRecording, starts: np.ndarray,
                      past_clip_starts: Optional[np.ndarray], batch_size: int,
                      device, progress: bool = False,
                      desc: str = "attention over windows") -> Iterator[Tuple[range, dict, object]]:
    """Run ``model`` with ``output_attentions=True`` over the windows starting at ``starts`` (s).

    The windows are tokenized with the model's config, so a model with modality inputs reads them
    from ``recording`` as in training. The model is in eval mode while the batches are drawn and
    gets its training mode back at the end. ``progress`` shows a bar over the windows on standard
    error, named ``desc`` (off with ``TQDM_DISABLE=1``; see :func:`hf_neuroformer.progress.progress_bar`).

    Yields:
        ``(window indices, collated batch on device, model output)`` per ``batch_size`` windows.

    Warns:
        TruncatedWindowsWarning: windows held more spikes than the model's token blocks (or more
            modality tokens than a modality keeps), with the counts, once, before the first batch
            (:meth:`~hf_neuroformer.NeuroformerProcessor.warn_truncated`): the attention of such a
            window is over its kept tokens only, which was not said. It points at the line that called
            the generator's caller, which must be a ``torch.no_grad``-decorated function (as
            :func:`~hf_neuroformer.analysis.connectivity.attention_connectivity` and
            :func:`~hf_neuroformer.analysis.visual_attention.visual_attention_maps` are).

    Raises:
        ValueError: ``batch_size`` not an integer >= 1 (at the first batch, before any pass): -1
            gave no batch at all, so the callers returned all-zero results as if measured.
    """
    check_pass_settings(batch_size=batch_size)
    from ..processing_neuroformer import NeuroformerProcessor
    from ..windows import collated_batches

    processor = NeuroformerProcessor.from_config(tokenizer, model.config)
    # the warnings of tokenizing (reading a modality) and of truncation point at the line that
    # called attention_connectivity / visual_attention_maps: past this generator, its caller and
    # the caller's torch.no_grad wrapper (tokenize's default pointed into the package)
    cols = processor.tokenize(recording, starts, past_clip_starts, refuse_unrecorded_past=True,
                              stacklevel=5)
    processor.warn_truncated(cols, stacklevel=4)
    from ..progress import progress_bar

    was_training = model.training
    model.eval()
    bar = progress_bar(total=len(starts), desc=desc, unit="win", disable=not progress)
    try:
        for idx, batch in collated_batches(cols, processor.collator, batch_size, device):
            out = model(
                input_ids=batch["input_ids"], dt_ids=batch["dt_ids"], attention_mask=batch["attention_mask"],
                past_input_ids=batch["past_input_ids"], past_dt_ids=batch["past_dt_ids"],
                past_attention_mask=batch["past_attention_mask"], output_attentions=True, return_dict=True,
                **({"modality_inputs": batch["modality_inputs"]} if "modality_inputs" in batch else {}),
            )
            yield idx, batch, out
            bar.update(len(idx))
    finally:
        bar.close()
        model.train(was_training)


__all__ = [
    "attention_batches",
    "check_attention_model",
    "check_finite_weights",
    "check_pass_settings",
    "check_split_has_windows",
    "check_unit_indices",
    "model_unit_lookup",
    "nonfinite_weights",
    "unit_lookup",
]
