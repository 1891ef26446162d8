"""Sharing on the Hugging Face Hub: model cards, remote code, pushing models and window datasets.

Everything goes through ``huggingface_hub`` (``HfApi.create_repo`` / ``upload_folder``,
``ModelCard`` / ``ModelCardData``), never hand-made HTTP. What a pushed model repository holds:

- ``model.safetensors``, ``config.json`` (with an ``auto_map`` for the Auto classes of
  :data:`AUTO_MAP`; a fine-tuned decoder without next-spike heads, see
  :func:`has_next_spike_heads`, maps only those of :data:`DECODER_AUTO_MAP`),
  ``vocab.json`` and ``tokenizer_config.json`` (with its own ``auto_map``), and the ``processor_config.json`` of a
  folder saved with ``processor.save_pretrained`` (its ``split_mode``); both without the ``processor_class`` that
  ``processor.save_pretrained`` writes into them, which ``AutoProcessor`` would read first; ``AutoProcessor`` maps to
  :class:`~hf_neuroformer.tokenization_neuroformer.NeuroformerProcessorNeedsPackage`, which refuses
  without the package (the processor is not remote code) instead of the tokenizer coming back as
  the processor;
- ``configuration_neuroformer.py``, ``modeling_neuroformer.py`` and
  ``tokenization_neuroformer.py``, copied by transformers' ``register_for_auto_class``
  machinery with the modules they import relatively, ``binning.py`` and ``argument_checks.py``
  (the standard library only), so that
  ``AutoModelForPreTraining.from_pretrained(repo, trust_remote_code=True)`` (a decoder:
  ``AutoModelForSequenceClassification``) works where ``hf_neuroformer`` is not installed (these
  files import only each other, ``torch``, ``numpy`` and ``transformers``; the model card names
  all four); a folder staged by :func:`save_for_hub` with ``subfolder=`` for a subfolder of a repository
  has an ``auto_map`` that names that folder, since transformers reads remote code from the root
  (``push_to_hub(subfolder=)`` / ``neuroformer push --subfolder`` push a model there, with its card as
  ``SUBFOLDER/README.md``; the root's ``README.md`` is written only where there is none);
- ``generation_config.json``: the sampling settings of
  :func:`hf_neuroformer.generation.generate_spikes` with the run's ``generation_temperature`` and
  ``generation_top_p`` (those of its test-split generation), for readers of the repository; not for a
  decoder without next-spike heads, which cannot generate;
- the run's ``metrics.json``, ``splits.json``, ``training_config.json``, ``training_log.json``
  and a decoder's ``decoding_report.json`` (absolute local paths in them replaced by their last
  component), and its figures (:data:`CARD_FIGURES`: ``training_curves.png`` and
  ``test_generation.png`` of ``train``, ``test_decoding.png`` of ``finetune``; shown in the
  model card), when present;
- ``README.md``: a model card filled by ``ModelCardData`` from ``metrics.json``
  (``model-index`` holds every float metric of the model on the ``test/`` and ``validation/`` splits,
  :func:`model_index_metrics`; baselines and chance levels only in the card's text), its last
  line an HTML comment with the sha256 of the text before it (:func:`mark_card`), by which the next
  push tells a card edited on the Hub since and says that it replaces it
  (:attr:`PushResult.edited_cards`; the edited card stays in the repository's history).

A window dataset (the train / validation / test windows of the model's own split plan, as
Parquet shards written by ``datasets``) goes to a dataset repository with a dataset card, and
loads back with ``datasets.load_dataset(repo_id)``.

Nothing is written into the model directory: the repository is staged in a temporary folder
(only a save into it that was killed after its commit is completed first, as every load
completes it: :func:`hf_neuroformer.save_journal.finish_interrupted_save`).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from .configuration_neuroformer import (AUTO_MAP, DECODER_AUTO_MAP, auto_map_for_heads,  # noqa: F401  (hub.DECODER_AUTO_MAP)
                                      auto_map_in_folder)

#: The sampler's settings with the run's test-generation temperature / top_p (:func:`generation_defaults`), staged only for a
#: model with next-spike heads.
GENERATION_CONFIG = "generation_config.json"

#: The figures of a run (``training.RUN_FIGURES``), with the caption the model card gives them.
CARD_FIGURES = {
    "training_curves.png": "Training and validation loss, and the validation unit-id and dt NLL per step "
                           "(the kept step dashed); the training loss alone when the run had no validation "
                           "split.",
    "test_generation.png": "Recorded (black) and generated (orange) spikes of the most active units in the test "
                           "windows: rasters, then trial-aligned PSTHs (data with trials) or binned rates.",
    "test_decoding.png": "Decoded (orange) and recorded (black) behaviour on the test windows; classification "
                         "targets as a confusion matrix, rows normalised to the recorded class.",
}
#: Run records copied beside the model when present.
RUN_FILES = ("metrics.json", "splits.json", "training_config.json", "training_log.json", "decoding_report.json",
             "test_predictions.csv", *CARD_FIGURES)

TEMPLATE_PATH = Path(__file__).with_name("templates") / "model_card_template.md"

#: metric key (without the split) -> what it is, for the model card.
METRIC_NAMES = {
    "id_nll": "unit-id NLL (nats/spike)",
    "dt_nll": "dt NLL (nats/spike)",
    "loss": "training objective",
    "unigram_id_nll": "unigram baseline unit-id NLL",
    "markov_id_nll": "first-order Markov baseline unit-id NLL",
    "marginal_dt_nll": "marginal dt baseline NLL",
    "markov_dt_nll": "first-order Markov dt baseline NLL (previous spike's dt bin in the window)",
    "id_f1": "unit-id F1 (generated vs recorded, per window)",
    "rate_corr": "firing-rate correlation over units (generated vs recorded)",
    "binned_count_corr_mean": "mean per-unit binned-count correlation",
    "bits_per_spike": "bits per spike vs Poisson units at training rates",
}

#: metric key (without the split) -> which way it is better, for the model card's "better" column: NLLs (lower)
#: stood beside F1s and correlations (higher) with nothing to tell them apart. The spike-timing F1 and its
#: chance levels (``timing_f1_<tol>...``) are matched by :func:`metric_direction`.
METRIC_DIRECTIONS = {
    "id_nll": "lower",
    "dt_nll": "lower",
    "loss": "lower",
    "unigram_id_nll": "lower",
    "markov_id_nll": "lower",
    "marginal_dt_nll": "lower",
    "markov_dt_nll": "lower",
    "id_f1": "higher, best 1",
    "rate_corr": "higher, best 1",
    "binned_count_corr_mean": "higher, best 1",
    "bits_per_spike": "higher; 0 is the null's",
    # a contrastive model's retrieval (contrastive.evaluate_retrieval), test/retrieval/<modality>/<key>
    "neural_to_modality_top1": "higher, best 1",
    "modality_to_neural_top1": "higher, best 1",
    "chance": "higher, best 1",
}

#: a decoder's metric key (without split and target) -> which way it is better (see
#: :mod:`hf_neuroformer.metrics.decoding` for the definitions).
DECODING_METRIC_DIRECTIONS = {
    "mean_angular_error_rad": "lower, best 0",
    "median_angular_error_rad": "lower, best 0",
    "mean_angular_error_deg": "lower, best 0",
    "median_angular_error_deg": "lower, best 0",
    # 1 also for a prediction off by a constant rotation: the angular errors say how far
    "circular_r": "higher, best 1 (also with a constant offset)",
    "r2": "higher, best 1",
    "pearson_r": "higher, best 1",
    "rmse": "lower, best 0",
    "mae": "lower, best 0",
    "target_sd": "none: the data's (an RMSE below it beats predicting the mean)",
    "accuracy": "higher, best 1",
    "balanced_accuracy": "higher, best 1",
}

#: metric keys (without the split) of the token baselines that ``train`` scores on the test tokens
#: (:mod:`hf_neuroformer.metrics.token_baselines`): reference levels, not results of the model
BASELINE_METRICS = ("unigram_id_nll", "markov_id_nll", "marginal_dt_nll", "markov_dt_nll")

#: the model-index ``dataset.type`` of a model whose windows were not pushed (``{session}``: the
#: recording's session). The Hub reads ``dataset.type`` as a dataset id (``huggingface_hub.EvalResult``:
#: "Use dataset id from https://hf.co/datasets"), and ``EvalResult`` cannot be made without one; the
#: spaces and brackets make this one no valid repository id (``huggingface_hub.utils.validate_repo_id``
#: refuses it), so the Hub cannot link it to a dataset, another's or a missing one.
UNPUBLISHED_DATASET_TYPE = "{session} windows (not on the Hub)"

TASK_TYPE = "next-spike-prediction"
#: a pushed model card's ``library_name`` (transformers loads the repository with ``trust_remote_code``)
#: and tags; ``model_cards/``'s hand-written cards carry the same (tests/test_hub.py checks them)
MODEL_CARD_LIBRARY_NAME = "transformers"
MODEL_CARD_TAGS = ("neuroscience", "spikes", "neuroformer", "custom_code", "hf_neuroformer")
TASK_NAME = "Next-spike prediction (unit id and dt)"
#: the model-index task of a behaviour decoder (``neuroformer finetune`` output)
DECODING_TASK_TYPE = "behaviour-decoding"

#: metric key of a decoding target (``<split>/<target>/<metric>``, without split and target) ->
#: what it is, for a decoder's model card (:func:`hf_neuroformer.metrics.decoding.decoding_metrics`).
DECODING_METRIC_NAMES = {
    "mean_angular_error_rad": "mean angular error (rad)",
    "median_angular_error_rad": "median angular error (rad)",
    "mean_angular_error_deg": "mean angular error (deg)",
    "median_angular_error_deg": "median angular error (deg)",
    "circular_r": "mean resultant length of the angular errors (not a correlation)",
    "r2": "R^2",
    "pearson_r": "Pearson r",
    "rmse": "RMSE (target units)",
    "mae": "MAE (target units)",
    "target_sd": "SD of the recorded target (target units)",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
}

PRETRAINING_DESCRIPTION = (
    "pretrained for next-spike prediction: for each spike of the current window it predicts the unit\n"
    "that fires (unit id) and its time offset in the window (dt), attending to the spikes of the past\n"
    "window."
)
PRETRAINING_RESULTS_NOTE = (
    "Nats per spike token unless stated; the baselines are fitted on the train split and scored on\n"
    "the same tokens."
)

#: the model card's sentence on spike generation (a model with next-spike heads) ...
#: (``{download}``: the ``hf download`` command of the repository, ``{folder}``: its ``--local-dir``; the
#: commands read a local folder, and ``--model REPO_ID`` was refused without saying how to get one)
GENERATION_NOTE = ("Spike generation, fidelity metrics and bits\nper spike need the package and a local copy of "
                   "this repository: {download}, then\n`neuroformer generate --model {folder} ...`.")
#: ... and for a decoder fine-tuned without them (``decoding_generative_loss_weight`` 0)
NO_HEADS_NOTE = ("This decoder cannot generate or score spikes: its\nnext-spike heads (`id_head`, `dt_head`) "
                 "were not saved (`decoding_generative_loss_weight` 0), so\n`AutoModelForPreTraining` is not "
                 "mapped and there is no `generation_config.json`.")


class HubPushError(RuntimeError):
    """A push to the Hub failed (a ``RuntimeError``, raised by :func:`push_to_hub` and
    ``neuroformer push``); the message names the step (e.g. "checking the Hub token", "uploading the
    model", "uploading the windows dataset"), the repository id, and why: the HTTP status and the server's answer (with how to log in
    for a 401), no Hub token found, or the endpoint (``HF_ENDPOINT``) not reachable. The
    original ``huggingface_hub`` / network exception is chained as ``__cause__``. The local model
    directory is never modified by a push; the message says so, and what an earlier step of the same
    push had already committed to the Hub.
    """


@dataclass
class PushResult:
    """What :func:`push_to_hub` uploaded.

    Attributes:
        repo_id: the model repository.
        commit_url: URL of the model commit.
        commit_oid: its commit hash.
        files: paths uploaded to the model repository.
        dataset_repo_id: the window dataset repository, or ``None``.
        dataset_commit_url: URL of the dataset commit, or ``None``.
        unchanged: the repository already held exactly these files, so no commit was made.
        dataset_unchanged: the dataset repository already held exactly these windows (no
            dataset commit was made; ``dataset_commit_url`` is its head).
        redacted: absolute local paths replaced in the pushed JSON files, one line each
            (:func:`redact_local_paths`; e.g. a decoder's ``model_dir`` in ``metrics.json``).
        kept: files of the model repository (at ``revision``) that this push did not write and
            left there, e.g. a user's notebook or a file of an older layout (``.gitattributes``
            not listed); they stay beside the new model, so the caller says so.
        dataset_windows: split -> windows of the pushed windows dataset (empty without one); a
            split of fewer windows than ``num_shards`` got one shard per window.
        replaced_readme: the commit (of ``revision``, or of main for a new branch) whose
            ``README.md`` this push replaced by the model card, when that README was not a card of
            this package (no ``neuroformer`` / ``hf_neuroformer`` tag: the user's own, e.g. written
            on the Hub before the first push); it stays in the repository's history there. ``None``
            otherwise. The card replaced it on ``revision`` only.
        revision: the branch the model was pushed to (``None``: ``main``); a README replaced
            (``replaced_readme``) on another branch than ``main`` is replaced there only, ``main``
            and the other branches keep theirs.
        edited_cards: one line per card of this package that this push replaced although it was
            not as the package wrote it (:func:`card_mark_state`: edited on the Hub since, or written
            by a version that did not mark its cards; for the dataset repository also a README that
            is not a card of this package), naming the repository, branch and the commit that holds
            it; a second push replaced a card the user had edited without a word. Empty otherwise.
        subfolder: the folder of the repository the model was pushed into (``""``: its root);
            ``replaced_readme`` and ``edited_cards`` then speak of ``SUBFOLDER/README.md``.
        kept_model_folders: the folders below the one pushed into that hold a ``config.json`` of
            their own among the ``kept`` files (paths from the repository's root, topmost only):
            models kept in folders of the repository on purpose (``subfolder=`` pushes), whose files
            are in ``kept`` too; :func:`kept_outside_model_folders` gives the other kept files.
    """

    repo_id: str
    commit_url: str
    commit_oid: str
    files: List[str]
    dataset_repo_id: Optional[str] = None
    dataset_commit_url: Optional[str] = None
    dataset_unchanged: bool = False
    unchanged: bool = False
    redacted: List[str] = field(default_factory=list)
    kept: List[str] = field(default_factory=list)
    dataset_windows: Dict[str, int] = field(default_factory=dict)
    replaced_readme: Optional[str] = None
    revision: Optional[str] = None
    edited_cards: List[str] = field(default_factory=list)
    subfolder: str = ""
    kept_model_folders: List[str] = field(default_factory=list)


def model_folders_of(files: List[str], subfolder: str = "") -> List[str]:
    """The folders among ``files`` (repository paths) below ``subfolder`` (``""``: the root) that
    hold a ``config.json`` of their own, topmost only (a folder inside another such folder is part
    of it), sorted: the folders of models pushed into them (``push_to_hub(subfolder=)``)."""
    prefix = f"{subfolder}/" if subfolder else ""
    dirs = {f.rsplit("/", 1)[0] for f in files if f.endswith("/config.json") and f.startswith(prefix)}
    dirs.discard(subfolder)
    return sorted(d for d in dirs if not any(d.startswith(o + "/") for o in dirs))


def kept_outside_model_folders(result: "PushResult") -> List[str]:
    """The files of ``result.kept`` that lie in none of ``result.kept_model_folders``: the ones a
    caller may want to delete (a notebook, a file of an older layout, another model's stray file),
    while the models kept in folders are there on purpose."""
    return [f for f in result.kept if not any(f.startswith(d + "/") for d in result.kept_model_folders)]


#: the shape of a Hub licence id (``cc-by-4.0``, ``mit``, ``apache-2.0``, ``openrail++``, ``other``):
#: the Hub's identifiers are lowercase (https://huggingface.co/docs/hub/repositories-licenses)
_LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")


def check_license(license, flag: str = "license") -> str:
    """Check the shape of a Hub licence id before anything is staged or sent.

    Whether the id is one the Hub knows is asked of the Hub itself (its card validation, see
    :func:`push_to_hub`); this catches what cannot be one: not a string, empty, upper case or
    spaces (``"CC-BY-4.0"``, ``"MIT License"``).

    Raises:
        ValueError: naming ``flag`` and, where lowercasing and joining the words with ``-`` gives
            an id (``"CC BY 4.0"`` -> ``"cc-by-4.0"``, ``"MIT License"`` -> ``"mit"``), suggesting it;
            whether the Hub knows the suggestion is left to its validation.
    """
    if isinstance(license, str) and _LICENSE_ID.match(license):
        return license
    hint = ""
    if isinstance(license, str):  # lower case, words joined by '-', a trailing "licen[cs]e" dropped
        words = license.strip().lower().split()
        guess = "-".join(words[:-1] if len(words) > 1 and words[-1] in ("license", "licence") else words)
        if guess != license and _LICENSE_ID.match(guess):
            hint = f"; did you mean {guess!r}?"
    raise ValueError(f"{flag}: expected a Hub licence id (lowercase letters, digits, '.', '+', '-', e.g. 'cc-by-4.0', "
                     f"'mit', or 'other' with the licence named in the provenance), got {license!r}{hint}")


def check_repo_id(repo_id: str, flag: str = "repo_id") -> str:
    """Return ``repo_id`` if it is a valid Hub repository id ``NAMESPACE/NAME``.

    Raises:
        ValueError: naming ``flag``, the bad value and the expected form.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    expected = ("expected NAMESPACE/NAME (letters, digits, '-', '_', '.'; no '--' or '..'; "
                "at most 96 characters), e.g. my-lab/neuroformer-a2929")
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ValueError(f"{flag}: {repo_id!r} is not a Hub repository id; {expected}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ValueError(f"{flag}: {repo_id!r} is not a Hub repository id; {expected} ({e})") from None
    return repo_id


_FOLDER_PART = re.compile(r"[A-Za-z0-9_-]+")


def check_subfolder(subfolder, flag: str = "subfolder") -> str:
    """Return ``subfolder`` (``""``: the repository's root) if the remote code of a model in that
    folder of a repository can load: ``/``-separated names of letters, digits, ``'_'`` and ``'-'``
    (transformers turns the path into a Python module name and splits a reference ``"sub/module.Class"``
    at its dot, so no ``'.'``; no ``'--'``, which marks a reference to another repository).

    Raises:
        ValueError: naming ``flag``, the bad value and the expected form.
    """
    expected = ("expected a folder of the repository as NAME or NAME/NAME... (letters, digits, '_', '-'; no '.', "
                "no '--', no leading or trailing '/'), e.g. 'pretrained', or '' for its root")
    if not isinstance(subfolder, str):
        raise ValueError(f"{flag}: expected text, got {type(subfolder).__name__} {subfolder!r}; {expected}")
    if subfolder and (any(_FOLDER_PART.fullmatch(part) is None for part in subfolder.split("/")) or "--" in subfolder):
        raise ValueError(f"{flag}: {subfolder!r} cannot hold a model's remote code; {expected}")
    return subfolder


def check_token(token, flag: str = "token"):
    """Return ``token`` (a Hub token; ``None``: the saved login or ``HF_TOKEN``; ``False``: none;
    ``True``: the saved login, required) if it can be sent in an HTTP header.

    ``huggingface_hub`` strips the token it reads from ``HF_TOKEN`` or the saved login, but sends
    a ``token=`` argument as given: an empty one, or one read from a file with its line break, failed
    in the HTTP client as "could not reach <endpoint> ... check the network" with the token itself in
    the message. Checked before any request; the messages never show the token.

    Raises:
        ValueError: naming ``flag`` and what is wrong (empty, surrounding whitespace or a line
            break, a space, control or non-ASCII character inside, not text).
    """
    if token is None or isinstance(token, bool):
        return token
    if not isinstance(token, str):
        raise ValueError(f"{flag}: expected the Hub token as text (str), None (the saved login or HF_TOKEN) or False, "
                         f"got a {type(token).__name__}")
    bad = None
    if not token.strip():
        bad = "is empty" if not token else "is only whitespace"
    elif token != token.strip():
        bad = "has whitespace or a line break around it (read from a file?); pass token.strip()"
    elif any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in token):
        bad = "holds a space or a control character"
    elif not token.isascii():
        bad = "holds a character that is not ASCII (copied from a formatted page?)"
    if bad is not None:
        raise ValueError(f"{flag}: the Hub token given {bad}; expected a token such as hf_... (https://huggingface.co/"
                         "settings/tokens), or None to use `hf auth login` / HF_TOKEN; nothing was sent")
    return token


def check_revision(revision, flag: str = "revision"):
    """Return ``revision`` (a branch to push to; ``None``: the default branch) if git can store it
    as a branch name (the rules of ``git check-ref-format --branch``).

    The Hub creates the repository before the branch, so a name it refuses there left an empty
    repository behind; checked before any request, as repo ids are.

    Raises:
        ValueError: naming ``flag``, the value and the rule it breaks.
    """
    if revision is None:
        return None
    if not isinstance(revision, str):  # push_to_hub(revision=2) was told it was 'an empty name'
        hint = f"; e.g. {str(revision)!r}" if isinstance(revision, int) and not isinstance(revision, bool) else ""
        raise ValueError(f"{flag}: expected the branch name as text (str), got {type(revision).__name__} "
                         f"{revision!r}{hint}")
    bad = None
    if not revision:
        bad = "an empty name"
    elif any(ord(c) < 0x20 or c == "\x7f" or c in " ~^:?*[\\" for c in revision):
        bad = "a space, a control character or one of ~ ^ : ? * [ \\"
    elif ".." in revision or "@{" in revision or revision in ("@", "HEAD"):
        bad = "'..', '@{' or the name '@' or 'HEAD'"
    elif revision.startswith(("/", "-")) or revision.endswith(("/", ".")) or "//" in revision:
        bad = "a leading '/' or '-', a trailing '/' or '.', or '//'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in revision.split("/")):
        bad = "a part that starts with '.' or ends with '.lock'"
    if bad is not None:
        raise ValueError(f"{flag}: {revision!r} is not a branch name git can store ({bad}); expected a name such "
                         "as dev or run-2")
    return revision


#: the commit message of a push that names none
DEFAULT_COMMIT_MESSAGE = "Upload Neuroformer model (hf_neuroformer)"


def check_commit_message(message, flag: str = "commit_message"):
    """Return ``message`` (the model commit's message; ``None``: :data:`DEFAULT_COMMIT_MESSAGE`) if
    it is text with something to read in it.

    An empty or whitespace-only message was sent as given (the Hub's history then showed a blank
    commit), or replaced by the default without a word: refused, as the default is ``None``.

    Raises:
        ValueError: naming ``flag``: not text, empty or only whitespace.
    """
    if message is None:
        return None
    if not isinstance(message, str) or not message.strip():
        what = f"a {type(message).__name__}" if not isinstance(message, str) else \
            ("an empty message" if not message else "only whitespace")
        raise ValueError(f"{flag}: expected the commit message as text, got {what}; leave it out for the default "
                         f"{DEFAULT_COMMIT_MESSAGE!r}")
    return message


def check_model_dir(model_dir, flag: str = "model_dir") -> Path:
    """Return the directory if it holds a model written by ``neuroformer train`` (or
    ``finetune``), checked as every command that loads one checks it:
    :func:`hf_neuroformer.generation.check_model_dir` (config, weights, vocabulary and tokenizer
    settings present; the weights a readable safetensors file).

    Args:
        model_dir: the directory.
        flag: the argument or option named in the messages (``--model`` from the command line).

    Raises:
        FileNotFoundError: naming the directory and the missing files.
        ValueError: ``model.safetensors`` is damaged or incomplete.
    """
    from .generation import check_model_dir as check

    return check(model_dir, flag)


@contextlib.contextmanager
def remote_code_registered() -> Iterator[None]:
    """Register the config, tokenizer and model classes for their Auto classes (transformers'
    ``register_for_auto_class``) while saving, and restore the previous state afterwards, so
    that ordinary checkpoints (``neuroformer train``) do not carry copies of the code."""
    from .configuration_neuroformer import NeuroformerConfig
    from .modeling_neuroformer import NeuroformerForBehaviorDecoding, NeuroformerForPreTraining, NeuroformerModel
    from .tokenization_neuroformer import NeuroformerTokenizer

    classes = {
        NeuroformerConfig: "AutoConfig",
        NeuroformerTokenizer: "AutoTokenizer",
        NeuroformerModel: "AutoModel",
        NeuroformerForPreTraining: "AutoModelForPreTraining",
        NeuroformerForBehaviorDecoding: "AutoModelForSequenceClassification",
    }
    before = {cls: cls.__dict__.get("_auto_class", None) for cls in classes}
    try:
        for cls, auto in classes.items():
            cls.register_for_auto_class(auto)
        yield
    finally:
        for cls, old in before.items():
            if old is None:
                # back to the base class's attribute (None)
                if "_auto_class" in cls.__dict__:
                    delattr(cls, "_auto_class")
            else:
                cls._auto_class = old


def has_next_spike_heads(model_dir) -> bool:
    """Whether ``model_dir/model.safetensors`` (or its shards) holds the next-spike heads
    (:data:`hf_neuroformer.generation.NEXT_SPIKE_HEADS`: ``id_head``, ``dt_head`` and, with
    ``config.dt_conditioned_on_unit``, ``dt_unit_embeddings``).

    True for a ``neuroformer train`` directory and for a decoder fine-tuned with
    ``decoding_generative_loss_weight > 0`` (its heads are trained and saved); False for a decoder
    fine-tuned with weight 0, whose heads a ``NeuroformerForPreTraining`` load would initialise at
    random. Read from the safetensors header (the file itself is not loaded).

    Raises:
        FileNotFoundError: ``model_dir`` is not a model directory (:func:`check_model_dir`).
    """
    from safetensors import safe_open

    from .configuration_neuroformer import saved_dt_conditioned_on_unit
    from .generation import NEXT_SPIKE_HEADS, weight_files

    d = check_model_dir(model_dir)
    cfg = json.loads((d / "config.json").read_text())
    modules = set()
    for path in weight_files(d):  # model.safetensors, or the shards of weights saved in shards
        with safe_open(str(path), framework="pt") as f:
            modules |= {k.split(".")[0] for k in f.keys()}
    # dt_unit_embeddings exists only with dt_conditioned_on_unit (False in a config saved before the field existed)
    needed = {h for h in NEXT_SPIKE_HEADS if h != "dt_unit_embeddings" or saved_dt_conditioned_on_unit(cfg)}
    return needed <= modules


def truncation_line(metrics: dict, config: dict) -> str:
    """The model card's line on the spikes the windows left out, from ``metrics.json``.

    ``n_truncated_past_spikes`` counts a past-window spike once per window that reads it (a spike lies
    in the past of up to past_window / stride windows), so it can approach the recording's spike
    count; the card gave it bare, "Truncated spikes (beyond the block size): 0 (past window:
    20052)", which read as 20052 of a 32116-spike recording's spikes dropped. The line says how it is
    counted, with the windows cut per split (``n_truncated_past_windows_by_split``) where recorded.

    Args:
        metrics: a run's ``metrics.json`` (``n_truncated_spikes``; ``n_truncated_past_spikes``,
            ``n_truncated_windows_by_split``, ``n_truncated_past_windows_by_split`` when present).
        config: its ``config.json`` (``max_window_length``, ``max_past_length`` when present).

    Returns:
        One Markdown list item (``"- ..."``).
    """
    def per_split(key):
        counts = metrics.get(key)
        if not isinstance(counts, dict):
            return ""
        return " in " + ", ".join(f"{n} {s} window{'' if n == 1 else 's'}" for s, n in counts.items())

    def setting(name):  # "max_past_length (128)", or the bare name where config.json lacks it
        return f"{name} ({config[name]})" if config.get(name) is not None else name

    line = (f"- Spikes left out of current windows holding more than {setting('max_window_length')} - 2 spikes: "
            f"{metrics['n_truncated_spikes']}{per_split('n_truncated_windows_by_split') if metrics['n_truncated_spikes'] else ''}.")
    past = metrics.get("n_truncated_past_spikes")
    if past is not None:
        line += (f" Past-window spikes left out of past windows holding more than {setting('max_past_length')} - 1: "
                 f"{past}{per_split('n_truncated_past_windows_by_split') if past else ''}, counted once per window "
                 "that reads them (a spike lies in the past of many windows), not spikes dropped from the data.")
    return line


#: The ``metrics.json`` key holding the fingerprint of the weights the run scored:
#: :func:`~hf_neuroformer.generation.tensors_sha256` of the weights as saved (each tensor's name, dtype, shape and
#: bytes, so the same weights saved whole or in shards give the same digest).
WEIGHTS_SHA256_KEY = "weights_tensors_sha256"


def metrics_weights_state(model_dir, metrics: Dict[str, object]) -> str:
    """Whether ``metrics`` (the folder's ``metrics.json``) scores the weights now in ``model_dir``:
    ``"match"`` (its :data:`WEIGHTS_SHA256_KEY` equals :func:`~hf_neuroformer.generation.tensors_sha256` of the
    folder's weights),
    ``"stale"`` (it differs: the weights were changed after the run scored them, e.g. by a
    ``save_pretrained`` into the folder), or ``"unrecorded"`` (no metrics, or a ``metrics.json`` of a
    run older than the key)."""
    recorded = metrics.get(WEIGHTS_SHA256_KEY) if isinstance(metrics, dict) else None
    if not metrics or recorded is None:
        return "unrecorded"
    from .generation import tensors_sha256

    return "match" if recorded == tensors_sha256(model_dir, "model_dir") else "stale"


#: The model card's words for results of earlier weights (``allow_stale_metrics=True``, ``--allow-stale-metrics``).
STALE_METRICS_NOTE = ("**These results are of earlier weights, not of the weights in this repository**: the weights "
                      "were changed after the run scored them (`metrics.json` `weights_tensors_sha256` differs from "
                      "`model.safetensors`), and they were pushed without being scored again.")


def save_for_hub(model_dir, stage_dir, redacted: Optional[List[str]] = None, *,
                 subfolder: str = "", allow_stale_metrics: bool = False) -> Dict[str, object]:
    """Write the files of a model repository (model, tokenizer, remote code, run records,
    generation defaults) into ``stage_dir``; the model card is written by :func:`push_to_hub`.
    Absolute local paths in the staged JSON files are replaced by their last component
    (:func:`redact_local_paths`); ``redacted``, when given, receives one line per replacement.

    A model without next-spike heads (a decoder fine-tuned with ``decoding_generative_loss_weight
    == 0``, :func:`has_next_spike_heads`) gets the ``auto_map`` of :data:`DECODER_AUTO_MAP` (no
    ``AutoModelForPreTraining`` / ``AutoModelForCausalLM``, which would load it with random heads)
    and no ``generation_config.json``.

    ``subfolder``: the folder of the repository that ``stage_dir`` will be uploaded into
    (``HfApi.upload_folder(folder_path=stage_dir, path_in_repo=subfolder)``), ``""`` for its root. The
    ``auto_map`` of ``config.json`` and ``tokenizer_config.json`` then names that folder
    (``"sub/modeling_neuroformer.NeuroformerForPreTraining"``, :func:`~hf_neuroformer.configuration_neuroformer.auto_map_in_folder`):
    transformers reads remote code from the repository's root whatever ``from_pretrained(repo,
    subfolder=...)`` says, so without it ``trust_remote_code=True`` failed there ("does not appear to
    have a file named configuration_neuroformer.py"). Such a stage loads with ``subfolder=`` only (a
    repository, or a local folder holding it in that subfolder), not as a folder of its own.

    ``metrics.json`` must score the folder's weights (:func:`metrics_weights_state`): where its
    ``weights_tensors_sha256`` differs from the digest of its weights (they were changed after the run,
    e.g. by a ``save_pretrained`` into the folder) the push is refused unless ``allow_stale_metrics``; then
    the card says the results are of earlier weights (:data:`STALE_METRICS_NOTE`). A ``metrics.json``
    without the key (a run older than it) is staged as before, with a warning that it cannot be checked.

    Returns:
        the staged ``metrics.json`` as a dict (empty if the run has none).

    Raises:
        ValueError: the weights file lacks some of the model's weights (transformers would push
            them initialised at random) or holds some of another shape
            (:func:`~hf_neuroformer.generation.check_weight_shapes`), the tokenizer files do not belong to the model (another
            vocabulary size or window settings:
            :func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`),
            or a run record is damaged (:func:`check_run_records`), or ``subfolder`` cannot hold
            remote code (:func:`check_subfolder`), or the folder holds the record of a ``train`` /
            ``finetune`` run that has not saved its model (:func:`check_unfinished_run`, the message
            :func:`push_to_hub` gives), or ``metrics.json`` scores other weights than the folder's
            (without ``allow_stale_metrics``); nothing is staged then.
    """
    import shutil

    from .generation import check_weight_shapes, quiet_loading, refuse_missing_weights, weights_not_loaded
    from .tokenization_neuroformer import NeuroformerTokenizer, check_tokenizer_matches_config

    check_subfolder(subfolder, "subfolder")
    src = check_model_dir(model_dir)
    # staged by hand and uploaded, a folder of a killed --overwrite run published the earlier model as push_to_hub would
    check_unfinished_run(src)
    check_run_records(src)
    stage = Path(stage_dir)
    heads = has_next_spike_heads(src)
    with quiet_loading():  # the loading report is judged here instead of printed
        model, info = model_class(src).from_pretrained(src, output_loading_info=True, ignore_mismatched_sizes=True)
    check_weight_shapes(info, "model_dir (CLI: --model)", src)
    # transformers initialises a weight missing from the file at random and only logs it: the repository
    # would publish random weights as the trained model's
    refuse_missing_weights(weights_not_loaded(info), f"model_dir (CLI: --model): {str(src)!r}: its weights file",
                           f"{type(model).__name__}'s", "the directory of one 'neuroformer train' / 'finetune' run "
                           "with this code version; nothing was uploaded", consequence="they would be pushed at random")
    # after the weights' own checks (a file lacking weights is named as such, not as other weights)
    check_metrics_weights(src, allow_stale_metrics)
    tokenizer = NeuroformerTokenizer.from_pretrained(src)
    try:  # files of two runs, or a tokenizer grown without the model: ids the model has no embedding for
        check_tokenizer_matches_config(tokenizer, model.config)
    except ValueError as err:
        raise ValueError(f"model_dir (CLI: --model): {str(src)!r}: its tokenizer files (vocab.json, "
                         f"tokenizer_config.json) do not belong to its config.json / weights ({err}); expected the "
                         "files of one 'neuroformer train' run; nothing was uploaded") from None
    model.config.auto_map = auto_map_for_heads(AUTO_MAP, heads)  # the model's save_pretrained's rule
    with remote_code_registered():
        model.save_pretrained(stage)
        tokenizer.save_pretrained(stage)
    # a folder saved with processor.save_pretrained (as Trainer(processing_class=processor) saves) names the processor
    # class in tokenizer_config.json and processor_config.json, which AutoProcessor reads before config.json's
    # auto_map: without the package (the processor is not remote code) it then returned the tokenizer as the
    # processor. processor_config.json goes up without it: its split_mode (each window's past clipped at its trial's
    # start in training) is that folder's only record of it ('neuroformer train' writes splits.json, copied below)
    _stage_without_processor_class(stage / "tokenizer_config.json", stage / "tokenizer_config.json")
    if (src / "processor_config.json").is_file():
        _stage_without_processor_class(src / "processor_config.json", stage / "processor_config.json")
    if heads:
        run_training = src / "training_config.json"  # JSON object: check_run_records above
        training = json.loads(run_training.read_text(encoding="utf-8")) if run_training.is_file() else None
        generation_defaults(training).save_pretrained(stage)
    for name in RUN_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, stage / name)
    if subfolder:
        from .jsonio import write_json

        for name in ("config.json", "tokenizer_config.json"):
            data = json.loads((stage / name).read_text(encoding="utf-8"))
            if isinstance(data.get("auto_map"), dict):
                data["auto_map"] = auto_map_in_folder(data["auto_map"], subfolder)
                write_json(stage / name, data)
    found = redact_local_paths(stage)
    if redacted is not None:
        redacted.extend(found)
    return json.loads((stage / "metrics.json").read_text()) if (stage / "metrics.json").is_file() else {}


def check_metrics_weights(model_dir, allow_stale_metrics: bool = False) -> str:
    """Refuse a folder whose ``metrics.json`` scores other weights than its own (see :func:`save_for_hub`);
    return :func:`metrics_weights_state`. A ``metrics.json`` without ``weights_tensors_sha256`` gets a one-line warning.

    Raises:
        ValueError: the recorded ``weights_tensors_sha256`` differs from the folder's weights and
            ``allow_stale_metrics`` is false (the message names the folder and what to do).
    """
    import warnings

    from .generation import tensors_sha256

    src = Path(model_dir)
    path = src / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    state = metrics_weights_state(src, metrics)
    if state == "stale" and not allow_stale_metrics:
        raise ValueError(f"model_dir (CLI: --model): {str(src)!r}: its metrics.json scores other weights than its "
                         f"model.safetensors ({WEIGHTS_SHA256_KEY} {str(metrics[WEIGHTS_SHA256_KEY])[:12]}... recorded, "
                         f"{tensors_sha256(src, 'model_dir')[:12]}... now: the weights were changed after the run, e.g. by a "
                         "save_pretrained into this folder), so the card would show results of earlier weights as this "
                         "model's; nothing was uploaded. Score these weights again (a 'neuroformer train' / 'finetune' "
                         "run writes a metrics.json of the weights it saves), save them into a folder of their own "
                         "without this metrics.json, or pass allow_stale_metrics=True (CLI: --allow-stale-metrics) "
                         "to push them with a card saying that the results are of earlier weights")
    if state == "unrecorded" and metrics:
        warnings.warn(f"model_dir: {str(src)!r}: its metrics.json records no {WEIGHTS_SHA256_KEY} (a run older than "
                      "the key), so whether its results are of these weights is not checked", stacklevel=3)
    return state


def _stage_without_processor_class(path, staged) -> None:
    """Write the JSON object of ``path`` (checked by :func:`check_run_records`) to ``staged`` without its
    ``processor_class`` (see :func:`save_for_hub`)."""
    from .jsonio import write_json

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data.pop("processor_class", None)
    write_json(staged, data)


#: the JSON run records of :data:`RUN_FILES` -> the JSON type each holds (``training_log.json``: one
#: entry per evaluation), and ``processor_config.json`` (staged by :func:`save_for_hub`)
RUN_RECORD_TYPES = {"metrics.json": dict, "splits.json": dict, "training_config.json": dict, "processor_config.json": dict,
                    "training_log.json": list, "decoding_report.json": dict}


def check_run_records(model_dir) -> None:
    """Refuse a model directory whose JSON run records (:data:`RUN_RECORD_TYPES`, those present)
    cannot be pushed: not JSON (cut short by an interrupted copy, hand-edited) or another JSON type
    than the run writes. The card is built from them and they are published beside the model.

    Raises:
        ValueError: naming the file, what is wrong and what to do; nothing is uploaded.
    """
    d = Path(model_dir)
    for name, kind in RUN_RECORD_TYPES.items():
        path = d / name
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            problem = f"is not JSON ({err})"
        else:
            if isinstance(value, kind):
                continue
            problem = f"holds a JSON {type(value).__name__}, not the {'object' if kind is dict else 'list'} the run writes"
        raise ValueError(f"model_dir (CLI: --model): {str(path)!r} {problem}; it is a record of the run that the model "
                         "card is built from and that is published with it: restore it (or delete it to push the "
                         "model without it); nothing was uploaded")


def check_unfinished_run(model_dir, flag: str = "model_dir (CLI: --model)") -> None:
    """Refuse a model directory that holds the record of a ``train`` / ``finetune`` run that has not
    saved its model (:data:`~hf_neuroformer.run_record.UNFINISHED_RECORDS`, written by
    :func:`~hf_neuroformer.run_record.write_unfinished_run`): a ``--overwrite`` run still going, or
    killed before its end. The model files there are then the model saved before that run (its
    checkpoints lie beside them), and a push would publish that earlier model as if it were the
    run's. The loaders (:func:`~hf_neuroformer.generation.load_pretrained`,
    :func:`~hf_neuroformer.finetuning.load_decoder`) warn with the same sentence
    (:func:`~hf_neuroformer.run_record.unfinished_run_note`); a push, which publishes, refuses.

    Raises:
        ValueError: naming the record, the run (start, pid, host), its checkpoints and what to do
            (resume or redo the run; or delete the record to push the earlier model); nothing is
            uploaded.
    """
    from .run_record import UNFINISHED_RECORDS, unfinished_run_note

    note = unfinished_run_note(model_dir, flag)
    if note is None:
        return
    names = " / ".join(n for n in UNFINISHED_RECORDS.values() if (Path(model_dir) / n).is_file())
    raise ValueError(f"{note}. Nothing was uploaded: pushing this folder now would publish the model saved before "
                     f"that run as if it were the run's; to push that earlier model anyway, delete {names} first")


# an absolute POSIX path (``/a/b``, not ``n/s``: no word character before the slash) or a Windows
# drive path (``C:\a\b``); the characters that end it are those that end a path in a message
_PATH_CHARS = r"[^\s'\"/\\:,;()\[\]{}<>=|]+"
_ABS_PATH = re.compile(rf"(?<![\w.~\-/])(?:/(?:{_PATH_CHARS}/)*{_PATH_CHARS}|[A-Za-z]:[\\/](?:{_PATH_CHARS}[\\/])*{_PATH_CHARS})")


def _local_path_name(match: "re.Match") -> Optional[str]:
    """The last component of a matched absolute path that points into this machine's file system
    (a POSIX path whose first folder exists here, or any drive path), else ``None``."""
    text = match.group(0)
    if text.startswith("/"):
        first = text.strip("/").split("/")[0]
        if not Path("/" + first).is_dir():
            return None
    return re.split(r"[\\/]", text)[-1]


def redact_local_paths(stage_dir) -> List[str]:
    """Replace every absolute local path in the JSON files of ``stage_dir`` (run records such as
    ``metrics.json``: a decoder's ``model_dir``, a streamed run's prepared directory) by its last
    component, so that a pushed repository does not publish the layout of this machine (user
    names, home and project folders). A JSON file is rewritten only when something was replaced.

    Returns:
        one line per replacement, ``"<file>: '<path>' -> '<name>'"`` (said by ``neuroformer push``).
    """
    stage = Path(stage_dir)
    done: List[str] = []

    def clean(value, where):
        if isinstance(value, str):
            def repl(m):
                name = _local_path_name(m)
                if name is None:
                    return m.group(0)
                done.append(f"{where}: {m.group(0)!r} -> {name!r}")
                return name
            return _ABS_PATH.sub(repl, value)
        if isinstance(value, list):
            return [clean(v, where) for v in value]
        if isinstance(value, dict):
            return {clean(k, where): clean(v, where) for k, v in value.items()}
        return value

    for path in sorted(stage.rglob("*.json")):
        where = str(path.relative_to(stage))
        n = len(done)
        data = clean(json.loads(path.read_text()), where)
        if len(done) > n:
            path.write_text(json.dumps(data, indent=2) + "\n")
    return done


def model_class(model_dir):
    """The model class of a saved directory: :class:`NeuroformerForBehaviorDecoding` when its
    ``config.json`` has ``decoding_targets`` (``neuroformer finetune`` output), else
    :class:`NeuroformerForPreTraining`."""
    from .modeling_neuroformer import NeuroformerForBehaviorDecoding, NeuroformerForPreTraining

    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    return NeuroformerForBehaviorDecoding if cfg.get("decoding_targets") else NeuroformerForPreTraining


def auto_class_name(model_dir) -> str:
    """The Auto class that loads a saved directory (``AutoModelForSequenceClassification`` for a
    behaviour decoder, else ``AutoModelForPreTraining``)."""
    return "AutoModelForPreTraining" if model_class(model_dir).__name__ == "NeuroformerForPreTraining" \
        else "AutoModelForSequenceClassification"


def generation_defaults(training: Optional[Dict[str, object]] = None):
    """The sampling settings of :func:`~hf_neuroformer.generation.generate_spikes` as a
    ``transformers.GenerationConfig`` (``temperature``, ``top_k``, ``top_p`` for the unit-id
    head; ``dt_temperature``, ``dt_top_k``, ``dt_top_p`` for the dt head; ``mode``, ``order``).

    Args:
        training: a run's ``training_config.json`` (dict) or None. Its ``generation_temperature``
            and ``generation_top_p`` (the sampling of the run's test-split generation, whose F1 and
            rate correlations the model card reports) replace the defaults ``temperature`` and
            ``top_p``, so that the pushed ``generation_config.json`` says how those figures were
            sampled; the other settings are ``generate_spikes``' defaults, which ``train`` used.
    """
    import inspect

    from transformers import GenerationConfig

    from .configuration_neuroformer import is_finite_number
    from .generation import generate_spikes

    sig = inspect.signature(generate_spikes)
    keys = ("temperature", "top_k", "top_p", "dt_temperature", "dt_top_k", "dt_top_p", "mode", "order", "greedy")
    values = {k: sig.parameters[k].default for k in keys if k in sig.parameters}
    greedy = bool(values.pop("greedy", False))
    for key, name in (("temperature", "generation_temperature"), ("top_p", "generation_top_p")):
        if isinstance(training, dict) and is_finite_number(training.get(name)):
            values[key] = float(training[name])
    # the dt_* defaults are None ("same as the unit-id head"); GenerationConfig stores them as given
    return GenerationConfig(do_sample=not greedy, **{k: v for k, v in values.items()})


def _is_card_key(key: str) -> bool:
    """A ``test/...`` or ``validation/...`` key that is not a count (``test/n_spike_tokens``, a
    decoder's window counts ``<split>/<target>/n``) nor a confidence interval or its notes
    (``test/id_nll_ci95``, ``test/ci95_n_blocks``, a decoder's ``test/<target>/ci95_n_blocks``,
    ``test/ci95_block_s``)."""
    split, _, name = key.partition("/")
    last = name.rsplit("/", 1)[-1]
    # nor a confidence interval ([low, high] or null) and its notes (test/r2_ci95, test/ci95_n_blocks), nor the
    # SD of a chance level over its draws (test/timing_f1_10ms_chance_poisson_sd: shown beside the level)
    interval = re.search(r"(^|_)ci\d+(_|$)", last) is not None or re.search(r"_chance_[a-z]+_sd$", last) is not None
    return split in ("test", "validation") and bool(name) and not (last == "n" or last.startswith("n_") or interval)


def card_metrics(metrics: Dict[str, object]) -> Dict[str, float]:
    """The metrics a model card reports: every finite float of ``metrics.json`` whose key is
    ``test/...`` or ``validation/...``. Counts are left out: integers such as
    ``test/n_spike_tokens``, and a decoder's window counts ``<split>/<target>/n`` (floats); so are
    confidence intervals and a chance level's SD over its draws (``..._chance_poisson_sd``), which
    the card shows beside their value."""
    return {k: v for k, v in metrics.items() if _is_card_key(k) and isinstance(v, float) and math.isfinite(v)}


def is_reference_metric(key: str) -> bool:
    """Whether a ``metrics.json`` key is a reference level rather than a measurement of the model: a
    token baseline (:data:`BASELINE_METRICS`, e.g. ``test/markov_id_nll``), a chance level (the
    spike-timing F1's ``test/timing_f1_10ms_chance_poisson``, a retrieval's
    ``test/retrieval/<modality>/chance``) or a decoder's ``<split>/<target>/target_sd`` (the SD of the
    recorded target: the RMSE of predicting its mean, a property of the data). The model card shows
    them in a table of their own, and they are not in its ``model-index``, where a leaderboard would
    credit them to the model."""
    last = key.rsplit("/", 1)[-1]
    return (last in BASELINE_METRICS or last in ("chance", "target_sd")
            or re.search(r"_chance_[a-z]+$", last) is not None)


def model_index_metrics(metrics: Dict[str, object]) -> Dict[str, float]:
    """The metrics of a model card's ``model-index`` (``card.data.eval_results``): those of
    :func:`card_metrics` that the model itself scored, without the reference levels
    (:func:`is_reference_metric`: baselines, chance levels, the recorded target's SD)."""
    return {k: v for k, v in card_metrics(metrics).items() if not is_reference_metric(k)}


def undefined_card_metrics(metrics: Dict[str, object]) -> List[str]:
    """The keys of :func:`card_metrics`' kind whose value is undefined: ``null`` in
    ``metrics.json`` (NaN when computed, e.g. R² of a target constant over the test windows) or a
    non-finite float. The card lists them as undefined rather than leaving them out unnoticed;
    the Hub's model-index metadata cannot hold them."""
    return [k for k, v in metrics.items() if _is_card_key(k)
            and (v is None or (isinstance(v, float) and not math.isfinite(v)))]


def _metric_name(name: str, decoder: bool, metrics: Optional[Dict[str, object]] = None) -> str:
    """What a metric key (without the split) is, for the model card; the binned-count correlation
    with its bin width (``metrics.json`` ``binned_count_bin_size_s``, which ``train`` records)."""
    if decoder:
        if name == "loss":
            return "decoding loss (the targets' weighted losses, summed)"
        target, _, metric = name.rpartition("/")
        if target:
            return f"{target}: {DECODING_METRIC_NAMES.get(metric, metric)}"
    from .configuration_neuroformer import is_real_number

    text = METRIC_NAMES.get(name, name)
    timing = re.fullmatch(r"timing_f1_(\d+(?:\.\d+)?)ms(?:_chance_(poisson|shuffle))?", name)
    if timing:  # train's spike-timing F1 (metrics.fidelity.spike_timing_f1_keys) and its chance levels
        ms, kind = timing.groups()
        text = f"spike-timing F1 within {ms} ms (same unit, one to one)"
        if kind:
            draws = (metrics or {}).get("timing_chance_draws")
            text = (f"chance level of the {text}: " + {"poisson": "Poisson trains at the recorded rates",
                                                       "shuffle": "generated spikes redrawn inside their windows"}[kind]
                    + (f", {draws} draws" if isinstance(draws, int) else ""))
    if name == "binned_count_corr_mean":  # a correlation of counts means little without its bin width
        width = (metrics or {}).get("binned_count_bin_size_s")
        # runs before it was recorded: train has always scored 0.1-s bins (compare_recordings' default)
        text += (f" ({width:g} s bins)" if is_real_number(width)
                 else " (0.1 s bins, train's; the width is not recorded in this metrics.json)")
    return text


def metric_direction(name: str, decoder: bool) -> str:
    """Which way a metric is better, for the model card's "better" column: ``"lower"`` (an NLL,
    a loss), ``"higher, best 1"`` (an F1, a correlation, R², an accuracy), ... from
    :data:`METRIC_DIRECTIONS` / :data:`DECODING_METRIC_DIRECTIONS`; a reference level (a baseline,
    a chance level) gets the direction of the measure it is a level of. ``"not stated"`` for a key
    neither lists.

    Args:
        name: the ``metrics.json`` key without the split (``"id_nll"``, ``"timing_f1_10ms"``,
            ``"retrieval/video/chance"``; a decoder's ``"<target>/<metric>"``).
        decoder: whether the metrics are a decoder's (``neuroformer finetune``).
    """
    last = name.rsplit("/", 1)[-1]
    if decoder and last in DECODING_METRIC_DIRECTIONS:
        return DECODING_METRIC_DIRECTIONS[last]
    if re.fullmatch(r"timing_f1_\d+(?:\.\d+)?ms(?:_chance_(?:poisson|shuffle))?", last):
        return "higher, best 1"
    return METRIC_DIRECTIONS.get(last, "not stated")


def _seconds(value) -> str:
    return f"{value:.0f} s" if isinstance(value, (int, float)) and math.isfinite(value) else "?"


def _session_of(metrics: Dict[str, object], default: str) -> str:
    m = re.search(r"session='([^']*)'", str(metrics.get("recording", "")))
    return m.group(1) if m else default


def build_model_card(
    stage_dir,
    repo_id: str,
    metrics: Dict[str, object],
    *,
    license: str = "other",
    datasets: Optional[List[str]] = None,
    data_description: Optional[str] = None,
    revision: Optional[str] = None,
    hub_url: str = "https://huggingface.co",
    subfolder: str = "",
    stale_metrics: bool = False,
):
    """A ``huggingface_hub.ModelCard`` for a staged model repository.

    The YAML header comes from ``ModelCardData``: ``library_name`` (transformers, which loads it
    with ``trust_remote_code``), tags (neuroscience, spikes, neuroformer, custom_code,
    hf_neuroformer), ``license``, ``datasets`` and a ``model-index`` with one ``EvalResult`` per
    entry of :func:`model_index_metrics` (the model's own metrics; ``metric_type`` = key without the
    split, ``dataset_split`` = the split); its ``dataset.type`` is the pushed windows dataset's id
    (``datasets[0]``), else :data:`UNPUBLISHED_DATASET_TYPE`, which is no Hub dataset id. Baselines and
    chance levels (:func:`is_reference_metric`) are in the card's text only, in a table of reference
    levels. Each row of the card's tables states which way its figure is better
    (:func:`metric_direction`: NLLs lower, F1s and correlations higher), in the text only: the
    Hub's ``model-index`` schema has no field for it. The body is
    ``templates/model_card_template.md`` (also linked from ``model_cards/``).

    Args:
        license: a Hub licence id; ``"other"`` by default, since the right one is the
            recording's (see its provenance).
        datasets: Hub dataset ids the model was trained on (e.g. the pushed window dataset).
        data_description: free text about the recording's provenance, put in the card (as one
            list item: its lines are joined by ``<br>``, so none starts a heading of the card).
        revision: the branch the card is pushed to; its "How to load" code then passes
            ``revision=`` (``None`` or ``"main"``: not needed).
        hub_url: the Hub the card is pushed to, for its links (``push_to_hub`` passes its
            endpoint, so a card on a private Hub links there).
        subfolder: the folder of the repository the model is pushed into (``""``: its root); the
            card's loading code then passes ``subfolder=``, and its download command fetches that
            folder only (``hf download REPO --include 'FOLDER/*'``) and names it as the model folder; its
            title and ``model-index`` name are ``NAME/FOLDER`` (every folder's card read ``NAME`` alone).
        stale_metrics: ``metrics`` scores earlier weights than the staged ones (:func:`metrics_weights_state`
            ``"stale"``, pushed with ``allow_stale_metrics``): the card says so above its results
            (:data:`STALE_METRICS_NOTE`) and its ``model-index`` holds none of them.

    Raises:
        ValueError: ``subfolder`` cannot hold a model's remote code (:func:`check_subfolder`).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from . import __version__
    from .configuration_neuroformer import is_whole_number
    from .decoding import target_label

    check_subfolder(subfolder, "subfolder")
    stage = Path(stage_dir)
    config = json.loads((stage / "config.json").read_text())
    targets = [t for t in config.get("decoding_targets") or [] if isinstance(t, dict)]
    decoder = bool(config.get("decoding_targets"))
    target_list = ", ".join(f"{target_label(t.get('name', '?'), t.get('column'))} ({t.get('kind', '?')})" for t in targets)
    task_type, task_name = ((DECODING_TASK_TYPE, f"Behaviour decoding: {target_list}") if decoder
                            else (TASK_TYPE, TASK_NAME))
    training = json.loads((stage / "training_config.json").read_text()) if (stage / "training_config.json").is_file() else {}
    splits = json.loads((stage / "splits.json").read_text()) if (stage / "splits.json").is_file() else None
    # the vocabulary's sessions where metrics.json names no recording (a decoder fine-tuned before finetune
    # recorded it, a folder saved from Python), and a vocabulary grown with another session's units
    # (tokenizer.add_units) names several; never the repository's name
    units = _units_by_session(stage)
    session = _session_of(metrics, default=", ".join(units) or repo_id.split("/")[-1])
    branch = revision if revision not in (None, "main") else None
    # the Hub reads dataset.type as a dataset id: "spike-recording" named a dataset that does not exist
    dataset_type = datasets[0] if datasets else UNPUBLISHED_DATASET_TYPE.format(session=session)

    results = []
    # results of earlier weights (stale_metrics) stay out of the metadata a leaderboard reads as this model's
    for key, value in ({} if stale_metrics else model_index_metrics(metrics)).items():
        split, _, name = key.partition("/")
        results.append(EvalResult(
            task_type=task_type, task_name=task_name, dataset_type=dataset_type, dataset_name=session,
            dataset_split=split, metric_type=name, metric_name=f"{split} {_metric_name(name, decoder, metrics)}",
            metric_value=value, dataset_revision=branch if datasets else None,
        ))
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1] + (f"/{subfolder}" if subfolder else ""),  # a folder's card names it
        library_name=MODEL_CARD_LIBRARY_NAME,
        license=license,
        tags=list(MODEL_CARD_TAGS),
        datasets=list(datasets) if datasets else None,
        eval_results=results or None,
    )

    data_lines = [f"- Recording: `{metrics['recording']}`." if "recording" in metrics
                  else f"- Recording: session{'s' if len(units) > 1 else ''} "
                       f"{', '.join(f'`{u}`' for u in units) or f'`{session}`'} (the units of the tokenizer)."]
    if decoder:
        data_lines.append(f"- Decoding targets (behaviour series of the recording, one value per window): {target_list}.")
        few = (f" on {metrics['fraction']:.0%} of the training windows" if
               isinstance(metrics.get("fraction"), float) and metrics["fraction"] < 1 else "")
        if metrics.get("init") == "pretrained" and metrics.get("model_dir"):
            data_lines.append(f"- Fine-tuned from the pretrained model `{metrics['model_dir']}`{few}.")
        elif metrics.get("init") == "decoder" and metrics.get("model_dir"):  # its heads went on training
            data_lines.append(f"- Fine-tuned further from the decoder `{metrics['model_dir']}` (its backbone and "
                              f"heads){few}.")
        elif metrics.get("init") == "scratch":
            data_lines.append("- Trained from scratch (no pretraining).")
        # linear probing first (finetune's freeze_backbone_steps): "fine-tuned from" alone read as if the
        # backbone had trained, when with it frozen throughout only the new modules ever did
        frozen, total = metrics.get("freeze_backbone_steps"), metrics.get("total_steps")
        if isinstance(frozen, int) and frozen > 0:
            new = "the decoding heads" + (" and the attentive read-out" if config.get("decoding_pool") == "attention" else "")
            backbone = {"pretrained": "the pretrained one", "decoder": "the one of the decoder it continued"}.get(
                metrics.get("init"), "its random initialisation")
            if isinstance(total, int) and frozen >= total:
                data_lines.append(f"- Backbone frozen throughout ({total} of {total} steps, `freeze_backbone_steps`): only "
                                  f"{new} trained; the backbone is {backbone}, unchanged (a probe of its features).")
            else:
                data_lines.append(f"- Backbone frozen for the first {frozen} of {total if total is not None else '?'} "
                                  f"steps (`freeze_backbone_steps`): only {new} trained, then everything (linear "
                                  "probing then fine-tuning).")
    data_lines += _provenance_lines(data_description)
    if splits is not None:
        from .recording import count_noun

        # a split by trials counts its trials (splits.json's trial_index): "train 140 segments" read as time blocks
        by_trials = splits.get("mode") == "trials" and isinstance(splits.get("trial_index"), dict)
        n = {s: len(v) for s, v in (splits["trial_index"] if by_trials else splits.get("segments", {})).items()}
        what = "trial" if by_trials else "segment"
        data_lines.append(f"- Splits by {splits.get('mode')}: "
                          + ", ".join(f"{s} {count_noun(k, what)}" for s, k in n.items())
                          + " (`splits.json`).")
    report = metrics.get("decoding_report") if decoder and isinstance(metrics.get("decoding_report"), dict) else {}
    for s in ("train", "validation", "test"):
        if isinstance(report.get(s), dict) and "n_windows" in report[s]:
            used = (f" ({metrics['n_train_windows']} used for training)" if s == "train" and
                    metrics.get("n_train_windows") not in (None, report[s]["n_windows"]) else "")
            # several targets: a window kept for the others may lack one target's value (masked for it)
            # (of a few-shot block only a part was trained on: then the split's windows with a value are named)
            masked = [f"{label} scored on {report[s]['n_windows_target'][label]}" if s != "train" else
                      f"{label} trained on {report[s]['n_windows_target'][label]}" if not used else
                      f"{label}: {report[s]['n_windows_target'][label]}"
                      for label, k in (report[s].get("n_masked_nan") or {}).items() if k]
            # windows whose class the train split lacks: left out of the scores, said (else the card's test count
            # read as every test window of the recording)
            unseen = [f"{k} of {label} (class {report[s].get('unseen_classes', {}).get(label, '?')})"
                      for label, k in (report[s].get("n_unseen_class") or {}).items() if k]
            data_lines.append(f"- {s}: {report[s]['n_windows']} windows{used}, {report[s].get('n_spikes', '?')} spikes"
                              + (f" ({', '.join(masked)} with a value; the rest masked for it)" if masked else "")
                              + (f"; left out as of a class the train split lacks: {', '.join(unseen)}" if unseen
                                 else "") + ".")
        elif f"n_{s}_windows" in metrics:
            data_lines.append(f"- {s}: {metrics[f'n_{s}_windows']} windows, "
                              f"{metrics.get('n_spikes_by_split', {}).get(s, '?')} spikes.")
    if "n_truncated_spikes" in metrics:
        data_lines.append(truncation_line(metrics, config))
    for m in config.get("modalities") or []:
        extra = (f", {m['num_frames']} frames of {m['frame_shape'][0]}x{m['frame_shape'][1]} px, patches "
                 f"{'x'.join(str(v) for v in m['patch_size'])}" if m.get("kind") == "video" else "")
        data_lines.append(f"- Input modality `{m['name']}`: `{m['source']}`, {m['kind']}, window {m['window']} s "
                          f"relative to the current window{extra}.")
    if metrics.get("stimulus_description"):
        data_lines.append(f"- Stimulus frames: {metrics['stimulus_description']}")
    if datasets:
        # the windows of a branch push are on the same branch of the dataset repository
        load_code = f"load_dataset({_py_str(datasets[0])}, revision={_py_str(branch or '')})"
        data_lines.append("- Windows on the Hub: " + ", ".join(
            f"[{d}]({_tree_url(hub_url.rstrip('/') + '/datasets/' + d, branch)})" for d in datasets)
            + (f" (branch {_code_span(branch)}: {_code_span(load_code)})" if branch else "") + ".")

    model_keys = ("hidden_size", "num_attention_heads", "num_past_layers", "num_hidden_layers", "vocab_size",
                  "current_window", "past_window", "dt_resolution", "max_window_length", "max_past_length",
                  "dt_conditioned_on_unit")
    model_cfg = {k: config[k] for k in model_keys if k in config}
    # how the kept step was chosen: a run without a validation split keeps its last step (and a
    # decoder may select on another validation metric), so "best on validation" is not a given
    selection = metrics.get("checkpoint_selection")
    kept = (f"kept: step {metrics.get('best_step', '?')}, {selection}" if selection
            else f"best on validation: {metrics.get('best_step', '?')}")
    # finetune records neither the parameter count nor the training time: the count is the weights'
    # (model.safetensors holds the parameters and nothing else), an unknown time is left out
    n_params = metrics.get("num_parameters", _n_weights(stage))
    time_s = metrics.get("train_time_s")
    training_lines = [
        (f"- Parameters: {n_params}; steps: {metrics.get('total_steps', '?')} ({kept})"
         + (f"; training time {_seconds(time_s)}." if time_s is not None else ".") if metrics
         else f"- Parameters: {n_params} (no metrics.json: the steps and the checkpoint kept are not recorded)."),
        "- Model configuration (excerpt of `config.json`):",
        "", "```json", json.dumps(model_cfg, indent=2), "```", "",
    ]
    if training:
        training_lines += ["- Training configuration (`training_config.json`):", "", "```json",
                           json.dumps(training, indent=2), "```"]
    elif decoder and isinstance(metrics.get("training"), dict):  # finetune's settings (no training_config.json)
        training_lines += ["- Fine-tuning configuration (`metrics.json`, `training`):", "", "```json",
                           json.dumps(metrics["training"], indent=2), "```"]

    results_note = ("One row per target and metric, on the windows of the stated split; the decoding loss\n"
                    "is the training objective." if decoder else PRETRAINING_RESULTS_NOTE)
    # which way each figure is better: NLLs (lower) stood beside F1s and correlations (higher) unmarked
    header = ["| split | metric | value | better |", "|---|---|---|---|"]
    rows, reference_rows = list(header), list(header)
    n_intervals = 0
    for key, value in card_metrics(metrics).items():
        split, _, name = key.partition("/")
        # the run's 95 % block-bootstrap interval beside the value (metrics.json <key>_ci95): a test
        # NLL or R^2 stated without it read as exact
        interval = _interval(metrics.get(f"{key}_ci95"))
        n_intervals += interval is not None
        shown = f"{value:.4f}" + (f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "")
        sd = metrics.get(f"{key}_sd") if "_chance_" in key else None  # a chance level's SD over its draws
        if isinstance(sd, float) and math.isfinite(sd):
            shown += f" ± {sd:.4f} (SD over the draws, `{key}_sd`)"
        (reference_rows if is_reference_metric(key) else rows).append(
            f"| {split} | {_metric_name(name, decoder, metrics)} (`{key}`) | {shown} | {metric_direction(name, decoder)} |")
    for key in undefined_card_metrics(metrics):
        split, _, name = key.partition("/")
        # why it is undefined (train's test/<key>_reason, in evaluate's words): a bare "undefined" left the
        # reader to guess between a silent model, too few units and too short a test split
        reason = metrics.get(f"{key}_reason")
        why = f": {reason.replace('|', chr(92) + '|')} (`{key}_reason`)" if isinstance(reason, str) and reason else ""
        (reference_rows if is_reference_metric(key) else rows).append(
            f"| {split} | {_metric_name(name, decoder, metrics)} (`{key}`) | undefined (null in metrics.json{why}) | "
            f"{metric_direction(name, decoder)} |")
    if len(rows) == 2 and len(reference_rows) > 2:
        rows = ["No metrics of this model in metrics.json."]
    if len(reference_rows) > 2:
        # a leaderboard reading the model-index would credit a baseline (the Markov unit-id NLL, below the model's
        # after a short run) to the model: they are the card's text only, labelled
        last = {k.rsplit("/", 1)[-1] for k in [*card_metrics(metrics), *undefined_card_metrics(metrics)]
                if is_reference_metric(k)}
        kinds = [kind for kind, present in (
            ("baselines fitted on the train split", bool(last & set(BASELINE_METRICS))),
            ("chance levels", any(x == "chance" or "_chance_" in x for x in last)),
            ("the SD of the recorded target", "target_sd" in last)) if present]
        rows += ["", f"Reference levels, not results of this model ({', '.join(kinds)}); the `model-index` metadata "
                 "leaves them out; \"better\" is the direction of the measure, so the model beats a level when "
                 "its own figure lies that way of it:", "", *reference_rows]
    if stale_metrics and model_index_metrics(metrics):
        rows += ["", "The `model-index` metadata holds no results: they are of earlier weights."]
    elif model_index_metrics(metrics):
        rows += ["", "The `model-index` metadata holds the defined metrics of this model's table, on the dataset "
                 + (f"`{datasets[0]}` (the windows on the Hub)." if datasets else
                    f"`{dataset_type}`: the windows are not on the Hub, so it names no Hub dataset.")]
    if n_intervals:
        blocks, n_blocks = metrics.get("test/ci95_blocks"), metrics.get("test/ci95_n_blocks")
        # a decoder counts its blocks per target (test/<target>/ci95_n_blocks: a target's windows without
        # a value are left out), so the note said "(blocks: ...)" with no count
        per_target = {k[len("test/"):-len("/ci95_n_blocks")]: v for k, v in metrics.items()
                      if k.startswith("test/") and k.endswith("/ci95_n_blocks") and isinstance(v, int)}
        rows += ["", "In brackets: the 95 % confidence interval of a block bootstrap over the test windows"
                 + (f" ({n_blocks} blocks" if isinstance(n_blocks, int) else
                    " (blocks per target: " + ", ".join(f"{t} {v}" for t, v in per_target.items()) + "; blocks"
                    if per_target else " (blocks")
                 + (f": {blocks})" if isinstance(blocks, str) else ")")
                 + ", as `metrics.json` records it; a metric without brackets has no interval there."]
    if len(rows) == 2:
        rows = ["No test or validation metrics in metrics.json." if metrics else
                "No metrics.json in the model directory: this card states no results."]
    if stale_metrics:  # pushed with allow_stale_metrics: said above the table, not only in a note below it
        rows = [STALE_METRICS_NOTE, "", *rows]
    if isinstance(metrics.get("test/generation"), str):
        # a run streamed from prepared windows (or diverged) generates nothing: the card lacked the generation
        # metrics and the figure without saying why
        rows += ["", "No generation metrics (unit-id F1, spike-timing F1, firing-rate and binned-count correlations) and no "
                 f"`test_generation.png`: test-split generation {metrics['test/generation']} (`test/generation`)."]
    capped = metrics.get("test/n_capped_generated_windows")
    if is_whole_number(capped) and capped > 0:
        # the generation metrics above come from these windows too: unsaid, they read as unbiased (evaluate says it)
        # one window "was" cut (the card said "1 of the 560 generated test windows were cut")
        rows += ["", f"{capped} of the {metrics.get('n_test_windows', '?')} generated test windows "
                 f"{'was' if capped == 1 else 'were'} cut by the "
                 "spike cap (the model's current-window token budget), so the generated counts and rates are biased "
                 "low in them (`test/n_capped_generated_windows`); the unit-id and spike-timing F1 and the rate and count "
                 "correlations include them."]
    figures = [f"![{name}]({name})\n\n{caption}" for name, caption in CARD_FIGURES.items() if (stage / name).is_file()]
    if figures:
        rows += ["", "### Figures", "", *(f + "\n" for f in figures)]

    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        repo_id=repo_id,
        load_args=load_args(repo_id, revision, quote='"', subfolder=subfolder),
        processor_code=_code_span("AutoProcessor.from_pretrained("
                                  + load_args(repo_id, revision, quote='"', subfolder=subfolder) + ")"),
        auto_class=auto_class_name(stage),
        model_name=repo_id.split("/")[-1] + (f"/{subfolder}" if subfolder else ""),
        package_version=__version__,
        data_section="\n".join(data_lines),
        training_section="\n".join(training_lines),
        results_table="\n".join(rows),
        # what the run did, from its metrics.json; a folder saved from Python without one records no run
        results_intro=(f"{results_note} "
                       + (f"The checkpoint kept: step {metrics.get('best_step', '?')}, {selection}" if selection
                          else "The checkpoint is the one with the lowest validation loss")
                       + "; the test split was scored once, after training." if metrics else ""),
        vocabulary_note=(f"One recording: the unit vocabulary is this recording's units ({_n_units(stage)} units)."
                         if len(units) <= 1 else
                         f"The unit vocabulary holds the units of {len(units)} sessions ("
                         + ", ".join(f"{u} {n}" for u, n in units.items()) + " units)."),
        model_description=(f"fine-tuned to decode behaviour ({target_list}) from the spikes of a window\n"
                           "(and of the past window): a head per target reads the pooled hidden states."
                           if decoder else PRETRAINING_DESCRIPTION),
        generation_note=(NO_HEADS_NOTE if not has_next_spike_heads(stage) else GENERATION_NOTE.format(
            download=_code_span(f"hf download {repo_id}" + (f" --revision {shlex.quote(branch)}" if branch else "")
                                + (f" --include {shlex.quote(subfolder + '/*')}" if subfolder else "")
                                + f" --local-dir {repo_id.split('/')[-1]}"),
            folder=repo_id.split("/")[-1] + (f"/{subfolder}" if subfolder else ""))),
    )


def _interval(value):
    """``(low, high)`` of a ``metrics.json`` confidence interval ``[low, high]`` of finite numbers,
    else ``None`` (null: too few blocks, with its ``..._reason``)."""
    from .configuration_neuroformer import is_finite_number

    if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_finite_number(v) for v in value):
        return float(value[0]), float(value[1])
    return None


def load_args(repo_id: str, revision: Optional[str], quote: str = "'", subfolder: str = "") -> str:
    """The arguments of ``from_pretrained`` that load a pushed model, e.g.
    ``'lab/m', revision='dev', subfolder='run-1', trust_remote_code=True`` (``revision`` only off ``main``,
    ``subfolder`` only for a model pushed into a folder of the repository), as Python
    string literals (``quote``: the quote they prefer; a branch name git allows may hold quotes,
    ``a"b``, which are escaped or met with the other quote rather than closing the string)."""
    lit = _py_str if quote == '"' else repr
    rev = f", revision={lit(revision)}" if revision not in (None, "main") else ""
    sub = f", subfolder={lit(subfolder)}" if subfolder else ""
    return f"{lit(repo_id)}{rev}{sub}, trust_remote_code=True"


def _py_str(text: str) -> str:
    """``text`` as a double-quoted Python string literal (quotes and backslashes escaped), for the
    loading code of the cards."""
    return json.dumps(text, ensure_ascii=False)


def _code_span(text: str) -> str:
    """``text`` as a Markdown inline code span: a fence of one more backtick than its longest run
    of backticks (``a`b`` stays one span), so a branch name never ends the span early."""
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _provenance_lines(data_description) -> List[str]:
    """The cards' ``- Provenance: ...`` line (one list item, :func:`_one_markdown_line`), or none
    for a provenance that is missing or only whitespace."""
    provenance = _one_markdown_line(data_description) if data_description else ""
    return [f"- Provenance: {provenance}"] if provenance else []


def _one_markdown_line(text: str) -> str:
    """``text`` (free text such as ``--provenance``) as one line of a card's list item: its lines,
    stripped, blank ones left out, joined by ``<br>`` (a line break where the card is rendered).
    Kept as lines, a line of it starting with ``#``, ``---`` or ``- `` became a heading, a rule
    or a list of its own, cutting the card's list apart."""
    return "<br>".join(line.strip() for line in str(text).splitlines() if line.strip())


def _tree_url(base: str, revision: Optional[str]) -> str:
    """The Hub page of a repository (``base``) at branch ``revision`` (``None`` or ``main``: the
    repository's page); the branch percent-encoded as one path segment (``a#b``, ``feature/x``)."""
    from urllib.parse import quote

    return base if revision in (None, "main") else f"{base}/tree/{quote(revision, safe='')}"


def _units_by_session(stage: Path) -> Dict[str, int]:
    """The sessions of the staged vocabulary's unit tokens (``"<session>/<unit>"``) -> their unit
    counts, in the order of the vocabulary."""
    from .tokenization_neuroformer import NeuroformerTokenizer

    vocab = json.loads((stage / "vocab.json").read_text())
    counts: Dict[str, int] = {}
    for t in sorted(vocab, key=vocab.get):
        if "/" in t and not (t.startswith("<") and t.endswith(">")):
            s = NeuroformerTokenizer.session_of(t)
            counts[s] = counts.get(s, 0) + 1
    return counts


def _n_weights(stage: Path) -> int:
    """Values in the staged ``model.safetensors`` (read from its header): the model's parameter
    count, as ``neuroformer train`` records it in ``num_parameters``."""
    import math

    from safetensors import safe_open

    with safe_open(str(stage / "model.safetensors"), framework="pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def _n_units(stage: Path):
    """Unit tokens in the staged vocabulary (every token that is not a special ``<...>``)."""
    vocab = json.loads((stage / "vocab.json").read_text())
    return sum(1 for t in vocab if not (t.startswith("<") and t.endswith(">")))


def eval_results_to_metrics(card) -> Dict[str, float]:
    """Inverse of the card's ``model-index``: ``{"<split>/<metric_type>": value}`` (what
    :func:`card_metrics` took from ``metrics.json``)."""
    return {f"{r.dataset_split}/{r.metric_type}": r.metric_value for r in (card.data.eval_results or [])}


def _api(endpoint: Optional[str], token):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token)


@contextlib.contextmanager
def _hub_errors(step: str, repo_id: str, api, model_dir: Optional[Path] = None, already: str = "") -> Iterator[None]:
    """Turn the Hub client's errors into :class:`HubPushError` naming the step and the server;
    ``already``: what an earlier step of the same push has committed (said in the message)."""
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    untouched = f"; the local model directory {str(model_dir)!r} was not changed" if model_dir is not None else ""
    untouched += f"; {already}" if already else ""
    try:
        yield
    except HfHubHTTPError as e:
        status = e.response.status_code if getattr(e, "response", None) is not None else "?"
        server = getattr(e, "server_message", None) or str(e).splitlines()[0]
        hint = "; log in with `hf auth login`, set HF_TOKEN or pass token=" if status == 401 else ""
        raise HubPushError(f"{step} of {repo_id!r} at {api.endpoint} failed: HTTP {status}: {server}{hint}"
                           f"{untouched}") from e
    except LocalTokenNotFoundError as e:
        raise HubPushError(f"{step} of {repo_id!r}: no Hub token; log in with `hf auth login`, set HF_TOKEN or pass "
                           f"token={untouched}") from e
    except Exception as e:
        # connection refused / reset, DNS and timeouts: builtin ConnectionError / TimeoutError,
        # or the HTTP client's transport errors (httpx or httpx2 modules; not OSError)
        if isinstance(e, (ConnectionError, TimeoutError)) or type(e).__module__.split(".")[0] in ("httpx", "httpx2"):
            raise HubPushError(f"{step} of {repo_id!r}: could not reach {api.endpoint} ({e}); check the network "
                               f"and HF_ENDPOINT{untouched}") from e
        raise


def _validate_card(api, text: str, repo_type: str) -> None:
    """Ask the Hub at ``api.endpoint`` whether a card's YAML metadata is valid (the request of
    ``huggingface_hub.RepoCard.validate``, sent to this endpoint rather than ``HF_ENDPOINT``).

    Raises:
        ValueError: the Hub answered 400 (its message, and the flag most likely at fault).
        huggingface_hub.errors.HfHubHTTPError: any other refusal (turned into
            :class:`HubPushError` by the caller).
    """
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    headers = {**build_hf_headers(token=api.token, library_name="hf_neuroformer"), "Accept": "text/plain"}
    response = get_session().post(f"{api.endpoint}/api/validate-yaml", json={"repoType": repo_type, "content": text},
                                  headers=headers)
    if response.status_code == 400:
        try:
            message = "; ".join(str(e.get("message", e)) for e in response.json().get("errors", []))
        except Exception:  # not JSON: the Hub answers text/plain when asked to
            message = ""
        raise ValueError(f"license (CLI: --license) or card metadata: the Hub at {api.endpoint} refused the {repo_type} "
                         f"card's metadata: {(message or response.text.strip())[:1000]}; nothing was uploaded. Use a Hub licence id "
                         "(https://huggingface.co/docs/hub/repositories-licenses), or 'other' and name the licence in "
                         "--provenance")
    hf_raise_for_status(response)


def _check_private(private: bool, repo_id: str, repo_type: str, info, api) -> None:
    """Refuse a private push into a repository that already exists and is public (``create_repo``
    with ``exist_ok`` leaves an existing repository's visibility as it is)."""
    if private and info.private is False:
        settings = f"HfApi().update_repo_settings({repo_id!r}, private=True" + \
            (", repo_type='dataset')" if repo_type == "dataset" else ")")
        raise ValueError(
            f"private (CLI: --private): the {repo_type} repository {repo_id!r} at {api.endpoint} already exists and "
            f"is public, so this push would publish its files; nothing was uploaded. Make it private first "
            f"({settings}) or push without --private"
        )


#: file name endings of model weights: a repository holding some without a Neuroformer ``config.json``
#: holds another model
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf", ".pkl",
                   ".joblib", ".keras")


def _check_not_another_repo(api, repo_id: str, repo_type: str, revision: Optional[str], info, model_dir,
                            subfolder: str = "") -> None:
    """Refuse a push into a repository (branch ``revision``) that holds something else: a model
    repository whose ``config.json`` is another ``model_type`` (or that has weight files and no
    ``config.json``), a dataset repository with data files but no windows manifest of this package.
    For a model, only the folder pushed into is looked at (``subfolder``; ``""``: the root): its own
    ``config.json`` and the weight files directly in it, the files the push would replace (a model in
    another folder of the repository is left as it is, so it is no reason to refuse).
    The commit would replace that model's config and weights (or delete that dataset's Parquet
    files: the windows upload deletes ``data/*.parquet``) with nothing said; they would survive only
    in the repository's history. ``replace_other=True`` (CLI ``--replace-other``) skips this."""
    from huggingface_hub import hf_hub_download

    from .configuration_neuroformer import NeuroformerConfig

    files = {s.rfilename for s in (info.siblings or [])}
    where = f"the {repo_type} repository {repo_id!r} at {api.endpoint}" + (f" (branch {revision!r})" if revision else "")
    prefix = f"{subfolder}/" if subfolder and repo_type == "model" else ""
    if prefix:
        where = f"the folder {subfolder!r} of {where}"
    # the files directly in the folder pushed into (a root push read the weights of models in subfolders
    # as weights without a config.json)
    here = {f[len(prefix):] for f in files if f.startswith(prefix) and "/" not in f[len(prefix):]}
    found = ""
    if repo_type == "model" and "config.json" in here:
        with tempfile.TemporaryDirectory(prefix="neuroformer-push-") as cache, \
                _hub_errors("reading the model repository's config.json", repo_id, api, model_dir):
            # the endpoint the push goes to, named (HfApi.hf_hub_download builds the file's URL from the
            # endpoint read at import when the HfApi was made without one)
            path = hf_hub_download(repo_id, "config.json", subfolder=subfolder or None, revision=revision,
                                   cache_dir=cache, endpoint=api.endpoint, token=api.token)
            try:
                model_type = json.loads(Path(path).read_text(encoding="utf-8")).get("model_type")
            except (ValueError, AttributeError):
                model_type = "(unreadable)"
        if model_type != NeuroformerConfig.model_type:
            found = f"holds a model of another kind (config.json model_type {model_type!r})"
    elif repo_type == "model":
        weights = sorted(prefix + f for f in here if f.lower().endswith(WEIGHT_SUFFIXES))
        if weights:
            found = f"holds model files without a Neuroformer config.json ({', '.join(weights[:5])})"
    elif "manifest.json" not in files:
        data = sorted(f for f in files if f not in (".gitattributes", "README.md"))
        if data:
            found = (f"holds files that are not a Neuroformer windows dataset (no manifest.json: "
                     f"{', '.join(data[:5])}{' ...' if len(data) > 5 else ''})")
    if found:
        raise ValueError(f"repo_id (CLI: --repo-id / --dataset-repo-id): {where} {found}; this push would replace it "
                         "(its files would remain only in the repository's history), so nothing was uploaded. Push to "
                         "another repository, or pass replace_other=True (CLI: --replace-other) to replace it")


def _create_repo(api, repo_id: str, repo_type: str, private: bool) -> bool:
    """Create the repository; True when this call created it, False when it existed (409, or a
    token that may not create repositories in the namespace of one that exists: the check of
    ``create_repo(exist_ok=True)``)."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=False)
        return True
    except HfHubHTTPError as err:
        status = err.response.status_code if getattr(err, "response", None) is not None else None
        if status == 409:
            return False
        if status in (401, 402, 403):  # no right to create here, but the repository may exist (a scoped token)
            try:
                api.repo_info(repo_id, repo_type=repo_type)
            except HfHubHTTPError:
                raise err from None
            return False
        raise


def add_note(err: BaseException, note: str) -> None:
    """Attach ``note`` to ``err`` (``BaseException.add_note`` where Python has it, 3.11 on; on 3.10
    the ``__notes__`` list it fills, which ``neuroformer`` prints; calling ``err.add_note`` there
    raised ``AttributeError`` in place of the error)."""
    if hasattr(err, "add_note"):
        err.add_note(note)
    else:
        err.__notes__ = [*getattr(err, "__notes__", []), note]


def _delete_created(api, created) -> str:
    """Delete the repositories and branches ``[(repo_id, repo_type, initial_sha, branch)]`` that a
    failed push created (``branch`` ``None``: the repository), each only while it is still at its
    initial commit (a repository: every branch of it), so that nothing of anyone's committed there
    is lost; returns what was done, for the error message. ``initial_sha`` ``None``: a repository
    whose head the push had not read yet (interrupted or failed right after creating it), taken as
    still at its initial commit while its main branch holds one commit only (the Hub's initial one)."""
    notes = []
    for repo_id, repo_type, sha, branch in created:
        what = (f"{repo_type} repository {repo_id!r}" if branch is None
                else f"branch {branch!r} of the {repo_type} repository {repo_id!r}")
        kind = ", repo_type='dataset'" if repo_type == "dataset" else ""
        how = (f"HfApi().delete_repo({repo_id!r}{kind})" if branch is None
               else f"HfApi().delete_branch({repo_id!r}, branch={branch!r}{kind})")
        try:
            if sha is None:
                commits = api.list_repo_commits(repo_id, repo_type=repo_type)
                sha = commits[0].commit_id if len(commits) == 1 else ""  # "": matches no branch, so it is kept
            refs = api.list_repo_refs(repo_id, repo_type=repo_type)
            if any(b.target_commit != sha for b in refs.branches if branch is None or b.name == branch):
                notes.append(f"the {what} that this push created holds a commit, so it was left there")
                continue
            if branch is None:
                api.delete_repo(repo_id, repo_type=repo_type)
            else:
                api.delete_branch(repo_id, branch=branch, repo_type=repo_type)
            notes.append(f"the empty {what} that this push had created was deleted again")
        except Exception as e:  # the network went away: say what is left
            notes.append(f"the empty {what} that this push created could not be deleted "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); delete it with {how}")
    return "; ".join(notes)


def _branch_info(api, repo_id: str, repo_type: str, revision: Optional[str], model_dir, missing_ok: bool = False):
    """``(info, exists)``: ``repo_info`` of branch ``revision`` of an existing repository and True,
    or, when that branch does not exist yet, main's (the branch would be made from it) and False;
    ``(None, False)`` when the repository does not exist and ``missing_ok``."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    with _hub_errors(f"reading the {repo_type} repository", repo_id, api, model_dir):
        try:
            if revision in (None, "main"):
                return api.repo_info(repo_id, repo_type=repo_type), True
            try:
                info = api.repo_info(repo_id, repo_type=repo_type, revision=revision)
            except RevisionNotFoundError:
                return api.repo_info(repo_id, repo_type=repo_type), False
            # a commit id or a tag resolves too, and was read as an existing branch: the push then failed
            # at its commit, after the staging and the other repository's upload
            refs = api.list_repo_refs(repo_id, repo_type=repo_type, include_pull_requests=True)
            if revision not in {r.name for r in [*refs.branches, *(refs.pull_requests or [])]} | \
                    {r.ref for r in [*refs.branches, *(refs.pull_requests or [])]}:
                raise ValueError(f"revision (CLI: --revision): {revision!r} is a commit or tag of the {repo_type} "
                                 f"repository {repo_id!r} at {api.endpoint}, not a branch; a push commits to a branch "
                                 "(created from main if missing): name one; nothing was uploaded")
            return info, True
        except RepositoryNotFoundError:
            if not missing_ok:
                raise
            return None, False


def _check_target(api, repo_id: str, repo_type: str, revision: Optional[str], info, branch_exists: bool,
                  private: bool, replace_other: bool, model_dir, subfolder: str = "") -> None:
    """The checks of an existing repository before a push writes to it (:func:`_check_private`,
    and :func:`_check_not_another_repo` unless ``replace_other``, in folder ``subfolder`` of a model
    repository), on branch ``revision`` or, when that branch does not exist yet, on main."""
    _check_private(private, repo_id, repo_type, info, api)
    if not replace_other:
        _check_not_another_repo(api, repo_id, repo_type, revision if branch_exists else None, info, model_dir,
                                subfolder if repo_type == "model" else "")


#: the start of the last line of every card this package writes (:func:`mark_card`), followed by the
#: sha256 (hex) of the card's text before that line and `` -->``: an HTML comment, not shown on the Hub
CARD_MARK = "<!-- written by hf_neuroformer; sha256 of the text above this line: "


def mark_card(text: str) -> str:
    """``text`` (a card, ending with a line break or not) with :data:`CARD_MARK` and the sha256 of
    the text before it as its last line, so that a later push can tell whether the card on the Hub
    is still as this package wrote it (:func:`card_mark_state`)."""
    import hashlib

    body = text if text.endswith("\n") else text + "\n"
    return f"{body}\n{CARD_MARK}{hashlib.sha256(body.encode('utf-8')).hexdigest()} -->\n"


def card_mark_state(text: str) -> str:
    """Whether a card (a ``README.md``'s text) is as :func:`mark_card` wrote it.

    Returns:
        ``"unedited"``: its last line is the mark and the sha256 in it is that of the text
        before; ``"edited"``: it has the mark, but the text before it (or after it) was changed;
        ``"unmarked"``: no mark (a card written by a version of this package before the mark,
        a README of someone else's, or a mark deleted in an edit).
    """
    import hashlib

    at = text.rfind("\n" + CARD_MARK)
    if at < 0:
        return "unmarked"
    body, line = text[:at], text[at + 1:]
    expected = f"{CARD_MARK}{hashlib.sha256(body.encode('utf-8')).hexdigest()} -->"
    return "unedited" if line.rstrip("\r\n") == expected else "edited"


def save_card(card, path) -> None:
    """Write a ``huggingface_hub`` card to ``path`` marked (:func:`mark_card`), as ``RepoCard.save``
    writes it (UTF-8, its line breaks kept)."""
    with open(path, mode="w", newline="", encoding="utf-8") as f:
        f.write(mark_card(str(card)))


def _read_repo_text(api, repo_id: str, repo_type: str, info, path: str, model_dir) -> str:
    """The text of file ``path`` of the repository at the commit of ``info`` (its bytes decoded as
    they are: read_text's universal newlines turned a card's "\r\n", kept by :func:`save_card` and
    hashed by :func:`mark_card`, into "\n", so an unedited card was taken for an edited one)."""
    from huggingface_hub import hf_hub_download

    with tempfile.TemporaryDirectory(prefix="neuroformer-push-") as cache, \
            _hub_errors(f"reading the {repo_type} repository's {path}", repo_id, api, model_dir):
        local = hf_hub_download(repo_id, path, repo_type=repo_type, revision=info.sha, cache_dir=cache,
                                endpoint=api.endpoint, token=api.token)
        return Path(local).read_bytes().decode("utf-8", errors="replace")


def _foreign_card_text(text: str) -> bool:
    """Whether a ``README.md``'s text is not a card of this package: no mark (:func:`card_mark_state`)
    and no ``neuroformer`` / ``hf_neuroformer`` tag in its metadata (the test of :func:`_foreign_readme`
    for a README in a folder of a repository, whose metadata the Hub does not read)."""
    from huggingface_hub import RepoCard

    if card_mark_state(text) != "unmarked":
        return False
    try:
        tags = RepoCard(text, ignore_metadata_errors=True).data.to_dict().get("tags") or []
    except Exception:  # metadata that is no YAML mapping: not a card of this package
        tags = []
    return not {"neuroformer", "hf_neuroformer"} & set(tags if isinstance(tags, list) else [tags])


def _replaced_card_note(api, repo_id: str, repo_type: str, info, revision: Optional[str], model_dir,
                        path: str = "README.md") -> Optional[str]:
    """The line of :attr:`PushResult.edited_cards` for the ``README.md`` of the branch pushed to
    (``info``: its ``repo_info``; main's for a branch this push creates, which starts from it;
    ``path``: ``SUBFOLDER/README.md`` for a model pushed into a folder of the repository),
    or ``None`` when there is none or it is a card this package wrote, unedited
    (:func:`card_mark_state`). A model repository's README that is not a card of this package is
    said by :attr:`PushResult.replaced_readme` instead; a dataset repository's is said here."""
    if path not in {s.rfilename for s in (info.siblings or [])}:
        return None
    foreign = _foreign_readme(info) if path == "README.md" else None
    if foreign and repo_type == "model":
        return None
    text = _read_repo_text(api, repo_id, repo_type, info, path, model_dir)
    if foreign is None:
        foreign = _foreign_card_text(text)
        if foreign and repo_type == "model":
            return None
    state = "foreign" if foreign else card_mark_state(text)
    if state == "unedited":
        return None
    why = {"edited": "was edited after hf_neuroformer wrote it",
           "unmarked": "has no mark of an unedited hf_neuroformer card (edited, or written by a version before the "
                       "mark)",
           "foreign": "was not a dataset card of hf_neuroformer"}[state]
    branch = f" on branch {revision!r} (only there)" if revision not in (None, "main") else ""
    what = "model card" if repo_type == "model" else "dataset card"
    return (f"the {what} {path} of the {repo_type} repository {repo_id!r}{branch} {why}, and is replaced by "
            f"this push's card; it stays in the repository's history (commit {info.sha}): carry its edits over "
            "from there")


def _foreign_readme(info) -> bool:
    """Whether the repository (``repo_info`` of the branch pushed to) holds a ``README.md`` that is not
    a model card of this package (neither its metadata, ``info.card_data``, nor the repository's
    tags, which the Hub takes from it, have the ``neuroformer`` or ``hf_neuroformer`` tag): the push
    replaces it by the model card, which is said (:attr:`PushResult.replaced_readme`), as files it
    keeps are (``kept``)."""
    if "README.md" not in {s.rfilename for s in (info.siblings or [])}:
        return False
    tags = set(getattr(getattr(info, "card_data", None), "tags", None) or []) | set(getattr(info, "tags", None) or [])
    return not {"neuroformer", "hf_neuroformer"} & tags


def check_dataset_with_subfolder(subfolder: str, dataset_flag: str = "dataset_repo_id",
                                 subfolder_flag: str = "subfolder") -> None:
    """Refuse a windows dataset pushed with a model into a folder of its repository (``subfolder``
    not ``""``): the dataset goes to the root of its own repository, where the windows of another
    folder's model pushed to the same dataset repository would replace these (and its card would
    link the model repository without naming the folder).

    Raises:
        ValueError: naming both flags and what to do instead; nothing is uploaded.
    """
    if subfolder:
        raise ValueError(f"{dataset_flag} with {subfolder_flag} {subfolder!r}: a windows dataset goes to the root of "
                         "its repository, where the windows of a model in another folder pushed to the same dataset "
                         "repository would replace them, and windows datasets in folders are not supported yet; push "
                         "the model into its folder without its windows, and the windows with a push of the model to "
                         "the root of a repository of its own; nothing was uploaded")


def push_to_hub(
    model_dir,
    repo_id: str,
    *,
    private: bool = False,
    revision: Optional[str] = None,
    token=None,
    endpoint: Optional[str] = None,
    commit_message: Optional[str] = None,
    license: str = "other",
    data_description: Optional[str] = None,
    recording=None,
    dataset_repo_id: Optional[str] = None,
    num_shards: int = 1,
    replace_other: bool = False,
    subfolder: str = "",
    allow_stale_metrics: bool = False,
) -> PushResult:
    """Push a ``neuroformer train`` directory to a Hub model repository, optionally with its
    windows as a dataset repository.

    The checks that need no windows (the arguments and the recording first, before any request;
    then the model card's metadata as the Hub validates it, the token when windows are pushed, the
    branch and the existing repositories) run before anything is created; then the missing
    repositories and branches are created (the model's first), and only then is the windows
    dataset built and its card validated, so a push refused by any of these checks or at the
    creation of a repository (no right to create it: HTTP 401 / 403) builds and tokenises no
    window. A refusal of the dataset card (or an error or interruption while the windows are
    built) deletes the repositories and branches this push created, as a failed upload does.

    Args:
        model_dir: directory written by ``neuroformer train`` (``config.json``,
            ``model.safetensors`` or weights saved in shards with their index, which go up as one
            ``model.safetensors``; tokenizer files; ``metrics.json`` etc. when present).
        repo_id: ``NAMESPACE/NAME`` of the model repository (created if missing).
        private: create the repositories as private; an existing public repository is refused
            (``ValueError``, before any upload), since its visibility would not change.
        revision: branch to commit to (created from ``main`` if missing); ``None`` = ``main``; a
            commit id or tag of the repository is refused (``ValueError``, before any write).
            The windows dataset goes to the same branch of the dataset repository, so that a
            model and its windows on one branch stay together.
        token: Hub token; ``None`` uses the saved login / ``HF_TOKEN`` (checked first:
            :func:`check_token`). ``False`` (send none) is refused (``ValueError``, before any
            request): the Hub accepts no write without a token.
        endpoint: Hub URL; ``None`` uses ``HF_ENDPOINT`` (read when huggingface_hub is imported).
        commit_message: the model commit's message; ``None``: :data:`DEFAULT_COMMIT_MESSAGE` (an
            empty or whitespace-only one is refused: :func:`check_commit_message`).
        license: Hub licence id for the cards (default ``"other"``; use the recording's). Its
            shape is checked first (:func:`check_license`); then the Hub validates the cards'
            metadata (``POST /api/validate-yaml``, the check ``huggingface_hub.RepoCard.validate``
            runs), the model card's before anything is created, the windows dataset card's once
            its windows are built (after the repositories are created; refused there, the push
            deletes those it created), so an id the Hub does not know is refused with its message
            and nothing is committed.
        data_description: the recording's provenance, for the model card and the dataset card
            (one list item in each: its lines are joined by ``<br>``).
        recording: the :class:`~hf_neuroformer.recording.SpikeRecording` the model was trained
            on; with ``dataset_repo_id``, its windows (the model's own split plan) are pushed.
        dataset_repo_id: ``NAMESPACE/NAME`` of the dataset repository.
        num_shards: Parquet shards per split (>= 1).
        replace_other: push even into a repository that holds something else (a model whose
            ``config.json`` is another ``model_type``, weight files without a ``config.json``, a
            dataset repository without this package's ``manifest.json``); refused by default
            (``ValueError``, before any upload), since the push would replace it.
        subfolder: the folder of the model repository to push the model into (``NAME`` or
            ``NAME/NAME...``, :func:`check_subfolder`); ``""`` (default): its root. The staged files
            name the folder in their ``auto_map`` (:func:`save_for_hub`), so the model loads with
            ``from_pretrained(repo_id, subfolder=..., trust_remote_code=True)``. Everything this push
            writes, checks and cleans up lies in that folder: its model card is
            ``SUBFOLDER/README.md`` (its loading code passes ``subfolder=``); an earlier push's run files
            are deleted from that folder only; another model is looked for there only (a model in
            another folder, or at the root, is left as it is and is no reason to refuse); an edited
            or foreign ``SUBFOLDER/README.md`` is said as the root's is (``edited_cards``,
            ``replaced_readme``), and ``kept`` lists the files of that folder only. The repository's
            root ``README.md`` is left as it is, except where the branch has none: then this push writes
            a short card there (the Hub reads a repository's metadata and page from the root's README
            only) with the package's tags and ``license``, naming the folder this push fills and saying
            that each folder holds its own card; later pushes into other folders leave it untouched
            (edit it to list them), a push to the root replaces it by a model card.
            A windows dataset (``dataset_repo_id``) with a ``subfolder`` is refused
            (:func:`check_dataset_with_subfolder`): it would go to its repository's root, shared
            by every folder's model pushed to it.
        allow_stale_metrics: push even a folder whose ``metrics.json`` scores other weights than its
            own (``weights_tensors_sha256``, :func:`check_metrics_weights`); its card then says the results are of
            earlier weights. Refused by default (``ValueError``, by :func:`save_for_hub`, before any request).

    Returns:
        :class:`PushResult` (``kept``: files already in the repository, or in ``subfolder``, that
        this push left there; ``files``: the paths written, from the repository's root).

    Raises:
        FileNotFoundError: ``model_dir`` is not a model directory.
        ValueError: a model directory holding the record of a run that has not saved its model
            (:func:`check_unfinished_run`: its model files are the earlier model's), a windows dataset
            with ``subfolder`` (:func:`check_dataset_with_subfolder`),
            a malformed repo id, ``subfolder``, branch name (``revision``), licence id, token (or
            ``token=False``) or commit message, cards whose
            metadata the Hub refuses,
            ``private`` with an existing public repository, a repository holding another model
            or dataset (without ``replace_other``),
            ``recording`` without ``dataset_repo_id`` (or the
            reverse), ``num_shards`` < 1, a windows dataset asked for a model that reads
            modalities or for a fine-tuned decoder, a recording that does not cover the model's splits, tokenizer files
            that do not belong to the model (another vocabulary size or window settings), or a weights file that
            lacks some of the model's weights (they would go up initialised at random).
        HubPushError: the server refused or could not be reached (step, status and message).
            A repository or branch that this push created and that holds no commit when it fails
            (or is interrupted: ``KeyboardInterrupt``, which then carries the note, see
            :func:`add_note`) is deleted again (the message says so), so that no empty repository
            is left behind.
    """
    src = check_model_dir(model_dir)
    check_unfinished_run(src)
    check_repo_id(repo_id, "repo_id")
    check_revision(revision, "revision")
    check_subfolder(subfolder, "subfolder (CLI: --subfolder)")
    check_license(license, "license (CLI: --license)")
    check_token(token, "token")
    if token is False:
        # refused by the Hub at the first write (creating a repository or committing), after the staging and,
        # with windows, after every window of the recording was built and tokenised
        raise ValueError("token: False sends no Hub token, and the Hub refuses every write (creating a repository, "
                         "committing) without one, so this push could not succeed; nothing was built or sent. Pass "
                         "a token, or None for the saved login (`hf auth login`) or HF_TOKEN")
    check_commit_message(commit_message, "commit_message (CLI: --commit-message)")
    if (recording is None) != (dataset_repo_id is None):
        raise ValueError("recording and dataset_repo_id: give both to push the windows dataset, or neither")
    if dataset_repo_id is not None:
        check_repo_id(dataset_repo_id, "dataset_repo_id")
        check_dataset_with_subfolder(subfolder, "dataset_repo_id (CLI: --dataset-repo-id)",
                                     "subfolder (CLI: --subfolder)")
    if not isinstance(num_shards, int) or isinstance(num_shards, bool) or num_shards < 1:
        raise ValueError(f"num_shards: expected an integer >= 1, got {num_shards!r}")
    if dataset_repo_id is not None:
        from types import SimpleNamespace

        from .generation import is_decoder_config

        raw = json.loads((src / "config.json").read_text())
        if is_decoder_config(SimpleNamespace(**raw)):
            # the windows written are the pretraining windows of splits.json, while a decoder trains on
            # the windows its behaviour targets cover (with their labels): the dataset card would be false
            raise ValueError(f"dataset_repo_id (CLI: --data / --dataset-repo-id): {str(src)!r} is a fine-tuned decoder "
                             "(config.json decoding_targets), and its windows (with behaviour targets) cannot be pushed "
                             "as a dataset yet; push the decoder without its windows, and the windows with the "
                             "pretrained model it was fine-tuned from")
        modalities = raw.get("modalities") or []
        if modalities:
            names = ", ".join(str(m.get("name", "?")) if isinstance(m, dict) else str(m) for m in modalities)
            raise ValueError(f"dataset_repo_id (CLI: --data / --dataset-repo-id): {str(src)!r} reads modalities "
                             f"({names}), and windows with modality inputs cannot be pushed as a dataset yet; push the "
                             "model without its windows dataset")
        # the recording's checks, before any request (its windows are built only after the Hub's checks)
        checked = check_window_recording(src, recording)
    api = _api(endpoint, token)

    dataset_result = (None, None)
    dataset_unchanged = False
    dataset_windows: Dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="neuroformer-push-") as tmp:
        # the repository's layout: the model's files in stage (its subfolder), uploaded from stage_root
        stage_root = Path(tmp) / "model"
        stage = stage_root / subfolder if subfolder else stage_root
        stage.mkdir(parents=True)
        prefix = f"{subfolder}/" if subfolder else ""
        redacted: List[str] = []
        metrics = save_for_hub(src, stage, redacted, subfolder=subfolder, allow_stale_metrics=allow_stale_metrics)
        card = build_model_card(stage, repo_id, metrics, license=license,
                                # save_for_hub refused stale metrics unless allowed: only then read the weights again
                                stale_metrics=allow_stale_metrics and metrics_weights_state(src, metrics) == "stale",
                                datasets=[dataset_repo_id] if dataset_repo_id else None,
                                data_description=data_description, revision=revision, hub_url=api.endpoint,
                                subfolder=subfolder)
        save_card(card, stage / "README.md")  # marked: a later push tells an edited card (PushResult.edited_cards)
        # Order: every check that needs no windows comes before the windows dataset is built (it
        # loads the model and tokenises every window of the recording: most of a push's local work),
        # so that a refused push says what to fix at once. The windows were built first, and a push
        # refused for its licence, token, branch or repository still built and tokenised them all.
        # First the Hub's own check of the model card's metadata (licence id, model-index), before
        # anything is created: an unknown licence must not fail the model commit after the dataset's
        with _hub_errors("validating the model card", repo_id, api, src):
            _validate_card(api, (stage / "README.md").read_text(), "model")
        if dataset_repo_id is not None:
            # the token (a missing or invalid one is otherwise found only when a repository is created
            # or the first commit is sent); a push without windows finds it as soon as it writes
            with _hub_errors("checking the Hub token", repo_id, api, src):
                api.whoami()
        # Then every check (a commit id or tag as the branch, visibility, another model or dataset
        # there) on the repositories and branches that exist, before anything is created: a push
        # refused for its dataset repository left a new model repository (or a new branch of an
        # existing one) behind; then create what is missing, the model repository first, so that a
        # refusal there (no rights, bad name: 401 / 403) stops the push before anything is committed
        # and before the windows are built (they were built first, and a push refused there paid for
        # them all); then the windows dataset is built and its card validated (a refusal there, or an
        # interruption while building, deletes what this push created, as below); then commit the windows dataset;
        # then the model, last, so that a model card never links to windows that failed to upload.
        # If the model commit fails after the dataset commit, the error says the dataset went up.
        # A missing branch is checked on main (it is made from main).
        # A repository or branch this push created and left without a commit (the upload failed, was
        # refused or interrupted) is deleted again: left there, it was a new empty repository, private
        # with --private, that a retry without --private then filled, and the model stayed private
        # without a word
        targets = [(repo_id, "model")] + ([(dataset_repo_id, "dataset")] if dataset_repo_id is not None else [])
        found = {}
        for rid, rtype in targets:
            found[rtype] = _branch_info(api, rid, rtype, revision, src, missing_ok=True)
            if found[rtype][0] is not None:
                _check_target(api, rid, rtype, revision, *found[rtype], private, replace_other, src, subfolder)
        if subfolder and "README.md" not in {s.rfilename for s in ((found["model"][0] and found["model"][0].siblings)
                                                                    or [])}:
            # the Hub shows the root's README only: a repository of models in folders had no page and no tags
            save_card(_folder_index_card(repo_id, subfolder, revision, license), stage_root / "README.md")
            with _hub_errors("validating the repository's root card", repo_id, api, src):
                _validate_card(api, (stage_root / "README.md").read_text(), "model")
        files = sorted(p.relative_to(stage_root).as_posix() for p in stage_root.rglob("*") if p.is_file())
        created: List[tuple] = []
        try:
            for rid, rtype in targets:
                repo_info, branch_exists = found[rtype]
                if repo_info is None:
                    with _hub_errors(f"creating the {rtype} repository", rid, api, src):
                        new_repo = _create_repo(api, rid, rtype, private)
                    if new_repo:  # recorded at once: a Ctrl-C or error while its head is read left it there, empty
                        created.append((rid, rtype, None, None))
                    repo_info, branch_exists = _branch_info(api, rid, rtype, revision, src)
                    if new_repo:
                        created[-1] = (rid, rtype, repo_info.sha, None)
                    else:  # made by someone else since it was read
                        _check_target(api, rid, rtype, revision, repo_info, branch_exists, private, replace_other, src,
                                      subfolder)
                if not branch_exists:
                    with _hub_errors(f"creating branch {revision!r}", rid, api, src):
                        api.create_branch(rid, branch=revision, repo_type=rtype, exist_ok=True)
                    if not any(c[0] == rid and c[1] == rtype for c in created):
                        created.append((rid, rtype, repo_info.sha, revision))
                found[rtype] = (repo_info, True)
            if dataset_repo_id is not None:
                dstage = Path(tmp) / "dataset"
                dstage.mkdir()
                dataset_windows = write_window_dataset(
                    src, recording, dstage, num_shards=num_shards, repo_id=dataset_repo_id,
                    license=license, model_repo_id=repo_id, data_description=data_description, revision=revision,
                    hub_url=api.endpoint, checked=checked)
                redacted += [f"dataset {line}" for line in redact_local_paths(dstage)]
                with _hub_errors("validating the dataset card", dataset_repo_id, api, src):
                    _validate_card(api, (dstage / "README.md").read_text(), "dataset")
            head_before = found["model"][0].sha  # a new branch starts at main's head
            model_info = found["model"][0]
            if not subfolder:
                replaced_readme = head_before if _foreign_readme(model_info) else None
            else:  # the folder's README (the Hub reads no metadata of it: its text is read)
                replaced_readme = head_before if (f"{prefix}README.md" in {s.rfilename for s in (model_info.siblings or [])}
                                                  and _foreign_card_text(_read_repo_text(
                                                      api, repo_id, "model", model_info, f"{prefix}README.md", src))) \
                    else None
            # a card the user edited on the Hub since the last push (or the dataset's) was replaced without a word
            edited_cards = [note for rid, rtype in targets if (note := _replaced_card_note(
                api, rid, rtype, found[rtype][0], revision, src,
                path=f"{prefix}README.md" if rtype == "model" else "README.md")) is not None]
            if dataset_repo_id is not None:
                dataset_info = found["dataset"][0]
                with _hub_errors("uploading the windows dataset", dataset_repo_id, api, src):
                    # shards of an earlier push (another --num-shards) would match data/<split>-*.parquet
                    # and load twice: delete every old shard that this push does not overwrite
                    dinfo = api.upload_folder(folder_path=dstage, repo_id=dataset_repo_id, repo_type="dataset",
                                              revision=revision, commit_message=f"Windows of {repo_id} (hf_neuroformer)",
                                              delete_patterns=["data/*.parquet"])
                dataset_result = (dataset_repo_id, dinfo.commit_url)
                dataset_unchanged = dinfo.oid == dataset_info.sha  # a new branch starts at main's head
            already = (f"the windows dataset was already committed to {dataset_repo_id!r} ({dataset_result[1]}); "
                       "push again to add the model" if dataset_result[0] else "")
            with _hub_errors("uploading the model", repo_id, api, src, already=already):
                # a run file of an earlier push that this model directory lacks would describe another
                # model (and an earlier push's generation_config.json does not fit a decoder without
                # next-spike heads; an earlier push's processor_config.json, another model's split_mode and
                # modalities): delete the ones this push does not overwrite
                # (in the folder pushed into only: the patterns name paths from the root)
                info = api.upload_folder(folder_path=stage_root, repo_id=repo_id, revision=revision,
                                         commit_message=commit_message or DEFAULT_COMMIT_MESSAGE,
                                         delete_patterns=[prefix + name for name in
                                                          (*RUN_FILES, "processor_config.json", GENERATION_CONFIG)])
        except (Exception, KeyboardInterrupt) as err:  # Ctrl-C during the upload left the new repository too
            note = _delete_created(api, [c for c in created if not (dataset_result[0] and c[1] == "dataset")])
            if note and type(err) in (HubPushError, ValueError):  # said where the CLI prints the message
                raise type(err)(f"{err}; {note}") from err.__cause__
            if dataset_result[0] and not isinstance(err, HubPushError):  # a HubPushError of the model's upload says so
                note = "; ".join(n for n in (f"the windows dataset was already committed to {dataset_result[0]!r} "
                                             f"({dataset_result[1]})", note) if n)
            if note:
                add_note(err, note)
            raise
        with _hub_errors("listing the model repository", repo_id, api, src,
                         already=f"the model was committed ({info.commit_url})"):
            kept = sorted(f for f in set(api.list_repo_files(repo_id, revision=revision)) - set(files) - {".gitattributes"}
                          if f.startswith(prefix))
    return PushResult(repo_id=repo_id, commit_url=info.commit_url, commit_oid=info.oid, files=files,
                      dataset_repo_id=dataset_result[0], dataset_commit_url=dataset_result[1],
                      dataset_unchanged=dataset_unchanged, dataset_windows=dataset_windows,
                      unchanged=info.oid == head_before, redacted=redacted, kept=kept,
                      replaced_readme=replaced_readme, revision=revision, edited_cards=edited_cards,
                      subfolder=subfolder, kept_model_folders=model_folders_of(kept, subfolder))


def _folder_index_card(repo_id: str, subfolder: str, revision: Optional[str], license: str):
    """The root ``README.md`` that :func:`push_to_hub` writes into a repository (branch) without one
    when it pushes a model into ``subfolder``: the package's tags and ``library_name``, ``license``,
    no ``model-index`` (the metrics are the folder's card's), and the folder and how to load it."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(library_name=MODEL_CARD_LIBRARY_NAME, license=license, tags=list(MODEL_CARD_TAGS))
    name = repo_id.split("/")[-1]
    body = (f"# {name}\n\n"
            "Neuroformer models (the `hf_neuroformer` package) in folders of this repository; each folder holds a "
            "model and its own model card (`FOLDER/README.md`), and loads with `subfolder=`.\n\n"
            f"- `{subfolder}/`: `from_pretrained({load_args(repo_id, revision, quote=chr(34), subfolder=subfolder)})`, "
            f"card: [{subfolder}/README.md]({subfolder}/README.md).\n\n"
            "hf_neuroformer wrote this file when it pushed the first model into a folder of a repository without a "
            "README.md; pushes into other folders leave it as it is (add them here).\n")
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def dataset_size_category(n: int) -> str:
    """The Hub's ``size_categories`` tag for a dataset of ``n`` rows (windows), from its list
    ``"n<1K"``, ``"1K<n<10K"``, ... ``"100B<n<1T"``, ``"n>1T"``. Every dataset of a million
    windows and more was tagged ``"100K<n<1M"``."""
    names = ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B", "1B<n<10B",
             "10B<n<100B", "100B<n<1T"]
    k = 0
    while k < len(names) and n >= 1000 * 10 ** k:
        k += 1
    return names[k] if k < len(names) else "n>1T"


def check_window_recording(model_dir, recording):
    """The checks of ``recording`` before :func:`write_window_dataset` builds the model's windows of
    it (no window is built or tokenised here; :func:`push_to_hub` runs them before any request).

    Returns:
        ``(model, tokenizer, split_plan)`` of
        :func:`~hf_neuroformer.generation.load_pretrained` (``model_dir``).

    Raises:
        FileNotFoundError: the model directory has no ``splits.json``.
        ValueError: the recording's units are not the model's (another session), it does not
            cover the model's splits, or it has other spikes in them than the model's record of
            its training spikes (``split_spikes`` in ``metrics.json``).
    """
    from .generation import check_recording_units, compare_with_training_spikes, load_pretrained, units_absent
    from .windows import SPLITS, check_split_in_recording

    model, tokenizer, plan = load_pretrained(model_dir)
    check_recording_units(tokenizer, recording, flag="recording")  # the spikes are compared below, refused
    for split in SPLITS:
        check_split_in_recording(plan, split, recording)
    # a card saying "the model's windows" over the spikes of another (re-simulated, re-exported) file
    # would be a false statement in public: refused, where the other commands only warn
    same = compare_with_training_spikes(recording, model_dir)
    if same["status"] == "other spikes":
        # "it has the units of the model" followed the warning that it holds only some of them
        missing = units_absent(tokenizer, recording)
        units = (f"it holds {len(tokenizer.recording_unit_tokens(recording))} of the model {str(model_dir)!r}'s units "
                 f"of its session, not all {len(tokenizer.recording_unit_tokens(recording)) + len(missing)}, and"
                 if missing else f"it has the units of the model {str(model_dir)!r} but")
        raise ValueError(
            f"recording: {units} other spikes in its "
            f"{' / '.join(same['splits_differing'])} split than the model was trained on (re-simulated or "
            "re-exported?); pass the recording the model was trained on, whose windows the dataset card describes"
        )
    return model, tokenizer, plan


def write_window_dataset(model_dir, recording, out_dir, *, num_shards: int = 1, repo_id: str = "",
                         license: str = "other", model_repo_id: Optional[str] = None,
                         data_description: Optional[str] = None, revision: Optional[str] = None,
                         hub_url: str = "https://huggingface.co", checked=None) -> Dict[str, int]:
    """Write the model's train / validation / test windows of ``recording`` as a
    :func:`~hf_neuroformer.windows.prepare_windows` directory (Parquet shards
    ``data/<split>-<i>-of-<n>.parquet``, ``manifest.json``, the config, tokenizer and
    ``splits.json``) plus a dataset card whose ``configs`` metadata maps the shards to splits,
    into ``out_dir`` (replaced). A clone of the dataset repository is therefore also a prepared
    directory for streamed training. ``revision``: the branch it is pushed to; the card's
    loading code then passes ``revision=`` (``None`` or ``"main"``: not needed).

    The windows are those of the model's ``splits.json`` with its config and tokenizer, i.e.
    exactly what training read (columns of :func:`~hf_neuroformer.windows.build_window_datasets`).
    ``checked``: the ``(model, tokenizer, split_plan)`` that :func:`check_window_recording` returned
    for this ``model_dir`` and ``recording`` (``None``: checked here).

    Returns:
        split -> number of windows.

    Raises:
        FileNotFoundError: the model directory has no ``splits.json``.
        ValueError: the recording's units are not the model's (another session), it does not
            cover the model's splits, or it has other spikes in them than the model's record of
            its training spikes (``split_spikes`` in ``metrics.json``).
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    from .windows import WINDOW_CARD_TAG, prepare_windows, window_features

    model, tokenizer, plan = checked if checked is not None else check_window_recording(model_dir, recording)
    out = Path(out_dir)
    manifest = prepare_windows(recording, out, model.config, tokenizer, plan, num_shards=num_shards,
                               overwrite=True, progress=False)
    counts = {split: entry["n_windows"] for split, entry in manifest["splits"].items()}
    size = sum(counts.values())
    size_category = dataset_size_category(size)
    card_data = DatasetCardData(
        license=license,
        tags=["neuroscience", "spikes", "neuroformer", WINDOW_CARD_TAG],  # prepare --overwrite knows the card by it
        size_categories=size_category,
        # a split without windows is left out: its one shard holds no row, and load_dataset of the repository
        # then failed on it ('Instruction "test" corresponds to no data!') or gave no split at all
        configs=[{"config_name": "default",
                  "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in counts if counts[s]]}],
    )
    features = window_features()
    cfg = model.config
    if plan.mode == "trials":  # no gap there: trials of different splits may abut (split_gap is ignored)
        splits_are = ("splits are whole trials (overlapping trials in one split); each window lies inside its "
                      "trial and its past is clipped at the trial's start, so no window reads another trial's "
                      "spikes, while trials of different splits may lie closer than the past window")
    else:
        splits_are = (f"splits are contiguous time blocks, with a gap of {cfg.split_gap:g} s (at least the past "
                      "window) between splits")
    body = "\n".join([
        f"# {repo_id.split('/')[-1] or 'Neuroformer windows'}",
        "",
        "Tokenized spike windows for Neuroformer next-spike pretraining, written by `hf_neuroformer`"
        + (f" for the model [{model_repo_id}]({_tree_url(hub_url.rstrip('/') + '/' + model_repo_id, revision)})"
           + (f" (branch {_code_span(revision)})" if revision not in (None, "main") else "") if model_repo_id else "")
        + ".",
        "",
        f"- Recording: `{recording!r}`.",
        *_provenance_lines(data_description),
        f"- Windows per split: {', '.join(f'{s} {n}' for s, n in counts.items())} (the model's `splits.json`; "
        f"{splits_are}"
        + (f"; {' and '.join(s for s, n in counts.items() if not n)} (no windows) is not a split of the dataset, "
           "its empty shard is kept for `load_prepared`" if not all(counts.values()) else "") + ").",
        f"- Current window {model.config.current_window} s, past window {model.config.past_window} s, "
        f"dt bins of {model.config.dt_resolution} s.",
        "- Columns: " + ", ".join(f"`{k}` ({v})" for k, v in features.items()) + ".",
        "  `input_ids` / `past_input_ids` are unit tokens of the model's tokenizer; `dt_ids` / `past_dt_ids`",
        "  are dt bin indices; `window_start` is in seconds.",
        "- Row order: validation and test in time order; the train windows are dealt to the train shards in",
        "  turn (window k to shard k mod n, so that each shard spans the split for a streamed shuffle), so",
        "  with several shards `load_dataset` gives them shard by shard: sort by `window_start` for time order.",
        "- `manifest.json`, `config.json`, the tokenizer files and `splits.json` make a clone of this",
        "  repository a `neuroformer prepare` directory (`hf_neuroformer.windows.load_prepared`).",
        "",
        "```python",
        "from datasets import load_dataset",
        f"windows = load_dataset({_py_str(repo_id)}"
        + (f", revision={_py_str(revision)}" if revision not in (None, "main") else "") + ")",
        "```",
    ])
    save_card(DatasetCard.from_template(card_data, template_str="---\n{{ card_data }}\n---\n\n" + body), out / "README.md")
    return counts


__all__ = [
    "GENERATION_CONFIG", "CARD_FIGURES", "RUN_FILES", "TEMPLATE_PATH", "METRIC_NAMES", "BASELINE_METRICS",
    "UNPUBLISHED_DATASET_TYPE", "TASK_TYPE", "MODEL_CARD_LIBRARY_NAME", "MODEL_CARD_TAGS", "TASK_NAME",
    "DECODING_TASK_TYPE", "DECODING_METRIC_NAMES", "METRIC_DIRECTIONS", "DECODING_METRIC_DIRECTIONS",
    "metric_direction", "truncation_line", "PRETRAINING_DESCRIPTION", "PRETRAINING_RESULTS_NOTE",
    "GENERATION_NOTE", "NO_HEADS_NOTE", "HubPushError", "PushResult", "model_folders_of", "kept_outside_model_folders", "check_license", "check_repo_id", "check_subfolder", "check_token",
    "check_revision", "DEFAULT_COMMIT_MESSAGE", "check_commit_message", "check_model_dir", "remote_code_registered",
    "has_next_spike_heads", "save_for_hub", "WEIGHTS_SHA256_KEY", "metrics_weights_state", "check_metrics_weights", "STALE_METRICS_NOTE", "RUN_RECORD_TYPES", "check_run_records", "check_unfinished_run", "redact_local_paths",
    "model_class", "auto_class_name", "generation_defaults", "card_metrics", "is_reference_metric",
    "model_index_metrics", "undefined_card_metrics", "build_model_card", "load_args", "eval_results_to_metrics",
    "WEIGHT_SUFFIXES", "add_note", "CARD_MARK", "mark_card", "card_mark_state", "save_card", "push_to_hub",
    "dataset_size_category", "check_window_recording", "write_window_dataset", "check_dataset_with_subfolder",
]
