"""NeuroformerConfig: every hyperparameter of the tokenizer windows and the network.

The architecture follows Antoniades et al., "Neuroformer: Multimodal and Multitask Generative
Pretraining for Brain Data", ICLR 2024 (arXiv 2311.00136), Sec. 3: spikes of the current window
are tokens (unit id + time offset dt); a causal decoder over them cross-attends to an encoding of
the past window's spikes; two heads predict the next unit id and its dt.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import inspect
import json
import math
import os
import re
from types import SimpleNamespace

from transformers import PreTrainedConfig

from .argument_checks import (REGRESSION_LOSSES, check_hl_gauss_settings, is_finite_number, is_real_number, is_whole_number,
                              narrow_float_seconds_message)
from .binning import n_bins_covering


def finish_interrupted_save_of(name_or_path, subfolder="") -> bool:
    """Complete an interrupted save into the local folder ``name_or_path`` (``name_or_path/subfolder``
    when ``subfolder``, ``from_pretrained``'s argument, is given: the folder it reads) before it is
    read (:func:`hf_neuroformer.save_journal.finish_interrupted_save_of`): called by the Neuroformer
    classes' ``from_pretrained``. A no-op for a Hub repo id, and in the remote code of a Hub
    repository (it comes without the package: a pushed repository is uploaded whole).

    Returns:
        True when a save was completed (the folder's files changed), else False."""
    try:  # imported by name, so transformers' remote-code copy does not count it as a needed file
        journal = importlib.import_module(f"{__package__}.save_journal")
    except ImportError:
        return False
    return journal.finish_interrupted_save_of(name_or_path, subfolder)


def config_read_before_save_of(name_or_path, subfolder="") -> "dict | None":
    """``config.json`` (the dict) of the local folder ``from_pretrained(name_or_path,
    subfolder=subfolder)`` reads, while an interrupted save into it is pending (its journal is
    there, :func:`finish_interrupted_save_of` not yet called): what transformers' ``AutoConfig``
    read there (it reads ``config.json`` before any Neuroformer class runs). None without such a
    save, a readable ``config.json`` (a JSON object), or the package (remote code)."""
    try:
        journal = importlib.import_module(f"{__package__}.save_journal")
    except ImportError:
        return None
    folder = journal.pending_save_folder(name_or_path, subfolder)
    if folder is None:
        return None
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            stored = json.load(f)
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) else None


def config_after_completed_save(config, read_before: dict, name_or_path, subfolder="", **hub):
    """The config of ``name_or_path/subfolder`` read again after :func:`finish_interrupted_save_of`
    completed a save there, for a ``config`` built from the ``config.json`` the save replaced
    (``read_before``, :func:`config_read_before_save_of`) and the caller's overrides
    (``AutoModel*.from_pretrained(path, subfolder=..., hidden_dropout_prob=0.2)`` applies them to the
    config ``AutoConfig`` read): those overrides are the fields where ``config`` differs from
    ``read_before`` read by the same class, and they are applied to the new ``config.json`` (checked
    as ``from_pretrained`` checks them). ``hub``: ``from_pretrained``'s other arguments of the files
    (``revision``, ``cache_dir``, ...). ``config`` itself when ``config.json`` did not change.

    Raises:
        ValueError: an override the new config refuses, as ``from_pretrained`` raises it."""
    import warnings

    cls = type(config)
    with warnings.catch_warnings():  # its warnings were given when AutoConfig read it
        warnings.simplefilter("ignore")
        before = cls.from_dict(dict(read_before)).to_dict()
    missing = object()
    overrides = {k: v for k, v in config.to_dict().items()
                 if not k.startswith("_") and k != "transformers_version" and before.get(k, missing) != v}
    fresh = cls.from_pretrained(name_or_path, subfolder=subfolder, **hub, **overrides)
    fresh.name_or_path = config.name_or_path
    return fresh


def _references(refs) -> list[tuple[str, str]]:
    """The references of one ``auto_map`` value (``"module.Class"``, ``"repo--module.Class"``, or a
    tokenizer's ``[slow, fast]`` pair, whose non-text entries such as ``None`` are left out), each as
    ``(prefix, "module.Class")`` with ``prefix`` ``""`` or ``"repo--"``."""
    out = []
    for ref in refs if isinstance(refs, (list, tuple)) else [refs]:
        if isinstance(ref, str):
            head, sep, name = ref.rpartition("--")
            out.append((head + sep, name))
    return out


def auto_map_in_folder(auto_map: dict, folder: str = "") -> dict:
    """``auto_map`` (a ``config.json`` / ``tokenizer_config.json`` entry) with each reference to a module
    of this repository (``"module.Class"``, or ``"sub/module.Class"`` of a model in a subfolder) made
    relative to the repository's root for a model whose files lie in ``folder`` of it
    (``"folder/module.Class"``), or to the folder itself for ``folder=""`` (``"module.Class"``).

    transformers reads the module an ``auto_map`` names from the repository's root whatever the
    ``subfolder`` of ``from_pretrained`` says, so the remote code of a model in a subfolder loads
    only when its ``auto_map`` names the folder (written by :func:`hf_neuroformer.hub.save_for_hub`
    with ``subfolder=``); a model loaded from there and saved again has its code files beside its
    ``config.json``, so its saved ``auto_map`` names no folder (:func:`carried_remote_code`).
    ``"repo--"`` references (code of another repository) and a tokenizer's ``None`` entries are kept
    as they are.

    Args:
        auto_map: the mapping ``{Auto class: reference or [slow, fast] pair}``; not changed.
        folder: ``"sub"`` or ``"a/b"`` (``/``-separated, no leading or trailing ``/``), or ``""``.

    Returns:
        a new dict with the same keys."""
    prefix = f"{folder}/" if folder else ""

    def moved(ref):
        if not isinstance(ref, str) or "--" in ref:
            return ref
        return prefix + ref.rsplit("/", 1)[-1]

    return {auto: [moved(r) for r in refs] if isinstance(refs, (list, tuple)) else moved(refs)
            for auto, refs in auto_map.items()}


def carried_auto_class(obj, auto_map) -> str | None:
    """The Auto class that ``auto_map`` (the ``config.json`` / ``tokenizer_config.json`` entry of a
    folder or Hub repository with remote code) maps to the class of ``obj`` (a Neuroformer config,
    model or tokenizer), e.g. ``"AutoModelForPreTraining"`` for :class:`NeuroformerForPreTraining`;
    ``None`` when it names none, or when the class is registered for an Auto class already
    (``register_for_auto_class``: transformers then writes its code itself)."""
    cls = type(obj)
    if getattr(cls, "_auto_class", None) is not None or not isinstance(auto_map, dict):
        return None
    module = cls.__module__.rsplit(".", 1)[-1]
    for auto, refs in auto_map_in_folder(auto_map).items():  # "sub/module.Class" of a model in a subfolder too
        if any(name == f"{module}.{cls.__name__}" for _, name in _references(refs)):
            return auto
    return None


def _auto_map_modules(auto_map, local_only: bool = False) -> list[str]:
    """The module names (``configuration_neuroformer`` ...) that the references of ``auto_map``
    name (``"module.Class"``, ``"repo--module.Class"``, a tokenizer's ``[slow, fast]`` pair), each
    once, in order; a reference that is no dotted name of identifiers is left out, and with
    ``local_only`` a ``"repo--"`` one too (transformers reads its code from that repository)."""
    modules = []
    for refs in auto_map.values():
        for prefix, name in _references(refs):
            if "." in prefix + name and not (local_only and prefix):
                module = name.rsplit(".", 1)[0]
                if module.isidentifier() and module not in modules:
                    modules.append(module)
    return modules


def _code_source_folder(loaded_from, here):
    """The local folder ``loaded_from`` (an object's ``name_or_path``) as the source of code files this
    remote-code copy lacks: when it is a folder that still holds, byte for byte, every module beside
    this one (``here``: transformers copied them from it, into a folder of their own per loaded class,
    so a model loaded from a folder has no ``tokenization_neuroformer.py`` there); else ``None`` (a Hub
    repository id, a folder since changed or moved, a relative path from another working directory)."""
    import filecmp
    from pathlib import Path

    if not isinstance(loaded_from, (str, os.PathLike)) or not os.fspath(loaded_from):
        return None
    folder = Path(loaded_from)
    if not folder.is_dir() or folder.resolve() == here.resolve():
        return None
    ours = [p for p in here.glob("*.py") if p.name != "__init__.py"]
    if not ours or not all((folder / p.name).is_file() and filecmp.cmp(p, folder / p.name, shallow=False)
                           for p in ours):
        return None
    return folder


def _write_auto_map_modules(auto_map, save_directory, loaded_from=None) -> None:
    """Write into ``save_directory`` the code file of every module ``auto_map`` names that lies
    beside this one, with the modules it imports (``get_relative_import_files``): transformers
    writes only the saved object's module, so a model's ``config.json`` whose ``AutoProcessor``
    entry names ``tokenization_neuroformer`` went without that file. A module not beside this one
    (remote code loaded from a local folder: transformers copied only the modules it loaded) is taken
    from ``loaded_from``, the folder the object was loaded from, while that folder still holds the
    code loaded (:func:`_code_source_folder`). A ``save_directory`` that is a file is left to
    transformers' own refusal."""
    import shutil
    from pathlib import Path

    from transformers.dynamic_module_utils import get_relative_import_files

    folder = Path(save_directory)
    if folder.is_file():
        return
    here = Path(__file__).parent
    modules = _auto_map_modules(auto_map)
    files = [here / f"{m}.py" for m in modules if (here / f"{m}.py").is_file()]
    missing = [m for m in modules if not (here / f"{m}.py").is_file()]
    source = _code_source_folder(loaded_from, here) if missing else None
    if source is not None:
        files += [source / f"{m}.py" for m in missing if (source / f"{m}.py").is_file()]
    if not files:
        return
    folder.mkdir(parents=True, exist_ok=True)
    # each file once, by name, the first found: a module beside this one and its copy in the source folder are
    # the same bytes
    written = {}
    for path in (p for f in files for p in (f, *map(Path, get_relative_import_files(f)))):
        written.setdefault(path.name, path)
    for name, path in written.items():
        if not ((folder / name).is_file() and os.path.samefile(path, folder / name)):  # saved into the source folder
            shutil.copyfile(path, folder / name)


def _drop_auto_map_entries_without_code(obj, auto_map: dict, save_directory) -> None:
    """Remove from ``auto_map`` (in place) the entries naming a module (without ``"repo--"``) whose
    code file lies neither beside this one nor in ``save_directory`` (where a model's save wrote its
    modules before its config's save), with a warning: in the remote code that transformers loaded
    without the package, each class's modules folder holds only the modules it loaded (a config
    loaded alone from a Hub repository: no ``modeling_neuroformer.py`` nor ``tokenization_neuroformer.py``;
    from a local folder the missing ones are taken from that folder while it holds the code loaded,
    :func:`_write_auto_map_modules`), and a saved ``config.json`` naming a code file the folder lacks
    fails with transformers' missing-file error. That config, saved alone, loses its model entries: its
    folder has no weights, but ``AutoModel.from_config`` reads them, and would fail on the missing file.

    Warns:
        UserWarning: ``<Class>.save_pretrained: auto_map entries [...] name [...], which this
            remote-code copy lacks ...``, when an entry is removed."""
    from pathlib import Path

    here = Path(__file__).parent
    absent = [m for m in _auto_map_modules(auto_map, local_only=True)
              if not (here / f"{m}.py").is_file() and not (Path(save_directory) / f"{m}.py").is_file()]
    if not absent:
        return
    dropped = [auto for auto, refs in auto_map.items() if set(_auto_map_modules({auto: refs}, True)) & set(absent)]
    for auto in dropped:
        del auto_map[auto]
    import warnings

    warnings.warn(f"{type(obj).__name__}.save_pretrained: auto_map entries {dropped} name "
                  f"{[m + '.py' for m in absent]}, which this remote-code copy lacks (transformers fetched only the "
                  "modules it loaded, and no local folder it was loaded from holds them beside the code loaded): "
                  "they are left out of the saved auto_map, so the folder names no code file it "
                  "lacks; save with the hf_neuroformer package installed to keep them", UserWarning, stacklevel=4)


#: The folders (absolute paths) whose code files an enclosing :func:`carried_remote_code` wrote: a model's
#: save, around the save of its config (transformers calls ``config.save_pretrained`` inside), which then
#: writes them no second time.
_CODE_WRITTEN_INTO: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("_CODE_WRITTEN_INTO", default=())


@contextlib.contextmanager
def carried_remote_code(obj, auto_map, save_directory=None):
    """While ``obj`` is saved: register its class for the Auto class its carried ``auto_map`` names
    (:func:`carried_auto_class`), so that transformers writes its module and the modules it imports
    (those of the push: ``configuration_neuroformer.py``, ``modeling_neuroformer.py``,
    ``tokenization_neuroformer.py`` and their relative imports) beside the saved files; the
    registration is undone afterwards. A model loaded from a pushed repository by the installed
    classes (``NeuroformerForPreTraining.from_pretrained(repo)``, or an Auto class after ``import
    hf_neuroformer``) keeps the repository's ``auto_map``: saved again, the folder named code files
    it lacked, and ``from_pretrained(folder, trust_remote_code=True)`` failed ("does not appear to
    have a file named configuration_neuroformer.py"). An object without an ``auto_map``
    (``neuroformer train`` output) is saved as before, without code.

    With ``save_directory``, every module the ``auto_map`` names is written there too (before the
    save, so ``save_pretrained(push_to_hub=True)`` uploads it), not only the saved object's: a model
    pulled from a pushed repository and saved (or pushed with ``model.push_to_hub``) without its
    tokenizer kept ``config.json``'s ``AutoProcessor`` entry naming ``tokenization_neuroformer``
    and lacked that file, so ``AutoProcessor`` on the folder failed with transformers' missing-file
    error instead of :class:`~hf_neuroformer.tokenization_neuroformer.NeuroformerProcessorNeedsPackage`'s
    ImportError naming the package.

    So also for a class registered for an Auto class already (:func:`hf_neuroformer.hub.remote_code_registered`,
    or the remote code transformers loaded, which it registers itself; transformers then writes only that
    class's module): a model loaded with ``trust_remote_code=True`` without the package and saved alone
    lacked ``tokenization_neuroformer.py``. The modules are taken from beside this module (in remote code:
    transformers' modules folder), or else from the local folder the object was loaded from
    (``name_or_path``) while it holds the code loaded; an ``auto_map`` entry whose module is in neither is
    left out of the saved ``auto_map``, with a warning (:func:`_drop_auto_map_entries_without_code`), and put back
    afterwards. A model's save writes them once: the save of its config inside it (transformers'
    ``config.save_pretrained``) finds them written (:data:`_CODE_WRITTEN_INTO`)."""
    kept = dict(auto_map) if isinstance(auto_map, dict) else None
    if kept is not None and auto_map_in_folder(kept) != kept:
        # loaded from a subfolder whose auto_map names it ("sub/modeling_neuroformer.X"): the saved folder holds
        # the code files beside its config.json, so the saved auto_map names no folder (put back afterwards)
        auto_map.clear()
        auto_map.update(auto_map_in_folder(kept))
    auto = carried_auto_class(obj, auto_map)
    cls = type(obj)
    if auto is None and getattr(cls, "_auto_class", None) is None:
        try:
            yield
        finally:
            if kept is not None and auto_map != kept:
                auto_map.clear()
                auto_map.update(kept)
        return
    written = None
    if save_directory is not None and kept is not None:
        folder = os.path.abspath(os.fspath(save_directory))
        if folder not in _CODE_WRITTEN_INTO.get():  # else: the enclosing model's save wrote them
            _write_auto_map_modules(auto_map, save_directory, getattr(obj, "name_or_path", None))
            _drop_auto_map_entries_without_code(obj, auto_map, save_directory)
            written = _CODE_WRITTEN_INTO.set((*_CODE_WRITTEN_INTO.get(), folder))
    own = cls.__dict__.get("_auto_class", False)  # False: inherited (None)
    if auto is not None:
        cls.register_for_auto_class(auto)
    try:
        yield
    finally:
        if written is not None:
            _CODE_WRITTEN_INTO.reset(written)
        if auto is not None:
            if own is False:
                del cls._auto_class
            else:
                cls._auto_class = own
        if kept is not None and auto_map != kept:  # entries left out (or set by transformers) during the save
            auto_map.clear()
            auto_map.update(kept)


def saved_dt_conditioned_on_unit(config_dict: dict) -> bool:
    """``dt_conditioned_on_unit`` of a config dict (a ``config.json``): its value when it has the
    key; else False for a saved config (one with ``transformers_version``), written before the
    field existed by code whose dt head was the paper's, independent of the unit (read as the
    default True, such a model got a ``dt_unit_embeddings`` its weights lack, initialised at
    random); else the default, True."""
    if "dt_conditioned_on_unit" in config_dict:
        return config_dict["dt_conditioned_on_unit"]
    return "transformers_version" not in config_dict


def saved_modalities_without_ignored_keys(config_dict: dict) -> dict:
    """``config_dict`` (a saved ``config.json``, or a checkpoint's config fingerprint) with the
    keys that a categorical modality was once saved with but never applied set back to their
    defaults, with a warning naming the modality and the key: ``bin_size`` (labels were never
    binned: each event or value stayed its own token) and ``num_features`` other than 1 (the
    embedding read one class id per token). The constructor refuses them (d8a3d9d); the model
    such a config built is the same without them, so a model saved before still loads and a
    checkpoint written before still resumes. Anything else is left for the constructor to check.

    Warns:
        UserWarning: ``modalities[i] (name): saved <key>=<value> ... dropped``, once per key."""
    mods = config_dict.get("modalities") if isinstance(config_dict, dict) else None
    if not isinstance(mods, list):
        return config_dict
    out, dropped = [], []
    for i, m in enumerate(mods):
        if isinstance(m, dict) and m.get("kind") == "categorical":
            ignored = {k: m[k] for k, unset in (("bin_size", None), ("num_features", 1))
                       if m.get(k, unset) != unset}
            if ignored:
                dropped += [f"modalities[{i}] ({m.get('name')!r}).{k}={v!r}" for k, v in ignored.items()]
                m = {**m, "bin_size": None, "num_features": 1}  # the defaults: what the model was built with
        out.append(m)
    if not dropped:
        return config_dict
    import warnings

    warnings.warn(f"NeuroformerConfig: saved {', '.join(dropped)} on a categorical modality never applied (labels are "
                  "not binned and are one class id per token) and dropped; the model is the same without it; save "
                  "the config again to write it without", UserWarning, stacklevel=4)
    return {**config_dict, "modalities": out}


#: The Auto classes a pushed config maps to remote code (``config.json`` ``auto_map``; written by
#: :func:`hf_neuroformer.hub.save_for_hub`). Here, not in ``hub.py``, so that the remote-code copy of a
#: model's ``save_pretrained`` (:func:`auto_map_for_heads`) has them too.
AUTO_MAP = {
    "AutoConfig": "configuration_neuroformer.NeuroformerConfig",
    "AutoModel": "modeling_neuroformer.NeuroformerModel",
    "AutoModelForPreTraining": "modeling_neuroformer.NeuroformerForPreTraining",
    "AutoModelForCausalLM": "modeling_neuroformer.NeuroformerForPreTraining",
    "AutoModelForSequenceClassification": "modeling_neuroformer.NeuroformerForBehaviorDecoding",
    # the processor needs the package: without it AutoProcessor fell back to the tokenizer and returned it as the
    # processor; this class refuses with the way to the processor (the installed one is used after the import)
    "AutoProcessor": "tokenization_neuroformer.NeuroformerProcessorNeedsPackage",
}
#: The Auto classes of a fine-tuned decoder whose ``model.safetensors`` has no next-spike heads
#: (``decoding_generative_loss_weight == 0``): ``AutoModelForPreTraining`` / ``AutoModelForCausalLM``
#: would load it with newly initialised ``id_head`` / ``dt_head``, so they are not mapped.
DECODER_AUTO_MAP = {k: v for k, v in AUTO_MAP.items()
                    if k in ("AutoConfig", "AutoModel", "AutoModelForSequenceClassification", "AutoProcessor")}


def auto_map_for_heads(auto_map: dict, heads: bool) -> dict:
    """The ``auto_map`` a model is saved (or pushed, :func:`hf_neuroformer.hub.save_for_hub`) with, from
    ``auto_map`` (:data:`AUTO_MAP`, or a config's carried from a pushed repository) and whether its
    weights have the next-spike heads. Without them (a decoder fine-tuned with
    ``decoding_generative_loss_weight == 0``, or a ``NeuroformerModel``): without the Auto classes that :data:`DECODER_AUTO_MAP`
    leaves out (``AutoModelForPreTraining`` / ``AutoModelForCausalLM``, which would load it with random
    heads). With them: those entries added where missing (a decoder pulled without heads and fine-tuned
    further with a generative loss), named as :data:`AUTO_MAP` names them, with the ``repo--`` prefix of
    the map's ``modeling_neuroformer`` references; a map with no such reference is not Neuroformer's
    and gets none. The other entries (their ``repo--`` prefixes included) are kept as they are."""
    left_out = [k for k in AUTO_MAP if k not in DECODER_AUTO_MAP]
    if not heads:
        return {k: v for k, v in auto_map.items() if k not in left_out}
    prefixes = [prefix for refs in auto_map.values() for prefix, name in _references(refs)
                if name.rsplit("/", 1)[-1].startswith("modeling_neuroformer.")]  # "sub/modeling_...": a subfolder's
    if not prefixes:
        return dict(auto_map)
    prefix = prefixes[0]  # "" or "repo--"
    return {**auto_map, **{k: prefix + AUTO_MAP[k] for k in left_out if k not in auto_map}}


#: Kinds of modality the network embeds.
MODALITY_KINDS = ("continuous", "categorical", "video")
# the contrastive head caps the logit scale 1 / temperature here (CLIP), so contrastive_temperature >= 0.01
CONTRASTIVE_MAX_LOGIT_SCALE = 100.0
# the largest contrastive_temperature taken (logit scale >= 0.01, also learned): the InfoNCE's gradient falls as 1 / temperature
# (1/100 of its size at 1 here, in float32 and bfloat16); above ~1e7 float32 no longer tells the loss from log(n),
# above ~1e40 (bfloat16) / 1e45 (float32) exp(logit_scale) is 0 and the loss has no gradient at all
CONTRASTIVE_MAX_TEMPERATURE = 100.0
#: What NeuroformerForBehaviorDecoding's heads read (see ``decoding_pool``).
DECODING_POOLS = ("current", "current+past", "attention")
#: Keys a ``NeuroformerConfig.decoding_targets`` entry may have (see the class docstring); any
#: other key is refused, so a misspelt one (``"wieght"``) is not silently ignored.
DECODING_TARGET_KEYS = ("name", "kind", "column", "weight", "mean", "std", "num_classes", "classes", "class_weight",
                        "class_weights", "recorded_range_deg", "unit", "loss", "num_bins", "hl_gauss_sigma_ratio",
                        "bin_range")
#: Keys of a regression target that only its HL-Gauss loss reads (``"loss": "hl_gauss"``).
HL_GAUSS_KEYS = ("num_bins", "hl_gauss_sigma_ratio", "bin_range")
#: Values of a classification target's ``class_weight`` (:attr:`hf_neuroformer.decoding.DecodingTarget.class_weight`).
CLASS_WEIGHTS = ("balanced", None)
#: Roles a modality can take (``"target"`` / ``"both"`` are planned; decoding uses ``decoding_targets``).
MODALITY_ROLES = ("input",)
#: Normalisations of a continuous modality.
MODALITY_NORMALIZATIONS = ("zscore", "circular", "none")
#: Prefixes of ``source``: where a modality's values live in a :class:`~hf_neuroformer.SpikeRecording`.
MODALITY_SOURCES = ("behaviour", "trial", "stimulus", "events")
#: Keys of one modality dict (YAML one to one).
MODALITY_KEYS = ("name", "source", "kind", "role", "block", "window", "allow_future", "column", "normalization",
                 "mean", "std", "classes", "max_tokens", "bin_size", "num_features", "frame_shape", "num_frames",
                 "patch_size", "num_layers", "frame_interval")
#: Keys that only a video modality takes.
VIDEO_KEYS = ("frame_shape", "num_frames", "patch_size", "num_layers", "frame_interval")


def distinct_labels(classes) -> bool:
    """True where ``classes`` is a non-empty list or tuple of pairwise distinct, hashable labels."""
    try:  # a label that is a list (hand-edited config.json) failed in set() with "unhashable type"
        return isinstance(classes, (list, tuple)) and len(classes) >= 1 and len(set(classes)) == len(classes)
    except TypeError:
        return False


def _meant(value, choices) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelt ``value`` (difflib), or ``""``
    when none is close or ``value`` is not text."""
    import difflib

    close = difflib.get_close_matches(value, list(choices), n=1) if isinstance(value, str) else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _meant_source(src) -> str:
    """:func:`_meant` for a modality ``source``: the prefix (``'behavior:ry'`` -> ``'behaviour:ry'``)
    or, of the stimulus, the whole source (``'stimulus:idz'`` -> ``'stimulus:ids'``)."""
    if not (isinstance(src, str) and ":" in src):
        return ""
    prefix, key = src.split(":", 1)
    if prefix == "stimulus":
        return _meant(src, ("stimulus:ids", "stimulus:frames"))
    import difflib

    close = difflib.get_close_matches(prefix, MODALITY_SOURCES, n=1)
    return f" (did you mean {close[0] + ':' + key!r}?)" if close and key else ""


def normalize_modality(index: int, spec, current_window: float, past_window: float) -> dict:
    """Check one entry of ``NeuroformerConfig.modalities`` and fill in its defaults.

    Args:
        index: position in the list (used in messages and as the default ``block``).
        spec: a mapping with the keys of :data:`MODALITY_KEYS` (``name``, ``source``, ``kind``
            required; see :class:`NeuroformerConfig`).
        current_window, past_window: the config's windows, s (the default modality window is
            the current window, and the window may reach back at most ``past_window`` s).

    Returns:
        A new dict with every key of :data:`MODALITY_KEYS`.

    Raises:
        ValueError: naming ``modalities[index].<key>`` for an unknown key, a missing or badly
            typed value, a kind or role not supported, a window that reaches into the future
            without ``allow_future``, or statistics of the wrong length; a length in seconds
            (``window``, ``bin_size``, ``frame_interval``) given as a numpy / torch float32,
            float16 or bfloat16 (:func:`refuse_narrow_seconds`: widened, it keeps its rounding).
    """
    where = f"NeuroformerConfig.modalities[{index}]"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping with keys name, source, kind, ..., got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(MODALITY_KEYS))
    if unknown:
        import difflib

        # a misspelt decoding target key got "did you mean"; a modality's listed all twenty keys only
        hints = [f"{c[0]!r} for {u!r}" for u in unknown
                 for c in [difflib.get_close_matches(str(u), MODALITY_KEYS, n=1)] if c]
        raise ValueError(f"{where}: unknown {'key' if len(unknown) == 1 else 'keys'} {unknown}"
                         + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                         + f"; known keys: {list(MODALITY_KEYS)}")
    for key in ("name", "source", "kind"):
        if key not in spec:
            raise ValueError(f"{where}: missing required key {key!r}")
    m = dict(spec)
    name = m["name"]
    if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)):
        raise ValueError(f"{where}.name: expected an identifier (letters, digits, _), got {name!r}")
    if _is_module_dict_attribute(name):
        # the model keeps the modality embeddings (and contrastive projections) in nn.ModuleDicts keyed by name:
        # 'keys', 'training' or 'to' passed here and failed when the model was built, with torch's bare
        # KeyError "attribute 'keys' already exists" naming no field
        raise ValueError(f"{where}.name: expected an identifier that is not an attribute of torch.nn.ModuleDict (the "
                         f"model holds the modality embeddings in one, keyed by name), got {name!r}; rename the "
                         f"modality (e.g. {name.strip('_') + '_' if name.strip('_') else 'modality'!r})")
    where = f"NeuroformerConfig.modalities[{index}] ({name!r})"
    src = m["source"]
    if not (isinstance(src, str) and ":" in src and src.split(":", 1)[0] in MODALITY_SOURCES and src.split(":", 1)[1]):
        raise ValueError(
            f"{where}.source: expected 'behaviour:<key>', 'trial:<column>', 'stimulus:ids', 'stimulus:frames' or "
            f"'events:<key>', got {src!r}{_meant_source(src)}"
        )
    if src.startswith("stimulus:") and src not in ("stimulus:ids", "stimulus:frames"):
        raise ValueError(f"{where}.source: of the stimulus 'stimulus:ids' or 'stimulus:frames' is read, got {src!r}"
                         f"{_meant_source(src)}")
    kind = m["kind"]
    if kind not in MODALITY_KINDS:
        raise ValueError(f"{where}.kind: expected one of {list(MODALITY_KINDS)}, got {kind!r}"
                         f"{_meant(kind, MODALITY_KINDS)}")
    if (kind == "video") != (src == "stimulus:frames"):
        raise ValueError(f"{where}: kind 'video' goes with source 'stimulus:frames' (and only it), got kind {kind!r} "
                         f"with source {src!r}")
    if kind != "video":
        extra = [k for k in VIDEO_KEYS if m.get(k) is not None]
        if extra:
            raise ValueError(f"{where}: {extra} are keys of a video modality only (kind {kind!r})")
    if src.startswith("events:") and kind != "categorical":
        raise ValueError(f"{where}.kind: an event stream ({src!r}) is read as kind 'categorical' (its labels, or one "
                         f"class for an unlabelled stream), got {kind!r}")
    role = m.get("role", "input")
    if role not in MODALITY_ROLES:
        raise ValueError(
            f"{where}.role: expected 'input' (modalities as targets are not implemented yet; decode behaviour "
            f"with decoding_targets), got {role!r}"
        )
    m["role"] = role
    m["block"] = checked_int("block", m.get("block", index),
                             "an integer >= 0 (stages run in ascending block order)", lambda v: v >= 0, owner=where)
    window = m.get("window")
    if window is None:
        window = [0.0, current_window]
    if isinstance(window, (list, tuple)):
        # np.float32(-0.05) was widened by float() to -0.05000000074505806 s, its rounding kept: the
        # modality's values were read from a window reaching past the one asked for
        for i, v in enumerate(window):
            refuse_narrow_seconds(f"window[{i}]", v, owner=where)
    if not (isinstance(window, (list, tuple)) and len(window) == 2
            and all(is_finite_number(v) for v in window)):
        raise ValueError(f"{where}.window: expected [start, end] in seconds relative to the current window's start, got {window!r}")
    w0, w1 = float(window[0]), float(window[1])
    if not w1 > w0:
        raise ValueError(f"{where}.window: expected end > start, got [{w0}, {w1}]")
    allow_future = checked_bool("allow_future", m.get("allow_future", False), owner=where)
    m["allow_future"] = allow_future
    if w1 > current_window + 1e-12 and not allow_future:
        raise ValueError(
            f"{where}.window: ends at {w1} s, after the current window's end ({current_window} s): values from the "
            f"future of the predicted spikes; set allow_future: true to ask for this lag explicitly"
        )
    if w0 < -past_window - 1e-12:
        raise ValueError(f"{where}.window: starts at {w0} s, before the past window (-{past_window} s)")
    m["window"] = [w0, w1]
    column = m.get("column")
    m["column"] = None if column is None else checked_int("column", column, "None or a column index >= 0",
                                                          lambda v: v >= 0, owner=where)
    norm = m.get("normalization")
    if kind == "video":
        _normalize_video(m, where)
        norm = "zscore" if norm is None else norm
        if norm not in ("zscore", "none"):
            raise ValueError(f"{where}.normalization: a video modality takes 'zscore' (pixel mean/std of the training "
                             f"split's frames) or 'none', got {norm!r}")
    elif kind == "continuous":
        norm = "zscore" if norm is None else norm
        if norm not in MODALITY_NORMALIZATIONS:
            raise ValueError(f"{where}.normalization: expected one of {list(MODALITY_NORMALIZATIONS)}, got {norm!r}"
                             f"{_meant(norm, MODALITY_NORMALIZATIONS)}")
    elif norm not in (None, "none"):
        raise ValueError(f"{where}.normalization: a categorical modality takes none, got {norm!r}")
    else:
        norm = "none"
    m["normalization"] = norm
    nf = m.get("num_features", 1)
    if kind == "video" and nf != 1:
        raise ValueError(f"{where}.num_features: a video modality has one (grey-level) value per pixel, got {nf!r}")
    nf = checked_int("num_features", nf, "an integer >= 1 (columns of the value)", lambda v: v >= 1, owner=where)
    if kind == "categorical" and nf != 1:
        # a label is one value: num_features: 3 was accepted and saved, and the embedding read one class id per token
        raise ValueError(f"{where}.num_features: a categorical modality has one label per token (one class id), "
                         f"got {nf!r}; remove num_features")
    m["num_features"] = nf
    for key in ("mean", "std"):
        v = m.get(key)
        if v is not None:
            # each a real number: float() took text ('1' from a hand-edited config.json) and True, and failed on
            # None or a mapping with a TypeError naming no field
            v = v if isinstance(v, (list, tuple)) else [v]
            if len(v) != nf or not all(is_finite_number(x) for x in v):
                raise ValueError(f"{where}.{key}: expected {nf} finite {'value' if nf == 1 else 'values'} (one per feature), got {m.get(key)!r}")
            v = [float(x) for x in v]
            if key == "std" and any(x <= 0 for x in v):
                raise ValueError(f"{where}.std: expected positive values, got {v}")
        m[key] = v
    if kind == "categorical" and (m["mean"] is not None or m["std"] is not None):
        raise ValueError(f"{where}.mean/std: only a continuous or video modality has them")
    classes = m.get("classes")
    if classes is not None:
        if kind != "categorical":
            raise ValueError(f"{where}.classes: only a categorical modality has classes")
        if not distinct_labels(classes):
            raise ValueError(f"{where}.classes: expected a list of distinct labels (the training split's), got {classes!r}")
        # fitting refuses None / NaN labels (modalities.py); a hand-written [None, 1] made None a class of its own
        missing = [c for c in classes if c is None or isinstance(c, float) and not math.isfinite(c)]
        if missing:
            raise ValueError(f"{where}.classes: {missing[0]!r} is not a label (None, NaN and infinity are missing "
                             f"values; give them a label of their own), got {classes!r}")
        classes = list(classes)
    m["classes"] = classes
    m["max_tokens"] = checked_int("max_tokens", m.get("max_tokens", 32), "an integer >= 1", lambda v: v >= 1,
                                  owner=where)
    bs = m.get("bin_size")
    refuse_narrow_seconds("bin_size", bs, owner=where)  # float32 0.05 was kept as 0.05000000074505806 s
    if bs is not None:
        if not (is_finite_number(bs) and bs > 0):
            raise ValueError(f"{where}.bin_size: expected None or a positive number of seconds, got {bs!r}")
        bs = float(bs)
    m["bin_size"] = bs
    if kind == "video" and bs is not None:
        raise ValueError(f"{where}.bin_size: a video modality is not binned (its frames are its samples)")
    if kind == "categorical" and bs is not None:
        # only continuous samples are averaged in bins (modality_columns): a categorical modality's labels (events,
        # trial values) were each read as their own token whatever bin_size said, without a word
        raise ValueError(f"{where}.bin_size: a categorical modality is not binned (labels cannot be averaged: each "
                         f"event or value is its own token, at most max_tokens per window); remove bin_size, got {bs!r}")
    return {k: m.get(k) for k in MODALITY_KEYS}


@functools.lru_cache(maxsize=None)
def _is_module_dict_attribute(name: str) -> bool:
    """Whether ``name`` is an attribute of an empty ``torch.nn.ModuleDict`` (``keys``, ``training``,
    ``to``, ...), which torch refuses as a key (``add_module``: "attribute already exists")."""
    from torch import nn  # not at module level: a config alone needs no torch

    return hasattr(nn.ModuleDict(), name)


def _int_list(value, n: int, where: str, what: str, minimum: int = 1):
    """``value`` as a list of ``n`` ints >= ``minimum`` (each as :func:`checked_int` takes it:
    ``8.0`` from YAML is 8), else ``ValueError`` naming ``where``."""
    ints = [integral_value(v) for v in value] if isinstance(value, (list, tuple)) and len(value) == n else [None]
    if any(v is None or v < minimum for v in ints):
        raise ValueError(f"{where}: expected {what}, got {value!r}")
    return ints


def _normalize_video(m: dict, where: str) -> None:
    """Check and default the video keys of one modality dict (in place); see NeuroformerConfig."""
    if m.get("frame_shape") is None:
        raise ValueError(f"{where}.frame_shape: a video modality needs the frame size [height, width] in pixels")
    m["frame_shape"] = _int_list(m["frame_shape"], 2, f"{where}.frame_shape", "[height, width] in pixels (integers >= 1)")
    nf = m.get("num_frames")
    if nf is None:
        raise ValueError(f"{where}.num_frames: a video modality needs the number of frames per window (the latest "
                         "frames shown before the end of its window)")
    m["num_frames"] = nf = checked_int("num_frames", nf, "an integer >= 1", lambda v: v >= 1, owner=where)
    ps = m.get("patch_size")
    ps = [1, 4, 4] if ps is None else ps
    ps = _int_list(ps, 3, f"{where}.patch_size", "[frames, height, width] of a Conv3d patch (integers >= 1)")
    h, w = m["frame_shape"]
    if nf % ps[0] or h % ps[1] or w % ps[2]:
        raise ValueError(f"{where}.patch_size: {ps} must divide [num_frames, height, width] = [{nf}, {h}, {w}] "
                         "(the patches tile each window's clip)")
    m["patch_size"] = ps
    nl = m.get("num_layers")
    m["num_layers"] = checked_int("num_layers", 1 if nl is None else nl,
                                  "an integer >= 0 (self-attention layers over the frame patches)",
                                  lambda v: v >= 0, owner=where)
    fi = m.get("frame_interval")  # fitted; absent from configs saved before it was
    refuse_narrow_seconds("frame_interval", fi, owner=where)  # float() kept a float32's rounding
    if fi is not None and not (is_finite_number(fi) and fi > 0):
        raise ValueError(f"{where}.frame_interval: expected None or the training frames' median interval, a positive "
                         f"number of seconds, got {fi!r}")
    m["frame_interval"] = None if fi is None else float(fi)
    for key in ("column", "classes"):
        if m.get(key) is not None:
            raise ValueError(f"{where}.{key}: a video modality has no {key}")


def _is_numpy_scalar(value) -> bool:
    """True for a numpy scalar (``np.int64(3)``, ``np.float32(0.1)``), which json cannot write."""
    return type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0 and hasattr(value, "item")


def integral_value(value) -> int | None:
    """``int(value)`` for an integer (numpy ones too, not a bool) or a finite float with no
    fractional part (``64.0``, as YAML or JSON may write it); None for anything else (``3.7``,
    ``"2"``, ``True``, NaN). The test behind :func:`checked_int`, for a caller that words its own
    message (a list of integers)."""
    if is_whole_number(value):
        return int(value)
    if is_finite_number(value) and float(value).is_integer():
        return int(value)
    return None


def checked_int(name: str, value, expectation: str = "an integer", ok=None, owner: str = "NeuroformerConfig") -> int:
    """``value`` of the integer field ``name`` as an ``int``: an integer (numpy ones too) or a float
    with no fractional part (``64.0``, as YAML or JSON may write it), and ``ok(value)``; anything
    else (``16.5``, ``3.7``, ``"16"``, ``True``, NaN) is refused instead of being truncated.

    The one rule for every integer field of :class:`NeuroformerConfig` and
    :class:`~hf_neuroformer.training.TrainingConfig` (``max_steps: 3.7`` used to run 3 steps).

    Args:
        name: the field (used in the message).
        value: the value to check.
        expectation: what is expected, in words (``"an integer >= 1"``).
        ok: optional predicate on the ``int`` value (the range); None = any integer.
        owner: the class (or YAML section, ``"training"``) named in the message.

    Raises:
        ValueError: ``"<owner>.<name>: expected <expectation>, got <value>"``.
    """
    out = integral_value(value)
    if out is None or (ok is not None and not ok(out)):
        raise ValueError(f"{owner}.{name}: expected {expectation}, got {value!r}")
    return out


def checked_bool(name: str, value, owner: str = "NeuroformerConfig", keyword: bool = False) -> bool:
    """``value`` of the boolean field ``name``, refused unless it is a real ``bool`` (YAML
    ``true`` / ``false``, JSON ``true`` / ``false``).

    The one rule for every boolean field of :class:`NeuroformerConfig` and
    :class:`~hf_neuroformer.training.TrainingConfig`: a string such as ``"no"`` or ``"false"`` is
    truthy, so ``bool(value)`` turned ``dt_conditioned_on_unit: "no"`` into True and
    ``torch_compile: "false"`` switched compilation on; ``0`` / ``1`` are refused as well (a
    number is not a yes/no answer in a YAML file).

    ``keyword=True`` for a Python keyword argument (``train(write_figures="False")``), which no
    YAML file holds: text is then said to be text, not a quoted YAML value.

    Raises:
        ValueError: ``"<owner>.<name>: expected true or false, got <value>"``, for text followed by
            ``" (quoted in the YAML file? ...)"``, or with ``keyword`` ``" (text, not a bool: pass
            True or False without quotes)"``.
    """
    if not isinstance(value, bool):
        hint = ""
        if isinstance(value, str):
            hint = (" (text, not a bool: pass True or False without quotes)" if keyword
                    else " (quoted in the YAML file? write true or false without quotes)")
        raise ValueError(f"{owner}.{name}: expected true or false, got {value!r}{hint}")
    return value


def _number(name: str, value) -> float:
    """``float(value)`` for a real number (numpy ones too; NaN and inf are left to the range checks
    of ``_check``), else ``ValueError`` naming ``NeuroformerConfig.<name>``: ``float()`` took text
    (``"0.1"`` from a quoted YAML value) and failed on ``None`` or a list with a message that named
    no field."""
    if not is_real_number(value):
        hint = " (quoted in the YAML file? write the number without quotes)" if isinstance(value, str) else ""
        raise ValueError(f"NeuroformerConfig.{name}: expected a number, got {value!r}{hint}")
    return float(value)


#: Config fields that hold a length in seconds: refused as float32 / float16 (:func:`_seconds`).
SECONDS_FIELDS = ("current_window", "past_window", "window_stride", "dt_resolution", "temporal_min_period",
                  "temporal_max_period", "split_block_length", "split_gap")


#: The longest plausible value, s, of each window length of :data:`SECONDS_FIELDS`, above which
#: :class:`NeuroformerConfig` warns that the value may have been meant in milliseconds
#: (:class:`ImplausibleWindowWarning`). Neuroformer windows are tens to hundreds of milliseconds
#: (the paper's 0.05-s current windows, this config's 0.1-s current and 1-s past windows), and the
#: usual values in milliseconds (20, 50, 100, 250, 1000) all lie above 10 s; a window over 10 s
#: holds thousands of spikes of a population at ordinary firing rates, against token budgets of
#: tens to hundreds (``max_window_length``, ``max_past_length``). A dt bin over 1 s tells no spike
#: timing inside such windows (the paper's bins are milliseconds). The other lengths are not
#: windows: ``split_block_length`` and ``split_gap`` are spans of the recording (minutes are
#: usual), and ``temporal_min_period`` / ``temporal_max_period`` follow the windows by default.
#: Longer values are accepted (a slow behavioural context can take a long past window).
PLAUSIBLE_WINDOW_SECONDS = {"current_window": 10.0, "past_window": 10.0, "window_stride": 10.0, "dt_resolution": 1.0}


class ImplausibleWindowWarning(UserWarning):
    """A window length of :data:`PLAUSIBLE_WINDOW_SECONDS` above its threshold: likely given in
    milliseconds where seconds are expected (``current_window=100`` for 100 ms). Silence it with
    ``warnings.filterwarnings("ignore", category=ImplausibleWindowWarning)`` where long windows are
    meant."""


def implausible_window_lengths(config) -> list:
    """``[(field, value), ...]``: the window lengths of ``config`` (a :class:`NeuroformerConfig` or
    any object with those attributes) above :data:`PLAUSIBLE_WINDOW_SECONDS`, in that order;
    ``[]`` when none is (or the attribute is missing or None)."""
    out = []
    for name, limit in PLAUSIBLE_WINDOW_SECONDS.items():
        value = getattr(config, name, None)
        if is_finite_number(value) and float(value) > limit:
            out.append((name, float(value)))
    return out


def _as_seconds(name: str, value: float) -> str:
    """``"current_window=100 s (0.1 s if 100 was meant in milliseconds)"``."""
    return f"{name}={value:g} s ({value / 1000:g} s if {value:g} was meant in milliseconds)"


def milliseconds_hint(config) -> str:
    """The hint a refusal about windows or splits ends with when ``config`` holds a window length
    above :data:`PLAUSIBLE_WINDOW_SECONDS` (:func:`implausible_window_lengths`), e.g. ``"; note:
    window lengths are in seconds: current_window=100 s (0.1 s if 100 was meant in
    milliseconds)"``; ``""`` when it holds none."""
    found = implausible_window_lengths(config)
    if not found:
        return ""
    return "; note: window lengths are in seconds: " + ", ".join(_as_seconds(n, v) for n, v in found)


