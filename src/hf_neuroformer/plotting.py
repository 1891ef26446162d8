"""Figures comparing recordings (matplotlib, Agg canvas, no pyplot).

Every function builds a :class:`matplotlib.figure.Figure` on its own Agg canvas, so nothing
touches pyplot's global state (no figure stays open, no backend is switched), and returns it.
A figure is written to disk only when ``path`` is given, atomically (a temporary file in the
same folder, then ``os.replace``), so a reader never sees a half-written file. A file already at
``path`` is kept: the plotting functions refuse it (``FileExistsError``) unless given
``overwrite=True`` (the ``neuroformer`` commands pass it once their ``--overwrite`` allowed it), and
refuse a ``path`` that is a folder, whose folder is missing, or whose suffix matplotlib cannot write,
before drawing (:func:`check_figure_path`).
"""

from __future__ import annotations

import io
import os
import shutil
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .binning import n_bins_covering, n_full_bins
from .configuration_neuroformer import is_finite_number, is_real_number, is_whole_number
from .jsonio import write_atomic
from .metrics.fidelity import (
    _check_pair,
    _counts_in_sorted_bins,
    _tile,
    support_segments,
    trial_psth,
    usable_trials,
)
from .recording import SpikeRecording, score_text, unit_or_not_recorded

REAL_COLOR = "black"
GENERATED_COLOR = "tab:orange"


class PlottingInputError(ValueError):
    """A bad argument to a plotting function; the message names the field."""


