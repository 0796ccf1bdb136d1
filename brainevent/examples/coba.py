"""The COBA network: 4000 leaky integrate-and-fire neurons with conductance synapses.

Vogels & Abbott (2005), benchmark 1 of Brette et al. (2007), simulated with
event-driven products under ``lax.scan``. Copy this file to start a model of
your own: the network is two connectivity matrices, a neuron update and one
``step`` function. The neuron update is an :class:`brainevent.XLACustomKernel`
with two implementations: the reference in JAX, written with brainunit units,
and a numba loop that updates the state in place (the default on the CPU, four
times faster at N = 40000; ``simulate(..., backend='jax')`` runs the reference).

The model, with ``V`` in mV and conductances relative to the leak (dimensionless)::

    dV/dt   = (V_rest - V + g_e (E_e - V) + g_i (E_i - V) + I) / tau_m
    dg_e/dt = -g_e / tau_e        each excitatory spike adds w_e to its targets' g_e
    dg_i/dt = -g_i / tau_i        each inhibitory spike adds w_i to its targets' g_i

tau_m = 20 ms, V_rest = V_reset = -60 mV, V_th = -50 mV, refractory 5 ms,
I = 20 mV (constant drive), tau_e = 5 ms, tau_i = 10 ms, E_e = 0 mV,
E_i = -80 mV, w_e = 0.6 and w_i = 6.7 (6 nS and 67 nS for a leak of 10 nS).
80% of the neurons are excitatory; each pair is connected with probability
``p = 80 / N`` (2% at N = 4000: about 80 synapses per neuron). Initial
``V ~ Normal(-55 mV, 5 mV)``; forward Euler with dt = 0.1 ms.

Every synapse of a projection has the same weight, so the matrices hold the
connectivity (weight 1 per synapse) and ``w_e * (spikes @ W)`` counts the
arriving spikes exactly: an event-driven run and a dense-weights run of the
same network give identical spike trains.

Examples
--------
>>> from brainevent.examples import coba
>>> net = coba.COBA(n=400, seed=1)
>>> result = coba.simulate(net, duration=50.0)
>>> result.steps, result.counts.shape
(500, (400,))
"""

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

import brainevent

__all__ = ['COBA', 'Result', 'simulate', 'PARAMS', 'FORMATS']

PARAMS = dict(
    tau_m=20.0 * u.ms, v_rest=-60.0 * u.mV, v_reset=-60.0 * u.mV, v_th=-50.0 * u.mV,
    refractory=5.0 * u.ms, drive=20.0 * u.mV, tau_e=5.0 * u.ms, tau_i=10.0 * u.ms,
    e_exc=0.0 * u.mV, e_inh=-80.0 * u.mV, w_e=0.6, w_i=6.7,
    v_init_mean=-55.0 * u.mV, v_init_std=5.0 * u.mV, synapses_per_neuron=80.0,
    exc_fraction=0.8,
)
FORMATS = ('csr', 'jitc', 'fixed', 'dense')


def _connectivity(fmt: str, m: int, n: int, p: float, seed: int):
    """``(m, n)`` connectivity with weight 1 per synapse, in format ``fmt``.

    'jitc' draws each pair with probability ``p`` from ``seed`` and never stores
    it; 'csr' and 'dense' are that same matrix stored; 'fixed' gives every
    presynaptic neuron exactly ``round(p * n)`` targets instead.
    """
    if fmt == 'fixed':
        return brainevent.FixedPostNumConn(m, n, conn_num=int(round(p * n)), weight=1.0,
                                           seed=seed)
    jitc = brainevent.JITCScalarR((1.0, p, seed), shape=(m, n))
    if fmt == 'jitc':
        return jitc
    if fmt == 'csr':
        return jitc.tocsr()
    return jitc.todense()


