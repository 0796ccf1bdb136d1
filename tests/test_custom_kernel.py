"""XLACustomKernel and numba_kernel: a user's operation under jit, grad, vmap and scan."""

import itertools

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import brainevent
from brainevent.backends import KernelImplementation, all_kernels

_ids = itertools.count()


def fresh(name):
    """Kernel names are global: every test declares its own."""
    return brainevent.XLACustomKernel(f'test_{name}_{next(_ids)}')


def sds(x, dtype=None):
    return jax.ShapeDtypeStruct(np.shape(x), dtype or x.dtype)


@brainevent.numba_kernel
def scale_body(x, out, alpha=1.0):
    for i in range(x.size):
        out.flat[i] = alpha * x.flat[i]


@brainevent.numba_kernel
def stats_body(x, total, shifted, shift=0):
    s = x.dtype.type(0)
    for i in range(x.size):
        s += x[i]
        shifted[i] = x[i] + shift
    total[0] = s


def scale_kernel(with_rules=True):
    """y = alpha * x on numba and jax; a JVP and a transpose rule make it differentiable."""
    k = fresh('scale')
    k.def_kernel(kernel=scale_body)
    k.def_kernel('jax', ('cpu', 'gpu', 'tpu'), lambda x, *, alpha=1.0: x * alpha)
    if with_rules:
        @k.def_jvp_rule
        def jvp(primals, tangents, **params):
            x, = primals
            t, = tangents
            y = k.primitive.bind(x, **params)
            t = jnp.zeros_like(x) if type(t) is jax.interpreters.ad.Zero else t
            return y, k.primitive.bind(t, **params)

        @k.def_transpose_rule
        def transpose(cts, x, **params):
            ct, = cts
            return [k.primitive.bind(ct, **params)[0]]
    return k


BACKENDS = ['numba', 'jax']


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('dtype', [np.float32, np.float64, np.int32])
def test_values_and_static_parameters(backend, dtype):
    k = scale_kernel(with_rules=False)
    x = np.arange(-3, 5).astype(dtype)
    for alpha in (2, 3):
        y = k(x, outs=sds(x), alpha=alpha, backend=backend)
        np.testing.assert_array_equal(np.asarray(y), alpha * x)
        assert y.dtype == jax.dtypes.canonicalize_dtype(dtype)  # float64 needs jax_enable_x64


@pytest.mark.parametrize('backend', BACKENDS)
def test_jit_scan_vmap(backend):
    k = scale_kernel(with_rules=False)
    x = jnp.linspace(-1.0, 1.0, 6, dtype=jnp.float32)
    f = jax.jit(lambda v: k(v, outs=sds(v), alpha=0.5, backend=backend))
    np.testing.assert_allclose(f(x), 0.5 * np.asarray(x), rtol=1e-6)

    def step(c, _):
        return k(c, outs=sds(c), alpha=2.0, backend=backend), c.sum()
    final, sums = jax.lax.scan(step, x, None, length=4)
    np.testing.assert_allclose(final, 16.0 * np.asarray(x), rtol=1e-6)
    np.testing.assert_allclose(sums, [np.sum(x) * 2.0 ** i for i in range(4)], rtol=1e-5, atol=1e-6)

    batch = jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4)
    out = jax.vmap(lambda v: k(v, outs=sds(v), alpha=3.0, backend=backend))(batch)
    np.testing.assert_allclose(out, 3.0 * np.asarray(batch))
    out = jax.vmap(lambda v: k(v, outs=sds(v), alpha=3.0, backend=backend), in_axes=1,
                   out_axes=1)(batch)
    np.testing.assert_allclose(out, 3.0 * np.asarray(batch))


@pytest.mark.parametrize('backend', BACKENDS)
def test_grad_through_rules(backend):
    k = scale_kernel()
    x = jnp.array([1.0, -2.0, 3.0], jnp.float32)
    w = jnp.array([0.5, 1.0, 2.0], jnp.float32)

    def loss(v):
        return jnp.sum(w * k(v, outs=sds(v), alpha=1.5, backend=backend) ** 2)
    np.testing.assert_allclose(jax.grad(loss)(x), 2 * 1.5 ** 2 * np.asarray(w * x), rtol=1e-6)
    np.testing.assert_allclose(jax.jacfwd(lambda v: k(v, outs=sds(v), alpha=1.5,
                                                      backend=backend))(x),
                               1.5 * np.eye(3), rtol=1e-6)
    # under vmap and jit together
    g = jax.jit(jax.vmap(jax.grad(loss)))(jnp.stack([x, 2 * x]))
    np.testing.assert_allclose(g[1], 2 * 1.5 ** 2 * np.asarray(w * 2 * x), rtol=1e-6)