def check_figure_path(path, overwrite: bool = False, field: str = "path") -> Path:
    """``path`` as a :class:`~pathlib.Path` a figure can be written to, or an error naming ``field``.

    Raises:
        PlottingInputError: ``path`` is not a str / path, or its suffix names a format matplotlib
            cannot write (``.xyz``: the error came after the figure was drawn and named no argument)
            or is ``.pgf`` without matplotlib's TeX program (``rcParams["pgf.texsystem"]``) installed;
            ``overwrite`` is not a bool.
        IsADirectoryError: ``path`` is a folder (the OS error named the temporary file instead).
        FileNotFoundError: ``path``'s folder does not exist.
        FileExistsError: a file exists at ``path`` and ``overwrite`` is False.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise PlottingInputError(f"{field}: expected a file path (str or Path), got {path!r}")
    if not isinstance(overwrite, (bool, np.bool_)):
        raise PlottingInputError(f"overwrite: expected True or False, got {overwrite!r}")
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if fmt not in formats:
        raise PlottingInputError(f"{field}: expected a file suffix matplotlib writes ({', '.join(sorted(formats))}), "
                                 f"got {path.suffix!r} in {str(path)!r}")
    if fmt == "pgf" and shutil.which(rcParams["pgf.texsystem"]) is None:  # listed, but failed once drawn
        raise PlottingInputError(f"{field}: {str(path)!r}: matplotlib writes .pgf through {rcParams['pgf.texsystem']}, "
                                 "which is not installed here; expected another figure format (.pdf, .svg, .png, ...)")
    if path.is_dir():
        raise IsADirectoryError(f"{field}: expected a file to write the figure to, {str(path)!r} is a folder; name a "
                                f"file in it (e.g. {str(path / 'figure.png')!r})")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{field}: the folder of {str(path)!r} is not an existing folder; create it first")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{field}: {str(path)!r} exists; pass overwrite=True to replace it, or another path")
    return path


def save_figure(fig: Figure, path, dpi: int = 120, *, overwrite: bool = True) -> Path:
    """Write ``fig`` to ``path`` atomically; the format comes from the suffix (default PNG).

    Replaces an existing file by default (callers that must not overwrite pass ``overwrite=False``,
    as the plotting functions do unless given ``overwrite=True``).

    Returns:
        the path written.

    Raises:
        as :func:`check_figure_path`: a suffix matplotlib cannot write, a folder, a missing folder,
        or (``overwrite=False``) an existing file.
    """
    path = check_figure_path(path, overwrite)
    fmt = path.suffix.lstrip(".").lower() or "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return write_atomic(path, buf.getvalue())


def _choose_units(real: SpikeRecording, generated: SpikeRecording, ranked_over: np.ndarray, stretch: np.ndarray,
                  units, n_units: int) -> np.ndarray:
    """The units of :func:`plot_fidelity`: ``units`` as given, or up to ``n_units`` units that fire
    in the rasters' ``stretch`` (``(1, 2)`` s): those with recorded spikes there first, then those
    with generated spikes only, each group ordered by recorded spikes inside ``ranked_over``
    (``(n, 2)`` s, sorted rows), most first, ties by index. When no unit fires in the stretch, the
    ``n_units`` most active inside ``ranked_over``."""
    if units is not None:
        sel = np.asarray(list(units), dtype=np.int64).reshape(-1)
        bad = np.flatnonzero((sel < 0) | (sel >= real.n_units))
        if bad.size:
            raise PlottingInputError(
                f"units: expected unit indices in [0, {real.n_units}), got {int(sel[bad[0]])} at position {bad[0]}"
            )
        if sel.size == 0:
            raise PlottingInputError("units: expected at least one unit index, got none")
        return sel
    if isinstance(n_units, bool) or int(n_units) != n_units or n_units < 1:
        raise PlottingInputError(f"n_units: expected an integer >= 1, got {n_units}")
    rank = _counts_in_sorted_bins(real, ranked_over).sum(0)
    in_real = _counts_in_sorted_bins(real, stretch).sum(0) > 0
    firing = in_real | (_counts_in_sorted_bins(generated, stretch).sum(0) > 0)
    order = np.lexsort((np.arange(real.n_units), -rank, ~in_real, ~firing))  # last key first
    n_firing = int(firing.sum())
    return order[: min(int(n_units), n_firing if n_firing else real.n_units)]


def _raster_stretch(real: SpikeRecording, generated: SpikeRecording, segments: np.ndarray, duration: float,
                    units) -> tuple[float, float]:
    """``(start, stop)``, s, of the rasters of :func:`plot_fidelity`: ``duration`` s of one segment
    of the generated support. Candidates: each segment cut into consecutive stretches of
    ``duration`` s from its start (the last one shorter), the longest segments first (ties in time
    order), in time order inside a segment. Taken: the first candidate where a unit (of ``units``,
    when given) has a recorded spike, else the first where one has a generated spike, else the
    first candidate (the longest segment's start), so that sparse data or a silent first trial
    does not draw empty rasters when spikes exist elsewhere in the generated windows."""
    lengths = segments[:, 1] - segments[:, 0]
    rows, rank = [], []
    for k, (a, b) in enumerate(segments):  # rows in time order: sorted, non-overlapping
        n = max(1, n_bins_covering(b - a, duration))
        starts = a + duration * np.arange(n)
        rows.append(np.stack([starts, np.minimum(starts + duration, b)], 1))
        rank.append(np.full(n, k))
    rows, seg = np.concatenate(rows), np.concatenate(rank)
    order = np.lexsort((np.arange(len(rows)), -lengths[seg]))  # longest segment first, then time
    mask = np.zeros(real.n_units, dtype=bool)
    mask[np.arange(real.n_units) if units is None else np.asarray(list(units), dtype=np.int64).reshape(-1)] = True
    for rec in (real, generated):
        t = rec.spike_times[mask[rec.unit_ids]]
        has = np.searchsorted(t, rows[:, 1], side="left") > np.searchsorted(t, rows[:, 0], side="left")
        hit = np.flatnonzero(has[order])
        if hit.size:
            return float(rows[order[hit[0]], 0]), float(rows[order[hit[0]], 1])
    return float(rows[order[0], 0]), float(rows[order[0], 1])


UNIT_LABEL_CHARS = 24  # longest unit name drawn in a label: longer ones are cut in the middle
AREA_LABEL_CHARS = 12  # and the longest brain area beside it


def _ellipsize(text: str, n: int = UNIT_LABEL_CHARS) -> str:
    """``text`` cut to ``n`` characters in the middle (``probe0_shank…cluster0045``): both ends kept,
    where unit names usually differ (70-character names squeezed the rasters to half their width)."""
    if len(text) <= n:
        return text
    head = n // 2
    return text[:head] + "…" + text[len(text) - (n - 1 - head):]


def _unit_label(rec: SpikeRecording, k: int) -> str:
    """The unit's name, with its brain area when the recording has one (e.g. ``unit5 (adn)``),
    cut in the middle to :data:`UNIT_LABEL_CHARS` and :data:`AREA_LABEL_CHARS` characters."""
    area = rec.unit_areas[k] if k < len(rec.unit_areas) else ""
    name = _ellipsize(str(rec.unit_names[k]))
    return f"{name} ({_ellipsize(str(area), AREA_LABEL_CHARS)})" if area and area != "unknown" else name


def _raster(ax, rec: SpikeRecording, units: np.ndarray, start: float, stop: float, color: str, title: str):
    a, b = np.searchsorted(rec.spike_times, [start, stop], side="left")
    t, u = rec.spike_times[a:b], rec.unit_ids[a:b]
    trains = [t[u == k] for k in units]
    ax.eventplot(trains, lineoffsets=np.arange(len(units)), linelengths=0.8, colors=color, linewidths=0.8)
    ax.set_yticks(np.arange(len(units)))
    ax.set_yticklabels([_unit_label(rec, k) for k in units], fontsize=7)
    ax.set_ylim(-0.6, len(units) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(start, stop)
    ax.set_ylabel("unit")
    ax.set_title(title, fontsize=9, loc="left")


#: most units :func:`plot_fidelity` draws (a raster row each) ...
MAX_FIDELITY_UNITS = 100
#: ... and most rate panels (one per unit, for the first rows of the rasters)
MAX_RATE_PANELS = 12


def plot_fidelity(real: SpikeRecording, generated: SpikeRecording, path=None, units: Sequence[int] | None = None,
                  n_units: int = 6, bin_size: float | None = None, duration: float = 5.0,
                  min_trial_coverage: float = 0.95, overwrite: bool = False) -> Figure:
    """Recorded vs generated spikes: rasters and PSTH (or rate) overlays for a few units.

    Top: raster of the recorded spikes and raster of the generated spikes of the chosen units
    over one stretch of ``duration`` s of the generated support: the first one, from the
    longest contiguous segment to the shortest, in which a unit (of ``units``, when given) has a
    recorded spike, else a generated one, else the longest segment's first ``duration`` s (with
    trials, a segment is usually one trial: the first trial where a unit fires). Below, one panel per unit
    (the first :data:`MAX_RATE_PANELS` units of the rasters when there are more, which the title
    says): recorded (black) and generated (orange) firing
    rate, Hz: the trial-aligned PSTH (:func:`~hf_neuroformer.metrics.fidelity.trial_psth`)
    over the real recording's trials that the support covers
    (:func:`~hf_neuroformer.metrics.fidelity.usable_trials`), when there are any; otherwise the
    binned rate over time on the raster's stretch (a single bin, e.g. one 0.1 s window at 0.1 s bins,
    drawn as dots). The rate axes start at 0 Hz, so that the gap between two rates is drawn
    against their size, not against their range. Unit names longer than
    :data:`UNIT_LABEL_CHARS` characters (areas: :data:`AREA_LABEL_CHARS`) are cut in the middle
    in the labels (``probe00_shan…cluster0001``).

    Args:
        real: the recorded spikes.
        generated: the generated spikes (its ``support`` rows are the generated windows).
        path: when given, the figure is also written there (format from the suffix, atomic); checked
            before drawing (:func:`check_figure_path`).
        overwrite: replace a file already at ``path`` (default False: ``FileExistsError``).
        units: unit indices to show; default up to ``n_units`` units that fire in the rasters'
            stretch (so no raster row is empty in both panels): first those with recorded spikes
            there, then those with generated spikes only, each group ordered by recorded spikes
            inside the support (with trials: the PSTHs' trials) or inside the stretch (without),
            most first. Fewer than ``n_units`` when fewer fire there (the title says so); when
            none does, the ``n_units`` most active (the title says that none of those shown
            fires there, as it does for ``units`` given).
        n_units: how many units to choose when ``units`` is not given, at most
            :data:`MAX_FIDELITY_UNITS` (as ``units``: a figure of 2000 units took over 10 min).
        bin_size: PSTH / rate bin width, s; default 0.01 s for trial PSTHs (a tenth of the
            covered trial length when that is shorter than 0.1 s), 0.1 s for rates over time.
        duration: length of the raster (and rate-over-time) stretch, s.
        min_trial_coverage: see :func:`~hf_neuroformer.metrics.fidelity.usable_trials`.

    Returns:
        the :class:`matplotlib.figure.Figure` (Agg canvas; not registered with pyplot).

    Raises:
        FidelityInputError: the recordings are not comparable (different units, no support, ...).
        PlottingInputError: bad ``units``, ``n_units``, ``bin_size`` or ``duration``; more than
            :data:`MAX_FIDELITY_UNITS` units asked for.
    """
    if path is not None:  # before drawing: a folder, a missing folder, a bad suffix or a file kept
        path = check_figure_path(path, overwrite)
    _check_pair(real, generated)
    # one raster row (and, for the first ones, a rate panel) per unit: 60 units drew an 87-inch figure in
    # 7.5 s, and 2000 ran for over 10 min
    units = None if units is None else list(units)  # read more than once below
    asked = ("units", len(units)) if units is not None else ("n_units", n_units)
    if is_real_number(asked[1]) and asked[1] > MAX_FIDELITY_UNITS:
        raise PlottingInputError(f"{asked[0]}: expected at most {MAX_FIDELITY_UNITS} units (one raster row each), "
                                 f"got {asked[1]}")
    if not (np.isfinite(duration) and duration > 0):
        raise PlottingInputError(f"duration: expected a positive number of seconds, got {duration}")
    if bin_size is not None and not (np.isfinite(bin_size) and bin_size > 0):
        raise PlottingInputError(f"bin_size: expected a positive number of seconds, got {bin_size}")
    support = generated.support
    segs = support_segments(support)
    if units is not None:  # checked before the stretch search reads them
        _choose_units(real, generated, segs[:1], segs[:1], units, n_units)
    start, stop = _raster_stretch(real, generated, segs, float(duration), units)

    used, length = np.zeros((0, 2)), float("nan")
    if real.trials is not None and len(real.trials):
        used, length, _, _ = usable_trials(real.trials, support, min_trial_coverage, "min_trial_coverage")
    # the units to show fire in the stretch the rasters draw (one trial, with trials: the most
    # active over all the trials could be silent in it, an empty row), ranked by their activity
    # over the trials the PSTHs average, else over the stretch the rates show
    stretch = np.array([[start, stop]])
    sel = _choose_units(real, generated, support if len(used) else stretch, stretch, units, n_units)
    panels = sel[:MAX_RATE_PANELS]  # the first rows of the rasters (most recorded spikes first, when chosen)
    n_cols = min(3, len(panels))
    n_rows = int(np.ceil(len(panels) / n_cols))
    width = 4.0 * n_cols
    row = 0.35 if len(sel) <= 24 else 0.35 * 24 / len(sel)  # raster rows thinner beyond 24 units (8.4 in)
    fig = Figure(figsize=(width, 2.2 * n_rows + row * len(sel) * 2 + 1.2), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2 + n_rows, n_cols, height_ratios=[row * len(sel) + 0.6] * 2 + [2.0] * n_rows)
    ax_r = fig.add_subplot(grid[0, :])
    ax_g = fig.add_subplot(grid[1, :], sharex=ax_r)
    _raster(ax_r, real, sel, start, stop, REAL_COLOR, "recorded")
    _raster(ax_g, generated, sel, start, stop, GENERATED_COLOR, "generated")
    ax_g.set_xlabel("time (s)")

    if len(used):
        # default 10 ms, finer for trials shorter than 0.1 s (a 15-ms trial had no 2 bins of 10 ms)
        bs = min(0.01, length / 10) if bin_size is None else float(bin_size)
        # the PSTH's own rule (trial_psth: n_full_bins, with its 1e-9 guard): 'length < 2 * bs' refused 0.05 s
        # bins in trials covered for 0.09999999999999787 s, which psth_correlation scores as 2 bins
        if n_full_bins(length, bs) < 2:
            raise PlottingInputError(f"bin_size: expected at least 2 bins of {bs} s in the covered trial length ({length} s)")
        pr, pg = trial_psth(real, used, bs, length), trial_psth(generated, used, bs, length)
        x = (np.arange(pr.shape[0]) + 0.5) * bs
        xlabel = "time from trial start (s)"
        # trials of several lengths are all cut to the shortest covered one: say so, since the
        # curves stop there (mixed 1.5-8.5 s Zheng trials drew PSTHs of 1.5 s under a plain title)
        longest = float(np.max(used[:, 1] - used[:, 0]))
        what = (f"PSTH over {len(used)} trials, {bs * 1e3:g} ms bins"
                + (f", their first {length:.2f} s (the shortest covered; trials last up to {longest:.2f} s)"
                   if longest > 1.1 * length else ""))
    else:
        bs = 0.1 if bin_size is None else float(bin_size)
        bins, _ = _tile(np.array([[start, stop]]), bs)
        pr = _counts_in_sorted_bins(real, bins) / bs
        pg = _counts_in_sorted_bins(generated, bins) / bs
        x = bins.mean(1) if len(bins) else np.zeros(0)
        xlabel = "time (s)"
        what = f"binned rate, {bs * 1e3:g} ms bins (no trials inside the generated windows)"
        if not len(bins):  # a stretch shorter than one bin: empty rate panels, without a word, were drawn
            what += f"; no whole bin in the rasters' {stop - start:g} s, so no rate is drawn"
    # a line through one point draws nothing: the rates of one bin (one 0.1 s generated window at the default
    # 0.1 s bin) were computed but the panels showed bare axes, as if neither recording had a rate there
    # (the recorded dot larger, as its line is wider, so that an equal generated rate does not hide it)
    dots = [{"marker": "o", "ms": ms} if len(x) == 1 else {} for ms in (7, 3.5)]
    for i, u in enumerate(panels):
        ax = fig.add_subplot(grid[2 + i // n_cols, i % n_cols])
        ax.plot(x, pr[:, u], color=REAL_COLOR, lw=1.8, label="recorded", **dots[0])
        ax.plot(x, pg[:, u], color=GENERATED_COLOR, lw=1.0, label="generated", **dots[1])
        ax.set_title(_unit_label(real, u), fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("rate (Hz)", fontsize=8)
        # from 0 Hz: autoscaled to the data's range, 20 against 22 Hz filled the panel as if they were far apart
        # (and a rate of 0 sat above the axis' foot); the top stays autoscaled, above the highest rate
        ax.set_ylim(bottom=0.0)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7, frameon=False)
    few = (f" (of {int(n_units)} asked: only {len(sel)} fire in the rasters' stretch)"
           if units is None and len(sel) < min(int(n_units), real.n_units) else "")
    if not any(_counts_in_sorted_bins(r, stretch)[0, sel].any() for r in (real, generated)):
        # empty rasters say why, or they look like a bug (a silent model on sparse data)
        few = " (none of them fires in the rasters' stretch)"
    if len(panels) < len(sel):
        few += f", rate panels for the first {len(panels)} rows"  # no "; ": evaluate reads the bins after the first one
    title = f"recorded vs generated: {len(sel)} unit{'' if len(sel) == 1 else 's'}{few}; {what}"
    fig.suptitle(title, fontsize=10)
    # one unit gives a 4-inch figure, and the one-line title (about 0.08 in per character at 10 pt)
    # ran off both edges of it, cut in the saved file: widen the figure to hold it
    fig.set_size_inches(max(width, 0.08 * len(title) + 0.4), fig.get_size_inches()[1])
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig


def plot_training_curves(log: Sequence[dict], path=None, best_step: int | None = None,
                         selection: str = "lowest validation loss", contrastive_loss_weight: float = 0.0,
                         overwrite: bool = False) -> Figure:
    """Loss curves of a ``train`` run: what ``training_log.json`` holds, drawn.

    With a validation split: left, the running training loss (exponential moving average of the
    step losses, weight 0.05 per step, bias-corrected, as the progress bar shows it:
    :func:`~hf_neuroformer.training.running_loss`) and the validation loss (the
    training objective on the validation windows: unit-id NLL over every label, EOS included,
    plus the weighted dt NLL), nats; right, the validation unit-id and dt NLL per spike token,
    nats. Without one (entries without validation keys, as ``train`` writes when
    ``split_fractions`` gives validation 0): the running training loss alone, one panel whose
    title says there was no validation split. A dashed line marks ``best_step`` when given.
    Values that are not finite (NaN or infinite: a diverged run; ``None`` in the log) cannot be
    drawn: the figure's title counts them per curve.

    Args:
        log: the entries of ``training_log.json``: dicts with ``step`` and ``train_loss``, and
            either all of ``validation/loss``, ``validation/id_nll`` and ``validation/dt_nll``
            in every entry (a run with a validation split) or none of them in any (a run
            without). Other keys (``epoch``) are ignored.
        path: when given, the figure is also written there (format from the suffix, atomic); checked
            before drawing (:func:`check_figure_path`).
        overwrite: replace a file already at ``path`` (default False: ``FileExistsError``).
        best_step: the step of the kept checkpoint (``metrics.json`` ``best_step``); None: no mark
            (``train`` passes None without a validation split, where no step was chosen).
        selection: how that step was chosen, for the legend.
        contrastive_loss_weight: the run's ``config.contrastive_loss_weight``; when > 0 the
            training loss holds that weight times the contrastive (InfoNCE) loss and the
            validation loss does not (it scores the next spike only), and the legend says so:
            the two curves are not on one scale.

    Returns:
        the :class:`matplotlib.figure.Figure` (Agg canvas; not registered with pyplot).

    Raises:
        PlottingInputError: ``log`` is empty, an entry lacks ``step`` or ``train_loss``, or some
            entries have validation keys and an entry lacks one of them (named).
    """
    if path is not None:  # before drawing: a folder, a missing folder, a bad suffix or a file kept
        path = check_figure_path(path, overwrite)
    base, val_keys = ("step", "train_loss"), ("validation/loss", "validation/id_nll", "validation/dt_nll")
    if not len(log):
        raise PlottingInputError("log: expected at least one entry (training_log.json is empty)")
    has_val = any(k in entry for entry in log for k in val_keys)
    keys = base + val_keys if has_val else base
    for i, entry in enumerate(log):
        missing = [k for k in keys if k not in entry]
        if missing:
            raise PlottingInputError(f"log[{i}]: missing {missing}; expected the keys {list(keys)}")
    col = {k: np.array([float(e[k]) if e[k] is not None else np.nan for e in log]) for k in keys}
    fig = Figure(figsize=(9.0, 3.4) if has_val else (5.0, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    if has_val:
        ax_l, ax_r = fig.subplots(1, 2, sharex=True)
        axes = (ax_l, ax_r)
    else:
        ax_l = fig.subplots(1, 1)
        axes = (ax_l,)
    contrastive = contrastive_loss_weight > 0
    train_label = "train (running mean" + (f", + {contrastive_loss_weight:g} x contrastive InfoNCE)" if contrastive
                                          else ")")
    ax_l.plot(col["step"], col["train_loss"], color="tab:blue", marker=".", label=train_label)
    ax_l.set_ylabel("loss (nats)")
    if has_val:
        ax_l.plot(col["step"], col["validation/loss"], color="tab:red", marker=".",
                  label="validation (next spike only, no contrastive term)" if contrastive else "validation")
        ax_l.set_title("training objective", fontsize=10)
        ax_r.plot(col["step"], col["validation/id_nll"], color="tab:purple", marker=".", label="unit id")
        ax_r.plot(col["step"], col["validation/dt_nll"], color="tab:green", marker=".", label="dt")
        ax_r.set_ylabel("validation NLL (nats / spike)")
        ax_r.set_title("validation, per spike token", fontsize=10)
    else:
        ax_l.set_title("training objective (no validation split)", fontsize=10)
    for ax in axes:
        if best_step is not None:
            ax.axvline(best_step, color="0.4", ls="--", lw=1, label=f"kept: step {best_step} ({selection})")
        ax.set_xlabel("optimisation step")
        ax.legend(fontsize=7, frameon=True, framealpha=0.8, loc="best")
        if len(log) == 1:  # one point: from step 0, not a +-1.5-step window around it
            ax.set_xlim(0, max(1.0, 1.05 * float(col["step"][0])))
        elif not any(np.isfinite(ln.get_ydata()).any() for ln in ax.get_lines() if ln.get_label()[:5] != "kept:"):
            # nothing finite to draw: the logged steps, not a window around the kept-step mark
            ax.set_xlim(float(col["step"].min()), float(col["step"].max()))
    notes = []
    if len(log) == 1:
        notes.append(f"one {'validation pass' if has_val else 'logged step'} (step {int(col['step'][0])}): "
                     "training.eval_every sets how often (default once per epoch)")
    # NaN / infinite values (a diverged run) leave gaps or empty axes that matplotlib draws without a word
    bad = [f"{k} at {n} of {len(log)} step{'' if len(log) == 1 else 's'}"
           for k in keys[1:] if (n := int((~np.isfinite(col[k])).sum()))]
    if bad:
        # wrapped to the figure's width (about 17 characters an inch at 8 pt), so no count is cut off
        notes.append(textwrap.fill("not finite, not drawn (training diverged?): " + "; ".join(bad),
                                   width=int(17 * fig.get_size_inches()[0])))
    if notes:
        fig.suptitle("\n".join(notes), fontsize=8)
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig


def _first_stretch_with_spikes(rec: SpikeRecording, units: np.ndarray, stretch: float) -> tuple[float, float]:
    """``(start, stop)``, s: the stretch of ``stretch`` s holding the first spike of ``units`` inside
    ``rec.support``, stretches cut from its interval's start; the first interval's first stretch when
    those units have no spike there. The stretch goes on across the gaps to the intervals after
    (short of the last interval's end only): a support of short intervals (the Allen reader's
    0.1-s trials, an epoch of trials) drew one interval alone, a 0.1-s raster of one trial."""
    sup = np.asarray(rec.support, dtype=np.float64)
    end = float(sup[:, 1].max())
    t = rec.spike_times[np.isin(rec.unit_ids, units)]
    for lo, hi in sup:  # intervals in time order
        i = np.searchsorted(t, lo, side="left")
        if i < t.size and t[i] < hi:
            a = lo + stretch * np.floor((t[i] - lo) / stretch)
            return float(a), float(min(end, a + stretch))
    return float(sup[0, 0]), float(min(end, sup[0, 0] + stretch))


def _unrecorded_gaps(rec: SpikeRecording, start: float, stop: float) -> np.ndarray:
    """``(n, 2)`` float64: the stretches of ``[start, stop)`` between the intervals of ``rec.support``
    (touching ones merged, :func:`~hf_neuroformer.windows.recorded_stretches`): time not recorded."""
    from .windows import recorded_stretches

    sup = recorded_stretches(np.asarray(rec.support, dtype=np.float64))
    gaps = np.stack([sup[:-1, 1], sup[1:, 0]], 1)
    gaps = np.clip(gaps, start, stop)
    return gaps[gaps[:, 1] > gaps[:, 0]]


def plot_recording(recording: SpikeRecording, config=None, path=None, stretch: float = 10.0,
                   max_units: int = 40, overwrite: bool = False) -> Figure:
    """What ``neuroformer inspect --figure`` draws: a raster, the firing rates and the spikes per
    training window against the model's token budget.

    Top: raster of the ``max_units`` most active units (most active on top) over ``stretch``
    seconds: the first of the consecutive stretches cut from each support interval's start in
    which one of them fires (a sort whose first spike comes long after sample 0 drew an empty
    raster), or the first interval's start when none fires. It runs on across the gaps between
    support intervals (short trials: several trials, not the first alone), which are shaded grey
    as not recorded. Bottom left: each unit's
    mean firing rate (Hz, :meth:`SpikeRecording.firing_rates`), sorted. Bottom right: histogram
    of the spikes per current window and per past window of the training split
    (:func:`hf_neuroformer.inspection.split_window_counts`), with the budget
    (``max_window_length - 2`` and ``max_past_length - 1`` spikes) marked; when training would
    refuse the recording, that panel gives the reason instead.

    Args:
        recording: the recording.
        config: :class:`~hf_neuroformer.configuration_neuroformer.NeuroformerConfig` of the
            windows; default ``NeuroformerConfig()``.
        path: when given, the figure is also written there (format from the suffix, atomic); checked
            before drawing (:func:`check_figure_path`).
        overwrite: replace a file already at ``path`` (default False: ``FileExistsError``).
        stretch: raster length, s, > 0.
        max_units: units in the raster, an integer >= 1.

    Returns:
        the :class:`matplotlib.figure.Figure` (Agg canvas; not registered with pyplot).

    Raises:
        PlottingInputError: ``stretch`` not a positive number, ``max_units`` not an integer
            >= 1, or a recording without units or without support.
    """
    if path is not None:  # before drawing: a folder, a missing folder, a bad suffix or a file kept
        path = check_figure_path(path, overwrite)
    from .configuration_neuroformer import NeuroformerConfig
    from .inspection import split_window_counts

    if not (is_finite_number(stretch) and stretch > 0):
        raise PlottingInputError(f"stretch: expected a positive number of seconds, got {stretch!r}")
    if not is_whole_number(max_units) or max_units < 1:
        raise PlottingInputError(f"max_units: expected an integer >= 1, got {max_units!r}")
    if recording.n_units == 0 or len(recording.support) == 0:
        raise PlottingInputError("recording: expected units and a time domain (nothing to draw)")
    config = NeuroformerConfig() if config is None else config
    rates = recording.firing_rates()
    fig = Figure(figsize=(10.0, 7.0), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.4, 1.0])
    ax_r = fig.add_subplot(grid[0, :])
    units = np.argsort(-rates, kind="stable")[:max_units]
    a, b = _first_stretch_with_spikes(recording, units, float(stretch))
    shown = ("its one unit" if recording.n_units == 1 else
             f"{len(units)} most active of {recording.n_units} units (firing rate over the whole recording, highest "
             "on top)")  # '1 most active of 1 units (..., highest on top)' for a one-unit recording
    gaps = _unrecorded_gaps(recording, a, b)
    n_in = int(np.sum((recording.support[:, 0] < b) & (recording.support[:, 1] > a)))
    where = f"\n{n_in} intervals of the time support; grey: time not recorded" if len(gaps) else ""
    _raster(ax_r, recording, units, a, b, REAL_COLOR, f"{recording.session}: {shown}, {a:.2f}-{b:.2f} s{where}")
    for g0, g1 in gaps:
        ax_r.axvspan(g0, g1, color="0.9", lw=0, zorder=0)
    ax_r.set_xlabel("time (s)")
    ax_f = fig.add_subplot(grid[1, 0])
    ax_f.plot(np.arange(recording.n_units), np.sort(rates)[::-1], color="tab:blue", marker="." if
              recording.n_units <= 100 else None)
    ax_f.set_xlabel("unit (sorted by firing rate)")
    ax_f.set_ylabel("firing rate (Hz)")
    silent = int(np.sum(rates == 0))
    ax_f.set_title(f"median {np.median(rates):.2f} Hz; {silent} unit{'' if silent == 1 else 's'} without spikes",
                   fontsize=9, loc="left")
    ax_w = fig.add_subplot(grid[1, 1])
    try:
        _, counts = split_window_counts(recording, config)
    except ValueError as err:
        ax_w.axis("off")
        ax_w.text(0, 1, "training would refuse this recording:\n" + str(err), va="top", ha="left", fontsize=7,
                  wrap=True, transform=ax_w.transAxes)
    else:
        n, p = counts["train"]
        cap, pcap = config.max_window_length - 2, config.max_past_length - 1
        top = max(int(n.max(initial=0)), int(p.max(initial=0)), cap, pcap) + 1
        bins = np.linspace(0, top, min(top, 60) + 1)
        ax_w.hist(n, bins=bins, color="tab:blue", alpha=0.6, label=f"current window ({config.current_window:g} s)")
        ax_w.hist(p, bins=bins, color="tab:gray", alpha=0.5, label=f"past window ({config.past_window:g} s)")
        ax_w.axvline(cap, color="tab:blue", ls="--", lw=1, label=f"budget: {cap} (max_window_length - 2)")
        ax_w.axvline(pcap, color="0.3", ls=":", lw=1, label=f"past budget: {pcap} (max_past_length - 1)")
        ax_w.set_xlabel("spikes per window (training split)")
        ax_w.set_ylabel("windows")
        cut = int(np.sum(np.maximum(n - cap, 0)))
        ax_w.set_title(f"{n.size} training windows; {cut} of {int(n.sum())} spikes over the budget", fontsize=9,
                       loc="left")
        ax_w.legend(fontsize=7, loc="upper right")  # "best" searched every bar: slow, and matplotlib warned
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig


def _joined_blocks(t: np.ndarray):
    """Positions on a time axis that skips the long gaps between blocks of windows.

    ``t``: sorted window starts, s. A gap is long when consecutive starts lie more than 10
    median steps apart (shorter ones, e.g. windows left out by a mask, stay as they are and only
    break the line). When the long gaps take more time than the rest of the span (test blocks
    spread over a long recording), they are cut: the positions become seconds from the first
    window with each long gap shrunk to 5 steps. Returns ``(x, joins)``: ``x`` the positions
    (``t`` itself when nothing is cut) and ``joins`` a list of ``(x position, start time of the
    next window)`` at every cut (empty when none)."""
    if len(t) < 2:
        return t, []
    step = float(np.median(np.diff(t)))
    gaps = np.diff(t)
    long = np.flatnonzero(gaps > 10 * step)
    cut_time = float(np.sum(gaps[long] - 5 * step))
    if not len(long) or cut_time <= (t[-1] - t[0]) - cut_time:
        return t, []
    shrink = np.zeros(len(t))
    shrink[long + 1] = gaps[long] - 5 * step
    x = t - t[0] - np.cumsum(shrink)
    joins = [(float(x[i + 1] - 2.5 * step), float(t[i + 1])) for i in long]
    return x, joins


def _break_at_gaps(t: np.ndarray, *ys: np.ndarray):
    """``t`` and ``ys`` with a NaN row inserted wherever consecutive ``t`` are more than 1.5
    median steps apart, so a line plot does not join separate test blocks."""
    if len(t) < 2:
        return (t, *ys)
    step = np.median(np.diff(t))
    cut = np.flatnonzero(np.diff(t) > 1.5 * step) + 1
    return tuple(np.insert(np.asarray(a, dtype=np.float64), cut, np.nan) for a in (t, *ys))


def _circular_low(recorded_range, k: int) -> float:
    """Lower end, degrees, of the range :func:`plot_decoding` draws ``targets[k]`` in (see there)."""
    if recorded_range is None:
        return -180.0
    try:
        pair = [float(v) for v in recorded_range]
    except (TypeError, ValueError):
        pair = None
    if pair not in ([0.0, 360.0], [-180.0, 180.0]):
        raise PlottingInputError(f"targets[{k}].recorded_range_deg: expected [0, 360] (angles recorded in [0, 2 pi)) "
                                 f"or [-180, 180] (in [-pi, pi)), got {recorded_range!r}; see "
                                 "hf_neuroformer.decoding.circular_range_deg")
    return pair[0]


def plot_decoding(window_start: np.ndarray, labels: np.ndarray, predictions: np.ndarray, targets: Sequence[dict],
                  metrics: dict | None = None, split: str = "test", path=None,
                  unknown_classes: np.ndarray | None = None, overwrite: bool = False) -> Figure:
    """Decoded against recorded behaviour, one panel per target.

    Regression: the target over time, recorded (black) and decoded (colour), a line per
    contiguous block of windows. Circular: the same in degrees, as points (no lines across the
    wrap), in the convention the angle is recorded in, the target's ``recorded_range_deg``
    (:func:`~hf_neuroformer.decoding.circular_range_deg` of the recording's raw values, saved in
    ``config.decoding_targets``): ``[0, 360]`` draws [0, 360) (an angle recorded in [0, 2 pi), as
    A2929's head direction), ``[-180, 180]`` or none (a model finetuned before it was saved)
    draws [-180, 180), the range the window labels, predictions and angular metrics are wrapped
    to. The values passed cannot tell the convention: they are wrapped to [-pi, pi) whatever it
    is. When the long gaps between blocks of windows take more time than the blocks,
    the time axis cuts them: seconds from the first window, dotted lines at the cuts labelled with
    the recording time after each. Classification: the confusion matrix, rows normalised to the recorded class
    (scikit-learn ``ConfusionMatrixDisplay``), so a decoder that always answers the majority class
    shows as one bright column.

    Args:
        window_start: ``(n,)`` float64 start of each decoded window, s.
        labels: ``(n, n_targets)`` recorded values in the targets' order (class indices for
            classification, radians for circular); NaN = undefined: the recorded line is broken
            there and the decoded value still drawn (regression, circular; the title counts the
            windows with a recorded value), the window is left out of a confusion matrix (a
            panel without any recorded class says so).
        predictions: ``(n, n_targets)`` decoded values, same units.
        targets: the ``config.decoding_targets`` dicts (``name``, ``kind``, ``classes``,
            circular: ``recorded_range_deg``), each optionally with ``unit`` (the behaviour
            series' unit, e.g. ``px``) for the y axis (``unit not recorded`` there when it is empty or absent).
        metrics: ``metrics.json`` of the run: ``<split>/<name>/r2``, ``.../mean_angular_error_deg``
            or ``.../balanced_accuracy`` go into the panel titles when present (NaN as ``n/a``;
            R² is NaN where the recorded target is constant over the windows).
        split: the split the windows come from, for the titles.
        path: when given, the figure is also written there (format from the suffix, atomic); checked
            before drawing (:func:`check_figure_path`).
        overwrite: replace a file already at ``path`` (default False: ``FileExistsError``).
        unknown_classes: optional ``(n, n_targets)`` bool, the windows whose recorded class is none
            of the decoder's classes (their ``labels`` are NaN): left out of the confusion matrix
            like the windows without a recorded class, but counted in its title.

    Returns:
        the :class:`matplotlib.figure.Figure` (Agg canvas; not registered with pyplot).

    Raises:
        PlottingInputError: shapes that do not match ``targets``, an unknown target kind, or a
            ``recorded_range_deg`` other than ``[0, 360]`` / ``[-180, 180]``.
    """
    if path is not None:  # before drawing: a folder, a missing folder, a bad suffix or a file kept
        path = check_figure_path(path, overwrite)
    from sklearn.metrics import ConfusionMatrixDisplay

    from .decoding import target_label
    from .metrics.decoding import wrap_angle

    t = np.asarray(window_start, dtype=np.float64)
    for field, given in (("labels", labels), ("predictions", predictions)):
        n_rows = len(np.asarray(given).reshape(-1)) if np.ndim(given) < 2 else np.shape(given)[0]
        if n_rows != len(t):  # reshape(len(t), -1) failed in numpy ("cannot reshape array of size 9"), naming no field
            raise PlottingInputError(f"{field}: expected one row per window ({len(t)} window_start values), got shape "
                                     f"{np.shape(given)}")
    y = np.asarray(labels, dtype=np.float64).reshape(len(t), -1) if len(t) else np.zeros((0, len(targets)))
    p = np.asarray(predictions, dtype=np.float64).reshape(len(t), -1) if len(t) else np.zeros((0, len(targets)))
    if y.shape != (len(t), len(targets)) or p.shape != y.shape:
        raise PlottingInputError(f"labels / predictions: expected shape ({len(t)}, {len(targets)}) for {len(t)} "
                                 f"windows and {len(targets)} targets, got {y.shape} and {p.shape}")
    unknown = np.zeros(y.shape, dtype=bool) if unknown_classes is None else np.asarray(unknown_classes, dtype=bool)
    if unknown.shape != y.shape:
        raise PlottingInputError(f"unknown_classes: expected shape {y.shape} (windows, targets), got {unknown.shape}")
    metrics = metrics or {}
    order = np.argsort(t, kind="stable")
    t, y, p, unknown = t[order], y[order], p[order], unknown[order]
    x_all, joins = _joined_blocks(t)  # a time axis without the long gaps between test blocks
    only_classes = bool(targets) and all(tg["kind"] == "classification" for tg in targets)
    fig = Figure(figsize=(5.5 if only_classes else 10.0, 2.9 * len(targets) + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    # one grid for every panel: time series span its row, a confusion matrix takes the left half
    # (panels on two grids were laid out independently, and a matrix was drawn over its neighbour)
    grid = fig.add_gridspec(len(targets), 1 if only_classes else 2) if len(targets) else None
    for k, target in enumerate(targets):
        name, kind = target_label(target["name"], target.get("column")), target["kind"]
        ok = np.isfinite(y[:, k]) & np.isfinite(p[:, k])
        decoded = np.isfinite(p[:, k])  # time series: every decoded window, the recorded line broken where NaN
        score = ""
        for key, label, fmt in (("r2", "R²", score_text), ("mean_angular_error_deg", "mean angular error", "{:.1f}°".format),
                                ("balanced_accuracy", "balanced accuracy", score_text)):
            v = metrics.get(f"{split}/{name}/{key}")
            if v is not None and np.isnan(v):  # undefined: say so ("R² nan" read as a failed run)
                score = f"; {label} n/a" + (" (constant recorded target)" if key == "r2" else "")
            elif v is not None:
                score = f"; {label} {fmt(v)}"
        n_shown = int(ok.sum()) if kind == "classification" else int(decoded.sum())
        recorded_note = "" if kind == "classification" or ok.sum() == n_shown else (
            f", {int(ok.sum())} with a recorded value")
        # windows whose recorded class the decoder does not know are left out of the matrix: counted here,
        # as decode's scores line counts them (the title read as if those windows did not exist)
        n_unknown = int((unknown[:, k] & ~ok).sum()) if kind == "classification" else 0
        if n_unknown:
            recorded_note = (f" (+{n_unknown} left out: recorded class none of the decoder's)")
        title = f"{name} ({kind}), {n_shown} {split} window{'' if n_shown == 1 else 's'}{recorded_note}{score}"
        if kind == "classification" and not ok.any():
            ax = fig.add_subplot(grid[k, 0])
            ax.text(0.5, 0.5, f"no recorded {name} in these windows:\nno confusion matrix", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8)
            ax.set_axis_off()
        elif kind == "classification":
            ax = fig.add_subplot(grid[k, 0])
            classes = [str(c) for c in target.get("classes", [])] or None
            n_cls = len(classes) if classes else int(max(y[ok, k].max(initial=0), p[ok, k].max(initial=0))) + 1
            ConfusionMatrixDisplay.from_predictions(
                y[ok, k].astype(np.int64), p[ok, k].astype(np.int64), labels=list(range(n_cls)),
                display_labels=classes, normalize="true", ax=ax, colorbar=False, values_format=".2f",
                im_kw={"vmin": 0.0, "vmax": 1.0})  # colours on the 0-1 scale of the fractions, not stretched
            ax.set_xlabel("decoded (each row: fractions of that recorded class)")
            ax.set_ylabel("recorded")
        elif kind in ("regression", "circular"):
            ax = fig.add_subplot(grid[k, :])
            tt, yy, pp = x_all[decoded], y[decoded, k], p[decoded, k]
            # no recorded value (decoded during sleep): no "recorded" entry in the legend ("_": left out)
            recorded_label = "recorded" if np.isfinite(yy).any() else "_recorded"
            if kind == "circular":
                # the recording's own convention (A2929's ry in [0, 2 pi), which other figures, e.g.
                # embed's colours, show that way), not the sign of the wrapped labels: [0, 360) was
                # chosen only when every label happened to lie in [0, pi)
                low = _circular_low(target.get("recorded_range_deg"), k)
                yy, pp = (np.degrees(wrap_angle(v)) % 360 if low == 0 else np.degrees(wrap_angle(v)) for v in (yy, pp))
                ax.plot(tt, yy, ".", color=REAL_COLOR, ms=3, label=recorded_label)
                ax.plot(tt, pp, ".", color=GENERATED_COLOR, ms=3, label="decoded")
                ax.set_ylim(low - 5, low + 365)
                ax.set_yticks(low + np.array([0, 90, 180, 270, 360]))
                ax.set_ylabel(f"{name} (deg)")
            else:
                tt, yy, pp = _break_at_gaps(tt, yy, pp)
                ax.plot(tt, yy, color=REAL_COLOR, lw=1.6, label=recorded_label)
                ax.plot(tt, pp, color=GENERATED_COLOR, lw=1.0, label="decoded")
                # a series without a unit in its file (A2929's position x, y, z): said so, not a bare name
                ax.set_ylabel(f"{name} ({unit_or_not_recorded(target.get('unit'))})")
            if joins:
                span = max(float(x_all[-1] - x_all[0]), 1e-9)
                last = -np.inf
                for xj, tj in joins:
                    ax.axvline(xj, color="0.5", ls=":", lw=1)
                    if (xj - last) / span > 0.06:  # labels of nearby cuts would overlap: the first one only
                        ax.annotate(f"{tj:.0f} s", (xj, 1.0), xycoords=("data", "axes fraction"), fontsize=6,
                                    color="0.35", ha="left", va="bottom")
                        last = xj
                ax.set_xlabel(f"time in the {split} windows (s) from the first one at {t[0]:.0f} s; long gaps cut at "
                              "the dotted lines (labels: recording time after the cut)")
            else:
                ax.set_xlabel("window start (s)")
            ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        else:
            raise PlottingInputError(f"targets[{k}].kind: expected regression, classification or circular, got {kind!r}")
        ax.set_title(title, fontsize=9)
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig


__all__ = ["PlottingInputError", "check_figure_path", "plot_decoding", "plot_fidelity", "plot_recording",
           "plot_training_curves", "save_figure",
           "UNIT_LABEL_CHARS", "AREA_LABEL_CHARS", "MAX_FIDELITY_UNITS", "MAX_RATE_PANELS", "MAX_LATENT_CATEGORIES",
           "plot_latents_3d"]


#: At most this many distinct colour values, each taken by at least two windows, are drawn as
#: categories by :func:`plot_latents_3d` (one colour and one tick per value).
MAX_LATENT_CATEGORIES = 10


def latent_colours_are_categorical(values, circular: bool = False) -> bool:
    """Whether :func:`plot_latents_3d` with ``categorical=None`` colours ``values`` by category:
    not ``circular``, and the finite values take 1 to :data:`MAX_LATENT_CATEGORIES` distinct
    values, each repeated on average (at most half as many distinct values as finite ones)."""
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values)
    n = np.unique(values[ok]).size
    return bool(not circular and 1 <= n <= MAX_LATENT_CATEGORIES and 2 * n <= ok.sum())


def plot_latents_3d(coords: np.ndarray, values: np.ndarray, label: str = "", circular: bool = False,
                    title: str = "", path=None, period: float = 2 * np.pi,
                    categorical: bool | None = None, overwrite: bool = False) -> Figure:
    """3D scatter of window latents (e.g. their first three principal components).

    Args:
        coords: ``(n_windows, 3)`` float coordinates.
        values: ``(n_windows,)`` float colour values (NaN: drawn as small black crosses, counted
            in the legend); with ``circular``, angles in any range (taken mod ``period``).
        label: colour-bar label (variable and unit).
        circular: use a cyclic colour map over ``[0, period)``; ``values`` are wrapped into it, so
            ``[-pi, pi)`` and ``[0, 2 pi)`` conventions give one colour per angle.
        path: when given, the figure is also written there (format from the suffix, atomic); checked
            before drawing (:func:`check_figure_path`).
        overwrite: replace a file already at ``path`` (default False: ``FileExistsError``).
        period: the angle's period with ``circular``: ``2 pi`` for radians (default), 360 for
            degrees (with ``2 pi`` a degree colour bar stopped at 6.28 and every angle above it
            took the end colour).
        categorical: one distinct colour and one colour-bar tick per value (e.g. a grating
            orientation 0/45/90/135, a trial's boundary type 1/2/3). ``None`` (default): when not
            ``circular`` and the finite values take at most :data:`MAX_LATENT_CATEGORIES` values,
            each repeated on average (at most half as many values as windows); on a continuous bar
            such values got nearby colours and ticks that none of them takes.

    Raises:
        PlottingInputError: ``coords`` not ``(n, 3)`` or ``values`` of another length; with
            ``circular``, a ``period`` that is not a positive finite number (0 wrapped every angle to
            NaN, drawn as "undefined" under a numpy warning).
    """
    if path is not None:  # before drawing: a folder, a missing folder, a bad suffix or a file kept
        path = check_figure_path(path, overwrite)
    if circular and not (is_finite_number(period) and period > 0):
        raise PlottingInputError(f"period: expected a positive finite number (2 pi for radians, 360 for degrees), "
                                 f"got {period!r}")
    coords = np.asarray(coords, dtype=float)
    values = np.asarray(values, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise PlottingInputError(f"coords: expected (n_windows, 3), got {coords.shape}")
    if values.shape != (coords.shape[0],):
        raise PlottingInputError(f"values: expected ({coords.shape[0]},) one per window, got {values.shape}")
    fig = Figure(figsize=(8, 6.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="3d")
    ok = np.isfinite(values)
    if (~ok).any():
        # small black crosses: light grey read as the near-white ends (0 and 2 pi) of the circular "twilight" map
        ax.scatter(*coords[~ok].T, s=10, c="black", marker="x", linewidths=0.6, alpha=0.8,
                   label=f"undefined ({int((~ok).sum())})")
        ax.legend(loc="upper left")
    levels = np.unique(values[ok])
    if categorical is None:
        categorical = latent_colours_are_categorical(values, circular)
    if categorical:
        import matplotlib
        from matplotlib.colors import BoundaryNorm, ListedColormap

        cmap = ListedColormap(matplotlib.colormaps["tab10"](np.arange(levels.size) % 10))
        sc = ax.scatter(*coords[ok].T, s=5, c=np.searchsorted(levels, values[ok]), cmap=cmap,
                        norm=BoundaryNorm(np.arange(levels.size + 1) - 0.5, levels.size))
        cb = fig.colorbar(sc, ax=ax, shrink=0.6, label=label, pad=0.12, ticks=np.arange(levels.size))
        cb.set_ticklabels([f"{v:g}" for v in levels])
    else:
        kw = dict(cmap="twilight", vmin=0.0, vmax=float(period)) if circular else dict(cmap="viridis")
        # an angle in [-pi, pi) (atan2's range) is the same angle as its value mod the period: below 0
        # the colour map clipped it, so every negative angle took the colour of 0
        c = np.mod(values[ok], float(period)) if circular else values[ok]
        sc = ax.scatter(*coords[ok].T, s=5, c=c, **kw)
        # the axis labels sit outside their tick labels (labelpad), and the colour bar further right
        # than the default so the "PC 3" label is not clipped under it
        fig.colorbar(sc, ax=ax, shrink=0.6, label=label, pad=0.12)
    ax.set_xlabel("PC 1", labelpad=10)
    ax.set_ylabel("PC 2", labelpad=10)
    ax.set_zlabel("PC 3", labelpad=10)
    ax.set_title(title, fontsize=9)
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig
