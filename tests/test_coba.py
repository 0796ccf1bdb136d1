"""The COBA example network (brainevent.examples.coba) and the ``brainevent demo`` command.

* At N = 4000 and 1 s the mean excitatory and inhibitory rates lie in 15-25 Hz
  for several seeds (independent simulators give 19-23 Hz for this network).
* An event-driven run and the dense-weights run of the same network give the
  same spike trains, spike for spike, on every CPU backend (the matrices hold
  weight 1 per synapse, so the arriving input is an exact count).
* CSR and JITC hold the same connectivity (the CSR is the JITC matrix stored), so
  their runs are identical too; chunked runs equal one-chunk runs.
"""

import importlib.util

import brainunit as u
import numpy as np
import pytest

import brainevent as be
from brainevent.__main__ import main
from brainevent.examples import coba


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_rates_at_4000_neurons_are_plausible(seed):
    result = coba.simulate(coba.COBA(4000, 'csr', seed=seed), 1000.0, seed=seed,
                           population=True)
    assert result.steps == 10000
    assert 15.0 <= result.rate_exc <= 25.0, result.rate_exc
    assert 15.0 <= result.rate_inh <= 25.0, result.rate_inh
    assert result.n_spikes == result.counts.sum() == result.population.sum()


@pytest.mark.parametrize('fmt', ['jitc', 'fixed'])
def test_other_formats_give_plausible_rates(fmt):
    result = coba.simulate(coba.COBA(4000, fmt, seed=3), 1000.0, seed=3)
    assert 15.0 <= result.rate_exc <= 25.0 and 15.0 <= result.rate_inh <= 25.0, \
        (result.rate_exc, result.rate_inh)


@pytest.mark.parametrize('fmt', ['csr', 'jitc', 'fixed'])
def test_event_driven_run_equals_dense_run(fmt, backend):
    net = coba.COBA(800, fmt, seed=5)
    event = coba.simulate(net, 200.0, seed=5, record=True)
    dense = coba.simulate(net.dense(), 200.0, seed=5, record=True)
    assert event.n_spikes > 100, event.n_spikes  # the network is active
    np.testing.assert_array_equal(event.spikes, dense.spikes)
    np.testing.assert_array_equal(event.counts, dense.counts)


def test_csr_and_jitc_hold_the_same_network():
    csr, jitc = coba.COBA(600, 'csr', seed=2), coba.COBA(600, 'jitc', seed=2)
    np.testing.assert_array_equal(np.asarray(csr.w_exc.todense()),
                                  np.asarray(jitc.w_exc.todense()))
    a = coba.simulate(csr, 100.0, seed=4, record=True)
    b = coba.simulate(jitc, 100.0, seed=4, record=True)
    np.testing.assert_array_equal(a.spikes, b.spikes)


def test_network_structure():
    net = coba.COBA(1000, 'fixed', seed=0)
    assert (net.n, net.n_exc) == (1000, 800)
    assert net.w_exc.shape == (800, 1000) and net.w_inh.shape == (200, 1000)
    assert net.w_exc.conn_num == 80 and net.synapses == 1000 * 80
    dense = net.dense()
    assert dense.fmt == 'dense' and dense.w_exc.shape == (800, 1000)
    np.testing.assert_array_equal(np.asarray(dense.w_exc), np.asarray(net.w_exc.todense()))
    csr = coba.COBA(4000, 'csr', seed=0)
    assert 0.8 * 80 * 4000 < csr.synapses < 1.2 * 80 * 4000  # Bernoulli, p = 80 / n


def test_chunks_recording_and_units():
    progress = []
    net = coba.COBA(500, 'csr', seed=1)
    whole = coba.simulate(net, 60.0, seed=1, record=True, population=True)
    chunked = coba.simulate(net, 60.0 * u.ms, seed=1, record=[3, 450, 7], chunk=250,
                            population=True,
                            progress=lambda done, total: progress.append((done, total)))
    assert chunked.steps == whole.steps == 600
    np.testing.assert_array_equal(chunked.counts, whole.counts)
    np.testing.assert_array_equal(chunked.population, whole.population)
    np.testing.assert_array_equal(chunked.spikes, whole.spikes[:, [3, 450, 7]])
    assert progress == [(250, 600), (500, 600), (600, 600)]
    assert whole.spikes.shape == (600, 500) and chunked.recorded.tolist() == [3, 450, 7]
    bare = coba.simulate(net, 10.0)
    assert bare.spikes is None and bare.population is None
    np.testing.assert_array_equal(whole.population, whole.spikes.sum(axis=1))



