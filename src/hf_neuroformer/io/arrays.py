"""Recordings from plain arrays: numpy arrays, ``.npz`` files, data frames, and the Allen gratings.

Allen Visual Coding - Neuropixels drifting gratings (``shared/data/allen_vcn_gratings``), as found:
``spike_times.npy`` float64 ``(153635,)`` seconds from trial onset, all in ``[0, 0.1)``;
``ii_spike_times.npy`` int64 ``(200 trials, 1000 units, 2)`` ``[start, stop)`` indices into
``spike_times`` (trial-major, contiguous); ``stim_label.npy`` int64 ``(200,)`` orientation in
degrees (0/45/90/135, 50 trials each). The 1000 units are pooled from 32 sessions (not recorded
simultaneously), so coupling between units is not physiological.
"""

from __future__ import annotations

import functools
import numbers
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..configuration_neuroformer import checked_float
from .npz_fields import (READ_NPZ_SPIKE_KEYS, checked_drop, fields_from_npz, npz_members_of, npz_text_array,
                         unread_npz_keys_hint)
from .permissions import check_output_file, check_output_folder, write_through_temporary
from ..recording import (NEGATIVE_TIMES_HINT, RecordingValidationError, SpikeRecording, Stimulus, count_noun,
                         file_names_without_whitespace, frames_on_screen, names_without_whitespace, refuse_narrow_float_times,
                         session_from_file, unnamed_units_message, widen_stored_times)

#: spike times spanning more than this (one day, in seconds) are probably in milliseconds or
#: sample ticks: :func:`from_arrays` warns
SPAN_WARNING_SECONDS = 86_400.0
#: spikes spanning more than an hour at a mean below this rate per unit are flagged too (times in ms)
SLOW_SPAN_SECONDS = 3_600.0
SLOW_RATE_HZ = 0.05

__all__ = ["from_arrays", "read_npz", "write_npz", "from_dataframe", "read_allen_gratings",
           "SPAN_WARNING_SECONDS", "SLOW_SPAN_SECONDS", "SLOW_RATE_HZ", "warnings_at_caller", "warn_repeated_spikes_of",
           "warn_frames_outside", "SESSION_COLUMNS", "UNIT_GROUP_COLUMNS", "AREA_COLUMNS"]

#: the folder of the package's modules: a warning attributed to a file in it points inside the package
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def warnings_at_caller(reader):
    """``reader`` (a function) whose warnings, its own and those of the helpers it calls, point at the
    line that called it: each is caught while it runs (``"always"``) and given again, once it returns
    or raises, with ``stacklevel=2``, under the caller's warning filters. A reader decorated so and
    called by another (:func:`~hf_neuroformer.io.load_recording`) passes them on to that one's caller.
    Warnings already attributed outside the package (a library's, or a reader's own ``stacklevel``
    that reaches the caller) have passed the filters where they were given: shown as they are."""

    @functools.wraps(reader)
    def at_caller(*args, **kwargs):
        caught = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.filterwarnings("always", module=r"hf_neuroformer(\.|$)")
                return reader(*args, **kwargs)
        finally:
            for w in caught:
                if Path(w.filename).resolve().is_relative_to(_PACKAGE_DIR):
                    warnings.warn(w.message, w.category, stacklevel=2)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)

    return at_caller



def repeated_spikes_per_unit(spike_times, unit_ids, n_units: int) -> np.ndarray:
    """``(n_units,)`` int64: per unit, the spikes that repeat an earlier spike time (or sample) of
    the same unit exactly (a unit cannot fire twice at once: a sorter's double detection or an
    export artefact). ``spike_times`` and ``unit_ids`` are ``(n_spikes,)`` in any order."""
    times, units = np.asarray(spike_times).reshape(-1), np.asarray(unit_ids, dtype=np.int64).reshape(-1)
    order = np.lexsort((times, units))
    same = (np.diff(units[order]) == 0) & (np.diff(times[order]) == 0)
    return np.bincount(units[order][1:][same], minlength=n_units)