#: The window fields whose values :meth:`NeuroformerConfig.from_dict` is reading from a saved
#: ``config.json`` (set while it builds the config): they were warned of when that config was
#: made, and a model saved with long windows on purpose was warned of again at every load
#: (``from_pretrained``, a Hub download, each internal copy), from inside transformers.
_SAVED_WINDOW_FIELDS: contextvars.ContextVar[frozenset] = contextvars.ContextVar("_SAVED_WINDOW_FIELDS",
                                                                                 default=frozenset())


def _warn_implausible_windows(config, stacklevel: int) -> None:
    """Warn (:class:`ImplausibleWindowWarning`) of each window length of ``config`` above
    :data:`PLAUSIBLE_WINDOW_SECONDS`, naming the field, the value in seconds, the threshold and
    the value / 1000 it likely meant; not of a value read from a saved ``config.json``
    (:data:`_SAVED_WINDOW_FIELDS`: warned of when it was made; an override passed to
    ``from_pretrained`` is warned of)."""
    import warnings

    saved = _SAVED_WINDOW_FIELDS.get()
    for name, value in implausible_window_lengths(config):
        if name in saved:
            continue
        limit = PLAUSIBLE_WINDOW_SECONDS[name]
        what = ("a dt bin (over {:g} s; Neuroformer's dt bins are milliseconds)" if name == "dt_resolution" else
                "a spike window (over {:g} s; Neuroformer windows are tens to hundreds of milliseconds)").format(limit)
        warnings.warn(
            f"NeuroformerConfig.{name}: {value:g} s is implausibly long for {what}: lengths are in seconds, so if {value:g} was "
            f"meant in milliseconds give {name}={value / 1000:g}. Used as given (long windows can be meant)",
            ImplausibleWindowWarning, stacklevel=stacklevel + 1)