@jax.tree_util.register_pytree_node_class
class COBA:
    """The network: excitatory rows ``w_exc`` (n_exc, n), inhibitory rows ``w_inh`` (n_inh, n).

    Parameters
    ----------
    n : int
        Number of neurons (the first 80% excitatory).
    fmt : {'csr', 'jitc', 'fixed', 'dense'}
        Storage of the connectivity: CSR (stored), JITC (regenerated from the
        seed in every product), fixed out-degree (``round(p * n)`` targets per
        neuron), or dense weight arrays (the reference).
    seed : int
        Seed of the connectivity.
    p : float, optional
        Connection probability; default ``80 / n`` (about 80 synapses per neuron).
    """

    n: int
    n_exc: int
    fmt: str

    def __init__(self, n: int = 4000, fmt: str = 'csr', seed: int = 0, *, p: float | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {FORMATS}; received {fmt!r}")
        if not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"n must be an int >= 2; received {n!r}")
        p = min(1.0, PARAMS['synapses_per_neuron'] / n) if p is None else float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1]; received {p}")
        n_exc = int(PARAMS['exc_fraction'] * n)
        self._set(int(n), n_exc, fmt, _connectivity(fmt, n_exc, n, p, 2 * seed),
                  _connectivity(fmt, n - n_exc, n, p, 2 * seed + 1))

    def _set(self, n, n_exc, fmt, w_exc, w_inh):
        self.n, self.n_exc, self.fmt, self.w_exc, self.w_inh = n, n_exc, fmt, w_exc, w_inh
        return self

    def dense(self) -> 'COBA':
        """The same network with dense weight arrays (the dense-JAX reference)."""
        as_dense = (lambda w: w) if self.fmt == 'dense' else (lambda w: jnp.asarray(w.todense()))
        return object.__new__(COBA)._set(self.n, self.n_exc, 'dense', as_dense(self.w_exc),
                                         as_dense(self.w_inh))

    def __repr__(self):
        return f"COBA(n={self.n}, n_exc={self.n_exc}, fmt={self.fmt!r})"

    @property
    def synapses(self) -> int:
        """The number of synapses (counted, not stored, for JITC)."""
        def count(w):
            if self.fmt == 'dense':
                return int(jnp.count_nonzero(w))
            return int(w.nnz)
        return count(self.w_exc) + count(self.w_inh)

    def tree_flatten(self):
        return (self.w_exc, self.w_inh), (self.n, self.n_exc, self.fmt)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return object.__new__(cls)._set(*aux, *children)


@dataclass
class Result:
    """What :func:`simulate` measured. Rates in Hz, times in seconds."""
    rate_exc: float
    rate_inh: float
    n_spikes: int
    steps: int
    compile_time: float
    run_time: float
    counts: np.ndarray              # spikes of each neuron
    population: np.ndarray | None   # spikes of the whole network at each step, when kept
    spikes: np.ndarray | None       # (steps, recorded neurons) bool, when recorded
    recorded: np.ndarray            # the indices of the recorded neurons


def _mv(x):
    return float(u.Quantity(x).to_decimal(u.mV))


def _ms(x):
    return float(u.Quantity(x).to_decimal(u.ms))


# -- the neurons: one kernel per step, the reference in JAX with units, a numba twin --
#
# The state arrays are plain float32 numbers: V in mV, conductances relative to
# the leak. ``in_e`` / ``in_i`` are the inputs the previous step's spikes sent
# (``spikes @ W``, spike counts per neuron); they arrive at the start of a step.

def _neurons_jax(v, g_e, g_i, refractory, counts, in_e, in_i, *, dt):
    """One Euler step of every neuron, written with units (the reference)."""
    P = PARAMS
    g_e = g_e * (1.0 - dt / _ms(P['tau_e'])) + P['w_e'] * in_e  # decay, then the arrivals
    g_i = g_i * (1.0 - dt / _ms(P['tau_i'])) + P['w_i'] * in_i
    v = v * u.mV
    dv = (P['v_rest'] - v + g_e * (P['e_exc'] - v) + g_i * (P['e_inh'] - v)
          + P['drive']) / P['tau_m'] * (dt * u.ms)
    v = u.math.where(refractory > 0, P['v_reset'], v + dv)
    spikes = v >= P['v_th']
    v = u.math.where(spikes, P['v_reset'], v)
    refractory = jnp.where(spikes, int(round(_ms(P['refractory']) / dt)), refractory - 1)
    return [v.to_decimal(u.mV), g_e, g_i, refractory, counts + spikes, spikes]