@warnings_at_caller
def from_arrays(spike_times, unit_ids, events=None, warn_repeated_spikes: bool = True, warn_not_seconds: bool = True,
                **kwargs) -> SpikeRecording:
    """Build a recording from spikes in any order.

    Args:
        spike_times: ``(n_spikes,)`` spike times, seconds (converted to float64).
        unit_ids: ``(n_spikes,)`` integer unit index of each spike, in ``[0, n_units)``.
        events: optional point-event streams, name -> ``times`` (``(n,)`` s), ``(times, labels)``
            or an :class:`~hf_neuroformer.recording.EventSeries`. Like the spikes they may come
            in any order: NaN / infinite times are dropped, the rest sorted, and events outside
            the time domain (``time_domain``, else the span of the spikes) dropped, each counted
            in a ``UserWarning`` (:func:`hf_neuroformer.events.clean_events`).
        warn_repeated_spikes: warn of spikes that repeat a spike time of the same unit exactly
            (default True; a reader that has already said so, such as ``read_phy``, passes False).
        warn_not_seconds: warn of spike times that look like milliseconds or sample ticks (default
            True; a reader whose fix is another, such as ``read_phy``'s ``sample_rate``, passes
            False and warns itself).
        **kwargs: any other :class:`SpikeRecording` field (``unit_names``, ``time_domain``,
            ``epochs``, ``trials``, ``trial_info``, ``behaviour``, ``stimulus``, ``session``).

    Returns:
        SpikeRecording sorted by time, then unit index.

    Warns:
        UserWarning: without ``unit_names``, when the ids run without gaps from a smallest id
            above 0 (ids counted from 1 leave an empty unit 0); else when some unit index below
            the largest has no spikes (ids with gaps, such as the cluster numbers of curated
            units, leave empty units), with their count.
        UserWarning: spikes that repeat a spike time of the same unit exactly (a unit cannot fire
            twice at once: a sorter's double detection or a merge / export artefact), counted per
            unit; they are kept, each a token of its window, as the NWB and phy readers keep them.
        UserWarning: when none of ``stimulus.frames`` is on screen inside the time domain
            (:func:`warn_frames_outside`; kept).
        UserWarning: when the spike times span more than :data:`SPAN_WARNING_SECONDS` (a day), or
            more than an hour at a mean below :data:`SLOW_RATE_HZ` spikes/s per unit: times in
            milliseconds or sample ticks read as seconds (they are kept as given).

    Raises:
        RecordingValidationError: no unit (empty arrays without ``unit_names``, as read_nwb
            refuses an empty units table); units named without any spike and no ``time_domain``
            (nothing spans the recording: pass ``time_domain=(start, stop)``); mismatched lengths, arrays of more than one dimension,
            non-finite or negative times, unit indices out of range (see
            :class:`SpikeRecording`); without ``unit_names``, ids that would leave more than
            :data:`~hf_neuroformer.recording.MAX_IMPLIED_SILENT_UNITS` units without spikes
            (database ids such as Allen unit ids, not indices from 0); event labels whose length
            differs from their times.
    """
    if events:
        from ..events import clean_events

        td = kwargs.get("time_domain")
        refuse_narrow_float_times(spike_times, "spike_times")  # before the events are cleaned on their widened span
        st = np.asarray(spike_times, dtype=np.float64).reshape(-1)
        if td is None and st.size and np.all(np.isfinite(st)):
            td = (float(st.min()), float(np.nextafter(st.max(), np.inf)))
        kwargs["events"] = clean_events(events, td, "from_arrays")
    rec = SpikeRecording.from_unsorted(spike_times, unit_ids, **kwargs)
    if rec.n_units == 0:
        raise _no_units_error("")
    if rec.time_domain is None:  # no spike to span it: a recording of no time, which no window fits in
        raise _no_time_domain_error(rec.n_units, "", "pass time_domain=(start, stop)")
    low = int(rec.unit_ids.min()) if rec.n_spikes else 0
    # ids with gaps (the cluster numbers of curated units: 0, 3, 17, 250) make every missing number a unit
    # without spikes, which the vocabulary, the model and every per-unit metric then carry
    silent = (np.flatnonzero(np.bincount(rec.unit_ids, minlength=rec.n_units) == 0)
              if rec.n_spikes and kwargs.get("unit_names") is None else np.zeros(0, dtype=np.int64))
    if low > 0 and silent.size == low:
        # ids counted from 1 (or low) without other gaps; with gaps too (3, 17, 40) this said "units 0..2" and
        # "subtract 1", which left the 35 other empty units
        warnings.warn(
            f"unit_ids: the smallest is {low}, so "
            + ("unit 0 is kept as a unit" if low == 1 else f"units 0..{low - 1} are kept as units")
            + " without spikes (a unit id "
            "is an index from 0); if your ids start at 1 (MATLAB, Kilosort cluster numbers), subtract 1, or map "
            "labels to indices with hf_neuroformer.io.from_dataframe",
            UserWarning, stacklevel=2,
        )
    elif silent.size:
        warnings.warn(
            f"unit_ids: {silent.size} of the {rec.n_units} unit indices 0..{rec.n_units - 1} have no spikes "
            f"(e.g. {', '.join(str(int(u)) for u in silent[:5])}); a unit id is an index from 0, so gaps between "
            "ids (cluster numbers of curated units) are kept as units without spikes; map the ids to "
            "0..n-1 first (np.unique(unit_ids, return_inverse=True), or hf_neuroformer.io.from_dataframe, which "
            "keeps the ids as names), or pass unit_names= to keep the empty units without this warning",
            UserWarning, stacklevel=2,
        )
    if rec.stimulus is not None and rec.stimulus.frames is not None:
        warn_frames_outside(rec.stimulus.frame_times, rec.time_domain, stacklevel=2)
    if warn_repeated_spikes:
        warn_repeated_spikes_of(rec, "spike_times", "drop them before reading, e.g. df.drop_duplicates([time, unit]), "
                                "to leave them out", stacklevel=2)
    if warn_not_seconds:
        warn_if_not_seconds(rec, "spike_times", "divide them first (e.g. by 1000, or by the sampling rate in Hz)",
                            stacklevel=2)
    return rec


def warn_frames_outside(frame_times, time_domain, where: str = "", stacklevel: int = 2) -> None:
    """Warn (``UserWarning``) when none of the stimulus frames with onsets ``frame_times`` (s,
    increasing) is on screen inside ``time_domain`` (``(start, stop)`` s): onsets in milliseconds,
    or on another clock than the spikes. The frames are kept, but no window reads one (they were
    kept without a word; a training split without a frame is refused later, far from the cause).
    ``where``: the file, as `` in <path>``, or empty."""
    ft = np.asarray(frame_times, dtype=np.float64)
    lo, hi = time_domain
    if len(ft) and not frames_on_screen(ft, np.array([[lo, hi]]), end_marker=False).any():
        warnings.warn(f"stimulus: none of the {count_noun(len(ft), 'frame')}{where} is on screen inside the "
                      f"recording's time domain [{lo:g}, {hi:g}) s (onsets {ft[0]:g} to {ft[-1]:g} s); kept, but no "
                      "window reads one: are the onsets in milliseconds, or on another clock than the spike times?",
                      UserWarning, stacklevel=stacklevel + 1)


def _no_units_error(where: str) -> RecordingValidationError:
    """The error for spikes that give no unit (empty arrays without ``unit_names``); ``where``: the
    file, as `` in <path>``, or empty."""
    return RecordingValidationError(
        f"spike_times, unit_ids: expected at least one unit, got no spike and no unit_names{where}, which would "
        "give a recording with 0 units (read_nwb refuses an empty units table alike); was the export empty?")


def _no_time_domain_error(n_units: int, where: str, fix: str) -> RecordingValidationError:
    """The error for units named without any spike and no ``time_domain`` (nothing gives the span the
    recording covers); ``where``: the file, as `` in <path>``, or empty; ``fix``: how to give it."""
    return RecordingValidationError(
        f"time_domain: expected (start, stop) seconds, got none and no spike to span it ({count_noun(n_units, 'unit')} "
        f"named{where}, none with a spike), which would give a recording of no time; {fix} in seconds, the span "
        "the (silent) recording covers")


def warn_repeated_spikes_of(rec: SpikeRecording, what: str, fix: str, stacklevel: int = 2) -> None:
    """Warn (``UserWarning`` naming ``what``, ending with ``fix``) when spikes of ``rec`` repeat a
    spike time of the same unit exactly, counted per unit (the five units with most named); they
    are kept, each a token of its window."""
    warn_repeated_spikes(rec.spike_times, rec.unit_ids, rec.unit_names, what, fix, stacklevel=stacklevel + 1)


def warn_repeated_spikes(spike_times, unit_ids, names, what: str, fix: str, stacklevel: int = 2,
                         unit: str = "unit", instant: str = "spike time") -> None:
    """:func:`warn_repeated_spikes_of` for spikes not yet in a recording (a reader checking its file):
    ``spike_times`` / ``unit_ids`` ``(n_spikes,)`` in any order, ``names`` one per unit index;
    ``unit`` and ``instant`` are the reader's words for a unit and a spike's time (Phy: ``"cluster"``,
    ``"sample"``, with sample indices as ``spike_times``)."""
    if np.size(spike_times) < 2:
        return
    per = repeated_spikes_per_unit(spike_times, unit_ids, len(names))
    if not per.any():
        return
    worst = np.argsort(-per, kind="stable")[:5]
    first = ", ".join(f"{names[i]!r}: {int(per[i])}" for i in worst if per[i])
    n_units = int(np.sum(per > 0))
    warnings.warn(
        f"{what}: {count_noun(int(per.sum()), 'spike')} in {count_noun(n_units, unit)} {'repeats' if per.sum() == 1 else 'repeat'} "
        f"a {instant} of the same {unit} "
        f"exactly ({first}{', ...' if n_units > 5 else ''}); kept, each as its own token (a unit cannot fire "
        f"twice at once: a sorter's double detection or an export artefact; {fix})",
        UserWarning, stacklevel=stacklevel + 1,
    )


