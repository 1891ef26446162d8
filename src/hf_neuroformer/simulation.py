"""Spiking networks with known connectivity (the built-in default data).

:func:`simulate_coupled_network` runs a discrete-time point-process GLM (a linear-nonlinear
Poisson network with spike-history coupling): unit ``i`` fires in bin ``t`` with probability
``1 - exp(-r_i(t) * bin_size)`` where

    r_i(t) = base_rate_i * exp( sum_j W[i, j] * h_j(t) + a_i * drive_{k(i)}(t) ),
    h_j(t) = sum over past spikes of unit j of exp(-(t - t_spike) / tau),

``W[i, j]`` the coupling from unit ``j`` to unit ``i`` (the known, directed connectivity,
self-inhibition on the diagonal for refractoriness) and ``drive_k`` slow Ornstein-Uhlenbeck
inputs, one per assembly ``k(i) = i mod n_assemblies``: which assembly is active changes over
seconds, so the past window tells which units fire next (as head-direction or place cells do).

Hub networks (issue 5) have a known directed wiring with a few *hub* units, each projecting
with strong excitatory weights onto a block of target units, and sparse weak random coupling
elsewhere (:func:`hub_layout`, parameters in :class:`HubNetworkParams`). Two simulators share
that layout:

* :func:`simulate_hub_network` (``kind="hub"``, the reference): a leaky integrate-and-fire
  network in brian2 (Stimberg, Brette & Goodman 2019, eLife 8:e47314) with current-based
  exponential synapses and independent background Poisson drive per unit.
* :func:`simulate_hub_glm` (``kind="hub-glm"``): the same layout as a point-process GLM
  (the discrete-time model above, without assembly drives), fast enough for tests.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import List, Optional, Tuple

import numpy as np

# the longest simulation neuroformer simulate accepts, and hub's largest seed: checked by the CLI before numpy is imported
from .argument_checks import DEFAULT_N_HUBS, DEFAULT_TARGETS_PER_HUB, MAX_BRIAN2_SEED, MAX_CLI_DURATION, \
    as_dataclass, check_hub_layout
from .configuration_neuroformer import is_finite_number
from .jsonio import json_safe
from .recording import SpikeRecording, count_noun

@dataclass
class SimulatedNetwork:
    """A simulated recording with its ground-truth wiring.

    Attributes:
        recording: the spikes (:class:`SpikeRecording`).
        weights: ``(n_units, n_units)`` float64, ``weights[i, j]`` = coupling from unit j to i:
            for ``kind="glm"`` the log-rate change per unit of the synaptic trace; for ``"hub"``
            and ``"hub-glm"`` the layout's synaptic weights in mV (:func:`hub_layout`; the
            hub-glm simulator scales them by ``glm_gain / hub_weight`` into log-rates).
        base_rates: ``(n_units,)`` Hz.
        hub_units: ``(n_hubs,)`` int64 indices of the hub units (empty for non-hub networks).
        edge_kind: ``(n_units, n_units)`` int8, ``edge_kind[i, j]`` = 0 no connection j -> i,
            1 hub edge, 2 weak random edge (zeros for networks without a layout).
        kind: which simulator made it (``"glm"``, ``"hub"``, ``"hub-glm"``).
        params: the simulator's parameters (JSON-able dict).
    """

    recording: SpikeRecording
    weights: np.ndarray
    base_rates: np.ndarray
    hub_units: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    edge_kind: Optional[np.ndarray] = None
    kind: str = "glm"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.hub_units = np.asarray(self.hub_units, dtype=np.int64).reshape(-1)
        if self.edge_kind is None:
            self.edge_kind = np.zeros(self.weights.shape, dtype=np.int8)
        self.edge_kind = np.asarray(self.edge_kind, dtype=np.int8)
        # as documented, a JSON-able dict: HubNetworkParams takes numpy integers (np.int64(20) units),
        # which asdict kept, so json.dumps(network.params) failed (only write_network cleaned them).
        # A value JSON cannot hold (an object, a set, a function) was turned into its text
        # ('<object object at 0x...>') and lost: it is refused, naming the key
        _check_json_params(self.params, "SimulatedNetwork.params")
        self.params = json_safe(self.params)


def _check_json_params(params, label: str) -> None:
    """Refuse ``params`` unless it is a dict that JSON can hold without loss: values None, bool,
    int, float, str (numpy scalars and arrays of those too), lists / tuples and dicts of them, at
    any depth. :func:`~hf_neuroformer.jsonio.json_safe` turned anything else into its ``str``.

    Raises:
        ValueError: ``label: expected a dict`` or ``label['key']...: expected a JSON value ...``
            naming the first such value by its path and type.
    """
    if not isinstance(params, dict):
        raise ValueError(f"{label}: expected a dict of the simulator's parameters (JSON values), got "
                         f"{type(params).__name__} {params!r:.80}")

    def walk(value, where):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}[{k!r}]")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufU":
                raise ValueError(f"{where}: expected a JSON value (a number, string, bool, None, or a list or dict "
                                 f"of them), got a numpy array of dtype {value.dtype}; it would be stored as text "
                                 "and lost")
        elif not (value is None or isinstance(value, (bool, int, float, str, np.bool_, np.integer, np.floating, np.str_))):
            raise ValueError(f"{where}: expected a JSON value (a number, string, bool, None, or a list or dict of "
                             f"them), got {type(value).__name__} {value!r:.80}; it would be stored as its text and "
                             "lost")

    walk(params, label)


def _whole_bins(duration: float, bin_size: float) -> int:
    """``duration / bin_size`` rounded to the nearest whole bin, halves up. Python's ``round`` rounds
    halves to even: 0.005 s at 2 ms bins simulated 0.004 s and 0.007 s simulated 0.008 s."""
    return int(np.floor(duration / bin_size + 0.5))


def _durations(requested: float, n_bins: int, bin_size: float) -> dict:
    """The ``params`` duration entries of a binned simulator: ``duration`` is the simulated span
    ``n_bins * bin_size`` (s, the recording's ``time_domain`` end, as the hub LIF kind records the
    span it ran), and ``duration_requested`` the requested value when whole bins changed it by more
    than 1 ns (``duration=1.0015`` at 2 ms bins simulates 1.002 s, and recorded 1.0015)."""
    simulated = float(n_bins * bin_size)
    out = {"duration": simulated}
    if abs(simulated - float(requested)) > 1e-9:
        out["duration_requested"] = float(requested)
    return out


def _check_glm_arguments(*, n_units, n_assemblies, duration, bin_size, tau, drive_timescale, connection_prob,
                         coupling_strength, refractory_strength, drive_strength, base_rate_range, seed) -> None:
    """The arguments of :func:`simulate_coupled_network`, each refused by name: one combined message
    named neither ``n_assemblies`` nor its value, ``n_units=2.5`` failed inside numpy, a
    ``drive_timescale`` of 0 divided by zero, a ``connection_prob`` of 2 or negative rates ran (the
    units with a negative rate never fired) and a reversed ``base_rate_range`` gave numpy's
    "high - low < 0"."""
    real = is_finite_number

    for name, v in (("n_units", n_units), ("n_assemblies", n_assemblies)):
        if not (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1):
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    if n_assemblies > n_units:
        # ran: drives n_units .. n_assemblies - 1 drove no unit (unit i follows drive i mod n_assemblies), and
        # params recorded n_assemblies drives that the spikes do not hold
        raise ValueError(f"n_assemblies: expected at most n_units={n_units} assemblies (unit i follows drive "
                         f"i mod n_assemblies, so the others would drive no unit), got {n_assemblies}")
    for name, v in (("duration", duration), ("bin_size", bin_size), ("tau", tau), ("drive_timescale", drive_timescale)):
        if not (real(v) and v > 0):
            raise ValueError(f"{name}: expected a finite number of seconds > 0, got {v!r}")
    if not (real(connection_prob) and 0 <= connection_prob <= 1):
        raise ValueError(f"connection_prob: expected a probability in [0, 1], got {connection_prob!r}")
    for name, v in (("coupling_strength", coupling_strength), ("refractory_strength", refractory_strength),
                    ("drive_strength", drive_strength)):
        if not real(v):
            raise ValueError(f"{name}: expected a finite number, got {v!r}")
    # a negative refractory_strength turned the self-inhibition into self-excitation (each spike raised
    # the unit's own rate: bursts at several times its rate), and a negative coupling_strength swapped
    # the 60 % excitatory / 40 % inhibitory split the docstring states; both ran without a word
    for name, v in (("coupling_strength", coupling_strength), ("refractory_strength", refractory_strength)):
        if v < 0:
            raise ValueError(f"{name}: expected a number >= 0, got {v!r}"
                             + (" (the self-inhibition after each spike; a negative one is self-excitation)"
                                if name == "refractory_strength" else
                                " (the scale of the weights; their signs are drawn 60 % excitatory)"))
    try:
        low, high = base_rate_range
    except (TypeError, ValueError):
        raise ValueError(f"base_rate_range: expected (low, high) rates in Hz, got {base_rate_range!r}") from None
    if not (real(low) and real(high) and 0 <= low <= high and high > 0):
        # (0, 0) ran and gave a recording without a single spike (every rate is base * exp(...) = 0)
        raise ValueError(f"base_rate_range: expected (low, high) finite rates in Hz with 0 <= low <= high and "
                         f"high > 0, got {base_rate_range!r}")
    # a negative seed failed inside numpy ("expected non-negative integer"), naming no argument
    if seed is not None and not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
        raise ValueError(f"seed: expected an integer >= 0 (or None: fresh entropy), got {seed!r}")


def _simulation_bar(kind: str, span: float, progress: bool):
    """A bar of simulated seconds (``progress_bar``: off with ``TQDM_DISABLE``)."""
    from .progress import progress_bar

    return progress_bar(total=float(span), desc=f"simulating {kind}", disable=not progress,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.4g}/{total:.4g} s simulated "
                                   "[{elapsed}<{remaining}]")


#: Bins between updates of the glm kinds' progress bars.
_BAR_BINS = 5000

#: Bins of uniforms the glm kinds draw at a time (bounds their memory: 1,000 x n_units x 8 bytes; the stream, so the spikes of a seed, do not depend on it).
_GLM_CHUNK = 1000


def _wiring_memory_bytes(n_units: int, n_bins: int = 0) -> int:
    """Bytes every kind holds while it wires a network of ``n_units``: the dense ``(n_units, n_units)``
    float64 matrices (weights, signs, magnitudes, random draws: about 6 at once) plus, for the kinds that
    draw uniforms a block of bins at a time (glm, hub-glm: ``n_bins`` > 0), one block of
    ``min(_GLM_CHUNK, n_bins) x n_units`` float64."""
    return 8 * (6 * n_units ** 2 + min(_GLM_CHUNK, n_bins) * n_units)


#: Peak bytes a spike of the hub kinds takes, measured with tracemalloc: simulate_hub_glm about 110-130
#: (its lists of bins and units, their concatenation, the times, the sort order and the sorted copies),
#: write_network about 165 beside the recording's 16; the estimate takes the larger, rounded up.
_SPIKE_BYTES = 192

#: Extra bytes per bin in which some unit fires: simulate_hub_glm keeps two small arrays for each
#: (about 450 bytes measured; what a spike costs when the units fire about once per bin).
_FIRING_BIN_BYTES = 512

#: Factor on the estimated rates of the hub kinds (:func:`_hub_unit_rates`) in the memory estimate.
_RATE_HEADROOM = 2.0

#: Hz: the rate the estimate gives a LIF unit whose mean drive stays below threshold (it fires on the
#: background's fluctuations: about 7 Hz for the default parameters).
_LIF_FLOOR_RATE = 10.0


def _hub_unit_rates(kind: str, params: "HubNetworkParams") -> tuple:
    """Estimated firing rates (Hz) of a hub network's units, ``((count, rate), ...)`` for its hubs, its
    hubs' targets and its other units, before :data:`_RATE_HEADROOM`: the memory estimate of
    :func:`_check_simulation_memory`. From the parameters alone (the layout is not drawn), meant to err
    high (the tests check it against runs); the recurrent excitation is followed to its fixed point (the
    rates of the inputs raise the rates, from the base rates up: strong or dense coupling runs away to the
    ceiling); the LIF kind leaves inhibition and refractoriness out.

    ``"hub-glm"``: the mean base rate (``glm_base_rate``, hubs ``glm_hub_rate``) times the mean gain of the
    input (Campbell's theorem: ``exp(sum of r_j tau_syn (e^g_j - 1))``, the weak edges at their mean gains, the
    hub edges at their largest, the unit's own self-inhibition), at most the simulator's clip ``e^3`` and one
    spike per bin.
    ``"hub"`` (LIF): the noise-free rate ``1 / (refractory + tau_m ln((mu - v_reset) / (mu - v_threshold)))``
    of a unit whose mean potential ``mu`` (rest, bias, background and the mean synaptic input) is raised by
    one standard deviation of the background and the biases; at least :data:`_LIF_FLOOR_RATE` (units below
    threshold fire on the fluctuations), at most ``1 / refractory``."""
    n, n_hubs = params.n_units, params.n_hubs
    n_targets = n_hubs * params.targets_per_hub if n_hubs else 0
    n_other = n - n_hubs - n_targets
    weak_inputs = params.random_prob * (n - 1)  # weak edges onto a unit, 80 % excitatory
    glm = kind == "hub-glm"
    if glm:
        cap = 1.0 / params.glm_bin_size
        base_hub, base = params.glm_hub_rate, params.glm_base_rate  # the mean of the drawn U(0.7, 1.3) x
        # Campbell: an input spike train of rate r through gain g multiplies the mean rate by about
        # exp(r tau_syn (e^g - 1)); weak edges: gain +-glm_gain * random_weight / hub_weight on average, 80 %
        # excitatory; hub edges: up to 1.2 x hub_weight (exponents capped at 50: no inf, times a zero rate NaN)
        g = min(params.glm_gain * params.random_weight / params.hub_weight, 50.0)
        per_weak = weak_inputs * params.tau_syn * (0.8 * np.expm1(g) + 0.2 * np.expm1(-g))
        per_hub = params.tau_syn * np.expm1(min(params.glm_gain * 1.2, 50.0))
        per_self = params.tau_syn * np.expm1(-params.glm_refractory)  # the unit's own self-inhibition

        def rate(r, log_gain):
            # with the self-inhibition of the unit's own spikes at the rate x it leaves, at most one spike a
            # bin: x = min(r exp(per_self x), cap), by bisection on [0, cap] (the right side falls as x grows)
            r = r * np.exp(min(log_gain, 3.0))
            low, high = 0.0, cap
            for _ in range(60):
                mid = (low + high) / 2
                low, high = (mid, high) if mid < min(r * np.exp(per_self * mid), cap) else (low, mid)
            return float(high)
    else:
        cap = 1.0 / max(params.refractory, params.dt)
        background = params.background_inputs * params.background_rate * params.background_weight * params.tau_m
        sd = np.sqrt(params.background_inputs * params.background_rate * params.background_weight ** 2
                     * params.tau_m / 2 + params.bias_std ** 2)
        mu = params.v_rest + params.bias_mean + background + sd
        per_weak = 0.6 * weak_inputs * params.random_weight * params.tau_syn  # mV per Hz: net 0.6 x random_weight
        per_hub = 1.2 * params.hub_weight * params.tau_syn

        def rate(m):
            if m <= params.v_threshold:
                return _LIF_FLOOR_RATE
            tonic = 1.0 / (params.refractory + params.tau_m * np.log((m - params.v_reset) / (m - params.v_threshold)))
            return float(min(max(tonic, _LIF_FLOOR_RATE), cap))
    hub, target, other = (base_hub, base, base) if glm else (_LIF_FLOOR_RATE,) * 3
    for _ in range(200):  # from below to the least fixed point (or the ceiling); converges in tens of steps
        mean_in = (n_hubs * hub + n_targets * target + n_other * other) / n
        if glm:
            new = (rate(base_hub, per_weak * mean_in), rate(base, per_weak * mean_in + per_hub * hub),
                   rate(base, per_weak * mean_in))
        else:
            new = (rate(mu + params.hub_bias + per_weak * mean_in), rate(mu + per_weak * mean_in + per_hub * hub),
                   rate(mu + per_weak * mean_in))
        if np.allclose(new, (hub, target, other), rtol=1e-6, atol=0):
            break
        hub, target, other = new
    return (n_hubs, hub), (n_targets, target), (n_other, other)


def _memory_size(n_bytes: float) -> str:
    """``n_bytes`` in GiB (MiB below 0.1 GiB), for the memory messages."""
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 / 10 else f"{n_bytes / 2**20:.1f} MiB"


def _check_simulation_memory(kind: str, n_units: int, duration: float, bin_size: float, *, n_assemblies: int = 1,
                             params: Optional["HubNetworkParams"] = None, memory: Optional[int] = None,
                             units_flag: str = "n_units", duration_flag: str = "duration") -> None:
    """Refuse a simulation whose memory estimate exceeds half of this machine's physical memory (``memory``
    bytes; default ``os.sysconf``, no check where the OS does not say): the one check of
    :func:`simulate_coupled_network`, :func:`simulate_hub_network`, :func:`simulate_hub_glm` and
    ``neuroformer simulate``, run before anything is drawn (and, from the command, before brian2 is imported).

    The estimate: the wiring (:func:`_wiring_memory_bytes`, every kind: --units 1000000 died in numpy's
    "Unable to allocate 7.28 TiB"), plus for ``kind="glm"`` the drives' noise drawn up front (``8 x n_bins x
    n_assemblies`` bytes: 1e8 s failed in numpy's bare MemoryError, "Unable to allocate 1.46 TiB"), for
    ``"hub"`` / ``"hub-glm"`` the spikes (:func:`_hub_unit_rates` x :data:`_RATE_HEADROOM` x ``duration``
    spikes of :data:`_SPIKE_BYTES`, plus :data:`_FIRING_BIN_BYTES` per firing bin of hub-glm).

    Args:
        kind: ``"glm"``, ``"hub"`` or ``"hub-glm"``.
        n_units: units. duration: s. bin_size: the kind's bin (glm, hub-glm) or step (hub), s.
        n_assemblies: the glm kind's drives. params: the hub kinds' :class:`HubNetworkParams` (required there).
        units_flag / duration_flag: how the caller names ``n_units`` / ``duration`` (``--units`` /
            ``--duration`` from the command).

    Raises:
        ValueError: ``n_units: ...`` when the wiring alone is too large, else ``duration: ...`` (naming
            ``n_units`` too for the hub kinds), each with the estimate, the memory and what fits.
    """
    if memory is None:
        from .stimuli import _memory_bytes

        memory = _memory_bytes()
    if memory is None:
        return
    n_bins = _whole_bins(duration, bin_size)
    wiring = _wiring_memory_bytes(n_units, 0 if kind == "hub" else n_bins)
    half = memory // 2
    have = f"more than half of this machine's {_memory_size(memory)} of memory"
    if wiring > half:
        raise ValueError(f"{units_flag}: {n_units} units need about {_memory_size(wiring)} for the dense units x units "
                         f"wiring matrices, {have}; simulate fewer units")
    if kind == "glm":
        per_duration = 8 * n_bins * n_assemblies
        if wiring + per_duration > half:
            raise ValueError(f"{duration_flag}: {duration:g} s is {n_bins:,} bins of {bin_size:g} s; the glm kind "
                             f"holds {n_assemblies} drives' noise for every bin up front, about "
                             f"{_memory_size(wiring + per_duration)} with the wiring of {count_noun(n_units, 'unit')}, "
                             f"{have}; simulate at most about {max(half - wiring, 0) / (8 * n_assemblies) * bin_size:.3g}"
                             " s per run (several seeds or runs for more)")
        return
    rate = _RATE_HEADROOM * sum(count * r for count, r in _hub_unit_rates(kind, params))  # Hz, all units
    # bytes per simulated second: the spikes, and for hub-glm two small arrays per bin with a spike
    per_second = _SPIKE_BYTES * rate + (_FIRING_BIN_BYTES * min(rate, 1.0 / bin_size) if kind == "hub-glm" else 0)
    spikes = rate * duration
    if wiring + per_second * duration > half:
        raise ValueError(f"{duration_flag}: {duration:g} s of {count_noun(n_units, 'unit')} ({kind}) is about "
                         f"{spikes:,.0f} spikes at the estimated rates ({rate / n_units:.3g} Hz a unit with "
                         f"{_RATE_HEADROOM:g}x headroom), about {_memory_size(wiring + per_second * duration)} with "
                         f"the wiring ({_SPIKE_BYTES} bytes a spike while they are sorted and written), {have}; "
                         f"simulate at most about {max(half - wiring, 0) / per_second:.3g} s per run (several seeds "
                         f"or runs for more) or fewer {units_flag}")


#: The session of :func:`simulate_coupled_network`'s recordings, and the units of :func:`default_recording`.
_COUPLED_SESSION = "simulated"
_DEFAULT_N_UNITS = 16


def _unit_names(n: int) -> List[str]:
    """``["unit0", ..., "unit<n-1>"]``: the unit names of the simulated recordings."""
    return [f"unit{i}" for i in range(n)]


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
    n_assemblies: Optional[int] = None,
    base_rate_range=(0.5, 3.0),
    seed: int = 0,
    progress: bool = False,
) -> SimulatedNetwork:
    """Simulate a seeded coupled GLM network.

    Args:
        n_units: number of units.
        duration: simulated time, s, rounded to whole ``bin_size`` bins (``params["duration"]``
            records the simulated span, ``params["duration_requested"]`` this value when they differ).
        bin_size: integration step, s (one spike per unit per bin at most).
        tau: decay time constant of the synaptic trace, s.
        connection_prob: probability of a directed connection j -> i (no self-connections).
        coupling_strength: scale of the connection weights (60 % excitatory, 40 % inhibitory), >= 0.
        refractory_strength: self-inhibition ``-W[i, i]`` after each spike of unit i, >= 0
            (0: none).
        drive_strength: loading of each unit on its assembly's slow drive (log-rate per unit
            of drive, drive has unit variance).
        drive_timescale: time constant of the Ornstein-Uhlenbeck drives, s.
        n_assemblies: number of independent drives (unit i follows drive i mod n_assemblies), at most
            ``n_units``; None (default): ``min(4, n_units)``. Until that default (it was 4 whatever
            ``n_units``), a network of 1-3 units drew 4 drives, one or more of them driving no unit,
            and recorded ``params["n_assemblies"] = 4``: for 1-3 units (``neuroformer simulate --kind
            glm --units 2`` or ``3`` too) a seed now gives other spikes than before, and records
            ``n_units`` assemblies; from 4 units up the spikes of a seed are unchanged.
        base_rate_range: ``(low, high)`` baseline rates, Hz.
        seed: RNG seed; the same seed gives the same spikes and weights.
        progress: show a bar of simulated seconds (``neuroformer simulate`` does).

    Source: the model of this module's docstring, a coupled point-process GLM of the kind used for
    population spike trains (Pillow et al. 2008, Nature 454:995), chosen here as the package's built-in
    data; the paper's simulated-network experiment (Antoniades et al., ICLR 2024, arXiv 2311.00136) is
    the hub kinds' (:func:`simulate_hub_network`).

    Returns:
        :class:`SimulatedNetwork` with ``kind="glm"``: ``recording`` of ``n_units`` units ``unit0``,
        ``unit1``, ... with float64 spike times in s (each jittered uniformly within its bin), ``time_domain=(0,
        n_bins * bin_size)`` (``n_bins`` = ``duration / bin_size`` rounded to the nearest integer, halves up)
        and session ``"simulated"``; ``weights`` ``(n_units, n_units)`` float64, target x source, log-rate per
        unit of synaptic trace (diagonal ``-refractory_strength``); ``base_rates`` ``(n_units,)`` float64, Hz;
        no hubs (``edge_kind`` all 0); ``params`` the arguments and the simulated span (JSON values).

    Memory: about ``8 * n_bins * n_assemblies`` bytes of drive noise (drawn up front) plus the wiring,
    ``8 * 6 * n_units**2``; the spikes come on top (16 bytes each). A simulation whose up-front arrays
    need more than half of the machine's physical memory is refused before anything is drawn (the
    bound ``neuroformer simulate`` applies; not checked where ``os.sysconf`` does not give it).

    Raises:
        ValueError: naming the argument: ``n_units`` / ``n_assemblies`` not an integer >= 1, or
            ``n_assemblies`` above ``n_units`` (naming both);
            ``duration``, ``bin_size``, ``tau``, ``drive_timescale`` not finite and > 0 (or
            ``duration`` shorter than one bin); ``connection_prob`` outside [0, 1];
            ``coupling_strength``, ``refractory_strength``, ``drive_strength`` not finite, or
            ``coupling_strength`` / ``refractory_strength`` negative;
            ``base_rate_range`` not two finite rates with ``0 <= low <= high``, ``high > 0``; ``seed`` not an
            integer >= 0 or None; ``duration: ...`` (or ``n_units: ...`` when the wiring alone does not
            fit) when the memory estimate above exceeds half of the machine's memory, with the estimate,
            the memory and the longest duration that fits (1e8 s failed in numpy's bare MemoryError).
    """
    if n_assemblies is None and isinstance(n_units, numbers.Integral):
        n_assemblies = min(4, n_units)
    _check_glm_arguments(n_units=n_units, n_assemblies=n_assemblies, duration=duration, bin_size=bin_size, tau=tau,
                         drive_timescale=drive_timescale, connection_prob=connection_prob,
                         coupling_strength=coupling_strength, refractory_strength=refractory_strength,
                         drive_strength=drive_strength, base_rate_range=base_rate_range, seed=seed)
    n_bins = _whole_bins(duration, bin_size)
    if n_bins < 1:
        raise ValueError(f"duration: expected at least one bin of {bin_size} s, got {duration} s")
    # before the wiring is drawn: 1e8 s asked numpy for 1.46 TiB of drive noise (a bare MemoryError)
    _check_simulation_memory("glm", n_units, duration, bin_size, n_assemblies=max(int(n_assemblies), 1))
    rng = np.random.default_rng(seed)
    conn = rng.random((n_units, n_units)) < connection_prob
    np.fill_diagonal(conn, False)
    sign = np.where(rng.random((n_units, n_units)) < 0.6, 1.0, -1.0)
    weights = conn * sign * coupling_strength * rng.uniform(0.5, 1.5, (n_units, n_units))
    np.fill_diagonal(weights, -refractory_strength)  # self-inhibition: refractoriness, stability
    base = rng.uniform(*base_rate_range, n_units)
    loading = drive_strength * rng.uniform(0.7, 1.3, n_units)
    assembly = np.arange(n_units) % max(int(n_assemblies), 1)

    decay = np.exp(-bin_size / tau)
    ou_a = np.exp(-bin_size / drive_timescale)
    ou_noise = rng.normal(0, np.sqrt(1 - ou_a**2), (n_bins, max(int(n_assemblies), 1)))
    trace = np.zeros(n_units)
    drive = np.zeros(max(int(n_assemblies), 1))
    fired_bins, fired_units = [], []
    # the uniforms are drawn _GLM_CHUNK bins at a time into one buffer: one (n_bins, n_units) array took
    # n_bins * n_units * 8 bytes (4.3 GB for simulate --kind glm --units 300 --duration 3600); consecutive
    # draws continue the same stream, so a seed gives the same spikes
    uniforms = np.empty((min(_GLM_CHUNK, n_bins), n_units))
    with _simulation_bar("glm", n_bins * bin_size, progress) as bar:
        for t in range(n_bins):
            if t % _GLM_CHUNK == 0:
                rng.random(out=uniforms[: min(_GLM_CHUNK, n_bins - t)])
            drive = ou_a * drive + ou_noise[t]
            rate = base * np.exp(np.clip(weights @ trace + loading * drive[assembly], -20, 3))
            p = -np.expm1(-rate * bin_size)
            spk = uniforms[t % _GLM_CHUNK] < p
            trace *= decay
            if spk.any():
                idx = np.flatnonzero(spk)
                trace[idx] += 1.0
                fired_bins.append(np.full(idx.size, t))
                fired_units.append(idx)
            if (t + 1) % _BAR_BINS == 0 or t + 1 == n_bins:
                bar.update((t + 1) * bin_size - bar.n)
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
        unit_names=_unit_names(n_units),
        time_domain=(0.0, float(n_bins * bin_size)),
        session=_COUPLED_SESSION,
    )
    # recorded like the hub kinds' parameters (write_network keeps them in the file, connectivity's
    # scores.json reports them): without them a glm file said n_units, duration and seed null
    params = {"n_units": int(n_units), **_durations(duration, n_bins, bin_size), "bin_size": float(bin_size),
              "tau": float(tau),
              "connection_prob": float(connection_prob), "coupling_strength": float(coupling_strength),
              "refractory_strength": float(refractory_strength), "drive_strength": float(drive_strength),
              "drive_timescale": float(drive_timescale), "n_assemblies": int(n_assemblies),
              "base_rate_range": [float(x) for x in base_rate_range],
              "seed": int(seed) if isinstance(seed, (int, np.integer)) else None}
    return SimulatedNetwork(recording=rec, weights=weights, base_rates=base, params=params)


# ---------------------------------------------------------------------------------- hub networks
@dataclass
class HubNetworkParams:
    """Parameters of a hub network (layout and both simulators). Times in s, voltages in mV.

    Layout (:func:`hub_layout`):
        n_units: number of units (hubs included).
        n_hubs: number of hub units.
        targets_per_hub: size of each hub's block of target units (contiguous indices among the
            non-hub units; blocks of different hubs do not overlap).
        hub_weight: synaptic weight of a hub edge (LIF: jump of the synaptic current, mV; the
            peak PSP is ``hub_weight * tau_syn / (tau_m - tau_syn) * (e^{-t*/tau_m} -
            e^{-t*/tau_syn})``, about 0.16 x ``hub_weight`` at the defaults, so 12 mV -> 1.9 mV).
        random_prob: probability of a weak random edge j -> i between any other ordered pair
            (none from a target back onto its hub, none onto itself).
        random_weight: scale of weak edges, mV; each is ``+-random_weight * U(0.5, 1.5)``, 80 %
            excitatory; 0: no weak edges (as ``random_prob=0``).

    LIF network (:func:`simulate_hub_network`, brian2):
        tau_m: membrane time constant. tau_syn: synaptic current decay. v_rest, v_threshold,
        v_reset: potentials, mV. refractory: absolute refractory period. delay: synaptic
        delay. bias_mean / bias_std: per-unit constant depolarisation (mV, Gaussian across
        units); hub_bias: extra bias of hub units (they fire faster). background_inputs /
        background_rate / background_weight: each unit receives ``background_inputs``
        independent Poisson inputs at ``background_rate`` Hz, each a jump of
        ``background_weight`` mV in v (brian2 ``PoissonInput``). dt: integration step.

    Point-process GLM (:func:`simulate_hub_glm`): rates ``base_rate * exp(glm_gain * W/hub_weight
        @ trace)`` with ``glm_base_rate`` (hubs ``glm_hub_rate``) Hz, synaptic trace time constant
        ``tau_syn``, self-inhibition ``glm_refractory`` (log-rate), bin ``glm_bin_size``.
    """

    n_units: int = 300
    n_hubs: int = DEFAULT_N_HUBS
    targets_per_hub: int = DEFAULT_TARGETS_PER_HUB
    hub_weight: float = 12.0
    random_prob: float = 0.02
    random_weight: float = 1.5
    tau_m: float = 0.020
    tau_syn: float = 0.005
    v_rest: float = -70.0
    v_threshold: float = -50.0
    v_reset: float = -60.0
    refractory: float = 0.002
    delay: float = 0.001
    bias_mean: float = 0.0
    bias_std: float = 1.5
    hub_bias: float = 5.0
    background_inputs: int = 50
    background_rate: float = 5.0
    background_weight: float = 2.5
    dt: float = 0.0002
    glm_base_rate: float = 5.0
    glm_hub_rate: float = 20.0
    glm_gain: float = 2.0
    glm_refractory: float = 3.0
    glm_bin_size: float = 0.001

    def validate(self) -> None:
        """Raises ValueError naming the field when a value is out of range: the counts
        (``n_units``, ``n_hubs``, ``targets_per_hub``, ``background_inputs``) must be integers, every
        other field a finite number; ``hub_weight > 0`` (hub edges are excitatory, and the GLM
        kind divides by it), ``random_weight``, ``refractory``, ``delay``, ``bias_std``,
        ``background_inputs``, ``background_rate``, ``glm_gain`` (a negative gain turns the GLM's
        excitatory edges inhibitory against the stored truth; 0 simulates uncoupled spikes over the
        same layout, a null control) and ``glm_refractory`` (self-inhibition) >= 0, and
        ``v_rest < v_threshold``, ``v_reset < v_threshold``; ``glm_bin_size <= tau_syn`` (the GLM's coupling acts
        through a trace that decays with ``tau_syn``: in longer bins it is gone before the next bin, and a unit fires
        at most once per bin)."""
        for name in ("n_units", "n_hubs", "targets_per_hub", "background_inputs"):
            v = getattr(self, name)
            if not (isinstance(v, numbers.Integral) and not isinstance(v, bool)):
                # 20.5 units failed inside numpy ("'float' object cannot be interpreted as an integer")
                raise ValueError(f"{name}: expected an integer, got {v!r}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("float", float) and not is_finite_number(v):
                # a NaN glm_gain or hub_weight ran and gave a recording without a single spike
                raise ValueError(f"{f.name}: expected a finite number, got {v!r}")
        if not self.hub_weight > 0:
            # 0 divided the hub GLM's gains by zero; a negative one made the GLM's hub edges
            # excitatory (W / hub_weight > 0) while the stored truth said inhibitory
            raise ValueError(f"hub_weight: expected a positive weight (hub edges are excitatory), got {self.hub_weight}")
        # glm_gain < 0 made the hub GLM's hub edges inhibitory (G = glm_gain * W / hub_weight) while the
        # stored truth said excitatory, so an estimator that was right scored below chance; glm_refractory < 0
        # turned the self-inhibition into self-excitation (bursts at several times the rate)
        for name in ("random_weight", "refractory", "delay", "bias_std", "background_inputs", "background_rate",
                     "glm_gain", "glm_refractory"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected a number >= 0, got {getattr(self, name)}")
        if not self.v_rest < self.v_threshold:
            # the initial potentials drawn in [v_rest, v_threshold) failed inside numpy ("high - low < 0"),
            # naming no field; a resting potential above threshold fires every unit at its refractory limit
            raise ValueError(f"v_rest: expected a resting potential below v_threshold={self.v_threshold} mV, got "
                             f"{self.v_rest} mV")
        if not self.v_reset < self.v_threshold:
            # every unit fired again as soon as its refractory period ended (about 400 Hz each)
            raise ValueError(f"v_reset: expected a reset potential below v_threshold={self.v_threshold} mV, got "
                             f"{self.v_reset} mV")
        if self.n_units < 2:
            raise ValueError(f"n_units: expected at least 2 units, got {self.n_units}")
        check_hub_layout(self.n_units, self.n_hubs, self.targets_per_hub)
        if not 0 <= self.random_prob <= 1:
            raise ValueError(f"random_prob: expected a probability in [0, 1], got {self.random_prob}")
        for name in ("tau_m", "tau_syn", "dt", "glm_bin_size", "glm_base_rate", "glm_hub_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)}")
        if self.tau_syn >= self.tau_m:
            raise ValueError(f"tau_syn: expected tau_syn < tau_m={self.tau_m}, got {self.tau_syn}")
        if self.glm_bin_size > self.tau_syn:
            # glm_bin_size=10.0 passed: the GLM's coupling trace decays by exp(-glm_bin_size / tau_syn) per bin
            # (e^-2000), so no edge acted on the next bin, and one spike per unit per bin capped every rate at
            # 1 / glm_bin_size (0.1 Hz): the file held uncoupled spikes under the layout's truth
            raise ValueError(f"glm_bin_size: expected at most tau_syn={self.tau_syn} s (the GLM's synaptic trace "
                             "decays by exp(-glm_bin_size / tau_syn) per bin, so longer bins lose the coupling, and a "
                             f"unit fires at most once per bin), got {self.glm_bin_size} s")


def hub_layout(params: HubNetworkParams, rng: np.random.Generator):
    """Directed hub wiring.

    Hubs are ``n_hubs`` units spread evenly over the index range (unit ``k * n_units // n_hubs
    + n_units // (2 n_hubs)``); hub ``k`` projects to the ``k``-th block of ``targets_per_hub``
    consecutive non-hub units, the blocks evenly spaced among the non-hub units.

    Returns:
        ``(weights, edge_kind, hub_units)``: ``weights (n, n)`` float64 target x source (mV for
        the LIF network); ``edge_kind (n, n)`` int8 (0 none, 1 hub edge, 2 weak random edge);
        ``hub_units (n_hubs,)`` int64.
    """
    params.validate()
    n, h = params.n_units, params.n_hubs
    hubs = np.array([k * n // h + n // (2 * h) for k in range(h)], dtype=np.int64) if h else np.zeros(0, np.int64)
    others = np.setdiff1d(np.arange(n), hubs)
    kind = np.zeros((n, n), dtype=np.int8)
    spacing = len(others) // max(h, 1)
    for k, hub in enumerate(hubs):
        block = others[k * spacing: k * spacing + params.targets_per_hub]
        kind[block, hub] = 1
    rand = rng.random((n, n)) < params.random_prob
    rand &= kind == 0
    rand &= kind.T == 0  # no weak edge back from a target onto its hub
    np.fill_diagonal(rand, False)
    # random_weight 0: weights of 0, which no simulator wires (the LIF network makes a synapse per
    # non-zero weight), so they are no edges; the stored edge kinds said 2 (weak edge) for ~2 % of pairs
    # and the hub scores left those pairs out of the unconnected ones
    rand &= params.random_weight > 0
    kind[rand] = 2
    sign = np.where(rng.random((n, n)) < 0.8, 1.0, -1.0)
    mag = rng.uniform(0.5, 1.5, (n, n))
    weights = np.where(kind == 1, params.hub_weight * rng.uniform(0.8, 1.2, (n, n)), 0.0)
    weights = np.where(kind == 2, sign * params.random_weight * mag, weights)
    return weights, kind, hubs


def _hub_params(params) -> HubNetworkParams:
    """``params`` of the hub simulators as a validated :class:`HubNetworkParams`: None gives the defaults,
    a dict (e.g. ``asdict`` of one, or a SimulatedNetwork's ``params`` without its run entries) is built
    into one. A dict failed with "'dict' object has no attribute 'validate'".

    Raises:
        TypeError: ``params`` is neither a HubNetworkParams, a dict nor None.
        ValueError: a key of the dict is not a HubNetworkParams field (each named, with the closest
            field and the fields: :func:`~hf_neuroformer.argument_checks.as_dataclass`), or a
            field is out of range (:meth:`HubNetworkParams.validate`).
    """
    params = as_dataclass(HubNetworkParams, params, "params")
    params.validate()
    return params


def _check_duration(duration) -> None:
    """Raises ValueError naming ``duration`` unless it is a finite number of seconds > 0 (a string
    failed in ``np.isfinite`` with numpy's "ufunc 'isfinite' not supported")."""
    if not (is_finite_number(duration) and duration > 0):
        raise ValueError(f"duration: expected a finite positive number of seconds, got {duration!r}")


def simulate_hub_network(
    params: HubNetworkParams | dict | None = None,
    duration: float = 60.0,
    seed: int = 0,
    codegen_target: str = "numpy",
    progress: bool = False,
) -> SimulatedNetwork:
    """Simulate a hub network of leaky integrate-and-fire units with brian2 (the reference).

    Model (current-based synapses, exponential currents, all in mV)::

        dv/dt = (v_rest + bias_i - v + I) / tau_m        (unless refractory)
        dI/dt = -I / tau_syn
        on a spike of unit j, after ``delay``:  I_i += W[i, j]
        v > v_threshold  ->  spike, v = v_reset, refractory for ``refractory`` s

    plus ``background_inputs`` independent Poisson spike trains per unit (brian2
    ``PoissonInput`` on v). ``W`` and the hubs come from :func:`hub_layout`.

    Source: a network with hub units of known directed wiring, after the paper's simulated-network
    experiment (Antoniades et al., ICLR 2024, arXiv 2311.00136), whose attention should recover the
    hubs' connections; simulated with brian2 (Stimberg, Brette & Goodman 2019, eLife 8:e47314). The
    parameters (:class:`HubNetworkParams`) are this package's, not the paper's.

    Args:
        params: :class:`HubNetworkParams`, or a dict of its fields (default: 300 units, 3 hubs).
        duration: simulated time, s. brian2 runs whole ``params.dt`` steps and a last partial
            step in full, so a duration that is not a whole number of steps (more than 1 ns off)
            simulates up to the next one: ``params["duration"]`` and the recording's ``time_domain``
            end record the simulated span (as the GLM kinds record their whole bins), and
            ``params["duration_requested"]`` this value.
        seed: seeds the layout (numpy ``default_rng``), the per-unit biases and brian2's random
            numbers (``brian2.seed``): the same seed gives the same spikes, in this process or another,
            with either ``codegen_target`` (the cython target draws from the same seeded numpy
            buffers: with brian2 2.9.0, 300 units over 8 s gave the same 17,184 spikes with both).
            Another brian2 release may draw its random numbers otherwise, so ``params`` records
            ``brian2_version`` beside ``codegen_target``. ``brian2.seed`` reseeds numpy's global
            legacy generator; its state (``np.random.get_state()``) is restored after the run.
        codegen_target: brian2 code generation target, ``"numpy"`` (no compiler needed) or
            ``"cython"`` (compiles first, faster for long runs); recorded in ``params``.
        progress: show a bar of simulated seconds, redrawn every second of wall time (brian2's
            ``report``; ``neuroformer simulate`` does).

    Returns:
        :class:`SimulatedNetwork` with ``kind="hub"``: ``recording`` of ``n_units`` units (session
        ``"simulated-hub"``, float64 spike times in s, brian2's, on the ``dt`` grid; ``time_domain``
        ``(0, simulated span)``); ``weights`` ``(n_units, n_units)`` float64 target x source, in mV
        (current jumps, diagonal 0); ``edge_kind`` ``(n_units, n_units)`` int8; ``hub_units``
        ``(n_hubs,)`` int64; ``base_rates`` ``(n_units,)`` float64 = each unit's mean rate in the run, Hz.
        Memory: brian2 holds every spike until the run ends. Before brian2 is imported, the wiring
        (about ``48 * n_units**2`` bytes) and the spikes of rates estimated from ``params`` (with 2x
        headroom, about 200 bytes a spike while they are sorted and written) are checked against half of
        the machine's physical memory (not where ``os.sysconf`` does not give it); ``neuroformer
        simulate`` also caps ``duration`` at :data:`MAX_CLI_DURATION`.

    Raises:
        TypeError: ``params`` is neither a :class:`HubNetworkParams`, a dict nor None.
        ValueError: bad ``params`` field (or a dict key that is none), non-positive ``duration`` or one shorter than a step
            (``params.dt``), unknown ``codegen_target``, ``seed`` outside ``[0, 2**32 - 1]``;
            ``n_units: ...`` (the wiring) or ``duration: ...`` (the spikes) when the memory estimate above
            exceeds half of the machine's memory, with the estimate, the memory and the longest duration
            that fits.
        RuntimeError: the process has set another brian2 device than the runtime one
            (``brian2.set_device('cpp_standalone')``), before anything is drawn.
        ImportError: brian2 is not installed (``pip install brian2``).
    """
    params = _hub_params(params)
    _check_duration(duration)
    if duration < params.dt:  # brian2 ran no step: a recording without a spike and no word (glm kinds refuse too)
        raise ValueError(f"duration: {duration:g} s is shorter than one simulation step (HubNetworkParams.dt = "
                         f"{params.dt:g} s); expected at least that")
    if codegen_target not in ("numpy", "cython"):
        raise ValueError(f"codegen_target: expected 'numpy' or 'cython', got {codegen_target!r}")
    if not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and 0 <= seed <= MAX_BRIAN2_SEED):
        # numpy's bare "Seed must be between 0 and 2**32 - 1" came from brian2.seed, after the layout was drawn
        raise ValueError(f"seed: expected an integer in [0, {MAX_BRIAN2_SEED}] (brian2.seed seeds numpy's legacy "
                         f"generator), got {seed!r}")
    # before brian2 is imported: brian2 holds every spike until the run ends
    _check_simulation_memory("hub", params.n_units, duration, params.dt, params=params)
    import brian2 as b2
    from brian2.devices.device import RuntimeDevice

    device = b2.get_device()
    if not isinstance(device, RuntimeDevice):
        # after brian2.set_device('cpp_standalone') in the caller's process the run failed inside brian2
        # ("report argument has to be either 'text', ...": the progress callback), naming neither the device
        # nor codegen_target, which only the runtime device uses
        raise RuntimeError(f"brian2 device: simulate_hub_network runs on brian2's runtime device (codegen_target "
                           f"{codegen_target!r}), but this process has set {type(device).__name__}; call "
                           "brian2.set_device('runtime') first")
    rng = np.random.default_rng(seed)
    # brian2's preference is global: the caller's own brian2 code ran with this call's target after it
    # (e.g. numpy where it had asked for cython); it is put back after the run
    target_before = b2.prefs.codegen.target
    b2.prefs.codegen.target = codegen_target
    # brian2.seed reseeds numpy's global legacy generator (its numpy target draws from it): the
    # caller's np.random stream is put back after the run, not left fixed by ``seed``
    global_state = np.random.get_state()
    try:
        return _run_hub_network(b2, params, duration, seed, codegen_target, progress, rng)
    finally:
        np.random.set_state(global_state)
        b2.prefs.codegen.target = target_before


def _run_hub_network(b2, params: HubNetworkParams, duration: float, seed: int, codegen_target: str, progress: bool,
                     rng: np.random.Generator) -> SimulatedNetwork:
    """The brian2 part of :func:`simulate_hub_network` (arguments checked there)."""
    weights, kind, hubs = hub_layout(params, rng)
    n = params.n_units
    bias = params.bias_mean + params.bias_std * rng.standard_normal(n)
    bias[hubs] += params.hub_bias
    b2.seed(int(seed))
    mV, Hz, second = b2.mV, b2.Hz, b2.second
    ns = {"tau_m": params.tau_m * second, "tau_syn": params.tau_syn * second, "v_rest": params.v_rest * mV}
    group = b2.NeuronGroup(
        n,
        """dv/dt = (v_rest + bias - v + I) / tau_m : volt (unless refractory)
           dI/dt = -I / tau_syn : volt
           bias : volt (constant)""",
        threshold=f"v > {params.v_threshold}*mV",
        reset=f"v = {params.v_reset}*mV",
        refractory=params.refractory * second,
        method="exact",
        namespace=ns,
        dt=params.dt * second,
    )
    group.bias = bias * mV
    group.v = (params.v_rest + rng.uniform(0, params.v_threshold - params.v_rest, n)) * mV
    src, tgt = np.nonzero(weights.T)  # weights.T[j, i] = W[i, j]: source j, target i
    syn = b2.Synapses(group, group, "w : volt (constant)", on_pre="I_post += w", dt=params.dt * second)
    syn.connect(i=src.astype(np.int32), j=tgt.astype(np.int32))
    syn.w = weights[tgt, src] * mV
    syn.delay = params.delay * second
    bg = b2.PoissonInput(group, "v", N=params.background_inputs, rate=params.background_rate * Hz,
                         weight=params.background_weight * mV)
    mon = b2.SpikeMonitor(group)
    net = b2.Network(group, syn, bg, mon)
    with _simulation_bar("hub", duration, progress) as bar:
        def report(elapsed, completed, start, run_duration):  # brian2's report callback; completed in [0, 1]
            bar.update(float(completed) * float(duration) - bar.n)

        net.run(duration * second, namespace={}, report=report, report_period=1 * second)
    # brian2 runs whole dt steps, the last partial one in full (0.0101 s at dt 0.2 ms ran 51 steps,
    # 0.0102 s): the group's clock holds the span simulated, which the recording and its rates cover
    # (it recorded the requested 0.0101 s while its units' spikes and membranes ran to 0.0102 s)
    simulated = float(group.t / second)
    if abs(simulated - float(duration)) <= 1e-9:
        simulated = float(duration)  # whole steps: the value asked for, not a float product
    times = np.asarray(mon.t / second, dtype=np.float64)
    units = np.asarray(mon.i[:], dtype=np.int64)
    rec = SpikeRecording.from_unsorted(
        times, units, unit_names=[f"unit{i}" for i in range(n)], time_domain=(0.0, simulated),
        session="simulated-hub",
    )
    rates = np.bincount(units, minlength=n) / simulated
    durations = {"duration": simulated}
    if simulated != float(duration):
        durations["duration_requested"] = float(duration)
    return SimulatedNetwork(recording=rec, weights=weights, base_rates=rates, hub_units=hubs, edge_kind=kind,
                            kind="hub", params={**asdict(params), **durations, "seed": int(seed),
                                                "codegen_target": codegen_target,
                                                # the spikes of a seed are brian2's: another release may differ
                                                "brian2_version": str(b2.__version__)})


def simulate_hub_glm(
    params: HubNetworkParams | dict | None = None,
    duration: float = 60.0,
    seed: int = 0,
    progress: bool = False,
) -> SimulatedNetwork:
    """The hub layout of :func:`hub_layout` as a discrete-time point-process GLM (fast).

    Unit ``i`` fires in bin ``t`` (width ``glm_bin_size``) with probability
    ``1 - exp(-r_i(t) * bin)``, ``r_i(t) = rate_i * exp(clip(sum_j G[i, j] h_j(t), -20, 3))``,
    ``h_j`` the exponentially decaying (``tau_syn``) trace of unit j's past spikes,
    ``G = glm_gain * W / hub_weight`` off the diagonal and ``-glm_refractory`` on it;
    ``rate_i`` is ``glm_base_rate`` (hubs ``glm_hub_rate``) times ``U(0.7, 1.3)``.

    Args / Raises: as :func:`simulate_hub_network` (no brian2 needed; ``progress`` updates the bar
    every 5000 bins; ``seed`` any integer >= 0, or None for fresh entropy, recorded as None), and
    ValueError when ``duration`` is shorter than one ``glm_bin_size`` bin, or (``n_units: ...`` / ``duration: ...``)
    when the memory estimate below exceeds half of the machine's memory. ``duration`` is rounded to whole bins:
    ``params["duration"]`` records the simulated span (the recording's ``time_domain`` end),
    ``params["duration_requested"]`` the requested value when they differ.

    Source: the hub layout of the paper's simulated-network experiment (see :func:`simulate_hub_network`)
    in the point-process GLM of the module docstring; a fast stand-in for the brian2 reference, not the
    paper's simulator.

    Returns:
        :class:`SimulatedNetwork` with ``kind="hub-glm"``: ``recording`` of ``n_units`` units (session
        ``"simulated-hub-glm"``, float64 spike times in s, jittered within their ``glm_bin_size`` bins);
        ``weights`` ``(n_units, n_units)`` float64 = the layout's ``W`` in mV (same units as the LIF
        network, so both kinds have the same truth for a seed; diagonal 0); ``edge_kind`` int8 and
        ``hub_units`` int64 as :func:`hub_layout`; ``base_rates`` ``(n_units,)`` float64, the drawn
        ``rate_i`` in Hz. Memory: uniforms are drawn a block of bins at a time, so only the spikes grow
        with ``duration`` (16 bytes each in the recording, about 130 at the run's peak, 200 with
        :func:`write_network`). Before the layout is drawn, the wiring (about ``48 * n_units**2``
        bytes) and the spikes of rates estimated from ``params`` (with 2x headroom) are checked against
        half of the machine's physical memory (not where ``os.sysconf`` does not give it).
    """
    params = _hub_params(params)
    _check_duration(duration)
    # before the run: None ran the whole simulation and then failed in int(None) recording it, -1 and
    # 1.5 failed inside numpy naming no argument
    if seed is not None and not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
        raise ValueError(f"seed: expected an integer >= 0 (or None: fresh entropy), got {seed!r}")
    bin_size = params.glm_bin_size
    n_bins = _whole_bins(duration, bin_size)
    if n_bins < 1:
        raise ValueError(f"duration: expected at least one bin of {bin_size} s (glm_bin_size), got {duration} s")
    _check_simulation_memory("hub-glm", params.n_units, duration, bin_size, params=params)  # before the layout
    rng = np.random.default_rng(seed)
    weights, kind, hubs = hub_layout(params, rng)
    n = params.n_units
    gain = params.glm_gain * weights / params.hub_weight
    np.fill_diagonal(gain, -params.glm_refractory)
    rate = np.full(n, params.glm_base_rate)
    rate[hubs] = params.glm_hub_rate
    rate *= rng.uniform(0.7, 1.3, n)
    decay = np.exp(-bin_size / params.tau_syn)
    trace = np.zeros(n)
    fired_bins, fired_units = [], []
    chunk = _GLM_CHUNK
    with _simulation_bar("hub-glm", n_bins * bin_size, progress) as bar:
        for c0 in range(0, n_bins, chunk):
            uniforms = rng.random((min(chunk, n_bins - c0), n))
            for k in range(uniforms.shape[0]):
                r = rate * np.exp(np.clip(gain @ trace, -20, 3))
                spk = uniforms[k] < -np.expm1(-r * bin_size)
                trace *= decay
                if spk.any():
                    idx = np.flatnonzero(spk)
                    trace[idx] += 1.0
                    fired_bins.append(np.full(idx.size, c0 + k))
                    fired_units.append(idx)
                if (c0 + k + 1) % _BAR_BINS == 0 or c0 + k + 1 == n_bins:
                    bar.update((c0 + k + 1) * bin_size - bar.n)
    b = np.concatenate(fired_bins) if fired_bins else np.zeros(0, np.int64)
    u = np.concatenate(fired_units) if fired_units else np.zeros(0, np.int64)
    times = (b + rng.random(b.size)) * bin_size
    rec = SpikeRecording.from_unsorted(
        times, u, unit_names=[f"unit{i}" for i in range(n)], time_domain=(0.0, float(n_bins * bin_size)),
        session="simulated-hub-glm",
    )
    return SimulatedNetwork(recording=rec, weights=weights, base_rates=rate, hub_units=hubs, edge_kind=kind,
                            kind="hub-glm", params={**asdict(params), **_durations(duration, n_bins, bin_size),
                                                    "seed": None if seed is None else int(seed)})


class MissingGroundTruthError(ValueError):
    """An NWB file without a simulated network's ground truth (``ground_truth_weights``): a
    recording, not a file written by ``neuroformer simulate`` (:func:`write_network`)."""


#: NWB scratch names that carry a simulated network's ground truth
GROUND_TRUTH_SCRATCH = {
    # per kind, what the diagonal holds: the hub-glm kind simulates a self-inhibition that its diagonal (0)
    # does not hold, while the glm kind's diagonal is its self-inhibition; the text said neither
    "ground_truth_weights": "directed connectivity, target x source: weights[i, j] = weight from unit j onto unit i. "
                            "hub: mV jump of the synaptic current, diagonal 0 (no self-synapse; refractoriness is "
                            "the LIF's refractory period); hub-glm: the same layout weights in mV, simulated as the "
                            "log-rate coupling glm_gain * W / hub_weight, diagonal 0 although the simulation adds a "
                            "self-inhibition of -glm_refractory (see ground_truth_info); glm: log-rate coupling per "
                            "unit of synaptic trace, diagonal = its self-inhibition -refractory_strength. The "
                            "diagonal is never scored",
    "ground_truth_edge_kind": "edge type, target x source: 0 none, 1 hub edge, 2 weak random edge",
    "ground_truth_hub_units": "indices (units table rows) of the hub units",
    "ground_truth_base_rates": "per-unit base (glm) or measured mean (LIF) firing rate, Hz",
    "ground_truth_info": "JSON: simulator kind and parameters",
}


def write_network(network: SimulatedNetwork, path, overwrite: bool = False, make_parent: bool = False):
    """Write a simulated network to NWB: the spikes (:func:`~hf_neuroformer.io.write_nwb`) and the
    ground truth as ``ScratchData`` (names and meaning in :data:`GROUND_TRUTH_SCRATCH`).

    Args:
        network: the :class:`SimulatedNetwork`.
        path: the ``.nwb`` file to write (atomically).
        overwrite: replace an existing file.
        make_parent: create ``path``'s folder if missing (default: it must exist, as for
            :func:`~hf_neuroformer.jsonio.write_atomic`; ``neuroformer simulate`` passes True).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``path``'s name does not end in ``.nwb`` (the file is NWB whatever its name;
            ``read_network`` and the commands take it by that suffix); a ground truth that
            :func:`read_network` would refuse, before anything is written, naming the field
            (``network.weights: ...``): ``weights`` not ``(n_units, n_units)`` for the recording's
            units or not finite off the diagonal, ``edge_kind`` of another shape, with a value other
            than 0 / 1 / 2 or marking a zero weight (:func:`check_edge_kinds`), ``hub_units`` outside
            ``[0, n_units)``, ``base_rates`` not ``(n_units,)`` or with a rate that is not finite and
            >= 0 Hz (``network.base_rates: ...``; all NaN, as :func:`read_network` gives a file without
            them, is written without them), ``kind`` not a non-empty string (``network.kind: ...``),
            ``params`` not a dict or holding a value JSON cannot hold, which would be stored as its
            text (``network.params['key']: ...``). Nothing is written (no file, no folder) on any of these.
        MissingOutputFolderError: ``path``'s folder does not exist and ``make_parent`` is False (a
            ``FileNotFoundError``).
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        OutputPathError: ``path`` is a directory
            (:func:`~hf_neuroformer.io.permissions.check_output_file`) or is under a file
            (:func:`~hf_neuroformer.io.permissions.check_output_folder`).
    """
    import json
    from pathlib import Path

    from .io.nwb import write_nwb
    from .io.permissions import check_output_folder

    # as 'neuroformer simulate --output' refuses them: 'x.txt' held an NWB file, and a missing folder was
    # created without a word (a typo in the folder name went unnoticed)
    if Path(path).suffix.lower() != ".nwb":
        raise ValueError(f"path: write_network writes NWB; expected a file name ending in .nwb, got {str(path)!r}")
    # a ground truth that read_network refuses was written, and refused only when the file was read back
    # ('neuroformer connectivity', after training on it), naming the file, not the network that made it
    _check_ground_truth(network.recording.n_units, network.weights, network.edge_kind, network.hub_units,
                        network.base_rates, {name: f"network.{name}" for name in _SCRATCH_NAMES})
    # the kind, the rates and the parameters were written whatever they held: a kind of 5 was read back as
    # 5, NaN rates as NaN, and a parameter JSON cannot hold as its text ('<object object at 0x...>')
    if not isinstance(network.kind, str) or not network.kind:
        raise ValueError(f"network.kind: expected the simulator's name as a non-empty string (SimulatedNetwork.kind: "
                         f"'glm', 'hub' or 'hub-glm'), got {type(network.kind).__name__} {network.kind!r}")
    rates = np.asarray(network.base_rates, dtype=np.float64)
    # every rate NaN is how read_network gives a file without base rates: written, as there, without them
    rates_known = not np.isnan(rates).all()
    bad = np.flatnonzero(~(np.isfinite(rates) & (rates >= 0))) if rates_known else np.zeros(0, np.int64)
    if bad.size:
        raise ValueError(f"network.base_rates: expected finite rates >= 0 Hz, one per unit (or all NaN: unknown, "
                         f"not written), got {count_noun(bad.size, 'rate')} NaN, infinite or negative (first: unit {bad[0]} = "
                         f"{rates[bad[0]]})")
    _check_json_params(network.params, "network.params")
    # json_safe: HubNetworkParams takes numpy integers (np.int64(300) units), which json.dumps refused
    # after the whole simulation had run; serialised before the folder is checked (or created)
    info = json.dumps(json_safe({"kind": network.kind, "params": network.params}))
    check_output_folder(path, make_parent)

    g = GROUND_TRUTH_SCRATCH
    scratch = {
        "ground_truth_weights": (network.weights, g["ground_truth_weights"]),
        "ground_truth_edge_kind": (network.edge_kind, g["ground_truth_edge_kind"]),
        "ground_truth_hub_units": (network.hub_units, g["ground_truth_hub_units"]),
        "ground_truth_base_rates": (rates, g["ground_truth_base_rates"]),
        "ground_truth_info": (np.array([info]), g["ground_truth_info"]),
    }
    if not rates_known:
        del scratch["ground_truth_base_rates"]
    return write_nwb(network.recording, path, overwrite=overwrite, scratch=scratch, make_parent=make_parent,
                     description=f"simulated {network.kind} network written by hf_neuroformer (ground truth in scratch)")


def check_edge_kinds(edge_kind, weights, label: str = "edge_kind") -> None:
    """Refuse edge kinds (0 none, 1 hub, 2 weak; target x source) that mark an edge where the weight
    is 0, off the diagonal: such a pair is unconnected for the all-excitatory scores but an edge for
    the hub scores, so the ground truth itself scored a hub AUROC below 1 (a hub mark on one zero
    weight of a 6-unit hub network: 0.833). ``edge_kind`` must already have ``weights``' shape.

    Raises:
        ValueError: ``label: ...`` with the count of such pairs and the first one ``[target, source]``.
    """
    w = np.asarray(weights)
    k = np.asarray(edge_kind)
    bad = np.argwhere((k != 0) & (w == 0) & ~np.eye(w.shape[0], dtype=bool))
    if len(bad):
        i, j = (int(v) for v in bad[0])
        raise ValueError(f"{label}: expected 0 (none) where the weight is 0, got {count_noun(len(bad), 'pair')} marked as an edge "
                         f"with weight 0 (first: [{i}, {j}] = {k[i, j]}, target x source); the hub scores would count "
                         "them as edges and the all-excitatory scores as unconnected")


def _check_ground_truth(n_units: int, weights, edge_kind, hub_units, base_rates, names: dict,
                        prefix: str = "") -> None:
    """The ground truth of a network of ``n_units`` units as :func:`read_network` reads it and
    :func:`write_network` writes it: ``weights`` ``(n_units, n_units)``, finite off the diagonal;
    ``edge_kind`` (or None) of the weights' shape, each 0, 1 or 2, and 0 wherever the weight is 0 off
    the diagonal (:func:`check_edge_kinds`); ``hub_units`` indices in ``[0, n_units)``; ``base_rates``
    (or None) ``(n_units,)``. ``names`` maps ``"weights"``, ``"edge_kind"``, ``"hub_units"`` and
    ``"base_rates"`` to the names the messages give them (the file's scratch names, or the
    SimulatedNetwork's fields), each message opening with ``prefix``.

    Raises:
        ValueError: ``prefix<name>: expected ...``, with the offending shape, count or first value.
    """
    n = n_units
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n, n):
        raise ValueError(f"{prefix}{names['weights']}: expected shape ({n}, {n}) for {n} units, got {w.shape}")
    off = ~np.eye(n, dtype=bool)
    if not np.isfinite(w[off]).all():
        # score_connectivity refused it only after connectivity's whole attention pass and GLM fits, naming
        # "weights" and no file
        bad = np.argwhere(~np.isfinite(w) & off)
        raise ValueError(f"{prefix}{names['weights']}: expected finite weights off the diagonal, got {len(bad)} NaN / "
                         f"infinite (first: [{bad[0, 0]}, {bad[0, 1]}] = {w[tuple(bad[0])]}); such a pair is neither "
                         "an edge nor unconnected")
    if edge_kind is not None:
        if np.shape(edge_kind) != w.shape:
            # score_connectivity refused it only after connectivity's whole attention pass, naming no file
            raise ValueError(f"{prefix}{names['edge_kind']}: expected shape {w.shape} like {names['weights']} "
                             f"(target x source), got {np.shape(edge_kind)}")
        k = np.asarray(edge_kind)
        other = np.argwhere(~np.isin(k, (0, 1, 2)))
        if len(other):
            # a 5 on a weighted pair was neither a hub nor a weak edge: the hub scores left it out without a word
            i, j = (int(v) for v in other[0])
            raise ValueError(f"{prefix}{names['edge_kind']}: expected 0 (none), 1 (hub edge) or 2 (weak random edge), "
                             f"got {len(other)} other value(s) (first: [{i}, {j}] = {k[i, j]}, target x source)")
        # a hub mark on a zero weight: the truth itself scored a hub AUROC below 1
        check_edge_kinds(k, w, f"{prefix}{names['edge_kind']}")
    hubs = np.asarray(hub_units).reshape(-1)
    outside = hubs[(hubs < 0) | (hubs >= n)]
    if outside.size:
        # connectivity listed them in scores.json as hubs and drew their ticks past the matrices (a 12-unit
        # figure stretched to a unit 40), without a word
        raise ValueError(f"{prefix}{names['hub_units']}: expected unit indices in [0, {n}) for {n} units, got "
                         f"{outside.tolist()}")
    if base_rates is not None and np.shape(base_rates) != (n,):
        raise ValueError(f"{prefix}{names['base_rates']}: expected shape ({n},), one rate (Hz) per unit, got "
                         f"{np.shape(base_rates)}")


#: the names :func:`read_network` gives the ground truth in its messages: the file's scratch data
_SCRATCH_NAMES = {"weights": "ground_truth_weights", "edge_kind": "ground_truth_edge_kind",
                  "hub_units": "ground_truth_hub_units", "base_rates": "ground_truth_base_rates"}


def read_network(path) -> SimulatedNetwork:
    """Read a file written by :func:`write_network` back into a :class:`SimulatedNetwork`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        MissingGroundTruthError: the file has no ``ground_truth_weights`` scratch data.
        ValueError: ``path`` is a directory or not an NWB file (a ``.mat``, ...), each saying that
            an NWB file written by ``neuroformer simulate`` is expected; the weights' shape does not
            match the number of units, or the edge kinds' shape the weights'; a weight off the
            diagonal is NaN or infinite; an edge kind other than 0, 1 or 2, or other than 0 on a zero
            weight off the diagonal; a hub unit index outside ``[0, n_units)``; base rates that are
            not one per unit. Each message opens with ``path`` and the scratch name
            (``ground_truth_weights: ...``).
    """
    import json
    from pathlib import Path

    from .io.nwb import read_nwb, read_nwb_scratch

    expected = "expected the NWB file of a simulated network, as 'neuroformer simulate' writes it"
    if Path(path).is_dir():  # read_nwb said 'the file is not HDF5 (size 4096 bytes)'
        raise ValueError(f"{path}: is a directory; {expected}")
    try:
        rec = read_nwb(path)
    except ValueError as err:
        raise ValueError(f"{err}; {expected}") from None
    sc = read_nwb_scratch(path)
    if "ground_truth_weights" not in sc:
        raise MissingGroundTruthError(f"{path}: ground_truth_weights: expected the NWB scratch data written by "
                         f"'neuroformer simulate' (found {sorted(sc)})")
    w = np.asarray(sc["ground_truth_weights"], dtype=np.float64)
    kind = sc.get("ground_truth_edge_kind")
    hubs = np.asarray(sc.get("ground_truth_hub_units", np.zeros(0)), dtype=np.int64).reshape(-1)
    rates = sc.get("ground_truth_base_rates")
    if rates is not None:  # a 1-unit network's one rate is stored as a scalar (HDF5), read back with shape ()
        rates = np.atleast_1d(rates)
    _check_ground_truth(rec.n_units, w, kind, hubs, rates, _SCRATCH_NAMES, prefix=f"{path}: ")
    info = {}
    if "ground_truth_info" in sc:
        raw = np.asarray(sc["ground_truth_info"]).ravel()[0]
        info = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    return SimulatedNetwork(
        recording=rec, weights=w,
        base_rates=np.asarray(np.full(rec.n_units, np.nan) if rates is None else rates, dtype=np.float64),
        hub_units=hubs,
        edge_kind=kind, kind=info.get("kind", "unknown"), params=info.get("params", {}),
    )


#: ``split_block_length`` (s) that the ``neuroformer`` command uses for :func:`default_recording`
#: when no ``--config`` is given: 14 blocks of 10 s, so the default 0.7 / 0.15 / 0.15 split
#: fractions come out as 10 / 2 / 2 blocks; the config default of 30 s would give 5 blocks (3 / 1 / 1,
#: i.e. 0.6 / 0.2 / 0.2) and a warning on the README's main job.
DEFAULT_RECORDING_SPLIT_BLOCK_LENGTH = 10.0


def default_recording(seed: int = 0) -> SpikeRecording:
    """The built-in default data: a 16-unit coupled network with 4 assemblies, 140 s
    (see the module docstring); sized so the default training budget runs in about 1 min on
    2 idle CPU cores (the README's main job: 64 s in a fresh clone at 0e9d8fe). Split it with ``split_block_length=DEFAULT_RECORDING_SPLIT_BLOCK_LENGTH``
    (10 s) for split fractions close to the config's.

    Args:
        seed: the simulation's seed (an integer >= 0, as :func:`simulate_coupled_network` takes it);
            the same seed gives the same spikes.

    Returns:
        :class:`SpikeRecording` of session ``"simulated"``: 16 units ``unit0`` .. ``unit15``,
        float64 spike times in s, ``time_domain`` ``(0.0, 140.0)``, no epochs, trials or behaviour
        (the ground-truth coupling is in :func:`simulate_coupled_network`'s
        :class:`SimulatedNetwork`, which this drops).

    Raises:
        ValueError: a ``seed`` that is not an integer >= 0, naming ``seed``.
    """
    return simulate_coupled_network(n_units=_DEFAULT_N_UNITS, duration=140.0, seed=seed).recording


def default_recording_units() -> Tuple[str, List[str]]:
    """``(session, unit_names)`` of :func:`default_recording` without simulating it (which takes
    about 20 s on a CPU core): ``("simulated", ["unit0", ..., "unit15"])``, the same for every
    seed. ``neuroformer decode`` without ``--data`` compares them with the decoder's units before
    simulating, so a decoder fine-tuned on another recording is refused at once."""
    return _COUPLED_SESSION, _unit_names(_DEFAULT_N_UNITS)


__all__ = [
    "MAX_CLI_DURATION",
    "DEFAULT_RECORDING_SPLIT_BLOCK_LENGTH",
    "SimulatedNetwork",
    "simulate_coupled_network",
    "default_recording",
    "default_recording_units",
    "HubNetworkParams",
    "hub_layout",
    "simulate_hub_network",
    "simulate_hub_glm",
    "write_network",
    "read_network",
    "check_edge_kinds",
    "MissingGroundTruthError",
    "GROUND_TRUTH_SCRATCH",
]
