"""User kernels written with Warp and with Pallas, run through XLACustomKernel.

Each route is checked for values against numpy, under jit, vmap (the kernel
object's sequential default), lax.scan, grad and jacfwd (with JVP and
transpose rules registered on the kernel), for several outputs, static
parameters and dtypes, and for the errors it raises.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import pallas as pl
from jax.interpreters import ad

import brainevent

try:
    import warp as wp
except ImportError:  # the warp tests skip themselves
    wp = None

requires_warp = pytest.mark.skipif(wp is None, reason='warp is not installed (pip install warp-lang)')

F32 = jnp.float32
X = jnp.arange(6, dtype=F32)
B = jnp.linspace(-1.0, 1.0, 6, dtype=F32)


def f32(shape):
    return jax.ShapeDtypeStruct(shape, F32)


# Warp kernels are compiled per Python module, all at once: keep them few and
# define them here, before the first launch, so the module compiles once.
if wp is not None:
    @wp.kernel
    def warp_scale_add(x: wp.array(dtype=float), b: wp.array(dtype=float), alpha: float,
                       out: wp.array(dtype=float)):
        i = wp.tid()
        out[i] = alpha * x[i] + b[i]

    @wp.kernel
    def warp_sum_diff(x: wp.array(dtype=float), y: wp.array(dtype=float),
                      total: wp.array(dtype=float), diff: wp.array(dtype=float)):
        i = wp.tid()
        total[i] = x[i] + y[i]
        diff[i] = x[i] - y[i]

    def warp_int_scale(x: wp.array(dtype=wp.int32), k: int, out: wp.array(dtype=wp.int32)):
        i = wp.tid()
        out[i] = k * x[i]

    WARP_SCALE_ADD = brainevent.warp_kernel(warp_scale_add)
    WARP_INT_SCALE = brainevent.warp_kernel(warp_int_scale)  # a plain annotated function


def pallas_scale_add(x_ref, b_ref, out_ref, *, alpha):
    out_ref[...] = alpha * x_ref[...] + b_ref[...]


PALLAS_SCALE_ADD = brainevent.pallas_kernel(pallas_scale_add)


def add_linear_rules(op):
    """JVP and transpose of out = alpha * x + b, linear in (x, b)."""

    def jvp(primals, tangents, **params):
        tangents = [ad.instantiate_zeros(t) for t in tangents]
        return op.primitive.bind(*primals, **params), op.primitive.bind(*tangents, **params)

    def transpose(cts, x, b, **params):
        ct = ad.instantiate_zeros(cts[0])
        return [params['alpha'] * ct if ad.is_undefined_primal(x) else None,
                ct if ad.is_undefined_primal(b) else None]

    op.def_jvp_rule(jvp)
    op.def_transpose_rule(transpose)


def scale_add_op(name, impl):
    """A kernel with ``impl`` and a pure-JAX reference, and its linear rules."""
    op = brainevent.XLACustomKernel(name)
    op.def_kernel(kernel=impl)
    op.def_kernel('jax', ('cpu', 'gpu', 'tpu'), lambda x, b, *, alpha: [alpha * x + b])
    add_linear_rules(op)
    return op


def check_transformations(op, backend):
    """Values of the linear kernel under jit, vmap, scan, grad and jacfwd."""
    def call(x, b, alpha=3.0):
        return op(x, b, outs=f32(x.shape), alpha=alpha, backend=backend)

    expected = 3.0 * np.asarray(X) + np.asarray(B)
    np.testing.assert_allclose(call(X, B), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(call)(X, B), expected, rtol=1e-6)
    np.testing.assert_allclose(call(X, B, alpha=-0.5), -0.5 * np.asarray(X) + np.asarray(B),
                               rtol=1e-6)

    xs = jnp.stack([X, 2 * X, -X])
    np.testing.assert_allclose(jax.vmap(call, in_axes=(0, None))(xs, B),
                               3.0 * np.asarray(xs) + np.asarray(B), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.vmap(call))(xs, xs), 4.0 * np.asarray(xs), rtol=1e-6)

    def step(carry, _):
        nxt = call(carry, B, alpha=0.5)
        return nxt, nxt.sum()

    final, sums = jax.lax.scan(step, X, None, length=4)
    ref = np.asarray(X)
    for i in range(4):
        ref = 0.5 * ref + np.asarray(B)
        assert np.isclose(sums[i], ref.sum(), rtol=1e-5)
    np.testing.assert_allclose(final, ref, rtol=1e-5)

    w = jnp.linspace(1.0, 2.0, 6, dtype=F32)
    gx, gb = jax.grad(lambda x, b: (call(x, b) * w).sum(), argnums=(0, 1))(X, B)
    np.testing.assert_allclose(gx, 3.0 * np.asarray(w), rtol=1e-6)
    np.testing.assert_allclose(gb, np.asarray(w), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(lambda x: call(x, B).sum()))(X), np.full(6, 3.0))
    np.testing.assert_allclose(jax.jacfwd(call)(X, B), 3.0 * np.eye(6), rtol=1e-6)
    np.testing.assert_allclose(jax.jacrev(call, argnums=1)(X, B), np.eye(6), rtol=1e-6)


def check_static_errors(impl, name):
    """An unknown or a missing static parameter of a scale_add kernel is refused by name."""
    with pytest.raises(TypeError, match=rf"'{name}': unknown static parameter\(s\) \['beta'\]"
                                        r".*\['alpha'\]"):
        impl(X, B, outs=f32((6,)), alpha=1.0, beta=2.0)
    with pytest.raises(TypeError, match=rf"'{name}': static parameter\(s\) \['alpha'\]"):
        impl(X, B, outs=f32((6,)))


# -- warp ---------------------------------------------------------------------

@requires_warp
def test_warp_values_and_transformations():
    op = scale_add_op('test_warp_scale_add', WARP_SCALE_ADD)
    assert op.backends('cpu')[0] == 'warp'  # before the pure-JAX reference on the CPU
    check_transformations(op, 'warp')
    np.testing.assert_allclose(op(X, B, outs=f32((6,)), alpha=3.0, backend='jax'),
                               op(X, B, outs=f32((6,)), alpha=3.0, backend='warp'), rtol=1e-6)


@requires_warp
def test_warp_standalone_call():
    single = WARP_SCALE_ADD(X, B, outs=f32((6,)), alpha=2.0)
    np.testing.assert_allclose(single, 2.0 * np.asarray(X) + np.asarray(B), rtol=1e-6)
    [listed] = WARP_SCALE_ADD(X, B, outs=[f32((6,))], alpha=2.0)
    np.testing.assert_allclose(listed, single)
    jitted = jax.jit(lambda x: WARP_SCALE_ADD(x, x, outs=f32(x.shape), alpha=1.0))
    np.testing.assert_allclose(jitted(X), 2.0 * np.asarray(X))
    batched = jax.vmap(lambda x: WARP_SCALE_ADD(x, B, outs=f32(x.shape), alpha=1.0))
    xs = jnp.stack([X, -X])
    np.testing.assert_allclose(batched(xs), np.asarray(xs) + np.asarray(B), rtol=1e-6)


@requires_warp
def test_warp_multiple_outputs():
    op = brainevent.XLACustomKernel('test_warp_sum_diff')
    op.def_kernel(kernel=brainevent.warp_kernel(warp_sum_diff))
    total, diff = op(X, B, outs=[f32((6,)), f32((6,))])
    np.testing.assert_allclose(total, np.asarray(X) + np.asarray(B), rtol=1e-6)
    np.testing.assert_allclose(diff, np.asarray(X) - np.asarray(B), rtol=1e-6)
    totals, diffs = jax.jit(jax.vmap(lambda x: op(x, B, outs=[f32((6,)), f32((6,))])))(
        jnp.stack([X, 2 * X]))
    np.testing.assert_allclose(totals[1], 2 * np.asarray(X) + np.asarray(B), rtol=1e-6)
    np.testing.assert_allclose(diffs[0], np.asarray(X) - np.asarray(B), rtol=1e-6)


@requires_warp
def test_warp_int32_and_static_values():
    op = brainevent.XLACustomKernel('test_warp_int_scale')
    op.def_kernel(kernel=WARP_INT_SCALE)
    x = jnp.arange(5, dtype=jnp.int32)
    outs = jax.ShapeDtypeStruct((5,), jnp.int32)
    two, three = op(x, outs=outs, k=2), jax.jit(lambda v: op(v, outs=outs, k=3))(x)
    assert two.dtype == jnp.int32 and three.dtype == jnp.int32
    np.testing.assert_array_equal(two, 2 * np.arange(5))
    np.testing.assert_array_equal(three, 3 * np.arange(5))
    np.testing.assert_array_equal(op(x, outs=outs, k=np.int64(-1)), -np.arange(5))


@requires_warp
def test_warp_launch_dims():
    # the outputs are uninitialised: launch over all of them, given statically or computed
    static = brainevent.warp_kernel(dim=6)(warp_scale_add)
    computed = brainevent.warp_kernel(dim=lambda outs, alpha: outs[0].shape)(warp_scale_add)
    for impl in (static, computed):
        np.testing.assert_allclose(impl(X, B, outs=f32((6,)), alpha=4.0),
                                   4.0 * np.asarray(X) + np.asarray(B), rtol=1e-6)
    with pytest.raises(TypeError, match=r"'warp_scale_add'.*dim must be.*'six'"):
        brainevent.warp_kernel(warp_scale_add, dim='six')
    with pytest.raises(TypeError, match=r"'warp_scale_add'.*dim must be.*2\.5"):
        brainevent.warp_kernel(warp_scale_add, dim=lambda outs, alpha: 2.5)(
            X, B, outs=f32((6,)), alpha=1.0)


@requires_warp
def test_warp_errors():
    check_static_errors(WARP_SCALE_ADD, 'warp_scale_add')
    with pytest.raises(TypeError, match=r"static parameter 'k' has dtype int32.*2\.5"):
        WARP_INT_SCALE(jnp.arange(3, dtype=jnp.int32),
                       outs=jax.ShapeDtypeStruct((3,), jnp.int32), k=2.5)
    with pytest.raises(TypeError, match=r"output 'out' must be a rank-1 float32.*int32"):
        WARP_SCALE_ADD(X, B, outs=jax.ShapeDtypeStruct((6,), jnp.int32), alpha=1.0)
    with pytest.raises(TypeError, match=r"input 'x' must be a rank-1 float32.*\(2, 3\)"):
        WARP_SCALE_ADD(X.reshape(2, 3), B, outs=f32((6,)), alpha=1.0)
    with pytest.raises(TypeError, match=r"'warp_scale_add' takes 2 input array\(s\).*passes 1"):
        WARP_SCALE_ADD(X, outs=f32((6,)), alpha=1.0)
    with pytest.raises(TypeError, match=r"parameter 'alpha' would be an output"):
        WARP_SCALE_ADD(X, outs=[f32((6,)), f32((6,))], alpha=1.0)
    with pytest.raises(TypeError, match=r"outs must be a jax.ShapeDtypeStruct.*item 0 is 6"):
        WARP_SCALE_ADD(X, B, outs=6, alpha=1.0)
    with pytest.raises(TypeError, match=r"warp_kernel needs a Warp kernel.*'not a kernel'.*str"):
        brainevent.warp_kernel('not a kernel')
    op = brainevent.XLACustomKernel('test_warp_errors')
    op.def_kernel(kernel=WARP_SCALE_ADD)
    with pytest.raises(TypeError, match=r"unknown static parameter\(s\) \['gamma'\]"):
        jax.jit(lambda x: op(x, x, outs=f32((6,)), alpha=1.0, gamma=0))(X)


def test_warp_missing_says_how_to_install(monkeypatch):
    from brainevent.backends import _warp
    monkeypatch.setitem(sys.modules, 'warp', None)  # import warp now raises ImportError
    with pytest.raises(ImportError, match=r"pip install warp-lang.*brainevent\[warp\]"):
        _warp.warp_kernel(lambda x: None)


# -- pallas -------------------------------------------------------------------

def test_pallas_values_and_transformations():
    op = scale_add_op('test_pallas_scale_add', PALLAS_SCALE_ADD)
    assert op.backends('cpu') == ['jax', 'pallas']  # interpreted on the CPU: not the default
    check_transformations(op, 'pallas')


def test_pallas_standalone_call():
    single = PALLAS_SCALE_ADD(X, B, outs=f32((6,)), alpha=2.0)
    np.testing.assert_allclose(single, 2.0 * np.asarray(X) + np.asarray(B), rtol=1e-6)
    [listed] = PALLAS_SCALE_ADD(X, B, outs=[f32((6,))], alpha=2.0)
    np.testing.assert_allclose(listed, single)
    batched = jax.jit(jax.vmap(lambda x: PALLAS_SCALE_ADD(x, B, outs=f32(x.shape), alpha=1.0)))
    xs = jnp.stack([X, -X])
    np.testing.assert_allclose(batched(xs), np.asarray(xs) + np.asarray(B), rtol=1e-6)


def test_pallas_multiple_outputs_with_grid():
    @brainevent.pallas_kernel(
        grid=lambda outs, block: (outs[0].shape[0] // block,),
        in_specs=lambda outs, block: [pl.BlockSpec((block,), lambda i: (i,))] * 2,
        out_specs=lambda outs, block: [pl.BlockSpec((block,), lambda i: (i,))] * 2)
    def sum_diff(x_ref, y_ref, total_ref, diff_ref, block):
        total_ref[...] = x_ref[...] + y_ref[...]
        diff_ref[...] = x_ref[...] - y_ref[...] + jnp.float32(block)

    op = brainevent.XLACustomKernel('test_pallas_sum_diff')
    op.def_kernel(kernel=sum_diff)
    for block in (2, 3):
        total, diff = jax.jit(lambda x, y: op(x, y, outs=[f32((6,)), f32((6,))], block=block))(
            X, B)
        np.testing.assert_allclose(total, np.asarray(X) + np.asarray(B), rtol=1e-6)
        np.testing.assert_allclose(diff, np.asarray(X) - np.asarray(B) + block, rtol=1e-6)


def test_pallas_int32_and_static_values():
    @brainevent.pallas_kernel(grid=(2,), in_specs=[pl.BlockSpec((2, 3), lambda i: (i, 0))],
                              out_specs=pl.BlockSpec((2, 3), lambda i: (i, 0)))
    def int_scale(x_ref, out_ref, *, k=2):
        out_ref[...] = k * x_ref[...]

    op = brainevent.XLACustomKernel('test_pallas_int_scale')
    op.def_kernel(kernel=int_scale)
    x = jnp.arange(12, dtype=jnp.int32).reshape(4, 3)
    outs = jax.ShapeDtypeStruct((4, 3), jnp.int32)
    default, five = op(x, outs=outs), jax.jit(lambda v: op(v, outs=outs, k=5))(x)
    assert default.dtype == jnp.int32 and five.dtype == jnp.int32
    np.testing.assert_array_equal(default, 2 * np.arange(12).reshape(4, 3))
    np.testing.assert_array_equal(five, 5 * np.arange(12).reshape(4, 3))


def test_pallas_interpret_choice():
    # interpret=None runs on the CPU (interpreted); asking for a compiled kernel there fails
    compiled = brainevent.pallas_kernel(pallas_scale_add, interpret=False)
    interpreted = brainevent.pallas_kernel(pallas_scale_add, interpret=True)
    np.testing.assert_allclose(interpreted(X, B, outs=f32((6,)), alpha=1.0),
                               np.asarray(X) + np.asarray(B), rtol=1e-6)
    if jax.default_backend() == 'cpu':
        with pytest.raises(Exception, match='interpret'):
            compiled(X, B, outs=f32((6,)), alpha=1.0)


def test_pallas_interpret_follows_the_lowering_platform():
    """interpret=None picks per platform at lowering, not by the process' default backend."""
    x8 = jnp.arange(8, dtype=F32)

    def lowered(impl, platform):
        f = jax.jit(lambda x: impl(x, x, outs=f32((8,)), alpha=1.0))
        return f.trace(x8).lower(lowering_platforms=(platform,)).as_text()

    interpreted = brainevent.pallas_kernel(pallas_scale_add, interpret=True)
    assert 'custom_call' not in lowered(PALLAS_SCALE_ADD, 'cpu')  # plain JAX operations
    assert 'custom_call' not in lowered(interpreted, 'cuda')
    try:
        text = lowered(PALLAS_SCALE_ADD, 'cuda')
    except ValueError as err:  # a CPU-only jaxlib cannot lower the compiled kernel
        assert 'Cannot lower pallas_call on platform: gpu' in str(err)
    else:
        assert 'custom_call' in text  # the compiled kernel

def test_pallas_errors():
    check_static_errors(PALLAS_SCALE_ADD, 'pallas_scale_add')
    with pytest.raises(TypeError, match=r"'pallas_scale_add' takes 3 ref parameters.*passes 4"):
        PALLAS_SCALE_ADD(X, B, X, outs=f32((6,)), alpha=1.0)
    with pytest.raises(TypeError, match=r"outs must be a jax.ShapeDtypeStruct.*item 1 is None"):
        PALLAS_SCALE_ADD(X, B, outs=[f32((6,)), None], alpha=1.0)
    with pytest.raises(TypeError, match=r"pallas_kernel needs a function.*received 3"):
        brainevent.pallas_kernel(3)
    op = brainevent.XLACustomKernel('test_pallas_errors')
    op.def_kernel(kernel=PALLAS_SCALE_ADD)
    with pytest.raises(TypeError, match=r"unknown static parameter\(s\) \['gamma'\]"):
        jax.jit(lambda x: op(x, x, outs=f32((6,)), alpha=1.0, gamma=0, backend='pallas'))(X)