def refuse_narrow_seconds(name: str, value, owner: str = "NeuroformerConfig") -> None:
    """Refuse a length in seconds given as a numpy / torch float32, float16 or bfloat16 (Python
    floats, ints and float64 pass): ``np.float32(0.05)`` was stored as 0.05000000074505806 s and a
    spike on the next window's start was counted in both windows
    (:func:`~hf_neuroformer.argument_checks.narrow_float_seconds_message`).

    Raises:
        ValueError: ``"<owner>.<name>: expected a Python float or float64 length (s), got float32 ...;
            give a Python float or float64 ..."``.
    """
    message = narrow_float_seconds_message(name, value)
    if message is not None:
        raise ValueError(f"{owner + '.' if owner else ''}{message}")


def _seconds(name: str, value) -> float:
    """:func:`_number` for a length in seconds, float32 / float16 refused (:func:`refuse_narrow_seconds`)."""
    refuse_narrow_seconds(name, value)
    return _number(name, value)


def checked_float(name: str, value, expectation: str, ok=None, owner: str = "NeuroformerConfig") -> float:
    """``value`` of the float field ``name`` as a ``float``, refused unless it is a real number
    (numpy ones too; not a bool, not text), finite and ``ok(value)``.

    Every float field of :class:`NeuroformerConfig` (and the tokenizer's windows) goes through this
    one rule: NaN compares False with every bound, so a check written only as ``x < bound`` lets it
    through (a NaN ``split_gap`` left no gap between splits, a NaN ``dt_loss_weight`` made the loss
    NaN).

    Args:
        name: the field (used in the message, e.g. ``"split_fractions[1]"``).
        value: the value to check.
        expectation: what is expected, in words (``"a positive number"``).
        ok: optional predicate on the float value (the range); None = any finite number.
        owner: the class (or function) named in the message; ``""`` names the field alone.

    Raises:
        ValueError: ``"<owner>.<name>: expected <expectation>, got <value>"`` (``"<name>: ..."``
            when ``owner`` is ``""``).
    """
    if not is_finite_number(value) or (ok is not None and not ok(float(value))):
        raise ValueError(f"{owner + '.' if owner else ''}{name}: expected {expectation}, got {value!r}")
    return float(value)


