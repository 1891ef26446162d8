"""Point-event streams (reward deliveries, licks, stimulus onsets, TTLs, ripple onsets): turning
what a reader found into valid :class:`~hf_neuroformer.recording.EventSeries`.

Policy for bad event times (issue 9, acceptance 4), in one place:

* :class:`~hf_neuroformer.SpikeRecording` itself is strict: an event stream whose times are not
  finite, not ascending or outside the recording's ``time_domain`` raises
  :class:`~hf_neuroformer.recording.RecordingValidationError` naming ``events[name]``, the first
  offending index and the count.
* The readers (:func:`~hf_neuroformer.io.read_nwb`, :func:`~hf_neuroformer.io.from_arrays`)
  repair instead, through :func:`clean_events`, and say what they did in one ``UserWarning`` per
  stream with the counts: NaN / infinite times are dropped, the rest are sorted (stable, labels
  follow their times), and events outside the time domain are dropped. Nothing is dropped
  without a count. Events that repeat an earlier one exactly (same time, and same label where the
  stream is labelled) are kept, counted in that warning (an event logged twice?).
* Window edges: a window reads the events in ``[start, end)`` of its span, as it reads spikes (both
  on the 1 ns grid of window edges), so an event exactly at the edge between two windows is read by
  the later one, and an event at a recording's ``time_domain`` stop lies outside it (dropped with a
  count by the readers, refused by :class:`~hf_neuroformer.SpikeRecording`).
"""

from __future__ import annotations

import warnings
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from .recording import (EventSeries, RecordingValidationError, check_label_types, count_noun,
                        refuse_narrow_float_times)

__all__ = ["as_event_series", "clean_events"]


def as_event_series(name: str, value) -> EventSeries:
    """One event stream from ``times``, ``(times, labels)``, a mapping with ``times`` /
    ``labels`` / ``description``, or an :class:`EventSeries`.

    Args:
        name: the stream's name (for messages).
        value: see above; ``times`` in seconds, ``labels`` one per time (int or str). A tuple is
            ``(times, labels)`` when its first item is an array or sequence, else a tuple of times.

    Raises:
        RecordingValidationError: a mapping without ``times``, ``times`` that are not numbers or
            not 1-D, ``labels`` of another length, or ``labels`` that mix text and numbers
            (``[1, "a"]``; :func:`~hf_neuroformer.recording.check_label_types`).
    """
    if isinstance(value, Mapping) and "times" not in value:
        # a bare KeyError: 'times' named neither the stream nor what the mapping held
        raise RecordingValidationError(f"events[{name!r}]: expected a mapping with 'times' (and optionally 'labels', "
                                       f"'description'), got keys {sorted(map(str, value))}")
    if isinstance(value, EventSeries):
        times, labels, description = value.times, value.labels, value.description
    elif isinstance(value, Mapping):
        times, labels, description = value["times"], value.get("labels"), value.get("description", "")
    elif isinstance(value, tuple) and len(value) == 2 and np.ndim(value[0]) >= 1:
        # (times, labels); a pair of numbers is two times, as a tuple of three is three
        # (``(1.0, 2.0)`` was read as times=1.0, labels=2.0 and refused with "got shape ()")
        (times, labels), description = value, ""
    else:
        times, labels, description = value, None, ""
    refuse_narrow_float_times(times, f"events[{name!r}].times")  # float32 700.05 is 700.0499877929688 s
    try:  # text times failed with numpy's "could not convert string to float: 'abc'", naming no stream
        times = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise RecordingValidationError(f"events[{name!r}].times: expected seconds (numbers), got "
                                       f"{type(times).__name__} ({str(err).splitlines()[0]})") from None
    # [1, "a"] became ['1', 'a'] without a word
    check_label_types(labels, f"events[{name!r}].labels")
    try:
        ev = EventSeries(times, labels, description)
    except (TypeError, ValueError) as err:  # e.g. ragged labels
        raise RecordingValidationError(f"events[{name!r}].labels: expected one int or str label per event, got "
                                       f"{type(labels).__name__} ({str(err).splitlines()[0]})") from None
    if ev.times.ndim != 1:
        raise RecordingValidationError(f"events[{name!r}].times: expected a 1-D array of seconds, got shape {ev.times.shape}")
    if ev.labels is not None and (ev.labels.ndim != 1 or ev.labels.shape[0] != ev.times.shape[0]):
        raise RecordingValidationError(
            f"events[{name!r}].labels: expected one label per event ({ev.times.shape[0]}), got shape {ev.labels.shape}")
    return ev


