"""The one in-memory type for spiking data: :class:`SpikeRecording`.

Every reader (NWB, arrays, binned counts), the simulator and the generator produce a
``SpikeRecording``; every metric and plot compares two of them. Times are seconds (float64,
absolute on the recording's clock), rates are Hz, angles are radians.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .binning import (bin_index, n_full_bins, narrow_float_note, narrow_float_times_message, not_ascending_message,
                      not_finite_message)
from .configuration_neuroformer import is_whole_number

#: s: window starts are rounded to this grid (:func:`hf_neuroformer.windows.window_starts_for_split`), and
#: interval edges that differ by less (float round-off: ``0.1 + 0.2`` vs ``0.3``) are taken as one; defined
#: here, below the windows module (which pulls in torch), and imported there as ``windows.WINDOW_GRID``
WINDOW_GRID = 1e-9


class RecordingValidationError(ValueError):
    """Raised when a recording's fields break an invariant (a ``ValueError``, so
    ``except ValueError`` catches it).

    The message names the field, the offending index or value, and what was expected, e.g.
    ``spike_times: expected finite times, spike 1 (in the order given) is nan (1 non-finite in all)``.
    Raised by the :class:`SpikeRecording` constructor and :meth:`SpikeRecording.validate` (which
    also check its behaviour series, events and stimulus), by some checks of those parts' own
    constructors (float32 / float16 times of a :class:`BehaviourSeries` or :class:`EventSeries`),
    and by the readers of :mod:`hf_neuroformer.io` and :mod:`hf_neuroformer.events` for input that
    cannot make a valid recording. Examples: spike times that are not finite float64 seconds,
    a ``time_domain`` that does not contain every spike, ``unit_ids`` outside ``[0, n_units)``,
    a trial with ``stop <= start``.
    """


def _refuse_first_bool(values, message: Callable[[int, bool], str]) -> None:
    """Refuse the first Python / numpy bool in ``values``, a list or tuple, possibly nested:
    ``np.asarray([0, True])`` is ``array([0, 1])``, so a bool among numbers reached the dtype checks
    as the number 1 (an array of bools keeps dtype bool and is checked by that; anything other than
    a list or tuple passes).

    Raises:
        RecordingValidationError: ``message(position in the flattened order, value)`` of the first bool.
    """
    if not isinstance(values, (list, tuple)):
        return
    flat = np.asarray(values, dtype=object).reshape(-1) if any(isinstance(v, (list, tuple)) for v in values) else values
    found = next(((i, bool(v)) for i, v in enumerate(flat) if isinstance(v, (bool, np.bool_))), None)
    if found is not None:
        raise RecordingValidationError(message(*found))


def _as_unit_indices(unit_ids) -> np.ndarray:
    """``unit_ids`` as a 1-D int64 array; a ``RecordingValidationError`` for text, booleans (also one
    among numbers in a list, ``[0, True]``, which numpy reads as ``[0, 1]``), non-integer or
    non-finite values (the message names ``unit_ids`` and the first bad spike)."""
    _refuse_first_bool(unit_ids, lambda k, v: (
        f"unit_ids: expected integer unit indices in [0, n_units), spike {k} has the bool {v} (numpy would read "
        f"it as the unit index {int(v)}); pass the integer index"))
    arr = np.asarray(unit_ids).reshape(-1)
    if not arr.size:
        return arr.astype(np.int64)
    if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
        # the cast to int64 wrapped such an id round to a negative index, which the message then named
        k = int(np.argmax(arr > np.iinfo(np.int64).max))
        raise RecordingValidationError(
            f"unit_ids: expected unit indices in [0, n_units), spike {k} has {int(arr[k])} (beyond int64); a unit "
            "id is an index from 0: map labels to indices with np.unique(unit_ids, return_inverse=True)")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    k, dtype = 0, arr.dtype
    if arr.dtype.kind == "O":
        # the first text id is named: ids mixing numbers and text named spike 0, its number as text ('1')
        k = next((i for i, v in enumerate(arr) if isinstance(v, (str, bytes))), None)
        if k is not None:
            arr = arr.astype(str)
        else:
            k = 0
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                arr = arr.astype(str)
    if arr.dtype.kind in "US":  # a list mixing numbers and text is all text to numpy: name the first non-number

        def number(v) -> bool:
            try:
                float(v)
            except (TypeError, ValueError):
                return False
            return True

        k = next((i for i, v in enumerate(arr.tolist()) if not number(v)), k)
    if arr.dtype.kind != "f":
        raise RecordingValidationError(
            f"unit_ids: expected integer unit indices in [0, n_units), got dtype {dtype} (spike {k} has "
            f"{str(arr[k])!r}); to label units by name pass the indices here and the names as unit_names=, or build "
            "the recording with hf_neuroformer.io.from_dataframe, which maps labels to indices"
        )
    bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
    if bad.size:
        raise RecordingValidationError(
            f"unit_ids: expected integer unit indices, got non-integer values (spike {bad[0]} has "
            f"{arr[bad[0]]}; {bad.size} in all)"
        )
    return arr.astype(np.int64)


#: without ``unit_names``, ids that leave more than this many units without spikes (every index below
#: the largest id is a unit) are refused: database ids such as the Allen unit ids (about 9.5e8) made
#: one name per index and the process ran out of memory
MAX_IMPLIED_SILENT_UNITS = 100_000


def _check_implied_units(unit_ids: np.ndarray, n: int) -> None:
    """Refuse ``unit_ids`` (int64, no ``unit_names``) that would make ``n`` units, more than
    :data:`MAX_IMPLIED_SILENT_UNITS` of them without spikes, before the ``n`` names are built.

    Raises:
        RecordingValidationError: names ``unit_ids``, the largest id and the fix (indices from 0)."""
    if n <= MAX_IMPLIED_SILENT_UNITS:
        return
    n_used = int(np.unique(unit_ids[unit_ids >= 0]).size)
    if n - n_used > MAX_IMPLIED_SILENT_UNITS:
        raise RecordingValidationError(
            f"unit_ids: the largest is {n - 1}, so every index 0..{n - 1} would be a unit: {n} units, {n - n_used} "
            f"of them without spikes (spikes come from {n_used} distinct ids); a unit id is an index from 0, not a "
            "label such as a database or cluster id: map the ids to 0..n-1 and keep them as names (ids, idx = "
            "np.unique(unit_ids, return_inverse=True); from_arrays(spike_times, idx, unit_names=[str(i) for i in "
            "ids])), or use hf_neuroformer.io.from_dataframe, which does that")


# negative times are most often trial-aligned times (relative to each stimulus onset): the windows,
# splits and trials need one session clock
NEGATIVE_TIMES_HINT = ("spike times are seconds on one session clock (from the recording's start); times aligned "
                       "to each trial's event need that event's session time added back (and the trials given as "
                       "[start, stop) on the same clock), and a clock that starts below 0 needs shifting by its "
                       "first time")


def _refuse_unflat(spike_times, unit_ids) -> None:
    """Refuse ``spike_times`` or ``unit_ids`` that are not one flat sequence of spikes: ``(n,)``,
    ``(n, 1)`` and ``(1, n)`` are taken as ``n`` spikes; more than one dimension longer than 1
    (flattening it paired times and ids by their position in memory) or a ragged sequence (one
    array per unit) is refused.

    Raises:
        RecordingValidationError: names the field, its shape (or that it is ragged) and the fix.
    """
    for name, value in (("spike_times", spike_times), ("unit_ids", unit_ids)):
        try:
            shape = np.shape(value)
        except ValueError:  # numpy: "inhomogeneous shape" (a list of arrays of different lengths)
            raise RecordingValidationError(
                f"{name}: expected one flat array (n_spikes,), got a ragged sequence (e.g. one array per unit); "
                "concatenate them, and give unit_ids as the unit index of each spike: "
                "np.concatenate(trains), np.concatenate([np.full(len(t), k) for k, t in enumerate(trains)])"
            ) from None
        if sum(d != 1 for d in shape) > 1:  # (n,), (n, 1) and (1, n) are one spike per entry
            raise RecordingValidationError(
                f"{name}: expected a 1-D array (n_spikes,), got shape {shape}; flattening it would pair "
                "spike times and unit ids by their position in memory"
            )


def _spike_time_problem(spike_times: np.ndarray, note: str = "") -> Optional[str]:
    """The message of the first of the time rules of :func:`_spike_problem` that the 1-D float64
    ``spike_times`` (s) break, None when they keep both: finite (``"spike_times: expected finite
    times, spike k{note} is v (n non-finite in all)"``), then >= 0 s (``"spike_times: expected
    times >= 0 s, spike k{note} is at v s (n negative in all); <how to fix>"``). ``note`` follows
    the index (``" (in the order given)"``: :meth:`SpikeRecording.from_unsorted` checks the spikes
    before it sorts them). The one wording of both, for validate and from_unsorted."""
    bad = not_finite_message(spike_times, "spike_times", "spike", note)
    if bad is not None:
        return bad
    neg = np.flatnonzero(spike_times < 0)
    if neg.size:
        return (f"spike_times: expected times >= 0 s, spike {neg[0]}{note} is at {spike_times[neg[0]]} s "
                f"({neg.size} negative in all); {NEGATIVE_TIMES_HINT}")
    return None


def _spike_problem(spike_times: np.ndarray, unit_ids: np.ndarray, n_units: int,
                   time_domain: Optional[Tuple[float, float]] = None, time_support: Optional[np.ndarray] = None,
                   *, ascending: bool = False) -> Optional[str]:
    """The message of the first rule that a recording's spike arrays break, None when they keep all:
    the one statement of these rules, checked on all spikes at once (vectorised) by
    :meth:`SpikeRecording.validate` and by :meth:`SpikeRecording.copies_with_spikes` (the spikes of
    all its copies together).

    The rules, in the order checked: one unit index per spike time; finite times; times >= 0 s;
    with ``ascending``, times in ascending order; unit indices in ``[0, n_units)``; every time
    inside ``time_domain`` ``[start, stop)`` and inside a row of ``time_support`` (each skipped when
    None). Spikes are named by their position in the arrays given.

    Args:
        spike_times: ``(n_spikes,)`` float64 spike times, s.
        unit_ids: ``(n_spikes,)`` integer unit index of each spike.
        n_units: the number of units (``len(unit_names)``).
        time_domain: ``(start, stop)`` s with finite ``stop > start``, or None.
        time_support: ``(n, 2)`` float64 ``[start, stop)`` rows, s, sorted and non-overlapping, or None.
        ascending: require ascending times too (a recording's; ``copies_with_spikes`` sorts its copies).

    Returns:
        The message (``"<field>: expected ..."``) that :class:`RecordingValidationError` carries, or None.
    """
    st, ui = spike_times, unit_ids
    if st.shape != ui.shape:
        return f"spike_times and unit_ids: expected the same length, got {st.shape[0]} and {ui.shape[0]}"
    if not st.size:
        return None
    bad = _spike_time_problem(st)
    if bad is not None:
        return bad
    back = not_ascending_message(st, "spike_times", "spike") if ascending else None
    if back is not None:
        return back + "; sort them with SpikeRecording.from_unsorted(...)"
    out = (ui < 0) | (ui >= n_units)
    if out.any():
        k = np.flatnonzero(out)[0]
        negative = int(np.sum(ui < 0))
        # a negative id (a label such as -1 for unsorted spikes, or ids of a sorter counted around 0) was told only
        # '(one per unit name)', with n_units implied from the largest id when no unit names were given
        hint = (f" ({negative} negative in all); unit ids are indices from 0: map other labels to 0..n-1 first "
                "(np.unique(unit_ids, return_inverse=True)), or give the spikes as a table (hf_neuroformer.io.from_dataframe, "
                "or a .csv / .parquet of columns time and unit for --data), which keeps each label as the unit's name"
                if ui[k] < 0 else "")
        return (f"unit_ids: expected indices in [0, {n_units}) (one per unit name), spike {k} has unit index "
                f"{ui[k]}{hint}")
    if time_domain is not None:
        lo, hi = st.min(), st.max()
        if lo < time_domain[0] or hi >= time_domain[1]:
            return f"time_domain: expected it to contain every spike, got {time_domain} for spikes in [{lo}, {hi}] s"
    if time_support is not None:
        inside = in_intervals(st, time_support)
        if not inside.all():
            k = np.flatnonzero(~inside)[0]
            return f"time_support: expected it to contain every spike, spike {k} at {st[k]} s lies outside"
    return None


def count_noun(count: int, noun: str) -> str:
    """``"1 spike"``, ``"3 spikes"``: a count with its noun, plural unless it is 1."""
    return f"{int(count)} {noun}{'' if int(count) == 1 else 's'}"


def score_text(value: float, decimals: int = 3, significant: int = 2) -> str:
    """A score (R², accuracy, an interval's bound, ...) as printed and drawn: ``decimals`` decimals
    (``"0.412"``); a value that is not 0 but smaller in size than 0.001 with
    ``significant`` significant digits (``2.1e-4`` -> ``"0.00021"``, ``-2.1e-5`` -> ``"-2.1e-05"``)
    rather than a bare ``"0.000"`` or ``"-0.000"``; 0 and -0.0 as ``"0.000"`` (no minus sign); NaN
    and infinities as Python writes them (``"nan"``, ``"inf"``).

    Raises:
        TypeError: ``value`` is not a real number (``float`` accepts it), naming ``value``.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"value: expected a real number, got {value!r}") from None
    if v == 0:
        return f"{0.0:.{decimals}f}"
    if abs(v) < 1e-3:
        return f"{v:.{significant}g}"
    return f"{v:.{decimals}f}"


# said where a file gives a behaviour series no unit (A2929's position x, y, z), in figures and printouts
UNIT_NOT_RECORDED = "unit not recorded"


def unit_or_not_recorded(unit) -> str:
    """A behaviour series' unit for a label or a printed range: the unit the file gives
    (``"radian"``), or ``"unit not recorded"`` where it gives none (``None`` or blank: A2929's
    position ``x``, ``y``, ``z``), so that a bare number never reads as unitless by choice."""
    unit = str(unit or "").strip()
    return unit or UNIT_NOT_RECORDED


def first_few(items, n: int = 3, *, quote: bool = True, count_rest: bool = True, sep: str = ", ") -> str:
    """The first ``n`` of ``items`` for a message, joined by ``sep`` (each ``repr``'d with
    ``quote``), then ``" and k more"`` where ``k`` more remain (``count_rest=False``: ``sep + "..."``,
    e.g. inside a list the user copies: ``recording.select_units(['a', 'b', ...])``). ``sep="; "``
    for items that hold commas themselves (``"'sleep' x 2: epochs 'sleep', 'sleep_1'"``).
    ``first_few(['a', 'b', 'c', 'd'], 2)`` is ``"'a', 'b' and 2 more"``."""
    items = list(items)
    shown = sep.join(repr(x) if quote else str(x) for x in items[:n])
    if len(items) <= n:
        return shown
    return shown + (f" and {len(items) - n} more" if count_rest else f"{sep}...")


def unnamed_units_message(names, what: str, fix: str, *, where: str = "", whitespace: bool = True,
                          label=None) -> Optional[str]:
    """The error message for units without a name, or ``None`` when every unit has one.

    A name ``""`` (or, with ``whitespace``, of whitespace only) gives the unit token
    ``"<session>/"``, which the tokenizer refused only when the recording was tokenized. The message
    is ``"<what>: expected a name for every unit<where>, <label(k)> has '' (n of N units have none:
    units i, j, ...); <fix>"``, ``k`` the first such unit; ``label(k)`` defaults to ``"unit k"``
    (a reader passes its own, e.g. the file's row and id). Used by :class:`SpikeRecording`
    (``unit_names``) and the readers, which name the file's column."""
    names = [str(n) for n in names]
    bad = [i for i, n in enumerate(names) if (n.strip() if whitespace else n) == ""]
    if not bad:
        return None
    label = label or (lambda i: f"unit {i}")
    which = f": units {first_few(bad, 5, quote=False)}" if len(bad) > 1 else ""
    return (f"{what}: expected a name for every unit{where}, {label(bad[0])} has {names[bad[0]]!r} ({len(bad)} of "
            f"{len(names)} units have none{which}); {fix}")


def spaced_names_message(names) -> Optional[str]:
    """The error message for unit names that hold whitespace, or ``None`` when none does.

    A unit token is ``"<session>/<unit name>"`` and text input splits at whitespace, so
    :meth:`~hf_neuroformer.NeuroformerTokenizer.add_units` refuses such a name; the readers replace it
    (:func:`file_names_without_whitespace`, with a warning) since a file's names cannot be changed from
    the command line. Names given to :class:`SpikeRecording` are the caller's: refused here, not
    renamed, so that no name changes behind the caller's back and two names (``"a"``, ``"a "``) are
    never taken for one unit. The message is ``"unit_names: expected names without whitespace ...,
    unit k is '<name>' (n of N units hold whitespace: units i, j, ...); rename them, e.g. ..."``,
    ``k`` the first such unit; the fix given is the readers' rule (:func:`names_without_whitespace`)."""
    names = [str(n) for n in names]
    bad = [i for i, n in enumerate(names) if any(c.isspace() for c in n)]
    if not bad:
        return None
    which = f": units {first_few(bad, 5, quote=False)}" if len(bad) > 1 else ""
    return (f"unit_names: expected names without whitespace (a unit token '<session>/<unit name>' cannot hold it), "
            f"unit {bad[0]} is {names[bad[0]]!r} ({len(bad)} of {len(names)} units hold whitespace{which}); rename "
            "them, e.g. unit_names=hf_neuroformer.recording.names_without_whitespace(unit_names)[0] (each run of "
            "whitespace replaced by '_', as the readers do; names stay distinct)")


def names_without_whitespace(names: List[str]) -> Tuple[List[str], List[int]]:
    """``names`` with each run of whitespace replaced by ``_`` (a unit token
    ``"<session>/<unit name>"`` cannot hold whitespace), and the indices of the names changed.
    A replaced name that another, unchanged name already is gets a ``_1``, ``_2`` ... suffix
    (that other name keeps its own); a name of whitespace only becomes ``"unit"``. Used by the
    readers, whose names come from a file the command-line user cannot rename from the command."""
    names = [str(n) for n in names]
    changed = [i for i, n in enumerate(names) if any(c.isspace() for c in n)]
    taken = set(names) - {names[i] for i in changed}
    for i in changed:
        base = "_".join(names[i].split()) or "unit"
        new, k = base, 0
        while new in taken:
            k += 1
            new = f"{base}_{k}"
        names[i] = new
        taken.add(new)
    return names, changed


def file_names_without_whitespace(given, what: str, where: str, stacklevel: int = 2) -> List[str]:
    """Unit names read from a file, made fit for unit tokens (:func:`names_without_whitespace`),
    with a ``UserWarning`` ``"<what>: k unit names<where> hold whitespace, replaced by '_' (e.g.
    'unit 0' -> 'unit_0'), ..."`` naming the first one changed when any is (``what`` the field,
    ``where`` e.g. ``" in f.nwb"``); ``stacklevel`` counts from the caller, as :func:`warnings.warn`
    does. Names such as ``"unit 0"`` made a file untrainable from the command, which has no flag to
    rename units."""
    given = [str(n) for n in given]
    names, spaced = names_without_whitespace(given)
    if spaced:  # the name in the file and its replacement, as from_dataframe says it
        warnings.warn(f"{what}: {count_noun(len(spaced), 'unit name')}{where} {'holds' if len(spaced) == 1 else 'hold'} "
                      "whitespace, replaced by '_' (e.g. "
                      f"{given[spaced[0]]!r} -> {names[spaced[0]]!r}), since a unit token '<session>/<unit name>' "
                      "cannot hold it", stacklevel=stacklevel + 1)
    return names


def session_from_file(session: str, stem: str) -> str:
    """A session name read from a file (an NWB identifier, a ``.npz`` ``session`` key) made fit for
    a unit token ``"<session>/<unit name>"``: each run of whitespace and each ``/`` replaced by
    ``_`` (``"Mouse 12 day 3"`` -> ``"Mouse_12_day_3"``, ``"mouse12/day3"`` -> ``"mouse12_day3"``),
    since the command-line user cannot rename it; an empty one or one of whitespace only gives the
    file's ``stem`` instead (its whitespace replaced too), as :class:`SpikeRecording` refuses ``""``
    (unit tokens ``"/<unit name>"`` without a session; ``write_nwb`` / ``write_npz`` kept one before);
    a stem of whitespace only too gives ``"session0"``, :class:`SpikeRecording`'s default and the name
    its message suggests for such a session (the whitespace rule made it ``"unit"``, a unit's name)."""
    session = str(session)
    if not session.strip():
        session = stem if str(stem).strip() else "session0"
    session = names_without_whitespace([session])[0][0]
    return session.replace("/", "_")


def _as_name_list(names, what: str) -> list:
    """A list of per-unit names; a single string is refused (it would be split into characters)."""
    if isinstance(names, (str, bytes)) or (isinstance(names, np.ndarray) and names.ndim == 0):
        raise RecordingValidationError(
            f"{what}: expected a sequence with one string per unit, got the single string {names!r} "
            f"(write [{names!r}] for one unit)"
        )
    return list(names)


def refuse_narrow_float_times(x, what: str, error: type = RecordingValidationError) -> None:
    """Refuse times (s) held in a float type narrower than float64 (float32, float16), naming ``what``.

    Widened to float64 they keep the rounding of the narrow type: float32 700.05 is
    700.0499877929688 s, 12 µs early, so a spike at 700.05 s fell in the window before its own (the
    window edges lie on a 1 ns grid). The rule of ``window_starts``
    (:func:`hf_neuroformer.windows.window_starts_array`), for every time field of a recording.
    Readers of files that store such times widen them with a warning instead
    (:func:`widen_stored_times`): the file holds no more precision. Anything else (float64,
    integers, lists of Python floats) passes.

    Raises:
        ``error``: naming ``what``, the dtype, how far it rounds times of this size (half a float
            step at the largest time), the first value it moved, and the fix.
    """
    message = narrow_float_times_message(x, what)
    if message is not None:
        raise error(message)


def widen_stored_times(x, what: str, reader: str) -> np.ndarray:
    """Times (s) a reader found in a file, as float64; a ``UserWarning`` (one per field and call)
    when the file stores them narrower (float32, float16), which :class:`SpikeRecording` refuses
    from a caller (:func:`refuse_narrow_float_times`): the file holds no more precision, so they are
    read with its rounding, and the warning says how large it is; none when no finite time is stored
    (nothing rounded: an empty events table, which pynwb writes as float32, warned of times "of up to
    0 s" rounded "by as much as 7.01e-40 µs")."""
    arr = np.asarray(x)
    note = narrow_float_note(arr)
    if note is not None and np.isfinite(arr).any():
        _warn_stored_narrow(f"{reader}: {what} are stored as {note}")
    return arr.astype(np.float64)


def widen_stored_rate(rate, n_samples: int, what: str, reader: str) -> float:
    """A sampling rate (Hz) a reader found in a file, as a Python float; the warning of
    :func:`widen_stored_times` when the file stores it narrower (float32, float16), as it does for
    the ``starting_time`` beside it. Sample k lies at ``starting_time + k / rate``, so the rate's
    rounding moves the samples more the later they come: 59.94 Hz as float32 is
    59.939998626708984 Hz, whose samples are 82 µs late after an hour. The warning gives that drift
    over the ``n_samples`` samples (and its bound, half a float step of the rate). A rate that is
    not a finite number > 0 is returned as a float unwarned, for the caller's own check."""
    arr = np.asarray(rate)
    r = float(arr)
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 8 and np.isfinite(r) and r > 0:
        span = max(int(n_samples) - 1, 0) / r  # the last sample's offset from starting_time, s
        half_step = float(np.spacing(arr)) / 2
        note = (f"{arr.dtype}, which rounds a rate of {r:g} Hz by as much as {half_step:.3g} Hz, so the samples "
                f"starting_time + k / rate drift by up to {span * half_step / r * 1e6:.3g} µs over the series' "
                f"{int(n_samples)} samples ({span:g} s), across window and bin edges")
        written = float(str(arr[()]))
        if written != r:
            note += (f"; e.g. {str(arr[()])} as {arr.dtype} is {r!r} Hz, its last sample "
                     f"{abs(span - span * r / written) * 1e6:.3g} µs off")
        _warn_stored_narrow(f"{reader}: {what} is stored as {note}")
    return r


def _warn_stored_narrow(head: str) -> None:
    """The one warning of a time or rate a file stores narrower than float64 (:func:`widen_stored_times`,
    :func:`widen_stored_rate`): ``head`` names the reader, the field and the rounding; the rest says
    what follows. Attributed to the reader's caller."""
    warnings.warn(f"{head}; read as float64 with that rounding (the file holds no more precision): spikes and "
                  "samples within it of a window or bin edge may be counted on the other side; write float64 times "
                  "to keep them exact", stacklevel=4)


def as_real_numbers(x, what: str, expected: str = "numbers", hint: str = "",
                    error: type = RecordingValidationError) -> np.ndarray:
    """``x`` as a float64 array of the same shape: the one "values must be numbers" check of the
    package (recording fields, decoding metrics, baseline targets). Booleans, integers, floats and
    object arrays of such numbers are taken; text, complex numbers and objects that are not numbers
    raise ``error`` (a ``ValueError`` subclass) ``"<what>: expected <expected>, got dtype D (e.g.
    [first values]); <hint>"`` (numpy said only "could not convert string to float", or dropped the
    imaginary part with a warning)."""
    arr = np.asarray(x)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    if arr.dtype.kind == "O":
        try:
            if not any(isinstance(v, (str, bytes, complex, np.complexfloating)) for v in arr.reshape(-1)):
                return arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    raise error(f"{what}: expected {expected}, got dtype {arr.dtype}"
                + (f" (e.g. {arr.reshape(-1)[:3].tolist()})" if arr.size else "") + (f"; {hint}" if hint else ""))


def _refuse_bool_times(x, what: str) -> None:
    """Refuse a bool among the times of ``x`` (an interval list or one ``(start, stop)`` pair),
    naming ``what``, the row and the value: numpy read ``[[0, True]]`` as the interval (0, 1) s.

    Raises:
        RecordingValidationError: ``x`` holds a Python or numpy bool.
    """
    _refuse_first_bool(x, lambda k, v: (
        f"{what}: expected (n, 2) [start, stop) seconds, got the bool {v} in row {k // 2} (numpy would read it "
        f"as {float(v)} s); pass the time in seconds"))


def _as_interval_rows(x, what: str) -> np.ndarray:
    """``x`` as ``(n, 2)`` float64 ``[start, stop)`` rows. ``(n, 2)``, one ``(2,)`` interval and an
    empty array are taken; any other shape is a ``RecordingValidationError`` naming ``what``:
    ``reshape(-1, 2)`` silently paired the values of a ``(n, 3)`` table (start, stop, label) or of
    a 1-D list of onsets into wrong intervals."""
    refuse_narrow_float_times(x, what)
    _refuse_bool_times(x, what)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise RecordingValidationError(f"{what}: expected (n, 2) [start, stop) seconds, got values that are not "
                                       f"numbers ({e})") from None
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.shape == (2,):
        return arr.reshape(1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        # a (2, k) array is [starts, stops] of k intervals or a table of 2 intervals with k columns
        keep = "keep the start and stop columns only" + (" (other columns of a trial table go in trial_info)"
                                                          if what == "trials" else "")
        raise RecordingValidationError(
            f"{what}: expected an (n, 2) array of [start, stop) seconds (one row per interval), got shape {arr.shape}"
            + ("; a 1-D array of onsets needs the stops too: np.stack([starts, stops], axis=1)" if arr.ndim == 1 else
               f"; if its rows are [starts, stops], transpose it (.T); if each row is one interval, {keep}"
               if arr.ndim == 2 and arr.shape[0] == 2 else f"; {keep}" if arr.ndim == 2 else ""))
    return arr


def _text_keys(mapping: dict, field_name: str) -> dict:
    """``mapping`` with its names as text (``str(name)``), as epoch names are: an int key (a trial
    column, behaviour series or event stream numbered 0) failed in ``write_nwb`` with "argument of
    type 'int' is not iterable", and ``"trial:0"`` did not find it. Two keys that are one name as
    text (``0`` and ``"0"``) are refused, naming both (one would overwrite the other)."""
    out: Dict[str, Any] = {}
    for k, v in mapping.items():
        if str(k) in out:
            raise RecordingValidationError(
                f"{field_name}: expected one entry per name, got {k!r} and {str(k)!r}, which are one name as text")
        out[str(k)] = v
    return out


def _trial_column(col):
    """A ``trial_info`` column as given, except that a list or tuple mixing booleans with other
    numbers becomes an object array: ``np.asarray([True, 1, False, 0])``, as every reader of the
    column takes it, is one int64 column, so True and 1 became one label without a word, where
    the same values in an object array are refused as labels (True equals 1). NaN among booleans
    is a missing label, not a number they mix with: ``[True, False, nan]`` stays a list, read as
    ``[1.0, 0.0, nan]`` (two classes and a trial without a label, as before)."""
    if not isinstance(col, (list, tuple)):
        return col
    is_bool = [isinstance(v, (bool, np.bool_)) for v in col]
    if any(is_bool) and any(isinstance(v, numbers.Number) and not b
                            and not (isinstance(v, numbers.Real) and math.isnan(v)) for v, b in zip(col, is_bool)):
        return np.array(col, dtype=object)
    return col


def _as_start_stop(x, what: str) -> Tuple[float, float]:
    """``x`` as one ``(start, stop)`` pair of floats; a ``RecordingValidationError`` naming
    ``what`` for any other number of values (the first two of three were kept silently)."""
    refuse_narrow_float_times(x, what)
    _refuse_bool_times(x, what)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise RecordingValidationError(f"{what}: expected (start, stop) seconds, got {x!r} ({e})") from None
    if arr.shape != (2,):
        raise RecordingValidationError(f"{what}: expected two values (start, stop) in seconds, got {x!r} "
                                       f"(shape {arr.shape})")
    return float(arr[0]), float(arr[1])


def unit_text(unit: str) -> str:
    """A physical unit as plain ``str`` without the padding of a fixed-width string: leading and trailing
    whitespace and NUL characters are removed (``"cm  "``, ``"rad\\x00\\x00"`` -> ``"cm"``, ``"rad"``);
    a numpy ``str_`` becomes ``str``."""
    return str(unit).strip(" \t\r\n\f\v\x00")


@dataclass
class BehaviourSeries:
    """A sampled behavioural variable (e.g. head angle, running speed).

    Attributes:
        timestamps: ``(n_samples,)`` float64, seconds, strictly increasing.
        values: ``(n_samples,)`` or ``(n_samples, n_dims)`` float64.
        unit: physical unit of ``values`` (``"rad"``, ``"cm/s"``, ``"px"`` ...); ``""`` for none
            (``None`` is stored as ``""``); bytes are decoded as UTF-8, and the padding of a
            fixed-width string (leading / trailing whitespace and NULs) is removed (:func:`unit_text`).
        boolean: whether ``values`` were given as booleans (numpy dtype bool; stored as 0.0 /
            1.0 like any values): set from them, or passed (``restrict`` and ``select_epoch`` carry
            it). A boolean series decoded as classes keeps ``False`` / ``True`` as its class labels,
            as a bool trial column does (:func:`hf_neuroformer.decoding.build_decoding_datasets`).

    Raises:
        RecordingValidationError: ``timestamps`` or ``values`` that are not real numbers (text,
            complex); ``timestamps`` held as float32 / float16 (naming ``BehaviourSeries.timestamps``);
            a ``unit`` that is not text; ``boolean`` not a bool, or True for values other
            than 0 / 1. Shapes are checked by :meth:`SpikeRecording.validate`.
    """

    timestamps: np.ndarray
    values: np.ndarray
    unit: str = ""
    boolean: bool = False

    def __post_init__(self):
        if not isinstance(self.boolean, (bool, np.bool_)):
            raise RecordingValidationError(f"BehaviourSeries.boolean: expected True or False (whether values are "
                                           f"booleans), got {type(self.boolean).__name__} {self.boolean!r}")
        # values given as booleans became 0.0 / 1.0 below, and a classification target read them as classes 0 / 1
        self.boolean = bool(self.boolean) or np.asarray(self.values).dtype.kind == "b"
        refuse_narrow_float_times(self.timestamps, "BehaviourSeries.timestamps")
        self.timestamps = as_real_numbers(self.timestamps, "BehaviourSeries.timestamps", "times in seconds (real numbers)")
        self.values = as_real_numbers(self.values, "BehaviourSeries.values", "numeric samples (real numbers)")
        if self.boolean and not np.isin(self.values, (0.0, 1.0)).all():
            bad = self.values[~np.isin(self.values, (0.0, 1.0))].reshape(-1)[0]
            raise RecordingValidationError(f"BehaviourSeries.values: boolean=True expects values 0 / 1 (False / True), "
                                           f"got {bad}")
        # None (no unit) was kept and failed later in decoding with "'NoneType' object has no attribute 'strip'"
        if self.unit is None:
            self.unit = ""
        elif isinstance(self.unit, bytes):
            self.unit = self.unit.decode("utf-8", "replace")
        elif not isinstance(self.unit, str):
            raise RecordingValidationError(f"BehaviourSeries.unit: expected text such as 'rad' or 'cm/s' (or '' / None "
                                           f"for none), got {type(self.unit).__name__} {self.unit!r}")
        # a fixed-width string (numpy 'U' / 'S', an HDF5 attribute written by MATLAB or h5py) keeps its padding:
        # "cm  " or "rad\0\0" was kept as it is, so it differed from "cm" and "rad" (unit_is_degrees, radians checks)
        self.unit = unit_text(self.unit)


@dataclass
class Stimulus:
    """A stimulus: either video frames with frame times, or categorical ids over intervals.

    Attributes:
        frames: ``(n_frames, height, width)`` grey levels (any real dtype: bool, integer or
            float; windows read them as float32 as they are, not rescaled, so uint8 frames stay
            0-255 and a ``"zscore"`` video modality normalises them with the training frames'
            statistics), or ``None``; height and width >= 1. Colour frames are refused (average
            the channels first).
        frame_times: ``(n_frames,)`` float64 onset of each frame, seconds; ``None`` when
            ``frames`` is (onsets without frames are refused).
        ids: ``(n_intervals,)`` int64 category per interval, or ``None``.
        intervals: ``(n_intervals, 2)`` float64 ``[start, stop)`` seconds for ``ids``.
        names: category names, index = id.
        description: free text about the stimulus (e.g. the assumed values of rendered frames,
            :func:`hf_neuroformer.stimuli.render_drifting_gratings`), or ``None``.
        field_of_view: ``(height, width)`` of a frame in degrees of visual angle (what the frames
            span on the screen, e.g. :attr:`hf_neuroformer.stimuli.GratingParams.field_of_view`;
            the attention maps of :mod:`hf_neuroformer.analysis.visual_attention` are drawn in it),
            or ``None`` where it is not known (sizes are then in pixels only). Kept as a tuple of
            two Python floats; :func:`hf_neuroformer.io.write_nwb` stores it and
            :func:`hf_neuroformer.io.read_nwb` reads it back.

    Raises:
        RecordingValidationError: ``field_of_view`` that is not two finite numbers > 0 (degrees),
            here and again in :meth:`SpikeRecording.validate` (a value set after construction).
    """

    frames: Optional[np.ndarray] = None
    frame_times: Optional[np.ndarray] = None
    ids: Optional[np.ndarray] = None
    intervals: Optional[np.ndarray] = None
    names: Optional[List[str]] = None
    description: Optional[str] = None
    field_of_view: Optional[Tuple[float, float]] = None

    def __post_init__(self):
        if self.field_of_view is not None:
            self.field_of_view = as_field_of_view(self.field_of_view, "Stimulus.field_of_view")


def as_field_of_view(value, what: str) -> Tuple[float, float]:
    """``(height, width)`` degrees of visual angle as two Python floats.

    Raises:
        RecordingValidationError: naming ``what``, when ``value`` is not two real, finite numbers > 0
            (text, a bool, NaN, 0, a negative size or a third value).
    """
    arr = np.asarray(value, dtype=object).ravel() if not isinstance(value, (str, bytes)) else None
    ok = (arr is not None and arr.size == 2 and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                                                  and math.isfinite(float(v)) and float(v) > 0 for v in arr))
    if not ok:
        raise RecordingValidationError(f"{what}: expected (height, width) of a frame in degrees of visual angle, two "
                                       f"finite numbers > 0, got {value!r}")
    return float(arr[0]), float(arr[1])


def _is_missing_label(v) -> bool:
    """``None`` or a float NaN (Python's or numpy's): a missing event label."""
    return v is None or (isinstance(v, (float, np.floating)) and bool(np.isnan(v)))


def check_label_types(labels, field_name: str) -> None:
    """Refuse event labels that mix text and numbers (``[1, "a"]``): numpy turned such a list into
    text (``1`` became ``'1'``) without a word, so a label 1 of one stream was another class than
    the int 1 of the same events elsewhere, and an object array kept the mix, which the categorical
    classes and NWB columns cannot hold as one type.

    Args:
        labels: the labels as passed (list, tuple or array; ``None`` passes).
        field_name: the field named in the message (``events['licks'].labels``).

    Raises:
        RecordingValidationError: ``labels`` hold both text (``str`` / ``bytes``) and other values
            (``None`` or a float NaN, a missing label, is neither: ``["a", nan]`` passes here and
            its gap is refused with a count where the labels are fitted); the message gives each
            type found with its count and the first text and non-text label with their index.
    """
    if labels is None or (isinstance(labels, np.ndarray) and labels.dtype != object):
        return  # a numeric or text array holds one type
    try:
        flat = np.asarray(labels, dtype=object).ravel()
    except (TypeError, ValueError):
        return  # not an array of labels at all: refused where it is read
    # None and a float NaN (pandas' missing value: ["a", nan] from a column with gaps) are missing
    # labels, not a type: the categorical fit refuses them with a count (fit_modalities)
    present = np.array([not _is_missing_label(v) for v in flat], dtype=bool)
    is_text = np.array([isinstance(v, (str, bytes, np.str_, np.bytes_)) for v in flat], dtype=bool)
    if is_text.all() or not is_text.any() or not (present & ~is_text).any():
        return
    counts: Dict[str, int] = {}
    for v in flat[present]:  # numpy scalars by their Python kind (np.int64 counts as int)
        name = ("str" if isinstance(v, (str, bytes))
                else "bool" if isinstance(v, (bool, np.bool_))
                else "int" if isinstance(v, numbers.Integral)
                else "float" if isinstance(v, numbers.Real) else type(v).__name__)
        counts[name] = counts.get(name, 0) + 1
    found = ", ".join(f"{n} {t}" for t, n in counts.items())
    i_text, i_other = int(np.argmax(is_text)), int(np.argmax(present & ~is_text))
    text, other = (v.item() if isinstance(v, np.generic) else v
                   for v in (flat[i_text], flat[i_other]))
    raise RecordingValidationError(
        f"{field_name}: expected labels of one type (all int or all str), got a mix of {found} "
        f"(first text label {text!r} at index {i_text}, first other {other!r} at "
        f"index {i_other}); numpy would have turned every label into text: convert them to one "
        "type first")


@dataclass
class EventSeries:
    """Point events on the recording's clock (reward deliveries, licks, stimulus onsets, TTLs,
    ripple onsets).

    Attributes:
        times: ``(n_events,)`` float64, seconds, ascending (ties allowed), finite, inside the
            recording's ``time_domain`` (checked by :meth:`SpikeRecording.validate`; readers sort,
            drop and count instead, see :func:`hf_neuroformer.events.clean_events`).
        labels: ``(n_events,)`` label per event (int64 or str object array), or ``None`` for an
            unlabelled stream (a categorical modality then has one class: the stream's name).
        description: free text (where the events come from).

    Raises:
        RecordingValidationError: ``times`` that are not real numbers (text, complex), or are held
            as float32 / float16 (their rounding moves times across window and bin edges), naming
            ``EventSeries.times``; ``labels`` that mix text and numbers (:func:`check_label_types`).
    """

    times: np.ndarray
    labels: Optional[np.ndarray] = None
    description: str = ""

    def __post_init__(self):
        refuse_narrow_float_times(self.times, "EventSeries.times")
        # text failed with numpy's "could not convert string to float: np.str_('a')", naming no field, and complex
        # times lost their imaginary part with only numpy's ComplexWarning (as BehaviourSeries.timestamps did)
        self.times = as_real_numbers(self.times, "EventSeries.times", "times in seconds (real numbers)")
        if self.labels is not None:
            check_label_types(self.labels, "EventSeries.labels")  # [1, "a"] became ['1', 'a']
            lab = np.asarray(self.labels)
            if lab.dtype.kind in "US" or lab.dtype == object:
                # read again as objects: numpy's text array of ["a", nan] held the text 'nan',
                # a class, where the NaN is a missing label
                lab = np.asarray(self.labels, dtype=object).reshape(lab.shape)
                lab = np.array([v.decode() if isinstance(v, bytes) else v for v in lab.ravel()],
                               dtype=object).reshape(lab.shape)
            self.labels = lab
        self.description = str(self.description or "")

    def __len__(self) -> int:
        return int(self.times.shape[0]) if self.times.ndim else 1


def _as_session_value(value, field_name: str):
    """One number (as a Python int / float / bool) or text for :attr:`SpikeRecording.session_info`."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    # as Python int / float (a Fraction or Decimal is no JSON number: write_nwb stores them as JSON)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise RecordingValidationError(
        f"{field_name}: expected one number or text for the whole session, got {type(value).__name__}"
        + (f" of shape {np.shape(value)}" if hasattr(value, "shape") else ""))


def session_values(info) -> Dict[str, Any]:
    """``name -> value`` of :attr:`SpikeRecording.session_info` as Python int / float / bool / str
    (what the constructor keeps; a reader that sets the field afterwards, or a numpy scalar put
    there, is converted again by :func:`~hf_neuroformer.io.write_nwb`).

    Raises:
        RecordingValidationError: a value that is not one number or text, naming it.
    """
    return {str(k): _as_session_value(v, f"session_info[{str(k)!r}]") for k, v in info.items()}


@dataclass
class SpikeRecording:
    """Spike trains of a set of units on one clock.

    Args:
        spike_times: ``(n_spikes,)`` float64 seconds, sorted ascending, finite, >= 0.
        unit_ids: ``(n_spikes,)`` int64 index of the unit that fired each spike, in
            ``[0, n_units)``.
        unit_names: one name per unit, not ``""`` and without whitespace (a unit token is
            ``"<session>/<unit name>"``; the readers replace it, see :func:`names_without_whitespace`);
            ``/`` is allowed (``"shank1/c1"``, token ``"<session>/shank1/c1"``); default ``"unit0", "unit1", ...``.
            ``n_units`` is ``len(unit_names)`` (units may have no spikes).
        unit_areas: brain area per unit (``""`` where unknown).
        time_domain: ``(start, stop)`` seconds the recording covers; default spans the spikes.
            Intervals (``time_domain``, each ``epochs`` value, every row of ``trials``,
            ``time_support`` and ``epoch_intervals``) are pairs of numbers; a ``(n, 3)`` table or a
            1-D list of onsets is refused, not reshaped (a single ``(2,)`` pair is one row).
        epochs: name -> ``(start, stop)`` seconds (e.g. ``{"wake": (600.0, 1200.0)}``), finite,
            ``stop > start``, inside ``time_domain``. Any string is a name (``"1"``, ``""`` too).
        trials: ``(n_trials, 2)`` float64 ``[start, stop)`` seconds, or ``None``; finite,
            ``stop > start``, inside ``time_domain`` and ordered by start time (ties and overlaps
            allowed). Unsorted trials are refused rather than sorted here, so that trial ``i`` is
            the same trial in every copy of the recording (NWB files, ``splits.json``
            ``trial_index``); sort ``trials`` and every ``trial_info`` column together first.
        trial_info: per-trial columns (name -> ``(n_trials,)`` array); only with ``trials``. Names
            here, in ``behaviour`` and in ``events`` are kept as text (``str(name)``; ``0`` and
            ``"0"`` together are refused).
            Numeric columns can be decoding targets (``"trial:<name>"``); string columns (e.g.
            Zheng's ``task`` or ``boundary_type``) are kept and round-trip through NWB, but cannot
            be classification targets as they are (``hf_neuroformer.decoding`` expects numeric
            trial labels): map them to integer codes in a new column first. A list mixing booleans
            and numbers (``[True, 1, False, 0]``) is kept as an object array, not read as one int64
            column (True equals 1; :func:`~hf_neuroformer.io.write_nwb` keeps it apart as JSON
            text): as labels it is refused, naming the mix (NaN, a trial without a
            label, is no such number: ``[True, False, nan]`` reads as ``[1.0, 0.0, nan]``).
        behaviour: name -> :class:`BehaviourSeries`.
        stimulus: optional :class:`Stimulus`.
        events: name -> :class:`EventSeries` (point events: times in s, optional labels).
        session: session identifier, prefixes unit tokens in a multi-session vocabulary; not ``""``,
            without whitespace, as unit names, and without ``/``, which ends the session in a unit
            token (the readers replace both in a session read from a file, and name an empty one
            after the file, see :func:`session_from_file`).
        time_support: ``(n_intervals, 2)`` float64 ``[start, stop)`` seconds where the recording
            is defined (e.g. the windows a generator filled), sorted and non-overlapping;
            ``None`` means the whole ``time_domain``.
        epoch_intervals: name -> ``(n, 2)`` float64 ``[start, stop)`` rows, seconds, for an
            epoch made of several intervals (an NWB interval table such as A2929's
            ``sleep_ripples``: 594 rows). ``epochs[name]`` is then their span (first start, last
            stop) and :meth:`select_epoch` selects the union of the rows, not the span. Every
            name must be an epoch; rows finite, ``stop > start``, inside ``epochs[name]``.
        session_info: name -> one number or text for the whole session, as read from the file
            (e.g. the Steinmetz subset's ``accuracy``, the fraction of correct trials). Kept and
            shown by ``neuroformer inspect``; no model reads it.

    Raises:
        RecordingValidationError: ``epochs``, ``trial_info``, ``behaviour``, ``events`` or
            ``epoch_intervals`` not a dict (``None`` is taken as empty); unsorted, negative or
            non-finite spike times, unit indices outside ``[0, n_units)`` or not integers (text,
            booleans, fractions), ``unit_names`` / ``unit_areas`` given as one string, a unit name
            ``""`` or of whitespace only (names the units; see :func:`unnamed_units_message`), a unit name
            holding whitespace (``"a b"``, ``"a "``; see :func:`spaced_names_message`), a ``session``
            ``""`` (its unit tokens ``"/<unit name>"`` would have no session) or holding whitespace (the
            message suggests the name with each run replaced by ``_``) or ``/``
            (the session ends at the first ``/`` of a unit token; unit names may hold ``/``), mismatched
            lengths, ``spike_times`` or ``unit_ids`` of more than one dimension longer than 1 (``(n,)``,
            ``(n, 1)`` and ``(1, n)`` are ``n`` spikes; a ``(n, 2)`` array was flattened, pairing times
            and ids by their position in memory) or ragged; epochs that are not finite or lie outside the time domain (the message names
            ``epochs[name]``); trials that are not finite, not ordered by start or outside the time
            domain (names ``trials[i]``); ``trial_info`` without ``trials``, or a ``trial_info``
            column that is not one value per trial; interval arrays of another shape than
            ``(n, 2)`` (names the field and the shape); a ``behaviour`` entry that is not a
            :class:`BehaviourSeries`, values that are not ``(n,)`` or ``(n, n_dims)`` with one row
            per timestamp (and at least one column), timestamps that do not strictly increase; a ``stimulus`` that is not a
            :class:`Stimulus`; ``stimulus.intervals`` that are not finite ``(n, 2)`` rows with
            ``stop > start``, ``stimulus.ids`` without one id per interval, or an id that is not an
            integer >= 0 (or has no entry in ``stimulus.names``); ``stimulus.frames`` that are
            not ``(n, height, width)`` with height and width >= 1, or ``stimulus.frame_times``
            without frames (or not one onset per frame); a time domain that does not
            contain the spikes; event times that are not 1-D, finite, ascending and inside the time
            domain, or event labels whose length differs from the times (the message names
            ``events[name]`` and the first offending index); times of any field (spike times,
            ``time_domain``, epochs, trials, ``time_support``, ``epoch_intervals``, behaviour
            timestamps, event times, frame onsets) held as float32 / float16, widened silently before
            (float32 700.05 is 700.0499877929688 s, in the window before 700.05 s): the message names
            the field, the rounding, and why ``.astype(np.float64)`` is no fix
            (:func:`refuse_narrow_float_times`; readers widen a file's float32 times with a warning).
    """

    spike_times: np.ndarray
    unit_ids: np.ndarray
    unit_names: Optional[List[str]] = None
    unit_areas: Optional[List[str]] = None
    time_domain: Optional[Tuple[float, float]] = None
    epochs: Dict[str, Tuple[float, float]] = field(default_factory=dict)
    trials: Optional[np.ndarray] = None
    trial_info: Dict[str, np.ndarray] = field(default_factory=dict)
    behaviour: Dict[str, BehaviourSeries] = field(default_factory=dict)
    stimulus: Optional[Stimulus] = None
    session: str = "session0"
    time_support: Optional[np.ndarray] = None
    events: Dict[str, EventSeries] = field(default_factory=dict)
    epoch_intervals: Dict[str, np.ndarray] = field(default_factory=dict)
    session_info: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        # None for a mapping field means "none" (epochs=None failed with "'NoneType' object has no
        # attribute 'items'"); anything else that is not a mapping is refused by name
        for name, what in (("epochs", "name -> (start, stop) seconds"), ("trial_info", "column -> one value per trial"),
                           ("behaviour", "name -> BehaviourSeries"), ("events", "name -> EventSeries"),
                           ("epoch_intervals", "epoch name -> (n, 2) [start, stop) seconds"),
                           ("session_info", "name -> one value for the session")):
            value = getattr(self, name)
            if value is None:
                setattr(self, name, {})
            elif not isinstance(value, Mapping):
                raise RecordingValidationError(f"{name}: expected a dict ({what}) or None, got {type(value).__name__}")
            elif not isinstance(value, dict):
                setattr(self, name, dict(value))
        self.trial_info = {k: _trial_column(v) for k, v in _text_keys(self.trial_info, "trial_info").items()}
        self.behaviour = _text_keys(self.behaviour, "behaviour")
        self.events = _text_keys(self.events, "events")
        # a (n, 2) array was flattened, pairing times and ids by their position in memory (from_unsorted refused it)
        _refuse_unflat(self.spike_times, self.unit_ids)
        refuse_narrow_float_times(self.spike_times, "spike_times")
        self.spike_times = np.asarray(self.spike_times, dtype=np.float64).reshape(-1)
        self.unit_ids = _as_unit_indices(self.unit_ids)
        if self.unit_names is None:
            n = int(self.unit_ids.max()) + 1 if self.unit_ids.size else 0
            _check_implied_units(self.unit_ids, n)
            self.unit_names = [f"unit{i}" for i in range(n)]
        self.unit_names = [str(n) for n in _as_name_list(self.unit_names, "unit_names")]
        self._check_unit_names()
        self._check_session()
        if self.unit_areas is None:
            self.unit_areas = [""] * len(self.unit_names)
        self.unit_areas = [str(a) for a in _as_name_list(self.unit_areas, "unit_areas")]
        if self.trials is not None:
            self.trials = _as_interval_rows(self.trials, "trials")
        if self.time_domain is None and self.spike_times.size:
            self.time_domain = (float(self.spike_times[0]), float(np.nextafter(self.spike_times[-1], np.inf)))
        if self.time_domain is not None:
            self.time_domain = _as_start_stop(self.time_domain, "time_domain")
        self.epochs = {str(k): _as_start_stop(v, f"epochs[{str(k)!r}]") for k, v in self.epochs.items()}
        if self.time_support is not None:
            self.time_support = _as_interval_rows(self.time_support, "time_support")
        self.epoch_intervals = {str(k): _as_interval_rows(v, f"epoch_intervals[{str(k)!r}]")
                                for k, v in self.epoch_intervals.items()}
        self.session_info = session_values(self.session_info)
        if self.stimulus is not None and not isinstance(self.stimulus, Stimulus):
            # a dict or (ids, intervals) tuple failed with "'dict' object has no attribute 'intervals'"
            raise RecordingValidationError(
                f"stimulus: expected a Stimulus(ids=, intervals=, names=) or Stimulus(frames=, frame_times=), got "
                f"{type(self.stimulus).__name__}")
        if self.stimulus is not None and self.stimulus.intervals is not None:
            # a copy: the caller's Stimulus is left as given
            self.stimulus = dataclasses.replace(
                self.stimulus, intervals=_as_interval_rows(self.stimulus.intervals, "stimulus.intervals"))
        if self.stimulus is not None and self.stimulus.frame_times is not None:
            refuse_narrow_float_times(self.stimulus.frame_times, "stimulus.frame_times")
        if self.stimulus is not None and any(v is not None and not isinstance(v, np.ndarray)
                                             for v in (self.stimulus.frame_times, self.stimulus.frames)):
            # lists passed validation, then restrict() failed with "'>=' not supported between instances of
            # 'list' and 'float'"; arrays in a copy (the caller's Stimulus is left as given)
            st = self.stimulus
            self.stimulus = dataclasses.replace(
                st, frames=None if st.frames is None else np.asarray(st.frames),
                frame_times=None if st.frame_times is None else as_real_numbers(st.frame_times, "stimulus.frame_times",
                                                                                 "frame onsets in seconds (real numbers)"))
        self.validate()

    def _check_unit_names(self) -> None:
        """Refuse a unit name that cannot end a unit token ``"<session>/<unit name>"``: ``""``, one of
        whitespace only, or one holding whitespace; raise :class:`RecordingValidationError` naming
        ``unit_names``, the first such unit, how many there are and a fix. Called by the constructor
        and by :meth:`validate` (names set after construction, e.g. ``r.unit_names = ["a b", ""]``,
        passed ``validate()``)."""
        # kept, a name '' or '  ' gave the unit token '<session>/' and was refused only when tokenized
        unnamed = unnamed_units_message(
            self.unit_names, "unit_names", "a unit token '<session>/<unit name>' needs one: name every unit, e.g. "
            "unit_names=[n.strip() or f'unit{k}' for k, n in enumerate(unit_names)]")
        if unnamed is not None:
            raise RecordingValidationError(unnamed)
        # kept as given, while the readers replace it (with a warning); the tokenizer refused the recording only
        # when its units were added, and 'a' with 'a ' would be one unit once the whitespace is replaced or stripped
        spaced = spaced_names_message(self.unit_names)
        if spaced is not None:
            raise RecordingValidationError(spaced)

    def _check_session(self) -> None:
        """Refuse a ``session`` that cannot start a unit token ``"<session>/<unit name>"``: ``""``,
        one holding whitespace or ``/``; raise :class:`RecordingValidationError` naming ``session``,
        the value and a fix. Called by the constructor and by :meth:`validate` (a session set to ``""``
        after construction passed ``validate()``)."""
        # the same for the session, the other half of the token: 'a b' was kept and refused only when tokenized;
        # '' too, whose unit tokens '/unit0' have no session (read_nwb / read_npz give the file's stem instead)
        if str(self.session) == "":
            raise RecordingValidationError(
                "session: expected a session name, got '', which gives unit tokens without a session "
                f"('/{self.unit_names[0] if self.unit_names else 'unit0'}'; a unit token is '<session>/<unit name>'); "
                "name it, e.g. session='session0' (the readers name a file's empty session after the file)")
        if any(c.isspace() for c in str(self.session)):
            # whitespace only: the default name; a '/' is replaced too, or the fix would be refused for it
            fixed = "_".join(str(self.session).split()).replace("/", "_") or "session0"
            raise RecordingValidationError(
                f"session: expected a name without whitespace (a unit token '<session>/<unit name>' cannot hold it), "
                f"got {str(self.session)!r}; rename it, e.g. session={fixed!r} (each run of whitespace replaced by "
                "'_', as the readers do with a session read from a file)")
        # '/' too: it ends the session in a unit token, so session 'm' with unit '1/2' and session 'm/1' with unit
        # '2' gave the same token 'm/1/2'; 'a/b' was kept and refused only when tokenized. A unit name may hold '/'
        # ('shank1/c1'): the session is read back from a token up to its first '/' (NeuroformerTokenizer.session_of)
        if "/" in str(self.session):
            fixed = str(self.session).replace("/", "_")
            raise RecordingValidationError(
                f"session: expected a name without '/' (it separates the session from the unit name in a unit token "
                f"'<session>/<unit name>'), got {str(self.session)!r}; rename it, e.g. session={fixed!r} (each '/' "
                "replaced by '_', as the readers do with a session read from a file)")

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every invariant; raise :class:`RecordingValidationError` naming the field.

        Runs the constructor's checks of ``unit_names`` (a name, without whitespace) and ``session``
        too, so that fields set after construction are held to the same rules."""
        self._check_unit_names()
        self._check_session()
        st, td, ts = self.spike_times, self.time_domain, self.time_support
        td_ok = True
        if td is not None:
            t0, t1 = td
            td_ok = bool(np.isfinite(t0) and np.isfinite(t1) and t1 > t0)
        ts_ok = ts is None or not (np.any(~np.isfinite(ts)) or np.any(ts[:, 1] <= ts[:, 0])
                                   or np.any(ts[1:, 0] < ts[:-1, 1] - WINDOW_GRID))
        # the spikes are held to the time domain and the support only where those are intervals; else the checks
        # of those fields below name them (a NaN spike time first or last makes the default domain NaN)
        problem = _spike_problem(st, self.unit_ids, len(self.unit_names), td if td_ok else None,
                                 ts if td_ok and ts_ok else None, ascending=True)
        if problem is not None:
            raise RecordingValidationError(problem)
        if len(self.unit_areas) != len(self.unit_names):
            raise RecordingValidationError(
                f"unit_areas: expected {len(self.unit_names)} entries (one per unit), got {len(self.unit_areas)}"
            )
        if len(set(self.unit_names)) != len(self.unit_names):
            seen: Dict[str, List[int]] = {}
            for i, name in enumerate(self.unit_names):
                seen.setdefault(name, []).append(i)
            dups = [(name, idx) for name, idx in seen.items() if len(idx) > 1]
            shown = "; ".join(f"{name!r} at indices {idx[:5]}" for name, idx in dups[:3])
            more = f" (and {len(dups) - 3} more names)" if len(dups) > 3 else ""
            raise RecordingValidationError(
                f"unit_names: expected one different name per unit; repeated: {shown}{more}"
            )
        if not td_ok:
            raise RecordingValidationError(
                f"time_domain: expected finite (start, stop) with stop > start, got {self.time_domain}"
            )
        if not ts_ok:
            raise RecordingValidationError(
                "time_support: expected finite, sorted, non-overlapping [start, stop) rows with stop > start"
            )
        td = self.time_domain
        for name, (a, b) in self.epochs.items():
            if not (np.isfinite(a) and np.isfinite(b)):
                raise RecordingValidationError(f"epochs[{name!r}]: expected finite (start, stop) seconds, got ({a}, {b})")
            if not b > a:
                raise RecordingValidationError(f"epochs[{name!r}]: expected stop > start, got ({a}, {b})")
            if td is not None and (a < td[0] or b > td[1]):
                raise RecordingValidationError(
                    f"epochs[{name!r}]: expected an interval inside the time domain [{td[0]}, {td[1]}] s, got "
                    f"({a}, {b}); clip it, or widen time_domain"
                )
        for name, rows in self.epoch_intervals.items():
            if name not in self.epochs:
                raise RecordingValidationError(
                    f"epoch_intervals[{name!r}]: expected the name of an epoch (epochs[{name!r}] = the rows' span), "
                    f"this recording has epochs {sorted(self.epochs)}"
                )
            a, b = self.epochs[name]
            bad = np.flatnonzero(~np.isfinite(rows).all(1) | (rows[:, 1] <= rows[:, 0])
                                 | (rows[:, 0] < a - WINDOW_GRID) | (rows[:, 1] > b + WINDOW_GRID))
            if bad.size:
                raise RecordingValidationError(
                    f"epoch_intervals[{name!r}][{bad[0]}]: expected finite [start, stop) seconds with stop > start "
                    f"inside epochs[{name!r}] = ({a}, {b}), got ({rows[bad[0], 0]}, {rows[bad[0], 1]})"
                )
        if self.trials is None:
            if self.trial_info:
                raise RecordingValidationError(
                    f"trial_info: given ({sorted(self.trial_info)}) but trials is None; pass trials= "
                    "((n_trials, 2) [start, stop) seconds) with one trial_info value per trial"
                )
        else:
            tr = self.trials
            bad = np.flatnonzero(~np.isfinite(tr).all(1) | (tr[:, 1] <= tr[:, 0]))
            if bad.size:
                i = bad[0]
                raise RecordingValidationError(
                    f"trials[{i}]: expected finite [start, stop) seconds with stop > start, got "
                    f"({tr[i, 0]}, {tr[i, 1]}) ({bad.size} such trials in all)"
                )
            dec = np.flatnonzero(np.diff(tr[:, 0]) < 0)
            if dec.size:
                i = dec[0] + 1
                raise RecordingValidationError(
                    f"trials[{i}]: expected trials ordered by start time, trial {i} starts at {tr[i, 0]} s, before "
                    f"trial {i - 1} ({tr[i - 1, 0]} s); sort trials and every trial_info column with the same "
                    "order (np.argsort(trials[:, 0], kind='stable')) so that trial indices are the same in every "
                    "copy of the recording (NWB files keep this order)"
                )
            if td is not None:
                out = np.flatnonzero((tr[:, 0] < td[0]) | (tr[:, 1] > td[1]))
                if out.size:
                    i = out[0]
                    # most trials outside and ending far beyond it: trial times in ms (widening the domain is no fix)
                    ms = (out.size > len(tr) / 2 and tr[:, 1].max() > td[1] + 10 * (td[1] - td[0])
                          and tr[:, 0].min() >= 0)
                    raise RecordingValidationError(
                        f"trials[{i}]: expected a trial inside the time domain [{td[0]}, {td[1]}] s, got "
                        f"({tr[i, 0]}, {tr[i, 1]}) ({out.size} trials outside in all); "
                        + ("the trials reach far past the spikes: trial times must be seconds on the spikes' clock "
                           "(milliseconds? divide them by 1000); else " if ms else "")
                        + "pass time_domain=(start, "
                        "stop) of the whole recording (without it the time domain spans the spikes only, from the "
                        "first spike to just after the last), or leave those trials out"
                    )
            for key, col in self.trial_info.items():
                if np.ndim(col) == 0:
                    raise RecordingValidationError(
                        f"trial_info[{key!r}]: expected {len(self.trials)} values (one per trial), got the single "
                        f"value {col!r}")
                if len(col) != len(self.trials):
                    raise RecordingValidationError(
                        f"trial_info[{key!r}]: expected {len(self.trials)} values (one per trial), got {len(col)}"
                    )
        for name, series in self.behaviour.items():
            if not isinstance(series, BehaviourSeries):
                raise RecordingValidationError(
                    f"behaviour[{name!r}]: expected a BehaviourSeries(timestamps, values, unit), got "
                    f"{type(series).__name__}")
            if series.values.ndim not in (1, 2):
                raise RecordingValidationError(
                    f"behaviour[{name!r}].values: expected (n_samples,) or (n_samples, n_dims), got shape "
                    f"{series.values.shape}; reshape it to (n_samples, n_dims) or give one series per variable")
            if series.values.ndim == 2 and series.values.shape[1] == 0:
                # accepted, it failed later inside numpy ("zero-size array to reduction operation fmin")
                raise RecordingValidationError(
                    f"behaviour[{name!r}].values: expected (n_samples,) or (n_samples, n_dims) with at least one "
                    f"column, got shape {series.values.shape}; leave the series out")
            ts = series.timestamps
            if ts.ndim != 1 or series.values.shape[0] != ts.shape[0]:
                raise RecordingValidationError(
                    f"behaviour[{name!r}]: expected values with one row per timestamp, got "
                    f"timestamps {ts.shape} and values {series.values.shape}"
                )
            # finite checked first: it named no sample, and a NaN passed the order check
            bad = (not_finite_message(ts, f"behaviour[{name!r}].timestamps", "sample")
                   or not_ascending_message(ts, f"behaviour[{name!r}].timestamps", "sample", strictly=True))
            if bad is not None:
                raise RecordingValidationError(bad)
        self._validate_events()
        self._validate_stimulus_intervals()
        self._validate_frames()

    def _validate_stimulus_intervals(self) -> None:
        """Categorical stimulus: finite ``[start, stop)`` rows with ``stop > start`` and one id per
        row. Unchecked, a 1-D ``intervals`` failed later inside :meth:`restrict` (numpy's "too many
        indices for array") and ids of another length than the intervals were accepted."""
        stim = self.stimulus
        if stim is None:
            return
        iv = stim.intervals
        if stim.ids is not None and iv is None:
            raise RecordingValidationError("stimulus.ids: given without stimulus.intervals; expected an (n, 2) "
                                           "[start, stop) row (s) per id")
        if iv is None:
            return
        bad = np.flatnonzero(~np.isfinite(iv).all(1) | (iv[:, 1] <= iv[:, 0]))
        if bad.size:
            i = bad[0]
            raise RecordingValidationError(
                f"stimulus.intervals[{i}]: expected finite [start, stop) seconds with stop > start, got "
                f"({iv[i, 0]}, {iv[i, 1]}) ({bad.size} such rows in all)")
        if stim.ids is not None and np.shape(stim.ids) != (len(iv),):
            raise RecordingValidationError(
                f"stimulus.ids: expected one id per interval ({len(iv)}), got shape {np.shape(stim.ids)}")
        if stim.ids is not None and len(iv):
            # an id indexes stimulus.names: write_nwb cut 0.5 to 0 and gave -1 the last name without a
            # word, and failed on a text id with int()'s "invalid literal"
            ids = np.asarray(stim.ids)
            try:
                f = ids.astype(np.float64) if ids.dtype.kind in "biufO" else None
            except (TypeError, ValueError):
                f = None
            bad = np.arange(len(ids)) if f is None else np.flatnonzero(~np.isfinite(f) | (f < 0) | (f != np.round(f)))
            if bad.size:
                i = bad[0]
                raise RecordingValidationError(
                    f"stimulus.ids[{i}]: expected an integer category index >= 0 (into stimulus.names), got "
                    f"{ids[i]!r}; map labels to indices first, e.g. names, ids = np.unique(labels, return_inverse=True)")
            if stim.names is not None and f.max() >= len(stim.names):
                i = int(np.argmax(f))
                raise RecordingValidationError(
                    f"stimulus.ids[{i}]: id {int(f[i])} has no name (stimulus.names holds {len(stim.names)}); "
                    "expected ids in 0..len(names)-1")

    def _validate_frames(self) -> None:
        """Stimulus frames: ``(n, H, W)`` finite grey levels (``H, W >= 1``), one finite, strictly
        increasing onset (s) per frame; no ``frame_times`` without frames. A NaN pixel would make
        every window that reads the frame NaN (losses, likelihoods, sampling), so it is refused
        here, naming the first bad frame."""
        stim = self.stimulus
        if stim is None:
            return
        if stim.frames is None:  # field_of_view is kept (it describes no frames then; replace() keeps it)
            # onsets without frames were kept, unused by every modality, without a word (as stimulus.ids
            # without stimulus.intervals, a half-given input is refused)
            if stim.frame_times is not None:
                raise RecordingValidationError("stimulus.frame_times: given without stimulus.frames; expected "
                                               "(n_frames, height, width) frames with one onset per frame, or "
                                               "frame_times=None")
        if stim.field_of_view is not None:  # set after construction (dataclasses.replace checks it again)
            as_field_of_view(stim.field_of_view, "stimulus.field_of_view")
        if stim.frames is None:
            return
        frames = np.asarray(stim.frames)
        # a frame without pixels ((4, 0, 3)) was accepted, with nothing for a video modality to read
        if frames.ndim != 3 or 0 in frames.shape[1:]:
            # colour frames named no cause; read_nwb averages a colour series' channels, say how to do the same
            # grey frames with a channel axis of one (n, H, W, 1), which read_nwb takes, named no cause either
            colour = ("; colour frames (channels last) can be made grey levels with frames[..., :3].mean(-1), "
                      "as read_nwb does" if frames.ndim == 4 and frames.shape[-1] in (3, 4) else
                      "; grey frames with a channel axis of one (channels last) are frames[..., 0], as read_nwb "
                      "reads them" if frames.ndim == 4 and frames.shape[-1] == 1 else "")
            raise RecordingValidationError(f"stimulus.frames: expected (n_frames, height, width) grey levels with "
                                           f"height and width >= 1, got shape {frames.shape}{colour}")
        if stim.frame_times is None or len(stim.frame_times) != len(frames):
            raise RecordingValidationError(f"stimulus.frame_times: expected one onset per frame ({len(frames)}), got "
                                           f"{None if stim.frame_times is None else len(stim.frame_times)}")
        ft = np.asarray(stim.frame_times, dtype=np.float64)
        # the first bad onset is named (the message said only "expected finite, strictly increasing onsets")
        bad = (not_finite_message(ft, "stimulus.frame_times", "frame")
               or not_ascending_message(ft, "stimulus.frame_times", "frame", strictly=True))
        if bad is not None:
            raise RecordingValidationError(bad + "; give one onset (s) per frame in display order: sort frames and "
                                           "onsets together (order = np.argsort(frame_times, kind='stable')), and "
                                           "drop a frame logged twice at one onset")
        # windows read the frames as float32: complex grey levels lost their imaginary part (numpy warned
        # once per window), object arrays failed inside isfinite, and float64 values beyond float32 became inf
        if frames.dtype.kind not in "biuf":
            raise RecordingValidationError(f"stimulus.frames: expected real grey levels (bool, integer or float "
                                           f"dtype), got dtype {frames.dtype}")
        if frames.dtype.kind == "f" and frames.dtype.itemsize > 4 and frames.size:
            with np.errstate(invalid="ignore"):
                big = np.abs(frames.reshape(len(frames), -1)) > np.finfo(np.float32).max
            if big.any():
                k = int(np.flatnonzero(big.any(1))[0])
                raise RecordingValidationError(f"stimulus.frames: expected grey levels within float32's range "
                                               f"(|x| <= {np.finfo(np.float32).max:.3g}; windows read frames as "
                                               f"float32), frame {k} (onset {ft[k]} s) holds larger values")
        bad = ~np.isfinite(frames.reshape(len(frames), -1)).all(1) if frames.size else np.zeros(0, bool)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise RecordingValidationError(f"stimulus.frames: expected finite grey levels, "
                                           f"{count_noun(bad.sum(), 'frame')} {'holds' if bad.sum() == 1 else 'hold'} NaN or infinite pixels, the first is frame {k} (onset {ft[k]} s)")

    def _validate_events(self) -> None:
        """Event streams: 1-D finite ascending times inside the time domain, one label per time."""
        for name, ev in self.events.items():
            if not isinstance(ev, EventSeries):
                raise RecordingValidationError(
                    f"events[{name!r}]: expected an EventSeries, got {type(ev).__name__} (readers and "
                    "from_arrays(events=...) accept times or (times, labels))")
            t = ev.times
            if t.ndim != 1:
                raise RecordingValidationError(f"events[{name!r}].times: expected a 1-D array of seconds, got shape {t.shape}")
            bad = not_finite_message(t, f"events[{name!r}].times", "event")
            if bad is not None:
                raise RecordingValidationError(bad + "; readers drop them with a count")
            back = not_ascending_message(t, f"events[{name!r}].times", "event")
            if back is not None:
                raise RecordingValidationError(back + "; sort them, or build the recording with "
                                               "hf_neuroformer.io.from_arrays(..., events=...), which sorts and counts")
            if ev.labels is not None and (ev.labels.ndim != 1 or ev.labels.shape[0] != t.shape[0]):
                raise RecordingValidationError(
                    f"events[{name!r}].labels: expected one label per event ({t.shape[0]}), got shape {ev.labels.shape}")
            if self.time_domain is not None and t.size:
                t0, t1 = self.time_domain
                out = np.flatnonzero((t < t0) | (t >= t1))
                if out.size:
                    raise RecordingValidationError(
                        f"events[{name!r}].times: expected times inside the time domain [{t0}, {t1}) s, event "
                        f"{out[0]} is at {t[out[0]]} s ({out.size} outside in all)")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_unsorted(cls, spike_times, unit_ids, **kwargs) -> "SpikeRecording":
        """Build a recording from spikes in any order: sorts by time, then unit index.

        Arrays of more than one non-singleton dimension are refused (``(n,)``, ``(n, 1)`` and
        ``(1, n)`` are taken as ``n`` spikes). Non-finite or negative times and unit ids that are
        not integers are refused before the sort, so the spike index in the message is the position in the arrays given (after the
        sort a NaN moved to the end and the index named a different spike).

        Args:
            spike_times: ``(n_spikes,)`` float spike times, s (>= 0, finite).
            unit_ids: ``(n_spikes,)`` integer unit index of each spike.
            **kwargs: the other fields of :class:`SpikeRecording`.

        Raises:
            RecordingValidationError: as :class:`SpikeRecording`.
        """
        _refuse_unflat(spike_times, unit_ids)
        refuse_narrow_float_times(spike_times, "spike_times")
        st = np.asarray(spike_times, dtype=np.float64).reshape(-1)
        ui = np.asarray(unit_ids).reshape(-1)
        if st.shape != ui.shape:
            raise RecordingValidationError(
                f"spike_times and unit_ids: expected the same length, got {st.shape[0]} and {ui.shape[0]}"
            )
        # validate's wording (one helper), the spike named by its position in the arrays given
        bad = _spike_time_problem(st, " (in the order given)")
        if bad is not None:
            raise RecordingValidationError(bad)
        ui = _as_unit_indices(ui)
        order = np.lexsort((ui, st))
        return cls(spike_times=st[order], unit_ids=ui[order], **kwargs)

    def copies_with_spikes(self, spikes, sessions) -> List["SpikeRecording"]:
        """Copies of this recording that differ in their spikes and ``session`` only: what
        :meth:`from_unsorted` returns for each ``(spike_times, unit_ids)`` with this recording's
        other fields, checked and sorted for all copies at once.

        Built one by one, the constructor's checks of the fields the copies share (units, areas,
        time domain, support ...) took about 0.15 ms a recording, most of the time of
        :func:`~hf_neuroformer.generate_spikes` with many samples of a short window (20,000
        samples: 3 of 7 CPU seconds). Here the spikes of all copies are checked together, by the
        rules :meth:`validate` holds a recording's spikes to (finite, >= 0 s, inside the time
        domain and the support; unit indices in ``[0, n_units)``), and each copy's ``session`` by
        the constructor's rule; this recording's fields by :meth:`validate`, once. Spikes given
        other than as 1-D float64 times and integer ids go through :meth:`from_unsorted`. Lists, dicts and arrays of the shared fields are
        copied one level deep, so that changing one copy's ``unit_names`` or ``time_support``
        leaves the others as they are.

        Args:
            spikes: one ``(spike_times, unit_ids)`` per copy: ``(n_spikes,)`` float64 times, s, in
                any order, and ``(n_spikes,)`` integer unit indices into ``unit_names``.
            sessions: one session name per copy (see :class:`SpikeRecording`).

        Returns:
            ``len(spikes)`` recordings, spikes sorted by time, then unit index.

        Raises:
            ValueError: ``spikes`` and ``sessions`` of different lengths.
            RecordingValidationError: this recording breaks an invariant (:meth:`validate`), or
                spikes or a session that :meth:`from_unsorted` refuses, with its message (the copies
                are then built through it one by one, to name the first).
        """
        spikes, sessions = list(spikes), list(sessions)
        self.validate()  # the fields the copies share, as they are now
        if len(spikes) != len(sessions):
            raise ValueError(f"sessions: expected one session per copy ({len(spikes)} copies), got {len(sessions)}")
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del shared["spike_times"], shared["unit_ids"], shared["session"]
        pairs = [(np.asarray(t), np.asarray(u)) for t, u in spikes]
        counts = np.array([t.size for t, _ in pairs], dtype=np.int64)
        # arrays already in the form the constructor stores (1-D float64 times, integer ids of the same shape) are
        # taken as they are; from_unsorted converts any other form (int times, (n, 1) arrays) or refuses it
        simple = all(t.dtype == np.float64 and t.ndim == 1 and u.dtype.kind in "iu" and u.shape == t.shape
                     for t, u in pairs)
        if simple and pairs:
            st = np.concatenate([t for t, _ in pairs])
            ui = np.concatenate([u for _, u in pairs]).astype(np.int64)  # a uint64 id past int64 turns negative
            # validate's rules, on all copies at once; without a time domain a copy takes its spikes' (constructor)
            simple = not st.size or (self.time_domain is not None and _spike_problem(
                st, ui, len(self.unit_names), self.time_domain, self.time_support) is None)
        if not simple:  # the constructor names what is wrong, and where
            return [type(self).from_unsorted(t, u, session=s, **shared) for (t, u), s in zip(spikes, sessions)]
        if not pairs:
            return []
        copy_index = np.repeat(np.arange(len(pairs)), counts)
        order = np.lexsort((ui, st, copy_index))  # by copy, then as from_unsorted sorts
        ends = np.cumsum(counts)
        out = []
        for k, session in enumerate(sessions):
            rows = order[ends[k] - counts[k]:ends[k]]
            new = object.__new__(type(self))
            new.__dict__.update({name: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict)
                                        else v.copy() if isinstance(v, np.ndarray) else v)
                                 for name, v in shared.items()})
            new.spike_times, new.unit_ids, new.session = st[rows], ui[rows], session
            new._check_session()
            out.append(new)
        return out

    # ------------------------------------------------------------------ properties
    @property
    def n_units(self) -> int:
        """Number of units (``len(unit_names)``), spiking or not."""
        return len(self.unit_names)

    @property
    def n_spikes(self) -> int:
        """Number of spikes of all units (``spike_times.size``)."""
        return int(self.spike_times.size)

    @property
    def support(self) -> np.ndarray:
        """``(n, 2)`` float64 intervals where the recording is defined (``time_support`` or the domain)."""
        if self.time_support is not None:
            return self.time_support
        if self.time_domain is None:
            return np.zeros((0, 2))
        return np.asarray([self.time_domain], dtype=np.float64)

    @property
    def duration(self) -> float:
        """Total length of the support, seconds."""
        sup = self.support
        return float(np.sum(sup[:, 1] - sup[:, 0]))

    def firing_rates(self) -> np.ndarray:
        """``(n_units,)`` float64 mean firing rate of each unit, Hz: its spike count over
        :attr:`duration`, the summed length of :attr:`support` (``time_support`` when set, e.g. a
        generated recording's windows; else the time domain)."""
        counts = np.bincount(self.unit_ids, minlength=self.n_units).astype(np.float64)
        return counts / max(self.duration, 1e-12)

    def spike_trains(self) -> List[np.ndarray]:
        """One ``(n_spikes_u,)`` float64 array of spike times (s) per unit."""
        return [self.spike_times[self.unit_ids == u] for u in range(self.n_units)]

    def binned_counts(self, bin_size: float, start: float | None = None, stop: float | None = None) -> np.ndarray:
        """``(n_bins, n_units)`` int64 spike counts in bins of ``bin_size`` seconds.

        Bins start at ``start`` (default ``time_domain[0]``); ``n_bins = floor((stop - start) /
        bin_size)`` full bins up to ``stop`` (default ``time_domain[1]``), so ``n_bins`` is 0 when
        ``bin_size > stop - start``.

        Raises:
            ValueError: ``bin_size`` is not a finite number of seconds > 0; ``start`` / ``stop``
                are not finite or ``stop < start``; the recording has no time domain and
                ``start`` / ``stop`` are not given.
        """
        if not (np.isfinite(bin_size) and bin_size > 0):
            raise ValueError(f"bin_size: expected a finite positive number of seconds, got {bin_size}")
        if self.time_domain is None and (start is None or stop is None):
            raise ValueError("binned_counts: the recording has no time_domain; pass start and stop (s)")
        t0 = self.time_domain[0] if start is None else start
        t1 = self.time_domain[1] if stop is None else stop
        if not (np.isfinite(t0) and np.isfinite(t1)):
            raise ValueError(f"start / stop: expected finite seconds, got start={t0}, stop={t1}")
        if t1 < t0:
            raise ValueError(f"start / stop: expected stop >= start, got start={t0}, stop={t1}")
        n_bins = n_full_bins(t1 - t0, bin_size)
        counts = np.zeros((max(n_bins, 0), self.n_units), dtype=np.int64)
        if n_bins <= 0:
            return counts
        b = bin_index(self.spike_times - t0, bin_size)  # a spike on an edge starts its bin
        keep = (self.spike_times >= t0) & (b < n_bins)
        np.add.at(counts, (b[keep], self.unit_ids[keep]), 1)
        return counts

    # ------------------------------------------------------------------ restriction
    def restrict(self, start: float, stop: float) -> "SpikeRecording":
        """The part of the recording in ``[start, stop)`` seconds (absolute times kept); its time
        domain is ``[start, stop)`` clipped to this recording's (an interval that reaches past the
        recorded time does not extend it, so windows there are not taken for recorded silence).

        Behaviour samples, event times and trials are restricted to those that lie in the
        interval, stimulus intervals to those that overlap it, and stimulus frames to those on
        screen during it (the frame shown at ``start`` keeps its earlier onset) and the first one
        from ``stop`` on, whose onset ends the last one shown (:func:`frames_on_screen`). Epochs are clipped to it; an epoch of several intervals
        (:attr:`epoch_intervals`) keeps the rows that overlap it, clipped, and becomes their span
        (it is dropped when none is left). A trial that the interval covers only in
        part is dropped (its windows would run past the interval); the number dropped is given in
        a ``UserWarning`` (nothing is dropped silently). Edges are compared within 1 ns (as the
        windows take them, :data:`WINDOW_GRID`): a trial whose start or stop
        lies less than 1 ns outside the interval (float round-off, ``restrict(0.1 + 0.2, ...)`` for a
        trial at 0.3 s) is kept, that edge moved onto the interval's; one that overlaps the interval
        by less than 1 ns (ending on its start) lies outside it and is not counted as dropped.

        Raises:
            ValueError: ``stop <= start``, or the interval lies outside the time domain, or overlaps
                no interval of ``time_support`` (it would keep no recorded time).
        """
        if not stop > start:
            raise ValueError(f"restrict: expected stop > start, got start={start}, stop={stop}")
        if self.time_domain is not None and (stop <= self.time_domain[0] or start >= self.time_domain[1]):
            raise ValueError(
                f"restrict: [{start}, {stop}) s lies outside the recording's time domain {self.time_domain}"
            )
        lo, hi = np.searchsorted(self.spike_times, [start, stop], side="left")
        beh, events, stim = self._series_inside(np.array([[start, stop]], dtype=np.float64))
        trials, info = None, {}
        if self.trials is not None:
            # within 1 ns, as the windows take edges (WINDOW_GRID): a trial at 0.3 s is inside
            # restrict(0.1 + 0.2, ...), which starts at 0.30000000000000004 s
            m = (self.trials[:, 0] >= start - WINDOW_GRID) & (self.trials[:, 1] <= stop + WINDOW_GRID)
            # and a trial that overlaps the interval by under 1 ns (ends on its start) lies outside it, not in part
            partial = int(np.sum(~m & (self.trials[:, 0] < stop - WINDOW_GRID)
                                 & (self.trials[:, 1] > start + WINDOW_GRID)))
            if partial:
                warnings.warn(
                    f"restrict({start}, {stop}): dropped {partial} of {len(self.trials)} trials that the interval "
                    f"covers only in part; {int(m.sum())} trials lie wholly inside and are kept"
                )
            trials = self.trials[m]
            if len(trials):  # an edge up to 1 ns outside moves onto the interval's, so the trial lies in the time domain
                trials = np.stack([np.maximum(trials[:, 0], start), np.minimum(trials[:, 1], stop)], 1)
            info = {k: np.asarray(v)[m] for k, v in self.trial_info.items()}
        epochs = {
            k: (max(a, start), min(b, stop)) for k, (a, b) in self.epochs.items() if min(b, stop) > max(a, start)
        }
        support = None
        if self.time_support is not None:
            sup = np.clip(self.time_support, start, stop)
            support = sup[sup[:, 1] > sup[:, 0]]
            if not len(support):
                # a recording with an empty support: no recorded time, yet the processor tokenized any window in it
                # as silence (it checks windows against the support, and an empty one held no interval to fail)
                raise ValueError(_no_recorded_time(f"restrict: [{start}, {stop}) s", self.time_support))
        epoch_intervals = {}
        for k, rows in self.epoch_intervals.items():
            if k in epochs:
                clipped = np.clip(rows, max(start, epochs[k][0]), min(stop, epochs[k][1]))
                clipped = clipped[clipped[:, 1] > clipped[:, 0]]
                if len(rows) and not len(clipped):
                    # no interval of the epoch is left, so no time of it: the clipped span kept it, and
                    # select_epoch then took the whole span (time between the intervals)
                    del epochs[k]
                    continue
                epoch_intervals[k] = clipped
                if len(clipped):  # the span of the rows left, as epochs[k] is of its rows (select_epoch reads it)
                    epochs[k] = (float(clipped[:, 0].min()), float(clipped[:, 1].max()))
        # the units and the session are kept (the constructor copies the name lists)
        return dataclasses.replace(
            self,
            spike_times=self.spike_times[lo:hi],
            unit_ids=self.unit_ids[lo:hi],
            time_domain=((float(start), float(stop)) if self.time_domain is None else
                         (max(float(start), self.time_domain[0]), min(float(stop), self.time_domain[1]))),
            epochs=epochs,
            trials=trials,
            trial_info=info,
            behaviour=beh,
            stimulus=stim,
            time_support=support,
            events=events,
            epoch_intervals=epoch_intervals,
        )

    def select_units(self, units) -> "SpikeRecording":
        """The spikes of a subset of units, renumbered ``0..len(units)-1`` in the order given.

        Args:
            units: unit indices (integers, numpy's included; not bool or float) or unit names
                (``str``), no repeats.

        Returns:
            A :class:`SpikeRecording` with the same clock, trials, epochs, behaviour, stimulus,
            events and time support, and only these units (names and areas kept).

        Raises:
            ValueError: a name or index that is not a unit of this recording, an entry that is
                neither a name nor an integer index, a repeated unit, or an empty selection.
        """
        sel = list(units)
        if not sel:
            raise ValueError("units: expected at least one unit, got an empty selection")
        index = {n: i for i, n in enumerate(self.unit_names)}
        idx = []
        for u in sel:
            if isinstance(u, str):
                if u not in index:
                    raise ValueError(f"units: {u!r} is not a unit name of this recording ({self.n_units} units)")
                idx.append(index[u])
            else:
                if not is_whole_number(u):
                    raise ValueError(f"units: expected unit indices (int) or names (str), got {u!r} "
                                     f"({type(u).__name__})")
                i = int(u)
                if not 0 <= i < self.n_units:
                    raise ValueError(f"units: index {i} is outside [0, {self.n_units})")
                idx.append(i)
        if len(set(idx)) != len(idx):
            raise ValueError("units: expected each unit once, got repeats")
        new_id = np.full(self.n_units, -1, dtype=np.int64)
        new_id[idx] = np.arange(len(idx))
        keep = new_id[self.unit_ids] >= 0
        return SpikeRecording(
            spike_times=self.spike_times[keep],
            unit_ids=new_id[self.unit_ids[keep]],
            unit_names=[self.unit_names[i] for i in idx],
            unit_areas=[self.unit_areas[i] for i in idx],
            time_domain=self.time_domain,
            epochs=dict(self.epochs),
            trials=None if self.trials is None else self.trials.copy(),
            trial_info={k: np.asarray(v).copy() for k, v in self.trial_info.items()},
            behaviour=dict(self.behaviour),
            stimulus=self.stimulus,
            session=self.session,
            time_support=None if self.time_support is None else self.time_support.copy(),
            events=dict(self.events),
            epoch_intervals={k: v.copy() for k, v in self.epoch_intervals.items()},
            session_info=dict(self.session_info),
        )

    def select_epoch(self, name: str) -> "SpikeRecording":
        """Restrict to a named epoch (or interval) of :attr:`epochs`.

        An epoch of one interval (``"wake"``: 600-1200 s) gives :meth:`restrict` over it. An
        epoch made of several intervals (:attr:`epoch_intervals`, e.g. an NWB interval table:
        A2929's ``"sleep_ripples"``, 594 ripples of 21-286 ms, 37.6 s in all, spanning
        0.736-599.738 s) gives their union, not their span: the recording keeps only the spikes,
        behaviour samples and events inside the intervals and the frames on screen during them (the
        frame shown at an interval's start included, and the first one after the last interval,
        which ends the last one shown); ``time_support`` becomes the
        merged intervals (intersected with any support already there), so ``duration`` and
        firing rates count only the time inside them, and the split planner
        (:func:`~hf_neuroformer.windows.plan_splits`, time blocks along ``support``), the
        windows (a window and its past lie inside one interval) and generation (the model's split
        segments) never read the gaps between the intervals. Trials that do not lie wholly inside
        one interval are dropped and counted in a ``UserWarning``; ``time_domain`` is the span.
        Intervals shorter than a window with its past (ripples, with a 1 s past window) leave no
        window: the split planner then refuses the recording, naming the block length. For the
        span itself, select an epoch that covers it (A2929: ``"sleep"`` or
        ``"sleep_ripples_timesupport"``) or call ``restrict(*recording.epochs[name])``.

        Raises:
            KeyError: naming the epochs that exist when ``name`` is not one of them (or saying
                that there are none), and that epoch names are text when ``name`` is not a str.
            ValueError: the epoch overlaps no interval of ``time_support`` (no recorded time).
        """
        if name not in self.epochs:
            has = (f"this recording has epochs {sorted(self.epochs)}" if self.epochs else
                   "this recording has no epochs (named intervals; a Kilosort / Phy folder has none): leave the "
                   "epoch out to use the whole recording")
            if not isinstance(name, str):  # select_epoch(1) for the epoch named "1" listed ['1'] without a hint
                has += (f"; epoch names are text: select_epoch({str(name)!r})" if str(name) in self.epochs
                        else f"; epoch names are text, got {type(name).__name__} {name!r}")
            raise KeyError(f"epoch {name!r} not found; {has}")
        a, b = self.epochs[name]
        rows = self.epoch_intervals.get(name)
        iv = None if rows is None else _merge_intervals(rows)
        if iv is not None and len(iv) == 1:  # the one interval, not the epoch's span (which may be wider)
            return self.restrict(iv[0, 0], iv[0, 1])
        if iv is None or len(iv) < 2:
            return self.restrict(a, b)
        # the rows' own span (after a restrict() the epoch's span may be wider than its clipped rows)
        return self.restrict(iv[0, 0], iv[-1, 1])._restrict_to_union(iv, f"select_epoch({name!r})")

    def _series_inside(self, iv: np.ndarray) -> Tuple[Dict[str, "BehaviourSeries"], Dict[str, "EventSeries"],
                                                       Optional["Stimulus"]]:
        """``(behaviour, events, stimulus)`` inside the sorted, non-overlapping ``[start, stop)``
        rows of ``iv`` (``(n, 2)`` s), the rule of :meth:`restrict` (one row) and
        :meth:`select_epoch` (its intervals): a behaviour sample or an event whose time lies in a row;
        the frames on screen during a row (:func:`frames_on_screen`: the frame shown at a row's start
        has its onset before it; an onset test dropped it, a window at the start read no frame until
        the next onset, and a window after a gap a stale one) with the end marker; a presentation
        (``stimulus.intervals``) that overlaps a row, with its id."""
        beh = {k: BehaviourSeries(s.timestamps[m], s.values[m], s.unit, s.boolean)
               for k, s in self.behaviour.items() for m in [in_intervals(s.timestamps, iv)]}
        events = {k: EventSeries(ev.times[m], None if ev.labels is None else ev.labels[m], ev.description)
                  for k, ev in self.events.items() for m in [in_intervals(ev.times, iv)]}
        stim = self.stimulus
        if stim is not None:
            frames, ft, ids, ivs = stim.frames, stim.frame_times, stim.ids, stim.intervals
            if ft is not None:
                m = frames_on_screen(ft, iv)
                ft, frames = ft[m], None if frames is None else frames[m]
            if ivs is not None:
                k = np.searchsorted(iv[:, 0], ivs[:, 1], side="left") - 1
                m = (k >= 0) & (ivs[:, 0] < iv[np.clip(k, 0, None), 1])
                ivs, ids = ivs[m], None if ids is None else np.asarray(ids)[m]
            stim = Stimulus(frames=frames, frame_times=ft, ids=ids, intervals=ivs, names=stim.names,
                            description=stim.description, field_of_view=stim.field_of_view)
        return beh, events, stim

    def _restrict_to_union(self, iv: np.ndarray, what: str) -> "SpikeRecording":
        """The part of this recording inside the sorted, non-overlapping intervals ``iv``
        (``(n, 2)`` seconds, inside the time domain); see :meth:`select_epoch`."""
        keep = in_intervals(self.spike_times, iv)
        trials, info = self.trials, dict(self.trial_info)
        if trials is not None:
            m = inside_one_interval(trials[:, 0], trials[:, 1], iv)
            if not m.all():
                warnings.warn(
                    f"{what}: dropped {int((~m).sum())} of {len(trials)} trials that do not lie wholly inside one of "
                    f"the {len(iv)} intervals; {int(m.sum())} are kept"
                )
            trials = trials[m]
            info = {c: np.asarray(v)[m] for c, v in self.trial_info.items()}
        beh, events, stim = self._series_inside(iv)
        support = _intersect_intervals(self.support, iv)
        if not len(support):
            raise ValueError(_no_recorded_time(f"{what}: the union of its {len(iv)} intervals ({iv[0, 0]:g} to {iv[-1, 1]:g} s)",
                                               self.support))
        # the units, the session and the epochs are kept (the constructor copies the name lists
        # and the epochs mapping)
        return dataclasses.replace(
            self,
            spike_times=self.spike_times[keep],
            unit_ids=self.unit_ids[keep],
            time_domain=(float(iv[0, 0]), float(iv[-1, 1])),
            trials=trials,
            trial_info=info,
            behaviour=beh,
            stimulus=stim,
            time_support=support,
            events=events,
            epoch_intervals={k: v.copy() for k, v in self.epoch_intervals.items()},
        )

    def summary(self, config=None) -> str:
        """What ``neuroformer inspect`` prints: units and firing rates, epochs, trial columns,
        behaviour series, and per split the spikes per window against the token budget of
        ``config`` (a :class:`~hf_neuroformer.configuration_neuroformer.NeuroformerConfig`;
        default ``NeuroformerConfig()``). The numbers as a dict:
        :func:`hf_neuroformer.inspection.describe_recording`."""
        from .inspection import describe_recording, format_description

        return format_description(describe_recording(self, config))

    def __repr__(self) -> str:
        td = "None" if self.time_domain is None else f"({self.time_domain[0]:.3f}, {self.time_domain[1]:.3f}) s"
        return (
            f"SpikeRecording(session={self.session!r}, n_units={self.n_units}, n_spikes={self.n_spikes}, "
            f"time_domain={td}, epochs={sorted(self.epochs)}, "
            f"n_trials={0 if self.trials is None else len(self.trials)}, behaviour={sorted(self.behaviour)}"
            + (f", events={sorted(self.events)})" if self.events else ")")
        )


def _no_recorded_time(what: str, support: np.ndarray) -> str:
    """The message for a restriction that keeps no recorded time: ``what`` lies in gaps of ``support``."""
    overlaps = ("does not overlap the one interval" if len(support) == 1
                else f"overlaps none of the {len(support)} intervals")
    return (f"{what} holds no recorded time: it {overlaps} of the "
            f"recording's time support ({support[0, 0]:g} to {support[-1, 1]:g} s), so it would be read as silence; "
            "choose a stretch that overlaps the support (recording.support)")


def _merge_intervals(rows: np.ndarray, overlap: Optional[float] = None) -> np.ndarray:
    """``(n, 2)`` intervals sorted by start with overlapping or touching ones merged (touching:
    a hole under 1 ns; :func:`hf_neuroformer.windows.recorded_stretches` is this, for a support); with
    ``overlap`` (s), only those that overlap by more than it (abutting ones stay apart, also when
    float round-off puts a shared edge a hair inside: 1.4000000000000001 vs 1.4)."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    if overlap is None:  # vectorised: a row starts a new interval past the running stop + 1 ns
        if len(rows) < 2:
            return rows
        stop = np.maximum.accumulate(rows[:, 1])
        new = np.r_[True, rows[1:, 0] > stop[:-1] + WINDOW_GRID]
        last = np.r_[np.flatnonzero(new)[1:] - 1, len(rows) - 1]
        return np.stack([rows[new, 0], stop[last]], 1)
    out: List[List[float]] = []
    for a, b in rows:
        if out and a < out[-1][1] - overlap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _intersect_intervals(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Intersection of two sorted, non-overlapping ``(n, 2)`` interval lists."""
    out, i, j = [], 0, 0
    while i < len(x) and j < len(y):
        a, b = max(x[i, 0], y[j, 0]), min(x[i, 1], y[j, 1])
        if b > a:
            out.append((a, b))
        if x[i, 1] < y[j, 1]:
            i += 1
        else:
            j += 1
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def in_intervals(t, intervals: np.ndarray) -> np.ndarray:
    """``t``'s shape, bool: whether each time ``t`` (s) lies in a ``[start, stop)`` row of
    ``intervals`` (``(m, 2)`` float64 s, sorted, non-overlapping), exactly (no tolerance; the
    window edges' 1 ns grid is :func:`inside_one_interval`'s). All False when ``intervals`` is
    empty."""
    t = np.asarray(t, dtype=np.float64)
    if not len(intervals):
        return np.zeros(t.shape, dtype=bool)
    k = np.searchsorted(intervals[:, 0], t, side="right") - 1
    return (k >= 0) & (t < intervals[np.clip(k, 0, None), 1])


def inside_one_interval(starts, stops, intervals: np.ndarray, tolerance: float = WINDOW_GRID) -> np.ndarray:
    """``(n,)`` bool: whether ``[starts[i], stops[i])`` (s) lies inside one interval of ``intervals``
    (``(m, 2)`` float64 ``[start, stop)`` s, sorted by start), the one that starts last at or before
    ``starts[i]``; edges are compared within ``tolerance`` (default :data:`WINDOW_GRID`: a trial from
    ``0.30000000000000004`` s lies inside an interval from ``0.3`` s). All False when ``intervals``
    is empty. Which trials lie in a time support (:func:`hf_neuroformer.windows.plan_splits`,
    :meth:`SpikeRecording.select_epoch`), which windows in it."""
    starts = np.asarray(starts, dtype=np.float64)
    stops = np.asarray(stops, dtype=np.float64)
    if not len(intervals):
        return np.zeros(starts.shape, dtype=bool)
    k = np.searchsorted(intervals[:, 0], starts + tolerance, side="right") - 1
    return (k >= 0) & (stops <= intervals[np.clip(k, 0, None), 1] + tolerance)


def median_frame_interval(frame_times) -> Optional[float]:
    """The median interval between the onsets ``frame_times`` (increasing, s), s; None for fewer
    than 2 frames. The frame clock that :func:`frame_ends`, a video modality's fitted
    ``frame_interval`` and ``inspect``'s frame rate use."""
    ft = np.asarray(frame_times, dtype=np.float64)
    return float(np.median(np.diff(ft))) if len(ft) > 1 else None


def frame_ends(frame_times) -> np.ndarray:
    """``(n,)`` float64 s: when each frame of ``frame_times`` (increasing onsets, s) leaves the
    screen: the next frame's onset, the last one's onset plus the median frame interval (``inf``
    for a single frame)."""
    ft = np.asarray(frame_times, dtype=np.float64)
    if not len(ft):
        return ft
    step = median_frame_interval(ft)
    return np.append(ft[1:], ft[-1] + (np.inf if step is None else step))


def frames_on_screen(frame_times, intervals: np.ndarray, end_marker: bool = True) -> np.ndarray:
    """``(n,)`` bool: the frames of ``frame_times`` on screen at some time inside one of the sorted,
    non-overlapping ``[start, stop)`` rows of ``intervals`` (s): onset before the row's stop and
    end (:func:`frame_ends`) after its start; the frame shown at a row's start is one of them. With
    ``end_marker`` (what :meth:`SpikeRecording.restrict` keeps), also the first frame whose onset is
    at or after the last row's stop, though it is not on screen there: its onset is where the frame
    before it ends (without it that end became the median frame interval after the onset, and a
    frame held longer, an image shown for a second in a 60 Hz movie, left the screen early);
    ``end_marker=False`` for the frames shown (what a description or a count of them says)."""
    ft = np.asarray(frame_times, dtype=np.float64)
    if not len(ft) or not len(intervals):
        return np.zeros(ft.shape, dtype=bool)
    k = np.searchsorted(intervals[:, 0], frame_ends(ft), side="left") - 1  # the last row starting before the end
    keep = (k >= 0) & (ft < intervals[np.clip(k, 0, None), 1])
    marker = end_marker_frame(ft, intervals, keep) if end_marker else None
    if marker is not None:
        keep[marker] = True
    return keep


def end_marker_frame(frame_times, intervals: np.ndarray, shown: np.ndarray) -> Optional[int]:
    """The index of the end marker that :func:`frames_on_screen` adds to the frames ``shown``
    (its result with ``end_marker=False`` for the same ``frame_times`` and ``intervals``): the
    first frame whose onset is at or after the last row's stop, when a frame before it is shown;
    None when there is none (no such frame, nothing shown before it, or no rows). That frame is
    never one of ``shown`` (its onset is past every row's stop)."""
    ft = np.asarray(frame_times, dtype=np.float64)
    if not len(ft) or not len(intervals):
        return None
    after = int(np.searchsorted(ft, intervals[-1, 1], side="left"))
    return after if after < len(ft) and shown[:after].any() else None


def check_not_empty(recording: SpikeRecording, what: str = "recording") -> None:
    """Raise ``RecordingValidationError`` if the recording has no spikes."""
    if recording.n_spikes == 0:
        raise RecordingValidationError(
            f"{what}.spike_times: expected at least one spike, the recording is empty "
            f"(time_domain={recording.time_domain})"
        )


def check_is_recording(recording, flag: str = "recording") -> None:
    """Refuse anything but a :class:`SpikeRecording` where one is read (generation, the processor).

    A file's path failed later with Python's own ``AttributeError`` ("'str' object has no attribute
    'session'"), naming no argument.

    Args:
        recording: the object passed as the recording.
        flag: the argument named in the message.

    Raises:
        TypeError: ``recording`` is not a :class:`SpikeRecording`; for a path (``str`` or
            ``os.PathLike``) the message says to read it with :func:`hf_neuroformer.io.load_recording`,
            for a list of recordings (``generate_spikes`` with ``num_samples > 1``) to pass one.
    """
    import os

    if isinstance(recording, SpikeRecording):
        return
    if isinstance(recording, (str, os.PathLike)):
        hint = f"; read the file with hf_neuroformer.io.load_recording({str(recording)!r}) and pass what it returns"
    elif isinstance(recording, (list, tuple)) and recording and all(isinstance(r, SpikeRecording) for r in recording):
        hint = (f" of {len(recording)} recordings (generate_spikes returns one per sample for num_samples > 1); "
                "pass one of them")
    else:
        hint = "; read a file with hf_neuroformer.io.load_recording(path)"
    raise TypeError(f"{flag}: expected a SpikeRecording, got {type(recording).__name__}{hint}")


__all__ = ["SpikeRecording", "BehaviourSeries", "EventSeries", "Stimulus", "RecordingValidationError", "check_not_empty",
           "check_is_recording", "check_label_types",
           "refuse_narrow_float_times", "widen_stored_times", "widen_stored_rate",
           "names_without_whitespace", "spaced_names_message",
           "WINDOW_GRID", "MAX_IMPLIED_SILENT_UNITS", "unnamed_units_message", "file_names_without_whitespace",
           "session_from_file", "unit_text", "score_text", "inside_one_interval", "frame_ends", "frames_on_screen"]
