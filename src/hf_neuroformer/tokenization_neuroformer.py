"""NeuroformerTokenizer: spikes <-> (unit-id token, dt token) pairs.

Antoniades et al. 2024 (arXiv 2311.00136), Sec. 3.1: each spike of a window is a token made of
the unit that fired and its time offset ``dt`` inside the window. This tokenizer holds the
unit-id vocabulary (special tokens first, then one token per unit, named
``"<session>/<unit name>"`` so that units of several sessions can share one vocabulary) and the
dt quantisation (``dt_id = floor(dt / dt_resolution)``).

Ordering rule: inside a window, spikes are ordered by dt bin, then by unit token id. Spikes of the
same unit in the same dt bin stay as separate tokens.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import weakref
from typing import Dict, List, Optional, Sequence

import numpy as np
from transformers import PreTrainedTokenizer

from .binning import (bin_index, n_bins_covering, narrow_float_times_message, not_ascending_message, not_finite_message,
                      on_time_grid, past_starts, window_ends)
from .configuration_neuroformer import (FIRST_UNIT_ID, WINDOW_FIELDS, carried_remote_code, check_window_settings,
                                        finish_interrupted_save_of)

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json"}
#: what transformers' ``from_pretrained`` adds to a loaded tokenizer's ``init_kwargs`` about the load
#: itself; left out of the ``tokenizer_config.json`` that :meth:`NeuroformerTokenizer.save_pretrained` writes
_LOAD_KWARGS = ("is_local", "local_files_only")


#: the session name generate_spikes gives a generated recording: ``<session>-generated[-sample<k>]``
_GENERATED_SESSION = re.compile(r"(.+)-generated(?:-sample\d+)?")


def generated_source_session(session) -> Optional[str]:
    """The recorded session a generated recording's ``session`` names (``"<session>-generated"`` or
    ``"<session>-generated-sample<k>"``, as :func:`hf_neuroformer.generation.generate_spikes` names its
    output), or None for any other session name."""
    m = _GENERATED_SESSION.fullmatch(str(session))
    return m.group(1) if m else None

class UnknownUnitError(ValueError):
    """A unit that is not in the tokenizer's vocabulary (a ``ValueError``, so ``except ValueError``
    catches it).

    Raised by :meth:`NeuroformerTokenizer.unit_token_ids` (and so by the processor and windowing) for
    a recording unit missing from the vocabulary, naming the unit's index and token
    (``"<session>/<unit>"``) and the call that fixes it, ``tokenizer.add_units(recording)``; by
    :func:`~hf_neuroformer.generation.generate_spikes` and the other functions that read a trained
    model with a recording, for a recording of other units than the model's, naming the model's
    session(s) (a trained model has no embedding for new units); by token/id conversion
    (``convert_tokens_to_ids``, ``convert_ids_to_tokens``) for a token not in the vocabulary or an
    id outside ``[0, len(vocab))``; and by ``decode_window`` for a decoded id that names no unit.
    """


class TokenIdError(ValueError):
    """A token id that is not an integer (a float, a bool, text), or ids given in another shape than
    one id or a 1-D sequence of ids (a ``ValueError``).

    Raised by the tokenizer's id conversions and ``decode_window`` before any id is looked up; the
    message names the argument (and the index of the first bad element, e.g. ``input_ids[3]``), what
    was expected (integer ids: Python or numpy integers, not bools; integer arrays of any int dtype)
    and what was given (type and value, or an array's dtype / shape).
    """


def _is_token_id(x) -> bool:
    """An integer, Python's or numpy's, that is not a bool (``True`` is an ``int``)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _as_token_ids(ids, field: str = "ids"):
    """``ids`` as transformers' ``convert_ids_to_tokens`` takes them: one ``int``, or a list of them.

    Accepts an integer (``int``, a numpy integer scalar, a 0-d integer array or tensor) or a 1-D
    sequence of them (list, tuple, numpy integer array, integer tensor). ``field`` names the
    argument in the messages (``decode_window`` checks its ``input_ids`` and ``dt_ids`` here).

    Raises:
        TokenIdError: (a ``ValueError``) a float or bool id (transformers' ``int(index)`` read
            ``1.7`` as id 1 and ``True`` as id 1), text, an array or tensor of a float or bool dtype,
            or of more than 1 dimension, naming the id (its index) and what was expected.
    """
    if hasattr(ids, "detach") and hasattr(ids, "cpu"):  # a torch tensor (this module does not import torch)
        ids = ids.detach().cpu().numpy()
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind not in "iu":
            raise TokenIdError(f"{field}: expected integer token ids, got an array of dtype {ids.dtype}"
                               + ("; round them and cast to int64 first" if ids.dtype.kind == "f" else ""))
        if ids.ndim > 1:
            raise TokenIdError(f"{field}: expected one token id or a 1-D sequence of them, got an array of shape "
                               f"{ids.shape}; convert one row at a time")
        return int(ids) if ids.ndim == 0 else ids.tolist()
    if _is_token_id(ids):
        return int(ids)
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise TokenIdError(f"{field}: expected a token id (an integer) or a 1-D sequence of them, got "
                           f"{type(ids).__name__} {ids!r}")
    out = []
    for i, x in enumerate(ids):
        if hasattr(x, "detach") and hasattr(x, "cpu"):
            x = x.detach().cpu().numpy()
        if isinstance(x, np.ndarray) and x.ndim == 0:
            x = x[()]
        if not _is_token_id(x):
            raise TokenIdError(f"{field}[{i}]: expected an integer token id, got {type(x).__name__} {x!r}")
        out.append(int(x))
    return out


class NeuroformerTokenizer(PreTrainedTokenizer):
    r"""Unit-id vocabulary plus dt quantisation for Neuroformer windows (Antoniades et al. 2024,
    arXiv 2311.00136, Sec. 3.1; the rules are in the module docstring).

    Args:
        vocab_file (str, optional): ``vocab.json`` mapping token -> id (as saved by
            :meth:`save_pretrained`). Without it the vocabulary holds only the specials.
        unit_tokens (list of str, optional): unit token names to add after the specials.
        dt_resolution (float): dt bin width, s.
        current_window (float): current window length, s.
        past_window (float): past window length, s.
        max_window_length (int): maximum current-window tokens including BOS and EOS.
        max_past_length (int): maximum past-window tokens including the leading BOS.

    The window settings follow :class:`NeuroformerConfig`'s rule
    (:func:`~hf_neuroformer.configuration_neuroformer.check_window_settings`): finite windows
    (``current_window > 0``, ``past_window >= 0``), ``0 < dt_resolution <= current_window``,
    integer ``max_window_length >= 3`` and ``max_past_length >= 1``; anything else is a
    ``ValueError`` naming the field.

    The three specials are ``<pad>`` (id 0), ``<bos>`` (1) and ``<eos>`` (2); the units follow from
    :data:`~hf_neuroformer.configuration_neuroformer.FIRST_UNIT_ID` (3, the number of specials) in the
    order they were added. Text input is a
    whitespace-separated list of unit tokens, e.g. ``tokenizer("session0/unit3 session0/unit7")``;
    a unit token is any whitespace-free name, one holding a special token's text (``"s/<eos>"``)
    included (:meth:`tokenize`).

    Raises:
        UnknownUnitError: when a unit token is not in the vocabulary (no silent ``<unk>``).
        ValueError: a ``vocab_file`` that is not a token -> id object with ids ``0 .. n-1``, each
            once, the specials at 0-2 and unit tokens without whitespace (naming the entry).
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: Optional[str] = None,
        unit_tokens: Optional[Sequence[str]] = None,
        dt_resolution: float = 0.005,
        current_window: float = 0.1,
        past_window: float = 1.0,
        max_window_length: int = 64,
        max_past_length: int = 256,
        pad_token: str = "<pad>",
        bos_token: str = "<bos>",
        eos_token: str = "<eos>",
        **kwargs,
    ):
        specials = [str(pad_token), str(bos_token), str(eos_token)]
        if vocab_file is not None:
            with open(vocab_file, encoding="utf-8") as f:
                vocab = json.load(f)
            _check_vocab(vocab, vocab_file)
        else:
            vocab = {tok: i for i, tok in enumerate(specials)}
        for i, tok in enumerate(specials):
            if vocab.get(tok) != i:
                raise ValueError(f"vocab_file: expected special token {tok!r} at id {i}, got {vocab.get(tok)!r}")
        self.vocab: Dict[str, int] = dict(vocab)
        self.ids_to_tokens: Dict[int, str] = {i: t for t, i in self.vocab.items()}
        if unit_tokens:
            self._append_units(unit_tokens)
        # the config's rule (NaN / inf windows, max_window_length < 3, max_past_length < 1 refused)
        win = check_window_settings(
            "NeuroformerTokenizer", current_window=current_window, past_window=past_window,
            dt_resolution=dt_resolution, max_window_length=max_window_length, max_past_length=max_past_length,
        )
        self.dt_resolution = win["dt_resolution"]
        self.current_window = win["current_window"]
        self.past_window = win["past_window"]
        self.max_past_length = win["max_past_length"]
        # model_max_length is max_window_length (the property below); set before the base class
        # assigns model_max_length, which the property's setter checks against it
        self.max_window_length = win["max_window_length"]
        kwargs.setdefault("model_max_length", win["max_window_length"])
        self._check_model_max_length(kwargs["model_max_length"])
        # accepted, saved and used by pad(), and then every padded batch refused by the model, whose
        # current-window tokens sit at absolute positions
        _check_padding_side(kwargs.get("padding_side", "right"))
        if kwargs.get("added_tokens_decoder"):
            # a unit there (tokenizer_config.json saved after add_tokens of a known unit) became an added token
            # again at the next special-token call, and the text 's/10' was split at the unit 's/1': units live
            # in vocab.json alone
            kwargs["added_tokens_decoder"] = {i: t for i, t in kwargs["added_tokens_decoder"].items()
                                              if int(i) < FIRST_UNIT_ID}
        super().__init__(pad_token=pad_token, bos_token=bos_token, eos_token=eos_token, **kwargs)

    @property
    def padding_side(self) -> str:
        """Always ``"right"``: a window's tokens are embedded by absolute position from its BOS.
        Assigning another value is refused (``tokenizer.padding_side = "left"`` was kept after
        construction, and ``pad()`` then padded on the left, which the model refuses at every
        batch); so is ``pad(..., padding_side="left")``."""
        return "right"

    @padding_side.setter
    def padding_side(self, value) -> None:
        _check_padding_side(value)

    def pad(self, encoded_inputs, *args, **kwargs):
        """transformers' ``pad`` (right padding, ``attention_mask``), for rows of ``input_ids`` only.

        Window rows (:func:`~hf_neuroformer.windows.tokenize_windows`, a window dataset, the
        processor's :meth:`~hf_neuroformer.NeuroformerProcessor.tokenize`) are refused: their
        ``dt_ids`` were left unpadded beside padded ``input_ids`` (token ``k`` of a short row had no
        dt bin), ``past_input_ids`` / ``past_dt_ids`` too, and ``return_tensors="pt"`` (what
        ``transformers.DataCollatorWithPadding`` asks for) failed with "Unable to create tensor
        ... activate truncation and/or padding", naming neither. ``processor.collator``
        (:class:`~hf_neuroformer.windows.NeuroformerCollator`) pads them.

        Raises:
            ValueError: ``encoded_inputs`` (a row, a list of rows or a dict of lists) holds
                ``dt_ids``, ``past_input_ids`` or ``past_dt_ids``, naming them.
        """
        rows = encoded_inputs
        if isinstance(rows, (list, tuple)) and rows and hasattr(rows[0], "keys"):
            keys = set().union(*(r.keys() for r in rows))
        else:
            keys = set(rows.keys()) if hasattr(rows, "keys") else set()
        found = [k for k in ("dt_ids", "past_input_ids", "past_dt_ids") if k in keys]
        if found:
            raise ValueError(
                f"encoded_inputs: window rows with {', '.join(found)}, which tokenizer.pad does not pad (dt_ids was "
                "left shorter than the padded input_ids, and return_tensors='pt' failed); pad window rows with "
                "processor.collator (hf_neuroformer.windows.NeuroformerCollator: every column, attention masks, "
                "labels and dt_labels)")
        return super().pad(encoded_inputs, *args, **kwargs)

    def _pad(self, *args, padding_side=None, **kwargs):
        if padding_side is not None:
            _check_padding_side(padding_side)
        return super()._pad(*args, padding_side="right", **kwargs)

    def _check_model_max_length(self, value) -> None:
        if value != self.max_window_length:
            # pad(padding="max_length") and truncation read model_max_length: padded past what the
            # model embeds (refused at every batch) or cut short of it, without a word here
            raise ValueError(f"model_max_length: expected max_window_length ({self.max_window_length}: a window's "
                             f"tokens with BOS and EOS, what the model embeds), got {value!r}; "
                             "set max_window_length instead")

    @property
    def model_max_length(self) -> int:
        """``max_window_length``: the longest token sequence of a current window (BOS and EOS
        included), what ``pad(padding="max_length")`` and truncation read. Assigning another value
        is refused (it was kept, and the saved ``tokenizer_config.json`` then failed to load);
        a changed ``max_window_length`` changes it too."""
        return self.max_window_length

    @model_max_length.setter
    def model_max_length(self, value) -> None:
        self._check_model_max_length(value)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedTokenizer.from_pretrained``, after completing an interrupted save into a local
        folder (:func:`~hf_neuroformer.configuration_neuroformer.finish_interrupted_save_of`; with
        ``subfolder=``, the save into that subfolder, the folder read).

        A ``max_window_length`` given here replaces the saved one and sets ``model_max_length`` with
        it (the saved ``model_max_length`` would otherwise come along and be refused as another
        length); a ``model_max_length`` given beside it must equal it.

        Called on the remote-code copy of this class (this module loaded from a pushed repository by
        ``AutoTokenizer.from_pretrained(repo, trust_remote_code=True)``) where ``hf_neuroformer`` is
        imported, it returns the installed :class:`NeuroformerTokenizer`, as ``AutoConfig``,
        ``AutoModel*`` and ``AutoProcessor`` give the installed classes there (transformers prefers
        registered local code for those, but the repository's code for a tokenizer whose config
        class is registered); before, the copy came back, and ``NeuroformerProcessor`` refused it
        ("expected a NeuroformerTokenizer, got NeuroformerTokenizer")."""
        installed = _installed_tokenizer_class(cls)
        if installed is not None:
            return installed.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        finish_interrupted_save_of(pretrained_model_name_or_path, kwargs.get("subfolder"))
        if "max_window_length" in kwargs:
            kwargs.setdefault("model_max_length", kwargs["max_window_length"])
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def _from_pretrained(cls, resolved_vocab_files, pretrained_model_name_or_path, *args, **kwargs):
        """Refuse a folder or repository without ``vocab.json``: transformers then built the tokenizer
        from the defaults, so ``AutoTokenizer.from_pretrained`` of a model folder saved without its
        tokenizer returned one with no units and the default windows (0.1 s, 5 ms bins), whatever
        the model was trained with, without a word.

        Raises:
            OSError: naming the folder (or repo id) and ``vocab.json``; offline
                (``local_files_only=True`` or ``HF_HUB_OFFLINE=1``) with a repo id, saying it is not in
                the cache and how to fetch it (:func:`not_in_cache_message`).
        """
        if resolved_vocab_files.get("vocab_file") is None and kwargs.get("vocab_file") is None:
            uncached = not_in_cache_message(pretrained_model_name_or_path, VOCAB_FILES_NAMES["vocab_file"],
                                            kwargs.get("local_files_only", False))
            if uncached is not None:
                raise OSError(uncached)
            raise OSError(
                f"{pretrained_model_name_or_path}: no {VOCAB_FILES_NAMES['vocab_file']} (the tokenizer's unit "
                "vocabulary); expected the tokenizer files saved with the model (tokenizer.save_pretrained), or "
                "build one with NeuroformerTokenizer.from_config(model.config) and add_units(recording)")
        return super()._from_pretrained(resolved_vocab_files, pretrained_model_name_or_path, *args, **kwargs)

    # ------------------------------------------------------------------ vocabulary
    @classmethod
    def from_config(cls, config, unit_tokens: Sequence[str] = ()) -> "NeuroformerTokenizer":
        """A tokenizer whose windows and dt bins match ``config`` (a NeuroformerConfig)."""
        return cls(
            unit_tokens=list(unit_tokens),
            dt_resolution=config.dt_resolution,
            current_window=config.current_window,
            past_window=config.past_window,
            max_window_length=config.max_window_length,
            max_past_length=config.max_past_length,
        )

    @staticmethod
    def unit_token(session: str, unit_name: str) -> str:
        """The vocabulary entry of a unit: ``"<session>/<unit name>"``."""
        return f"{session}/{unit_name}"

    @staticmethod
    def session_of(unit_token: str) -> str:
        """The session of a unit token ``"<session>/<unit name>"``: the part before its first
        ``/``. A unit name may hold ``/`` (``"shank1/c1"``, token ``"m/shank1/c1"``, session
        ``"m"``); a session may not (:meth:`add_units` refuses one that does, and the NWB reader
        replaces it), so the split is unambiguous."""
        return unit_token.split("/", 1)[0]

    def recording_unit_tokens(self, recording) -> List[str]:
        """Vocabulary entries of a recording's units, in unit-index order.

        A recording generated by the model (:func:`hf_neuroformer.generation.generate_spikes`
        names its session ``"<session>-generated"``, or ``"<session>-generated-sample<k>"``) holds
        the units of ``<session>``: when the vocabulary has that session's units and not the
        generated session's, those are its entries, so that a generated recording is scored and
        re-tokenized like the recorded one (GUIDE sec. 1).
        """
        session = recording.session
        source = generated_source_session(session)
        if source is not None and not any(self.unit_token(session, n) in self.vocab for n in recording.unit_names) \
                and all(self.unit_token(source, n) in self.vocab for n in recording.unit_names):
            session = source
        return [self.unit_token(session, n) for n in recording.unit_names]

    def _append_units(self, tokens: Sequence[str]) -> List[int]:
        tokens = list(tokens)
        # every token checked before any is added: a refused token left the ones before it in the vocabulary
        for tok in tokens:
            # str() made unit 5 (a unit index passed for a name) the unit token '5', and b's/a' the token "b's/a'";
            # '' became a unit that no text can name
            if not isinstance(tok, str):
                raise ValueError(f"unit token {tok!r}: expected a str, the unit's '<session>/<unit name>' "
                                 f"(NeuroformerTokenizer.unit_token(session, name), or add_units(recording)), got "
                                 f"{type(tok).__name__}")
            if tok == "":
                raise ValueError("unit token '': expected a unit name ('<session>/<unit name>'), got the empty string")
            if any(c.isspace() for c in tok):
                raise ValueError(f"unit token {tok!r}: expected no whitespace in a unit name")
            if self.vocab.get(tok, FIRST_UNIT_ID) < FIRST_UNIT_ID:  # pad, BOS, EOS; it was returned as a known "unit"
                raise ValueError(f"unit token {tok!r}: is a special token (pad / BOS / EOS), not a unit name")
        ids = []
        for tok in tokens:
            if tok not in self.vocab:
                self.vocab[tok] = len(self.vocab)
                self.ids_to_tokens[self.vocab[tok]] = tok
            ids.append(self.vocab[tok])
        return ids

    def add_units(self, recording_or_tokens) -> List[int]:
        """Grow the vocabulary with new units (already known units keep their ids).

        Args:
            recording_or_tokens: a :class:`SpikeRecording` (its ``session/unit`` names are added)
                or a list of unit token strings.

        Returns:
            The token id of each given unit. A model trained before the call needs
            ``model.resize_unit_embeddings(len(tokenizer))`` to use the new units.

        Raises:
            ValueError: a unit token that is not a ``str`` (``add_units([5])`` made the unit ``'5'``, and
                bytes ``b's/a'`` the unit ``"b's/a'"``, without a word) or is empty (no text can name it),
                or holds whitespace (text input splits at it); for a recording,
                the message names ``recording.session`` or the unit in ``recording.unit_names``
                that holds it; a recording whose session holds ``/`` (see :meth:`session_of`) or is
                empty (the token would be ``"/<unit name>"``), or with an empty unit name (the token
                would be ``"<session>/"``).
        """
        if hasattr(recording_or_tokens, "unit_names"):
            _check_no_whitespace(recording_or_tokens)
            tokens = self.recording_unit_tokens(recording_or_tokens)
        else:
            tokens = list(recording_or_tokens)
        return self._append_units(tokens)

    def _add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """transformers' ``add_tokens`` / ``add_special_tokens``: new tokens are units.

        A new non-special token is appended to the unit vocabulary as :meth:`add_units` does, so
        ``len(tokenizer)``, ``get_vocab()`` and ``vocab.json`` hold it and the transformers idiom
        ``tokenizer.add_tokens([...]); model.resize_token_embeddings(len(tokenizer))`` gives it an
        embedding row. (transformers' generic path kept it in a side table: it got id
        ``len(tokenizer)`` while ``len(tokenizer)`` stayed the same, so the resized model had no
        row for it.) The specials (at construction) are left to transformers, which adds nothing
        for them; a unit already in the vocabulary adds nothing either. (It was left to transformers
        too, which kept it in its table of added tokens: the text ``"s/10"`` was then split at the
        known unit ``"s/1"`` and refused as ``"s/1"`` plus ``"0"``; and with ``special_tokens=True``
        the unit became a special token, whose spikes ``decode(..., skip_special_tokens=True)``
        left out without a word, also after a save and reload.)

        Returns:
            the number of tokens added to the vocabulary.

        Raises:
            ValueError: a new special token (``special_tokens=True``, an ``AddedToken`` with
                ``special=True``, ``additional_special_tokens``, ``extra_special_tokens``): the
                model knows exactly three, ``<pad>`` / ``<bos>`` / ``<eos>`` at ids 0-2; a unit of
                the vocabulary given as a special token; a token with whitespace.
            TypeError: a token that is neither a ``str`` nor an ``AddedToken``.
        """
        known, units = [], []
        for token in [] if new_tokens is None else new_tokens:
            text = str(token)
            if not isinstance(token, str) and not hasattr(token, "content"):
                raise TypeError(f"new_tokens: expected str or AddedToken, got {type(token).__name__} ({token!r})")
            if text in self.vocab and self.vocab[text] >= FIRST_UNIT_ID:  # a known unit: nothing to add
                if special_tokens or getattr(token, "special", False):
                    raise ValueError(
                        f"special token {text!r}: is unit {self.vocab[text]} of the vocabulary, and a unit cannot be a "
                        "special token (decode(..., skip_special_tokens=True) would leave its spikes out); the "
                        "tokenizer has exactly three special tokens, <pad>, <bos> and <eos> (ids 0-2): remove it from "
                        "the special tokens (extra_special_tokens in a saved tokenizer_config.json)")
            elif text == "" or text in self.vocab:
                known.append(token)
            elif special_tokens or getattr(token, "special", False):
                raise ValueError(
                    f"special token {text!r}: the tokenizer has exactly three special tokens, <pad>, <bos> and <eos> "
                    "(ids 0-2, the ids the model's config reads); new tokens can only be units (add_units)")
            else:
                units.append(text)
        n_before = len(self.vocab)
        self._append_units(units)
        if known:
            super()._add_tokens(known, special_tokens=special_tokens)
        return len(self.vocab) - n_before

    def add_special_tokens(self, special_tokens_dict, replace_extra_special_tokens: bool = True) -> int:
        """transformers' ``add_special_tokens``, limited to the three specials the model knows:
        restating them (``{"pad_token": "<pad>"}``) adds nothing and returns 0; anything else is
        refused before the tokenizer changes. transformers set the attribute first and then added
        the token, so a refused ``{"pad_token": "<newpad>"}`` left ``pad_token`` changed, and the
        saved ``tokenizer_config.json`` could no longer be loaded.

        Raises:
            ValueError: a new special token (``mask_token``, ``additional_special_tokens``, ...) or
                another token for ``pad_token`` / ``bos_token`` / ``eos_token`` (ids 0-2, the ids
                the model's config reads), naming the key and the token.
        """
        current = {"pad_token": str(self.pad_token), "bos_token": str(self.bos_token), "eos_token": str(self.eos_token)}
        for key, value in dict(special_tokens_dict or {}).items():
            for token in value if isinstance(value, (list, tuple)) else [value]:
                if current.get(key) != str(token):
                    raise ValueError(
                        f"special_tokens_dict[{key!r}]: special token {str(token)!r}: the tokenizer has exactly three "
                        f"special tokens, pad_token {current['pad_token']!r} (id 0), bos_token {current['bos_token']!r} "
                        f"(1) and eos_token {current['eos_token']!r} (2), the ids the model's config reads; new tokens "
                        "can only be units (add_units, add_tokens)")
        return super().add_special_tokens(special_tokens_dict, replace_extra_special_tokens)

    def unit_token_ids(self, recording) -> np.ndarray:
        """``(n_units,)`` int64 token id of each unit of ``recording`` (index = unit index).

        Raises:
            UnknownUnitError: naming the first unit of the recording missing from the vocabulary,
                with the call that fixes it.
        """
        out = np.empty(recording.n_units, dtype=np.int64)
        for i, tok in enumerate(self.recording_unit_tokens(recording)):
            if tok not in self.vocab:
                raise UnknownUnitError(
                    f"unit_ids: unit {i} ({tok!r}) is not in the tokenizer's vocabulary of "
                    f"{len(self.vocab) - FIRST_UNIT_ID} units; call tokenizer.add_units(recording) first"
                )
            out[i] = self.vocab[tok]
        return out

    @property
    def vocab_size(self) -> int:
        """Number of tokens: the ``FIRST_UNIT_ID`` (3) specials (pad, BOS, EOS) plus one per unit."""
        return len(self.vocab)

    def get_vocab(self) -> Dict[str, int]:
        return dict(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def tokenize(self, text: str, **kwargs) -> List[str]:
        """The tokens of text input: a whitespace-separated list of unit tokens (the class docstring).
        Each whitespace-free piece the vocabulary holds is its token, whole; any other piece goes
        through transformers' ``tokenize`` (which splits off the special tokens written into it,
        ``"s/u1<eos>"`` -> ``"s/u1"``, ``"<eos>"``). transformers split the text at the special
        tokens first, so the unit ``"s/<eos>"`` (encoded by ``encode_window``) was refused in text
        as the unknown ``"s/"``."""
        out: List[str] = []
        for piece in str(text).split():
            out += [piece] if piece in self.vocab else super().tokenize(piece, **kwargs)
        return out

    def _tokenize(self, text: str, **kwargs) -> List[str]:
        return text.split()

    def _convert_token_to_id(self, token: str) -> int:
        if token not in self.vocab:
            raise UnknownUnitError(f"token {token!r}: not in the vocabulary (known units: {len(self.vocab) - FIRST_UNIT_ID})")
        return self.vocab[token]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """The token of one id, or the tokens of a 1-D sequence of ids (transformers'
        ``PreTrainedTokenizer.convert_ids_to_tokens``, which takes a Python ``int`` or a list).

        Args:
            ids: an integer id (``int``, a numpy integer such as ``np.int64(3)``, a 0-d integer
                array or tensor), or a 1-D sequence of them (list, tuple, numpy integer array,
                integer tensor). A numpy integer failed with "'numpy.int64' object is not
                iterable"; a float id was truncated (``[1.7]`` read as id 1) and a bool read as
                id 0 / 1.
            skip_special_tokens: leave out pad, BOS and EOS (sequences only, as transformers does).

        Returns:
            ``str`` for one id, ``list[str]`` for a sequence.

        Raises:
            TokenIdError: (a ``ValueError``) a float, bool or text id, or an array of a float or
                bool dtype or of more than 1 dimension.
            UnknownUnitError: an id outside ``[0, len(tokenizer))``.
        """
        return super().convert_ids_to_tokens(_as_token_ids(ids), skip_special_tokens=skip_special_tokens)

    def _convert_id_to_token(self, index: int) -> str:
        if index not in self.ids_to_tokens:
            raise UnknownUnitError(f"token id {index}: expected an id in [0, {len(self.vocab)})")
        return self.ids_to_tokens[index]

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return " ".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None):
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        path = os.path.join(save_directory, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, indent=1, ensure_ascii=False)
        os.replace(tmp, path)
        return (path,)

    # the window settings travel in tokenizer_config.json
    def _window_kwargs(self):
        return {
            "dt_resolution": self.dt_resolution,
            "current_window": self.current_window,
            "past_window": self.past_window,
            "max_window_length": self.max_window_length,
            "max_past_length": self.max_past_length,
        }

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedTokenizer.save_pretrained``, with the window settings (as they are now) in
        ``tokenizer_config.json``.

        Raises:
            ValueError: a window setting changed after construction to a value the constructor
                refuses (``tokenizer.dt_resolution = 0.5`` with 0.1-s windows,
                ``max_window_length = 2``), naming the field; nothing is written. Such a
                tokenizer was saved, and ``from_pretrained`` then refused the folder.

        A save into ``save_directory`` killed after its commit (its journal is there) is completed
        first, so a later ``from_pretrained`` reads the files written here.

        ``is_local`` and ``local_files_only``, which transformers' ``from_pretrained`` puts among the
        settings of a loaded tokenizer (how that load went, not the tokenizer), are not written: a
        folder loaded and saved again (and every pushed repository, :func:`hf_neuroformer.hub.push_to_hub`)
        held ``"is_local": true`` in ``tokenizer_config.json``.

        A tokenizer loaded from a pushed repository keeps its ``auto_map``; it is saved with
        ``tokenization_neuroformer.py`` and the modules it imports
        (:func:`~hf_neuroformer.configuration_neuroformer.carried_remote_code`), so the folder
        loads with ``trust_remote_code=True`` as the repository did.
        """
        check_window_settings("NeuroformerTokenizer", **self._window_kwargs())
        # a save into the folder killed after its commit: completed first, or the next from_pretrained
        # completed it over these files (the older tokenizer loaded)
        finish_interrupted_save_of(save_directory)
        self.init_kwargs.update(self._window_kwargs())
        self.init_kwargs.pop("unit_tokens", None)
        for key in _LOAD_KWARGS:  # how the tokenizer was loaded, not a setting of it
            self.init_kwargs.pop(key, None)
        # a tokenizer loaded from a pushed repository keeps its auto_map: tokenization_neuroformer.py is written too
        with carried_remote_code(self, self.init_kwargs.get("auto_map"), save_directory):
            return super().save_pretrained(save_directory, *args, **kwargs)

    # ------------------------------------------------------------------ dt quantisation
    @property
    def num_dt_bins(self) -> int:
        """Number of current-window dt classes, ``ceil(current_window / dt_resolution)`` (the
        last bin is partial when ``dt_resolution`` does not divide ``current_window``)."""
        return n_bins_covering(self.current_window, self.dt_resolution)

    @property
    def num_past_dt_bins(self) -> int:
        """Number of past-window dt bins, ``ceil(past_window / dt_resolution)``, at least 1
        (the BOS's bin when ``past_window == 0``)."""
        return max(n_bins_covering(self.past_window, self.dt_resolution), 1)

    def dt_to_id(self, dt: np.ndarray) -> np.ndarray:
        """dt in seconds from the window start -> dt bin id, clipped to ``[0, num_dt_bins)``.

        ``dt``: float array (any shape) or scalar, finite seconds.
        Returns an int64 array of ``dt``'s shape: ``floor(dt / dt_resolution)`` (a dt on a bin
        edge starts its bin), clipped (a dt before the window is bin 0, one past it the last bin).

        Raises:
            ValueError: a NaN or infinite ``dt`` (it has no bin; NaN and inf were mapped to bin 0,
                the casts of NaN/inf to int64 being undefined). The message gives how many and the
                index of the first.
        """
        dt = np.asarray(dt, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(dt.reshape(-1)))
        if bad.size:
            first = int(bad[0])
            raise ValueError(f"dt: expected finite seconds from the window start, got {dt.reshape(-1)[first]} at flat "
                             f"index {first} ({bad.size} of {dt.size} values are NaN or infinite)")
        ids = bin_index(dt, self.dt_resolution)  # a dt on a bin edge starts its bin
        return np.clip(ids, 0, self.num_dt_bins - 1)

    def id_to_dt(self, dt_ids: np.ndarray) -> np.ndarray:
        """dt bin id -> seconds from the window start: the centre of the bin's part that lies
        inside the window (the last bin is partial when ``dt_resolution`` does not divide
        ``current_window``), so a decoded spike never leaves its window.

        ``dt_ids``: int array (any shape) or scalar; returns float64 seconds of its shape.

        Raises:
            ValueError: an id outside ``[0, num_dt_bins)`` (its centre would lie outside the
                window); an id that is not a whole number, a bool or text (``2.5`` gave 0.015 s
                with 5-ms bins, a bin edge rather than a bin centre, and ``True`` bin 1, without a
                word), naming the first.
        """
        raw = np.asarray(dt_ids)
        if raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and raw.size
                                           and not np.all(~np.isfinite(raw) | (raw == np.round(raw)))):
            flat = raw.ravel()
            k = 0 if raw.dtype.kind != "f" else int(np.flatnonzero(np.isfinite(flat) & (flat != np.round(flat)))[0])
            got = f"{flat[k].item()!r}" if flat.size else "no value"
            raise ValueError(f"dt_ids: expected whole-number dt bin ids (int64), got dtype {raw.dtype} (flat index {k}: "
                             f"{got})")
        ids = raw.astype(np.float64)
        if ids.size and (not np.all(np.isfinite(ids)) or ids.min() < 0 or ids.max() >= self.num_dt_bins):
            bad = ids[~(np.isfinite(ids) & (ids >= 0) & (ids < self.num_dt_bins))].ravel()[0]
            raise ValueError(f"dt_ids: expected dt bin ids in [0, {self.num_dt_bins}) (num_dt_bins), got {bad:g}")
        lo = ids * self.dt_resolution
        hi = np.minimum(lo + self.dt_resolution, self.current_window)
        return (lo + hi) / 2

    # ------------------------------------------------------------------ windows
    def encode_window(
        self,
        spike_times: np.ndarray,
        spike_tokens: np.ndarray,
        window_start: float,
        past_clip_start: Optional[float] = None,
    ) -> Dict[str, object]:
        """Tokenize one current window and its past window.

        Args:
            spike_times: ``(n_spikes,)`` float64 sorted spike times, s (a whole recording; a
                list of floats is taken as such an array).
            spike_tokens: ``(n_spikes,)`` int64 unit token id of each spike
                (``tokenizer.unit_token_ids(recording)[recording.unit_ids]``).
            window_start: start of the current window, s. The current window is
                ``[window_start, window_start + current_window)`` (start and end rounded to the
                nearest nanosecond, so adjacent windows share their edge exactly, also for starts
                made with ``np.arange``) and the past window
                ``[window_start - past_window, window_start)`` (its start on the same grid,
                :func:`hf_neuroformer.binning.past_starts`).
            past_clip_start: if given, past spikes before this time (s, put on the 1 ns grid as
                the window start is) are left out (used to keep a trial's past inside the trial).

        Returns:
            dict with ``input_ids`` (list of int: BOS, spikes, EOS), ``dt_ids`` (list of int,
            0 for BOS, the last spike's bin for EOS), ``past_input_ids`` (BOS then past spikes),
            ``past_dt_ids`` (bin of ``t - (window_start - past_window)``), ``n_spikes``,
            ``n_truncated`` (current spikes dropped: the latest ones are dropped and EOS is then
            omitted, since the window did not end there) and ``n_past_truncated`` (oldest past
            spikes dropped).

        Raises:
            ValueError: ``spike_times`` or ``spike_tokens`` that are not 1-D (one entry per spike: a
                ``(n, 1)`` column or a scalar, naming the field and its shape), a ``window_start`` or
                ``past_clip_start`` that is not a finite number (NaN
                gave an empty window, or no clip, without a word) or is held as float32 / float16 (its
                rounding moved the window: 4485.4 as float32 is 98 µs early), ``spike_times`` that are float32 / float16, or not finite and ascending (the window is
                found by bisection: unsorted times gave wrong windows and NaN spikes were left out
                without a word; checked whole once per array object, so a loop over the windows of
                one array pays it once, and the spikes the window reads, two either side, every call, so
                an array changed there in place after its check is refused too; a change in place outside
                every window read since is not seen), ``spike_times`` and ``spike_tokens`` of different lengths, or
                ``spike_tokens`` of the window (past included) that are not whole numbers (3.7 was
                cut to unit id 3 without a word).
            UnknownUnitError: a token id of the window's spikes (past included) that is not a unit
                of the vocabulary (a special id 0-2, a negative id, or ``>= len(tokenizer)``: ids of
                another vocabulary), naming the spike; it was written into the window as it was.
        """
        window_start = _finite_start(window_start)
        # a 2-D array failed inside numpy ("object too deep for desired array" from the bisection,
        # "all keys need to be the same shape" from the sort), a scalar with "diff requires input that is
        # at least one dimensional" or a TypeError from len()
        _check_one_per_spike(spike_times, "spike_times", "spike time (s)")
        _check_one_per_spike(spike_tokens, "spike_tokens", "unit token id")
        _check_spike_times(spike_times)
        if isinstance(spike_times, (list, tuple)):  # checked as an array, then failed with "'list' - 'float'"
            spike_times = np.asarray(spike_times, dtype=np.float64)
        if len(spike_times) != len(spike_tokens):
            raise ValueError(f"spike_tokens: expected one unit token id per spike ({len(spike_times)} spike_times), "
                             f"got {len(spike_tokens)}")
        # the end is put on a 1 ns grid: window starts made by hf_neuroformer.windows lie on that
        # grid, so one window's end is exactly the next window's start and no spike is counted
        # in two adjacent windows
        # the start goes on the same grid: np.arange(0, T, 0.05)[6] is 0.30000000000000004, and a
        # spike at 0.3 s (tick 9000 of a 30 kHz clock) fell in neither [0.25, 0.3) nor that window
        w0 = float(on_time_grid(float(window_start)))
        w1 = float(window_ends(w0, self.current_window))
        # the past window's start on the same grid: 1.0 - 0.7 is 0.30000000000000004, which left a spike at 0.3 s
        # out of the past window [0.3, 1.0)
        p0 = float(past_starts(w0, self.past_window))
        if past_clip_start is not None:
            # a NaN clip clipped nothing, without a word (max(p0, nan) is p0); float32 moved it
            past_clip_start = _finite_start(past_clip_start, "past_clip_start")
            # the clip (a trial's start) on the same grid as the trial's first window start: a trial at
            # 3 * 0.1 = 0.30000000000000004 s has its first window at 0.3 s, which holds a spike at 0.3 s, and the
            # next window's past, clipped unrounded, left that spike out
            p0c = max(p0, float(on_time_grid(float(past_clip_start))))
        else:
            p0c = p0
        i_p, i0, i1 = np.searchsorted(spike_times, [p0c, w0, w1], side="left")
        i_p = min(i_p, i0)  # a clip after the window start: no past, the current window whole
        _check_window_slice(spike_times, i_p, i1)
        tokens = self._unit_ids_of(spike_tokens[i_p:i1], i_p)  # the window's spikes, past included

        cur_t = spike_times[i0:i1]
        cur_u = tokens[i0 - i_p:]
        dt_ids = self.dt_to_id(cur_t - w0)
        order = np.lexsort((cur_u, dt_ids))
        cur_u, dt_ids = cur_u[order], dt_ids[order]
        cap = self.max_window_length - 2
        n_trunc = max(0, len(cur_u) - cap)
        ids = [self.bos_token_id] + cur_u[:cap].tolist()
        dts = [0] + dt_ids[:cap].tolist()
        if n_trunc == 0:
            ids.append(self.eos_token_id)
            dts.append(dts[-1])

        past_t = spike_times[i_p:i0]
        past_u = tokens[:i0 - i_p]
        pdt = np.clip(bin_index(past_t - p0, self.dt_resolution), 0, self.num_past_dt_bins - 1)
        order = np.lexsort((past_u, pdt))
        past_u, pdt = past_u[order], pdt[order]
        pcap = self.max_past_length - 1
        n_ptrunc = max(0, len(past_u) - pcap)
        if n_ptrunc:
            past_u, pdt = past_u[n_ptrunc:], pdt[n_ptrunc:]
        return {
            "input_ids": ids,
            "dt_ids": dts,
            "past_input_ids": [self.bos_token_id] + past_u.tolist(),
            "past_dt_ids": [0] + pdt.tolist(),
            "n_spikes": int(len(cur_t)),
            "n_truncated": int(n_trunc),
            "n_past_truncated": int(n_ptrunc),
        }

    def _encode_windows(self, spike_times, spike_tokens, starts, clip_starts=None,
                        chunk: int = 4096) -> Dict[str, list]:
        """:meth:`encode_window` of each window, as columns ``input_ids``, ``dt_ids``,
        ``past_input_ids``, ``past_dt_ids``, ``n_spikes``, ``n_truncated``, ``n_past_truncated``
        (one list entry per window, each exactly what :meth:`encode_window` returns for it).

        ``starts``: ``(n_windows,)`` float current-window starts, s; ``clip_starts``:
        ``(n_windows,)`` float past-clip times, s (NaN: no clip), or None. The spike arrays are
        checked once and all windows are cut, binned and sorted together (``chunk`` windows at a
        time, to bound memory) instead of once per window (about 100 µs a window in Python).
        Input that a check of :meth:`encode_window` might refuse (a non-finite start or clip,
        spike arrays or token ids it refuses, starts that are not a 1-D array) takes the
        per-window path, so the error raised, and the window it names, are :meth:`encode_window`'s.
        """
        keys = ("input_ids", "dt_ids", "past_input_ids", "past_dt_ids", "n_spikes", "n_truncated",
                "n_past_truncated")
        cols: Dict[str, list] = {k: [] for k in keys}
        if len(starts) == 0:
            return cols
        checked = self._checked_windows(spike_times, spike_tokens, starts, clip_starts)
        if checked is None:
            for i, s in enumerate(starts):
                clip = (None if clip_starts is None or np.isnan(clip_starts[i])
                        else float(clip_starts[i]))
                enc = self.encode_window(spike_times, spike_tokens, float(s), past_clip_start=clip)
                for k in keys:
                    cols[k].append(enc[k])
            return cols
        tokens, st, cl = checked
        for a in range(0, len(st), chunk):
            part = self._encode_checked_windows(spike_times, tokens, st[a:a + chunk],
                                                None if cl is None else cl[a:a + chunk])
            for k in keys:
                cols[k].extend(part[k])
        return cols

    def _checked_windows(self, spike_times, spike_tokens, starts, clip_starts):
        """``(int64 tokens, float64 starts, float64 clips or None)`` for :meth:`_encode_windows`
        when :meth:`encode_window` would accept every window (its checks, run once), else None
        (also for a subclass with its own :meth:`encode_window`, which is then called)."""
        if type(self).encode_window is not NeuroformerTokenizer.encode_window:
            return None
        if not (isinstance(starts, np.ndarray) and starts.ndim == 1 and starts.dtype.kind in "fiu"
                and isinstance(spike_times, np.ndarray) and spike_times.dtype == np.float64
                and isinstance(spike_tokens, np.ndarray) and spike_tokens.dtype.kind in "iu"
                and self.max_window_length >= 2 and self.max_past_length >= 1):
            return None
        st = starts.astype(np.float64)  # as float(start) widens each
        cl = None
        if clip_starts is not None:
            if not (isinstance(clip_starts, np.ndarray) and clip_starts.shape == starts.shape
                    and clip_starts.dtype.kind == "f"):
                return None
            cl = clip_starts.astype(np.float64)
            if np.isinf(cl).any():
                return None
        if not np.isfinite(st).all():
            return None
        try:  # the checks encode_window runs on each window's arrays
            _check_one_per_spike(spike_times, "spike_times", "spike time (s)")
            _check_one_per_spike(spike_tokens, "spike_tokens", "unit token id")
            _check_spike_times(spike_times)
        except ValueError:
            return None
        if len(spike_times) != len(spike_tokens):
            return None
        if spike_times.size:
            # checked whole again, as encode_window checks each window's run (an array changed in
            # place after its cached check): ascending with finite ends is finite too
            if not (np.isfinite(spike_times[[0, -1]]).all()
                    and (spike_times[1:] >= spike_times[:-1]).all()):
                return None
            if spike_tokens.min() < FIRST_UNIT_ID or spike_tokens.max() >= len(self.vocab):
                return None
        return spike_tokens.astype(np.int64, copy=False), st, cl

    def _encode_checked_windows(self, spike_times: np.ndarray, tokens: np.ndarray,
                                starts: np.ndarray, clips: Optional[np.ndarray]) -> Dict[str, list]:
        """The columns of :meth:`_encode_windows` for input :meth:`_checked_windows` passed: what
        :meth:`encode_window` computes window by window, with the same operations on arrays."""
        cap, pcap = self.max_window_length - 2, self.max_past_length - 1
        w0 = on_time_grid(starts)
        w1 = window_ends(w0, self.current_window)
        p0 = past_starts(w0, self.past_window)
        p0c = p0 if clips is None else np.where(np.isnan(clips), p0,
                                                np.maximum(p0, on_time_grid(clips)))
        i0 = np.searchsorted(spike_times, w0, side="left")
        i1 = np.searchsorted(spike_times, w1, side="left")
        # a clip after the window start: no past, the current window whole
        i_p = np.minimum(np.searchsorted(spike_times, p0c, side="left"), i0)

        def runs(lo, hi, origin, n_bins, keep_last):
            # spikes lo[j]:hi[j] of each window j, run after run, binned from origin[j] and sorted
            # by bin then unit within their window, the kept ones as lists; with the counts
            n = hi - lo
            n_drop = np.maximum(n - (pcap if keep_last else cap), 0)
            win = np.repeat(np.arange(len(n)), n)
            rank = np.arange(int(n.sum())) - (np.cumsum(n) - n)[win]
            idx = lo[win] + rank
            dt = np.clip(bin_index(spike_times[idx] - origin[win], self.dt_resolution), 0,
                         n_bins - 1)
            u = tokens[idx]
            order = np.lexsort((u, dt, win))
            keep = rank >= n_drop[win] if keep_last else rank < cap  # oldest past / latest current
            return u[order][keep].tolist(), dt[order][keep].tolist(), n, n_drop

        u, dt, n_cur, n_trunc = runs(i0, i1, w0, self.num_dt_bins, False)
        pu, pdt, n_past, n_ptrunc = runs(i_p, i0, p0, self.num_past_dt_bins, True)
        bos, eos = self.bos_token_id, self.eos_token_id
        cols: Dict[str, list] = {
            "input_ids": [], "dt_ids": [], "past_input_ids": [], "past_dt_ids": [],
            "n_spikes": n_cur.tolist(), "n_truncated": n_trunc.tolist(),
            "n_past_truncated": n_ptrunc.tolist()}
        a = pa = 0
        for trunc, n_kept, n_pkept in zip(cols["n_truncated"], (n_cur - n_trunc).tolist(),
                                          (n_past - n_ptrunc).tolist()):
            b, pb = a + n_kept, pa + n_pkept
            ids, dts = [bos] + u[a:b], [0] + dt[a:b]
            if trunc == 0:
                ids.append(eos)
                dts.append(dts[-1])
            cols["input_ids"].append(ids)
            cols["dt_ids"].append(dts)
            cols["past_input_ids"].append([bos] + pu[pa:pb])
            cols["past_dt_ids"].append([0] + pdt[pa:pb])
            a, pa = b, pb
        return cols

    def _unit_ids_of(self, tokens, first: int) -> np.ndarray:
        """``tokens`` (the unit token ids of spikes ``first, first + 1, ...``) as int64, refused
        unless each is a whole number naming a unit of the vocabulary (ids ``FIRST_UNIT_ID .. len - 1``)."""
        arr = np.asarray(tokens)
        if arr.dtype.kind in "iu" and (arr.size == 0 or (arr.min() >= FIRST_UNIT_ID and arr.max() < len(self.vocab))):
            return arr.astype(np.int64, copy=False)  # the common case, once per window: kept cheap
        if arr.size and arr.dtype.kind not in "iu":
            whole = (np.isfinite(arr) & (arr == np.round(arr))) if arr.dtype.kind == "f" else np.zeros(arr.shape, bool)
            if not whole.all():
                k = int(np.flatnonzero(~whole.ravel())[0])
                # an object array's items are Python objects without .item(): the refusal failed with
                # "AttributeError: 'int' object has no attribute 'item'"
                item = arr.ravel()[k]
                raise ValueError(f"spike_tokens: expected whole-number unit token ids (int64), got dtype {arr.dtype} "
                                 f"(spike {first + k}: {getattr(item, 'item', lambda: item)()!r})")
        # compared before the cast: a uint64 id >= 2**63 was named as the negative id it wraps to
        bad = np.flatnonzero((arr < FIRST_UNIT_ID) | (arr >= len(self.vocab)))
        if bad.size:
            k = int(bad[0])
            raise UnknownUnitError(
                f"spike_tokens: spike {first + k} has token id {int(arr.ravel()[k])}, not a unit of the vocabulary (unit ids "
                f"{FIRST_UNIT_ID} .. {len(self.vocab) - 1}); pass tokenizer.unit_token_ids(recording)[recording.unit_ids]")
        return arr.astype(np.int64)

    def decode_window(self, input_ids: Sequence[int], dt_ids: Sequence[int], window_start: float):
        """Tokens of one current window -> spikes.

        Args:
            input_ids: ``(seq_len,)`` token ids (specials are skipped; decoding stops at EOS or pad).
            dt_ids: ``(seq_len,)`` dt bin id per token, in ``[0, num_dt_bins)``.
            window_start: start of the window, s.

        Returns:
            ``(spike_times, unit_tokens)``: ``(n,)`` float64 seconds at the dt bin centres and
            ``(n,)`` int64 unit token ids.

        Raises:
            ValueError: a decoded token's dt id outside ``[0, num_dt_bins)`` (:meth:`id_to_dt`);
                ``input_ids`` and ``dt_ids`` of different lengths (the spikes past the shorter
                one were dropped without a word); a ``window_start`` that is not a finite number, or
                is held as float32 / float16 (the decoded times kept its rounding).
            TokenIdError: (a ``ValueError``) ``input_ids`` or ``dt_ids`` that are not a 1-D
                sequence of integers (a float, bool or text id; an array or tensor of a float or
                bool dtype, or of 2 dimensions), as :meth:`convert_ids_to_tokens` refuses them,
                naming the field and the position: ``int()`` read unit id ``3.9`` as unit 3, dt
                ``2.7`` as bin 2, ``True`` as BOS and ``"3"`` as unit 3, without a word.
            UnknownUnitError: a decoded token id that is not in the vocabulary (negative, or
                ``>= len(tokenizer)``: ids of another, larger vocabulary), naming its position; it
                was returned as a unit token id that names no unit, as :meth:`decode` refuses it.
        """
        window_start = _finite_start(window_start)
        input_ids, dt_ids = _as_token_ids(input_ids, "input_ids"), _as_token_ids(dt_ids, "dt_ids")
        for field, got in (("input_ids", input_ids), ("dt_ids", dt_ids)):
            if not isinstance(got, list):
                raise TokenIdError(f"{field}: expected a 1-D sequence of ids (one window's tokens), got the single "
                                   f"id {got}")
        if len(input_ids) != len(dt_ids):
            raise ValueError(f"dt_ids: expected one dt bin id per token ({len(input_ids)} input_ids), got {len(dt_ids)}")
        times, units = [], []
        for i, (tok, dt) in enumerate(zip(input_ids, dt_ids)):
            tok = int(tok)
            if tok in (self.eos_token_id, self.pad_token_id):
                break
            if tok == self.bos_token_id:
                continue
            if tok not in self.ids_to_tokens:
                raise UnknownUnitError(
                    f"input_ids: token {i} is id {tok}, not in the vocabulary (ids 0 .. {len(self.vocab) - 1}: "
                    f"{FIRST_UNIT_ID} specials and {len(self.vocab) - FIRST_UNIT_ID} units); decode the tokens with the tokenizer they were made "
                    "with (the model's, saved beside it)")
            times.append(float(window_start) + float(self.id_to_dt(int(dt))))
            units.append(tok)
        return np.asarray(times, dtype=np.float64), np.asarray(units, dtype=np.int64)


def _installed_tokenizer_class(cls):
    """The installed ``hf_neuroformer.NeuroformerTokenizer`` where ``cls`` is this module's
    :class:`NeuroformerTokenizer` loaded as remote code (a module of transformers' modules folder,
    not ``hf_neuroformer.tokenization_neuroformer``) and the package is imported; else ``None``
    (the package itself, a subclass, or remote code without the package)."""
    if cls is not NeuroformerTokenizer or __name__ == "hf_neuroformer.tokenization_neuroformer":
        return None
    installed = getattr(sys.modules.get("hf_neuroformer.tokenization_neuroformer"), "NeuroformerTokenizer", None)
    return installed if isinstance(installed, type) and installed is not cls else None


class NeuroformerProcessorNeedsPackage:
    """What ``AutoProcessor.from_pretrained(repo, trust_remote_code=True)`` finds in a pushed
    repository (``config.json`` ``auto_map``) where ``hf_neuroformer`` is not imported: the
    processor (:class:`hf_neuroformer.NeuroformerProcessor`) reads recordings, windows and modality
    inputs with most of the package, which a repository does not ship as remote code, so it is not
    loaded from there. Without this entry ``AutoProcessor`` fell back to the tokenizer and returned
    it as the processor, without a word (``processor(recording, window_starts)`` then failed inside
    the tokenizer). With ``import hf_neuroformer`` first the installed processor is used instead.

    Raises:
        ImportError: on :meth:`from_pretrained`, saying how to get the processor or the tokenizer.
    """

    @classmethod
    def register_for_auto_class(cls, auto_class="AutoProcessor") -> None:
        """Nothing to register (transformers calls this before :meth:`from_pretrained`)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        raise ImportError(
            f"{pretrained_model_name_or_path}: AutoProcessor of a Neuroformer model needs the hf_neuroformer package "
            "(its NeuroformerProcessor reads recordings, windows and modality inputs, which the repository does not "
            "ship as remote code): install hf_neuroformer (the version the model card names) and import "
            "hf_neuroformer before AutoProcessor.from_pretrained; without the package, AutoTokenizer.from_pretrained(repo, "
            "trust_remote_code=True) gives the tokenizer (NeuroformerTokenizer.encode_window tokenizes spikes)")


def _check_padding_side(value) -> None:
    """Refuse a ``padding_side`` other than ``"right"`` (:attr:`NeuroformerTokenizer.padding_side`)."""
    if value != "right":
        raise ValueError(f"padding_side: expected 'right' (a window's tokens are embedded by absolute position "
                         f"from its BOS, and the model refuses left padding), got {value!r}")


def _finite_start(window_start, what: str = "window_start") -> float:
    """``window_start`` (or the time ``what`` names) as a float, refused unless it is a finite number
    of seconds held in at least float64 precision: a float32 start (``np.float32``, a float32
    tensor) keeps its rounding when widened, 4485.4 s as float32 is 4485.39990234375 s, so the
    window was put 98 µs early (on the 1 ns grid the edges lie on, 0.05 as float32 is 0.050000001 s
    and a spike at 0.05 s fell in no window), as :func:`_check_spike_times` refuses such spike times.
    A boolean (``True``, ``np.bool_``, a bool tensor) is refused too: ``float(True)`` is 1.0 s."""
    narrow = narrow_float_times_message(window_start, what, item=what)
    if narrow is not None:
        raise ValueError(narrow)
    if isinstance(window_start, (bool, np.bool_)) or str(getattr(window_start, "dtype", "")) in ("bool", "torch.bool"):
        # float(True) is 1.0: a flag passed in a time's place put the window at 1 s without a word
        raise ValueError(f"{what}: expected a finite time in seconds, got the boolean {window_start!r}")
    try:
        value = float(window_start)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite time in seconds, got {window_start!r}")
    return value


def _check_vocab(vocab, vocab_file) -> None:
    """Refuse a ``vocab.json`` that is not a token -> id mapping with ids ``0 .. n-1``, each once,
    and unit tokens without whitespace. A hand-edited file with a repeated, skipped, negative or
    quoted id loaded, and the tokenizer then had ``len(tokenizer)`` ids of which one had no
    token ("token id 4: expected an id in [0, 5)"); a unit with a space loaded and could not be
    written as text.

    Raises:
        ValueError: naming ``vocab_file``, the entry and the expectation.
    """
    where = f"vocab_file {os.fspath(vocab_file)!r}"
    if not isinstance(vocab, dict):
        raise ValueError(f"{where}: expected a JSON object mapping each token to its id, got {type(vocab).__name__}")
    seen = {}
    for tok, i in vocab.items():
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(vocab):
            raise ValueError(f"{where}: token {tok!r} has id {i!r}; expected an integer in [0, {len(vocab)}) "
                             f"(ids 0 .. n-1, each once)")
        if i in seen:
            raise ValueError(f"{where}: tokens {seen[i]!r} and {tok!r} share id {i}; expected each id once")
        if any(c.isspace() for c in tok):
            raise ValueError(f"{where}: unit token {tok!r}: expected no whitespace in a unit name")
        seen[i] = tok


def _check_no_whitespace(recording) -> None:
    """Refuse a recording whose session or a unit name holds whitespace, with an empty unit name
    (token ``"<session>/"``) or an empty session (token ``"/<unit name>"``), naming which: the unit
    token ``"<session>/<unit name>"`` cannot hold it, and the token-level message ("expected no
    whitespace in a unit name") sent users looking at unit names when the session ("Mouse 12",
    an NWB identifier) held the space. A session holding ``/`` is refused too: session ``"m"``
    with unit ``"1/2"`` and session ``"m/1"`` with unit ``"2"`` would both be ``"m/1/2"``, and the
    session read back from a token (:meth:`NeuroformerTokenizer.session_of`) would be wrong."""
    session = str(recording.session)
    if not session:  # gave unit tokens '/<unit name>' without a session (a recording may have one, e.g. from NWB)
        first = str(recording.unit_names[0]) if len(recording.unit_names) else "unit0"
        raise ValueError(
            f"recording.session: expected a session name, got '', which gives unit tokens without a session "
            f"('/{first}'); "
            "name the session, e.g. dataclasses.replace(recording, session='session0') (or read_nwb(path, "
            "session='session0'))")
    if "/" in session:
        fixed = session.replace("/", "_")
        raise ValueError(
            f"recording.session: {session!r} holds '/', which separates the session from the unit name in a unit "
            f"token ('<session>/<unit name>'); rename the session, e.g. dataclasses.replace(recording, "
            f"session={fixed!r}) (or read_nwb(path, session={fixed!r}))")
    if any(c.isspace() for c in session):
        fixed = "_".join(session.split())
        raise ValueError(
            f"recording.session: {session!r} holds whitespace, which a unit token ('<session>/<unit name>') cannot; "
            f"rename the session, e.g. dataclasses.replace(recording, session={fixed!r}) (or read_nwb(path, "
            f"session={fixed!r}))")
    for i, name in enumerate(recording.unit_names):
        if str(name) == "":  # gave the token '<session>/' without a word
            raise ValueError(
                f"recording.unit_names: unit {i} is '', which gives the unit token '{session}/'; name every unit, "
                f"e.g. dataclasses.replace(recording, unit_names=[n or f'unit{{k}}' for k, n in "
                "enumerate(recording.unit_names)])")
        if any(c.isspace() for c in str(name)):
            raise ValueError(
                f"recording.unit_names: unit {i} ({str(name)!r}) holds whitespace, which a unit token "
                "('<session>/<unit name>') cannot; rename the units, e.g. dataclasses.replace(recording, "
                "unit_names=['_'.join(n.split()) for n in recording.unit_names])")


def check_tokenizer_matches_config(tokenizer: NeuroformerTokenizer, config) -> None:
    """Refuse a tokenizer that does not belong to the model whose config is ``config``.

    Used up front by generation (:func:`hf_neuroformer.generation.generate_spikes`) and the
    likelihood (:func:`hf_neuroformer.likelihood.window_log_likelihoods`), which read the
    tokenizer's vocabulary and windows next to the model's heads: a grown vocabulary failed deep
    inside with a numpy ``IndexError``, and another ``current_window`` / ``dt_resolution`` decoded
    the model's dt bins into wrong spike times without an error.

    Args:
        tokenizer: a :class:`NeuroformerTokenizer`.
        config: the model's :class:`~hf_neuroformer.NeuroformerConfig` (``model.config``).

    Raises:
        ValueError: ``len(tokenizer) != config.vocab_size`` (a tokenizer grown with
            :meth:`NeuroformerTokenizer.add_units` needs ``model.resize_unit_embeddings(len(tokenizer))``;
            a smaller one is another tokenizer), or a window setting of
            :data:`~hf_neuroformer.configuration_neuroformer.WINDOW_FIELDS` (``current_window``,
            ``past_window``, ``dt_resolution``, ``max_window_length``, ``max_past_length``) that
            differs from the config's; the message gives both values.
        TypeError: ``tokenizer`` is not a :class:`NeuroformerTokenizer` (a :class:`NeuroformerProcessor`,
            as ``AutoProcessor.from_pretrained`` gives, failed with "object of type
            'NeuroformerProcessor' has no len()": the message says to pass ``processor.tokenizer``).
    """
    # by class name along the MRO: a tokenizer loaded as Hub remote code is another class object of that name
    if not any(c.__name__ == "NeuroformerTokenizer" for c in type(tokenizer).__mro__):
        inner = getattr(tokenizer, "tokenizer", None)
        hint = ("pass processor.tokenizer (the processor holds the model's tokenizer)"
                if inner is not None and any(c.__name__ == "NeuroformerTokenizer" for c in type(inner).__mro__)
                else "load the model's with AutoTokenizer.from_pretrained(<model dir>)")
        raise TypeError(f"tokenizer: expected a NeuroformerTokenizer, got {type(tokenizer).__name__}; {hint}")
    n, v = len(tokenizer), int(config.vocab_size)
    if n > v:
        raise ValueError(
            f"tokenizer: len(tokenizer) = {n} tokens, but model.config.vocab_size = {v}: the tokenizer holds units "
            "the model has no embedding for (added with tokenizer.add_units); grow the model first with "
            "model.resize_unit_embeddings(len(tokenizer))"
        )
    if n < v:
        raise ValueError(
            f"tokenizer: len(tokenizer) = {n} tokens, but model.config.vocab_size = {v}: not the model's tokenizer "
            "(its unit ids would name other units); use the tokenizer saved with the model"
        )
    differs = window_field_mismatch(tokenizer, config)
    if differs is not None:
        field, mine, theirs = differs
        raise ValueError(
            f"tokenizer.{field} = {mine!r}, but model.config.{field} = {theirs!r}: the tokenizer's windows do not "
            "match the model's; use the tokenizer saved with the model (or "
            "NeuroformerTokenizer.from_config(model.config) with add_units)"
        )


def window_field_mismatch(tokenizer: NeuroformerTokenizer, config):
    """The first window setting of :data:`~hf_neuroformer.configuration_neuroformer.WINDOW_FIELDS`
    in which ``tokenizer`` and ``config`` differ, as ``(field, tokenizer's value, config's
    value)``, or None when they agree. The tokenizer cuts and bins the windows with its own
    values, whatever the config says: a tokenizer of 0.05-s windows beside a config of 0.1-s
    windows tokenized half of each window."""
    for field in WINDOW_FIELDS:
        mine, theirs = getattr(tokenizer, field, None), getattr(config, field)
        same = isinstance(mine, (int, float)) and math.isclose(float(mine), float(theirs), rel_tol=1e-9, abs_tol=0.0)
        if not same:
            return field, mine, theirs
    return None


def check_tokenizer_windows(tokenizer: NeuroformerTokenizer, config, fix: str) -> None:
    """Refuse a ``tokenizer`` whose window settings are not ``config``'s (:func:`window_field_mismatch`),
    where windows are tokenized (:func:`hf_neuroformer.windows.build_window_datasets`,
    :func:`hf_neuroformer.windows.prepare_windows`): the windows are placed by the config and cut
    by the tokenizer, so they held other spikes than the config (saved beside them) says, without
    an error. ``fix`` ends the message.

    Raises:
        TypeError: ``tokenizer`` is not a :class:`NeuroformerTokenizer` (None, or a tokenizer of
            another kind), naming what was passed.
        ValueError: naming the field and both values.
    """
    if not isinstance(tokenizer, NeuroformerTokenizer):  # None gave "tokenizer.current_window = None, but ..."
        raise TypeError(f"tokenizer: expected a NeuroformerTokenizer, got {type(tokenizer).__name__}; {fix}")
    differs = window_field_mismatch(tokenizer, config)
    if differs is not None:
        field, mine, theirs = differs
        raise ValueError(f"tokenizer.{field} = {mine!r}, but config.{field} = {theirs!r}: the tokenizer cuts the "
                         f"windows with its own settings, so they would not be the config's; {fix}")


def not_in_cache_message(path_or_repo, filename: str, local_files_only: bool = False) -> Optional[str]:
    """Why ``filename`` was not found in ``path_or_repo``, where an offline load could not look for it.

    ``from_pretrained(repo_id, local_files_only=True)`` (or with ``HF_HUB_OFFLINE=1``) reads only the
    files an earlier download left in the cache; a file that load never fetched (the tokenizer's
    ``vocab.json`` after ``AutoModelForPreTraining`` alone downloaded the weights and config) is then
    missing although the repository holds it, and "no vocab.json" read as a repository without one.

    Args:
        path_or_repo: what ``from_pretrained`` was given (a local folder or a Hub repository id).
        filename: the file looked for (e.g. ``"vocab.json"``).
        local_files_only: the ``local_files_only`` the load was given.

    Returns:
        None where ``path_or_repo`` is a local folder or the load was online (the file is then
        missing from the folder or repository itself); else the message: it names the file, the
        repository and how to fetch it (load once online with the same ``cache_dir``, or
        ``hf download``).
    """
    from huggingface_hub import is_offline_mode

    if os.path.isdir(str(path_or_repo)) or not (local_files_only or is_offline_mode()):
        return None
    # transformers passes local_files_only=True itself in offline mode: name the setting the user made
    how = "HF_HUB_OFFLINE=1" if is_offline_mode() else "local_files_only=True"
    return (f"{path_or_repo}: {filename} is not in the local cache, and this load is offline ({how}): it reads "
            "only the files an earlier download cached, and no earlier load fetched this one; load it once "
            f"online (with the same cache_dir), or download the repository first: hf download {path_or_repo}")


__all__ = ["NeuroformerTokenizer", "UnknownUnitError", "check_tokenizer_matches_config", "check_tokenizer_windows",
           "window_field_mismatch", "generated_source_session", "not_in_cache_message",
           "NeuroformerProcessorNeedsPackage"]


#: The last ``spike_times`` array :func:`_check_spike_times` found finite and ascending (a weak
#: reference, so that a loop over the windows of one array checks it once, not once per window).
_LAST_CHECKED_TIMES: list = [None]


def _check_one_per_spike(values, field: str, what: str) -> None:
    """Refuse ``values`` (``encode_window``'s ``spike_times`` or ``spike_tokens``) that are not 1-D, one
    ``what`` per spike: ValueError naming ``field``, its shape and the expected shape ``(n_spikes,)``.
    An array's ``shape`` is read as is (free, once per window); a list is looked at whole."""
    shape = getattr(values, "shape", None)  # an array's (or tensor's): no copy
    if shape is None:
        try:
            shape = np.shape(values)
        except ValueError:  # a ragged list: numpy >= 1.24 refuses to make an array of it
            raise ValueError(f"{field}: expected a 1-D array of shape (n_spikes,), one {what} per spike, got a "
                             "ragged sequence") from None
    shape = tuple(shape)
    if len(shape) != 1:
        raise ValueError(f"{field}: expected a 1-D array of shape (n_spikes,), one {what} per spike, got shape "
                         f"{shape}" + ("; flatten it (np.ravel)" if len(shape) > 1 else ""))


def _check_spike_times(spike_times) -> None:
    """Refuse ``spike_times`` that are not finite and ascending (``encode_window`` bisects them:
    unsorted times gave wrong windows, NaN spikes fell in no window, both without a word), or held
    as float32 / float16 (widened, they keep their rounding: as ``SpikeRecording`` refuses them)."""
    ref = _LAST_CHECKED_TIMES[0]
    if ref is not None and ref() is spike_times:
        return
    st = np.asarray(spike_times)
    if st.size:
        # float32 700.05 is 700.0499877929688 s: the spike fell in the window before 700.05 s
        narrow = narrow_float_times_message(st, "spike_times", item="spike")
        if narrow is not None:
            raise ValueError(narrow)
        if st.dtype.kind not in "fiu":
            raise ValueError(f"spike_times: expected float64 spike times (s), got dtype {st.dtype}")
        bad = not_finite_message(st, "spike_times", "spike")
        if bad is not None:
            raise ValueError(bad + "; drop or fix them before tokenizing (a SpikeRecording refuses them)")
        back = not_ascending_message(st, "spike_times", "spike")
        if back is not None:
            raise ValueError(back + "; sort the spikes and their tokens together (order = "
                             "np.argsort(spike_times, kind='stable')), or use SpikeRecording.from_unsorted(...)")
    try:
        _LAST_CHECKED_TIMES[0] = weakref.ref(spike_times)
    except TypeError:  # a list: checked again next call
        _LAST_CHECKED_TIMES[0] = None


def _check_window_slice(spike_times, lo: int, hi: int) -> None:
    """Check again the spikes ``spike_times[lo:hi]`` that a window reads (its past included), with
    two spikes either side: :func:`_check_spike_times` checks an array object once, so an array
    changed in place after it passed (``t[5] = nan``, a shuffle) was bisected without a word. The
    neighbours count: a NaN, or a spike past the window's end, written inside the window's run
    stops the bisection at it, so the slice alone is ascending while the spikes after it are lost
    (``t[i1]`` is then NaN, or larger than ``t[i1 + 1]``); the same holds at the start. A change
    further out, or several that keep every checked pair ascending, is not seen. Raises as
    :func:`_check_spike_times` (the whole array checked again)."""
    w = spike_times[max(lo - 2, 0):hi + 2]
    # NaN compares False
    if isinstance(w, np.ndarray) and w.size > 1 and not (w[1:] >= w[:-1]).all():
        _LAST_CHECKED_TIMES[0] = None
        _check_spike_times(spike_times)
