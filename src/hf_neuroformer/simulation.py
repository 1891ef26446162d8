"""Spiking networks with known connectivity (the built-in default data).

:func:`simulate_coupled_network` runs a discrete-time point-process GLM (a linear-nonlinear
Poisson network with spike-history coupling): unit ``i`` fires in bin ``t`` with probability
``1 - exp(-r_i(t) * bin_size)`` where

    r_i(t) = base_rate_i * exp( sum_j W[i, j] * h_j(t) + a_i * drive_{k(i)}(t) ),
    h_j(t) = sum over past spikes of unit j of exp(-(t - t_spike) / tau),

``W[i, j]`` the coupling from unit ``j`` to unit ``i`` (the known, directed connectivity,
self-inhibition on the diagonal for refractoriness) and ``drive_k`` slow Ornstein-Uhlenbeck
inputs, one per assembly ``k(i) = i mod n_assemblies``: which assembly is active changes over
seconds, so the past window tells which units fire next (as head-direction or place cells do). Brian2 networks with hub structure are a separate, later module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .recording import SpikeRecording


@dataclass
class SimulatedNetwork:
    """A simulated recording with its ground-truth wiring.

    Attributes:
        recording: the spikes (:class:`SpikeRecording`).
        weights: ``(n_units, n_units)`` float64, ``weights[i, j]`` = coupling from unit j to i
            (log-rate change per unit of the synaptic trace).
        base_rates: ``(n_units,)`` Hz.
    """

    recording: SpikeRecording
    weights: np.ndarray
    base_rates: np.ndarray


def simulate_coupled_network(
    n_units: int = 16,
    duration: float = 240.0,
    bin_size: float = 0.002,
    tau: float = 0.02,
    connection_prob: float = 0.2,
    coupling_strength: float = 0.8,
    refractory_strength: float = 3.0,
    drive_strength: float = 2.5,
    drive_timescale: float = 2.0,
    n_assemblies: int = 4,
    base_rate_range=(0.5, 3.0),
    seed: int = 0,
) -> SimulatedNetwork:
    """Simulate a seeded coupled GLM network.

    Args:
        n_units: number of units.
        duration: simulated time, s.
        bin_size: integration step, s (one spike per unit per bin at most).
        tau: decay time constant of the synaptic trace, s.
        connection_prob: probability of a directed connection j -> i (no self-connections).
        coupling_strength: scale of the connection weights (60 % excitatory, 40 % inhibitory).
        refractory_strength: self-inhibition ``-W[i, i]`` after each spike of unit i.
        drive_strength: loading of each unit on its assembly's slow drive (log-rate per unit
            of drive, drive has unit variance).
        drive_timescale: time constant of the Ornstein-Uhlenbeck drives, s.
        n_assemblies: number of independent drives (unit i follows drive i mod n_assemblies).
        base_rate_range: ``(low, high)`` baseline rates, Hz.
        seed: RNG seed; the same seed gives the same spikes and weights.

    Returns:
        :class:`SimulatedNetwork`, whose recording has ``time_domain=(0, duration)`` and
        session ``"simulated"``.

    Raises:
        ValueError: for non-positive sizes or durations.
    """
    if n_units < 1 or n_assemblies < 1 or not duration > 0 or not bin_size > 0 or not tau > 0:
        raise ValueError(
            f"simulate_coupled_network: expected n_units >= 1 and positive duration, bin_size, tau; got "
            f"{n_units}, {duration}, {bin_size}, {tau}"
        )
    rng = np.random.default_rng(seed)
    conn = rng.random((n_units, n_units)) < connection_prob
    np.fill_diagonal(conn, False)
    sign = np.where(rng.random((n_units, n_units)) < 0.6, 1.0, -1.0)
    weights = conn * sign * coupling_strength * rng.uniform(0.5, 1.5, (n_units, n_units))
    np.fill_diagonal(weights, -refractory_strength)  # self-inhibition: refractoriness, stability
    base = rng.uniform(*base_rate_range, n_units)
    loading = drive_strength * rng.uniform(0.7, 1.3, n_units)
    assembly = np.arange(n_units) % max(int(n_assemblies), 1)

    n_bins = int(round(duration / bin_size))
    decay = np.exp(-bin_size / tau)
    ou_a = np.exp(-bin_size / drive_timescale)
    ou_noise = rng.normal(0, np.sqrt(1 - ou_a**2), (n_bins, max(int(n_assemblies), 1)))
    uniforms = rng.random((n_bins, n_units))
    trace = np.zeros(n_units)
    drive = np.zeros(max(int(n_assemblies), 1))
    fired_bins, fired_units = [], []
    for t in range(n_bins):
        drive = ou_a * drive + ou_noise[t]
        rate = base * np.exp(np.clip(weights @ trace + loading * drive[assembly], -20, 3))
        p = -np.expm1(-rate * bin_size)
        spk = uniforms[t] < p
        trace *= decay
        if spk.any():
            idx = np.flatnonzero(spk)
            trace[idx] += 1.0
            fired_bins.append(np.full(idx.size, t))
            fired_units.append(idx)
    if fired_bins:
        b = np.concatenate(fired_bins)
        u = np.concatenate(fired_units)
    else:
        b = np.zeros(0, dtype=np.int64)
        u = np.zeros(0, dtype=np.int64)
    jitter = rng.random(b.size)
    times = (b + jitter) * bin_size
    rec = SpikeRecording.from_unsorted(
        times,
        u,
        unit_names=[f"unit{i}" for i in range(n_units)],
        time_domain=(0.0, float(n_bins * bin_size)),
        session="simulated",
    )
    return SimulatedNetwork(recording=rec, weights=weights, base_rates=base)


def default_recording(seed: int = 0) -> SpikeRecording:
    """The built-in default data: a 16-unit coupled network with 4 assemblies, 140 s
    (see the module docstring); sized so the default training budget runs in about 1.5 min on
    2 CPU cores."""
    return simulate_coupled_network(duration=140.0, seed=seed).recording


__all__ = ["SimulatedNetwork", "simulate_coupled_network", "default_recording"]
