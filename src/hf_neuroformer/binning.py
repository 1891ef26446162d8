"""The one rule by which a time is put into a bin, shared by every part of the package that bins.

Bins are half-open, ``[start + k * width, start + (k + 1) * width)``, and a time on an edge
belongs to the bin it starts. Computed naively, ``floor((t - start) / width)`` breaks that rule
for about a third of the edges: ``(0.3 - 0.0) / 0.1`` is ``2.9999999999999996``, so a spike at
0.3 s (a 30 kHz clock's tick 9000) would land in bin 2. Every bin index here is therefore
``floor(offset / width + BIN_EDGE_TOLERANCE)``, and every bin count
``floor(span / width + BIN_EDGE_TOLERANCE)`` (full bins) or ``ceil(span / width -
BIN_EDGE_TOLERANCE)`` (bins covering the span, the last one possibly partial), each with the
seconds term below (:func:`bin_index`, :func:`n_full_bins`, :func:`n_bins_covering`). This is the
tokenizer's dt-bin rule (``NeuroformerTokenizer.dt_to_id``), which fidelity, bits per spike,
connectivity, modality binning and ``SpikeRecording.binned_counts`` follow, so that a spike's
bin is the same wherever it is counted.

The tolerance is in units of the bin width (1e-9 bin) for spans (window lengths, durations),
far below any real spike-time resolution. A time's bin (:func:`bin_index`) and a count of full or
covering bins (:func:`n_full_bins`, :func:`n_bins_covering`, whose span may be a segment's end minus
its start) also take a time less
than :data:`BIN_EDGE_SECONDS` (0.5 ns, half the 1 ns grid window edges lie on) before an edge as on
it: its offset is the difference of two absolute times, each rounded to float64, so it is off by
up to one float64 step of their size (1.5e-11 s a day into a recording, 1.2e-10 s at 11 days),
more than 1e-9 of a 1-ms bin (1e-12 s) once the times pass about 2 hours. With the relative
tolerance alone, spikes of a 30 kHz clock on a 1-ms bin edge fell in the bin before for about 7 %
of the edges at 10,000 s and a third of them a day into a recording.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

__all__ = ["BIN_EDGE_TOLERANCE", "BIN_EDGE_SECONDS", "bin_index", "n_full_bins", "n_bins_covering", "on_time_grid", "window_ends", "past_starts",
           "narrow_float_note", "narrow_float_times_message", "not_finite_message", "not_ascending_message"]

#: Tolerance, in bin widths, for a time on a bin edge (see the module docstring).
BIN_EDGE_TOLERANCE = 1e-9

#: Tolerance, s, for a time on a bin edge in :func:`bin_index` (see the module docstring): half the
#: 1 ns grid of window edges (``recording.WINDOW_GRID``; not imported, this module ships alone with
#: the model's remote code), at most a thousandth of a bin for bins under 0.5 microseconds.
BIN_EDGE_SECONDS = 0.5e-9


def bin_index(offset, width: float) -> np.ndarray:
    """Index of the bin of width ``width`` s that holds each ``offset`` s (from the bins' start).

    Args:
        offset: float array (any shape) or scalar, seconds from the first bin's start.
        width: bin width, seconds (> 0; not checked here, callers check their own field).

    Returns:
        int64 array of ``offset``'s shape: ``floor(offset / width + 1e-9 + 0.5 ns / width)``
        (an offset less than :data:`BIN_EDGE_SECONDS` before an edge starts the next bin; that
        term at most 1e-3 bin); not clipped (negative before the start, ``>= n`` past ``n`` bins).
    """
    return np.floor(np.asarray(offset, dtype=np.float64) / width + _edge_tolerance(width)).astype(np.int64)


def _edge_tolerance(width: float) -> float:
    """The tolerance, in bins of ``width`` s, for a time or a span end on a bin edge: 1e-9 bin plus
    :data:`BIN_EDGE_SECONDS` (at most 1e-3 bin)."""
    return BIN_EDGE_TOLERANCE + min(BIN_EDGE_SECONDS / width, 1e-3)


def n_full_bins(span: float, width: float) -> int:
    """Number of whole bins of ``width`` s in ``span`` s: ``floor(span / width + 1e-9 + 0.5 ns /
    width)`` (a span of 0.3 s holds 3 bins of 0.1 s), the edge rule of :func:`bin_index`: a span that
    is the difference of two absolute times (a segment's end minus its start) is off by up to a
    float64 step of their size (1.5e-11 s a day into a recording), which 1e-9 of a 1-ms bin alone
    took as short of its last bin (dropped for about 4 in 10 segments at 86400 s)."""
    return int(math.floor(span / width + _edge_tolerance(width)))


def n_bins_covering(span: float, width: float) -> int:
    """Number of bins of ``width`` s needed to cover ``span`` s, the last possibly partial:
    ``ceil(span / width - 1e-9 - 0.5 ns / width)`` (0.3 s needs 3 bins of 0.1 s, 0.35 s needs 4),
    the edge rule of :func:`n_full_bins`: a span of exactly k bins that is the difference of two
    absolute times (1.5e-11 s off a day into a recording) took 1e-9 of a 1-ms bin alone as reaching
    into bin k + 1 (for about 4 in 10 spans at 86400 s), and a span less than 0.5 ns past k bins was
    k full bins and k + 1 covering ones, a last bin shorter than bin_index's edge tolerance."""
    return int(math.ceil(span / width - _edge_tolerance(width)))


def on_time_grid(t):
    """``t`` (s; a float or an array) rounded to the 1 ns grid that window edges lie on.

    ``NeuroformerTokenizer.encode_window`` puts a window's start and end on this grid, so that one
    window's end is exactly the next one's start (``0.2 + 0.07`` is ``0.27000000000000002``, a
    spike at 0.27 s would otherwise fall in neither window or in both); every other count of a
    window's spikes (bits per spike, decoding labels, inspection, modality windows, generation)
    rounds with this function, so that a spike is in the same window wherever it is counted.
    Returns a float64 array (or numpy scalar).
    """
    return np.round(t, 9)


def window_ends(starts, length):
    """``(n,)`` float64 ends, s, of the windows ``[start, start + length)`` on the 1 ns grid
    (:func:`on_time_grid`); ``starts``: ``(n,)`` or scalar window starts, s; ``length``: window
    length(s), s (a scalar, or one per window)."""
    return on_time_grid(np.asarray(starts, dtype=np.float64) + length)


def past_starts(starts, past_window: float):
    """``(n,)`` float64 starts, s, of the past windows ``[start - past_window, start)`` on the 1 ns
    grid (:func:`on_time_grid`), as :func:`window_ends` puts the current windows' ends: unrounded,
    ``1.0 - 0.7`` is ``0.30000000000000004``, so a spike at 0.3 s fell out of the past window
    ``[0.3, 1.0)`` of a window at 1.0 s (about one window in five of 0.05-s starts, past 0.1 s).
    ``starts``: ``(n,)`` or scalar current-window starts, s; ``past_window``: s."""
    return on_time_grid(np.asarray(starts, dtype=np.float64) - past_window)


def _narrow_items(x) -> Optional[tuple]:
    """The items of the list / tuple ``x`` held in a float type narrower than float64 (``np.float32``
    scalars, float32 / float16 arrays or tensors) beside wider ones (Python floats, float64), which
    ``np.asarray`` widens to float64 without a word: ``(values, positions)``, their values as one
    flat array of the narrow type and the list position of each, or None when no item is narrow.
    (``[700.0, np.float32(700.05)]`` passed as float64 where ``[np.float32(700.05)]`` alone was
    refused, so one window was accepted in a batch and refused on its own.)"""
    from .argument_checks import NARROW_FLOAT_TYPES

    found = [i for i, v in enumerate(x) if str(getattr(v, "dtype", "")).removeprefix("torch.") in NARROW_FLOAT_TYPES]
    if not found:
        return None
    parts = [np.asarray(x[i]).ravel() for i in found]  # the caller's np.asarray(x) took them already
    values = np.concatenate(parts)
    return values, np.repeat(found, [p.size for p in parts])


def narrow_float_note(x, item: str = "value") -> Optional[str]:
    """For times (s) held in a float type narrower than float64 (float32, float16): ``"float32,
    which rounds times of up to T s by as much as X µs, across window and bin edges; e.g. value i:
    700.05 as float32 is 700.0499877929688 s, 12.2 µs off"`` (``item`` names the element, e.g.
    ``"window"``); a list / tuple mixing such values with Python floats or float64 (which
    ``np.asarray`` widens to float64) gives ``"float32 items (k of n) among float64 ones, ..."``.
    None for anything else (float64, integers, lists of Python floats, text or ragged input for
    the caller's own check)."""
    if not (hasattr(x, "dtype") or isinstance(x, (list, tuple))):
        return None
    try:
        flat = np.asarray(x).ravel()
    except (TypeError, ValueError):
        return None
    positions, what = None, None
    if isinstance(x, (list, tuple)) and flat.dtype.kind == "f" and flat.dtype.itemsize >= 8:
        mixed = _narrow_items(x)
        if mixed is not None:
            flat, positions = mixed
            what = f"{flat.dtype} items ({len(set(positions.tolist()))} of {len(x)}) among {np.asarray(x).dtype} ones"
    if flat.dtype.kind != "f" or flat.dtype.itemsize >= 8:
        return None
    finite = flat[np.isfinite(flat)]
    big = np.abs(finite).max() if finite.size else flat.dtype.type(0)
    note = (f"{what or flat.dtype}, which rounds times of up to {float(big):g} s by as much as "
            f"{float(np.spacing(big)) / 2 * 1e6:.3g} µs, across window and bin edges")
    for i, v in enumerate(flat[:1000]):  # the first value whose shortest decimal its widening moved
        if np.isfinite(v) and float(v) != float(str(v)):
            return note + (f"; e.g. {item} {i if positions is None else int(positions[i])}: {str(v)} as "
                           f"{flat.dtype} is {float(v)!r} s, {abs(float(v) - float(str(v))) * 1e6:.3g} µs off")
    return note


def narrow_float_times_message(x, what: str, item: str = "value") -> Optional[str]:
    """The one refusal of times (s) held narrower than float64 (float32, float16) by every check
    of them (recording fields, window starts, the tokenizer's spike times), naming ``what``; None
    when ``x`` is not such an array (:func:`narrow_float_note`).

    Widened to float64 they keep the rounding of the narrow type: float32 700.05 is
    700.0499877929688 s, 12 µs early, so a spike at 700.05 s fell in the window before its own (the
    window edges lie on a 1 ns grid, :func:`on_time_grid`). The message gives the dtype, how far
    it rounds times of this size, the first value it moved, and the fix.
    """
    note = narrow_float_note(x, item)
    if note is None:
        return None
    dtype = np.asarray(x).dtype
    if dtype.kind == "f" and dtype.itemsize >= 8:  # a list mixing narrow items with float64 ones
        dtype = _narrow_items(x)[0].dtype
    return (f"{what}: expected float64 times (s), got {note}; pass float64 times from the source (the file's or the "
            "computation's float64 values, or sample indices / sampling rate in float64): .astype(np.float64) on "
            f"these values keeps the {dtype} rounding, it only helps where they were float64 before a cast to {dtype}")


def not_finite_message(t, what: str, item: str, note: str = "") -> Optional[str]:
    """``"{what}: expected finite times, {item} k{note} is v (n non-finite in all)"`` for the first
    NaN / infinite entry of the 1-D times ``t`` (s), None when all are finite: the one wording of
    the checks of spike, event and behaviour times (recording, tokenizer); callers append the fix.
    ``note`` follows the index (``" (in the order given)"`` for times not yet sorted)."""
    t = np.asarray(t)
    bad = np.flatnonzero(~np.isfinite(t))
    if not bad.size:
        return None
    return f"{what}: expected finite times, {item} {bad[0]}{note} is {t[bad[0]]} ({bad.size} non-finite in all)"


def not_ascending_message(t, what: str, item: str, strictly: bool = False) -> Optional[str]:
    """For the 1-D times ``t`` (s) that must ascend (``strictly``: each after the one before), the
    first step back: ``"{what}: expected ascending times, {item} i+1 (a s) comes after {item} i
    (b s) (n descending steps in all)"`` (``strictly``: ``"expected strictly increasing times,
    {item} i+1 (a s) does not come after {item} i (b s) (n such steps in all)"``); None when they
    ascend. The one wording of the order checks of spike, event and behaviour times (recording,
    tokenizer); callers append the fix."""
    t = np.asarray(t)
    step = np.diff(t)
    back = np.flatnonzero(step <= 0 if strictly else step < 0)
    if not back.size:
        return None
    i = back[0]
    steps = "step" if back.size == 1 else "steps"  # "1 such steps" (count_noun is not imported: this module ships alone)
    if strictly:
        return (f"{what}: expected strictly increasing times, {item} {i + 1} ({t[i + 1]} s) does not come after "
                f"{item} {i} ({t[i]} s) ({back.size} such {steps} in all)")
    return (f"{what}: expected ascending times, {item} {i + 1} ({t[i + 1]} s) comes after {item} {i} ({t[i]} s) "
            f"({back.size} descending {steps} in all)")