def _repeated_events(times: np.ndarray, labels: Optional[np.ndarray]) -> int:
    """How many of the ascending ``times`` repeat an earlier event's time exactly, and its label
    where ``labels`` are given (two events of different labels at one time are no repeat)."""
    tied = np.flatnonzero(np.diff(times) == 0)
    if not tied.size:
        return 0
    if labels is None:
        return int(tied.size)
    seen, n = set(), 0
    for i in np.union1d(tied, tied + 1):
        key = (float(times[i]), labels[i].item() if isinstance(labels[i], np.generic) else labels[i])
        n += key in seen
        seen.add(key)
    return n


def clean_events(events: Optional[Mapping[str, object]], time_domain: Optional[Tuple[float, float]],
                 source: str) -> Dict[str, EventSeries]:
    """Make event streams valid for a recording with ``time_domain``: drop non-finite times, sort,
    drop events outside ``[start, stop)``; each repair is counted in a ``UserWarning``, and so are
    the events kept that repeat an earlier one exactly (same time, and same label in a labelled
    stream: logged twice?; an event modality reads each of them).

    Args:
        events: name -> anything :func:`as_event_series` takes (or ``None``).
        time_domain: ``(start, stop)`` s of the recording, or ``None`` (no range check).
        source: who is reading (``"read_nwb(A2929-200711.nwb)"``), put in the warnings.

    Returns:
        name -> :class:`EventSeries` with finite, ascending times inside the time domain.

    Raises:
        RecordingValidationError: a stream's times are not 1-D or its labels have another length.
    """
    out: Dict[str, EventSeries] = {}
    for name, value in (events or {}).items():
        ev = as_event_series(str(name), value)
        t, lab = ev.times, ev.labels
        n0 = t.shape[0]
        notes = []
        ok = np.isfinite(t)
        if not ok.all():
            notes.append(f"dropped {count_noun((~ok).sum(), 'NaN or infinite time')}")
            t, lab = t[ok], None if lab is None else lab[ok]
        n_desc = int(np.sum(np.diff(t) < 0))
        if n_desc:
            order = np.argsort(t, kind="stable")
            t, lab = t[order], None if lab is None else lab[order]
            notes.append(f"sorted {len(t)} times that had {count_noun(n_desc, 'descending step')}")
        if time_domain is not None and t.size:
            t0, t1 = time_domain
            inside = (t >= t0) & (t < t1)
            if not inside.all():
                # most of them outside: times in ms (or on another clock), whose few kept events are misplaced too
                clock = ("; most lie outside: times must be seconds on the spikes' clock (milliseconds? another "
                         "clock?), and the few kept are misplaced then" if (~inside).sum() > t.size / 2 else "")
                notes.append(f"dropped {count_noun((~inside).sum(), 'event')} outside the time domain [{t0}, {t1}) s "
                             f"(first at {t[~inside][0]} s){clock}")
                t, lab = t[inside], None if lab is None else lab[inside]
        n_rep = _repeated_events(t, lab)
        if n_rep:
            # kept (ties are allowed: two events at one time), but an event logged twice gave an event
            # modality two tokens where there was one, without a word
            notes.append(f"kept {count_noun(n_rep, 'event')} that {'repeats' if n_rep == 1 else 'repeat'} an earlier "
                         f"one's time{' and label' if lab is not None else ''} exactly (logged twice?)")
        if notes:
            warnings.warn(f"{source}: events[{name!r}] ({n0} events): " + "; ".join(notes) + f"; {len(t)} kept")
        out[str(name)] = EventSeries(t, lab, ev.description)
    return out
