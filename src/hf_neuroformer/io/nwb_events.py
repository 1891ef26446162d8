"""Point-event streams in NWB files: what :func:`~hf_neuroformer.io.read_nwb` reads as
``SpikeRecording.events`` and how :func:`~hf_neuroformer.io.write_nwb` writes them.

Reading a file written by another tool
--------------------------------------
* Every ``EventsTable`` (NWB 2.9, ``nwbfile.events``) -> ``events[table]``: its ``timestamp``
  column; labels from a ``label`` column, else ``annotation``, else as for interval tables below.
* Every interval table (``nwbfile.intervals``) except ``epochs``, ``trials``, empty tables and
  time supports (a name ending in ``support``, as pynapple writes ``<name>_timesupport``) ->
  ``events[table]``: one event per row at its ``start_time`` (the onset; ``stop_time`` is not
  kept). Labels, when the table has them: the per-row names (a ``label`` / ``name`` column, or
  tags that are not just row numbers), else the first 1-D integer, boolean or string column whose name
  contains ``category``, ``type`` or ``condition`` (Zheng 2022: ``stimCategory``, 0/1/2 =
  no/soft/hard boundary clip); otherwise the stream is unlabelled. A boolean column gives
  boolean labels (not 0/1). A float column of whole
  numbers (a file written from MATLAB: 0.0 / 1.0 / 2.0) gives int64 labels; one with NaN or
  fractions is not read as labels, with a warning naming it and saying where the labels come
  from instead (a later column, the row names) or that the stream is unlabelled.
* Columns ``boundary<k>_time`` of an interval table (the Zheng 2022 / DANDI 000207 layout) ->
  ``events["<table minus _table>_boundaries"]``: every such time that lies after its row's
  ``start_time`` (the file marks a missing boundary with 0, which as found equals the row's
  start) and before its ``stop_time``; other times outside the row are left out, counted in a
  warning that names the first. With a ``stimCategory`` column the labels follow the
  column descriptions: ``"hard"`` for ``boundary1`` of a hard-boundary clip (2), ``"none"`` for
  ``boundary1`` of a no-boundary clip (0: a control time 4 s into the clip, matched to the hard
  boundaries, not a boundary), ``"unknown"`` for ``boundary1`` of a row whose ``stimCategory``
  is NaN (counted in a warning), ``"soft"`` for every other; without it (or with a
  ``stimCategory`` that is not numeric) the label is the column name (``"boundary1"`` ...).
* ``AnnotationSeries`` (in ``acquisition`` or a processing module) -> ``events[name]``: its
  ``timestamps``, with its text ``data`` as labels.

Names that repeat get ``_1``, ``_2`` ... suffixes. The reader then passes the streams through
:func:`hf_neuroformer.events.clean_events` (NaN dropped, sorted, outside the time domain dropped,
each counted in a warning).

Files written by :func:`~hf_neuroformer.io.write_nwb`
-----------------------------------------------------
Each stream ``name`` is the ``EventsTable`` ``name`` in ``nwbfile.events`` (one row per event:
``timestamp`` = the event time, a ``label`` column when labelled, the stream's description as the
table's); reading it back gives the same times, labels and description. Labels of an object array
that are not all text (text with missing labels, ``None`` or NaN) are stored as one JSON text per
event (the column's description ends with :data:`EVENT_JSON_NOTE`; other readers see ``"\"a\""``,
``"null"``, ``"NaN"``) and read back as the same object array. Only those tables are
events in such a file (its interval tables are epochs, trials, stimulus and time domain).
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..recording import EventSeries, SpikeRecording, count_noun, widen_stored_times

__all__ = ["read_events", "write_events", "EVENT_JSON_NOTE"]

_NOT_EVENTS = ("epochs", "trials")
_LABEL_HINTS = ("category", "type", "condition")
_BOUNDARY = re.compile(r"boundary(\d+)_time$")


def _as_labels(vals: Optional[np.ndarray]) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """A simple column's values as event labels (int64, bool or text), or ``(None, why)`` when they cannot be.

    A boolean column stays boolean (read as 0/1 integers, its labels were refused by a model whose
    classes were fitted on booleans, ``[False, True]``, as :func:`write_events` writes them too).

    Floats that are all whole numbers are integer codes (a file written from MATLAB stores every
    number as a double: ``stimCategory`` 0.0 / 1.0 / 2.0): int64 labels. Other floats (NaN for a
    missing code, fractions) are not labels: ``why`` says so, for :func:`_label_column`'s warning
    (they were left out without a word, the stream read as one class)."""
    if vals is None:
        return None, None
    if vals.dtype == object or vals.dtype.kind == "b":
        return vals, None
    if vals.dtype.kind in "iu":
        return vals.astype(np.int64), None
    if vals.dtype.kind != "f":
        return None, None
    finite = np.isfinite(vals)
    if finite.all() and np.array_equal(vals, np.round(vals)):
        return vals.astype(np.int64), None
    return None, (f"{int((~finite).sum())} of {len(vals)} are NaN or infinite" if not finite.all()
                  else "they are not whole numbers")


def _label_column(table, simple_column, row_names, tname: str) -> Optional[np.ndarray]:
    """The labels of a foreign table's events (see the module docstring), or None; a float column
    that would have given them but cannot (:func:`_as_labels`) is named in a ``UserWarning`` that
    says where the labels came from instead (another column, the row names) or that there are none."""
    skipped = []  # (column, why not)

    def found(labels, source):
        for col, why in skipped:
            # the warning once said "read without those labels" although a later column labelled them
            outcome = (f"the labels come from {source} instead" if labels is not None else
                       "the events are read without those labels: give every row a whole-number or text label "
                       "to keep them")
            warnings.warn(f"table {tname!r}: column {col!r} was not read as the labels of events[{tname!r}] ({why}); "
                          + outcome, UserWarning, stacklevel=3)
        return labels

    def candidate(col):
        vals, why = _as_labels(simple_column(table, col))
        if why is not None:
            skipped.append((col, why))
        return vals

    for col in ("label", "annotation"):
        if col in table.colnames:
            vals = candidate(col)
            if vals is not None:
                return found(vals, f"column {col!r}")
    names = row_names(table) if "tags" in table.colnames else None
    if names is not None:
        return found(np.asarray(names, dtype=object), "the row names (tags)")
    for col in table.colnames:
        if any(h in col.lower() for h in _LABEL_HINTS) and not _BOUNDARY.match(col):
            vals = candidate(col)
            if vals is not None:
                return found(vals, f"column {col!r}")
    return found(None, None)


def _boundary_events(tname: str, table, simple_column, start: np.ndarray, stop: np.ndarray) -> Optional[EventSeries]:
    cols = sorted((int(m.group(1)), c) for c in table.colnames if (m := _BOUNDARY.match(c)))
    if not cols:
        return None
    cat = simple_column(table, "stimCategory") if "stimCategory" in table.colnames else None
    if cat is not None and cat.dtype.kind not in "biuf":
        cat = None  # not the numeric 0/1/2 codes: labelled by column, as without it
    if cat is not None:
        cat = cat.astype(np.float64)
    times: List[float] = []
    labels: List[str] = []
    unknown: List[int] = []  # rows whose boundary1 has no category (NaN stimCategory)
    outside: List[Tuple[str, int, float]] = []  # (column, row, time) of boundaries outside their row's clip
    for k, col in cols:
        vals = simple_column(table, col)
        if vals is None or vals.dtype.kind not in "iuf":
            continue
        # float32 boundary times were widened without a word, as the interval bounds beside them are not
        vals = widen_stored_times(vals, f"{tname}.{col}", "read_nwb")
        for i, t in enumerate(vals):
            if not (t > start[i] and t < stop[i]):
                # 0 / the row's start (/ NaN) = no such boundary; any other time was left out without a word
                if np.isfinite(t) and t != 0 and t != start[i]:
                    outside.append((col, i, float(t)))
                continue
            if cat is None:
                lab = f"boundary{k}"
            elif k == 1 and not np.isfinite(cat[i]):
                lab = "unknown"  # int(nan) failed the whole read; hard / soft / control cannot be told
                unknown.append(i)
            elif k == 1 and cat[i] == 2:
                lab = "hard"
            elif k == 1 and cat[i] == 0:
                lab = "none"
            else:
                lab = "soft"
            times.append(float(t))
            labels.append(lab)
    if outside:
        col, i, t = outside[0]
        warnings.warn(f"interval table {tname!r}: left out {count_noun(len(outside), 'boundary time')} outside "
                      f"{'its' if len(outside) == 1 else 'their'} row's "
                      f"(start_time, stop_time) (first: {col} of row {i} at {t:g} s, row {start[i]:g}-{stop[i]:g} s); "
                      "a boundary lies inside its clip, and a missing one is marked with 0 or the row's start_time",
                      UserWarning, stacklevel=2)
    if unknown:
        warnings.warn(f"interval table {tname!r}: stimCategory is NaN in "
                      f"{count_noun(len(unknown), 'row')} with a boundary1_time "
                      f"(rows {unknown[:10]}{' ...' if len(unknown) > 10 else ''}); their boundary1 events are "
                      "labelled 'unknown' (hard / soft / none cannot be told)", UserWarning, stacklevel=2)
    order = np.argsort(times, kind="stable")
    what = (f"{', '.join(c for _, c in cols)} of interval table {tname!r}"
            + (" (labels: hard / soft / none = control time of a no-boundary clip, from stimCategory"
               + ("; unknown = stimCategory NaN)" if unknown else ")")
               if cat is not None else " (label = column)"))
    return EventSeries(np.asarray(times)[order], np.asarray(labels, dtype=object)[order], what)


def read_events(nwb, intervals: dict, ours: bool, simple_column, row_names, bounds) -> Dict[str, EventSeries]:
    """The event streams of an open NWB file (see the module docstring). Not yet cleaned.

    Args:
        nwb: the open ``NWBFile``.
        intervals: ``nwbfile.intervals`` as a dict.
        ours: the file was written by :func:`~hf_neuroformer.io.write_nwb`.
        simple_column, row_names: the NWB reader's column helpers.
        bounds: ``bounds(table, use)`` -> an interval table's float64 ``(start_time, stop_time)``, read
            once per read_nwb call, which names a float32 column once with all its uses.
    """
    from pynwb.misc import AnnotationSeries

    out: Dict[str, EventSeries] = {}

    def add(name: str, ev: EventSeries) -> None:
        k, n = name, 1
        while k in out:
            k, n = f"{name}_{n}", n + 1
        out[k] = ev

    for tname, table in (getattr(nwb, "events", None) or {}).items():
        t = widen_stored_times(table["timestamp"].data[:], f"events {tname!r} timestamp", "read_nwb")
        lab = simple_column(table, "label") if ours and "label" in table.colnames else (
            None if ours else _label_column(table, simple_column, row_names, tname))
        if ours and lab is not None and str(table["label"].description).endswith(EVENT_JSON_NOTE):
            lab = np.array([json.loads(v) for v in lab], dtype=object)
        add(tname, EventSeries(t, lab, table.description or ""))
    if ours:
        return out
    for tname, table in intervals.items():
        if tname in _NOT_EVENTS or tname.lower().endswith("support") or not len(table):
            continue
        t, stop = bounds(table, f"the events {tname!r}")
        lab = _label_column(table, simple_column, row_names, tname)
        add(tname, EventSeries(t, lab, f"start_time of the rows of interval table {tname!r}"
                                      + ("" if lab is None else " (labelled)")))
        b = _boundary_events(tname, table, simple_column, t, stop)
        if b is not None:
            add((tname[: -len("_table")] if tname.endswith("_table") else tname) + "_boundaries", b)
    places = [("acquisition", nwb.acquisition.values())]
    places += [(f"processing[{m.name!r}]", m.data_interfaces.values()) for m in nwb.processing.values()]
    for where, objs in places:
        for obj in objs:
            if isinstance(obj, AnnotationSeries):
                lab = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in obj.data[:]], dtype=object)
                add(obj.name, EventSeries(widen_stored_times(obj.timestamps[:], f"{obj.name}.timestamps", "read_nwb"), lab,
                                          obj.description or f"AnnotationSeries {obj.name!r} in {where}"))
    return out


#: Ends the description of an ``EventsTable`` ``label`` column that :func:`write_events` stores as one JSON
#: text per event (labels of an object array that are not all text: text with ``None`` / NaN gaps, numbers,
#: booleans); :func:`read_events` decodes it back in a file of ours.
EVENT_JSON_NOTE = "one JSON value per event (text, numbers, booleans and null kept apart)"


def as_json(labels: np.ndarray) -> bool:
    """Whether :func:`write_events` stores ``labels`` as JSON texts: an object array not all of text."""
    return labels.dtype == object and not all(isinstance(v, str) for v in labels)


def _json_labels(name: str, labels: np.ndarray) -> List[str]:
    """One JSON text per label of an object array (``None``, bools, numbers, text); a ``ValueError``
    naming the first label that is none of those."""
    out = []
    for i, v in enumerate(labels):
        v = v.item() if isinstance(v, np.generic) else v
        if not (v is None or isinstance(v, (bool, int, float, str))):
            raise ValueError(f"events[{name!r}].labels[{i}]: expected an integer, float, bool, string or None "
                             f"label, got {type(v).__name__} {v!r:.60}")
        out.append(json.dumps(v))
    return out


def write_events(nwb, recording: SpikeRecording) -> None:
    """Add each of ``recording.events`` to ``nwb`` as an ``EventsTable`` of that name.

    Labels are written as a ``label`` column: booleans, integers, floats or strings as they are; an
    object array of other labels (text with missing labels, ``None`` or NaN; numbers in an object array)
    as one JSON text per event, the column's description ending with :data:`EVENT_JSON_NOTE`.

    Raises:
        ValueError: an event name with ``/`` (not allowed in NWB names), or a label that is not an
            integer, bool, float, string or ``None`` (names the stream and the label's index).
    """
    from pynwb.event import EventsTable

    for name, ev in recording.events.items():
        if "/" in name:
            raise ValueError(f"events[{name!r}]: NWB names cannot contain '/'; rename the stream")
        table = EventsTable(name=name, description=ev.description)
        labels = None
        if ev.labels is not None:
            lab = ev.labels
            if lab.dtype.kind == "b":  # as bools: written as 0/1 they came back as integers, which a model
                labels = [bool(v) for v in lab]  # whose classes are [False, True] refuses (True is not 1 there)
            elif lab.dtype.kind in "iu":
                labels = [int(v) for v in lab]
            elif lab.dtype.kind == "f":
                labels = [float(v) for v in lab]
            elif all(isinstance(v, str) for v in lab):
                labels = [str(v) for v in lab]
            else:
                # text with a missing label (None / NaN: ["a", None], which EventSeries keeps) was refused with
                # "got dtype object" and no word of which label: one JSON text per label, decoded by read_events
                labels = _json_labels(name, lab)
            if len(ev.times):
                table.add_column("label", "label of each event" + (f": {EVENT_JSON_NOTE}" if as_json(lab) else ""))
            else:  # no rows to infer the column's dtype from
                empty = np.zeros(0, dtype=bool if lab.dtype.kind == "b" else np.int64 if lab.dtype.kind in "iu" else
                                 np.float64 if lab.dtype.kind == "f" else str)
                table.add_column("label", "label of each event", data=empty)
        for i, t in enumerate(ev.times):
            row = {} if labels is None else {"label": labels[i]}
            table.add_event(timestamp=float(t), **row)
        nwb.add_events_table(table)