# The same step as a numba kernel that updates the state in place (outputs
# 0-4 share the buffers of inputs 0-4): XLA then keeps the state where it is
# from step to step instead of writing five new arrays (4x faster at N = 40000).
_V_REST, _V_RESET, _V_TH = _mv(PARAMS['v_rest']), _mv(PARAMS['v_reset']), _mv(PARAMS['v_th'])
_E_EXC, _E_INH, _DRIVE = _mv(PARAMS['e_exc']), _mv(PARAMS['e_inh']), _mv(PARAMS['drive'])
_TAU_M, _TAU_E, _TAU_I = _ms(PARAMS['tau_m']), _ms(PARAMS['tau_e']), _ms(PARAMS['tau_i'])
_REFRACTORY, _W_E, _W_I = _ms(PARAMS['refractory']), PARAMS['w_e'], PARAMS['w_i']


def _neurons_numba_body(v0, g_e0, g_i0, refractory0, counts0, in_e, in_i,
                        v, g_e, g_i, refractory, counts, spikes, dt):
    f32 = np.float32  # float32 constants keep the arithmetic in float32, like the reference
    decay_e, decay_i = f32(1.0 - dt / _TAU_E), f32(1.0 - dt / _TAU_I)
    w_e, w_i, h = f32(_W_E), f32(_W_I), f32(dt / _TAU_M)
    rest_and_drive, reset, v_th = f32(_V_REST + _DRIVE), f32(_V_RESET), f32(_V_TH)
    e_exc, e_inh = f32(_E_EXC), f32(_E_INH)
    ref_steps = round(_REFRACTORY / dt)
    for k in range(v.size):
        ge = g_e[k] * decay_e + w_e * in_e[k]
        gi = g_i[k] * decay_i + w_i * in_i[k]
        g_e[k] = ge
        g_i[k] = gi
        x, r = v[k], refractory[k]
        x = reset if r > 0 else x + (rest_and_drive - x + ge * (e_exc - x) + gi * (e_inh - x)) * h
        fired = x >= v_th
        spikes[k] = fired
        v[k] = reset if fired else x
        refractory[k] = ref_steps if fired else r - 1
        counts[k] += fired


neurons = brainevent.XLACustomKernel('coba_neurons')
neurons.def_kernel('jax', ('cpu', 'gpu', 'tpu'), _neurons_jax)
try:
    neurons.def_kernel(kernel=brainevent.numba_kernel(
        _neurons_numba_body, input_output_aliases={0: 0, 1: 1, 2: 2, 3: 3, 4: 4}))
except ImportError:  # pragma: no cover - numba is a dependency on CPU
    pass


def _step_fn(net: COBA, dt: float, record, population: bool = False):
    """One Euler step of ``net`` (its matrices may be traced): ``(state, _) -> (state, out)``.

    State: ``V`` (mV), the conductances, the remaining refractory steps, the
    spike counts and the inputs the last step's spikes sent. A step lets those
    inputs arrive, integrates the neurons, finds the spikes, and sends them
    through the connectivity (event-driven: only the rows of the neurons that
    spiked are read).
    """
    n_exc = net.n_exc
    state_types = [jax.ShapeDtypeStruct((net.n,), t) for t in
                   (jnp.float32, jnp.float32, jnp.float32, jnp.int32, jnp.int32, jnp.bool_)]

    if net.fmt == 'dense':  # the dense-JAX reference: ordinary matrix-vector products
        def arriving(spikes, w):
            return spikes.astype(w.dtype) @ w
    else:
        def arriving(spikes, w):
            return brainevent.BinaryArray(spikes) @ w

    def step(state, _):
        *neuron_state, spikes = neurons(*state, outs=state_types, dt=dt)
        inputs = arriving(spikes[:n_exc], net.w_exc), arriving(spikes[n_exc:], net.w_inh)
        out = (jnp.sum(spikes, dtype=jnp.int32) if population else None, spikes[record])
        return (*neuron_state, *inputs), out
    return step


