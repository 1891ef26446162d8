"""Read and write :class:`~hf_neuroformer.recording.SpikeRecording` as NWB files (pynwb).

The format is Neurodata Without Borders 2 (HDF5; the NWB core schema as pynwb reads and writes it;
Rübel et al. 2022, eLife): times in an NWB file are seconds from ``session_start_time``.

What :func:`read_nwb` maps where
--------------------------------
* ``units`` table -> ``spike_times`` / ``unit_ids`` (sorted by time, then unit index).
  Unit index = row of the units table. Unit name = the ``unit_name`` (or ``name``) column when
  present (an empty name is refused, naming the row), else ``"unit{id}"`` with the table's row
  id; whitespace in a name is replaced by
  ``_`` (a unit token ``"<session>/<unit name>"`` cannot hold it), with a warning giving the count;
  a replaced name that another unit already has gets a ``_1``, ``_2`` ... suffix. Units with no
  spike time are kept (units that never fire), named and counted in a warning (not for a file
  :func:`write_nwb` wrote: a generated unit may never fire). Brain area = the units ``location``
  column, else the ``location`` of the unit's ``electrode_group``, else the ``location`` of the
  unit's row(s) in the ``electrodes`` table, else ``""``. A NaN, infinite or negative spike
  time is refused naming ``units[row]`` (name) and its index in that unit's ``spike_times``;
  spike times that repeat exactly inside one unit are kept and counted in a warning (not for a
  file :func:`write_nwb` wrote from generated spikes, session ``"<session>-generated"``: they
  lie at dt-bin centres, so a unit sampled twice in one bin repeats its time by design). A units
  ``obs_intervals`` column is not applied (every unit is taken as observed over the whole
  recording): a warning gives the units not observed over the span of the spikes and the
  spikes outside their unit's intervals. Spike times that span more than a day (or more than an
  hour at under 0.05 spikes/s per unit) are kept and flagged in a warning naming the file: NWB
  stores seconds, so they are probably milliseconds or sample ticks (as :func:`from_arrays` warns).
* Every ``TimeSeries`` / ``SpatialSeries`` in ``acquisition`` and in each ``processing`` module,
  also inside containers such as ``Position``, ``CompassDirection`` or ``BehavioralTimeSeries``
  -> ``behaviour[name]``. Values are ``data * conversion + offset`` (the series' ``unit``);
  timestamps are ``timestamps`` or ``starting_time + arange(n) / rate`` (s; any of them stored as float32 is
  read with a warning naming it, as spike times are: a float32 rate names the drift it gives the last sample). A name used by two
  series gets the container (or module) name as prefix (``"Position_x"``), and the module's name
  too where that is still used twice (``"tracking_Position_x"``: a ``Position`` in each of two
  processing modules). Skipped, with a
  warning that names the series: image / optical series (frames are not read here), electrical
  series (raw voltage), data with more than 2 dimensions or non-numeric data, series whose
  timestamps are not finite or go back in time, and series whose ``conversion``, ``offset`` or
  ``starting_time`` is not finite or whose ``rate`` is not a finite number > 0 (the warning names
  the field). A series with no samples is kept (an empty series), named in a warning; so is one
  none of whose samples lies in the time domain (timestamps in milliseconds, or on another clock).
  Timestamps that repeat exactly (a tracker logging
  one time twice) keep one sample per time, the mean of the repeated samples that are not NaN (NaN
  where all are), with a warning that counts them.
  A series of booleans (HDF5 / numpy dtype bool: a ``TimeSeries`` of flags, such as one in
  ``BehavioralEvents``) gives a ``BehaviourSeries`` with ``boolean=True`` (values 0.0 / 1.0, decoded
  as the classes ``False`` / ``True``), as booleans given to ``BehaviourSeries`` do; where its
  ``conversion`` / ``offset`` or repeated timestamps make values other than 0 / 1, it is read as
  numbers, named in a warning.
* The one ``ImageSeries`` / ``OpticalSeries`` in ``nwbfile.stimulus`` whose frames are stored in
  the file -> ``stimulus.frames`` ``(n, H, W)`` float32 (colour averaged to grey, warned; a channel
  axis of one dropped) with
  ``stimulus.frame_times`` and its description; :func:`write_nwb` writes frames back that way
  (an ``ImageSeries`` named ``frames``), their ``stimulus.field_of_view`` (degrees of visual angle,
  ``(height, width)``) as the ``ScratchData`` ``hf_neuroformer_stimulus_field_of_view``, read back
  into ``stimulus.field_of_view`` (a value that is not two finite numbers > 0 is refused naming the
  file). Without that entry, an ``OpticalSeries`` that states ``field_of_view`` (width, height in
  metres) and ``distance`` (metres) gives ``stimulus.field_of_view`` = ``2 atan(size / (2
  distance))`` per axis in degrees (eye facing the screen's centre); one that states a size
  without a usable distance is named in a warning and leaves it ``None``. Frames none of which is on
  screen inside the time domain (onsets in milliseconds, or on another clock) are kept, named in a
  warning. Series with external files, and any other, are skipped
  with a warning; so is a series without timestamps whose ``rate`` is not a finite number > 0 Hz
  or whose ``starting_time`` is not finite (the warning names the field and counts its frames).
* ``epochs`` rows -> ``epochs[name]`` where name is the row's tags joined by ``"_"`` (or the
  ``label`` / ``name`` column; ``"epoch{i}"`` when a row has none, or when the tags are only
  row numbers as pynapple writes them for unnamed intervals). Repeated names get
  ``"_1"``, ``"_2"`` ... suffixes (``sleep``, ``wake``, ``sleep`` -> ``sleep``, ``wake``,
  ``sleep_1``), named in a ``UserWarning``: selecting ``"sleep"`` takes the first row only. In a file written by :func:`write_nwb` the tag is the name
  as it is: ``"1"`` or ``""`` stay ``"1"`` and ``""`` (the row-number rule is for other files).
  In other files rows with a NaN start or stop, ``stop == start`` or ``stop < start`` are
  dropped, counted per reason in a ``UserWarning``.
* Every other table in ``intervals`` (not ``epochs``, not ``time_domain``) -> ``epochs[table]``
  spanning ``(first start, last stop)`` of its rows, and, when it has several rows, its rows ->
  ``epoch_intervals[table]``, so that ``select_epoch("sleep_ripples")`` selects the union of the
  594 ripples (37.6 s), not their span (0.736-599.738 s, nearly the whole sleep epoch); see
  :meth:`SpikeRecording.select_epoch`. When such a table has a usable per-row name (a ``label`` / ``name`` column, or tags that
  are not just row numbers), each row with a name is also an epoch (``"table:name"`` when the bare name is
  taken; names that repeat are named in a ``UserWarning``, as for the ``epochs`` table). Rows that are no span (a NaN start or stop, ``stop == start``, ``stop < start``) are
  left out, with their count per reason in a ``UserWarning`` (``"epochs: dropped ..."``).
* Interval tables with no rows (an empty ``trials`` or ``epochs`` table too) give nothing; they
  are named in a ``UserWarning`` (``"intervals: the interval tables ... have no rows"``).
* Trials: ``nwbfile.trials`` when present with rows; otherwise (an empty ``trials`` table is
  replaced with a ``UserWarning`` naming the tables used instead) every interval table that carries per-row
  columns besides ``start_time`` / ``stop_time`` / ``tags`` / ``timeseries`` (a task table),
  concatenated and sorted by start time, with ``trial_info["task"]`` = the table name (minus a
  ``_table`` suffix; a column ``task`` of the tables themselves is kept as ``task_1``, warned). One table keeps its row order when its rows are ordered by start time (as
  :func:`write_nwb` writes them); otherwise its rows are sorted, with a warning giving the count
  moved (a :class:`SpikeRecording` holds its trials ordered by start). Rows that are no span
  (a NaN start or stop, ``stop == start``, ``stop < start``) are dropped first, with their
  ``trial_info`` values, and counted per reason in a ``UserWarning`` (``"trials: dropped ..."``; one
  for a table also read as an epoch, ending ``"(left out of the trials and of the epochs)"``);
  trial ``i`` is then the ``i``-th kept trial. ``trial_info`` holds
  every 1-D numeric, boolean or string column (bytes are decoded; in a file of ours a column
  :func:`write_nwb` stored as JSON text, see there, is decoded back); a column missing from one
  table is NaN (numeric) or ``""`` (string) there. Ragged or reference columns are skipped with
  a warning. String columns (Zheng's ``task``, ``boundary_type``) are kept as they are; they
  cannot be classification targets (``"trial:<name>"`` needs numeric labels): map them to
  integer codes in a new ``trial_info`` column first.
* Categorical stimulus: the table written by :func:`write_nwb` (``stimulus`` with columns
  ``stimulus_id`` / ``stimulus_name``), else the first interval table with a clip / stimulus
  name column (``Clip_name``, ``clip_name``, ``stimulus_name``, ``stim_name``, ``image_name``)
  -> ``Stimulus(ids, intervals, names)`` with names = sorted distinct values, ids = index in
  ``names``; in a file of ours the full list of names (ids with no interval too) comes from
  the ``hf_neuroformer_stimulus_names`` scratch entry and the description from the table's.
  Rows with a NaN start or stop, ``stop == start`` or ``stop < start`` are dropped, with their
  count per reason in a ``UserWarning``.
* ``time_domain``: the single row of an interval table named ``time_domain`` (written by
  :func:`write_nwb`); otherwise ``(min(first spike, first epoch / trial start),
  max(just after the last spike, last epoch / trial stop))``.
* ``session``: the ``session`` argument, else (a file of ours) its ``session_id``, else the
  file's ``identifier``, else the file stem; a session read from the file has each run of
  whitespace replaced by ``_`` (``"Mouse 12 day 3"`` -> ``"Mouse_12_day_3"``), since a unit token
  ``"<session>/<unit name>"`` cannot hold whitespace and the command has no flag to rename it
  (one of whitespace only, ``"   "``, gives the file stem, its whitespace replaced too), and
  each ``/`` replaced by ``_`` (``"mouse12/day3"`` -> ``"mouse12_day3"``), as ``/`` separates the
  session from the unit name in the token.
* Point events -> ``events`` (see :mod:`hf_neuroformer.io.nwb_events`): every ``EventsTable``
  (``nwbfile.events``), every interval table but ``epochs`` / ``trials`` / time supports at its
  rows' start times, ``boundary<k>_time`` columns, and ``AnnotationSeries`` (which are therefore not behaviour). NaN times are dropped,
  unsorted ones sorted and events outside the time domain dropped, each counted in a warning
  (:func:`hf_neuroformer.events.clean_events`).

A file written by :func:`write_nwb` (its ``source_script`` is ``"hf_neuroformer.io.write_nwb"``,
or, for files written before that mark, it has the ``time_domain`` table) is read back exactly
(see :func:`write_nwb` for the list): its ``epochs`` table is then taken as the complete set of
epochs (no table spans are added, tags are names as they are), so that write -> read
reproduces ``epochs``.

A file that is not HDF5, or HDF5 that is not NWB, raises a ``RecordingValidationError`` naming
the file.

Files in ``shared/data``, as found
----------------------------------
* ``A2929-200711.nwb`` (pynapple): 15 units (``location`` ``adn`` x 7, ``ca1`` x 8), 98,794
  spikes in [0.008, 1199.97] s. ``epochs`` = ``sleep`` (0, 600) and ``wake`` (600, 1200) (from
  tags). Other interval tables: ``position_time_support`` (670.64, 1199.99),
  ``sleep_ripples`` (594 rows, tags are row numbers; 37.6 s in all), ``sleep_ripples_timesupport``
  (0, 600) -> spans in ``epochs``, the 594 ripple rows in ``epoch_intervals["sleep_ripples"]``. No trials. Behaviour: ``CompassDirection`` ``rx`` / ``ry`` / ``rz``
  (radian, 63,527 samples, 670.64-1199.99 s), ``Position`` ``x`` / ``y`` / ``z`` (no unit), and
  the ``sleep_ripples`` TimeSeries (594 samples, unit ``s``: timestamps are the ripple peaks,
  inside each ripple interval, the values are not documented). time_domain = (0, 1200).
  Events: ``sleep_ripples`` only (594 ripple onsets = the interval table's start times,
  unlabelled; ripples last 21-286 ms, mean 63 ms; the time-support tables are not events).
* ``sub-4_ses-4_ecephys+image.nwb`` (Zheng et al. 2022): 35 units, 214,278 spikes in
  [0.0079, 2821.07] s; areas from the electrodes table (``hippocampus_right``,
  ``amygdala_right``). No ``epochs``, no ``trials``. Interval tables: ``encoding_table`` (90
  movie clips: ``Clip_name``, ``stimCategory`` 0/1/2 = no/soft/hard boundary, boundary times,
  fixation-cross time), ``recognition_table`` (180 trials: old/new response, confidence, RT,
  frame name) and ``timediscrimination_table`` (180 trials). The clips -> ``Stimulus`` (90
  categories, one per clip); all 450 rows -> ``trials`` with ``trial_info["task"]`` in
  ``encoding`` / ``recognition`` / ``timediscrimination`` (so the boundary category of each
  clip is ``trial_info["stimCategory"]`` of the encoding rows); each table's span -> ``epochs``.
  ``acquisition`` ``events`` and ``experiment_ids`` are TTL marker series whose timestamps repeat
  (and start at -1.5e9 s): skipped with a warning. Events: ``encoding_table`` (90 clip onsets,
  labelled by ``stimCategory`` 0/1/2), ``encoding_boundaries`` (the ``boundary1-3_time``
  columns: hard / soft boundaries and the ``none`` control times of no-boundary clips),
  ``recognition_table`` and ``timediscrimination_table`` (trial onsets, labelled by
  ``boundary_type``). The ``StimulusPresentation_encoding``
  OpticalSeries points at external video files that are not included: not read (warning).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..recording import (BehaviourSeries, RecordingValidationError, SpikeRecording, Stimulus, as_field_of_view, count_noun,
                         file_names_without_whitespace, first_few, session_from_file, session_values,
                         unit_text, unnamed_units_message, widen_stored_rate, widen_stored_times)
from .arrays import _no_time_domain_error, text_of, warn_frames_outside, warn_if_not_seconds, warn_repeated_spikes, \
    warnings_at_caller
from .nwb_events import read_events, write_events
from .permissions import check_output_file, check_output_folder, write_through_temporary

__all__ = ["read_nwb", "write_nwb", "read_nwb_scratch",
           "TRIAL_JSON_NOTE"]

TIME_DOMAIN_TABLE = "time_domain"
TIME_SUPPORT_TABLE = "time_support"
#: Interval table of :func:`write_nwb` holding ``SpikeRecording.epoch_intervals`` (tag = epoch name).
EPOCH_INTERVALS_TABLE = "epoch_intervals"
STIMULUS_TABLE = "stimulus"
BEHAVIOUR_MODULE = "behavior"
_STIMULUS_NAME_COLUMNS = ("stimulus_name", "Clip_name", "clip_name", "stim_name", "image_name")
_INTERVAL_BASE_COLUMNS = {"start_time", "stop_time", "tags", "timeseries"}
_NAME_COLUMNS = ("label", "name", "epoch_name")
_UNIT_PLACEHOLDER = "n/a"  # written when a BehaviourSeries has no unit; read back as ""
#: ``source_script`` of every file :func:`write_nwb` writes: marks a file as ours even when the
#: recording has no time domain (older files are recognised by their ``time_domain`` table).
WRITER_MARK = "hf_neuroformer.io.write_nwb"
#: ``ScratchData`` holding a categorical stimulus' full list of names (index = id), so that names
#: of ids with no interval survive; :func:`read_nwb_scratch` leaves it out.
STIMULUS_NAMES_SCRATCH = "hf_neuroformer_stimulus_names"
#: ``ScratchData`` holding :attr:`SpikeRecording.session_info` as JSON text (one value per name;
#: dropped without a word before); :func:`read_nwb_scratch` leaves it out.
SESSION_INFO_SCRATCH = "hf_neuroformer_session_info"
#: ``ScratchData`` holding ``Stimulus.field_of_view``: ``[height, width]`` float64, degrees of visual angle
#: (NWB's ``OpticalSeries.field_of_view`` is in metres, width first, and needs a viewing distance the
#: data do not state); :func:`read_nwb_scratch` leaves it out.
STIMULUS_FIELD_OF_VIEW_SCRATCH = "hf_neuroformer_stimulus_field_of_view"
#: ScratchData name of the JSON ``{"behaviour": [names], "events": [names]}`` that keeps the recording's order
#: of its behaviour series and event streams (NWB reads a group's members in name order)
FIELD_ORDER_SCRATCH = "hf_neuroformer_field_order"
_OUR_SCRATCH = (STIMULUS_NAMES_SCRATCH, SESSION_INFO_SCRATCH, STIMULUS_FIELD_OF_VIEW_SCRATCH,
                FIELD_ORDER_SCRATCH)
_STIMULUS_TABLE_DESCRIPTION = "categorical stimulus intervals"
# written for frames without a description; read back as None (as is pynwb's own default)
_FRAMES_DESCRIPTIONS_UNSET = ("stimulus frames", "no description")


# ---------------------------------------------------------------------------------- helpers
def _decode(values) -> np.ndarray:
    """Object / bytes array -> array of ``str``; other arrays unchanged."""
    arr = np.asarray(values)
    if arr.dtype.kind == "S" or arr.dtype == object:
        return np.array([text_of(v) for v in arr.ravel()],
                        dtype=object).reshape(arr.shape)
    if arr.dtype.kind == "U":
        return arr.astype(object)
    return arr


def _simple_column(table, name: str) -> Optional[np.ndarray]:
    """Values of a 1-D numeric / bool / string column, or ``None`` if the column is not simple."""
    from hdmf.common.table import DynamicTableRegion, VectorIndex

    col = table[name]
    if isinstance(col, (VectorIndex, DynamicTableRegion)):
        return None
    try:
        data = np.asarray(col.data[:])
    except Exception:  # noqa: BLE001 - any unreadable column is "not simple"
        return None
    if data.ndim != 1:
        return None
    if data.dtype.kind in "biuf":
        return data
    if data.dtype.kind in "SU" or data.dtype == object:
        if data.dtype == object and not all(isinstance(v, (str, bytes)) for v in data):
            return None
        return _decode(data)
    return None


def _row_names(table) -> Optional[List[str]]:
    """Per-row names of an interval table (``label``/``name`` column or tags), or ``None``.

    Tags that are just row numbers (``"0"``, ``"1"``, ... as pynapple writes them) are not names.
    """
    cols = set(table.colnames)
    for c in _NAME_COLUMNS:
        if c in cols:
            vals = _simple_column(table, c)
            if vals is not None and vals.dtype == object:
                return [str(v) for v in vals]
    if "tags" in cols:
        names = ["_".join(str(v) for v in _decode(np.atleast_1d(t)).ravel()) for t in table["tags"][:]]
        if any(names) and not all(n.isdigit() or n == "" for n in names):
            return names
    return None


def _unique_name(name: str, taken) -> str:
    if name not in taken:
        return name
    k = 1
    while f"{name}_{k}" in taken:
        k += 1
    return f"{name}_{k}"


class _IntervalBounds:
    """``bounds(table, use)``: the ``(start, stop)`` float64 s of an interval table, for one
    :func:`read_nwb` call that reads it as ``use`` (``"the trials"``). A table is read as several
    things (``trials`` as the trials and as the epoch ``'trials'``; a task table as trials, epoch and
    events), and its float32 bounds were named in one warning per use; :meth:`warn`, called once all
    is read, gives one per column (:func:`widen_stored_times`) naming every use."""

    def __init__(self):
        self._read: Dict[str, list] = {}  # table name -> [start_time, stop_time as stored, uses]
        # table name -> [rows, [(count, reason)], parts left without them ("trials", "epochs")]: see _usable_rows
        self._dropped: Dict[str, list] = {}

    def dropped(self, tname: str, what: str, n_rows: int, counts: List[Tuple[int, str]]) -> None:
        """Note that ``what`` (``"trials"``, ``"epochs"``, ``"stimulus"``) left out the rows of interval
        table ``tname`` (of ``n_rows``) that are no span, ``counts`` per reason; :meth:`warn` names them."""
        if tname not in self._dropped:
            self._dropped[tname] = [n_rows, counts, []]
        if what not in self._dropped[tname][2]:
            self._dropped[tname][2].append(what)

    def __call__(self, table, use: str) -> Tuple[np.ndarray, np.ndarray]:
        if table.name not in self._read:
            self._read[table.name] = [table["start_time"].data[:], table["stop_time"].data[:], []]
        start, stop, uses = self._read[table.name]
        if use not in uses:
            uses.append(use)
        return np.asarray(start, dtype=np.float64), np.asarray(stop, dtype=np.float64)

    def warn(self) -> None:
        for name, (start, stop, uses) in self._read.items():
            read_as = f" (read as {' and as '.join(uses)})" if len(uses) > 1 else ""
            for col, stored in (("start_time", start), ("stop_time", stop)):
                widen_stored_times(stored, f"{name}.{col}{read_as}", "read_nwb")
        # one warning per table and reason: the trials table is read as the trials and as the epoch 'trials',
        # and its reversed row was warned about once as each
        for name, (n_rows, counts, whats) in self._dropped.items():
            also = f" (left out of the {' and of the '.join(whats)})" if len(whats) > 1 else ""
            for n, why in counts:
                warnings.warn(f"{whats[0]}: dropped {n} of {n_rows} rows of interval table {name!r} {why}{also}")


def _usable_rows(starts: np.ndarray, stops: np.ndarray, what: str, tname: str,
                 bounds: _IntervalBounds) -> np.ndarray:
    """``(n,)`` bool mask of the rows of interval table ``tname`` that are a span (finite start and
    stop, ``stop > start``); each other kind of row is counted in a ``UserWarning`` that starts
    with ``what`` (``"trials"``, ``"epochs"``), given by ``bounds.warn()`` once per table and reason
    however many parts of the recording the table is read as (named then: ``"(left out of the
    trials and of the epochs)"``). Such a row, kept, made :class:`SpikeRecording` refuse the whole
    foreign file; a recording built by hand still refuses it."""
    finite = np.isfinite(starts) & np.isfinite(stops)
    with np.errstate(invalid="ignore"):
        kinds = ((~finite, "with a non-finite start or stop time"),
                 (finite & (stops == starts), "of zero length (stop == start)"),
                 (finite & (stops < starts), "with a stop before the start"))
    counts = [(int(mask.sum()), why) for mask, why in kinds if mask.any()]
    if counts:
        bounds.dropped(tname, what, int(finite.size), counts)
    return finite & ~kinds[1][0] & ~kinds[2][0]


# ---------------------------------------------------------------------------------- units
def _unit_and_index(k: int, ends: np.ndarray) -> Tuple[int, int]:
    """Row of the units table and index inside that unit's spike_times of flat spike ``k``."""
    row = int(np.searchsorted(ends, k, side="right"))
    return row, int(k - (ends[row - 1] if row else 0))