def warn_if_not_seconds(rec: SpikeRecording, what: str, fix: str, stacklevel: int = 2) -> None:
    """Warn (``UserWarning`` naming ``what``, ending with ``fix``) when the spikes of ``rec`` span
    more than :data:`SPAN_WARNING_SECONDS` (a day), or more than :data:`SLOW_SPAN_SECONDS` at a
    mean below :data:`SLOW_RATE_HZ` spikes/s per unit: times in milliseconds or sample ticks
    read as seconds (a 1-min session in milliseconds spans 60000 "s")."""
    span = float(rec.spike_times[-1] - rec.spike_times[0]) if rec.n_spikes else 0.0
    rate = rec.n_spikes / (max(rec.n_units, 1) * span) if span > 0 else float("inf")
    if span > SPAN_WARNING_SECONDS:
        how_long = f"({span / 86_400:.1f} days)"
    elif span > SLOW_SPAN_SECONDS and rate < SLOW_RATE_HZ:
        how_long = f"({span / 3600:.1f} h) at a mean of {rate:.3g} spikes/s per unit,"
    else:
        return
    warnings.warn(f"{what}: they span {span:.6g} s {how_long} and are read as seconds; if they are in milliseconds "
                  f"or sample ticks, {fix}", UserWarning, stacklevel=stacklevel + 1)


@warnings_at_caller
def read_npz(path, **kwargs) -> SpikeRecording:
    """Read a ``.npz`` file (a zip of ``.npy`` arrays, as :func:`numpy.savez` and :func:`write_npz`
    write it) with keys ``spike_times`` (``(n_spikes,)`` numeric, seconds, any order) and
    ``unit_ids`` (``(n_spikes,)`` integer unit index from 0).

    Optional keys: ``unit_names`` (``(n_units,)`` str; byte strings are decoded as UTF-8, here
    and in ``unit_areas`` and ``session``; each run of whitespace replaced by ``_``, with a
    warning, as :func:`~hf_neuroformer.io.nwb.read_nwb` does; ``""`` is refused), ``unit_areas`` (``(n_units,)`` str),
    ``time_domain`` (``(2,)`` float64 seconds), ``session`` (0-d str, each run of whitespace and
    each ``/`` replaced by ``_`` as :func:`~hf_neuroformer.io.nwb.read_nwb` does an identifier's;
    without it, the file's stem with whitespace replaced by ``_``, as NWB files without an
    identifier get, so that two files do not share unit tokens ``"<session>/<unit>"``; a
    ``session=`` given is kept). The other fields :func:`write_npz` stores (time support, epochs,
    epoch intervals, trials and ``trial_info``, behaviour, events, stimulus, ``session_info``) are read
    from their keys (listed in :mod:`hf_neuroformer.io.npz_fields`) when present; a file without
    them (an older ``write_npz`` file, or :func:`numpy.savez` output) reads without them. Any other
    key, and a numbered key whose entry its list does not name (``behaviour_0_values`` without
    ``behaviour_names``), is left out with a warning that names it, says what it would need and
    suggests the key it is close to (``unit_name``: ``unit_names``).
    The file is read with ``allow_pickle=False``. ``spike_times`` (and ``time_domain``) stored as float32 / float16 are
    widened to float64 with a warning naming their rounding (the file holds no more precision;
    :class:`SpikeRecording` refuses such times from a caller).

    Args:
        path: the ``.npz`` file.
        **kwargs: override or add :class:`SpikeRecording` fields.

    Returns:
        SpikeRecording with ``spike_times`` ``(n_spikes,)`` float64 seconds and ``unit_ids``
        ``(n_spikes,)`` int64, sorted by time, then unit index (see :func:`from_arrays`, whose
        warnings it gives).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RecordingValidationError: the file is not a zip archive (``.npz``), a member cannot be
            read as a ``.npy`` array or holds pickled objects (the message names the key and the
            file); a required key is missing (the message names it and lists the keys found);
            ``spike_times`` is not numeric; the arrays are empty without ``unit_names`` (no
            unit, named with the file), or without ``time_domain`` (no key and no
            ``time_domain=``: nothing spans the recording); a key of the other fields without the
            keys it needs, or of another shape or kind (names the key); or the arrays break an
            invariant of :class:`SpikeRecording` (the message ends with ``(reading <path>)``).
    """
    import warnings

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"npz file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise RecordingValidationError(
            f"{path}: expected a .npz archive (a zip of .npy arrays, as numpy.savez and write_npz write), "
            "the file is not a zip archive"
        )
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise RecordingValidationError(f"{path}: expected a readable .npz archive ({type(e).__name__}: {e})") from e
    with npz as z:
        keys = set(z.files)
        for req in ("spike_times", "unit_ids"):
            if req not in keys:
                raise RecordingValidationError(
                    f"{req}: expected a key {req!r} in {path}, found keys {sorted(keys)}"
                )
        st = _npz_member(z, "spike_times", path)
        if st.dtype.kind not in "biuf":
            raise RecordingValidationError(
                f"spike_times: expected numeric spike times in seconds in {path}, got dtype {st.dtype}"
            )
        st = widen_stored_times(st, "spike_times", f"read_npz({str(path)!r})")  # float32 in the file: warned, kept
        fields = {"spike_times": st, "unit_ids": _npz_member(z, "unit_ids", path)}
        if "unit_names" in keys:
            # 'cell 1' was kept, and every unit token refused with a fix only Python can apply (as read_nwb does)
            fields["unit_names"] = file_names_without_whitespace(
                [text_of(v) for v in _npz_member(z, "unit_names", path).reshape(-1)],
                "unit_names", f" in {path}")
        if "unit_areas" in keys:
            fields["unit_areas"] = [text_of(v) for v in _npz_member(z, "unit_areas", path).reshape(-1)]
        if "time_domain" in keys:
            td = _npz_member(z, "time_domain", path)
            if td.dtype.kind == "f":  # float32 in the file: warned, kept (as spike_times; it was widened without a word)
                td = widen_stored_times(td, "time_domain", f"read_npz({str(path)!r})")
            try:
                td = np.asarray(td, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError) as e:
                raise RecordingValidationError(
                    f"time_domain: expected 2 numbers (start, stop) in seconds in {path}, got dtype {td.dtype}"
                ) from e
            if td.shape != (2,):
                raise RecordingValidationError(f"time_domain: expected 2 values (start, stop) in {path}, got {td.shape}")
            fields["time_domain"] = (float(td[0]), float(td[1]))
        if "session" in keys:
            ses = _npz_member(z, "session", path)
            if ses.size != 1:
                raise RecordingValidationError(f"session: expected one string in {path}, got shape {ses.shape}")
            # as read_nwb does an identifier's ("mouse1/day2" was kept, and the tokenizer refused it with a
            # fix only Python can apply)
            fields["session"] = session_from_file(text_of(ses.reshape(-1)[0]), path.stem)
        # the time support, epochs, trials, behaviour, events, stimulus and session values write_npz stores
        # (files without those keys, older ones too, read as before)
        read = set()  # the members the other fields' reader reads: any other is said, not dropped without a word

        def member(key):
            read.add(key)
            return _npz_member(z, key, path)

        try:
            fields.update(fields_from_npz(member, keys, path))
        except RecordingValidationError as e:  # a BehaviourSeries / EventSeries / Stimulus refusal named no file
            if str(path) in str(e):
                raise
            raise RecordingValidationError(f"{e} (reading {path})") from e
        # a numbered member whose entry no *_names key lists (behaviour_0_values without behaviour_names) was
        # counted as read by its name alone and left out without a word
        extra = keys - set(READ_NPZ_SPIKE_KEYS) - read
        if extra:
            warnings.warn(f"read_npz: {count_noun(len(extra), 'key')} of {path} not read, left out of the recording: "
                          f"{sorted(extra)[:8]}{' ...' if len(extra) > 8 else ''} ({unread_npz_keys_hint(extra)})")
    # "session0" for every file without the key gave two animals' files the same unit tokens, so a model
    # trained on one took the other for its own units (a warning about other spikes at most)
    fields.setdefault("session", names_without_whitespace([path.stem])[0][0])
    fields.update(kwargs)
    if np.size(fields["spike_times"]) == 0 and not len(fields.get("unit_names") or ()):
        raise _no_units_error(f" in {path}")
    if np.size(fields["spike_times"]) == 0 and fields.get("time_domain") is None:
        raise _no_time_domain_error(len(fields["unit_names"]), f" in {path}",
                                    "add a 'time_domain' array (start, stop) to the file, or pass time_domain=(start, stop)")
    try:
        return from_arrays(**fields)
    except ValueError as e:  # named the field, not the file (the command added it; the Python API did not)
        raise RecordingValidationError(f"{e} (reading {path})") from e