def test_bad_arguments():
    with pytest.raises(ValueError, match='fmt'):
        coba.COBA(100, 'bsr')
    with pytest.raises(ValueError, match='n must be'):
        coba.COBA(1)
    with pytest.raises(ValueError, match='p must be'):
        coba.COBA(100, p=1.5)
    with pytest.raises(ValueError, match='duration'):
        coba.simulate(coba.COBA(100), 0.01)


def test_demo_command(capsys):
    assert main(['demo', '--neurons', '600', '--duration', '100', '--format', 'jitc',
                 '--compare-dense', '--seed', '3']) == 0
    out = capsys.readouterr().out
    assert 'firing rates: excitatory' in out and 'Hz' in out
    assert 'compile:' in out and 'simulation loop:' in out
    assert 'same spikes as event-driven: yes' in out


@pytest.mark.skipif(importlib.util.find_spec('matplotlib') is None,
                    reason='matplotlib (the plot extra) is not installed')
def test_demo_plot(tmp_path, capsys):
    path = tmp_path / 'raster.png'
    assert main(['demo', '--neurons', '500', '--duration', '50', '--plot', str(path)]) == 0
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b'\x89PNG'


def test_demo_rejects_unknown_format():
    with pytest.raises(SystemExit):
        main(['demo', '--format', 'bsr'])


def test_backend_choice_is_used():
    net = coba.COBA(400, 'csr', seed=0)
    a = coba.simulate(net, 30.0, backend='jax', record=True)
    b = coba.simulate(net, 30.0, backend='numba', record=True) \
        if 'numba' in be.backends.all_kernels()['csr_matmul'].backends('cpu') else a
    np.testing.assert_array_equal(a.spikes, b.spikes)


def test_neuron_kernel_backends_agree():
    """The numba neuron update (in place) against the pure-JAX reference with units, one step."""
    import jax
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    n = 5000
    state = (rng.uniform(-75.0, -45.0, n).astype(np.float32),      # V, some above threshold
             rng.uniform(0.0, 2.0, n).astype(np.float32),          # g_e
             rng.uniform(0.0, 5.0, n).astype(np.float32),          # g_i
             rng.integers(-3, 50, n).astype(np.int32),             # refractory steps left
             rng.integers(0, 9, n).astype(np.int32),               # counts
             rng.integers(0, 3, n).astype(np.float32),             # arriving excitatory spikes
             rng.integers(0, 2, n).astype(np.float32))             # arriving inhibitory spikes
    outs = [jax.ShapeDtypeStruct((n,), t) for t in
            (jnp.float32, jnp.float32, jnp.float32, jnp.int32, jnp.int32, jnp.bool_)]
    backends = coba.neurons.backends('cpu')
    assert backends[-1] == 'jax'
    ref = [np.asarray(x) for x in coba.neurons(*state, outs=outs, dt=0.1, backend='jax')]
    v = np.asarray(state[0])
    fired = ref[5]
    assert 0 < fired.sum() < n and not fired[state[3] > 0].any()  # refractory neurons are silent
    assert (ref[0][fired] == -60.0).all() and (ref[3][fired] == 50).all()
    np.testing.assert_array_equal(ref[4], state[4] + fired)
    np.testing.assert_allclose(ref[1], state[1] * 0.98 + 0.6 * state[5], rtol=1e-6)
    for backend in backends[:-1]:
        got = [np.asarray(x) for x in coba.neurons(*state, outs=outs, dt=0.1, backend=backend)]
        np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-4)
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-6)
        np.testing.assert_allclose(got[2], ref[2], rtol=1e-6)
        for a, b in zip(got[3:], ref[3:]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.asarray(state[0]), v)  # inputs are left as they were
