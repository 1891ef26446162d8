"""NeuroformerProcessor: a recording and window starts -> the model's input tensors.

The Hugging Face processor of Neuroformer (``AutoProcessor.from_pretrained(run_dir)`` after
``import hf_neuroformer``). It holds the run's :class:`NeuroformerTokenizer` (unit vocabulary,
window lengths, dt bins) and the specifications of the modality inputs (``config.modalities``:
sources, windows, classes), and turns windows of a :class:`SpikeRecording` into the padded
batch that ``NeuroformerModel`` / ``NeuroformerFor...`` take: the same tokenization
(:func:`hf_neuroformer.windows.tokenize_windows`) and padding
(:class:`hf_neuroformer.windows.NeuroformerCollator`) as training, so ``model(**inputs)`` scores
a window as training and evaluation do (Antoniades et al. 2024, arXiv 2311.00136, Sec. 3.1: the
spikes of the current window as unit-id + dt tokens, the spikes of the past window beside them).

The processor needs this package: it is not shipped as remote code with a pushed model (it reads
recordings, windows and modality inputs with most of the package). Without ``import hf_neuroformer``,
``AutoProcessor.from_pretrained`` of a local model directory says the processing class is not
recognised, and of a pushed repository with ``trust_remote_code=True`` refuses with an ``ImportError``
naming the package (its ``auto_map`` maps ``AutoProcessor`` to
:class:`~hf_neuroformer.tokenization_neuroformer.NeuroformerProcessorNeedsPackage`; before, the
tokenizer came back as the processor); ``AutoTokenizer`` gives the tokenizer alone.

A ``neuroformer train`` directory has no ``processor_config.json``: :meth:`from_pretrained`
reads the modality specifications from its ``config.json`` (the one place a run stores them).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin
from transformers.utils import cached_file

from .modalities import check_windows_read_modalities, modality_column_names, truncated_tokens_text
from .recording import SpikeRecording, check_is_recording, first_few
from .tokenization_neuroformer import NeuroformerTokenizer, not_in_cache_message
from .windows import (NeuroformerCollator, check_pasts_recorded, resolve_past_clip_starts, tokenize_windows,
                      window_starts_array)


class TruncatedWindowsWarning(UserWarning):
    """Windows held more spikes than their token blocks, or more modality tokens than a modality
    keeps. The tokenizer keeps the first ``max_window_length - 2`` spikes of a current window
    (without EOS then: the window goes on) and the latest ``max_past_length - 1`` of a past
    window; a modality keeps its latest ``max_tokens`` tokens (``num_frames`` frames for video)."""


class NeuroformerBatch(BatchFeature):
    """What :meth:`NeuroformerProcessor.__call__` returns: a ``transformers.BatchFeature`` (a
    mapping of tensors, so ``model(**inputs)`` works), whose :meth:`to` also moves the nested
    ``modality_inputs`` dicts, as transformers' own processors' outputs do for theirs:
    ``processor(recording, starts).to(model.device)``. A plain dict had no ``to``."""

    def to(self, *args, **kwargs) -> "NeuroformerBatch":
        """Move the tensors (nested ones too) as ``BatchFeature.to`` does: a device moves every
        tensor, a dtype casts only floating-point ones (ids and masks stay int64)."""
        modality = self.data.pop("modality_inputs", None)
        super().to(*args, **kwargs)
        if modality is not None:
            self.data["modality_inputs"] = {n: BatchFeature(dict(d)).to(*args, **kwargs).data
                                            for n, d in modality.items()}
        return self


class _ModalitySpecs:
    """The config fields :func:`~hf_neuroformer.modalities.modality_columns` reads: the modalities
    and the current window (s; where a future modality window, ``allow_future``, may be cut)."""

    def __init__(self, modalities, current_window=None):
        self.modalities = modalities
        self.current_window = current_window


class NeuroformerProcessor(ProcessorMixin):
    r"""Turns windows of a spike recording into Neuroformer's input tensors.

    Args:
        tokenizer: the model's :class:`NeuroformerTokenizer` (its vocabulary must hold the
            recording's units; its window settings are the model's).
        modalities: ``config.modalities`` of the model (list of dicts, fitted: categorical
            ``classes`` filled in by training), or ``None`` / ``[]`` for a spikes-only model.
        decoding: the model is a ``NeuroformerForBehaviorDecoding`` (a ``neuroformer finetune``
            directory: ``config.decoding_targets`` set), whose ``labels`` are the behaviour
            targets: the next-spike labels are then returned as ``token_labels`` (as
            :class:`~hf_neuroformer.decoding.DecodingCollator` gives them).
        split_mode: how the model's splits were planned (``splits.json`` ``"mode"``):
            ``"trials"`` (each window's past was clipped at its trial's start, so the default
            ``past_clip_starts="auto"`` does that too), ``"time"``, or ``None`` (unknown: no clip
            unless asked).
        model_vocab_size: the model's ``config.vocab_size`` (:meth:`from_config` and
            :meth:`from_pretrained` of a model directory set it; :meth:`save_pretrained` keeps it in
            ``processor_config.json``), or ``None`` for a bare processor. When set, the processor
            serves that model: a unit the tokenizer lacks is refused as a unit the model was not
            trained on, and a tokenizer of another length (grown with ``add_units`` after) is refused.

    Calling the processor (see :meth:`__call__`) gives ``input_ids``, ``dt_ids``,
    ``attention_mask``, ``labels``, ``dt_labels``, ``past_input_ids``, ``past_dt_ids``,
    ``past_attention_mask`` (and ``modality_inputs`` with modalities): ``model(**inputs)``
    returns the next-spike loss of those windows with a ``NeuroformerForPreTraining``, the
    behaviour predictions with a decoder (``token_labels`` in place of ``labels``), and the
    hidden states with a ``NeuroformerModel`` (``AutoModel``) given ``return_labels=False``.

    Example::

        import hf_neuroformer
        from transformers import AutoModelForPreTraining, AutoProcessor
        processor = AutoProcessor.from_pretrained("runs/a2929")
        model = AutoModelForPreTraining.from_pretrained("runs/a2929")
        inputs = processor(recording, window_starts=[900.0, 900.1])
        loss = model(**inputs).loss
    """

    def __init__(self, tokenizer: Optional[NeuroformerTokenizer] = None, modalities: Optional[List[dict]] = None,
                 decoding: bool = False, split_mode: Optional[str] = None, model_vocab_size: Optional[int] = None,
                 **kwargs):
        if not isinstance(tokenizer, NeuroformerTokenizer):
            got = type(tokenizer)
            same_name = got.__name__ == NeuroformerTokenizer.__name__
            raise TypeError(
                f"tokenizer: expected a NeuroformerTokenizer of {NeuroformerTokenizer.__module__}, got "
                f"{got.__module__}.{got.__name__}"
                + (" (a copy of the class loaded from elsewhere, e.g. a repository's remote code loaded before "
                   "hf_neuroformer was imported: import hf_neuroformer first, or load the tokenizer with "
                   "hf_neuroformer.NeuroformerTokenizer.from_pretrained)" if same_name else ""))
        if modalities is not None and not (isinstance(modalities, list) and all(isinstance(m, dict) for m in modalities)):
            raise TypeError("modalities: expected None or a list of modality dicts (NeuroformerConfig.modalities), "
                            f"got {type(modalities).__name__}")
        self.modalities = copy.deepcopy(modalities) if modalities else []
        if split_mode not in (None, "trials", "time"):
            raise ValueError(f"split_mode: expected 'trials', 'time' or None, got {split_mode!r}")
        if model_vocab_size is not None and (isinstance(model_vocab_size, bool) or not isinstance(
                model_vocab_size, (int, np.integer)) or model_vocab_size < 1):
            raise ValueError(f"model_vocab_size: expected None or an int >= 1, got {model_vocab_size!r}")
        self.decoding = bool(decoding)
        self.split_mode = split_mode
        # the model's unit vocabulary size (config.vocab_size) where the processor was made from its config
        # (from_config, from_pretrained of a model directory) or saved from such a processor: the tokenizer is
        # held to it at every call (an __init__ argument, so save_pretrained writes it to processor_config.json)
        self.model_vocab_size: Optional[int] = None if model_vocab_size is None else int(model_vocab_size)
        # a model's processor (a decoder's too): a unit the vocabulary lacks is refused as a unit the model was
        # not trained on, not with the tokenizer's add_units advice, which gives the unit an id the model has no
        # embedding for
        self._for_model = self.decoding or self.model_vocab_size is not None
        super().__init__(tokenizer, **kwargs)

    @classmethod
    def from_config(cls, tokenizer: NeuroformerTokenizer, config, split_mode: Optional[str] = None
                    ) -> "NeuroformerProcessor":
        """The processor of a model: ``tokenizer``, ``config.modalities`` and, for a decoder
        (``config.decoding_targets``), ``decoding=True`` (``config``: a NeuroformerConfig);
        ``split_mode``: the model's ``SplitPlan.mode`` (see the class).

        Raises:
            ValueError: the tokenizer's vocabulary or window settings do not match ``config``
                (:func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`).
        """
        from .tokenization_neuroformer import check_tokenizer_matches_config

        check_tokenizer_matches_config(tokenizer, config)
        return cls(tokenizer, modalities=config.modalities, decoding=bool(config.decoding_targets),
                   split_mode=split_mode, model_vocab_size=int(config.vocab_size))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "NeuroformerProcessor":
        """Load the tokenizer and the modality specifications of a saved processor or model.

        With a ``config.json`` there (a ``neuroformer train`` / ``finetune`` / ``prepare``
        directory, a pushed model) the modalities are its ``modalities`` (the model's, fitted
        statistics and classes included), and the tokenizer must match it
        (:func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`); a
        ``processor_config.json`` beside it that says otherwise (left by an earlier run in the
        same directory) is ignored with a warning. Without ``config.json`` (a directory written by
        :meth:`save_pretrained` alone) they come from ``processor_config.json``, with ``decoding``
        and ``model_vocab_size`` (a model's processor saved alone still serves that model). ``split_mode`` comes
        from the ``splits.json`` beside them when there is one (``train`` and ``finetune`` write it,
        ``neuroformer push`` uploads it). Hub arguments
        (``revision``, ``token``, ``cache_dir``, ``local_files_only``, ``trust_remote_code``...)
        are passed on. A save into a local folder killed after its commit is completed first
        (:func:`~hf_neuroformer.save_journal.finish_interrupted_save`; with ``subfolder=``, the save
        into that subfolder, the folder read).

        Raises:
            OSError: neither file exists there, or the tokenizer's ``vocab.json`` is missing; offline
                (``local_files_only=True`` or ``HF_HUB_OFFLINE=1``) with a repository id, such a file
                not in the cache is named as that, with how to fetch it
                (:func:`~hf_neuroformer.tokenization_neuroformer.not_in_cache_message`).
            ValueError: the tokenizer does not match ``config.json`` (vocabulary size or window
                settings).

        Warns:
            UserWarning: ``processor_config.json`` holds other modalities than ``config.json``.
        """
        from .configuration_neuroformer import NeuroformerConfig, finish_interrupted_save_of
        from .tokenization_neuroformer import check_tokenizer_matches_config

        # a save killed after its commit: complete it as the config, model and tokenizer classes do,
        # before looking for the files still in its staging folder
        finish_interrupted_save_of(pretrained_model_name_or_path, kwargs.get("subfolder"))
        hub = {k: kwargs[k] for k in ("cache_dir", "force_download", "local_files_only", "token", "revision",
                                      "subfolder") if k in kwargs}
        has_processor_config = _file(pretrained_model_name_or_path, "processor_config.json", hub) is not None
        config_file = _file(pretrained_model_name_or_path, "config.json", hub)
        offline = hub.get("local_files_only", False)
        if not has_processor_config and config_file is None:
            uncached = not_in_cache_message(pretrained_model_name_or_path, "config.json", offline)
            if uncached is not None:
                raise OSError(uncached)
            raise OSError(f"{pretrained_model_name_or_path}: neither processor_config.json nor config.json; "
                          "expected a neuroformer train / finetune directory or a saved NeuroformerProcessor")
        if _file(pretrained_model_name_or_path, "vocab.json", hub) is None:
            uncached = not_in_cache_message(pretrained_model_name_or_path, "vocab.json", offline)
            if uncached is not None:
                raise OSError(uncached)
            # without it the tokenizer would load with the specials only and default windows
            raise OSError(f"{pretrained_model_name_or_path}: no vocab.json (the tokenizer's unit vocabulary); "
                          "expected the tokenizer files saved with the model (tokenizer.save_pretrained)")
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        if config_file is not None:
            config = NeuroformerConfig.from_json_file(config_file)
            modalities = copy.deepcopy(config.modalities or [])
            if has_processor_config and not _same_modalities(processor.modalities, modalities):
                warnings.warn(f"{pretrained_model_name_or_path}: processor_config.json holds other modalities than "
                              "config.json (left by an earlier run in this directory?); using config.json's, the "
                              "model's", UserWarning, stacklevel=2)
            processor.modalities = modalities
            processor.decoding = bool(config.decoding_targets)
            processor._for_model = True
            processor.model_vocab_size = int(config.vocab_size)
            check_tokenizer_matches_config(processor.tokenizer, config)
        splits_file = _file(pretrained_model_name_or_path, "splits.json", hub)
        if splits_file is not None:
            with open(splits_file, encoding="utf-8") as f:
                processor.split_mode = json.load(f).get("mode")
        return processor

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """``ProcessorMixin.save_pretrained``: ``processor_config.json`` and the tokenizer files.

        Warns:
            UserWarning: ``push_to_hub=True``, as :meth:`push_to_hub` warns.
        """
        if push_to_hub:
            _warn_no_remote_code("save_pretrained(push_to_hub=True)")
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    def push_to_hub(self, *args, **kwargs):
        """transformers' ``push_to_hub``, with a warning: it uploads ``processor_config.json`` and
        the tokenizer files without remote code (the processor is not remote code, and the tokenizer
        goes up without its ``tokenization_neuroformer.py`` and ``auto_map``), so the repository's
        ``AutoProcessor`` / ``AutoTokenizer`` load only where ``hf_neuroformer`` is installed.
        ``hf_neuroformer.push_to_hub(model_dir, repo_id)`` / ``neuroformer push`` push a model
        directory with its remote code (``AutoProcessor`` there refuses with the way to the package).

        Warns:
            UserWarning: always (see above).
        """
        _warn_no_remote_code("push_to_hub")
        return super().push_to_hub(*args, **kwargs)

    def tokenize(self, recording: SpikeRecording, window_starts: Sequence[float],
                 past_clip_starts="auto", *, check_modalities: bool = False,
                 refuse_unrecorded_past: bool = False, stacklevel: int = 3) -> Dict[str, list]:
        """The windows as columns (one list entry per window), as :func:`build_window_datasets`
        stores them: ``window_start``, ``input_ids``, ``dt_ids``, ``past_input_ids``,
        ``past_dt_ids``, ``n_spikes``, ``n_truncated``, ``n_past_truncated``,
        ``past_clip_start`` and the ``mod_*`` columns of the modalities.

        Args and errors: see :meth:`__call__`; ``check_modalities=True`` runs :meth:`check_recording`
        once, after the window starts and clips are checked (:meth:`__call__` and :meth:`to_dataset`
        do; the library's own callers have checked the recording already). ``refuse_unrecorded_past=True``
        (window_log_likelihoods, decode_windows, the attention analyses: as generate_spikes) refuses, with
        a ValueError naming the window, a window whose past window (from its clip on) starts before the
        recorded stretch holding it, which would be read as silence; ``"auto"`` clips such pasts instead.
        ``stacklevel``: where the warnings point, as ``warnings.warn`` called here would take it (3,
        the default: the caller of the method that called this one, e.g. :meth:`__call__`'s caller).
        """
        check_is_recording(recording)  # a path: read it with load_recording, the message says
        if self._for_model:
            from .generation import refuse_foreign_units

            refuse_foreign_units(self.tokenizer, recording)
            self._check_model_vocabulary(recording)
        starts = window_starts_array(window_starts)
        # a current window outside the recorded time would be read as silence and scored as such (refused, naming
        # window_starts); "trials" / "auto" / seconds resolved and checked as every reader of windows does
        clips = resolve_past_clip_starts(recording, starts, past_clip_starts, past_window=self.tokenizer.past_window,
                                         current_window=self.tokenizer.current_window, split_mode=self.split_mode,
                                         stacklevel=stacklevel)
        if refuse_unrecorded_past:  # a past before the recorded time would be read as silence
            check_pasts_recorded(recording, starts, clips, self.tokenizer.past_window, self.tokenizer.current_window)
        if check_modalities:  # once per call, before any window is read (stacklevel: the caller of __call__)
            self.check_recording(recording, stacklevel=stacklevel + 1)
        return tokenize_windows(recording, self.tokenizer, starts, clips,
                                _ModalitySpecs(self.modalities, self.tokenizer.current_window),
                                stacklevel=stacklevel + 1)

    def _check_model_vocabulary(self, recording: SpikeRecording) -> None:
        """Refuse a tokenizer whose length is no longer the model's ``config.vocab_size`` (grown with
        ``processor.tokenizer.add_units`` after the processor was made): the units it added passed the
        check of foreign units and were tokenized with ids ``>= vocab_size``, which the model has no
        embedding for (it refused them only at ``model(**inputs)``, advising to grow the model).

        Raises:
            ValueError: naming ``len(tokenizer)``, ``config.vocab_size`` and, where the recording holds
                some of the model's units, the ``recording.select_units([...])`` call that keeps them.
        """
        n, v = len(self.tokenizer), self.model_vocab_size
        if v is None or n == v:
            return
        if n < v:
            raise ValueError(f"tokenizer: len(tokenizer) = {n} tokens, but the model's config.vocab_size = {v}: not "
                             "the model's tokenizer (its unit ids would name other units); use the tokenizer saved "
                             "with the model")
        vocab = self.tokenizer.get_vocab()
        ids = [vocab[t] for t in self.tokenizer.recording_unit_tokens(recording)]
        kept = [str(name) for name, i in zip(recording.unit_names, ids) if i < v]
        new = len(ids) - len(kept)
        fix = "use the model's own tokenizer (AutoProcessor.from_pretrained(<model folder>) again)"
        if kept and new:
            names = first_few(kept, 5, count_rest=False)
            fix += f" and keep only the {len(kept)} units of this recording it knows: recording.select_units([{names}])"
        raise ValueError(
            f"tokenizer: len(tokenizer) = {n} tokens, but the model's config.vocab_size = {v}: the tokenizer was grown "
            f"(tokenizer.add_units) after this processor was made, and the model has no embedding for its units with "
            f"ids {v} .. {n - 1} ({new} of this recording's {len(ids)} units); a trained model reads only the units "
            f"it was trained on: {fix}; to train it on new units, grow it first with "
            "model.resize_unit_embeddings(len(tokenizer)) and make the processor again with "
            "NeuroformerProcessor.from_config(tokenizer, model.config)")

    def __call__(self, recording: SpikeRecording, window_starts: Sequence[float],
                 past_clip_starts="auto", *, return_tensors: str = "pt",
                 return_labels: bool = True, device=None) -> NeuroformerBatch:
        """Tokenize and pad the windows of ``recording`` that start at ``window_starts``.

        Args:
            recording: the spikes (and, for a model with modality inputs, the behaviour, stimuli
                or events it reads), e.g. from :func:`hf_neuroformer.io.load_recording`.
            window_starts: ``(n_windows,)`` current-window starts, s (float64, finite), in any
                order. Each window covers ``[start, start + current_window)``, which must lie
                inside one interval of ``recording.support`` (the time support, else the time
                domain); its past ``[start - past_window, start)`` is read where recorded.
            past_clip_starts: ``"auto"`` (default), ``"trials"``, ``None`` (the whole past
                window), or ``(n_windows,)`` seconds: the past window starts no earlier than this
                (NaN for no clip). A model trained in trial mode (``splits.json`` ``"mode":
                "trials"``: ``split_by`` trials, or ``auto`` with at least 3 trials) saw each
                window's past clipped at its trial's start; ``"trials"`` does that (the start of
                the trial each window starts in, :func:`~hf_neuroformer.windows.trial_at`; a window
                outside every trial, which training never saw, is clipped at the end of the latest
                trial that ended by its start, so its past holds inter-trial time and no trial's
                spikes (no clip before the first trial ends); the latest-starting one where trials
                overlap, with a warning: training made windows of each overlapping trial, each clipped at its own start, so
                there pass the clip starts of :func:`~hf_neuroformer.windows.window_starts_for_split`),
                as does the ``past_clip_start`` column of its window datasets. ``"auto"`` is
                ``"trials"`` when the processor's ``split_mode`` is ``"trials"`` and the recording
                has trials (with a warning when it has none), else ``None``; either way ``"auto"`` also
                clips a past window that reaches before the start of the recorded stretch holding its
                window (an interval of ``recording.support``, touching ones merged) at that start, so a
                window at a trial of a time support with unrecorded gaps (the Allen reader's) does not
                read the gap as silence (training windows never do: a time split keeps each window's past
                inside its stretch), so a stretch's first windows get a partial (possibly empty) past.
                ``None`` reads the whole past window. Resolved as every reader of windows resolves them
                (:func:`~hf_neuroformer.windows.resolve_past_clip_starts`: generate_spikes,
                window_log_likelihoods, decode_windows and the attention analyses take the same strings).
            return_tensors: only ``"pt"`` (PyTorch).
            return_labels: give the next-spike ``labels`` and ``dt_labels`` (``token_labels`` and
                ``dt_labels`` for a decoder); False for a ``NeuroformerModel``, whose forward
                takes no labels.
            device: move every tensor there (``torch.device`` or str); default CPU.

        Returns:
            a :class:`NeuroformerBatch` (a ``BatchFeature``: a mapping with ``.to(device)``, nested
            modality inputs included) of ``torch.int64`` tensors, ``B = n_windows``, ``T`` / ``P`` the longest current /
            past token sequence: ``input_ids``, ``dt_ids``, ``attention_mask``, ``labels``
            (``-100`` at padding; ``token_labels`` for a decoder), ``dt_labels`` (``-100`` at
            BOS, EOS, padding) ``(B, T)``; ``past_input_ids``, ``past_dt_ids``,
            ``past_attention_mask`` ``(B, P)``; with modalities ``modality_inputs`` (name ->
            dict of tensors, see :class:`~hf_neuroformer.windows.NeuroformerCollator`).

        Raises:
            TypeError: ``recording`` is not a SpikeRecording.
            ValueError: empty, non-1-D, non-finite or float32 / float16 ``window_starts`` (or
                ``past_clip_starts``: float32 700.05 is 700.0499877929688 s, so a start widened to
                float64 would put the window 12 µs early, off the 1 ns window grid; pass float64),
                or a current window outside the recorded time (before, after, or in a gap of the time support, which
                would be read as silence); ``past_clip_starts`` of another length, more than
                1 ns (the window grid) after its window, ``"trials"`` without trials, or another
                string;
                ``return_tensors`` other than ``"pt"``; ``return_labels`` other than True / False; a modality source missing from the
                recording, or frames of another size than the model's video modality (:meth:`check_recording`,
                once per call: the check of the commands that run a trained model); for a model's processor
                (``from_config``, ``from_pretrained`` of a model directory), a tokenizer grown with
                ``add_units`` after the processor was made (``len(tokenizer)`` other than the model's
                ``config.vocab_size``: its new units have no embedding in the model), naming both sizes
                and the ``recording.select_units([...])`` call that keeps the units the model knows.
            UnknownUnitError: a unit of the recording is not in the tokenizer's vocabulary; for a
                model's processor (``from_config``, ``from_pretrained`` of a model directory, a
                decoder's) it names the units the model knows and how to keep only those
                (:func:`~hf_neuroformer.generation.check_recording_units`), since a trained model
                cannot read a unit it was not trained on.

        Warns:
            TruncatedWindowsWarning: windows held more spikes than the token blocks; says how
                many windows and spikes (the model's ``max_window_length`` / ``max_past_length``).
                One more per modality whose windows held more than its ``max_tokens`` tokens
                (``num_frames`` frames), with the counts.
            UserWarning: with ``past_clip_starts`` ``"auto"`` or ``"trials"``, windows that start
                inside more than one (overlapping) trial, counted; with ``"auto"``, a model planned
                by trials given a recording without trials (no clip); frames on another pixel scale than the
                model's training frames (:meth:`check_recording`); a modality of which none of the windows holds a
                value in its modality window (the model reads only its learned null token for all of them: the
                series not recorded at these times, e.g. head direction in sleep), naming it and counting the
                windows (:func:`~hf_neuroformer.modalities.check_windows_read_modalities`); not for an
                event stream (``events:...``), where a batch without an event is normal (:meth:`to_dataset`
                warns of it over a whole set of windows).
        """
        if return_tensors != "pt":
            raise ValueError(f"return_tensors: only 'pt' (PyTorch) is supported, got {return_tensors!r}")
        if not isinstance(return_labels, (bool, np.bool_)):  # "no" is truthy: labels were given
            raise ValueError(f"return_labels: expected True or False, got {return_labels!r}")
        cols = self.tokenize(recording, window_starts, past_clip_starts, check_modalities=True)
        self.warn_truncated(cols, stacklevel=3)
        # an event stream: a batch of windows holding no event is normal (ripples, trial onsets), so a
        # batch is not warned of; to_dataset (a whole set of windows) and train's splits are
        check_windows_read_modalities(_ModalitySpecs(self.modalities), {"": cols}, stacklevel=3, events=False)
        keys = [k for k in cols if k in ("input_ids", "dt_ids", "past_input_ids", "past_dt_ids") or k.startswith("mod_")]
        rows = [{k: cols[k][i] for k in keys} for i in range(len(cols["input_ids"]))]
        batch = self.collator(rows)  # a decoder's: the next-spike labels as token_labels
        if not return_labels:
            del batch["token_labels" if self.decoding else "labels"], batch["dt_labels"]
        if device is not None:
            from .windows import batch_to_device

            batch = batch_to_device(batch, torch.device(device))
        return NeuroformerBatch(batch)

    def check_recording(self, recording: SpikeRecording, stacklevel: int = 2) -> None:
        """Check once that ``recording`` holds every modality the model reads, as it reads it
        (:func:`~hf_neuroformer.modalities.check_recording_modalities`, the check of the commands
        that run a trained model, with the argument named ``recording``): :meth:`__call__` and
        :meth:`to_dataset` run it before tokenizing (after checking their other arguments).
        ``stacklevel``: of its warnings, as ``warnings.warn`` counts it from this method (2: its caller).

        Raises:
            TypeError: ``recording`` is not a SpikeRecording.
            ValueError: opening with ``recording:``; a modality source the recording does not hold
                (or frames of another size than the model's video modality).

        Warns:
            UserWarning: frames on another pixel scale than the model's training frames (uint8
                0-255 for a model trained on floats in [0, 1], or the reverse); most samples (or
                frames, intervals) of a modality outside the recording's time domain (timestamps in
                ms?).
        """
        from .modalities import check_recording_modalities

        check_is_recording(recording)  # a path: read it with load_recording, the message says
        if not self.modalities:
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_recording_modalities(_ModalitySpecs(self.modalities), recording, flag="recording", epoch=False)
        # the check's own warnings (they open with the argument's name); those of reading a modality
        # (modality_track: angles that look like degrees) come again when the windows are tokenized
        for w in caught:
            if str(w.message).startswith("recording: "):
                warnings.warn(w.message, w.category, stacklevel=stacklevel)

    def warn_truncated(self, cols, stacklevel: int = 2) -> None:
        """Warn of the windows of ``cols`` (the columns of :meth:`tokenize`, or a window
        ``datasets.Dataset``) that held more spikes than the token blocks, or more modality tokens
        than a modality keeps, with the counts (:class:`TruncatedWindowsWarning`); nothing when none
        did. ``stacklevel`` is passed to ``warnings.warn`` (2: the caller of this method)."""
        n_cur, n_past = np.asarray(cols["n_truncated"]), np.asarray(cols["n_past_truncated"])
        if n_cur.any() or n_past.any():
            warnings.warn(
                f"{int((n_cur > 0).sum())} of {len(n_cur)} windows held more spikes than max_window_length - 2 = "
                f"{self.tokenizer.max_window_length - 2} ({int(n_cur.sum())} spikes left out, the latest), and "
                f"{int((n_past > 0).sum())} past windows more than max_past_length - 1 = "
                f"{self.tokenizer.max_past_length - 1} ({int(n_past.sum())} spikes left out, the earliest)",
                TruncatedWindowsWarning, stacklevel=stacklevel + 1)
        for mod in self.modalities:  # as training reports them: modality tokens beyond max_tokens / num_frames
            n_mod = np.asarray(cols[modality_column_names(mod)[2]])
            if n_mod.any():
                warnings.warn(f"modality {mod['name']!r}: {int((n_mod > 0).sum())} of {len(n_mod)} windows held "
                              f"{truncated_tokens_text(mod)} ({int(n_mod.sum())} left out, the earliest)",
                              TruncatedWindowsWarning, stacklevel=stacklevel + 1)

    def to_dataset(self, recording: SpikeRecording, window_starts: Sequence[float], past_clip_starts="auto", *,
                   check_modalities: bool = True):
        """The windows as a ``datasets.Dataset``, one row per window: the columns of
        :meth:`tokenize`, with the fixed schema of training's window tables
        (:func:`~hf_neuroformer.windows.window_features`). With :attr:`collator` as
        ``data_collator`` it is what ``transformers.Trainer`` takes to train or evaluate a
        ``NeuroformerForPreTraining`` on these windows (next-spike loss; ``TrainingArguments(
        remove_unused_columns=False)``, since the collator reads columns that are not forward
        arguments). Without ``data_collator`` Trainer uses transformers' ``default_data_collator``
        (``processing_class=processor`` does not change that), which cannot pad the windows
        (``ValueError: expected sequence of length ... at dim 1``). A decoder's behaviour labels are not here: see
        :func:`hf_neuroformer.decoding.build_decoding_datasets`.

        Args and errors: see :meth:`__call__`; ``check_modalities=False`` skips
        :meth:`check_recording` (a caller that has run it already). Windows that held more spikes
        than the token blocks are warned about with their counts (:class:`TruncatedWindowsWarning`,
        as :meth:`__call__` does; GUIDE trap 10: a Trainer run on them would otherwise learn from
        cut windows without a word), and the ``n_truncated`` / ``n_past_truncated`` columns count
        them per window. A modality of which none of the windows holds a value is warned about, as
        :meth:`__call__` does.
        """
        import datasets

        from .windows import window_features

        cols = self.tokenize(recording, window_starts, past_clip_starts, check_modalities=check_modalities)
        # the windows a Trainer trains or evaluates on: their cut was only counted in two columns
        self.warn_truncated(cols, stacklevel=2)
        check_windows_read_modalities(_ModalitySpecs(self.modalities), {"": cols}, stacklevel=3)
        return datasets.Dataset.from_dict(cols, features=window_features(_ModalitySpecs(self.modalities)))

    @property
    def collator(self) -> NeuroformerCollator:
        """The padding of training (:class:`~hf_neuroformer.windows.NeuroformerCollator`) for
        window rows such as :meth:`tokenize`'s or a window dataset's. A decoder's processor
        (:attr:`decoding`) gives the next-spike labels as ``token_labels``, as :meth:`__call__` does (a
        decoder's ``labels`` are its behaviour targets, which these rows do not hold:
        :class:`~hf_neuroformer.decoding.DecodingCollator` adds them from ``target_<name>`` columns).
        It refuses rows holding a unit id beyond this tokenizer (its length read at each call, so
        units added with ``tokenizer.add_units`` after the collator was made are accepted by a bare
        processor's collator; a model's processor (:attr:`model_vocab_size` set) refuses ids
        ``>= model_vocab_size``, units the model has no embedding for, naming the id and the model's
        vocab_size; ``ValueError`` naming the row, the column and the id): windows of another model's or
        prepared directory's tokenizer, e.g. read back with ``datasets.load_from_disk``, whose ids
        name other units (a vocabulary of the same length in another order cannot be told from the
        ids alone: collate windows with the processor of the tokenizer that made them)."""
        tok = self.tokenizer
        if self.decoding:
            from .decoding import DecodingCollator

            return DecodingCollator((), tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, self.modalities,
                                    tokenizer=tok, model_vocab_size=self.model_vocab_size)
        # the tokenizer, not its length now: a collator kept (a Trainer's data_collator) refused the ids of units
        # added with tokenizer.add_units afterwards as another tokenizer's; a model's processor also refuses the
        # ids the model has no embedding for (units added after the model was made)
        return NeuroformerCollator(tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, self.modalities,
                                   tokenizer=tok, model_vocab_size=self.model_vocab_size)

    @property
    def model_input_names(self) -> List[str]:
        """Names of the window tensors :meth:`__call__` returns that the model's ``forward``
        reads (labels and modality inputs aside)."""
        return ["input_ids", "dt_ids", "attention_mask", "past_input_ids", "past_dt_ids", "past_attention_mask"]


def _warn_no_remote_code(method: str) -> None:
    """Warn that transformers' ``NeuroformerProcessor.method`` uploads no remote code (see
    :meth:`NeuroformerProcessor.push_to_hub`); the warning points at the caller of ``method``."""
    warnings.warn(
        f"NeuroformerProcessor.{method} uploads processor_config.json and the tokenizer files without remote code "
        "(no auto_map, no tokenization_neuroformer.py, no model): the repository's AutoProcessor and AutoTokenizer "
        "load only where hf_neuroformer is installed. To share a model directory (model, tokenizer, processor "
        "settings, remote code) as the README describes, use hf_neuroformer.push_to_hub(model_dir, repo_id) or "
        "'neuroformer push'", UserWarning, stacklevel=3)


def _same_modalities(a: List[dict], b: List[dict]) -> bool:
    """The same modality specifications, a key missing from one dict counting as its default None
    (a ``processor_config.json`` saved before a key was added, e.g. ``frame_interval``, is not stale)."""
    return len(a) == len(b) and all(x.get(k) == y.get(k) for x, y in zip(a, b) for k in set(x) | set(y))


def _file(path_or_repo, name: str, hub: dict) -> Optional[str]:
    """Local path of ``name`` in a directory or Hub repo, or None when it has none."""
    if os.path.isdir(str(path_or_repo)):
        p = os.path.join(str(path_or_repo), hub.get("subfolder") or "", name)
        return p if os.path.isfile(p) else None
    return cached_file(path_or_repo, name, _raise_exceptions_for_missing_entries=False, **hub)


__all__ = ["NeuroformerProcessor", "NeuroformerBatch", "TruncatedWindowsWarning"]
