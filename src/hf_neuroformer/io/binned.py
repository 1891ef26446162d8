"""Recordings from binned spike counts (trials x bins x units), e.g. the Steinmetz subset.

Binned data carry no spike times, so each count is turned into spikes inside its bin: at seeded
uniform random times (``placement="uniform"``) or at the bin centre (``placement="center"``).
Trials are laid end to end on one clock: trial ``k`` occupies
``[k*T, k*T + n_bins*bin_size)`` seconds with ``T = n_bins*bin_size + trial_gap``; the gap holds
no spikes and is no recorded time: ``time_support`` is the trials, so ``duration`` and firing
rates count the binned time only.

Steinmetz subset (``shared/data/steinmetz2019_spcount/NS_sp_count.mat``), as found: MATLAB
v7.3 (HDF5), float64 datasets. ``sp_count`` reads with h5py as ``(247, 101, 806)`` =
(trials, bins, units), integer-valued counts 0-4, 493,450 in total. Per-trial ``(247, 1)``
vectors: ``rawLabel`` (1/2/3), ``label`` (-1/0/1), ``motorLabel`` (-1/0/1), ``matchLabel``
(0/1), ``trial_seq`` (1..247). ``accuracy`` is a ``(1, 1)`` session summary (0.587), not a
per-trial column: it is kept as ``SpikeRecording.session_info["accuracy"]``. The bin width is not stored; 10 ms fits the rates.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from ..configuration_neuroformer import checked_float
from ..recording import RecordingValidationError, SpikeRecording, first_few, names_without_whitespace
from .arrays import text_of, warn_if_not_seconds, warnings_at_caller

__all__ = ["from_binned_counts", "read_steinmetz_spcount", "what_the_mat_file_holds", "DEFAULT_TRIAL_GAP",
           "MAX_TOTAL_SPIKES", "BIN_SIZE_WARNING_SECONDS"]

#: Silent gap between consecutive trials, seconds, when trials are laid on one clock.
DEFAULT_TRIAL_GAP = 0.1
#: Most spikes :func:`from_binned_counts` lays out (the int32 range, 2.1e9; each spike takes
#: about 40 bytes while it is placed). Real binned data sets hold far fewer (Steinmetz: 4.9e5);
#: a larger total means the array is not spike counts (e.g. rates, or a wrong dtype).
MAX_TOTAL_SPIKES = 2**31 - 1
#: A ``bin_size`` of this many seconds or more is named in a warning (kept as given): bins of a
#: second or longer resolve none of the spike timing Neuroformer models (its dt tokens are ms), and
#: the bin widths binned data sets use in milliseconds (1, 5, 10, 20, 50) read as seconds are all
#: >= 1 s, while every such width in seconds (0.001-0.5) is below it.
BIN_SIZE_WARNING_SECONDS = 1.0


#: Values checked at a time by :func:`_good_counts` (a block and its int64 copy stay in the CPU cache).
_CHECK_BLOCK = 1 << 16


def _good_counts(arr: np.ndarray) -> bool:
    """Whether the numeric ``arr`` holds only integer values >= 0 that sum to at most
    :data:`MAX_TOTAL_SPIKES`, checked block by block: no full-size copy (checked whole, the
    Steinmetz file's 20M values took about 1 s and a 160 MB int64 copy on every read)."""
    flat = arr.ravel(order="K")  # a view wherever the memory layout allows
    total = 0
    with np.errstate(invalid="ignore"):  # NaN / inf / huge values convert to garbage, caught by the comparison
        for i in range(0, flat.size, _CHECK_BLOCK):
            block = flat[i:i + _CHECK_BLOCK]
            as_int = block.astype(np.int64)
            if as_int.min() < 0 or as_int.max() > MAX_TOTAL_SPIKES or (
                    arr.dtype.kind == "f" and not np.array_equal(as_int, block)):
                return False
            total += int(as_int.sum())
            if total > MAX_TOTAL_SPIKES:
                return False
    return True


def _check_counts(counts, name: str = "counts", where: str = "") -> np.ndarray:
    """``counts`` as an ``(n_trials, n_bins, n_units)`` array after checking them (its numeric
    dtype kept, no copy: the values are integers >= 0; :func:`_binned_recording` takes int64 of
    the counts it places); each message opens with ``name`` (the argument, or a reader's dataset
    such as ``"sp_count"``), names the first bad element as ``name[trial, bin, unit]`` and ends
    with ``where`` (e.g. ``" in <file>"``)."""
    arr = np.asarray(counts)
    if arr.ndim != 3:
        # a continuous session binned as (bins, units) is the most common 2-D input: say how to pass it
        hint = (f"; one continuous recording of {arr.shape[0]} bins x {arr.shape[1]} units is one trial: pass "
                "counts[None] (or counts.T[None] for units x bins)") if arr.ndim == 2 and name == "counts" else ""
        raise RecordingValidationError(
            f"{name}: expected a 3-D array (trials, bins, units), got shape {arr.shape}{where}{hint}"
        )
    if 0 in arr.shape:  # failed later as a time_domain / time_support of no length; no unit gave a recording of none
        what = ("no trials", "no bins", "no units")[arr.shape.index(0)]
        raise RecordingValidationError(f"{name}: expected at least one trial, one bin and one unit (trials, bins, "
                                       f"units), got shape {arr.shape} ({what}){where}")
    if arr.dtype.kind not in "biuf":
        raise RecordingValidationError(f"{name}: expected numeric counts, got dtype {arr.dtype}{where}")
    if _good_counts(arr):  # else the checks below name the first bad element
        return arr
    if arr.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            i = tuple(int(x) for x in bad[0])
            raise RecordingValidationError(f"{name}: expected finite values, {name}{list(i)} is {arr[i]}{where}")
        frac = np.argwhere(arr != np.round(arr))
        if frac.size:
            i = tuple(int(x) for x in frac[0])
            raise RecordingValidationError(
                f"{name}: expected integer-valued spike counts, {name}{list(i)} is {arr[i]}{where}"
            )
    neg = np.argwhere(arr < 0)
    if neg.size:
        i = tuple(int(x) for x in neg[0])
        raise RecordingValidationError(f"{name}: expected non-negative spike counts, {name}{list(i)} is {arr[i]}{where}")
    total = float(arr.sum(dtype=np.float64)) if arr.size else 0.0
    if total > MAX_TOTAL_SPIKES:
        i = tuple(int(x) for x in np.unravel_index(int(np.argmax(arr)), arr.shape))
        raise RecordingValidationError(
            f"{name}: expected spike counts, got {total:.3g} spikes in all (more than {MAX_TOTAL_SPIKES:.3g}, "
            f"MAX_TOTAL_SPIKES; the largest is {name}{list(i)} = {arr[i]}){where}; rates or a wrong dtype?"
        )
    return arr


@warnings_at_caller
def from_binned_counts(
    counts,
    bin_size: float,
    trial_gap: float = DEFAULT_TRIAL_GAP,
    seed: int = 0,
    placement: str = "uniform",
    *,
    unit_names: Optional[Sequence[str]] = None,
    unit_areas: Optional[Sequence[str]] = None,
    trial_info: Optional[Dict[str, np.ndarray]] = None,
    session: str = "session0",
) -> SpikeRecording:
    """Turn binned counts into a spike recording on one continuous clock.

    Args:
        counts: ``(n_trials, n_bins, n_units)`` non-negative integer-valued counts (any numeric
            dtype).
        bin_size: bin width, seconds (> 0).
        trial_gap: silent gap between consecutive trials, seconds (>= 0); default
            :data:`DEFAULT_TRIAL_GAP` = 0.1 s.
        seed: seed of the ``numpy.random.default_rng`` used by ``placement="uniform"``.
        placement: ``"uniform"``: each of the ``c`` spikes of a bin at an independent uniform
            time in ``[bin start, bin stop)``; ``"center"``: all at the bin centre (several spikes
            of one unit then share a time).
        unit_names, unit_areas: per unit; default ``"unit{i}"`` and ``""``.
        trial_info: per-trial columns, each ``(n_trials,)``.
        session: session name.

    Returns:
        SpikeRecording with ``sum(counts)`` spikes, ``trials`` ``(n_trials, 2)`` float64
        ``[k*T, k*T + n_bins*bin_size)`` with ``T = n_bins*bin_size + trial_gap``, and
        ``time_domain = (0, n_trials*T)``, ``time_support`` = the trials. Re-binning a trial with ``bin_size`` gives ``counts``
        back.

    Warns:
        UserWarning: a ``bin_size`` of :data:`BIN_SIZE_WARNING_SECONDS` (1 s) or more, however few the
            bins (``bin_size=10`` meant for 10-ms bins; kept as given); else when the spikes laid out
            span more than a day, or more than an hour at a mean below 0.05 spikes/s per unit (the
            rule of :func:`~hf_neuroformer.io.from_arrays`, e.g. a ``trial_gap`` in milliseconds).
        UserWarning: units whose count is 0 in every bin of every trial, counted and named (the first
            5); they are kept as units that never fire, as :func:`~hf_neuroformer.io.read_nwb` keeps
            and warns of a unit without spike times.

    Raises:
        RecordingValidationError: ``counts`` is not 3-D, has no trial, bin or unit, is not finite, not integer-valued or
            negative, or holds more than :data:`MAX_TOTAL_SPIKES` spikes in all; ``bin_size`` is
            not a finite positive number or ``trial_gap`` not a finite number >= 0 (text, None and
            bools too);
            ``placement`` is unknown (each message names the field).
    """
    return _binned_recording(_check_counts(counts), bin_size, trial_gap, seed, placement, unit_names=unit_names,
                             unit_areas=unit_areas, trial_info=trial_info, session=session)


def _binned_recording(arr: np.ndarray, bin_size, trial_gap, seed, placement, *, unit_names, unit_areas, trial_info,
                      session, name: str = "counts", where: str = "") -> SpikeRecording:
    """:func:`from_binned_counts` of counts ``arr`` that :func:`_check_counts` has checked
    (``(n_trials, n_bins, n_units)`` integer values of any numeric dtype; a reader checks them
    under its own dataset's name). ``name`` / ``where``: the counts as the warning of units that never
    fire names them (``"sp_count"``, ``" in NS_sp_count.mat"``)."""
    # through checked_float, the package's rule for a float setting (each message here starts with the field):
    # the text '0.01' or None failed inside np.isfinite with numpy's TypeError, and bin_size=True made 1-s bins
    try:
        bin_size = checked_float("bin_size", bin_size, "a finite number of seconds > 0", lambda v: v > 0, owner="")
        trial_gap = checked_float("trial_gap", trial_gap, "a finite number of seconds >= 0", lambda v: v >= 0,
                                  owner="")
    except ValueError as e:
        raise RecordingValidationError(str(e)) from None
    if placement not in ("uniform", "center"):
        raise RecordingValidationError(f"placement: expected 'uniform' or 'center', got {placement!r}")
    n_trials, n_bins, n_units = arr.shape
    trial_len = n_bins * bin_size
    period = trial_len + trial_gap

    k, b, u = np.nonzero(arr)
    c = arr[k, b, u].astype(np.int64)
    k, b, u = (np.repeat(x, c) for x in (k, b, u))
    bin_start = k * period + b * bin_size
    if placement == "uniform":
        rng = np.random.default_rng(seed)
        times = bin_start + rng.random(k.size) * bin_size
        # rounding must not push a spike into the next bin
        times = np.minimum(times, np.nextafter(bin_start + bin_size, -np.inf))
    else:
        times = bin_start + 0.5 * bin_size

    onsets = np.arange(n_trials) * period
    stops = onsets + trial_len
    if trial_gap == 0 and n_trials:  # back to back: k*T + n_bins*bin_size rounded past (k+1)*T, so trials
        stops = np.append(onsets[1:], n_trials * period)  # overlapped by a hair; each stop is the next onset
    trials = np.stack([onsets, stops], axis=1)
    stop = float(max(n_trials * period, stops[-1])) if n_trials else 0.0
    if times.size and times.max() >= stop:  # only by rounding, when trial_gap == 0
        stop = float(np.nextafter(times.max(), np.inf))
    rec = SpikeRecording.from_unsorted(
        times,
        u,
        unit_names=list(unit_names) if unit_names is not None else [f"unit{i}" for i in range(n_units)],
        unit_areas=list(unit_areas) if unit_areas is not None else None,
        time_domain=(0.0, stop),
        time_support=trials.copy() if n_trials else None,
        trials=trials,
        trial_info=dict(trial_info or {}),
        session=session,
    )
    # a unit whose count is 0 in every bin of every trial (4 of the 806 units of the Steinmetz subset) was kept
    # without a word, where read_nwb warns of such a unit and read_phy / read_nelpy_linear_track leave it out, counted
    silent = np.flatnonzero(np.bincount(rec.unit_ids, minlength=rec.n_units) == 0)
    if silent.size:
        shown = first_few((f"unit {int(i)} ({rec.unit_names[i]!r})" for i in silent), 5, quote=False)
        warnings.warn(f"{name}: {silent.size} of {n_units} units{where} have a count of 0 in every bin of every "
                      f"trial ({shown}); kept as units that never fire (in the tokenizer's vocabulary and every per-unit "
                      "metric); SpikeRecording.select_units leaves them out", UserWarning, stacklevel=2)
    fix = "pass bin_size (and trial_gap) in seconds, e.g. bin_size=0.01 for 10-ms bins"
    if bin_size >= BIN_SIZE_WARNING_SECONDS:
        # bin_size=10 meant for 10-ms bins was warned of only when the spikes laid out spanned more than a day
        # (the spike-time rule below): a few trials of 10-"s" bins passed without a word
        warnings.warn(f"bin_size = {bin_size:g} s: bins of {BIN_SIZE_WARNING_SECONDS:g} s or longer are probably a "
                      f"width in milliseconds read as seconds (kept as given); if so, {fix}", UserWarning, stacklevel=2)
        return rec
    # a trial_gap in milliseconds, or a bin_size in ms over very many bins: every reader of spike times warns of
    # times that look like milliseconds (the same rule)
    warn_if_not_seconds(rec, f"bin_size = {bin_size:g} s: the spike times laid out from the counts",
                        fix)
    return rec


def what_the_mat_file_holds(path) -> str:
    """For a ``.mat`` file that is not HDF5 (MATLAB v7.3), what it is and how to read its binned counts:
    :func:`read_steinmetz_spcount` reads ``sp_count`` (trials, bins, units, as h5py reads MATLAB's
    units x bins x trials) and its per-trial label vectors from MATLAB v7.3 with h5py only. A MATLAB
    v4-v7 file (:func:`scipy.io.matlab.matfile_version`) is named with its variables
    (:func:`scipy.io.whosmat`) and, when it holds ``sp_count``, the two ways to read it: re-saved as
    v7.3, or :func:`scipy.io.loadmat` and :func:`from_binned_counts`. Returns a clause that starts
    with ``path`` (no trailing period)."""
    from scipy.io import whosmat
    from scipy.io.matlab import matfile_version

    try:
        major, minor = matfile_version(str(path))
        found = whosmat(str(path))
    except Exception as e:  # scipy raises MatReadError, ValueError, TypeError or OSError for what is no .mat
        return (f"{path} is neither MATLAB v7.3 (HDF5) nor a MATLAB v4-v7 file scipy.io reads "
                f"({type(e).__name__}: {e})")
    version = {0: "v4", 1: "v5-v7"}.get(major, f"{major}.{minor}")
    shapes = {name: f"{name} {'x'.join(map(str, shape))} {cls}" for name, shape, cls in found}
    if "sp_count" in shapes:
        return (f"{path} is a MATLAB {version} file holding {shapes['sp_count']} (scipy.io.whosmat); binned counts "
                "are read with h5py from v7.3 only, with the per-trial label vectors beside sp_count as trial_info: "
                "re-save it in MATLAB with save(file, '-v7.3'), or read it with "
                "scipy.io.loadmat and pass sp_count as (trials, bins, units) to hf_neuroformer.io.from_binned_counts "
                "(loadmat keeps MATLAB's axis order, units x bins x trials for the Steinmetz subset: "
                ".transpose(2, 1, 0))")
    listed = ", ".join(list(shapes.values())[:8]) + (f", ... ({len(shapes)} in all)" if len(shapes) > 8 else "")
    return (f"{path} is a MATLAB {version} file holding {listed or 'no variable'} and no 'sp_count'; binned counts "
            "are read from MATLAB v7.3 (HDF5) files holding 'sp_count' (units x bins x trials in MATLAB) and "
            "per-trial label vectors")


@warnings_at_caller
def read_steinmetz_spcount(
    path,
    bin_size: float = 0.01,
    seed: int = 0,
    trial_gap: float = DEFAULT_TRIAL_GAP,
    placement: str = "uniform",
    session: Optional[str] = None,
) -> SpikeRecording:
    """Read the Steinmetz et al. 2019 binned-count subset (MATLAB v7.3) with h5py.

    The trial axis of ``sp_count`` is found from the per-trial label vectors: the file holds
    ``(trials, bins, units)`` as h5py reads it; an array stored the other way round
    (``(units, bins, trials)``, as MATLAB writes without transposing) is transposed, with a
    warning, when no vector dataset has as many values as its first axis and some have as many
    as its last (per-unit vectors beside the labels do not flip it; a MATLAB char array counts as its
    texts, one per row, so a single string is no vector). Every other
    dataset with one value per trial becomes ``trial_info[name]`` (``.ravel()``; int64 when
    integer-valued, else float64; NaN or infinite values are kept, counted in a warning naming
    the dataset); a numeric dataset of one value becomes
    ``session_info[name]`` (the subset's ``accuracy``, the fraction of correct trials: 0.587).
    A MATLAB char array (``MATLAB_class`` ``"char"``: uint16 character codes in the file) is read
    as text: one character or one padded row per trial -> ``trial_info[name]`` of str, a single
    row -> ``session_info[name]``. Other datasets (cell arrays and structs too) are skipped with a
    warning.

    Args:
        path: ``NS_sp_count.mat``.
        bin_size: bin width, seconds (not stored in the file; default 0.01).
        seed, trial_gap, placement: see :func:`from_binned_counts`.
        session: session name; default the file stem, each run of whitespace replaced by ``_``
            (a unit token ``"<session>/<unit name>"`` cannot hold whitespace).

    Returns:
        SpikeRecording with one unit per ``sp_count`` unit (``"unit{i}"``; 806 in the shipped
        file) and one trial per ``sp_count`` trial (247): ``spike_times`` ``(n_spikes,)``
        float64 seconds placed inside their bins, ``unit_ids`` ``(n_spikes,)`` int64,
        ``trials`` ``(n_trials, 2)`` float64 seconds laid end to end (see
        :func:`from_binned_counts`), ``trial_info[name]`` ``(n_trials,)`` and
        ``session_info`` as above.

    Warns:
        UserWarning: units of ``sp_count`` with a count of 0 in every bin of every trial (4 of the
            806 in the shipped file), counted and named, kept (see :func:`from_binned_counts`);
            per-trial values that are not finite (kept); datasets skipped; a transposed ``sp_count``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RecordingValidationError: the file is not HDF5 (MATLAB < v7.3: its version and variables named,
            see :func:`what_the_mat_file_holds`), has no ``sp_count``, or
            the counts are invalid (see :func:`from_binned_counts`; the message names
            ``sp_count[trial, bin, unit]`` as the file holds it, and the file).
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"binned-count file not found: {path}")
    if not h5py.is_hdf5(path):  # a v5 file holding sp_count was told only to be re-saved, not what it held
        raise RecordingValidationError(f"sp_count: expected a MATLAB v7.3 (HDF5) file holding 'sp_count'; "
                                       f"{what_the_mat_file_holds(path)}")
    with h5py.File(path, "r") as f:
        if "sp_count" not in f:
            raise RecordingValidationError(
                f"sp_count: expected a dataset 'sp_count' (trials, bins, units) in {path}, found {sorted(f.keys())}"
            )
        counts = np.asarray(f["sp_count"][()])
        others = {k: np.asarray(v[()]) for k, v in f.items() if k != "sp_count" and isinstance(v, h5py.Dataset)}
        # MATLAB v7.3 stores a char array as uint16 character codes, marked by its MATLAB_class attribute
        chars = {k for k in others if text_of(f[k].attrs.get("MATLAB_class", b"")) == "char"}
    # checked once, as the file holds them: from_binned_counts named them 'counts', without the file, and gave
    # the indices after any transposition below
    counts = _check_counts(counts, "sp_count", f" in {path}")
    # vectors (one value per trial, or per unit: a file may hold both) tell the trial axis. The array
    # is taken as stored (trials, bins, units) unless no vector fits its first axis and some fit its
    # last: a majority vote turned (247, 101, 806) into 806 "trials" when per-unit vectors outnumbered
    # the per-trial labels. A char array counts as its texts, one per MATLAB row (axis 1 in the file, as
    # _matlab_text reads it): a single string as long as the unit count, counted as a vector of its
    # characters, transposed the counts of a file without per-trial vectors
    def values(name, v):
        if name in chars:
            return v.shape[1] if v.ndim == 2 else 0
        return v.size if _is_vector(v) else 0

    vec_sizes = {values(k, v) for k, v in others.items()} - {0, 1}
    if counts.shape[0] not in vec_sizes and counts.shape[2] in vec_sizes and counts.shape[0] != counts.shape[2]:
        fits = sorted(k for k, v in others.items() if values(k, v) == counts.shape[2])
        warnings.warn(
            f"read_steinmetz_spcount: sp_count of shape {counts.shape} in {path} read as (units, bins, trials) and "
            f"transposed to {counts.shape[::-1]}: the per-trial vectors {fits} have {counts.shape[2]} values, none "
            f"has {counts.shape[0]}"
        )
        counts = counts.transpose(2, 1, 0)
    n_trials = counts.shape[0]
    info: Dict[str, np.ndarray] = {}
    session_info: Dict[str, float] = {}
    for name, v in others.items():
        if name in chars:  # read as their codes before: 'L' / 'R' labels became 76 / 82 without a word
            text = _matlab_text(v, n_trials)
            if isinstance(text, str):
                session_info[name] = text
            elif text is not None:
                info[name] = text
            else:
                warnings.warn(f"read_steinmetz_spcount: skipped MATLAB char dataset {name!r} of shape {v.shape} in "
                              f"{path}: neither one text per trial ({n_trials}) nor one text for the session")
            continue
        if v.size == n_trials and (_is_vector(v) or v.ndim == 0) and v.dtype.kind in "biuf":
            col = v.ravel()
            bad = np.flatnonzero(~np.isfinite(col)) if col.dtype.kind == "f" else np.zeros(0, np.int64)
            if bad.size:  # a trial without a label was kept as NaN without a word (met windows later by decoding)
                warnings.warn(f"read_steinmetz_spcount: trial_info[{name!r}] of {path} holds {bad.size} values that "
                              f"are not finite (NaN or infinite) of {n_trials} trials, first at trial {int(bad[0])} "
                              f"({col[bad[0]]}); kept as they are (a trial without a value)")
            elif col.dtype.kind == "f" and np.all(col == np.round(col)):
                col = col.astype(np.int64)
            info[name] = col
        elif v.size == 1 and v.dtype.kind in "biuf":
            # one value for the whole session (the subset's `accuracy`: the fraction of correct
            # trials) was skipped with a warning on every command; it is the session's, kept as such
            session_info[name] = v.reshape(()).item()
        else:
            why = ("a MATLAB cell array or struct (HDF5 object references), which is not read; store text labels "
                   "as a char matrix or numbers as a vector") if v.dtype.kind == "O" else "not one value per trial"
            warnings.warn(f"read_steinmetz_spcount: skipped dataset {name!r} of shape {v.shape} in {path}: {why}")
    rec = _binned_recording(
        counts,
        bin_size,
        trial_gap,
        seed,
        placement,
        unit_names=None,
        unit_areas=None,
        trial_info=info,
        # whitespace replaced, as for .npz and tables: "NS sp count" made every unit token refused
        session=session or names_without_whitespace([path.stem])[0][0],
        name="sp_count",
        where=f" of {path}",
    )
    rec.session_info = {k: _as_number(v) for k, v in session_info.items()}
    return rec


def _is_vector(v: np.ndarray) -> bool:
    """Whether ``v`` is a vector: 1-D (as h5py writes one from Python), or 2-D with an axis of 1 (as MATLAB
    writes a row or column vector)."""
    return v.ndim == 1 or (v.ndim == 2 and min(v.shape) == 1)


def _matlab_text(codes: np.ndarray, n_trials: int):
    """A MATLAB v7.3 char array (uint16 character codes, stored transposed: MATLAB's ``n x k`` is
    ``(k, n)`` in the file) as text: ``(n_trials,)`` object array of str when it holds one character
    per trial (MATLAB's ``n_trials x 1`` column, ``(1, n_trials)`` in the file) or one row per trial
    (``(k, n_trials)``; trailing blanks of MATLAB's padding removed); one str when it is a single row
    (``(k, 1)``, with ``n_trials`` > 1); else None. A single row of ``n_trials`` characters (a
    subject ``'Ann'`` beside 3 trials, ``(3, 1)``) is the session's text, not one character per trial."""
    codes = np.asarray(codes).astype(np.int64)
    if codes.ndim != 2:
        return None
    if codes.shape == (1, n_trials):
        return np.array([chr(c) for c in codes.ravel()], dtype=object)
    if codes.shape[1] == n_trials:
        return np.array(["".join(map(chr, codes[:, j])).rstrip() for j in range(n_trials)], dtype=object)
    if codes.shape[1] == 1:
        return "".join(map(chr, codes[:, 0]))
    return None


def _as_number(v):
    """An integer-valued float as int, else the value (for :attr:`SpikeRecording.session_info`)."""
    return int(v) if isinstance(v, float) and np.isfinite(v) and v == round(v) else v