def text_of(v) -> str:
    """One name (of a ``.npz`` member, a DataFrame column or an NWB column) as text: byte strings (dtype ``S``, as h5py / MATLAB exports give)
    decoded as UTF-8 (``str()`` made ``b"CA1"`` the name ``"b'CA1'"``)."""
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _npz_member(z, key: str, path: Path) -> np.ndarray:
    """``z[key]`` as an array; a ``RecordingValidationError`` naming the key and file when the
    member is corrupt, holds pickled objects or is not a ``.npy`` array."""
    try:
        value = z[key]
    except ValueError as e:
        what = "holds pickled Python objects (not read, allow_pickle=False)" if "pickle" in str(e).lower() \
            else f"cannot be read ({e})"
        raise RecordingValidationError(
            f"{key}: expected a numeric or string array in {path}, the member {what}") from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise RecordingValidationError(
            f"{key}: expected a readable array in {path}, the member is corrupt ({type(e).__name__}: {e})") from e
    if not isinstance(value, np.ndarray):
        raise RecordingValidationError(f"{key}: expected a .npy array in {path}, the member is not one")
    return value


def write_npz(recording: SpikeRecording, path, overwrite: bool = False, *, make_parent: bool = False,
              drop=()) -> Path:
    """Write a recording to ``.npz``: everything it holds, read back by :func:`read_npz`.

    Members: ``spike_times`` ``(n_spikes,)`` float64 s, ``unit_ids`` ``(n_spikes,)`` int64,
    ``unit_names`` / ``unit_areas`` ``(n_units,)`` str, ``session`` ``()`` str, ``time_domain``
    ``(2,)`` float64 s; then, for what the recording holds, its time support, epochs, epoch
    intervals, trials and ``trial_info`` columns, behaviour, events, stimulus (categories or frames)
    and ``session_info``, under the keys listed in :mod:`hf_neuroformer.io.npz_fields` (shapes, dtypes,
    units). :func:`read_npz` gives each back equal (floats bitwise, NaN kept; names and order kept).
    (An older version wrote the spikes, units, time domain and session only, and left the rest out
    with a warning.) A recording without spikes and without a ``time_domain`` but with a time
    support is written with the support's extent as its time domain (:func:`read_npz` needs one
    to read a file without spikes).

    ``make_parent`` creates ``path``'s folder if missing (default: it must exist, as for
    :func:`~hf_neuroformer.jsonio.write_atomic`; before, a missing folder was always created, so a
    typo in its name went unnoticed).

    Args:
        recording: the :class:`SpikeRecording`.
        path: destination ``.npz`` file.
        overwrite: replace an existing file.
        make_parent: create the folder of ``path`` if missing.
        drop: fields to leave out of the file, one name or several, from
            :data:`~hf_neuroformer.io.npz_fields.DROPPABLE_FIELDS` (``"time_support"``, ``"epochs"``,
            ``"epoch_intervals"``, ``"trials"``, ``"trial_info"``, ``"behaviour"``, ``"stimulus"``,
            ``"events"``, ``"session_info"``); default none. Needed only for a value a ``.npz`` file
            cannot hold (see Raises), or to write a smaller file on purpose.

    Returns:
        The path written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False (checked before the file is built, and
            again when it is moved into place: a file another run wrote there meanwhile is kept, not replaced).
        OutputPathError: ``path`` is a directory (a ``ValueError``; with ``overwrite`` too), see
            :func:`~hf_neuroformer.io.permissions.check_output_file`, or is under a file
            (:func:`~hf_neuroformer.io.permissions.check_output_folder`).
        MissingOutputFolderError: ``path``'s folder does not exist and ``make_parent`` is False (a
            ``FileNotFoundError``).
        ValueError: ``drop`` names a field that cannot be left out, or ``"trials"`` / ``"epochs"``
            without the ``"trial_info"`` / ``"epoch_intervals"`` the recording holds.
        RecordingValidationError: the recording breaks an invariant of :class:`SpikeRecording`
            (:meth:`~SpikeRecording.validate`, as :func:`~hf_neuroformer.io.write_nwb` checks; e.g. a
            ``session`` set to ``""`` after construction), has no unit, or has no spike, no
            ``time_domain`` and no time support (nothing spans it): :func:`read_npz` would refuse the
            file; or it holds a value a ``.npz`` file cannot hold without pickling (a ``trial_info``
            column or event labels of objects other than numbers, booleans, text and ``None``; a name
            or unit ending in NUL characters, which numpy strips), named with the way to leave it out
            (``drop=``). Nothing is written then (an existing file at ``path`` is left as it was).

    The file is written to a temporary file in the same folder and moved into place with
    ``os.replace`` (as :func:`~hf_neuroformer.io.write_nwb` does): a reader never sees a half-written
    file, an interrupted overwrite leaves the old file whole, and other hard links to the old file
    keep its contents.
    """
    path = check_output_file(path, overwrite)  # a directory: refused before anything is written
    check_output_folder(path, make_parent)  # a missing folder or one under a file
    # a session set to '' after construction was written as given and read back under the file's stem
    recording.validate()
    drop = checked_drop(drop, recording)
    if recording.n_units == 0:  # read_npz refuses a file of no unit
        raise _no_units_error(f" in the recording written to {path}")
    time_domain = recording.time_domain
    if time_domain is None and len(recording.support):  # no spike and no time domain, a time support
        time_domain = (float(recording.support[:, 0].min()), float(recording.support[:, 1].max()))
    if time_domain is None:  # the file read_npz refuses: units without spikes and nothing that spans them
        raise _no_time_domain_error(recording.n_units, f" in the recording written to {path}",
                                    "give it one, dataclasses.replace(recording, time_domain=(start, stop)),")
    # the time support, trials, behaviour, stimulus, events ... were left out with a warning: a generated
    # recording read back had its gaps as recorded silence, a real one no behaviour to decode
    arrays = dict(spike_times=recording.spike_times, unit_ids=recording.unit_ids,
                  unit_names=npz_text_array(recording.unit_names, "unit_names"),
                  unit_areas=npz_text_array(recording.unit_areas, "unit_areas"),
                  session=np.asarray(recording.session), time_domain=np.asarray(time_domain, dtype=np.float64),
                  **npz_members_of(recording, drop))

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    # written to a temporary in the same folder, then moved into place (as write_nwb does): writing into
    # ``path`` itself truncated an existing file first, so a failed or interrupted overwrite lost the old
    # file, and a file hard-linked elsewhere had its other names rewritten too
    return write_through_temporary(path, write, ".tmp.npz", make_parent=make_parent, overwrite=overwrite)