def test_multiple_outputs_and_list_results():
    k = fresh('stats')
    k.def_kernel(kernel=stats_body)
    x = jnp.array([1, 2, 3, 4], jnp.int32)
    total, shifted = k(x, outs=[sds((1,), jnp.int32), sds(x)], shift=10)
    assert total.tolist() == [10] and shifted.tolist() == [11, 12, 13, 14]
    outs = k(x, outs=[sds((1,), jnp.int32), sds(x)])
    assert isinstance(outs, list) and outs[1].tolist() == [1, 2, 3, 4]
    # the implementation alone, without a kernel object
    total, shifted = stats_body(x, outs=[sds((1,), jnp.int32), sds(x)], shift=-1)
    assert total.tolist() == [10] and shifted.tolist() == [0, 1, 2, 3]


def test_scalars_and_bool_buffers():
    @brainevent.numba_kernel
    def count(spikes, threshold, out):
        n = 0
        for i in range(spikes.size):
            if spikes[i] and i >= threshold[0]:
                n += 1
        out[0] = n

    spikes = jnp.array([True, False, True, True])
    out = count(spikes, jnp.int32(1), outs=jax.ShapeDtypeStruct((), jnp.int32))
    assert out.shape == () and int(out) == 2


def test_parallel_loops():
    import numba

    @brainevent.numba_kernel(parallel=True, fastmath=True)
    def double(x, out):
        for i in numba.prange(x.size):
            out[i] = 2 * x[i]

    x = jnp.arange(10000, dtype=jnp.int32)
    np.testing.assert_array_equal(jax.jit(lambda v: double(v, outs=sds(v)))(x),
                                  2 * np.arange(10000))


def test_in_place_outputs_leave_the_inputs_intact():
    @brainevent.numba_kernel(input_output_aliases={0: 0})
    def decay(x, y, out, factor=0.5):
        for i in range(out.size):
            out[i] = out[i] * factor + y[i]  # ``out`` starts with x's values

    x = jnp.arange(4.0)
    y = jnp.ones(4)
    out = decay(x, y, outs=sds(x))
    np.testing.assert_array_equal(out, [1.0, 1.5, 2.0, 2.5])
    np.testing.assert_array_equal(x, [0.0, 1.0, 2.0, 3.0])  # XLA copied x first

    def step(c, _):
        return decay(c, y, outs=sds(c), factor=0.5), None
    final, _ = jax.lax.scan(step, x, None, length=3)
    expected = np.asarray(x)
    for _ in range(3):
        expected = expected * 0.5 + 1.0
    np.testing.assert_allclose(final, expected)
    with pytest.raises(ValueError, match='aliases input 0'):
        decay(x, y, outs=sds(x, jnp.int32))


@settings(max_examples=15, deadline=None)
@given(x=hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
                    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
                    elements=st.integers(0, 50).map(float)),
       alpha=st.integers(-3, 3))
def test_numba_matches_jax_for_any_shape(x, alpha):
    k = SHARED
    got = k(x, outs=sds(x), alpha=alpha, backend='numba')
    want = k(x, outs=sds(x), alpha=alpha, backend='jax')
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert got.shape == x.shape


SHARED = scale_kernel(with_rules=False)


# -- backend selection -------------------------------------------------------

def test_default_is_the_fastest_and_can_be_changed():
    k = scale_kernel(with_rules=False)
    assert k.backends('cpu') == ['numba', 'jax']
    assert k.resolve_backend(platform='cpu') == 'numba'
    with brainevent.config.backend('jax'):
        assert k.resolve_backend(platform='cpu') == 'jax'
    k.def_kernel('mine', 'cpu', lambda x, *, alpha=1.0: x * alpha * 1.0)
    assert k.backends('cpu') == ['numba', 'mine', 'jax']  # a user's backend goes before jax
    k.def_kernel('slow', 'cpu', lambda x, *, alpha=1.0: x * alpha, default=True)
    assert k.backends('cpu')[0] == 'slow'
    assert k.backends('gpu') == ['jax']