def _is_generated_file(nwb) -> bool:
    """A file :func:`write_nwb` wrote from :func:`hf_neuroformer.generate_spikes` output (session
    ``"<session>-generated"`` or ``"<session>-generated-sample<k>"``)."""
    import re

    return (str(nwb.source_script or "") == WRITER_MARK
            and re.search(r"-generated(-sample\d+)?$", str(nwb.session_id or "")) is not None)


def _check_unit_spike_times(flat: np.ndarray, ends: np.ndarray, names: List[str], path,
                            generated: bool = False) -> None:
    """Refuse NaN / infinite / negative spike times naming the unit (row and name) and the spike's
    index in that unit's ``spike_times``; warn (with counts) about units whose spike times are
    not in ascending order (sorted: no spike is lost), and about spike times that repeat
    exactly inside one unit (a unit cannot fire twice at once: usually a merge or export
    artefact). Repeats are kept: each is a token of its window. Not warned for a ``generated``
    file: generated spikes lie at dt-bin centres, so a unit sampled twice in one bin repeats its
    time by design."""
    for bad, what in ((np.flatnonzero(~np.isfinite(flat)), "finite values"),
                      (np.flatnonzero(flat < 0), "times >= 0 s (relative to session_start_time)")):
        if bad.size:
            row, i = _unit_and_index(int(bad[0]), ends)
            n_units_bad = np.unique(np.searchsorted(ends, bad, side="right")).size
            raise RecordingValidationError(
                f"units[{row}] ({names[row]!r}).spike_times[{i}]: expected {what}, got {flat[bad[0]]} in {path} "
                f"({count_noun(bad.size, 'such spike time')} in {count_noun(n_units_bad, 'unit')})"
            )
    # a unit's spike times out of ascending order (NWB best practice: ascending; nwbinspector checks it) were
    # sorted without a word; two segments' times concatenated, or a clock reset, look so
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    back = np.flatnonzero(np.diff(flat) < 0) + 1  # flat index k: spike k comes before spike k - 1
    back = back[~np.isin(back, starts)]  # a unit's first spike after the previous unit's last is no step back
    if back.size:
        units_back = np.unique(np.searchsorted(ends, back, side="right"))
        row, i = _unit_and_index(int(back[0]), ends)
        warnings.warn(
            f"units: {units_back.size} of {len(ends)} units in {path} have spike times out of ascending order "
            f"({count_noun(back.size, 'step')} back in time; first: units[{row}] ({names[row]!r}).spike_times[{i}] at "
            f"{flat[back[0]]:g} s after {flat[back[0] - 1]:g} s); sorted, no spike left out (concatenated segments, "
            "or a clock reset? check the spike sorting export)", UserWarning, stacklevel=4)
    if not generated:
        rows = np.repeat(np.arange(len(ends)), np.diff(np.concatenate([[0], ends])))
        # from_arrays' warning (the units with most repeats named first), at read_nwb's caller
        warn_repeated_spikes(flat, rows, names, f"units of {path}", "check the spike sorting export", stacklevel=4)