def _initial_state(net: COBA, seed: int, dtype):
    key = jax.random.key(seed)
    v = _mv(PARAMS['v_init_mean']) + _mv(PARAMS['v_init_std']) * jax.random.normal(
        key, (net.n,), dtype)
    zeros = jnp.zeros(net.n, dtype)
    zero_counts = jnp.zeros(net.n, jnp.int32)
    return v, zeros, zeros, zero_counts, zero_counts, zeros, zeros


def simulate(net: COBA, duration=1000.0, *, dt: float = 0.1, seed: int = 0,
             backend: str | None = None, record=False, population: bool = False,
             chunk: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> Result:
    """Run ``net`` for ``duration`` (ms, or a brainunit time) and measure it.

    Parameters
    ----------
    net : COBA
    duration : float or Quantity
        Biological time; ``duration / dt`` steps (rounded).
    dt : float
        Time step in ms.
    seed : int
        Seed of the initial membrane potentials.
    backend : str, optional
        Backend of the neuron update and the event-driven products (default: the
        fastest available; 'jax' runs the pure-JAX reference of both).
    record : bool, int or sequence of int
        Keep the spike raster: ``True`` for every neuron, ``k`` for the first ``k``,
        or the neurons at the given indices (in that order).
    population : bool
        Keep the number of spikes of the whole network at every step (a reduction
        per step: it costs about 15% of the loop at N = 40000).
    chunk : int, optional
        Steps per compiled ``lax.scan`` call (default: all steps in one); the
        time between chunks is where ``progress(done, total)`` is called.

    Returns
    -------
    Result
        Rates, spike counts, the population count per step (when kept), the compile time of
        the first chunk and the time of the simulation loop without it.
    """
    dt = float(dt)
    duration = _ms(duration) if isinstance(duration, u.Quantity) else float(duration)
    steps = int(round(duration / dt))
    if steps < 1:
        raise ValueError(f"duration must be at least one step of {dt} ms; received {duration} ms")
    if record is True or record is False or isinstance(record, (int, np.integer)):
        record = np.arange(net.n if record is True else int(record))
    record = np.asarray(record, np.int32)
    chunk = steps if chunk is None else max(1, min(int(chunk), steps))

    def run_chunk(net_, state, length):  # the matrices are arguments, not constants
        return jax.lax.scan(_step_fn(net_, dt, record, population), state, None, length=length)

    run_chunk = jax.jit(run_chunk, static_argnums=2)
    state = _initial_state(net, seed, jnp.float32)
    compiled, populations, rasters = {}, [], []
    with brainevent.config.backend(backend) if backend else contextlib.nullcontext():
        def compiled_for(length):
            if length not in compiled:
                compiled[length] = run_chunk.lower(net, state, length).compile()
            return compiled[length]

        start = time.perf_counter()
        compiled_for(chunk)
        compile_time = time.perf_counter() - start
        run_time, done = 0.0, 0
        while done < steps:
            length = min(chunk, steps - done)
            fn = compiled_for(length)  # a shorter last chunk compiles once more (not timed)
            start = time.perf_counter()
            state, (per_step, raster) = fn(net, state)
            jax.block_until_ready(state)
            run_time += time.perf_counter() - start
            populations.append(None if per_step is None else np.asarray(per_step))
            rasters.append(np.asarray(raster))
            done += length
            if progress is not None:
                progress(done, steps)
    counts = np.asarray(state[4])
    seconds = steps * dt / 1000.0
    return Result(
        rate_exc=float(counts[:net.n_exc].sum()) / max(net.n_exc, 1) / seconds,
        rate_inh=float(counts[net.n_exc:].sum()) / max(net.n - net.n_exc, 1) / seconds,
        n_spikes=int(counts.sum()), steps=steps, compile_time=compile_time,
        run_time=run_time, counts=counts, recorded=record,
        population=np.concatenate(populations) if populations[0] is not None else None,
        spikes=np.concatenate(rasters) if record.size else None)

