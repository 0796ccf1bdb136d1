"""The COBA network: 4000 leaky integrate-and-fire neurons with conductance synapses.

Vogels & Abbott (2005), benchmark 1 of Brette et al. (2007), simulated with
event-driven products under ``lax.scan``. Copy this file to start a model of
your own: the network is two connectivity matrices and one ``step`` function.

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


def _step_fn(net: COBA, dt: float, record, population: bool = False):
    """One Euler step of ``net`` (its matrices may be traced): ``(state, _) -> (state, out)``.

    State: ``V`` (mV, a brainunit quantity), the conductances ``g_e`` and ``g_i``
    this step integrates with, the remaining refractory steps and the spike
    counts. A step integrates ``V``, finds the spikes, then decays the
    conductances and adds the input those spikes send for the next step.
    """
    P = PARAMS
    dt_q = dt * u.ms
    decay_e = 1.0 - dt / _ms(P['tau_e'])
    decay_i = 1.0 - dt / _ms(P['tau_i'])
    ref_steps = int(round(_ms(P['refractory']) / dt))
    n_exc = net.n_exc

    if net.fmt == 'dense':  # the dense-JAX reference: ordinary matrix-vector products
        def arriving(spikes, w):
            return spikes.astype(w.dtype) @ w
    else:  # event-driven: only the rows of the neurons that spiked are read
        def arriving(spikes, w):
            return brainevent.BinaryArray(spikes) @ w

    def step(state, _):
        v, g_e, g_i, refractory, counts = state
        dv = (P['v_rest'] - v + g_e * (P['e_exc'] - v) + g_i * (P['e_inh'] - v)
              + P['drive']) / P['tau_m'] * dt_q
        v = u.math.where(refractory > 0, P['v_reset'], v + dv)
        spikes = v >= P['v_th']
        v = u.math.where(spikes, P['v_reset'], v)
        refractory = jnp.where(spikes, ref_steps, refractory - 1)
        counts = counts + spikes
        # the conductances the next step uses: decay, plus this step's spikes arriving
        g_e = g_e * decay_e + P['w_e'] * arriving(spikes[:n_exc], net.w_exc)
        g_i = g_i * decay_i + P['w_i'] * arriving(spikes[n_exc:], net.w_inh)
        out = (jnp.sum(spikes, dtype=jnp.int32) if population else None, spikes[record])
        return (v, g_e, g_i, refractory, counts), out
    return step


def _initial_state(net: COBA, seed: int, dtype):
    key = jax.random.key(seed)
    v = (_mv(PARAMS['v_init_mean']) + _mv(PARAMS['v_init_std'])
         * jax.random.normal(key, (net.n,), dtype)) * u.mV
    zeros = jnp.zeros(net.n, dtype)
    return v, zeros, zeros, jnp.zeros(net.n, jnp.int32), jnp.zeros(net.n, jnp.int32)


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
        Backend of the event-driven products (default: the fastest available).
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
    counts = np.asarray(state[-1])
    seconds = steps * dt / 1000.0
    return Result(
        rate_exc=float(counts[:net.n_exc].sum()) / max(net.n_exc, 1) / seconds,
        rate_inh=float(counts[net.n_exc:].sum()) / max(net.n - net.n_exc, 1) / seconds,
        n_spikes=int(counts.sum()), steps=steps, compile_time=compile_time,
        run_time=run_time, counts=counts, recorded=record,
        population=np.concatenate(populations) if populations[0] is not None else None,
        spikes=np.concatenate(rasters) if record.size else None)

