"""The fields of a :class:`~hf_neuroformer.recording.SpikeRecording` beyond its spikes and units, as
``.npz`` members: what :func:`~hf_neuroformer.io.write_npz` writes and :func:`~hf_neuroformer.io.read_npz`
reads back.

Every member is a plain ``.npy`` array (the file is read with ``allow_pickle=False``). Names of
entries (epochs, trial columns, behaviour series, event streams) are kept in ``*_names`` text
arrays, in the recording's order, and their arrays under numbered keys (``behaviour_0_values``),
so that any name (``""``, ``"a/b"``, unicode) is kept as it is. Text (``str``) arrays are numpy
``<U`` arrays; values that are not numbers, booleans or text alone (an object column mixing
booleans, numbers, text and ``None``) are stored as one JSON text per value. Every key is optional:
a file without them (written by an older version, or by :func:`numpy.savez`) reads as a recording
without those fields.

================================  ===================================================================
key                               shape, dtype, unit
================================  ===================================================================
``time_support``                  ``(n, 2)`` float64, ``[start, stop)`` s
``epoch_names``                   ``(n_epochs,)`` str, with ``epoch_bounds`` ``(n_epochs, 2)`` float64 s
``epoch_intervals_names``         ``(k,)`` str (each an epoch name); ``epoch_intervals_<i>``
                                  ``(n_i, 2)`` float64 s, the rows of the ``i``-th
``trials``                        ``(n_trials, 2)`` float64, ``[start, stop)`` s
``trial_info_names``              ``(k,)`` str; ``trial_info_json`` ``(k,)`` bool; ``trial_info_<i>``
                                  the ``i``-th column as held (numeric, bool or str, one row per
                                  trial, any trailing shape), or ``(n_trials,)`` str of JSON texts
                                  where ``trial_info_json[i]``
``behaviour_names``               ``(k,)`` str; ``behaviour_units`` ``(k,)`` str (``""`` for none);
                                  ``behaviour_boolean`` ``(k,)`` bool; ``behaviour_<i>_timestamps``
                                  ``(n,)`` float64 s; ``behaviour_<i>_values`` ``(n,)`` or
                                  ``(n, n_dims)`` float64 (NaN kept)
``event_names``                   ``(k,)`` str; ``event_descriptions`` ``(k,)`` str;
                                  ``event_label_kinds`` ``(k,)`` str, ``"none"`` (unlabelled),
                                  ``"array"`` or ``"json"``; ``event_<i>_times`` ``(n,)`` float64 s;
                                  ``event_<i>_labels`` ``(n,)`` int / float / bool labels, or str JSON
                                  texts (``"json"``: text labels, and labels with ``None`` / NaN gaps)
``stimulus_fields``               ``(k,)`` str: the :class:`~hf_neuroformer.recording.Stimulus`
                                  attributes that are set (not ``None``), each stored as
                                  ``stimulus_<attribute>``: ``frames`` ``(n, H, W)`` as held,
                                  ``frame_times`` ``(n,)`` float64 s, ``ids`` ``(n,)`` as held,
                                  ``intervals`` ``(n, 2)`` float64 s, ``names`` ``(k,)`` str,
                                  ``description`` ``()`` str, ``field_of_view`` ``(2,)`` float64
                                  degrees of visual angle (height, width)
``session_info``                  ``()`` str: JSON object, name -> one number, bool or text
================================  ===================================================================
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from ..recording import (BehaviourSeries, EventSeries, RecordingValidationError, SpikeRecording, Stimulus,
                         widen_stored_times)

__all__ = ["DROPPABLE_FIELDS", "npz_members_of", "fields_from_npz", "npz_field_keys", "checked_drop", "npz_text_array",
           "READ_NPZ_SPIKE_KEYS", "unread_npz_keys_hint"]

#: the :class:`SpikeRecording` fields :func:`~hf_neuroformer.io.write_npz` may be told to leave out
#: (``drop=``); the spikes, units, time domain and session are always written
DROPPABLE_FIELDS = ("time_support", "epochs", "epoch_intervals", "trials", "trial_info", "behaviour", "stimulus",
                    "events", "session_info")

_STIMULUS_ATTRIBUTES = ("frames", "frame_times", "ids", "intervals", "names", "description", "field_of_view")
_STATIC_KEYS = ("time_support", "epoch_names", "epoch_bounds", "epoch_intervals_names", "trials", "trial_info_names",
                "trial_info_json", "behaviour_names", "behaviour_units", "behaviour_boolean", "event_names",
                "event_descriptions", "event_label_kinds", "stimulus_fields", "session_info")


def checked_drop(drop, recording: SpikeRecording) -> Tuple[str, ...]:
    """``drop`` (one field name, or an iterable of them) as a tuple of names from
    :data:`DROPPABLE_FIELDS`.

    Raises:
        ValueError: naming ``drop``: a name that is not droppable (lists those that are); ``"trials"``
            without ``"trial_info"`` while the recording has trial columns, or ``"epochs"`` without
            ``"epoch_intervals"`` while it has epoch intervals (they cannot be read back without them).
    """
    names = (drop,) if isinstance(drop, str) else tuple(drop or ())
    for name in names:
        if name not in DROPPABLE_FIELDS:
            raise ValueError(f"drop: expected names of fields to leave out of the file, from {list(DROPPABLE_FIELDS)}, "
                             f"got {name!r}")
    for field, needs in (("trials", "trial_info"), ("epochs", "epoch_intervals")):
        if field in names and needs not in names and getattr(recording, needs):
            raise ValueError(f"drop: {field!r} without {needs!r}, but the recording has {needs} "
                             f"({sorted(getattr(recording, needs))}), which cannot be read back without its {field}; "
                             f"add {needs!r} to drop")
    return names


def npz_text_array(values, what: str) -> np.ndarray:
    """``values`` (each made text with ``str``) as a 1-D ``<U`` array (``(0,)`` ``<U1`` when empty).

    Raises:
        RecordingValidationError: naming ``what`` and the index, for a value that numpy's text arrays
            would change (one ending in NUL characters, which they strip).
    """
    texts = [str(v) for v in values]
    arr = np.asarray(texts, dtype=str) if texts else np.zeros(0, dtype="<U1")
    changed = [i for i, (a, b) in enumerate(zip(arr.tolist(), texts)) if a != b]
    if changed:
        i = changed[0]
        raise RecordingValidationError(f"{what}[{i}]: {texts[i]!r} ends with NUL characters, which a .npz text "
                                       "array cannot hold (numpy strips them); remove them first")
    return arr


def _json_texts(values, what: str, fix: str) -> Optional[np.ndarray]:
    """One JSON text per value of a 1-D object array (``None``, bools, numbers, text kept apart), or
    ``None`` (with ``fix`` in the error) when a value is none of those."""
    out = []
    for i, v in enumerate(np.asarray(values, dtype=object).reshape(-1)):
        if isinstance(v, np.generic):
            v = v.item()
        if not (v is None or isinstance(v, (bool, int, float, str))):
            raise RecordingValidationError(
                f"{what}[{i}]: expected numbers, booleans, text or None, got {type(v).__name__} {v!r:.60}, which a "
                f".npz file cannot hold without pickling; {fix}")
        out.append(json.dumps(v))
    return npz_text_array(out, what)


def npz_members_of(recording: SpikeRecording, drop: Iterable[str] = ()) -> Dict[str, np.ndarray]:
    """The ``.npz`` members (see the module docstring) of ``recording``'s time support, epochs, epoch
    intervals, trials, trial columns, behaviour, events, stimulus and session values, leaving out
    the fields named in ``drop`` (already checked, :func:`checked_drop`) and those the recording
    does not hold (``None`` / empty).

    Raises:
        RecordingValidationError: a value a ``.npz`` file cannot hold without pickling (a ``trial_info``
            column or event labels holding objects other than numbers, booleans, text and ``None``; a
            name ending in NUL characters), naming the field, the entry and the index, and how to leave
            it out (``drop=``).
    """
    rec, out = recording, {}

    def fix(field: str) -> str:
        return f"convert it, or pass drop=({field!r},) to write the file without {field}"

    if rec.time_support is not None and "time_support" not in drop:
        out["time_support"] = np.asarray(rec.time_support, dtype=np.float64).reshape(-1, 2)
    if rec.epochs and "epochs" not in drop:
        out["epoch_names"] = npz_text_array(rec.epochs, "epochs (names)")
        out["epoch_bounds"] = np.asarray(list(rec.epochs.values()), dtype=np.float64).reshape(-1, 2)
    if rec.epoch_intervals and "epoch_intervals" not in drop:
        out["epoch_intervals_names"] = npz_text_array(rec.epoch_intervals, "epoch_intervals (names)")
        for i, rows in enumerate(rec.epoch_intervals.values()):
            out[f"epoch_intervals_{i}"] = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    if rec.trials is not None and "trials" not in drop:
        out["trials"] = np.asarray(rec.trials, dtype=np.float64).reshape(-1, 2)
    if rec.trial_info and "trial_info" not in drop:
        out["trial_info_names"] = npz_text_array(rec.trial_info, "trial_info (names)")
        as_json = []
        for i, (name, col) in enumerate(rec.trial_info.items()):
            arr = np.asarray(col)
            if arr.dtype.kind in "US" and isinstance(col, (list, tuple)) and not all(isinstance(v, str) for v in col):
                arr = np.asarray(col, dtype=object)  # ["a", 1]: numpy made the 1 the text '1'
            as_json.append(arr.dtype == object)
            if arr.dtype == object and arr.ndim != 1:
                raise RecordingValidationError(
                    f"trial_info[{name!r}]: expected a 1-D column of objects (or numbers / text of any shape), got an "
                    f"object array of shape {arr.shape}, which a .npz file cannot hold without pickling; {fix('trial_info')}")
            out[f"trial_info_{i}"] = (_json_texts(arr, f"trial_info[{name!r}]", fix("trial_info"))
                                      if arr.dtype == object else arr)
        out["trial_info_json"] = np.asarray(as_json, dtype=bool)
    if rec.behaviour and "behaviour" not in drop:
        out["behaviour_names"] = npz_text_array(rec.behaviour, "behaviour (names)")
        out["behaviour_units"] = npz_text_array([s.unit for s in rec.behaviour.values()], "behaviour (units)")
        out["behaviour_boolean"] = np.asarray([s.boolean for s in rec.behaviour.values()], dtype=bool)
        for i, s in enumerate(rec.behaviour.values()):
            out[f"behaviour_{i}_timestamps"] = np.asarray(s.timestamps, dtype=np.float64)
            out[f"behaviour_{i}_values"] = np.asarray(s.values, dtype=np.float64)
    if rec.events and "events" not in drop:
        out["event_names"] = npz_text_array(rec.events, "events (names)")
        out["event_descriptions"] = npz_text_array([ev.description for ev in rec.events.values()], "events (descriptions)")
        kinds = []
        for i, (name, ev) in enumerate(rec.events.items()):
            out[f"event_{i}_times"] = np.asarray(ev.times, dtype=np.float64)
            if ev.labels is None:
                kinds.append("none")
            elif np.asarray(ev.labels).dtype == object:
                kinds.append("json")
                out[f"event_{i}_labels"] = _json_texts(ev.labels, f"events[{name!r}].labels", fix("events"))
            else:
                kinds.append("array")
                out[f"event_{i}_labels"] = np.asarray(ev.labels)
        out["event_label_kinds"] = npz_text_array(kinds, "event_label_kinds")
    if rec.stimulus is not None and "stimulus" not in drop:
        stim, held = rec.stimulus, []
        for attr in _STIMULUS_ATTRIBUTES:
            value = getattr(stim, attr)
            if value is None:
                continue
            held.append(attr)
            if attr == "names":
                value = npz_text_array(value, "stimulus.names")
            elif attr == "description":
                value = npz_text_array([value], "stimulus.description").reshape(())
            elif attr in ("frame_times", "intervals", "field_of_view"):
                value = np.asarray(value, dtype=np.float64)
            else:
                value = np.asarray(value)
            out[f"stimulus_{attr}"] = value
        out["stimulus_fields"] = npz_text_array(held, "stimulus_fields")
    if rec.session_info and "session_info" not in drop:
        out["session_info"] = np.asarray(json.dumps(rec.session_info))
    return out


def npz_field_keys(keys: Iterable[str]) -> List[str]:
    """Of the members ``keys`` of a ``.npz`` file, those :func:`fields_from_npz` reads (the fixed keys
    of the module docstring and the numbered ones, ``behaviour_0_values``)."""
    import re

    numbered = re.compile(r"(epoch_intervals|trial_info)_\d+|behaviour_\d+_(timestamps|values)|event_\d+_(times|labels)"
                          r"|stimulus_(" + "|".join(_STIMULUS_ATTRIBUTES) + ")")
    return [k for k in keys if k in _STATIC_KEYS or numbered.fullmatch(k)]


#: the keys :func:`~hf_neuroformer.io.read_npz` reads itself (the spikes, units, time domain and
#: session); the other fields' keys are those of the module docstring
READ_NPZ_SPIKE_KEYS = ("spike_times", "unit_ids", "unit_names", "unit_areas", "time_domain", "session")

_NUMBERED_KEY = re.compile(r"(epoch_intervals|trial_info)_(\d+)|(behaviour|event)_(\d+)_\w+|stimulus_\w+")
# the numbered keys' family -> the key listing its entries, in whose order the numbers count
_LISTED_BY = {"epoch_intervals": "epoch_intervals_names", "trial_info": "trial_info_names",
              "behaviour": "behaviour_names", "event": "event_names"}


def unread_npz_keys_hint(unread: Iterable[str]) -> str:
    """Why :func:`~hf_neuroformer.io.read_npz` left the members ``unread`` of a ``.npz`` file
    unread, and what it reads instead (str, for its warning): a key of a numbered family
    (``behaviour_0_values``) whose entry the family's ``*_names`` key does not list (that key is
    missing, or lists fewer entries), a ``stimulus_*`` key that ``stimulus_fields`` does not list,
    and for any other key the known keys it is close to (``'unit_name'``: ``'unit_names'``). Each
    numbered member is read only for an entry its list names; without the list it was left out
    with only "ignored keys" said."""
    import difflib

    known = list(READ_NPZ_SPIKE_KEYS) + list(_STATIC_KEYS)
    notes, families = [], {}
    for key in sorted(unread):
        m = _NUMBERED_KEY.fullmatch(key)
        if m is None:
            close = difflib.get_close_matches(key, known, n=2, cutoff=0.75)
            if close:
                notes.append(f"{key!r}: did you mean {' or '.join(map(repr, close))}?")
            continue
        family = "stimulus" if key.startswith("stimulus_") else (m.group(1) or m.group(3))
        families.setdefault(family, []).append(key)
    for family, keys in families.items():
        listed = "stimulus_fields" if family == "stimulus" else _LISTED_BY[family]
        which = "the attributes" if family == "stimulus" else "the entries"
        by = "" if family == "stimulus" else ", numbered from 0 in its order"
        notes.append(f"{', '.join(map(repr, keys[:4]))}{' ...' if len(keys) > 4 else ''}: read only for {which} "
                     f"{listed!r} lists{by}")
    known_text = ("the keys read are spike_times, unit_ids, unit_names, unit_areas, time_domain, session and the "
                  "other fields' keys listed in hf_neuroformer.io.npz_fields (write_npz writes them from a "
                  "SpikeRecording), e.g. behaviour as behaviour_names, behaviour_units, behaviour_boolean and "
                  "behaviour_<i>_timestamps / behaviour_<i>_values")
    return "; ".join(notes + [known_text])


def fields_from_npz(member: Callable[[str], np.ndarray], keys, path: Path) -> dict:
    """The :class:`SpikeRecording` keyword arguments (``time_support``, ``epochs``, ``epoch_intervals``,
    ``trials``, ``trial_info``, ``behaviour``, ``events``, ``stimulus``, ``session_info``) held in a
    ``.npz`` file's members (see the module docstring); those it lacks are left out.

    Args:
        member: ``key -> array`` of the open file (it names the key and file when a member is unreadable).
        keys: the file's member names.
        path: the file, for messages.

    Raises:
        RecordingValidationError: a member that a listed entry needs is missing, or a member of
            another shape or kind than the format's (names the key, what was expected and the file).
    """
    keys = set(keys)
    where = f" in {path}"

    def need(key: str, why: str) -> np.ndarray:
        if key not in keys:
            raise RecordingValidationError(f"{key}: expected a key {key!r}{where} ({why}), found keys {sorted(keys)}")
        return member(key)

    def texts(key: str, n: Optional[int] = None, why: str = "") -> List[str]:
        arr = need(key, why) if why else member(key)
        if arr.dtype.kind not in "US" or arr.ndim != 1 or (n is not None and arr.shape[0] != n):
            raise RecordingValidationError(
                f"{key}: expected a 1-D text array{'' if n is None else f' of {n} values'}{where}, got dtype "
                f"{arr.dtype} and shape {arr.shape}")
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr.tolist()]

    def flags(key: str, n: int, why: str) -> List[bool]:
        arr = need(key, why)
        if arr.dtype.kind != "b" or arr.shape != (n,):
            raise RecordingValidationError(f"{key}: expected {n} booleans{where}, got dtype {arr.dtype} and shape "
                                           f"{arr.shape}")
        return [bool(v) for v in arr]

    def from_json(arr: np.ndarray, key: str) -> np.ndarray:
        try:
            return np.array([json.loads(str(v)) for v in arr.reshape(-1)], dtype=object)
        except json.JSONDecodeError as e:
            raise RecordingValidationError(f"{key}: expected one JSON text per value{where} ({e})") from None

    def times(key: str, why: str) -> np.ndarray:
        # float32 in the file: read with its rounding and a warning, as read_npz reads spike_times
        arr = need(key, why)
        return widen_stored_times(arr, key, f"read_npz({str(path)!r})") if arr.dtype.kind == "f" else arr

    fields: dict = {}
    if "time_support" in keys:
        fields["time_support"] = times("time_support", "")
    if "epoch_names" in keys:
        names = texts("epoch_names")
        bounds = times("epoch_bounds", "the epochs' (start, stop)")
        if bounds.shape != (len(names), 2):
            raise RecordingValidationError(f"epoch_bounds: expected shape ({len(names)}, 2), one (start, stop) per "
                                           f"epoch name{where}, got {bounds.shape}")
        fields["epochs"] = {n: tuple(b) for n, b in zip(names, bounds)}
    if "epoch_intervals_names" in keys:
        fields["epoch_intervals"] = {n: times(f"epoch_intervals_{i}", f"the rows of epoch_intervals[{n!r}]")
                                     for i, n in enumerate(texts("epoch_intervals_names"))}
    if "trials" in keys:
        fields["trials"] = times("trials", "")
    if "trial_info_names" in keys:
        names = texts("trial_info_names")
        as_json = flags("trial_info_json", len(names), "which trial_info columns are JSON text")
        info = {}
        for i, n in enumerate(names):
            col = need(f"trial_info_{i}", f"the column trial_info[{n!r}]")
            info[n] = from_json(col, f"trial_info_{i}") if as_json[i] else col
        fields["trial_info"] = info
    if "behaviour_names" in keys:
        names = texts("behaviour_names")
        units = texts("behaviour_units", len(names), "the units of the behaviour series")
        boolean = flags("behaviour_boolean", len(names), "which behaviour series are booleans")
        fields["behaviour"] = {n: BehaviourSeries(times(f"behaviour_{i}_timestamps", f"the timestamps of behaviour[{n!r}]"),
                                                  need(f"behaviour_{i}_values", f"the values of behaviour[{n!r}]"),
                                                  units[i], boolean[i])
                               for i, n in enumerate(names)}
    if "event_names" in keys:
        names = texts("event_names")
        descriptions = texts("event_descriptions", len(names), "the descriptions of the event streams")
        kinds = texts("event_label_kinds", len(names), "how each event stream's labels are stored")
        events = {}
        for i, n in enumerate(names):
            if kinds[i] not in ("none", "array", "json"):
                raise RecordingValidationError(f"event_label_kinds[{i}]: expected 'none', 'array' or 'json'{where}, "
                                               f"got {kinds[i]!r}")
            labels = None if kinds[i] == "none" else need(f"event_{i}_labels", f"the labels of events[{n!r}]")
            if kinds[i] == "json":
                labels = from_json(labels, f"event_{i}_labels")
            events[n] = EventSeries(times(f"event_{i}_times", f"the times of events[{n!r}]"), labels, descriptions[i])
        fields["events"] = events
    if "stimulus_fields" in keys:
        held = texts("stimulus_fields")
        unknown = [a for a in held if a not in _STIMULUS_ATTRIBUTES]
        if unknown:
            raise RecordingValidationError(f"stimulus_fields: expected names from {list(_STIMULUS_ATTRIBUTES)}{where}, "
                                           f"got {unknown}")
        stim = {}
        for attr in held:
            if attr == "names":
                stim[attr] = texts("stimulus_names", why="the names of the stimulus categories")
            elif attr == "description":
                text = need("stimulus_description", "the stimulus description")
                if text.dtype.kind not in "US" or text.size != 1:
                    raise RecordingValidationError(f"stimulus_description: expected one text{where}, got dtype "
                                                   f"{text.dtype} and shape {text.shape}")
                stim[attr] = str(text.reshape(-1)[0])
            elif attr == "field_of_view":
                stim[attr] = tuple(need("stimulus_field_of_view", "the frames' field of view").tolist())
            elif attr in ("frame_times", "intervals"):
                stim[attr] = times(f"stimulus_{attr}", f"stimulus.{attr}")
            else:
                stim[attr] = need(f"stimulus_{attr}", f"stimulus.{attr}")
        fields["stimulus"] = Stimulus(**stim)
    if "session_info" in keys:
        try:
            info = json.loads(str(member("session_info").reshape(-1)[0]))
        except (json.JSONDecodeError, IndexError) as e:
            raise RecordingValidationError(f"session_info: expected one JSON object (name -> value){where} ({e})") from None
        if not isinstance(info, dict):
            raise RecordingValidationError(f"session_info: expected one JSON object (name -> value){where}, got "
                                           f"{type(info).__name__}")
        fields["session_info"] = info
    return fields