#: column names (compared without case) of a table of spikes that name the session a spike belongs to:
#: several sessions in one table are several clocks and unit sets, not one recording
SESSION_COLUMNS = ("session", "session_id", "subject", "subject_id", "animal", "mouse", "rat", "recording")
#: column names (compared without case) of the group a unit label is counted in: sorters number
#: clusters per shank / tetrode / probe, so one label in two groups is two units
UNIT_GROUP_COLUMNS = ("probe", "probe_id", "shank", "tetrode", "electrode_group", "channel_group", "group_id")


def _refuse_merged_groups(df, columns, unit_col: str) -> None:
    """Refuse a table of spikes whose unread ``columns`` say that it is not one recording of
    distinct unit labels: a :data:`SESSION_COLUMNS` column holding more than one value (its
    sessions' spikes would be laid on one clock and their unit labels merged), or a
    :data:`UNIT_GROUP_COLUMNS` column under which one unit label occurs in more than one group
    (cluster 3 of shank 1 and cluster 3 of shank 2 would be one unit). Both were read as one
    session, the column named only as 'not read'.

    Raises:
        RecordingValidationError: naming the column, its values, a unit label it splits (for a
            group column) and the fix.
    """
    for c in columns:
        name = str(c).strip().lower()
        values = df[c].dropna().unique()
        if len(values) < 2:
            continue
        shown = ", ".join(repr(v) for v in sorted(map(str, values))[:5]) + (", ..." if len(values) > 5 else "")
        if name in SESSION_COLUMNS:
            raise RecordingValidationError(
                f"{c}: expected one session per table, the column holds {len(values)} values ({shown}); read as one "
                f"recording their spikes would lie on one clock and units of the same label would be one unit. Save "
                f"each session as its own file (e.g. for s, part in df.groupby({str(c)!r}): "
                f"part.to_csv(f'{{s}}.csv', index=False)) and read each, or drop the column if it is one session")
        if name in UNIT_GROUP_COLUMNS:
            groups_per_unit = df.groupby(unit_col, sort=True)[c].nunique()
            split = groups_per_unit[groups_per_unit > 1]
            if split.size:
                label = split.index[0]
                label = label.item() if isinstance(label, np.generic) else label  # 0, not np.int64(0)
                where = sorted(map(str, df.loc[df[unit_col] == split.index[0], c].dropna().unique()))[:4]
                raise RecordingValidationError(
                    f"{c}: the unit label {label!r} occurs in {len(where) if len(where) < 4 else 'several'} of its "
                    f"values ({', '.join(map(repr, where))}; {count_noun(split.size, 'label')} in all): units are "
                    f"numbered per {c}, and read by the label alone they would be one unit. Make the labels distinct "
                    f"first, e.g. df[{unit_col!r}] = df[{c!r}].astype(str) + '/' + df[{unit_col!r}].astype(str), and "
                    "save the table again")


#: column names (compared without case) of a table of spikes read as each unit's brain area
#: (``unit_areas``) when they give every unit one area
AREA_COLUMNS = ("area", "brain_area", "region", "brain_region", "location")


def _unit_areas_of(column, codes: np.ndarray, n_units: int, names, col) -> "list | None":
    """Each unit's area (``""`` where its rows hold none) from the per-spike ``column``
    (``codes``: each row's unit index), or None with a ``UserWarning`` naming a unit whose rows
    hold two areas (the column is then not read)."""
    import pandas as pd

    text = column.map(lambda v: "" if pd.isna(v) else str(v).strip())
    per_unit = pd.DataFrame({"k": codes, "a": text.to_numpy()}).query("a != ''").groupby("k")["a"].unique()
    two = [(k, a) for k, a in per_unit.items() if len(a) > 1]
    if two:
        k, a = two[0]
        warnings.warn(f"{col}: not read as the units' brain areas: unit {names[k]!r} has {len(a)} values "
                      f"({', '.join(map(repr, sorted(a)[:3]))}; {count_noun(len(two), 'unit')} with more than one), "
                      "one area per unit expected", UserWarning, stacklevel=3)
        return None
    areas = [""] * n_units
    for k, a in per_unit.items():
        areas[int(k)] = str(a[0])
    return areas


