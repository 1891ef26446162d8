"""Reader for spike-sorting output in the Phy / Kilosort folder format (via spikeinterface).

The folder (written by Kilosort 1-4 and curated in Phy; format as documented by Phy,
https://phy.readthedocs.io/en/latest/sorting_user_guide/, and read by
:func:`spikeinterface.extractors.read_phy`) holds:

``params.py``
    Python assignments; ``sample_rate`` (Hz) is the one used here.
``spike_times.npy``
    ``(n_spikes,)`` or ``(n_spikes, 1)`` uint64: each spike's sample index from the start of
    the recording.
``spike_clusters.npy``
    ``(n_spikes,)`` int: each spike's cluster id after curation (without it, Kilosort's
    ``spike_templates.npy``: the template ids before curation).
``cluster_group.tsv`` / ``cluster_info.tsv`` / ``cluster_KSLabel.tsv`` (optional)
    One row per cluster (``cluster_id``): ``group`` is the curator's label (``good``, ``mua``,
    ``noise``, ``unsorted``), ``KSLabel`` Kilosort's own.

spikeinterface reads the files; this module turns its sorting into a :class:`SpikeRecording`
and says what it leaves out.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, Optional, Tuple

import numpy as np

from ..recording import RecordingValidationError, SpikeRecording, names_without_whitespace
from .arrays import from_arrays

# the labels a curator gives in Phy (cluster_group.tsv's "group")
PHY_GROUPS = ("good", "mua", "noise", "unsorted")


def is_phy_folder(path) -> bool:
    """True for a folder that looks like Kilosort / Phy output: ``spike_times.npy`` with
    ``params.py``, ``spike_clusters.npy`` or ``spike_templates.npy`` (so that a folder lacking
    ``params.py`` gets :func:`read_phy`'s error naming it)."""
    path = Path(path)
    return (path / "spike_times.npy").is_file() and any(
        (path / f).is_file() for f in ("params.py", "spike_clusters.npy", "spike_templates.npy"))


def _groups(exclude_groups) -> Tuple[str, ...]:
    if isinstance(exclude_groups, str):
        return (exclude_groups,)
    groups = tuple(exclude_groups)
    bad = [g for g in groups if not isinstance(g, str)]
    if bad:
        raise ValueError(f"exclude_groups: expected cluster group names (strings such as 'noise'), got {bad!r}")
    return groups


def read_phy(folder, *, exclude_groups: Iterable[str] = ("noise",), session: Optional[str] = None,
             time_domain: Optional[Tuple[float, float]] = None) -> SpikeRecording:
    """Read a Kilosort / Phy output folder into a recording (spikeinterface's ``read_phy``).

    Args:
        folder: the folder holding ``params.py`` and ``spike_times.npy`` (see the module text).
        exclude_groups: curation labels (``cluster_group.tsv`` / ``cluster_info.tsv`` column
            ``group``, compared exactly) whose clusters are left out, with their spikes; default
            ``("noise",)``, as Phy's own exports do; ``()`` keeps every cluster. Clusters without
            a ``group`` label (no curation file) are kept.
        session: session name; default the folder's name (whitespace replaced by ``_``).
        time_domain: ``(start, stop)`` in seconds; default from sample 0 to one sample after
            the last spike of any cluster in ``spike_times.npy`` (the folder does not store the
            recording's length: pass ``(0, n_samples / sample_rate)`` for the whole recording).

    Returns:
        SpikeRecording: one unit per kept cluster, in ascending cluster id, named by its id
        (cluster 17 is unit ``"17"``); spike times ``sample_index / sample_rate`` seconds (float64).

    Warns:
        UserWarning: the number of clusters and spikes left out by ``exclude_groups`` (per
            group), and of spikes whose cluster no cluster table lists (spikeinterface leaves
            them out).

    Raises:
        ImportError: spikeinterface is not installed (``pip install "hf_neuroformer[phy]"``).
        FileNotFoundError: ``params.py`` or ``spike_times.npy`` is missing.
        ValueError: ``params.py`` has no positive ``sample_rate``; ``exclude_groups`` holds
            something other than strings.
        RecordingValidationError: the spikes are not a valid recording (see :func:`from_arrays`).
    """
    folder = Path(folder)
    missing = [f for f in ("params.py", "spike_times.npy") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"Phy / Kilosort folder {folder}: no {' or '.join(missing)} (expected the folder "
                                "Kilosort wrote, with params.py and spike_times.npy)")
    groups = _groups(exclude_groups)
    try:
        import spikeinterface.extractors as se
    except ImportError as e:
        raise ImportError('reading a Phy / Kilosort folder needs spikeinterface: pip install "hf_neuroformer[phy]" '
                          "(or pip install spikeinterface)") from e
    try:
        sorting = se.read_phy(folder, exclude_cluster_groups=None, load_all_cluster_properties=True)
    except KeyError as e:
        if e.args and e.args[0] == "sample_rate":
            raise ValueError(f"{folder / 'params.py'}: no sample_rate (expected a line such as "
                             "'sample_rate = 30000.0', in Hz)") from None
        raise
    fs = float(sorting.sampling_frequency)
    if not (np.isfinite(fs) and fs > 0):
        raise ValueError(f"{folder / 'params.py'}: sample_rate: expected a positive number of Hz, got {fs}")

    spikes = sorting.to_spike_vector()
    all_samples = np.load(folder / "spike_times.npy", mmap_mode="r")
    n_in_file = int(all_samples.size)
    if time_domain is None and n_in_file:
        time_domain = (0.0, (float(np.max(all_samples)) + 1.0) / fs)
    if spikes.size < n_in_file:
        warnings.warn(f"read_phy: left out {n_in_file - spikes.size} of {n_in_file} spikes whose cluster no cluster "
                      f"table of {folder} lists (cluster_group.tsv / cluster_info.tsv)")

    cluster_ids = np.asarray(sorting.unit_ids).astype(np.int64)
    counts = np.bincount(spikes["unit_index"], minlength=cluster_ids.size)
    keep = np.ones(cluster_ids.size, dtype=bool)
    quality = sorting.get_property("quality")
    if quality is not None and groups:
        quality = np.asarray(quality).astype(str)
        for g in groups:
            hit = quality == g
            if hit.any():
                warnings.warn(f"read_phy: left out {int(hit.sum())} clusters labelled {g!r} "
                              f"({int(counts[hit].sum())} spikes; exclude_groups=() keeps them)")
            keep &= ~hit
    if not keep.any():
        raise RecordingValidationError(f"read_phy: every cluster of {folder} is labelled one of {groups} "
                                       "(exclude_groups); no unit is left")

    order = np.argsort(cluster_ids, kind="stable")
    order = order[keep[order]]  # kept clusters, ascending id
    new_index = np.full(cluster_ids.size, -1, dtype=np.int64)
    new_index[order] = np.arange(order.size)
    units = new_index[spikes["unit_index"]]
    kept = units >= 0
    times = spikes["sample_index"][kept].astype(np.float64) / fs
    if session is None:
        session = names_without_whitespace([folder.resolve().name])[0][0]
    return from_arrays(times, units[kept], unit_names=[str(c) for c in cluster_ids[order]],
                       session=session, time_domain=time_domain)