def _warn_obs_intervals(units, flat: np.ndarray, unit_ids: np.ndarray, names: List[str], path) -> None:
    """Warn when the units table has ``obs_intervals``: they are not applied (windows outside a
    unit's observation intervals read it as silent), and count the spikes that lie outside
    their unit's intervals."""
    if "obs_intervals" not in units.colnames:
        return
    col = units["obs_intervals"]
    try:
        ends = np.asarray(col.data[:], dtype=np.int64)
        rows = widen_stored_times(col.target.data[:], "units.obs_intervals", f"read_nwb({str(path)!r})").reshape(-1, 2)
    except Exception:  # noqa: BLE001 - an unreadable column: say so and go on
        warnings.warn(f"units: obs_intervals in {path} could not be read; they are not applied")
        return
    starts = np.concatenate([[0], ends[:-1]])
    span = (float(flat.min()), float(flat.max())) if flat.size else None
    outside, partial = 0, 0
    for u, (a, b) in enumerate(zip(starts, ends)):
        if b == a:  # no intervals given for this unit: nothing to apply
            continue
        iv = rows[a:b][np.argsort(rows[a:b, 0], kind="stable")]
        t = flat[unit_ids == u]
        k = np.searchsorted(iv[:, 0], t, side="right") - 1
        outside += int(np.sum((k < 0) | (t >= iv[np.clip(k, 0, None), 1])))
        if span is not None:
            s0, s1 = span
            k0 = int(np.searchsorted(iv[:, 0], s0, side="right")) - 1
            covered = k0 >= 0 and iv[k0, 1] > s1  # one interval holds the span of all the spikes
            partial += int(not covered)
    if not partial and not outside:
        return
    good = np.isfinite(rows).all(1) & (rows[:, 1] > rows[:, 0])
    lo = float(rows[good, 0].min()) if good.any() else float("nan")
    hi = float(rows[good, 1].max()) if good.any() else float("nan")
    # a NaN or reversed interval gave '0 to nan s' and counted as not observing its unit, unnamed
    bad = (f"; {int((~good).sum())} of them not finite or with stop <= start, e.g. {rows[~good][0].tolist()}"
           if not good.all() else "")
    warnings.warn(
        f"units: the units table of {path} has obs_intervals ({len(rows)} intervals, {lo:g} to {hi:g} s{bad}) that "
        f"read_nwb does not apply: {partial} of {len(names)} units were not observed over the whole span of the "
        f"spikes, and every unit is taken as observed over the whole recording, so a window outside "
        f"a unit's intervals reads it as silent; {outside} spikes lie outside their unit's obs_intervals. Select "
        "the time all units were observed (SpikeRecording.restrict, or --epoch with an epoch that covers it)"
    )


def _check_spike_times_index(ends: np.ndarray, counts: np.ndarray, n_times: int, n_units: int, path) -> None:
    """Refuse a units ``spike_times_index`` that does not split ``units.spike_times`` into one run
    per unit: NWB's ragged column holds each unit's end offset (``(n_units,)``, non-decreasing,
    the last equal to the number of spike times). A writer of its own (h5py, MATLAB) that stored the
    start offsets, or a file edited by hand, failed in numpy ("repeats may not contain negative values",
    "all keys need to be the same shape"), naming neither the file nor the column."""
    where = f"units.spike_times_index of {path}"
    if ends.size != n_units:
        raise RecordingValidationError(f"{where}: expected one end offset per unit ({n_units}), got {ends.size}")
    back = np.flatnonzero(counts < 0)
    if back.size:
        k = int(back[0])
        raise RecordingValidationError(
            f"{where}: expected each unit's end offset into units.spike_times, non-decreasing, got {int(ends[k])} for "
            f"units[{k}] after {int(ends[k - 1]) if k else 0} (a decrease at {count_noun(back.size, 'unit')})")
    if ends.size and int(ends[-1]) != n_times:
        what = (f"{count_noun(n_times - int(ends[-1]), 'spike time')} belong to no unit (start offsets stored for end offsets?)"
                if ends[-1] < n_times else "it points past the end")
        raise RecordingValidationError(
            f"{where}: expected the last unit's end offset to be the number of spike times, {n_times}, got "
            f"{int(ends[-1])}: {what}")


def _container_place(obj) -> str:
    """``obj``'s place in its NWB file, e.g. ``processing/ecephys/sorted_units``: the names from
    the file down, a processing module's under ``processing/``."""
    from pynwb import ProcessingModule

    parts = []
    while obj is not None and getattr(obj, "parent", None) is not None:
        parts.append(obj.name)
        if isinstance(obj, ProcessingModule):
            parts.append("processing")
        obj = obj.parent
    return "/".join(reversed(parts))


def _units_elsewhere(nwb, units) -> str:
    """``"; it holds ... elsewhere ..."``: the Units tables of ``nwb`` other than ``units``
    (``nwbfile.units``), named by place and rows, for the refusal of a file whose
    ``nwbfile.units`` is missing or empty (a pipeline that wrote its sort into a processing
    module was told only 'no units table'); ``""`` when there are none."""
    from pynwb.misc import Units

    others = [o for o in nwb.objects.values() if isinstance(o, Units) and o is not units]
    if not others:
        return ""
    shown = ", ".join(f"{_container_place(o)!r} ({count_noun(len(o), 'unit')})" for o in others[:4])
    return (f"; it holds {count_noun(len(others), 'Units table')} elsewhere, which read_nwb does not read: {shown} (NWB "
            "keeps the sorted units in nwbfile.units: write them there, or read their spike_times with pynwb and pass "
            "them to hf_neuroformer.io.from_arrays)")


def _read_units(nwb, path) -> Tuple[np.ndarray, np.ndarray, List[str], List[str]]:
    units = nwb.units
    if units is None or len(units) == 0:
        what = "has no units table" if units is None else "has an empty units table (0 rows)"
        raise RecordingValidationError(
            f"units: expected an NWB units table (nwbfile.units) with a spike_times column and at "
            f"least one unit; {path} {what}{_units_elsewhere(nwb, units)}"
        )
    if "spike_times" not in units.colnames:
        raise RecordingValidationError(
            f"units: expected a spike_times column in the units table of {path}, found columns "
            f"{list(units.colnames)}"
        )
    n = len(units)
    index = units["spike_times"]
    ends = np.asarray(index.data[:], dtype=np.int64)
    flat = widen_stored_times(index.target.data[:], "units.spike_times", f"read_nwb({str(path)!r})")
    counts = np.diff(np.concatenate([[0], ends]))
    _check_spike_times_index(ends, counts, flat.size, n, path)
    unit_ids = np.repeat(np.arange(n, dtype=np.int64), counts)

    cols = set(units.colnames)
    names = None
    for c in ("unit_name", "name"):
        if c in cols:
            vals = _simple_column(units, c)
            if vals is not None:
                names = [str(v) for v in vals]
                # kept, '' gave the unit token '<session>/' (a name of whitespace only becomes 'unit', below)
                unnamed = unnamed_units_message(
                    names, "units", "name it in the file, or leave the column out (units are then named 'unit<id>')",
                    where=f" in column {c!r} of {path}", whitespace=False,
                    label=lambda k: f"units[{k}] (id {int(units.id.data[k])})")
                if unnamed is not None:
                    raise RecordingValidationError(unnamed)
                break
    from_ids = names is None
    if from_ids:
        names = [f"unit{int(i)}" for i in units.id.data[:]]
    # names such as "unit 0" made the file untrainable from the command (stacklevel: read_nwb's caller)
    names = file_names_without_whitespace(names, "units", f" in {path}", stacklevel=3)
    if len(set(names)) != len(names):
        seen: set = set()
        fixed = []
        for nm in names:
            nm2 = _unique_name(nm, seen)
            seen.add(nm2)
            fixed.append(nm2)
        # it named neither the names nor the units renamed: two sorts' units tables joined, each counting from 0,
        # read as one without saying which units were which
        repeats = {nm: k for nm, k in Counter(names).items() if k > 1}
        shown = first_few((f"{nm!r} x {k}" for nm, k in repeats.items()), 5, quote=False)
        warnings.warn(f"units: unit names in {path} repeat ({shown}"
                      f"{', from the ids of the units table' if from_ids else ''}); made them unique with _1, _2 ... "
                      f"suffixes ({sum(repeats.values()) - len(repeats)} units renamed, in row order)")
        names = fixed
    _check_unit_spike_times(flat, ends, names, path, generated=_is_generated_file(nwb))
    _warn_obs_intervals(units, flat, unit_ids, names, path)
    silent = np.flatnonzero(counts == 0)
    if silent.size and str(nwb.source_script or "") != WRITER_MARK:  # (a generated unit may never fire)
        # kept without a word, where read_phy and read_nelpy_linear_track leave such units out with a count
        shown = first_few((f"units[{int(u)}] ({names[u]!r})" for u in silent), 5, quote=False, count_rest=False)
        warnings.warn(f"units: {silent.size} of {n} units in {path} have no spike time ({shown}); kept as units that "
                      "never fire (in the tokenizer's vocabulary and every per-unit metric); "
                      "SpikeRecording.select_units leaves them out")

    areas = [""] * n
    if "location" in cols and _simple_column(units, "location") is not None:
        areas = [str(v) for v in _simple_column(units, "location")]
    elif "electrode_group" in cols:
        groups = units["electrode_group"].data[:]
        areas = [str(getattr(g, "location", "") or "") for g in groups]
    elif "electrodes" in cols and nwb.electrodes is not None and "location" in nwb.electrodes.colnames:
        from hdmf.common.table import VectorIndex

        loc = _decode(nwb.electrodes["location"].data[:])
        col = units["electrodes"]
        if isinstance(col, VectorIndex):
            e_ends = np.asarray(col.data[:], dtype=np.int64)
            rows = np.asarray(col.target.data[:], dtype=np.int64)
            starts = np.concatenate([[0], e_ends[:-1]])
            per_unit = [rows[a:b] for a, b in zip(starts, e_ends)]
        else:
            per_unit = [np.atleast_1d(r) for r in np.asarray(col.data[:], dtype=np.int64)]
        # a row past the table failed with numpy's IndexError (pynwb only warns), and a negative one took an
        # electrode from the end without a word: 1-based (MATLAB) row numbers, or another file's table?
        for u, rr in enumerate(per_unit):
            bad = rr[(rr < 0) | (rr >= len(loc))]
            if bad.size:
                raise RecordingValidationError(
                    f"units[{u}] ({names[u]!r}).electrodes in {path}: expected rows of the electrodes table, 0 to "
                    f"{len(loc) - 1}, got {int(bad[0])} (1-based row numbers, as MATLAB counts?)")
        areas = ["+".join(dict.fromkeys(str(loc[r]) for r in rr)) for rr in per_unit]
    return flat, unit_ids, names, areas


# ---------------------------------------------------------------------------------- behaviour
def _series_to_behaviour(ts, label: str) -> Optional[BehaviourSeries]:
    from pynwb.ecephys import ElectricalSeries
    from pynwb.image import ImageSeries
    from pynwb.misc import AnnotationSeries

    if isinstance(ts, AnnotationSeries):  # text annotations at times: read as events (nwb_events)
        return None
    if isinstance(ts, ImageSeries):
        warnings.warn(f"behaviour: skipped {label!r} ({type(ts).__name__}): image frames are not read by read_nwb")
        return None
    if isinstance(ts, ElectricalSeries):
        warnings.warn(f"behaviour: skipped {label!r} (ElectricalSeries): raw voltage is not behaviour")
        return None
    if ts.data is None:
        warnings.warn(f"behaviour: skipped {label!r}: the series holds no data")
        return None
    values = np.asarray(ts.data[:])
    boolean = values.dtype.kind == "b"  # flags were read as 0.0 / 1.0 numbers, decoded as classes 0 / 1
    if values.dtype.kind not in "biuf":
        warnings.warn(f"behaviour: skipped {label!r}: non-numeric data of dtype {values.dtype}")
        return None
    if values.ndim not in (1, 2) or (values.ndim == 2 and values.shape[1] == 0):
        warnings.warn(f"behaviour: skipped {label!r}: data of shape {values.shape}, expected 1-D or 2-D with at "
                      "least one column")
        return None
    # a NaN / infinite factor made every value NaN or infinite; a rate of 0 or NaN every timestamp NaN (skipped as
    # 'timestamps ... sample 0 is nan', naming neither field) and an infinite rate every timestamp 0 (averaged into
    # one sample as 'timestamps repeat'): the field is named, the series skipped
    fields = [("conversion", ts.conversion if ts.conversion is not None else 1.0, "a finite number"),
              ("offset", getattr(ts, "offset", 0.0) or 0.0, "a finite number")]
    if ts.timestamps is None:
        fields += [("rate", ts.rate, "a finite sampling rate > 0 Hz"),
                   ("starting_time", ts.starting_time or 0.0, "a finite time in seconds")]
    for field, value, expected in fields:
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        if not (isinstance(value, float) and np.isfinite(value) and (field != "rate" or value > 0)):
            warnings.warn(f"behaviour: skipped {label!r}: its {field} is {value!r}, expected {expected}")
            return None
    values = values.astype(np.float64) * float(ts.conversion if ts.conversion is not None else 1.0)
    values = values + float(getattr(ts, "offset", 0.0) or 0.0)
    if ts.timestamps is not None:
        t = widen_stored_times(ts.timestamps[:], f"{label}.timestamps", "read_nwb")
    else:  # a float32 starting_time (another writer than pynwb) was widened without a word, as timestamps were not
        start = float(widen_stored_times(ts.starting_time or 0.0, f"{label}.starting_time", "read_nwb"))
        rate = widen_stored_rate(ts.rate, values.shape[0], f"{label}.rate", "read_nwb")  # float32: warned alike
        t = start + np.arange(values.shape[0], dtype=np.float64) / rate
    if t.shape[0] != values.shape[0]:
        warnings.warn(f"behaviour: skipped {label!r}: {t.shape[0]} timestamps for {values.shape[0]} samples")
        return None
    bad = np.flatnonzero(~np.isfinite(t))
    steps = np.diff(t)
    if not bad.size and t.size and (steps >= 0).all() and (steps == 0).any():
        # a tracker that logs a sample twice at one time: one repeat used to drop the whole series
        times, first, n_at = np.unique(t, return_index=True, return_counts=True)
        # NaN is a sample the tracker lost: the mean of the others (a NaN with a valid sample at one time
        # gave NaN, and the valid sample was lost without a word); NaN only where every sample is
        seen = ~np.isnan(values)
        summed = np.add.reduceat(np.where(seen, values, 0.0), first, axis=0)
        n_seen = np.add.reduceat(seen.astype(np.int64), first, axis=0)
        values = np.where(n_seen > 0, summed / np.maximum(n_seen, 1), np.nan)
        warnings.warn(
            f"behaviour: {label!r}: {int((n_at > 1).sum())} timestamps repeat ({int(t.size - times.size)} extra "
            f"samples); each repeated time keeps the mean of its samples that are not NaN ({times.size} samples kept "
            f"of {t.size})"
        )
        t = times
    nonincr = np.flatnonzero(np.diff(t) <= 0)
    if bad.size or nonincr.size:
        # it named the series' first sample, not where the timestamps go wrong
        k = nonincr[0] if nonincr.size else 0
        # equal times read "at 1248.404585 s comes after sample 276 at 1248.404585 s"
        first = (f"sample {bad[0]} is {t[bad[0]]}" if bad.size else
                 f"sample {k + 1} at {t[k + 1]} s repeats the time of sample {k}" if t[k + 1] == t[k] else
                 f"sample {k + 1} at {t[k + 1]} s comes after sample {k} at {t[k]} s")
        warnings.warn(
            f"behaviour: skipped {label!r}: timestamps must be finite and strictly increasing, found "
            f"{bad.size} non-finite and {nonincr.size} non-increasing steps (first: {first})"
        )
        return None
    if not t.size:  # kept without a word: inspect said 'no samples here' later, a target found no value
        warnings.warn(f"behaviour: {label!r} holds no samples (0 timestamps); kept as an empty series, which gives no "
                      "value to any window")
    # an attribute of fixed width (h5py / MATLAB writers) reads as padded bytes: b"n/a   " was taken as the unit
    # "n/a   " (not the placeholder) and b"cm\0\0" as "cm\0\0" (str() of bytes gave "b'cm'")
    unit = unit_text(text_of(ts.unit or ""))
    if unit == _UNIT_PLACEHOLDER:
        unit = ""
    if boolean and not np.isin(values, (0.0, 1.0)).all():
        odd = np.unique(values[~np.isin(values, (0.0, 1.0))])
        warnings.warn(f"behaviour: {label!r}: boolean data read as numbers, not as False / True: its values "
                      f"become {first_few((f'{v:g}' for v in odd), quote=False)} (conversion {float(ts.conversion or 1.0):g}, "
                      f"offset {float(getattr(ts, 'offset', 0.0) or 0.0):g}, or the mean of samples at a repeated "
                      "timestamp), not 0 / 1")
        boolean = False
    return BehaviourSeries(timestamps=t, values=values, unit=unit, boolean=boolean)


def _warn_behaviour_outside(behaviour: Dict[str, BehaviourSeries], time_domain, path) -> None:
    """Warn of behaviour series with samples of which none lies in ``time_domain`` (timestamps in
    milliseconds, or on another clock than the spikes): they are kept, but no window reads a value
    from them (events there are dropped and counted; such a series was kept without a word)."""
    lo, hi = time_domain
    outside = [(k, s.timestamps) for k, s in behaviour.items()
               if s.timestamps.size and not np.any((s.timestamps >= lo) & (s.timestamps < hi))]
    if outside:
        shown = first_few((f"{k!r} ({t[0]:g} to {t[-1]:g} s)" for k, t in outside), 5, quote=False)
        warnings.warn(f"behaviour: {len(outside)} series in {path} have no sample inside the recording's time domain "
                      f"[{lo:g}, {hi:g}) s ({shown}); kept, but no window reads a value from them: are their timestamps "
                      "in milliseconds, or on another clock than the spike times?", UserWarning, stacklevel=3)


def _warn_intervals_outside_spikes(spike_times: np.ndarray, epochs: Dict[str, Tuple[float, float]],
                                   trials: Optional[np.ndarray], time_domain, path) -> None:
    """Warn of epochs and trials that lie wholly outside the span of the spike times (first spike
    to last) while they set the time domain (a file with no time domain of its own, whose domain is
    the span of the spikes, epochs and trials): times in milliseconds, or on another clock than the
    spikes. Trials in milliseconds beside 20 s of spikes stretched the recording to 19,000 s without
    a word, and ``neuroformer prepare`` wrote 70,000 training windows holding no spike. They are kept
    (a sort may cover part of a session): each window there reads every unit as silent."""
    if not spike_times.size:
        return
    first, last = float(spike_times.min()), float(spike_times.max())
    parts = []
    far = [(k, a, b) for k, (a, b) in epochs.items() if b <= first or a > last]
    if far:
        shown = first_few((f"{k!r} ({a:g} to {b:g} s)" for k, a, b in far), 5, quote=False)
        parts.append(f"{len(far)} of {len(epochs)} epochs ({shown})")
    if trials is not None and len(trials):
        out = np.flatnonzero((trials[:, 1] <= first) | (trials[:, 0] > last))
        if out.size:
            shown = first_few((f"trial {int(i)} ({trials[i, 0]:g} to {trials[i, 1]:g} s)" for i in out), 5, quote=False)
            parts.append(f"{out.size} of {len(trials)} trials ({shown})")
    if not parts:
        return
    lo, hi = time_domain
    warnings.warn(f"intervals: {' and '.join(parts)} of {path} lie wholly outside the span of the spike times "
                  f"({first:g} to {last:g} s), so the recording's time domain was stretched to [{lo:g}, {hi:g}) s to "
                  "hold them; kept, but every window there reads every unit as silent: are the interval times in "
                  "milliseconds, or on another clock than the spike times? (fix the file, or select the spikes' "
                  "time with SpikeRecording.restrict)", UserWarning, stacklevel=3)


def _read_behaviour(nwb) -> Dict[str, BehaviourSeries]:
    from pynwb import TimeSeries

    found: List[Tuple[str, str, str, object]] = []  # (where: acquisition or module, container, name, series)

    def walk(obj, origin: str, where: str):
        if isinstance(obj, TimeSeries):
            found.append((origin, origin, obj.name, obj))
            return
        children = [c for c in getattr(obj, "children", []) if isinstance(c, TimeSeries)]
        if children:
            for c in children:
                found.append((origin, obj.name, c.name, c))
        else:
            warnings.warn(f"behaviour: skipped {where} object {obj.name!r} ({type(obj).__name__}): holds no TimeSeries")

    for obj in nwb.acquisition.values():
        walk(obj, "acquisition", "acquisition")
    for mod in nwb.processing.values():
        for obj in mod.data_interfaces.values():
            walk(obj, mod.name, f"processing[{mod.name!r}]")

    # a name used twice gets its container's name in front; where that is used twice too (a Position
    # container in each of two processing modules), the module's as well: '_1', '_2' suffixes did not
    # say which module a series came from
    counts: Dict[str, int] = {}
    for _, _, name, _ in found:
        counts[name] = counts.get(name, 0) + 1
    keys = [name if counts[name] == 1 else f"{container}_{name}" for _, container, name, _ in found]
    prefixed: Dict[str, int] = {}
    for key in keys:
        prefixed[key] = prefixed.get(key, 0) + 1
    out: Dict[str, BehaviourSeries] = {}
    for (origin, container, name, ts), key in zip(found, keys):
        if prefixed[key] > 1 and container != origin:
            key = f"{origin}_{key}"
        key = _unique_name(key, out)
        series = _series_to_behaviour(ts, key)
        if series is not None:
            out[key] = series
    return out


# ---------------------------------------------------------------------------------- intervals
def _read_epochs_table(table, bounds: _IntervalBounds, ours: bool = False) -> Dict[str, Tuple[float, float]]:
    """``name -> (start, stop)`` of an ``epochs`` table.

    In a file written by :func:`write_nwb` (``ours``) every row's single tag is its name, taken
    as it is (``"1"`` and ``""`` included). In other files tags that are only row numbers (as
    pynapple writes for unnamed intervals) or empty give ``"epoch{i}"`` (``i`` = row in the file);
    there rows that are no span (NaN bound, ``stop <= start``) are dropped, counted in a warning.
    """
    starts, stops = bounds(table, "the epochs")
    if ours and "tags" in table.colnames:
        names = ["_".join(str(v) for v in _decode(np.atleast_1d(t)).ravel()) for t in table["tags"][:]]
        out: Dict[str, Tuple[float, float]] = {}
        for a, b, nm in zip(starts, stops, names):
            out[_unique_name(nm, out)] = (float(a), float(b))
        return out
    names = _row_names(table) or [""] * len(starts)
    ok = _usable_rows(starts, stops, "epochs", "epochs", bounds)  # kept, one such row made the whole file unreadable
    out = {}
    given: Dict[str, List[str]] = {}  # a name in the file -> the epochs its rows became
    for i, (a, b, nm, good) in enumerate(zip(starts, stops, names, ok)):
        if good:
            key = _unique_name(nm or f"epoch{i}", out)
            out[key] = (float(a), float(b))
            given.setdefault(nm, []).append(key)
    _warn_repeated_epoch_names({nm: keys for nm, keys in given.items() if nm and len(keys) > 1})
    return out


def _warn_repeated_epoch_names(repeated: Dict[str, List[str]], table: str = "epochs", stacklevel: int = 4) -> None:
    """Warn when rows of the ``epochs`` table (or of another interval table whose rows are named,
    ``table``) share a name (``sleep``, ``wake``, ``sleep``);
    ``repeated``: each such name -> the epochs its rows became (``["sleep", "sleep_1"]``). Each
    row became its own epoch without a word, so ``select_epoch("sleep")`` (``--epoch sleep``)
    took the first row only. ``stacklevel``: that of the caller of :func:`read_nwb`, counted from
    this function (4 through :func:`_read_epochs_table`, 3 from :func:`read_nwb` itself)."""
    if not repeated:
        return
    shown = first_few([f"{nm!r} x {len(keys)}: epochs {', '.join(map(repr, keys))}" for nm, keys in repeated.items()],
                      5, quote=False, count_rest=False, sep="; ")
    warnings.warn(f"epochs: {count_noun(len(repeated), 'name')} {'repeats' if len(repeated) == 1 else 'repeat'} in interval table {table!r} ({shown}); each row is its own epoch, so selecting the bare name "
                  "(select_epoch, --epoch) takes its first row only; select each row by "
                  "its suffixed name, or SpikeRecording.restrict for a span", UserWarning, stacklevel=stacklevel)