#: Window and token-budget fields that the config and the tokenizer share (and must agree on).
WINDOW_FIELDS = ("current_window", "past_window", "dt_resolution", "max_window_length", "max_past_length")


def check_window_settings(owner: str, *, current_window, past_window, dt_resolution, max_window_length,
                          max_past_length) -> dict:
    """The rule for the window settings shared by :class:`NeuroformerConfig` and
    :class:`~hf_neuroformer.NeuroformerTokenizer`.

    Args:
        owner: the class named in the messages.
        current_window: current window length, s, finite and > 0.
        past_window: past window length, s, finite and >= 0.
        dt_resolution: dt bin width, s, finite, > 0 and <= ``current_window``.
        max_window_length: current-window tokens, an integer >= 3 (BOS, one spike, EOS).
        max_past_length: past-window tokens, an integer >= 1 (the leading BOS).

    Returns:
        ``{field: value}`` for :data:`WINDOW_FIELDS` (floats in seconds, ints).

    Raises:
        ValueError: naming ``<owner>.<field>``, the value and the expectation (NaN and inf included; a
            ``dt_resolution`` above ``current_window`` with :func:`milliseconds_hint`, e.g. for 5 meant as ms;
            a window or dt width given as a numpy / torch float32 or float16, :func:`refuse_narrow_seconds`).
    """
    for name, value in (("current_window", current_window), ("past_window", past_window),
                        ("dt_resolution", dt_resolution)):
        refuse_narrow_seconds(name, value, owner)
    out = {
        "current_window": checked_float("current_window", current_window, "a positive number", lambda v: v > 0, owner),
        "past_window": checked_float("past_window", past_window, "a finite number >= 0 (s)", lambda v: v >= 0, owner),
        "dt_resolution": checked_float("dt_resolution", dt_resolution, "a positive number", lambda v: v > 0, owner),
        "max_window_length": checked_int("max_window_length", max_window_length, owner=owner),
        "max_past_length": checked_int("max_past_length", max_past_length, owner=owner),
    }
    if out["dt_resolution"] > out["current_window"]:  # dt_resolution=5 meant as 5 ms: say so, as the warning does
        raise ValueError(f"{owner}.dt_resolution: expected <= current_window ({out['current_window']} s), "
                         f"got {out['dt_resolution']} s{milliseconds_hint(SimpleNamespace(**out))}")
    if out["max_window_length"] < 3:
        raise ValueError(f"{owner}.max_window_length: expected >= 3 (BOS, one spike, EOS), got {out['max_window_length']}")
    if out["max_past_length"] < 1:
        raise ValueError(f"{owner}.max_past_length: expected >= 1 (the leading BOS), got {out['max_past_length']}")
    return out


#: The tokenizer's special token ids (fixed; the unit tokens follow them).
SPECIAL_TOKEN_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
#: The token id of the first unit: the number of special tokens (pad, BOS, EOS at ids 0, 1, 2), which
#: come first in the vocabulary; a unit's id is ``FIRST_UNIT_ID + k`` for the k-th unit added.
FIRST_UNIT_ID = len(SPECIAL_TOKEN_IDS)
#: transformers' classification fields, which NeuroformerConfig refuses unless at their defaults
LABEL_FIELDS = ("num_labels", "id2label", "label2id")
#: ``PreTrainedConfig``'s default ``id2label`` (two labels), the only one a NeuroformerConfig takes
DEFAULT_ID2LABEL = {0: "LABEL_0", 1: "LABEL_1"}


@functools.lru_cache(maxsize=None)
def _transformers_config_keys() -> frozenset:
    """Keys that ``PreTrainedConfig`` itself takes or keeps (its attributes and annotations, the
    generation settings it drops, what ``from_pretrained`` / ``save_pretrained`` /
    ``register_for_auto_class`` pass or write)."""
    keys = set(vars(PreTrainedConfig()))
    for klass in PreTrainedConfig.__mro__:
        keys |= set(getattr(klass, "__annotations__", {}))
    try:
        from transformers import GenerationConfig

        keys |= set(GenerationConfig._get_default_generation_params())
    except (ImportError, AttributeError):
        pass
    return frozenset(keys) | {"name_or_path", "_name_or_path", "_commit_hash", "output_attentions",
                              "attn_implementation", "experts_implementation", "per_layer_config", "torch_dtype",
                              "num_labels", "auto_map", "custom_pipelines", "tokenizer_class", "_from_auto",
                              "_from_pipeline", "model_type"}