def test_package_operations_are_declared_as_kernels():
    kernels = all_kernels()
    for name in ('csr_matmul', 'coo_matmul', 'fixed_matmul', 'jitc_normal_matmul', 'entry_update',
                 'dense_update'):
        assert isinstance(kernels[name], brainevent.XLACustomKernel), name
        assert 'jax' in kernels[name].backends('cpu')
    assert kernels['csr_matmul'].backends('cpu')[0] == 'numba'
    assert isinstance(scale_body, KernelImplementation)
    assert (scale_body.backend, scale_body.platforms) == ('numba', ('cpu',))


def test_info_lists_every_operation_with_its_backends():
    from brainevent._tools import collect_info
    k = scale_kernel(with_rules=False)
    info = collect_info()
    ops = {row['name']: row['backends'] for row in info['operations']}
    assert ops[k.name] == {'cpu': ['numba', 'jax'], 'gpu': ['jax'], 'tpu': ['jax']}
    assert ops['csr_matmul']['cpu'][0] == 'numba'


# -- bad input -----------------------------------------------------------------

def test_errors_name_the_argument():
    k = scale_kernel(with_rules=False)
    x = jnp.ones(3)
    with pytest.raises(TypeError, match='outs=jax.ShapeDtypeStruct'):
        k(x)
    with pytest.raises(TypeError, match='outs must be a jax.ShapeDtypeStruct.*item 0'):
        k(x, outs=[(3,)])
    with pytest.raises(TypeError, match=r'static parameter alpha=.*must be hashable'):
        k(x, outs=sds(x), alpha=np.ones(2))
    with pytest.raises(ValueError, match=r"backend 'warp' is not available .* registered there: "
                                         r"\['numba', 'jax'\]"):
        k(x, outs=sds(x), backend='warp')
    with pytest.raises(ValueError, match='already declared'):
        brainevent.XLACustomKernel(k.name)
    with pytest.raises(TypeError, match='name must be a non-empty string'):
        brainevent.XLACustomKernel('')
    with pytest.raises(ValueError, match=r"platform must be one of .* received 'gpu0'"):
        k.def_kernel('jax', 'gpu0', lambda x: x)
    with pytest.raises(TypeError, match='kernel must be callable'):
        k.def_kernel('jax', 'cpu', 3)
    with pytest.raises(TypeError, match='platform is required'):
        k.def_kernel('jax', None, lambda x: x)
    with pytest.raises(TypeError, match=r"returned \[float32\[3\]\]; the kernel declares "
                                        r"\[int32\[3\]\]"):
        k(x, outs=sds(x, jnp.int32), backend='jax')
    with pytest.raises(NotImplementedError, match="no implementation for platform 'gpu'"):
        fresh('nothing').resolve_backend(platform='gpu')


def test_numba_kernel_errors():
    with pytest.raises(TypeError, match='needs a Python function'):
        brainevent.numba_kernel(3)
    with pytest.raises(TypeError, match="parameter 'alpha' is keyword-only"):
        @brainevent.numba_kernel
        def kw(x, out, *, alpha=1.0):
            pass
    with pytest.raises(TypeError, match='input_output_aliases must map'):
        brainevent.numba_kernel(input_output_aliases={'x': 0})(lambda x, out: None)
    x = jnp.ones(3)
    with pytest.raises(TypeError, match=r"unknown static parameter\(s\) \['beta'\]"):
        scale_body(x, outs=sds(x), beta=1.0)
    with pytest.raises(TypeError, match="static parameter 'alpha' has no default"):
        brainevent.numba_kernel(lambda x, out, alpha: None)(x, outs=sds(x))
    with pytest.raises(TypeError, match='takes 3 parameters; the call passes 4 buffers'):
        scale_body(x, x, x, outs=sds(x))
    with pytest.raises(TypeError, match=r"'scale_body' does not compile for the buffers "
                                        r"\(float32\[3\], float32\[3\], float32\[3\]\)"):
        scale_body(x, x, outs=sds(x))  # ``alpha`` received a buffer
    with pytest.raises(TypeError, match='input 0 has dtype complex64'):
        scale_body(jnp.ones(2, jnp.complex64), outs=sds((2,), jnp.complex64))
    with pytest.raises(ValueError, match='refers past the 1 inputs'):
        brainevent.numba_kernel(input_output_aliases={1: 0})(lambda x, out: None)(
            x, outs=sds(x))