@warnings_at_caller
def from_dataframe(df, time_col: str = "time", unit_col: str = "unit", **kwargs) -> SpikeRecording:
    """Build a recording from a table with one row per spike.

    Args:
        df: a ``pandas.DataFrame``.
        time_col: column of spike times, seconds (a ``timedelta64`` column is converted to
            seconds; ``datetime64`` clock times are refused: subtract the recording's start).
        unit_col: column of unit labels: names (strings) or integer ids. Distinct labels are
            sorted and mapped to indices ``0..n_units-1``; names are kept as ``unit_names``
            (integer ids ``k``, also stored as whole floats ``k.0``, become ``"unit{k}"``), with
            whitespace replaced by ``_`` (a unit token cannot hold it; see
            :func:`~hf_neuroformer.recording.names_without_whitespace`) and a ``UserWarning``
            giving the count.
        **kwargs: other :class:`SpikeRecording` fields.

    Returns:
        SpikeRecording with ``spike_times`` ``(n_rows,)`` float64 seconds and ``unit_ids``
        ``(n_rows,)`` int64 (the index of each row's label among the sorted labels), sorted by
        time, then unit index.

    A column named as a brain area (:data:`AREA_COLUMNS`: ``area``, ``region``, ``location``, ...,
    compared without case) that gives each unit one value (blank rows aside) is read as
    ``unit_areas`` (``""`` for a unit without one), unless ``unit_areas=`` is given.

    Warns:
        UserWarning: an area column that gives a unit two values (named; not read); the table has other columns (named, counted): they are not read; a column
            ``"Unnamed: <n>"`` (a pandas index saved to CSV) is skipped without a warning.

    Raises:
        RecordingValidationError: a column named as a session (:data:`SESSION_COLUMNS`: ``session``,
            ``subject``, ``animal``, ...) holds more than one value, or one named as a group units are
            numbered in (:data:`UNIT_GROUP_COLUMNS`: ``shank``, ``probe``, ``tetrode``, ...) holds one
            unit label in two groups (the column, values and fix named); a column is missing (names it and lists the columns; the only column's
            name holding ``;`` or a tab gets a hint at the separator, any other table the two columns it needs
            and ``time_col`` / ``unit_col``) or has
            missing values, the time column holds something other than numbers (names the first
            such row and its value), datetimes, or a negative time (names the first such row), the unit column mixes booleans with numbers
            (pandas takes True and 1 for one unit) or holds labels of different types that give the
            same name (``1`` and ``"1"``) or the empty label ``""`` (no unit name; names its first row),
            or the spikes break an invariant of :class:`SpikeRecording`.
    """
    import pandas as pd

    for c in (time_col, unit_col):
        if c not in df.columns:
            hint = ""
            if len(df.columns) == 1:  # 'time;unit': a ';'- or tab-separated file read as comma-separated
                sep = next((s for s in (";", "\t") if s in str(df.columns[0])), None)
                if sep is not None:
                    hint = (f" (one column whose name holds {sep!r}: a {sep!r}-separated file read as comma-separated? "
                            f"read it with pandas.read_csv(path, sep={sep!r}) and pass the table to from_dataframe, "
                            "or save it comma-separated)")
            else:  # a sorter's or lab's own names ('spike_time', 'cluster'): say both columns and how to map them
                hint = (f"; a table of spikes needs a column {time_col!r} (spike times, s) and a column {unit_col!r} "
                        f"(unit labels: names or integer ids), one row per spike: rename the table's columns (the "
                        f"command line reads 'time' and 'unit'), or name them with time_col= / unit_col= of "
                        f"from_dataframe or load_recording")
            raise RecordingValidationError(f"{c}: expected a column {c!r}, found columns {list(df.columns)}{hint}")
    raw_times = df[time_col]
    if pd.api.types.is_timedelta64_dtype(raw_times.dtype):
        # read as numbers these were nanoseconds taken as seconds (a 10-min session spanned 19 "years")
        raw_times = raw_times.dt.total_seconds()
    elif pd.api.types.is_datetime64_any_dtype(raw_times.dtype):
        raise RecordingValidationError(
            f"{time_col}: expected spike times in seconds from the recording's start, got clock times (dtype "
            f"{raw_times.dtype}, first {raw_times.iloc[0] if len(raw_times) else None}); subtract the recording's start "
            f"first: df[{time_col!r}] = (df[{time_col!r}] - start).dt.total_seconds()")
    if pd.api.types.is_bool_dtype(raw_times.dtype) or not pd.api.types.is_numeric_dtype(raw_times.dtype):
        num = pd.to_numeric(raw_times, errors="coerce")
        bad = np.ones(len(raw_times), dtype=bool) if pd.api.types.is_bool_dtype(raw_times.dtype) else (
            num.isna().to_numpy() & raw_times.notna().to_numpy())
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RecordingValidationError(
                f"{time_col}: expected spike times in seconds (numbers), row {i} holds {raw_times.iloc[i]!r} "
                f"({int(bad.sum())} non-numeric rows in all)"
            )
        raw_times = num
    refuse_narrow_float_times(raw_times, time_col)  # a float32 column: 700.05 became 700.0499877929688 s
    times = raw_times.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:  # named 'spike_times' and 'spike 1', not the column and row the caller knows
        raise RecordingValidationError(f"{time_col}: expected a finite spike time (s) on every row, row {bad[0]} holds "
                                       f"{times[bad[0]]} ({bad.size} missing or non-finite in all)")
    neg = np.flatnonzero(times < 0)
    if neg.size:  # as for NaN: 'spike_times ... spike 0 (in the order given)' named neither column nor row
        raise RecordingValidationError(f"{time_col}: expected spike times >= 0 s on every row, row {neg[0]} holds "
                                       f"{times[neg[0]]} ({neg.size} negative in all); {NEGATIVE_TIMES_HINT}")
    units = df[unit_col]
    if units.isna().any():
        i = int(np.flatnonzero(units.isna().to_numpy())[0])
        raise RecordingValidationError(f"{unit_col}: expected a unit label on every row, row {i} is missing")
    if units.dtype == object:
        # pandas takes True, 1 and 1.0 for one label (they are equal in Python), so the spikes of a unit True and
        # of a unit 1 (two tables concatenated) became one unit without a word
        types = set(units.map(type).unique())
        if any(issubclass(t, (bool, np.bool_)) for t in types) and any(
                issubclass(t, numbers.Number) and not issubclass(t, (bool, np.bool_)) for t in types):
            shown = sorted(set(units.map(repr).unique()))  # repr: drop_duplicates merges True and 1 too
            raise RecordingValidationError(
                f"{unit_col}: expected unit labels of one type, got booleans mixed with numbers ("
                f"{', '.join(shown[:6])}{', ...' if len(shown) > 6 else ''}); True equals 1 and False 0, so they would "
                f"be one unit: map them to labels of one type first (e.g. df[{unit_col!r}].astype(str))")
    codes, uniques = pd.factorize(units, sort=True)
    whole_floats = (pd.api.types.is_float_dtype(units.dtype) and bool(np.all(np.isfinite(uniques)))
                    and bool(np.all(np.asarray(uniques) == np.round(uniques))))
    if pd.api.types.is_integer_dtype(units.dtype) or whole_floats:  # 3.0 is cluster 3, as 3 is ("3.0" before)
        names = [f"unit{int(u)}" for u in uniques]
    else:
        # labels such as "cell 1" made every unit token refused (`neuroformer train --data spikes.csv` has no
        # flag to rename units)
        names, spaced = names_without_whitespace([text_of(u) for u in uniques])  # bytes: "b'a'" before
        if spaced and "unit_names" not in kwargs:
            warnings.warn(f"{unit_col}: {count_noun(len(spaced), 'unit label')} {'holds' if len(spaced) == 1 else 'hold'} whitespace, replaced by '_' in the unit names "
                          f"(e.g. {text_of(uniques[spaced[0]])!r} -> {names[spaced[0]]!r}), since a unit token "
                          "'<session>/<unit name>' cannot hold it", UserWarning, stacklevel=2)
    if "unit_names" not in kwargs:
        # a label '' was refused as "unit_names: ...", a field the caller never passed (one of whitespace only
        # became 'unit' above)
        unnamed = unnamed_units_message(
            names, unit_col, f"give every row a unit label (e.g. df.loc[df[{unit_col!r}] == '', {unit_col!r}] = "
            "'unlabelled')", where=" (the unit labels)", whitespace=False,
            label=lambda k: f"row {int(np.flatnonzero(codes == k)[0])}")
        if unnamed is not None:
            raise RecordingValidationError(unnamed)
    if "unit_names" not in kwargs and len(set(names)) < len(names):
        # 1 and "1" (an object column of two tables, one read as numbers) were two units named "1", refused as
        # "unit_names: ... repeated", a field the caller never passed
        first = {}
        for i, n in enumerate(names):
            if n in first:
                raise RecordingValidationError(
                    f"{unit_col}: the labels {uniques[first[n]]!r} ({type(uniques[first[n]]).__name__}) and "
                    f"{uniques[i]!r} ({type(uniques[i]).__name__}) are different values that give the same unit "
                    f"name {n!r}; give the column one type first (e.g. df[{unit_col!r}].astype(str) makes them one "
                    "unit)")
            first[n] = i
    kwargs.setdefault("unit_names", names)
    # pandas' saved index ("Unnamed: 0") is no data; any other column (an area, an amplitude, a trial) was
    # dropped without a word
    extra = [str(c) for c in df.columns if c not in (time_col, unit_col) and not str(c).startswith("Unnamed: ")]
    _refuse_merged_groups(df, [c for c in df.columns if str(c) in extra], unit_col)
    # a brain area per spike (one per unit) was named as 'not read', its areas lost for a --data user
    area_col = next((c for c in df.columns if str(c) in extra and str(c).strip().lower() in AREA_COLUMNS), None)
    if area_col is not None and "unit_areas" not in kwargs:
        areas = _unit_areas_of(df[area_col], codes, len(names), [str(n) for n in names], area_col)
        if areas is not None:
            kwargs["unit_areas"] = areas
            extra.remove(str(area_col))
    if extra:
        warnings.warn(f"{count_noun(len(extra), 'column')} not read: {extra[:8]}{' ...' if len(extra) > 8 else ''}; only "
                      f"{time_col!r} (spike times), {unit_col!r} (unit labels) and a brain area column of one value per "
                      "unit ('area', 'region', 'location') are. In Python, pass trials as trials=, behaviour as "
                      "behaviour= (see SpikeRecording)",
                      UserWarning, stacklevel=2)
    return from_arrays(times, codes.astype(np.int64), **kwargs)