def _warn_unknown_fields(kwargs: dict, cls, fate: str = "are kept as attributes but nothing reads them",
                         stacklevel: int = 3) -> None:
    """Warn about keyword arguments that are neither fields of ``cls`` (its constructor's arguments)
    nor keys of transformers' ``PreTrainedConfig``: they are kept as attributes (transformers'
    rule, so a config.json with extra keys still loads) but nothing reads them, so
    ``NeuroformerConfig(hiden_size=64)`` built a 128-wide model without a word."""
    if not kwargs:
        return
    unknown = sorted(set(kwargs) - _transformers_config_keys())
    if not unknown:
        return
    import difflib
    import warnings

    own = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    hints = [f"{c[0]!r} for {u!r}" for u in unknown for c in [difflib.get_close_matches(u, own, n=1)] if c]
    warnings.warn(f"NeuroformerConfig: unknown {'field' if len(unknown) == 1 else 'fields'} {unknown} {fate}"
                  + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                  + "; NeuroformerConfig's docstring lists the fields", UserWarning, stacklevel=stacklevel)


def _warn_generation_settings(keys, stacklevel: int = 3) -> None:
    """Warn about transformers' generation settings among ``keys`` (``temperature``, ``top_k``,
    ``do_sample``, ...) that the config dropped: transformers takes them out of a model config
    without a word, so ``NeuroformerConfig(temperature=0.5)`` kept nothing and generation sampled
    at temperature 1. Neuroformer's sampling settings are arguments of ``generate_spikes``."""
    try:
        from transformers import GenerationConfig

        known = set(GenerationConfig._get_default_generation_params())
    except (ImportError, AttributeError):
        return
    # use_cache is left out: transformers' gradient_checkpointing_enable sets config.use_cache = False, and a
    # config.json saved after it holds the key (generation's KV cache is generate_spikes' use_cache)
    dropped = sorted(k for k in keys if k in known and k != "use_cache")
    if dropped:
        import warnings

        one = len(dropped) == 1
        warnings.warn(f"NeuroformerConfig: generation {'setting' if one else 'settings'} {dropped} "
                      f"{'is no config field and was' if one else 'are not config fields and were'} dropped "
                      "(not saved, not read by generation); pass them to generate_spikes (temperature, top_k, "
                      "top_p, dt_temperature, ...) or to 'neuroformer generate'", UserWarning, stacklevel=stacklevel)


def _optional_size(name: str, value, minimum: int) -> int | None:
    """``value`` of the optional integer field ``name`` (None = a default taken from another
    field) as :func:`checked_int` takes it, ``>= minimum``."""
    if value is None:
        return None
    return checked_int(name, value, f"an integer >= {minimum} or None", lambda v: v >= minimum)


def _special_id(name: str, value) -> int:
    """``value`` of ``pad_token_id`` / ``bos_token_id`` / ``eos_token_id`` as an ``int``, refused
    unless it is the tokenizer's fixed id (:data:`SPECIAL_TOKEN_IDS`): another pad id made the
    model take a unit's spikes for padding.

    Raises:
        ValueError: ``"NeuroformerConfig.<name>: expected <id> ..., got <value>"``.
    """
    want = SPECIAL_TOKEN_IDS[name]
    token = {"pad_token_id": "<pad>", "bos_token_id": "<bos>", "eos_token_id": "<eos>"}[name]
    return checked_int(name, value, f"{want} (NeuroformerTokenizer's fixed {token} id; unit tokens start at 3)",
                       lambda v: v == want)


def _checked_contrastive_weight(weight) -> float:
    """``contrastive_loss_weight`` as a float >= 0; checked by the constructor and again by ``validate``."""
    # trap 9: only a real number turns the loss on, never a truthy object (True, a dict, "yes")
    if not (is_finite_number(weight) and weight >= 0):
        raise ValueError(f"NeuroformerConfig.contrastive_loss_weight: expected a finite number >= 0 (0 = off), got "
                         f"{weight!r}")
    return float(weight)


def _checked_contrastive_temperature(temperature) -> float:
    """``contrastive_temperature`` as a float, from 0.01 (the logit scale cap) to
    ``CONTRASTIVE_MAX_TEMPERATURE``; checked by the constructor and again by ``validate``."""
    if not (is_finite_number(temperature) and temperature > 0):
        raise ValueError(f"NeuroformerConfig.contrastive_temperature: expected a positive number, got {temperature!r}")
    if 1.0 / temperature > CONTRASTIVE_MAX_LOGIT_SCALE * (1 + 1e-9):
        # the head caps 1 / temperature at 100 (CLIP): a smaller temperature trained at 0.01 without a
        # word, and a learnable one never moved (the cap passes no gradient)
        raise ValueError(f"NeuroformerConfig.contrastive_temperature: expected >= {1 / CONTRASTIVE_MAX_LOGIT_SCALE:g} "
                         f"(the logit scale 1 / temperature is capped at {CONTRASTIVE_MAX_LOGIT_SCALE:g}, as in "
                         f"CLIP), got {temperature!r}")
    if temperature > CONTRASTIVE_MAX_TEMPERATURE:
        # 1e300 was taken: exp(log(1 / temperature)) is 0 in float32, the loss a constant log(n) with no gradient
        raise ValueError(f"NeuroformerConfig.contrastive_temperature: expected <= {CONTRASTIVE_MAX_TEMPERATURE:g} "
                         f"(the loss's gradient falls as 1 / temperature; above about 1e40 the logit scale "
                         f"1 / temperature is 0 in float32 and bfloat16 and the loss has none), got {temperature!r}")
    return float(temperature)


def _checked_hidden_act(hidden_act) -> str:
    """``hidden_act`` as given, refused unless a name of transformers' ``ACT2FN``; checked by the
    constructor and again by ``validate``."""
    from transformers.activations import ACT2FN

    if not (isinstance(hidden_act, str) and hidden_act in ACT2FN):
        raise ValueError(f"NeuroformerConfig.hidden_act: expected an activation name of transformers' ACT2FN "
                         f"(e.g. 'gelu', 'relu', 'silu'), got {hidden_act!r}")
    return hidden_act


def _checked_stratify_by(column):
    """``split_stratify_by``: None or a trial column name; checked by the constructor and again by ``validate``."""
    if column is not None and not (isinstance(column, str) and column):
        raise ValueError(f"NeuroformerConfig.split_stratify_by: expected None or a trial column name, got {column!r}")
    return column


def _checked_decoding_targets(targets) -> list:
    """``decoding_targets`` as a new list of dicts (None = ``[]``); the rules of each target are
    ``NeuroformerConfig._check``'s. Checked by the constructor and again by ``validate``."""
    if targets is not None and not (isinstance(targets, (list, tuple)) and all(isinstance(t, dict) for t in targets)):
        raise ValueError(f"NeuroformerConfig.decoding_targets: expected None or a list of mappings with 'name' and "
                         f"'kind', got {targets!r}")
    return [dict(t) for t in (targets or [])]


def _check_regression_loss(t: dict, where: str) -> None:
    """The loss keys of one ``decoding_targets`` entry ``t`` (``where`` formats a field name):
    ``loss`` absent or ``"mse"`` (the default) with none of :data:`HL_GAUSS_KEYS`, or, for a
    regression target only, ``"hl_gauss"`` with ``num_bins`` (int >= 2), ``hl_gauss_sigma_ratio``
    (> 0) and ``bin_range`` (``[low, high]``, finite, low < high: the outer bin edges in
    standardised units). Stored checked (``num_bins`` an int, the rest floats).

    Raises:
        ValueError: naming the field, the value and the expectation."""
    loss = t.get("loss", "mse")
    if loss not in REGRESSION_LOSSES:
        raise ValueError(f"NeuroformerConfig.{where.format('loss')}: expected one of {list(REGRESSION_LOSSES)} (absent "
                         f"= 'mse'), got {loss!r}")
    if loss == "mse":
        extra = [k for k in HL_GAUSS_KEYS if k in t]
        if extra:  # a num_bins without the loss that reads it was kept and ignored: the head trained with MSE
            raise ValueError(f"NeuroformerConfig.{where.format(extra[0])}: only read with loss 'hl_gauss', got loss "
                             f"{loss!r}; set 'loss': 'hl_gauss' or leave out {extra}")
        return
    if t["kind"] != "regression":
        raise ValueError(f"NeuroformerConfig.{where.format('loss')}: 'hl_gauss' is a loss of regression targets, "
                         f"got it for kind {t['kind']!r}")
    t["num_bins"] = check_hl_gauss_settings(t.get("num_bins"), t.get("hl_gauss_sigma_ratio"),
                                            "NeuroformerConfig." + where)
    t["hl_gauss_sigma_ratio"] = float(t["hl_gauss_sigma_ratio"])
    br = t.get("bin_range")
    if not (isinstance(br, (list, tuple)) and len(br) == 2 and all(is_finite_number(v) and not isinstance(v, bool)
                                                                     for v in br) and br[0] < br[1]):
        raise ValueError(f"NeuroformerConfig.{where.format('bin_range')}: expected [low, high], two finite numbers "
                         f"with low < high (the outer bin edges of the standardised value; "
                         f"hf_neuroformer.decoding.target_dicts sets them from the training windows), got {br!r}")
    t["bin_range"] = [float(br[0]), float(br[1])]


def _checked_modalities(modalities, current_window: float, past_window: float) -> list:
    """``modalities`` as a new list of :func:`normalize_modality` dicts (None = ``[]``) with
    distinct names, their windows within these windows; checked by the constructor and again by
    ``validate`` (a modality set, or a window changed, after construction)."""
    if modalities is not None and not isinstance(modalities, (list, tuple)):
        raise ValueError(f"NeuroformerConfig.modalities: expected a list of modality mappings, got {type(modalities).__name__}")
    out = [normalize_modality(i, m, current_window, past_window) for i, m in enumerate(modalities or [])]
    names = [m["name"] for m in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"NeuroformerConfig.modalities: names must be unique, repeated: {dup}")
    return out


def _checked_contrastive_modalities(names, known: list):
    """``contrastive_modalities``: None (all of ``known``, the config's modality names) or a new
    list of distinct names among ``known``; checked by the constructor and again by ``validate``."""
    if names is None:
        return None
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names) or not names:
        raise ValueError(f"NeuroformerConfig.contrastive_modalities: expected None or a non-empty list of "
                         f"modality names, got {names!r}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"NeuroformerConfig.contrastive_modalities: {unknown} are not modalities of this "
                         f"config ({known})")
    # a name given twice weighed its modality twice in the loss and counted each window twice in retrieval
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        raise ValueError(f"NeuroformerConfig.contrastive_modalities: names must be unique, repeated: {dup}")
    return list(names)