def _read_trials(tables: Sequence[Tuple[str, object]], tagged: bool, bounds: _IntervalBounds):
    """Concatenate interval tables into ``(trials, trial_info)`` sorted by start time; rows that
    are no span (see :func:`_usable_rows`) are dropped with their ``trial_info`` values, counted."""
    starts, stops, cols, task = [], [], [], []
    for tname, table in tables:
        a, b = bounds(table, "the trials")
        ok = _usable_rows(a, b, "trials", tname, bounds)  # the same rows of every trial_info column go too
        starts.append(a[ok])
        stops.append(b[ok])
        task.extend([tname[: -len("_table")] if tname.endswith("_table") else tname] * int(ok.sum()))
        c = {}
        for name in table.colnames:
            if name in ("start_time", "stop_time"):
                continue
            vals = _simple_column(table, name)
            if vals is None:
                if name == "tags" and all(len(t) == 0 for t in table["tags"][:]):
                    continue
                warnings.warn(f"trial_info: skipped column {name!r} of interval table {tname!r}: not a 1-D "
                              "numeric or string column (ragged or reference)")
                continue
            c[name] = vals[ok]
        cols.append(c)
    n_rows = [len(a) for a in starts]
    trials = np.stack([np.concatenate(starts), np.concatenate(stops)], axis=1)
    info: Dict[str, np.ndarray] = {}
    all_names = list(dict.fromkeys(k for c in cols for k in c))
    for name in all_names:
        parts = []
        is_str = any(c[name].dtype == object for c in cols if name in c)
        for c, n in zip(cols, n_rows):
            if name in c:
                parts.append(c[name].astype(object) if is_str else c[name])
            else:
                parts.append(np.full(n, "", dtype=object) if is_str else np.full(n, np.nan))
        info[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if tagged:
        if "task" in info:  # the tables' own column (a task variant) was overwritten without a word
            kept = _unique_name("task", info)
            info[kept] = info.pop("task")
            warnings.warn(f"trial_info: the interval tables' own column 'task' is kept as {kept!r}; 'task' holds "
                          "the name of each trial's table")
        info["task"] = np.array(task, dtype=object)
    order = np.argsort(trials[:, 0], kind="stable")
    moved = int(np.sum(order != np.arange(order.size)))
    if moved and not tagged:
        warnings.warn(
            f"trials: the rows of interval table {tables[0][0]!r} are not ordered by start time; sorted them "
            f"({moved} of {order.size} rows moved), so trial i is the i-th trial by start, not row i of the file"
        )
    return trials[order], {k: v[order] for k, v in info.items()}


def _read_stimulus(table, name_col: str, tname: str, bounds: _IntervalBounds,
                   all_names: Optional[List[str]] = None) -> Stimulus:
    """Categorical stimulus of an interval table. ``all_names``: the full list of names written
    by :func:`write_nwb` (ids with no interval included), which takes precedence."""
    starts, stops = bounds(table, "the stimulus")
    vals = _simple_column(table, name_col)
    if vals is None:
        raise RecordingValidationError(f"intervals[{tname!r}].{name_col}: expected a 1-D column of names")
    vals = np.array([str(v) for v in vals], dtype=object)
    # a row with a NaN bound or stop <= start is no span (as for the epochs and trials); kept, it
    # made the whole file unreadable (SpikeRecording refuses such a stimulus interval)
    ok = _usable_rows(starts, stops, "stimulus", tname, bounds)
    starts, stops, vals = starts[ok], stops[ok], vals[ok]
    if tname == STIMULUS_TABLE and "stimulus_id" in table.colnames:
        ids = np.asarray(table["stimulus_id"].data[:], dtype=np.int64)[ok]
        n = int(ids.max()) + 1 if ids.size else 0
        names = [f"id{k}" for k in range(n)]
        for i, v in zip(ids, vals):
            names[int(i)] = str(v)
        if all_names is not None and len(all_names) >= n:
            names = list(all_names)
    else:
        names = sorted(set(vals.tolist()))
        lookup = {v: i for i, v in enumerate(names)}
        ids = np.array([lookup[v] for v in vals], dtype=np.int64)
    description = None
    if tname == STIMULUS_TABLE and table.description and table.description != _STIMULUS_TABLE_DESCRIPTION:
        description = str(table.description)
    return Stimulus(ids=ids, intervals=np.stack([starts, stops], axis=1), names=names, description=description)


# ---------------------------------------------------------------------------------- reader
def _read_frames(nwb):
    """``(frames (n, H, W) float32, frame_times (n,) float64 s, description, field of view)`` of the
    one image series in ``nwbfile.stimulus`` with its frames stored in the file, or None. Colour frames
    ``(n, H, W, 3)`` are averaged to grey (warned), grey ones ``(n, H, W, 1)`` lose the channel axis; series with external files, other series and
    any second image series are skipped with a warning that names them. The field of view is
    ``(height, width)`` degrees from an ``OpticalSeries`` (:func:`_optical_field_of_view`), else None."""
    from pynwb.image import ImageSeries

    found = None
    for sname, obj in nwb.stimulus.items():
        ok = isinstance(obj, ImageSeries) and obj.data is not None and getattr(obj, "external_file", None) is None
        if ok and found is None:
            data = np.asarray(obj.data[:], dtype=np.float32)
            if data.ndim == 4 and data.shape[-1] in (3, 4):
                warnings.warn(f"stimulus: {sname!r} has colour frames {data.shape}; read as grey (channel mean)")
                data = data[..., :3].mean(-1)
            elif data.ndim == 4 and data.shape[-1] == 1:  # grey frames with a channel axis: they were skipped
                data = data[..., 0]
            if data.ndim != 3:
                warnings.warn(f"stimulus: skipped {sname!r}: expected frames (n, height, width), got {data.shape}")
                continue
            if obj.timestamps is None:
                # a rate of 0 or NaN gave NaN onsets, refused as 'stimulus.frame_times: expected finite times, frame 0
                # is nan' with advice to sort the frames, naming neither the series nor its rate: skipped here,
                # named, as a behaviour series with such a rate is
                bad = _bad_clock_field(obj)
                if bad is not None:
                    warnings.warn(f"stimulus: skipped {sname!r} ({len(data)} frames): its {bad}")
                    continue
                # a float32 starting_time or rate, widened inside get_timestamps without a word
                widen_stored_times(obj.starting_time or 0.0, f"stimulus {sname!r} starting_time", "read_nwb")
                widen_stored_rate(obj.rate, len(data), f"stimulus {sname!r} rate", "read_nwb")
            times = widen_stored_times(obj.get_timestamps(), f"stimulus {sname!r} timestamps", "read_nwb")
            if len(times) != len(data):
                warnings.warn(f"stimulus: skipped {sname!r}: {len(data)} frames but {len(times)} timestamps")
                continue
            desc = obj.description if obj.description not in _FRAMES_DESCRIPTIONS_UNSET else None
            found = (data, times, desc, _optical_field_of_view(obj, sname))
            continue
        warnings.warn(f"stimulus: skipped {sname!r} ({type(obj).__name__}) in nwbfile.stimulus: only one image series "
                      "with its frames in the file is read (external media are not); categorical stimuli come from "
                      "interval tables")
    return found


def _bad_clock_field(ts) -> Optional[str]:
    """``"<field> is <value>, expected ..."`` for the first of a timestamp-less series' ``rate`` (a
    finite number > 0 Hz) and ``starting_time`` (finite s) that is not so, else None."""
    for field, value, expected in (("rate", ts.rate, "a finite frame rate > 0 Hz"),
                                   ("starting_time", ts.starting_time or 0.0, "a finite time in seconds")):
        try:
            ok = np.isfinite(float(value)) and (field != "rate" or float(value) > 0)
        except (TypeError, ValueError):
            ok = False
        if not ok:  # np.float64(nan) as nan
            return f"{field} is {value.item() if isinstance(value, np.generic) else value!r}, expected {expected}"
    return None


def _optical_field_of_view(obj, sname: str) -> Optional[Tuple[float, float]]:
    """``(height, width)`` degrees of visual angle of an ``OpticalSeries`` that states its
    ``field_of_view`` (NWB: width, height[, depth] in metres) and ``distance`` (metres from the
    eye): ``2 atan(size / (2 distance))`` per axis, the eye facing the screen's centre. ``None`` for
    an ``ImageSeries``, or (named in a warning) where either is missing or not finite and > 0."""
    from pynwb.image import OpticalSeries

    if not isinstance(obj, OpticalSeries) or obj.field_of_view is None:
        return None
    size = np.asarray(obj.field_of_view, dtype=np.float64).ravel()
    dist = np.nan if obj.distance is None else float(obj.distance)
    if size.size < 2 or not np.all(np.isfinite(size[:2]) & (size[:2] > 0)) or not (np.isfinite(dist) and dist > 0):
        warnings.warn(f"stimulus: {sname!r} states field_of_view {size.tolist()} m at distance {obj.distance} m; "
                      "expected a width and height > 0 m and a finite distance > 0 m to give degrees of visual angle, "
                      "so stimulus.field_of_view is not set (sizes in pixels only)")
        return None
    width, height = np.degrees(2 * np.arctan(size[:2] / (2 * dist)))
    return float(height), float(width)


def _check_hdf5(path: Path) -> None:
    """Refuse a file that is not HDF5 with a message naming it (h5py's own is 'file signature not found')."""
    import h5py

    if not h5py.is_hdf5(str(path)):
        raise RecordingValidationError(
            f"{path}: expected an NWB file (HDF5, as written by pynwb), the file is not HDF5 (size "
            f"{path.stat().st_size} bytes); NWB Zarr stores and other formats are not read here"
        )


def _open_nwb(path: Path):
    from pynwb import NWBHDF5IO

    try:
        return NWBHDF5IO(str(path), "r")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RecordingValidationError(
            f"{path}: expected a readable NWB file, pynwb could not open it ({type(e).__name__}: {e})"
        ) from e


def _read_file(io, path: Path):
    """``io.read()`` with a message that names the file when the HDF5 file is not valid NWB."""
    try:
        return io.read()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise RecordingValidationError(
            f"{path}: expected an NWB file, the HDF5 file could not be read as NWB ({type(e).__name__}: {e})"
        ) from e


def _check_table_names(intervals, path, trial_tables, stimulus_table) -> None:
    """Refuse ``trial_tables`` / ``stimulus_table`` naming a table (or a stimulus name column)
    the file does not have, naming the argument and listing what the file has (a bare
    ``KeyError`` of the name said neither); a string for ``trial_tables`` (its letters were
    taken as table names) is refused too."""
    tables = sorted(intervals)
    if isinstance(trial_tables, (str, bytes)):
        raise ValueError(f"trial_tables: expected a list of interval table names, got the string {trial_tables!r}; "
                         f"pass [{trial_tables!r}]")
    for t in trial_tables or ():
        if t not in intervals:
            raise KeyError(f"trial_tables: no interval table {t!r} in {path}; its interval tables are {tables}")
    if stimulus_table is not None:
        if isinstance(stimulus_table, (str, bytes)) or len(stimulus_table) != 2:  # Python's 'too many values to unpack'
            raise ValueError(f"stimulus_table: expected (table name, name column), e.g. ('encoding_table', 'Clip_name'), "
                             f"got {stimulus_table!r}")
        tname, col = stimulus_table
        if tname not in intervals:
            raise KeyError(f"stimulus_table: no interval table {tname!r} in {path}; its interval tables are {tables}")
        if col not in intervals[tname].colnames:
            raise KeyError(f"stimulus_table: interval table {tname!r} of {path} has no column {col!r}; its columns "
                           f"are {list(intervals[tname].colnames)}")


@warnings_at_caller
def read_nwb(
    path,
    session: Optional[str] = None,
    *,
    trial_tables: Optional[Sequence[str]] = None,
    stimulus_table: Optional[Tuple[str, str]] = None,
) -> SpikeRecording:
    """Read an NWB file into a :class:`SpikeRecording` (everything loaded into memory).

    See the module docstring for what is mapped where.

    Args:
        path: the ``.nwb`` file.
        session: session identifier; default the file's ``identifier``, else the file stem,
            with whitespace and ``/`` replaced by ``_`` (see the module docstring); a given one is
            kept.
        trial_tables: names of interval tables to use as trials (concatenated, with
            ``trial_info["task"]`` naming the table when there are several); default
            ``["trials"]`` when the file has ``nwbfile.trials``, else every interval table with
            per-row task columns. Pass ``[]`` for no trials.
        stimulus_table: ``(table name, name column)`` of a categorical stimulus; default
            auto-detected (see module docstring).

    Returns:
        SpikeRecording with ``spike_times`` ``(n_spikes,)`` float64 seconds, ``unit_ids``
        ``(n_spikes,)`` int64, epochs, trials, behaviour, stimulus and events as found.

    Warns:
        UserWarning: among others, in a file not written by :func:`write_nwb`: epochs or trials
            that lie wholly outside the span of the spike times (interval times in milliseconds, or
            on another clock), counted and named; they are kept and stretch the time domain.
        UserWarning: units whose spike times are not in ascending order, counted, the first step
            back named; they are sorted (no spike is left out).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RecordingValidationError: the file is not HDF5 or not readable as NWB (the message names
            the file); the file has no units table or an empty one (Units tables held elsewhere in
            the file, e.g. in a processing module, are named with how to read them), or no
            ``spike_times`` column, or a ``spike_times_index`` that does not split the spike times
            into one run per unit (offsets decreasing, or the last not the number of spike times),
            or an ``electrodes`` row (the areas' source) outside the electrodes table, or a unit whose ``unit_name`` / ``name`` is empty (message
            names ``units``); in a file not written by
            :func:`write_nwb`, its units hold no spike time and no epoch or trial spans the
            recording (message names ``time_domain``, as :func:`~hf_neuroformer.io.read_npz`
            refuses such a file);
            or the data break an invariant of :class:`SpikeRecording`.
        KeyError: a table named in ``trial_tables`` / ``stimulus_table`` (or the name column of
            ``stimulus_table``) does not exist; the message names the argument and lists the
            file's interval tables (or that table's columns).
        ValueError: ``trial_tables`` is a string, not a list of names; ``stimulus_table`` is not
            a pair ``(table name, name column)``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"NWB file not found: {path}")
    _check_hdf5(path)
    with _open_nwb(path) as io:
        nwb = _read_file(io, path)
        intervals = dict(nwb.intervals.items()) if nwb.intervals is not None else {}
        _check_table_names(intervals, path, trial_tables, stimulus_table)  # before the units and behaviour are read
        spike_times, unit_ids, names, areas = _read_units(nwb, path)
        behaviour = _read_behaviour(nwb)
        frames = _read_frames(nwb)

        bounds = _IntervalBounds()  # each interval table read once, its float32 columns named once
        ours = TIME_DOMAIN_TABLE in intervals or str(nwb.source_script or "") == WRITER_MARK
        epochs: Dict[str, Tuple[float, float]] = {}
        epoch_intervals: Dict[str, np.ndarray] = {}
        if ours and EPOCH_INTERVALS_TABLE in intervals:
            epoch_intervals = _read_epoch_intervals(intervals[EPOCH_INTERVALS_TABLE], bounds)
        if nwb.epochs is not None and len(nwb.epochs):
            epochs.update(_read_epochs_table(nwb.epochs, bounds, ours))

        time_domain = None
        if ours and TIME_DOMAIN_TABLE in intervals:  # absent: the recording had none (KeyError before)
            a, b = bounds(intervals[TIME_DOMAIN_TABLE], "the time domain")
            if a.size != 1:
                raise RecordingValidationError(
                    f"intervals['time_domain']: expected exactly one row, got {a.size} in {path}"
                )
            time_domain = (float(a[0]), float(b[0]))
        time_support = None
        if ours and TIME_SUPPORT_TABLE in intervals:
            a, b = bounds(intervals[TIME_SUPPORT_TABLE], "the time support")
            time_support = np.stack([a, b], 1).astype(np.float64)

        # stimulus
        stim = None
        if stimulus_table is None:
            if STIMULUS_TABLE in intervals and "stimulus_name" in intervals[STIMULUS_TABLE].colnames:
                stimulus_table = (STIMULUS_TABLE, "stimulus_name")
            elif not ours:  # a file we wrote keeps its stimulus only in the 'stimulus' table
                for tname, table in intervals.items():
                    col = next((c for c in _STIMULUS_NAME_COLUMNS if c in table.colnames), None)
                    if col is not None and len(table):
                        stimulus_table = (tname, col)
                        break
        all_names = None
        if ours and STIMULUS_NAMES_SCRATCH in nwb.scratch:
            all_names = [str(v) for v in _decode(np.atleast_1d(np.asarray(nwb.scratch[STIMULUS_NAMES_SCRATCH].data[()])))]
        field_order = {}
        if ours and FIELD_ORDER_SCRATCH in nwb.scratch:
            text = nwb.scratch[FIELD_ORDER_SCRATCH].data
            text = text[()] if hasattr(text, "shape") else text
            field_order = json.loads(text.decode() if isinstance(text, bytes) else str(text))
        session_info = {}
        if ours and SESSION_INFO_SCRATCH in nwb.scratch:
            text = nwb.scratch[SESSION_INFO_SCRATCH].data
            text = text[()] if hasattr(text, "shape") else text
            session_info = json.loads(text.decode() if isinstance(text, bytes) else str(text))
        if stimulus_table is not None:
            tname, col = stimulus_table
            stim = _read_stimulus(intervals[tname], col, tname, bounds, all_names)
        field_of_view = None
        if STIMULUS_FIELD_OF_VIEW_SCRATCH in nwb.scratch:
            fov = np.asarray(nwb.scratch[STIMULUS_FIELD_OF_VIEW_SCRATCH].data[()])
            field_of_view = as_field_of_view(fov.tolist(), f"{path}: scratch {STIMULUS_FIELD_OF_VIEW_SCRATCH!r}")
        elif frames is not None:  # another writer's OpticalSeries: its metres at its distance, as degrees
            field_of_view = frames[3]
        if frames is not None:
            stim = Stimulus(frames=frames[0], frame_times=frames[1], description=frames[2],
                            ids=None if stim is None else stim.ids, intervals=None if stim is None else stim.intervals,
                            names=None if stim is None else stim.names, field_of_view=field_of_view)
        elif field_of_view is not None:  # kept as written (a recording whose frames were removed keeps it too)
            stim = dataclasses.replace(stim or Stimulus(), field_of_view=field_of_view)

        # empty tables give nothing (no epoch, trial or event): said, not skipped without a word
        if not ours:
            empty = [t for t, table in intervals.items() if t not in (TIME_DOMAIN_TABLE, TIME_SUPPORT_TABLE)
                     and not len(table)]
            if empty:
                warnings.warn(f"intervals: the interval {'table' if len(empty) == 1 else 'tables'} "
                              f"{', '.join(map(repr, empty))} of {path} {'has' if len(empty) == 1 else 'have'} no "
                              "rows; nothing is read from them (no epoch, trial or event)", UserWarning, stacklevel=2)
        # trials
        if trial_tables is None:
            if nwb.trials is not None and len(nwb.trials):
                trial_tables = ["trials"]
            elif ours:
                trial_tables = []
            else:
                trial_tables = [
                    t for t, table in intervals.items()
                    if t not in ("epochs", TIME_DOMAIN_TABLE, TIME_SUPPORT_TABLE, STIMULUS_TABLE) and len(table)
                    and set(table.colnames) - _INTERVAL_BASE_COLUMNS
                ]
                if nwb.trials is not None and trial_tables:  # an empty trials table, replaced by task tables
                    warnings.warn(f"trials: the trials table of {path} is empty (0 rows), so the interval "
                                  f"{'table' if len(trial_tables) == 1 else 'tables'} "
                                  f"{', '.join(map(repr, trial_tables))} {'is' if len(trial_tables) == 1 else 'are'} "
                                  "read as the trials instead; pass "
                                  "trial_tables=[] for no trials (or name the tables to use)", UserWarning,
                                  stacklevel=2)
        trials, trial_info = None, {}
        if trial_tables:
            tabs = [(t, intervals[t]) for t in trial_tables]
            trials, trial_info = _read_trials(tabs, tagged=len(tabs) > 1, bounds=bounds)
            if ours and trial_tables == ["trials"]:  # mixed columns write_nwb stored as JSON text
                for name in trial_info:
                    if str(nwb.trials[name].description).endswith(TRIAL_JSON_NOTE):
                        trial_info[name] = np.array([json.loads(v) for v in trial_info[name]], dtype=object)

        # other interval tables -> named intervals (not for files we wrote: their epochs are complete)
        if not ours:
            for tname, table in intervals.items():
                if tname in ("epochs", TIME_DOMAIN_TABLE, TIME_SUPPORT_TABLE) or not len(table):
                    continue
                a, b = bounds(table, f"the epoch {tname!r}")
                # rows that are no span (a NaN bound, stop <= start) are dropped, counted: kept, one made the
                # whole file unreadable (epochs / epoch_intervals need stop > start)
                ok = _usable_rows(a, b, "epochs", tname, bounds)
                if not ok.any():
                    continue
                if tname in epochs:
                    warnings.warn(f"epochs: interval table {tname!r} not added as an epoch, the name is taken")
                else:
                    epochs[tname] = (float(a[ok].min()), float(b[ok].max()))
                    if ok.sum() > 1:  # select_epoch(tname) takes the union of the rows, not the span
                        rows = np.stack([a[ok], b[ok]], 1).astype(np.float64)
                        epoch_intervals[tname] = rows[np.argsort(rows[:, 0], kind="stable")]
                row_names = _row_names(table)
                if row_names is not None and tname != STIMULUS_TABLE:
                    given: Dict[str, List[str]] = {}
                    for nm, s, e, good in zip(row_names, a, b, ok):
                        if not good or not nm:  # a row without a name (no tag) is only in the table's epoch
                            continue  # (it became an epoch named '', then 'table:')
                        key = _unique_name(nm if nm not in epochs else f"{tname}:{nm}", epochs)
                        epochs[key] = (float(s), float(e))
                        given.setdefault(nm, []).append(key)
                    # (called from read_nwb itself: its caller is 3 frames up, not 4 as from _read_epochs_table)
                    _warn_repeated_epoch_names({nm: keys for nm, keys in given.items() if len(keys) > 1}, tname,
                                               stacklevel=3)

        raw_events = read_events(nwb, intervals, ours, _simple_column, _row_names, bounds)
        bounds.warn()  # one warning per float32 column of an interval table, naming what it was read as

        if session is None:
            if ours and nwb.session_id is not None:  # write_nwb stores the session there ("" in an older file)
                session = str(nwb.session_id)
            else:
                session = str(nwb.identifier or "") or path.stem
            # an identifier such as "Mouse 12 day 3" (or "mouse12/day3") made every unit token refused, and
            # `neuroformer train --data` had no way to rename it (an empty session stored by write_nwb: the stem)
            session = session_from_file(session, path.stem)

    if time_domain is None:
        lo = [spike_times.min()] if spike_times.size else []
        hi = [np.nextafter(spike_times.max(), np.inf)] if spike_times.size else []
        for a, b in epochs.values():
            lo.append(a)
            hi.append(b)
        if trials is not None and len(trials):
            lo.append(trials[:, 0].min())
            hi.append(trials[:, 1].max())
        if lo:
            time_domain = (float(min(lo)), float(max(hi)))
            if not ours:
                _warn_intervals_outside_spikes(spike_times, epochs, trials, time_domain, path)
    if time_domain is None and not ours:  # units without any spike and nothing that spans them, as read_npz refuses
        # (a file write_nwb wrote from such a recording reads back as it was)
        raise _no_time_domain_error(len(names), f" in {path}", "add an epochs row (start, stop) to the file, or read "
                                    "the units with pynwb and pass them to hf_neuroformer.io.from_arrays with "
                                    "time_domain=(start, stop),")

    from ..events import clean_events

    if field_order:  # the recording's order (NWB gives a group's members in name order)
        behaviour = _in_order(behaviour, field_order.get("behaviour", []))
        raw_events = _in_order(raw_events, field_order.get("events", []))
    events = clean_events(raw_events, time_domain, f"read_nwb({path.name})")
    if time_domain is not None and not ours:
        _warn_behaviour_outside(behaviour, time_domain, path)
        if stim is not None and stim.frames is not None:
            warn_frames_outside(stim.frame_times, time_domain, f" in {path}", stacklevel=3)
    rec = SpikeRecording.from_unsorted(
        spike_times,
        unit_ids,
        events=events,
        unit_names=names,
        unit_areas=areas,
        time_domain=time_domain,
        epochs=epochs,
        trials=trials,
        trial_info=trial_info,
        behaviour=behaviour,
        stimulus=stim,
        session=session,
        time_support=time_support,
        epoch_intervals=epoch_intervals,
        session_info=session_info,
    )
    # NWB stores seconds, but a conversion that wrote milliseconds read as a week-long session of
    # millions of empty windows without a word (from_arrays warned about the same times)
    warn_if_not_seconds(rec, f"units: the spike times of {path}",
                        "the file was written wrongly: NWB spike_times are seconds (rewrite the units table, or read "
                        "the times with pynwb and pass them to hf_neuroformer.io.from_arrays divided)")
    return rec


def _in_order(entries: dict, order: List[str]) -> dict:
    """``entries`` with the names in ``order`` first, in that order, then any others as they were."""
    return {**{k: entries[k] for k in order if k in entries}, **{k: v for k, v in entries.items() if k not in order}}


def _read_epoch_intervals(table, bounds: _IntervalBounds) -> Dict[str, np.ndarray]:
    """``name -> (n, 2)`` rows of the ``epoch_intervals`` table :func:`write_nwb` writes (one
    row per interval, its single tag = the epoch's name, rows in order)."""
    a, b = bounds(table, "the epoch intervals")
    tags = [t[0] if len(t) else "" for t in table["tags"][:]] if len(table) else []
    out: Dict[str, list] = {}
    for name, s, e in zip(tags, a, b):
        out.setdefault(str(name), []).append((float(s), float(e)))
    return {k: np.asarray(v, dtype=np.float64).reshape(-1, 2) for k, v in out.items()}


# ---------------------------------------------------------------------------------- writer
def _nwb_name_problem(name: str) -> Optional[str]:
    """Why ``name`` cannot name an NWB object or column (``"be empty"``, ``"contain '/' or ':'"``), or None."""
    if name == "":
        return "be empty"
    if "/" in name or ":" in name:
        return "contain '/' or ':'"
    return None


#: Ends the description of a ``trials`` column that :func:`write_nwb` stores as one JSON text per
#: trial (an object column mixing booleans, numbers, text and None); :func:`read_nwb` decodes it back.
TRIAL_JSON_NOTE = "one JSON value per trial (booleans, numbers, text and null of the column kept apart)"


_NOT_JSON = object()


def _json_scalar(v):
    """``v`` as a Python bool / int / float / str / None for JSON, or ``_NOT_JSON`` for anything else."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v if v is None or isinstance(v, str) else _NOT_JSON


def _simple_for_nwb(name: str, values, n: int, what: str):
    """``(column, json)``: a list or array fit for an NWB column, and whether it holds JSON text
    (an object column of scalars of several kinds, e.g. booleans mixed with numbers, which no NWB
    dtype holds apart: True would read back as 1; None too); ``(None, False)`` with a warning when the
    column is not simple."""
    arr = np.asarray(values)
    if arr.dtype.kind in "US" and isinstance(values, (list, tuple)) and not all(isinstance(v, str) for v in values):
        arr = np.asarray(values, dtype=object)  # ["a", 1]: numpy made the 1 the text '1', read back as '1'
    if arr.ndim != 1 or arr.shape[0] != n:
        warnings.warn(f"write_nwb: skipped {what}[{name!r}]: expected a 1-D column of {n} values, got shape {arr.shape}")
        return None, False
    if arr.dtype.kind in "biuf":
        return arr, False
    if arr.dtype.kind == "U" or (arr.dtype == object and all(isinstance(v, str) for v in arr)):
        return [str(v) for v in arr], False
    if arr.dtype == object:
        scalars = [_json_scalar(v) for v in arr]
        if all(v is not _NOT_JSON for v in scalars):
            return [json.dumps(v) for v in scalars], True
    warnings.warn(f"write_nwb: skipped {what}[{name!r}]: dtype {arr.dtype} is not numeric, boolean or string"
                  + (" (an object column holds values other than booleans, numbers, text and None)"
                     if arr.dtype == object else ""))
    return None, False


def write_nwb(
    recording: SpikeRecording,
    path,
    overwrite: bool = False,
    *,
    session_start_time: Optional[datetime] = None,
    description: str = "spike recording written by hf_neuroformer",
    scratch: Optional[Dict[str, Tuple[np.ndarray, str]]] = None,
    make_parent: bool = False,
) -> Path:
    """Write a :class:`SpikeRecording` to an NWB file (atomically) with pynwb.

    Layout: ``units`` (one row per unit, ``spike_times`` float64 s, ``location`` = area,
    ``unit_name``); ``epochs`` (one row per epoch, in order, ``tags=[name]``); ``trials`` (one
    row per trial, in order) with every simple ``trial_info`` column; behaviour as
    ``TimeSeries`` in processing module ``behavior`` (unit ``"n/a"`` when the series has none);
    stimulus frames as the ``ImageSeries`` ``frames`` in ``nwbfile.stimulus`` (float32, with
    their onsets and description) and their field of view (degrees, ``[height, width]``) as
    ``ScratchData`` ``hf_neuroformer_stimulus_field_of_view``; a categorical stimulus as interval table ``stimulus``
    (``stimulus_id``, ``stimulus_name``; the stimulus description as the table's) plus its full
    list of names as ``ScratchData`` ``hf_neuroformer_stimulus_names``; each event stream as an
    ``EventsTable`` of its name in ``nwbfile.events`` (see :mod:`hf_neuroformer.io.nwb_events`);
    interval tables ``time_domain`` (one row), ``time_support`` and ``epoch_intervals`` (the
    rows of :attr:`SpikeRecording.epoch_intervals`, tag = epoch name); the session as
    ``session_id`` and ``identifier`` (an empty session, or one holding whitespace or ``/``, is
    refused by :meth:`SpikeRecording.validate`, also when set after the recording was made; an older
    version wrote one set to ``""`` afterwards with a random UUID as ``identifier``, read back as the
    file's stem); ``source_script`` = ``"hf_neuroformer.io.write_nwb"``,
    which tells :func:`read_nwb` the file is its own; :attr:`SpikeRecording.session_info` as JSON
    text in the scratch entry ``hf_neuroformer_session_info`` (read back by :func:`read_nwb`).

    What :func:`read_nwb` gives back exactly (bitwise for floats):

    * ``spike_times``, ``unit_ids``, ``unit_names``, ``unit_areas`` (units with no spikes too);
    * ``epochs``: every name (all-digit names such as ``"1"`` and ``""`` included), in order;
      in a file of ours no other interval table is added as an epoch; ``epoch_intervals``;
    * ``trials`` (an empty ``(0, 2)`` array is not written and reads back as ``None``) in the same order (a :class:`SpikeRecording` keeps its trials ordered by
      start, so trial ``i`` stays trial ``i`` and a saved ``splits.json`` ``trial_index`` stays
      valid) and each simple ``trial_info`` column: 1-D numeric (NaN kept), boolean or string,
      and a 1-D object column mixing booleans, numbers, text and ``None`` (e.g. ``[True, 1,
      False, 0]``, which one NWB dtype would merge: True equals 1), stored as one JSON text per
      trial (the column's description ends with :data:`TRIAL_JSON_NOTE`; other readers see
      ``"true"``, ``"1"``, ``"NaN"``, ``"null"``) and read back as the same object array;
    * ``behaviour`` (1-D or 2-D values, NaN kept, unit ``""`` too; a boolean series as bool data,
      so that it reads back with ``boolean=True``); ``events`` (times, labels, description; labels of
      an object array that are not all text, e.g. text with a ``None`` / NaN gap, as JSON text, see
      :mod:`hf_neuroformer.io.nwb_events`); both in the recording's order (kept as the JSON
      ``ScratchData`` ``hf_neuroformer_field_order``: NWB reads a group's members in name order);
      ``time_domain``; ``time_support``; ``session`` (a file holding an empty one, as
      write_nwb wrote before :class:`SpikeRecording` refused it, reads as the file's stem);
    * ``stimulus``: ``ids``, ``intervals``, ``names`` (names of ids with no interval too) and
      ``description``; frames, frame times and ``field_of_view``.

    Not kept (each with a warning at write time): ``trial_info`` columns named ``start_time``,
    ``stop_time``, ``tags``, ``timeseries`` or ``id`` (reserved by NWB), or ``""`` or with ``/`` or
    ``:`` (not NWB names), and columns that are not 1-D (2-D columns) or hold values other
    than numbers, booleans, text and ``None`` (object arrays of lists or other objects).
    Changed in kind, not value: a text ``trial_info`` column held as a ``<U`` array reads back as an
    object array of ``str`` (as every NWB text column reads); stimulus frames are written as
    float32 (exact for 8- and 16-bit grey levels); an empty ``(0, 2)`` ``trials`` reads back as
    ``None``; a behaviour unit ``"n/a"`` reads back as ``""`` (the placeholder written for none).

    The file is written to a temporary file in the same folder, then moved into place with
    ``os.replace``, so a reader never sees a half-written file; it gets the permissions a plain
    new file gets under the process umask (``0644`` under umask 022; ``mkstemp`` alone gave
    ``0600``), see :func:`hf_neuroformer.io.permissions.as_created`.

    Args:
        recording: the recording.
        path: destination ``.nwb`` file.
        overwrite: replace an existing file.
        session_start_time: NWB's required session start; default now (UTC). Spike times stay
            relative to it as they are in the recording.
        description: NWB ``session_description``.
        scratch: optional ``name -> (array, description)`` written as ``ScratchData`` in the
            file's ``scratch`` space (e.g. a simulation's ground-truth weight matrix, see
            :func:`hf_neuroformer.simulation.write_network`); :func:`read_nwb` ignores it,
            :func:`read_nwb_scratch` reads it back. The names ``hf_neuroformer_stimulus_names``,
            ``hf_neuroformer_session_info``, ``hf_neuroformer_stimulus_field_of_view`` and
            ``hf_neuroformer_field_order`` are reserved.
        make_parent: create ``path``'s folder if missing (default: it must exist, as for
            :func:`~hf_neuroformer.jsonio.write_atomic`; before, a missing folder was always created,
            so a typo in its name went unnoticed).

    Returns:
        The path written.

    Raises:
        TypeError: ``recording`` is not a :class:`SpikeRecording` (e.g. the list that
            :func:`hf_neuroformer.generate_spikes` returns with ``num_samples > 1``: write each
            sample to its own file).
        FileExistsError: ``path`` exists and ``overwrite`` is False (checked before the file is built, and
            again when it is moved into place: a file another run wrote there meanwhile is kept, not replaced).
        OutputPathError: ``path`` is a directory (a ``ValueError``; with ``overwrite`` too), see
            :func:`~hf_neuroformer.io.permissions.check_output_file`, or is under a file
            (:func:`~hf_neuroformer.io.permissions.check_output_folder`).
        MissingOutputFolderError: ``path``'s folder does not exist and ``make_parent`` is False (a
            ``FileNotFoundError``).
        ValueError: the recording has no units (:func:`read_nwb` refuses such a file); ``scratch`` uses
            the reserved name; a ``behaviour`` or ``events`` name that is
            empty or holds ``/`` or ``:`` (not an NWB name; the message names the entry).
        RecordingValidationError: the recording breaks an invariant of :class:`SpikeRecording`.
    """
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.epoch import TimeIntervals

    if not isinstance(recording, SpikeRecording):
        hint = ""
        if isinstance(recording, (list, tuple)) and recording and all(isinstance(r, SpikeRecording) for r in recording):
            hint = (f" ({len(recording)} recordings, as generate_spikes returns for num_samples > 1: write each "
                    "sample to its own file)")
        raise TypeError(f"recording: expected a SpikeRecording, got {type(recording).__name__}{hint}")
    path = check_output_file(path, overwrite)  # a directory: refused before anything is written
    check_output_folder(path, make_parent)  # a missing folder or one under a file: before the file is built
    for reserved in _OUR_SCRATCH:
        if scratch and reserved in scratch:
            raise ValueError(f"scratch: the name {reserved!r} is reserved by write_nwb; choose another")
    recording.validate()
    if recording.n_units == 0:  # hdmf failed with "could not resolve dtype for VectorData 'location'"
        raise ValueError(
            "recording: has no units (n_units = 0); an NWB spike file needs at least one unit, and read_nwb "
            "refuses a file without one. Keep at least one unit (a unit with no spikes is kept)"
        )
    for field, names in (("behaviour", recording.behaviour), ("events", recording.events)):
        for name in names:  # hdmf said only "name 'x:y' cannot contain a '/' or ':'", or failed inside h5py for ''
            if problem := _nwb_name_problem(name):
                raise ValueError(f"{field}[{name!r}]: NWB names cannot {problem}; rename the {field} entry")
    nwb = NWBFile(
        session_description=description,
        identifier=str(recording.session),  # never '' (validate() refuses it)
        session_id=str(recording.session),
        session_start_time=session_start_time or datetime.now(timezone.utc),
        source_script=WRITER_MARK,
        source_script_file_name="hf_neuroformer/io/nwb.py",
    )
    # units
    nwb.add_unit_column("location", "brain area of the unit ('' where unknown)")
    nwb.add_unit_column("unit_name", "name of the unit in hf_neuroformer")
    order = np.argsort(recording.unit_ids, kind="stable")  # spike times stay ascending per unit
    counts = np.bincount(recording.unit_ids, minlength=recording.n_units)
    per_unit = np.split(recording.spike_times[order], np.cumsum(counts)[:-1])
    for u in range(recording.n_units):
        nwb.add_unit(spike_times=np.asarray(per_unit[u], dtype=np.float64),
                     location=recording.unit_areas[u], unit_name=recording.unit_names[u], id=u)
    # epochs
    for name, (a, b) in recording.epochs.items():
        nwb.add_epoch(start_time=float(a), stop_time=float(b), tags=[name])
    # trials
    if recording.trials is not None and len(recording.trials):
        n = len(recording.trials)
        cols = {}
        for name, vals in recording.trial_info.items():
            if name in _INTERVAL_BASE_COLUMNS or name == "id":
                warnings.warn(f"write_nwb: skipped trial_info[{name!r}]: the name is reserved by NWB")
                continue
            if problem := _nwb_name_problem(name):
                warnings.warn(f"write_nwb: skipped trial_info[{name!r}]: NWB names cannot {problem}")
                continue
            col, as_json = _simple_for_nwb(name, vals, n, "trial_info")
            if col is not None:
                cols[name] = col
                nwb.add_trial_column(name=name, description=f"trial_info[{name!r}]"
                                     + (f": {TRIAL_JSON_NOTE}" if as_json else ""))
        for i, (a, b) in enumerate(recording.trials):
            nwb.add_trial(start_time=float(a), stop_time=float(b), **{k: v[i] for k, v in cols.items()})
    # behaviour
    if recording.behaviour:
        mod = nwb.create_processing_module(BEHAVIOUR_MODULE, "behavioural variables")
        for name, s in recording.behaviour.items():
            # a boolean series as bool data, read back with boolean=True
            mod.add(TimeSeries(name=name, data=s.values.astype(bool) if s.boolean else s.values,
                               timestamps=s.timestamps,
                               unit=s.unit or _UNIT_PLACEHOLDER))
    # stimulus
    stim = recording.stimulus
    if stim is not None:
        if stim.frames is not None and stim.frame_times is not None:
            from pynwb.image import ImageSeries

            nwb.add_stimulus(ImageSeries(name="frames", data=np.asarray(stim.frames, dtype=np.float32),
                                         timestamps=np.asarray(stim.frame_times, dtype=np.float64),
                                         unit="grey level", description=stim.description or _FRAMES_DESCRIPTIONS_UNSET[0]))
        if stim.field_of_view is not None:
            from pynwb.core import ScratchData

            nwb.add_scratch(ScratchData(name=STIMULUS_FIELD_OF_VIEW_SCRATCH,
                                            data=np.asarray(stim.field_of_view, dtype=np.float64),
                                            description="hf_neuroformer: Stimulus.field_of_view of the frames "
                                                        "(ImageSeries 'frames'): [height, width] in degrees of visual "
                                                        "angle"))
        if stim.ids is not None and stim.intervals is not None:
            table = TimeIntervals(name=STIMULUS_TABLE, description=stim.description or _STIMULUS_TABLE_DESCRIPTION)
            # no rows (a restrict() to a span without a stimulus interval): hdmf cannot infer a column's
            # dtype from no values and failed with "could not resolve dtype for VectorData 'stimulus_id'"
            empty = len(stim.intervals) == 0
            table.add_column("stimulus_id", "category index (into the stimulus names)",
                             **({"data": np.zeros(0, dtype=np.int64)} if empty else {}))
            table.add_column("stimulus_name", "category name", **({"data": np.zeros(0, dtype=str)} if empty else {}))
            names = stim.names or []
            for i, (a, b) in zip(stim.ids, stim.intervals):
                nm = names[int(i)] if int(i) < len(names) else f"id{int(i)}"
                table.add_interval(start_time=float(a), stop_time=float(b), stimulus_id=int(i), stimulus_name=nm)
            nwb.add_time_intervals(table)
            if stim.names:
                from pynwb.core import ScratchData

                nwb.add_scratch(ScratchData(name=STIMULUS_NAMES_SCRATCH, data=[str(v) for v in stim.names],
                                            description="hf_neuroformer: names of the categorical stimulus, "
                                                        "index = stimulus id"))
    write_events(nwb, recording)
    # time domain
    if recording.time_domain is not None:
        td = TimeIntervals(name=TIME_DOMAIN_TABLE, description="time domain of the hf_neuroformer recording")
        td.add_interval(start_time=recording.time_domain[0], stop_time=recording.time_domain[1])
        nwb.add_time_intervals(td)
    if recording.time_support is not None:
        ts = TimeIntervals(
            name=TIME_SUPPORT_TABLE,
            description="intervals where the recording is defined (e.g. the windows a generator filled)",
        )
        for a, b in recording.time_support:
            ts.add_interval(start_time=float(a), stop_time=float(b))
        nwb.add_time_intervals(ts)
    if any(len(rows) for rows in recording.epoch_intervals.values()):
        ei = TimeIntervals(name=EPOCH_INTERVALS_TABLE,
                           description="intervals of the epochs made of several intervals (tag = epoch name); "
                                       "select_epoch takes their union")
        for name, rows in recording.epoch_intervals.items():
            for a, b in rows:
                ei.add_interval(start_time=float(a), stop_time=float(b), tags=[name])
        nwb.add_time_intervals(ei)

    if len(recording.behaviour) > 1 or len(recording.events) > 1:  # read back in name order without it
        from pynwb.core import ScratchData

        nwb.add_scratch(ScratchData(name=FIELD_ORDER_SCRATCH,
                                    data=json.dumps({"behaviour": list(recording.behaviour),
                                                     "events": list(recording.events)}),
                                    description="hf_neuroformer: the order of SpikeRecording.behaviour and .events "
                                                "(NWB reads a group's members in name order) as JSON"))
    if recording.session_info:  # one value per name: JSON keeps int / float / bool / text apart
        from pynwb.core import ScratchData

        nwb.add_scratch(ScratchData(name=SESSION_INFO_SCRATCH, data=json.dumps(session_values(recording.session_info)),
                                    description="hf_neuroformer: SpikeRecording.session_info (name -> one value for "
                                                "the whole session) as JSON"))
    if scratch:
        from pynwb.core import ScratchData

        for name, (values, what) in scratch.items():
            nwb.add_scratch(ScratchData(name=name, data=np.asarray(values), description=what))

    def write(tmp):
        with NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)

    return write_through_temporary(path, write, ".tmp.nwb", make_parent=make_parent, overwrite=overwrite)


def read_nwb_scratch(path) -> Dict[str, np.ndarray]:
    """``name -> array`` of every ``ScratchData`` in an NWB file's ``scratch`` space (as written
    by :func:`write_nwb` ``scratch=``); ``{}`` when there is none. The stimulus names that
    :func:`write_nwb` keeps there (``hf_neuroformer_stimulus_names``), the session values
    (``hf_neuroformer_session_info``), the frames' field of view
    (``hf_neuroformer_stimulus_field_of_view``) and the order of the behaviour and events
    (``hf_neuroformer_field_order``) are left out.

    pynwb's and hdmf's warnings about the file's other objects (a third-party file's
    ``OpticalSeries`` pointing at external video) are not shown: only the scratch space is read
    here, and :func:`read_nwb` says in its own words what of the file it skips.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    from pynwb import NWBHDF5IO
    from pynwb.core import ScratchData

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NWB file")
    out: Dict[str, np.ndarray] = {}
    # pynwb's and hdmf's own complaints about the file's other objects (a third-party file's OpticalSeries:
    # "OpticalSeries '...': Either external_file or data must be specified ...") were printed raw, with
    # pynwb's path, by 'evaluate --generated', after read_nwb had said what it skips in its own words;
    # only the scratch space is read here
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(pynwb|hdmf)(\.|$)")
        with NWBHDF5IO(str(path), "r") as io:
            nwb = io.read()
            for name, obj in nwb.scratch.items():
                if isinstance(obj, ScratchData) and name not in _OUR_SCRATCH:
                    data = obj.data
                    if isinstance(data, (str, bytes)):  # a single string is read back as a scalar
                        out[name] = np.array([data.decode() if isinstance(data, bytes) else data])
                    else:
                        out[name] = np.asarray(data[()])
    return out