@warnings_at_caller
def read_allen_gratings(
    folder,
    trial_duration: float = 0.1,
    inter_trial_gap: float = 0.1,
    session: str = "allen_vcn_gratings",
) -> SpikeRecording:
    """Read the Allen drifting-gratings subset and lay its trials on one continuous clock.

    Trial ``k`` occupies ``[k*T, k*T + trial_duration)`` seconds with
    ``T = trial_duration + inter_trial_gap`` (default 0.1 + 0.1 = 0.2 s): a spike at ``t`` s
    after the onset of trial ``k`` is placed at ``k*T + t``. The gap has no spikes; it keeps
    windows of one trial from running into the next. It is no recorded time (the files hold no
    spike of the inter-trial interval): ``time_support`` is the trials, so ``duration`` and
    firing rates count the trials only (over the time domain, the gaps halved every rate).

    Args:
        folder: the folder with ``spike_times.npy``, ``ii_spike_times.npy``, ``stim_label.npy``.
        trial_duration: trial length in seconds (the stored times lie in ``[0, 0.1)``).
        inter_trial_gap: silent gap between trials, seconds (>= 0).
        session: session name.

    Returns:
        SpikeRecording with 1000 units ``"unit{i}"``, ``trials`` ``(200, 2)``,
        ``trial_info["orientation_deg"]`` ``(200,)`` (int64 when every orientation is a whole
        number of degrees, else float64), ``stimulus`` with ``ids`` = index of the orientation
        among the sorted distinct orientations (0..3), ``intervals`` = the trials and ``names``
        like ``"0deg"`` (``"22.5deg"``); ``time_domain = (0, n_trials * T)``; ``time_support``
        = the trials.

    Warns:
        UserWarning: ``spike_times`` stored as float32 / float16 (read as float64 with that
            rounding); spikes that repeat a spike time of the same unit in one trial exactly
            (kept, counted per unit, as the other readers count them); trials laid out over more
            than a day, or more than an hour at under 0.05 spikes/s per unit (the rule of
            :func:`from_arrays`): ``trial_duration`` / ``inter_trial_gap`` in milliseconds.

    Raises:
        FileNotFoundError: the folder or one of its files is missing.
        RecordingValidationError: ``spike_times`` not numeric; inconsistent shapes;
            ``ii_spike_times`` blocks that leave a spike out or index it twice (names the spike
            and the blocks); ``stim_label`` not numeric or not finite; or a spike outside
            ``[0, trial_duration)``.
        ValueError: ``trial_duration`` not a finite number > 0 or ``inter_trial_gap`` not a
            finite number >= 0 (NaN, inf, text and bools too), naming the argument.
    """
    folder = Path(folder)
    files = {k: folder / f"{k}.npy" for k in ("spike_times", "ii_spike_times", "stim_label")}
    # "Allen gratings file not found: .../stim_label.npy" said neither that the folder needs all three files
    # nor what the missing one holds (the format list wrote stim_label.npy as optional)
    what = {"spike_times": "every spike's time from its trial's onset, s, float64 (n_spikes,)",
            "ii_spike_times": "[start, stop) indices into spike_times per trial and unit, int (n_trials, n_units, 2)",
            "stim_label": "the grating orientation of each trial, degrees, numeric (n_trials,)"}
    missing = [k for k, f in files.items() if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Allen gratings folder {folder}: no {' or '.join(f'{k}.npy' for k in missing)} (expected all of "
            f"spike_times.npy, ii_spike_times.npy and stim_label.npy; "
            + "; ".join(f"{k}.npy: {what[k]}" for k in missing) + ")")
    # inf passed ('>= 0') and made every spike time NaN ('spike_times: expected finite values'), text failed
    # with "'>' not supported", and True was taken as 1 s
    trial_duration = checked_float("trial_duration", trial_duration, "a finite number of seconds > 0",
                                   lambda v: v > 0, owner="read_allen_gratings")
    inter_trial_gap = checked_float("inter_trial_gap", inter_trial_gap, "a finite number of seconds >= 0",
                                    lambda v: v >= 0, owner="read_allen_gratings")
    st = np.load(files["spike_times"])
    if st.dtype.kind not in "biuf":  # numpy's "could not convert string to float" named no file
        raise RecordingValidationError(f"spike_times: expected numeric spike times in seconds in {files['spike_times']}, "
                                       f"got dtype {st.dtype}")
    # float32 in the file: warned and kept, as the other readers do (it was widened without a word)
    st = widen_stored_times(st, "spike_times", f"read_allen_gratings({str(folder)!r})")
    ii = np.load(files["ii_spike_times"])
    if ii.dtype.kind not in "iu" and not (ii.dtype.kind == "f" and np.all(np.isfinite(ii)) and np.all(ii == np.round(ii))):
        raise RecordingValidationError(
            f"ii_spike_times: expected integer [start, stop) indices, got dtype {ii.dtype}"
            + (" with non-integer values" if ii.dtype.kind == "f" else ""))
    ii = ii.astype(np.int64)
    labels = np.load(files["stim_label"]).reshape(-1)
    if ii.ndim != 3 or ii.shape[2] != 2:
        raise RecordingValidationError(f"ii_spike_times: expected shape (trials, units, 2), got {ii.shape}")
    n_trials, n_units, _ = ii.shape
    if labels.shape[0] != n_trials:
        raise RecordingValidationError(f"stim_label: expected {n_trials} labels (one per trial), got {labels.shape[0]}")
    if ii.min() < 0 or ii.max() > st.size or np.any(ii[..., 1] < ii[..., 0]):
        raise RecordingValidationError(
            f"ii_spike_times: expected [start, stop) index pairs within [0, {st.size}] with stop >= start"
        )
    # every spike must belong to exactly one (trial, unit) block: a spike no block points at was
    # dropped, one that two blocks share was given to two units (or trials)
    cover = np.zeros(st.size + 1, dtype=np.int64)
    pairs = ii.reshape(-1, 2)
    np.add.at(cover, pairs[:, 0], 1)
    np.add.at(cover, pairs[:, 1], -1)
    cover = np.cumsum(cover)[:-1]
    wrong = np.flatnonzero(cover != 1)
    if wrong.size:
        j = int(wrong[0])
        hits = np.argwhere((ii[..., 0] <= j) & (j < ii[..., 1]))
        where = ", ".join(f"[{int(t)}, {int(u)}]" for t, u in hits[:3]) or "no block"
        raise RecordingValidationError(
            f"ii_spike_times: expected the [start, stop) blocks to index every spike of spike_times exactly once, "
            f"spike {j} is indexed by {int(cover[j])} blocks ({where}); {int(np.sum(cover == 0))} spikes are in no "
            f"block and {int(np.sum(cover > 1))} in more than one"
        )
    if labels.dtype.kind not in "biuf":
        raise RecordingValidationError(f"stim_label: expected numeric orientations in degrees, got dtype {labels.dtype}")
    if not np.all(np.isfinite(labels)):
        k = int(np.flatnonzero(~np.isfinite(labels))[0])
        raise RecordingValidationError(f"stim_label: expected finite orientations in degrees, trial {k} has {labels[k]}")
    # integer degrees stay int64; others (22.5) stay float64: int() cut 22.5 to 22 and named it "22deg"
    labels = labels.astype(np.int64) if np.all(labels == np.round(labels)) else labels.astype(np.float64)
    outside = np.flatnonzero(~((st >= 0) & (st < trial_duration)))  # NaN too
    if outside.size:
        raise RecordingValidationError(
            f"spike_times: expected times in [0, {trial_duration}) s from trial onset, spike {outside[0]} is "
            f"at {st[outside[0]]} s"
        )
    period = trial_duration + inter_trial_gap
    flat = ii.reshape(-1, 2)
    lengths = flat[:, 1] - flat[:, 0]
    # index of every spike in spike_times, for the (trial, unit) blocks in trial-major order
    idx = np.repeat(flat[:, 0] - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
    trial_of = np.repeat(np.repeat(np.arange(n_trials), n_units), lengths)
    unit_of = np.repeat(np.tile(np.arange(n_units), n_trials), lengths)
    times = st[idx] + trial_of * period

    onsets = np.arange(n_trials) * period
    stops = onsets + trial_duration
    if inter_trial_gap == 0:  # back to back: each stop is the next onset (k * 0.1 + 0.1 rounded past it,
        stops = np.append(onsets[1:], n_trials * period)  # and the last one past the time domain's end)
    trials = np.stack([onsets, stops], axis=1)
    orientations = sorted(np.unique(labels).tolist())
    ids = np.searchsorted(orientations, labels).astype(np.int64)
    stim = Stimulus(ids=ids, intervals=trials.copy(), names=[f"{o:g}deg" for o in orientations])
    rec = SpikeRecording.from_unsorted(
        times,
        unit_of,
        unit_names=[f"unit{i}" for i in range(n_units)],
        time_domain=(0.0, float(max(n_trials * period, stops[-1]))),
        time_support=trials.copy(),
        trials=trials,
        trial_info={"orientation_deg": labels},
        stimulus=stim,
        session=session,
    )
    # a spike listed twice in a (trial, unit) block was kept as two tokens without a word, as the other readers say
    warn_repeated_spikes_of(rec, f"read_allen_gratings: {files['spike_times']}",
                            "drop them from spike_times (and shorten their ii_spike_times blocks) to leave them out")
    # trial_duration=100 meant for 100 ms laid the trials over 11 h without a word (the rule of every reader)
    warn_if_not_seconds(rec, f"read_allen_gratings: trial_duration = {trial_duration:g} s, inter_trial_gap = "
                        f"{inter_trial_gap:g} s: the spike times laid out", "pass trial_duration and inter_trial_gap "
                        "in seconds (0.1 for 100 ms)")
    return rec