class NeuroformerConfig(PreTrainedConfig):
    r"""Configuration of a Neuroformer.

    Windows and tokens (times in seconds; every length in seconds, :data:`SECONDS_FIELDS`, is a Python
    float or int or a float64, and a numpy / torch float32 or float16 is refused with a ``ValueError``
    naming the field: widened, ``np.float32(0.05)`` is 0.05000000074505806 s). A window length above
    :data:`PLAUSIBLE_WINDOW_SECONDS` (``current_window``, ``past_window``, ``window_stride`` over 10 s,
    ``dt_resolution`` over 1 s: likely meant in milliseconds, ``current_window=100`` for 100 ms) is
    warned of at construction (:class:`ImplausibleWindowWarning`, naming the field, the value and
    value / 1000) and used as given, since long windows can be meant; a later refusal of the windows
    or splits (:func:`~hf_neuroformer.windows.plan_splits`) repeats the hint:
        current_window (float, default 0.1): length of the current window whose spikes are
            predicted token by token, s. The paper's visual-cortex runs used 0.05 s.
        past_window (float, default 1.0): length of the past window that precedes the current
            window and conditions it through cross-attention, s.
        window_stride (float or None, default None): step between successive TRAINING current
            windows, s; ``None`` means ``current_window`` (non-overlapping). A smaller step gives
            overlapping, shifted views of the same spikes. Validation and test windows always tile
            their split (step ``current_window``), whatever this is, so what is scored does not
            depend on it; where trials overlap, a stretch of time is scored once (the earliest
            trial's windows, with a warning; training keeps each trial's own windows,
            :func:`~hf_neuroformer.windows.tiling_windows`).
        dt_resolution (float, default 0.005): width of a dt bin, s. A spike at offset ``dt``
            inside its window gets ``dt_id = floor(dt / dt_resolution)``; decoding places it at
            the bin centre, so the round-trip error is at most ``dt_resolution / 2``.
        max_window_length (int, default 64): maximum current-window tokens, BOS and EOS included.
            Spikes beyond ``max_window_length - 2`` in a window are dropped and counted (keep earliest).
        max_past_length (int, default 256): maximum past-window tokens, the leading BOS
            included. Older past spikes beyond the limit are dropped and counted (keep latest).

    Vocabulary:
        vocab_size (int): number of unit-id tokens, specials included (pad, bos, eos first).
            Set from the tokenizer; grows when units of new sessions are added.
        pad_token_id, bos_token_id, eos_token_id (int, 0, 1, 2): the tokenizer's fixed special
            ids; any other value is a ``ValueError``.

    Network:
        hidden_size (int, default 128): width of every embedding.
        num_attention_heads (int, default 4).
        num_past_layers (int, default 1): self-attention layers of the past-window encoder.
        num_hidden_layers (int, default 2): decoder layers over the current window (causal
            self-attention, cross-attention to the past encoding, MLP).
        intermediate_size (int, default 256): MLP width.
        hidden_act (str, default "gelu").
        hidden_dropout (float, default 0.1), attention_dropout (float, default 0.0).
        layer_norm_eps (float, default 1e-5).
        initializer_range (float, default 0.02): std of the normal init of weights.
        temporal_min_period (float or None): shortest period of the sinusoidal temporal
            embedding, s (default ``dt_resolution``).
        temporal_max_period (float or None): longest period, s (default ``4 * (past_window +
            current_window)``); at least ``temporal_min_period``.
        num_temporal_frequencies (int, default 32): frequencies of the temporal embedding.
        dt_loss_weight (float, default 1.0): weight of the dt cross-entropy in the loss.
        dt_conditioned_on_unit (bool, default True): the dt head also reads an embedding of the
            next spike's unit, so the model is ``p(unit | prefix) * p(dt | prefix, unit)``. The
            paper's two heads are independent given the prefix, which cannot express the token
            order (spikes sorted by bin, then unit: a unit below the previous one must fall in a
            later bin); with this on, the model can learn it. False: the paper's independent heads.
            A saved ``config.json`` without the field (written before it existed, by code whose dt
            head was always the paper's) is read as False.

    Behaviour decoding (:class:`~hf_neuroformer.modeling_neuroformer.NeuroformerForBehaviorDecoding`):
        decoding_targets (list of dict, default []): one dict per decoded variable, in head
            order: ``name`` (recording behaviour key or ``"trial:<column>"``), ``kind``
            (``"regression"``, ``"classification"`` or ``"circular"``, radians), ``column``
            (column of a 2-D behaviour series or None; with a column the target is labelled
            ``name[column]`` in the dataset and the metric keys, :func:`hf_neuroformer.decoding.target_label`), ``weight`` (loss weight, default 1),
            ``mean`` / ``std`` (regression: TRAIN-split statistics the head is standardised
            with), ``num_classes`` and ``classes`` (classification: the sorted TRAIN labels;
            class index ``i`` means ``classes[i]``), ``class_weight`` (classification:
            ``"balanced"`` or None, how ``class_weights`` was made) and ``class_weights``
            (classification: None = plain cross-entropy, or ``num_classes`` floats >= 0 that
            weight each window's cross-entropy by its class; ``"balanced"`` = scikit-learn's
            ``n / (k * n_c)`` over the training windows used, see
            :func:`hf_neuroformer.decoding.balanced_class_weights`); circular: ``recorded_range_deg``
            (the range the figures draw it in); ``unit`` (str, optional: the unit of the behaviour series
            it was fine-tuned on, e.g. ``"cm"``); regression: ``loss`` (``"mse"``, the default when
            absent, or ``"hl_gauss"``: the histogram loss with a Gaussian-smoothed target, Imani &
            White ICML 2018, as Farebrother et al. ICML 2024, arXiv 2403.03950; the head gives
            ``num_bins`` logits over equal bins of the standardised value spanning ``bin_range``
            ``[low, high]``, is trained by cross-entropy against the mass per bin of N(z, sigma^2), sigma =
            ``hl_gauss_sigma_ratio`` bin widths, and predicts the expected bin centre;
            :func:`hf_neuroformer.decoding.target_dicts` sets ``bin_range`` from the training windows).
            Any other key raises ``ValueError`` naming it (:data:`DECODING_TARGET_KEYS`).
        decoding_pool (str, default "current+past"): what the heads read: ``"current"`` = mean
            of the decoder states over the real current-window tokens (BOS, spikes, EOS; no
            padding), ``"current+past"`` = that concatenated with the mean of the past-window
            encoding over its real tokens (a window without spikes still has BOS/EOS states,
            which see the past through cross-attention; the past mean gives it directly),
            ``"attention"`` = one learned query attends (``num_attention_heads`` heads) over the
            real tokens of both, the current window's decoder states and the past-window
            encoding, each tagged with a learned stream embedding, so the read-out can weight
            spikes by unit and time instead of averaging them (attention pooling by a learned
            query, as Set Transformer's PMA, Lee et al., ICML 2019; POYO, Azabou et al.,
            NeurIPS 2023, also reads out with learned queries, one per output timestamp,
            cross-attending to its PerceiverIO latents).
        decoding_head_hidden_size (int or None, default None = ``hidden_size``): width of the
            hidden layer of each decoding head (pooled -> Linear -> GELU -> dropout -> Linear);
            0 = a single linear layer.
        decoding_generative_loss_weight (float, default 0.0): weight of the next-spike
            (unit-id + dt) loss kept as an auxiliary term while decoding; > 0 keeps the
            pretraining heads (loaded from a pretraining checkpoint when it has them).

    Modalities (inputs besides the spikes; :mod:`hf_neuroformer.modalities` reads them from a
    recording, :class:`~hf_neuroformer.modeling_neuroformer.NeuroformerModel` embeds them):
        modalities (list of dict, default []): one dict per modality, written in YAML one to one:
            ``name`` (identifier, unique, not an attribute of ``torch.nn.ModuleDict`` such as
            ``keys``, ``training`` or ``to``: the model keeps its modality embeddings in one, keyed
            by name); ``source``: where the values live in the recording,
            ``"behaviour:<key>"`` (a sampled series), ``"trial:<column>"`` (one value per trial,
            over the trial's interval), ``"stimulus:ids"`` (stimulus ids over their intervals),
            ``"stimulus:frames"`` (video, see below) or
            ``"events:<key>"`` (point events of ``recording.events``, kind ``"categorical"``: one
            token per event at its time, its label as the class, one class = the stream's name
            when unlabelled);
            ``kind``: ``"continuous"``, ``"categorical"`` or ``"video"`` (see below); ``role``:
            ``"input"`` (the only role of this version); ``block`` (int, default the list
            index): modalities enter the decoder through cross-attention stages run in ascending
            ``block`` order before its layers, one stage per distinct block (modalities with the
            same block share a stage); ``window`` ([start, end] s relative to the current
            window's start, default ``[0, current_window]``; values at times in ``[start, end)``
            are read, never later; ``end > current_window`` reads the future of the predicted
            spikes and is refused unless ``allow_future: true``; ``start >= -past_window``);
            ``column`` (column of a 2-D series, None = all); ``num_features`` (int, default 1:
            columns of the value; 1 for a categorical one); ``normalization`` (continuous: ``"zscore"`` with ``mean`` /
            ``std``, one per feature, from the TRAINING split, filled in by
            :func:`hf_neuroformer.modalities.fit_modalities` and saved here so inference uses
            the same; ``"circular"``: angles in radians embedded as (cos, sin); ``"none"``);
            ``classes`` (categorical: the sorted TRAINING-split labels, id ``i`` is
            ``classes[i]``, filled in by ``fit_modalities``); ``max_tokens`` (int, default 32:
            tokens per window; the earliest beyond it are dropped and counted); ``bin_size``
            (s or None: average the samples in bins of this width, one token per bin; continuous only).
            Continuous values go through an MLP (no LayerNorm over a size-1 feature, which
            erased the value in the original code, GUIDE trap 1); every token also gets a
            temporal embedding of its time in seconds relative to the current window's start.
            Video (``kind: video``, ``source: "stimulus:frames"``, the recording's
            ``stimulus.frames`` with their ``frame_times``; the frame rate comes from the data):
            ``frame_shape`` ([height, width] px, required; frames of another shape are refused);
            ``num_frames`` (int, required: each window reads the latest ``num_frames`` frames
            shown during ``[window[0], window[1])``, i.e. whose onset is before the window's end
            and which are still on screen at its start; fewer are zero-padded and masked; more
            are dropped, earliest first, and counted in ``metrics.json``
            ``n_truncated_modality_tokens`` as frames; ``max_tokens`` does not apply); ``patch_size`` ([frames, height, width],
            default [1, 4, 4]: a Conv3d with that kernel and stride turns the clip into
            patch tokens; it must divide ``[num_frames, height, width]``); ``num_layers`` (int,
            default 1: bidirectional self-attention layers over the patch tokens); ``normalization``
            ``"zscore"`` (one pixel mean / std over the training split's frames, filled in by
            ``fit_modalities``) or ``"none"`` (pixels read as they are; ``fit_modalities`` records
            the mean / std too, not applied, to warn of a recording on another pixel scale; None in
            configs saved before: no check); ``frame_interval`` (float s or None, filled in by
            ``fit_modalities``: the median interval between the training recording's frame onsets;
            a recording run through the trained model whose median interval differs by more than
            10 % is warned of, as its windows read more or fewer frames; None in configs saved
            before it was recorded: no check). Each patch token adds a 3D positional encoding:
            the temporal embedding of its frames' onset (s, relative to the current window's
            start, mean over the patch's real frames) plus learned row and column embeddings of
            its place in the patch grid (the original computed a 3D encoding and dropped it,
            GUIDE trap 2).
        num_modality_layers (int, default 1): cross-attention + MLP layers per modality stage.

    Contrastive alignment (paper Sec. 3.2, CLIP-style; :class:`~hf_neuroformer.modeling_neuroformer.NeuroformerContrastiveHead`):
        contrastive_loss_weight (float, default 0.0 = off): weight of the symmetric InfoNCE
            between the pooled neural embedding of each window and the pooled embedding of each
            contrastive modality, added to the next-spike loss. Must be a number >= 0: a bool or
            any other object is refused (GUIDE trap 9: a truthy config object turned the
            original's contrastive loss on in every run). 0 builds no projection at all. The
            negatives of a window are the other windows of its micro-batch that hold a token of
            the modality (of every process's micro-batch under several processes, which gather their
            embeddings; not across accumulated micro-batches: see
            ``TrainingConfig.gradient_accumulation_steps``); the loss of a micro-batch is the mean
            over the contrastive modalities with at least two such windows in it (0 when none has).
        contrastive_temperature (float, default 0.1): softmax temperature of the similarities
            (initial value when learnable); from 0.01 to 100: the logit scale ``1 / temperature``
            is capped at 100 (CLIP) and kept >= 0.01, also while it is learned, and the loss's gradient falls as
            ``1 / temperature`` (at 100, 1/100 of its size at 1; far above, none: from about 1e40,
            ``exp(log(1 / temperature))`` is 0 in bfloat16 and float32 and the loss a constant ``log(n)``).
        contrastive_learnable_temperature (bool, default False): learn ``log(1 / temperature)``;
            :func:`~hf_neuroformer.training.train` puts a learned value above ``log(100)`` or below
            ``log(1 / 100)`` back on that bound after every optimizer step (CLIP's cap), where the
            loss still gives it a gradient.
        contrastive_modalities (list of str or None, default None = every modality): the
            modality names aligned with the spikes, each named once.
        contrastive_projection_size (int or None, default None = ``hidden_size``): width of the
            shared space the separate linear projections map into.
        contrastive_gather_across_processes (bool, default True): under several processes
            (``torch.distributed`` initialised with a world size above 1: torchrun, ``accelerate
            launch``, DDP), gather every process's projected embeddings, so that a window's negatives
            are the windows of every process's micro-batch (CLIP's practice; the loss and gradients of
            one process with the whole batch). The model's forward is then a collective whenever it
            computes the contrastive loss: every process must call it equally often, which DDP's
            ``join()`` for uneven inputs (Accelerate's ``join_uneven_inputs``) cannot make up for, so
            under a DDP whose join is enabled the forward raises ``ValueError`` instead of hanging.
            ``False``: each process contrasts the windows of its own micro-batch only (fewer negatives;
            the term of one process with ``num_processes`` accumulated micro-batches, which
            :func:`~hf_neuroformer.training.train` warns of), no collective in the forward, and
            ``join()`` works. The gather uses the default process group. No effect on one process.

    Splits (used by :mod:`hf_neuroformer.windows`):
        split_fractions (list of 3 floats, default [0.7, 0.15, 0.15]): train, validation, test.
        split_block_length (float, default 30.0): length of the contiguous time blocks that are
            assigned to splits, s (ignored when splitting by trials).
        split_gap (float or None): seconds left out at each boundary between splits; default
            and minimum ``past_window``. What keeps a window from reading another split's spikes
            is each segment's lead-in: the first window of a segment starts ``past_window`` after
            the segment's start (:func:`~hf_neuroformer.windows.window_starts_for_split`), so
            every window's past lies inside its own split's segment. The gap is an extra margin:
            activity that outlasts a boundary (a burst, a slow drift of the firing rates, a bout
            of behaviour) does not reach both splits.
            Ignored when splitting by trials: whole trials are the units, each window lies inside
            its trial and its past is clipped at the trial's start (trials of different splits
            can then lie closer than ``split_gap``, e.g. 0.1 s apart on Steinmetz).
        split_by (str, default "auto"): "time", "trials", or "auto" (trials when present).
        split_seed (int, default 0): seed of the block/trial assignment.
        split_stratify_by (str or None, default None): a ``trial_info`` column; when splitting by
            trials, each of its values is split in ``split_fractions`` on its own (e.g.
            ``orientation_deg``: every orientation appears in every split in the same
            proportions; a value with fewer groups of trials than splits cannot, and its trials go
            to train first, then to the larger of the validation and test fractions (validation
            when they are equal), with a warning). Ignored (with an error) when
            splitting by time.

    Raises:
        ValueError: naming the field, when a value is out of range (non-positive windows or
            resolution, ``hidden_size`` not divisible by ``num_attention_heads``, etc.), and for
            NaN or infinite values of every float field (windows, resolution, periods, dropouts,
            loss weights, ``split_fractions`` entries, ``split_gap``, decoding-target weight /
            mean / std), see :func:`checked_float`; for an integer field that is not integral
            (``3.7``, ``"2"``, ``True``; ``64.0`` is taken), see :func:`checked_int`; for a boolean
            field (``dt_conditioned_on_unit``, ``contrastive_learnable_temperature``, a modality's
            ``allow_future``) that is not a real ``bool`` (``"no"`` / ``"false"`` are truthy
            strings), see :func:`checked_bool`; for transformers' ``num_labels`` / ``id2label`` /
            ``label2id`` other than the default two labels (no Neuroformer model reads them; a
            decoder's classes come from ``decoding_targets``).
    """

    model_type = "neuroformer"
    #: Output fields that ``Trainer.evaluate`` / ``predict`` leave out of ``predictions``: the
    #: decoding cache, the past-window encoding (its length differs between batches, so Trainer
    #: padded it with -100, a value a hidden state can hold) and the per-batch loss parts (one
    #: scalar per batch, not per window). ``predictions`` is then ``(logits, dt_logits)``.
    keys_to_ignore_at_inference = ["cache", "past_hidden_state", "id_loss", "dt_loss", "contrastive_loss"]

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        """``PreTrainedConfig.from_dict``, with the overrides that are constructor arguments
        (``from_pretrained(path, num_attention_heads=8)``, also through a model's
        ``from_pretrained``) passed to the constructor, so they meet its checks: transformers
        set them on the finished config, and a bad one failed deep inside the model
        (``num_attention_heads=5`` with ``hidden_size=32``: "shape '[8, 5, 5, 6]' is invalid",
        ``dt_resolution=0``: ZeroDivisionError).

        ``AutoConfig.from_pretrained`` (and so every ``AutoModel*``) reads ``config.json`` through
        transformers' base class before this class is reached, and passes the folder as
        ``name_or_path``: a save into it killed after its commit is completed here and its
        ``config.json`` read again (it gave the older model's config, and ``AutoModel*`` then
        refused the new weights with a size mismatch).

        A saved config (one with ``transformers_version``) without ``dt_conditioned_on_unit``
        was written before the field existed, when the dt head was the paper's, independent of
        the unit: it is read as ``False`` (the default True gave such a model a
        ``dt_unit_embeddings`` its weights lack, initialised at random, and other dt logits).

        A window length of a saved config (one with ``transformers_version``) above
        :data:`PLAUSIBLE_WINDOW_SECONDS` is not warned of again (:class:`ImplausibleWindowWarning`
        was raised where that config was made); one given here as an override is.

        A saved config whose categorical modality holds ``bin_size`` or ``num_features`` other
        than 1 (accepted before they were refused, never applied) loads without them, with a
        warning (:func:`saved_modalities_without_ignored_keys`); the constructor still refuses them.

        Raises:
            ValueError: as the constructor, naming the field.
        """
        if finish_interrupted_save_of(kwargs.get("name_or_path")):
            config_dict = cls.get_config_dict(kwargs["name_or_path"])[0]
        if "dt_conditioned_on_unit" not in config_dict:
            config_dict = {**config_dict, "dt_conditioned_on_unit": saved_dt_conditioned_on_unit(config_dict)}
        if "transformers_version" in config_dict:  # a saved config.json, not one built in code
            config_dict = saved_modalities_without_ignored_keys(config_dict)
        params = inspect.signature(cls.__init__).parameters
        own = {k: kwargs.pop(k) for k in list(kwargs)
               if (k in params and params[k].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and k != "self")
               or k in LABEL_FIELDS}  # num_labels=3 was set on the finished config, unchecked
        # a saved config's long windows were warned of when it was made (ImplausibleWindowWarning): not
        # again at each load; an override given here is the caller's and is warned of
        saved = frozenset(k for k in PLAUSIBLE_WINDOW_SECONDS if k in config_dict and k not in own) \
            if "transformers_version" in config_dict else frozenset()
        reset = _SAVED_WINDOW_FIELDS.set(saved)
        try:
            if kwargs.pop("return_unused_kwargs", False):
                return super().from_dict({**config_dict, **own}, return_unused_kwargs=True, **kwargs)
            # transformers drops the overrides that are no attribute without a word when the caller does
            # not ask for them back: from_pretrained(path, hiden_size=64) kept hidden_size 128
            config, unused = super().from_dict({**config_dict, **own}, return_unused_kwargs=True, **kwargs)
        finally:
            _SAVED_WINDOW_FIELDS.reset(reset)
        _warn_unknown_fields(unused, cls, fate="were ignored (not config fields)", stacklevel=4)
        _warn_generation_settings(list(unused), stacklevel=4)
        return config

    @classmethod
    def from_json_file(cls, json_file):
        """``PreTrainedConfig.from_json_file`` through :meth:`from_dict`, so a saved ``config.json``
        read by path (``NeuroformerProcessor.from_pretrained``) is read as ``from_pretrained`` reads
        it (transformers' builds ``cls(**dict)``: the rules for older saved configs were skipped)."""
        return cls.from_dict(cls._dict_from_json_file(json_file))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedConfig.from_pretrained``, after completing an interrupted save into a local
        folder (:func:`finish_interrupted_save_of`; ``subfolder=`` given: the save into that
        subfolder, the folder read), so ``config.json`` is never an older run's."""
        finish_interrupted_save_of(pretrained_model_name_or_path, kwargs.get("subfolder"))
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedConfig.save_pretrained``, after completing a save into ``save_directory``
        killed after its commit (:func:`finish_interrupted_save_of`): left pending, the next
        ``from_pretrained`` completed it over the ``config.json`` written here. A config whose
        ``auto_map`` names its class (loaded from a pushed repository) is saved with
        ``configuration_neuroformer.py`` and the modules it imports (:func:`carried_remote_code`).

        Raises:
            ValueError: a field that breaks its rule (:meth:`validate`, the constructor's message),
                before anything is written or created (transformers validates after creating the
                folder and writing the code files).
        """
        self.validate()
        finish_interrupted_save_of(save_directory)
        # a config pulled from a pushed repository: the code files its auto_map names are written too
        with carried_remote_code(self, getattr(self, "auto_map", None), save_directory):
            return super().save_pretrained(save_directory, *args, **kwargs)

    def __init__(
        self,
        current_window: float = 0.1,
        past_window: float = 1.0,
        window_stride: float | None = None,
        dt_resolution: float = 0.005,
        max_window_length: int = 64,
        max_past_length: int = 256,
        vocab_size: int = 3,
        hidden_size: int = 128,
        num_attention_heads: int = 4,
        num_past_layers: int = 1,
        num_hidden_layers: int = 2,
        intermediate_size: int = 256,
        hidden_act: str = "gelu",
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.0,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        temporal_min_period: float | None = None,
        temporal_max_period: float | None = None,
        num_temporal_frequencies: int = 32,
        dt_loss_weight: float = 1.0,
        dt_conditioned_on_unit: bool = True,
        split_fractions=(0.7, 0.15, 0.15),
        split_block_length: float = 30.0,
        split_gap: float | None = None,
        split_by: str = "auto",
        split_seed: int = 0,
        split_stratify_by: str | None = None,
        decoding_targets=None,
        decoding_pool: str = "current+past",
        decoding_head_hidden_size: int | None = None,
        decoding_generative_loss_weight: float = 0.0,
        modalities=None,
        num_modality_layers: int = 1,
        contrastive_loss_weight: float = 0.0,
        contrastive_temperature: float = 0.1,
        contrastive_learnable_temperature: bool = False,
        contrastive_modalities=None,
        contrastive_projection_size: int | None = None,
        contrastive_gather_across_processes: bool = True,
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        **kwargs,
    ):
        self.current_window = _seconds("current_window", current_window)
        self.past_window = _seconds("past_window", past_window)
        self.window_stride = None if window_stride is None else _seconds("window_stride", window_stride)
        self.dt_resolution = _seconds("dt_resolution", dt_resolution)
        self.max_window_length = checked_int("max_window_length", max_window_length)
        self.max_past_length = checked_int("max_past_length", max_past_length)
        # the windows first: the defaults below and the modality windows are built from them
        check_window_settings("NeuroformerConfig", **{f: getattr(self, f) for f in WINDOW_FIELDS})
        self.vocab_size = checked_int("vocab_size", vocab_size)
        self.hidden_size = checked_int("hidden_size", hidden_size)
        self.num_attention_heads = checked_int("num_attention_heads", num_attention_heads)
        self.num_past_layers = checked_int("num_past_layers", num_past_layers)
        self.num_hidden_layers = checked_int("num_hidden_layers", num_hidden_layers)
        self.intermediate_size = checked_int("intermediate_size", intermediate_size)
        self.hidden_act = _checked_hidden_act(hidden_act)
        self.hidden_dropout = _number("hidden_dropout", hidden_dropout)
        self.attention_dropout = _number("attention_dropout", attention_dropout)
        self.layer_norm_eps = _number("layer_norm_eps", layer_norm_eps)
        self.initializer_range = _number("initializer_range", initializer_range)
        self.temporal_min_period = (_seconds("temporal_min_period", temporal_min_period) if temporal_min_period is not None
                                    else self.dt_resolution)
        self.temporal_max_period = (
            _seconds("temporal_max_period", temporal_max_period)
            if temporal_max_period is not None
            else 4.0 * (self.past_window + self.current_window)
        )
        self.num_temporal_frequencies = checked_int("num_temporal_frequencies", num_temporal_frequencies)
        self.dt_loss_weight = _number("dt_loss_weight", dt_loss_weight)
        self.dt_conditioned_on_unit = checked_bool("dt_conditioned_on_unit", dt_conditioned_on_unit)
        if not (isinstance(split_fractions, (list, tuple)) and len(split_fractions) == 3):
            raise ValueError(f"NeuroformerConfig.split_fractions: expected three fractions (train, validation, test), "
                             f"e.g. [0.7, 0.15, 0.15], got {split_fractions!r}")
        self.split_fractions = [_number(f"split_fractions[{i}]", x) for i, x in enumerate(split_fractions)]
        self.split_block_length = _seconds("split_block_length", split_block_length)
        self.split_gap = _seconds("split_gap", split_gap) if split_gap is not None else self.past_window
        self.split_by = split_by
        self.split_seed = checked_int("split_seed", split_seed)
        self.split_stratify_by = _checked_stratify_by(split_stratify_by)
        self.decoding_targets = _checked_decoding_targets(decoding_targets)
        self.decoding_pool = decoding_pool
        self.decoding_head_hidden_size = _optional_size("decoding_head_hidden_size", decoding_head_hidden_size, 0)
        self.decoding_generative_loss_weight = _number("decoding_generative_loss_weight", decoding_generative_loss_weight)
        self.modalities = _checked_modalities(modalities, self.current_window, self.past_window)
        self.num_modality_layers = checked_int("num_modality_layers", num_modality_layers)
        if self.num_modality_layers < 1:
            raise ValueError(f"NeuroformerConfig.num_modality_layers: expected >= 1, got {num_modality_layers}")
        self._set_contrastive(contrastive_loss_weight, contrastive_temperature, contrastive_learnable_temperature,
                              contrastive_modalities, contrastive_projection_size, contrastive_gather_across_processes)
        _warn_unknown_fields(kwargs, type(self))
        specials = {name: _special_id(name, value) for name, value in
                    (("pad_token_id", pad_token_id), ("bos_token_id", bos_token_id), ("eos_token_id", eos_token_id))}
        super().__init__(**specials, **kwargs)
        _warn_generation_settings([k for k in kwargs if not hasattr(self, k)])
        self._check()
        # current_window=100 meant as 100 ms: accepted, then refused much later as too long for the recording
        _warn_implausible_windows(self, stacklevel=2)

    def _set_contrastive(self, weight, temperature, learnable, names, projection_size, gather) -> None:
        """Set the ``contrastive_*`` fields and check them (:meth:`_check_contrastive`; see the class docstring)."""
        self.contrastive_loss_weight = weight
        self.contrastive_temperature = temperature
        self.contrastive_learnable_temperature = learnable
        self.contrastive_modalities = names
        self.contrastive_projection_size = projection_size
        self.contrastive_gather_across_processes = gather
        self._check_contrastive()

    def _check_contrastive(self) -> None:
        """The rules of the ``contrastive_*`` fields, run by the constructor and again by
        ``validate`` (set after construction, ``config.contrastive_modalities = ['nope']`` or
        ``config.modalities = []`` with the loss on, they were saved unchecked, and the saved
        ``config.json`` was then refused by ``from_pretrained``)."""
        self.contrastive_loss_weight = _checked_contrastive_weight(self.contrastive_loss_weight)
        self.contrastive_temperature = _checked_contrastive_temperature(self.contrastive_temperature)
        self.contrastive_learnable_temperature = checked_bool("contrastive_learnable_temperature",
                                                              self.contrastive_learnable_temperature)
        known = [m["name"] for m in self.modalities]
        self.contrastive_modalities = _checked_contrastive_modalities(self.contrastive_modalities, known)
        self.contrastive_projection_size = _optional_size("contrastive_projection_size",
                                                          self.contrastive_projection_size, 1)
        self.contrastive_gather_across_processes = checked_bool("contrastive_gather_across_processes",
                                                                self.contrastive_gather_across_processes)
        if self.contrastive_loss_weight > 0 and not known:
            raise ValueError(f"NeuroformerConfig.contrastive_loss_weight: {self.contrastive_loss_weight} > 0 needs at "
                             "least one entry in modalities to align the spikes with")

    def contrastive_modality_names(self):
        """Names of the modalities the contrastive loss aligns with the spikes (``[]`` when off)."""
        if self.contrastive_loss_weight <= 0:
            return []
        return list(self.contrastive_modalities or [m["name"] for m in self.modalities])

    # ------------------------------------------------------------------ derived sizes
    @property
    def stride(self) -> float:
        """Step between current windows, s."""
        return self.window_stride if self.window_stride is not None else self.current_window

    @property
    def num_dt_bins(self) -> int:
        """Number of dt classes of the current window: ``ceil(current_window / dt_resolution)``."""
        return n_bins_covering(self.current_window, self.dt_resolution)

    @property
    def num_past_dt_bins(self) -> int:
        """Number of time bins of the past window."""
        return n_bins_covering(self.past_window, self.dt_resolution)

    @property
    def num_special_tokens(self) -> int:
        """:data:`FIRST_UNIT_ID` (3): pad (id 0), BOS (1), EOS (2), before the unit tokens (as the tokenizer)."""
        return FIRST_UNIT_ID

    def modality_blocks(self):
        """``[(block, [modality names])]`` in ascending block order: the decoder's modality stages."""
        blocks = sorted({m["block"] for m in self.modalities})
        return [(b, [m["name"] for m in self.modalities if m["block"] == b]) for b in blocks]

    def modality(self, name: str) -> dict:
        """The entry of :attr:`modalities` named ``name`` (its dict, defaults filled in).

        Raises:
            KeyError: no modality has that name (the message lists the config's modalities).
        """
        for m in self.modalities:
            if m["name"] == name:
                return m
        known = f"its modalities are {[m['name'] for m in self.modalities]}" if self.modalities else "it has none"
        raise KeyError(f"modality {name!r}: not a modality of this config; {known}")

    def validate(self) -> None:
        """Check every field against the constructor's rules; transformers' ``save_pretrained``
        (of the config, and so of a model) calls it before writing ``config.json``, as it does
        for its own strict configs. A numpy scalar set after construction (``config.vocab_size =
        ids.max() + 1``) is stored as the Python number first (json failed on it halfway through
        ``config.json``, which was left empty). A field set after construction (``config.hidden_dropout =
        1.5``, ``model.config.hidden_size = 30``) was written unchecked, and the saved
        ``config.json`` (and the model folder) was then refused by ``from_pretrained``.

        transformers' own save-time validators run after these (``PreTrainedConfig.validate``),
        so ``output_attentions=True`` with an attention implementation other than eager is still
        refused as transformers refuses it: overriding without them let such a config be saved.

        Raises:
            ValueError: naming the first field that breaks its rule and the expectation (the
                constructor's messages).
            huggingface_hub.errors.StrictDataclassClassValidationError: transformers' own
                validators (not a ``ValueError``), as before this override.
        """
        for name in SECONDS_FIELDS:  # before the numpy scalars below become Python floats, rounding kept
            refuse_narrow_seconds(name, getattr(self, name, None))
        for name, value in list(vars(self).items()):
            # a numpy scalar set after construction (config.vocab_size = ids.max() + 1) passed the checks, and
            # json then failed on it halfway through writing config.json, which was left empty
            if _is_numpy_scalar(value):
                setattr(self, name, value.item())
            elif isinstance(value, list) and any(_is_numpy_scalar(v) for v in value):
                setattr(self, name, [v.item() if _is_numpy_scalar(v) else v for v in value])
        self._check()
        base = getattr(super(), "validate", None)  # transformers' base validators (absent from some 5.x releases)
        if base is not None:
            base()

    def _check(self) -> None:
        def real(name, expectation, ok):
            checked_float(name, getattr(self, name), expectation, ok)

        # a value set after construction (apply_config_overrides) meets the same rules as the constructor's, and
        # is stored as the constructor stores it (hidden_size = 64.0 as 64: config.json then holds an integer)
        for name in SECONDS_FIELDS:
            refuse_narrow_seconds(name, getattr(self, name, None))
        for name, value in check_window_settings("NeuroformerConfig",
                                                 **{f: getattr(self, f) for f in WINDOW_FIELDS}).items():
            setattr(self, name, value)
        for name in ("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers",
                     "num_temporal_frequencies", "num_modality_layers"):
            setattr(self, name, checked_int(name, getattr(self, name), "an integer >= 1", lambda v: v >= 1))
        for name in ("num_past_layers", "split_seed", "vocab_size"):
            setattr(self, name, checked_int(name, getattr(self, name)))
        checked_bool("dt_conditioned_on_unit", self.dt_conditioned_on_unit)
        self.hidden_act = _checked_hidden_act(self.hidden_act)
        self.split_stratify_by = _checked_stratify_by(self.split_stratify_by)
        # set after construction (config.modalities = [...], a current_window its windows no longer fit in,
        # config.contrastive_modalities = ['nope'], config.contrastive_temperature = 1e300), they were saved
        # unchecked, and the saved config.json was then refused by from_pretrained. The lists are replaced only
        # where the checked ones differ: a collator built with config.modalities keeps reading the config's
        for name, checked in (("decoding_targets", _checked_decoding_targets(self.decoding_targets)),
                              ("modalities", _checked_modalities(self.modalities, self.current_window,
                                                                 self.past_window))):
            if checked != getattr(self, name):
                setattr(self, name, checked)
        self._check_contrastive()
        # every float field: NaN and inf are refused by checked_float, whatever the range
        for name in ("split_block_length", "temporal_min_period", "temporal_max_period", "layer_norm_eps"):
            real(name, "a positive number", lambda v: v > 0)
        if self.temporal_min_period > self.temporal_max_period:  # the frequency range ran backwards, unnoticed
            raise ValueError(
                f"NeuroformerConfig.temporal_min_period / temporal_max_period: expected temporal_min_period <= "
                f"temporal_max_period (left None they are dt_resolution and 4 * (past_window + current_window)), got "
                f"temporal_min_period={self.temporal_min_period}, temporal_max_period={self.temporal_max_period}")
        if self.window_stride is not None:
            real("window_stride", "a positive number", lambda v: v > 0)
        for name in ("initializer_range", "dt_loss_weight"):
            real(name, "a finite number >= 0", lambda v: v >= 0)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"NeuroformerConfig.hidden_size: expected a multiple of num_attention_heads "
                f"({self.num_attention_heads}), got {self.hidden_size}"
            )
        if self.num_past_layers < 0:
            raise ValueError(f"NeuroformerConfig.num_past_layers: expected >= 0, got {self.num_past_layers}")
        fr = self.split_fractions
        if not isinstance(fr, (list, tuple)) or len(fr) != 3:
            raise ValueError(f"NeuroformerConfig.split_fractions: expected three fractions (train, validation, test), "
                             f"got {fr!r}")
        for i, f in enumerate(fr):
            checked_float(f"split_fractions[{i}]", f, "a finite fraction >= 0", lambda v: v >= 0)
        if abs(sum(fr) - 1.0) > 1e-6:
            raise ValueError(
                f"NeuroformerConfig.split_fractions: expected three non-negative fractions "
                f"(train, validation, test) summing to 1, got {fr}"
            )
        pw = self.past_window
        # the gap is a margin: each segment's past_window lead-in (window_starts_for_split) is what keeps a window's
        # past out of another split; the message gave that as the gap's reason, which the docstrings had corrected
        real("split_gap", f"a finite number of seconds, at least past_window ({pw} s): a margin left out at each "
                          "boundary between splits, so that activity outlasting a boundary (a burst, a drift of the "
                          "firing rates) does not reach both; each segment's past_window lead-in already keeps every "
                          "window's past inside its own split", lambda v: v >= pw)
        if self.split_by not in ("auto", "time", "trials"):
            raise ValueError(f"NeuroformerConfig.split_by: expected 'auto', 'time' or 'trials', got {self.split_by!r}")
        for name in ("hidden_dropout", "attention_dropout"):
            real(name, "a dropout probability in [0, 1)", lambda v: 0.0 <= v < 1.0)
        if self.decoding_pool not in DECODING_POOLS:
            raise ValueError(
                f"NeuroformerConfig.decoding_pool: expected one of {list(DECODING_POOLS)}, got {self.decoding_pool!r}"
            )
        self.decoding_head_hidden_size = _optional_size("decoding_head_hidden_size", self.decoding_head_hidden_size, 0)
        real("decoding_generative_loss_weight", "a finite number >= 0", lambda v: v >= 0)
        for i, t in enumerate(self.decoding_targets):
            if "name" not in t or t.get("kind") not in ("regression", "classification", "circular"):
                raise ValueError(
                    f"NeuroformerConfig.decoding_targets[{i}]: expected a dict with 'name' and 'kind' in "
                    f"('regression', 'classification', 'circular'), got {t!r}"
                )
            if t["kind"] == "classification":
                nc = integral_value(t.get("num_classes"))
                if nc is None or nc < 2:
                    raise ValueError(
                        f"NeuroformerConfig.decoding_targets[{i}] ({t['name']!r}): a classification target needs "
                        f"num_classes >= 2 (the classes of the training split), got {t.get('num_classes')!r}"
                    )
                t["num_classes"] = nc  # 3.0 from YAML: an int, as nn.Linear and config.json want it
            unknown = sorted(set(t) - set(DECODING_TARGET_KEYS), key=str)
            if unknown:  # a misspelt 'wieght' / 'sd' was kept and ignored: the head trained with weight 1, std 1
                import difflib

                hints = [f"{c[0]!r} for {u!r}" for u in unknown
                         for c in [difflib.get_close_matches(str(u), DECODING_TARGET_KEYS, n=1)] if c]
                raise ValueError(
                    f"NeuroformerConfig.decoding_targets[{i}] ({t['name']!r}): unknown "
                    f"{'key' if len(unknown) == 1 else 'keys'} {unknown}"
                    + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                    + f"; expected keys among {list(DECODING_TARGET_KEYS)}"
                )
            col = t.get("column")
            if col is not None:
                column = integral_value(col)
                if column is None or column < 0:
                    raise ValueError(
                        f"NeuroformerConfig.decoding_targets[{i}].column ({t['name']!r}): expected None or an integer "
                        f">= 0 (a column of a 2-D behaviour series), got {col!r}"
                    )
                t["column"] = column  # stored once checked: a refused value stays in the config as given
            if t.get("unit") is not None and not isinstance(t["unit"], str):
                raise ValueError(f"NeuroformerConfig.decoding_targets[{i}].unit ({t['name']!r}): expected a str (the "
                                 f"behaviour series' unit, e.g. 'cm') or None, got {t['unit']!r}")
            classes = t.get("classes")
            if t["kind"] == "classification" and classes is not None and not (
                    distinct_labels(classes) and len(classes) == t["num_classes"]):
                raise ValueError(
                    f"NeuroformerConfig.decoding_targets[{i}].classes ({t['name']!r}): expected None or a list of "
                    f"num_classes={t['num_classes']} distinct class labels (class index i means classes[i]), got "
                    f"{classes!r}"
                )
            if t.get("class_weight") not in CLASS_WEIGHTS:
                raise ValueError(
                    f"NeuroformerConfig.decoding_targets[{i}].class_weight ({t['name']!r}): expected one of "
                    f"{list(CLASS_WEIGHTS)} (how class_weights was made), got {t['class_weight']!r}"
                )
            where = f"decoding_targets[{i}].{{}} ({t['name']!r})"
            if t.get("weight") is not None:
                checked_float(where.format("weight"), t["weight"], "a finite loss weight >= 0", lambda v: v >= 0)
            if t.get("mean") is not None:
                checked_float(where.format("mean"), t["mean"], "a finite number (the training split's mean)")
            if t.get("std") is not None:
                checked_float(where.format("std"), t["std"], "a finite number > 0 (the training split's std)",
                              lambda v: v > 0)
            _check_regression_loss(t, where)
            cw = t.get("class_weights")
            if t["kind"] == "classification" and cw is not None:
                ok = isinstance(cw, (list, tuple)) and len(cw) == t["num_classes"]
                # a bool was taken as 1 / 0 (True passed isinstance(v, int)) and written as true to config.json
                ok = ok and all(is_finite_number(v) and v >= 0 for v in cw)
                if not ok or not any(v > 0 for v in cw):
                    raise ValueError(
                        f"NeuroformerConfig.decoding_targets[{i}] ({t['name']!r}): class_weights: expected None or "
                        f"{t['num_classes']} finite numbers >= 0, not all 0, got {cw!r}"
                    )
                t["class_weights"] = [float(v) for v in cw]  # numpy numbers too: config.json holds plain floats
        labels = getattr(self, "id2label", None)
        if labels is not None and {int(k): v for k, v in labels.items()} != DEFAULT_ID2LABEL:
            # transformers' classification field: no Neuroformer model reads it, so num_labels=3 built a
            # decoder without a head (AutoModelForSequenceClassification) or was dropped without a word
            raise ValueError(
                f"NeuroformerConfig.num_labels: not read by any Neuroformer model, got {len(labels)} {'label' if len(labels) == 1 else 'labels'} "
                f"(id2label {dict(labels)!r}); a decoding head's classes come from decoding_targets=[{{'name': ..., "
                f"'kind': 'classification', 'num_classes': {len(labels)}}}] (or neuroformer finetune)")
        if self.vocab_size < self.num_special_tokens:
            raise ValueError(f"NeuroformerConfig.vocab_size: expected >= {FIRST_UNIT_ID} (the special tokens), got {self.vocab_size}")
        for name in SPECIAL_TOKEN_IDS:
            _special_id(name, getattr(self, name, None))


__all__ = ["NeuroformerConfig", "ImplausibleWindowWarning", "PLAUSIBLE_WINDOW_SECONDS", "milliseconds_hint",
           "normalize_modality", "checked_float", "checked_int", "checked_bool", "check_window_settings", "MODALITY_KEYS",
           "VIDEO_KEYS", "WINDOW_FIELDS",
           "finish_interrupted_save_of", "config_read_before_save_of", "config_after_completed_save",
           "auto_map_in_folder", "carried_auto_class", "carried_remote_code",
           "saved_modalities_without_ignored_keys", "AUTO_MAP", "DECODER_AUTO_MAP", "auto_map_for_heads",
           "DECODING_TARGET_KEYS", "HL_GAUSS_KEYS", "SECONDS_FIELDS", "implausible_window_lengths",
           "refuse_narrow_seconds", "SPECIAL_TOKEN_IDS", "FIRST_UNIT_ID"]
