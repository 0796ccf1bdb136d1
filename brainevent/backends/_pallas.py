"""``pallas_kernel``: a Pallas kernel as a kernel implementation (GPU, TPU, and CPU interpreted).

The kernel function receives one ref per input array, then one ref per
output, and the call's static parameters as keyword arguments (bound with
``functools.partial``: they are Python values while the kernel is traced).
The implementation emits ``jax.experimental.pallas.pallas_call`` with the
declared outputs as ``out_shape``.

``interpret=None`` (the default) compiles the kernel on GPU and TPU and runs
it in Pallas' interpreter on the CPU, where it cannot be compiled. The choice
is staged with ``jax.lax.platform_dependent``: both variants are traced and
only the one for the platform being compiled for is lowered, so it is right
even when a program is lowered for a device other than the default one.
"""

import functools
import inspect

import jax

from ._kernel import KernelImplementation, _as_outs

__all__ = ['pallas_kernel', 'PallasKernel']

_OPTIONS = ('grid', 'in_specs', 'out_specs')


class PallasKernel(KernelImplementation):
    """A Pallas kernel called through ``pallas_call``; made by :func:`pallas_kernel`."""

    backend = 'pallas'
    platforms = ('cpu', 'gpu', 'tpu')

    def __init__(self, func, *, grid=None, in_specs=None, out_specs=None, interpret=None):
        if not callable(func) or isinstance(func, type):
            raise TypeError(f"pallas_kernel needs a function of (input refs..., output refs...); "
                            f"received {func!r} of type {type(func).__name__}")
        self.func = func
        self.options = {'grid': grid, 'in_specs': in_specs, 'out_specs': out_specs}
        self.interpret = interpret
        kinds = inspect.Parameter
        parameters = list(inspect.signature(func).parameters.values())
        self._positional = [p for p in parameters
                            if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
        self._keyword = [p for p in parameters if p.kind == kinds.KEYWORD_ONLY]
        self._any_refs = any(p.kind == kinds.VAR_POSITIONAL for p in parameters)
        self._any_static = any(p.kind == kinds.VAR_KEYWORD for p in parameters)
        self.__name__ = getattr(func, '__name__', type(func).__name__)
        self.__doc__ = func.__doc__

    def __repr__(self):
        return f"pallas_kernel({getattr(self.func, '__qualname__', self.__name__)})"

    def _statics(self, n_refs: int, params: dict) -> dict:
        """The call's static parameters, checked against the function's signature."""
        name = self.__name__
        if not self._any_refs and len(self._positional) < n_refs:
            raise TypeError(f"pallas_kernel {name!r} takes {len(self._positional)} ref "
                            f"parameters; the call passes {n_refs} (inputs + outputs)")
        static = ([] if self._any_refs else self._positional[n_refs:]) + self._keyword
        if not self._any_static:
            unknown = sorted(set(params) - {p.name for p in static})
            if unknown:
                raise TypeError(f"pallas_kernel {name!r}: unknown static parameter(s) {unknown}; "
                                f"its static parameters are {[p.name for p in static]}")
        missing = [p.name for p in static if p.default is p.empty and p.name not in params]
        if missing:
            raise TypeError(f"pallas_kernel {name!r}: static parameter(s) {missing} have no "
                            f"default and were not passed")
        return params

    def _resolve(self, outs: tuple, statics: dict) -> dict:
        """``pallas_call`` options, calling those given as functions of (outs, **static)."""
        from jax.experimental import pallas as pl
        resolved = {}
        for key in _OPTIONS:
            value = self.options[key]
            if callable(value) and not isinstance(value, pl.BlockSpec):
                value = value(outs, **statics)
            if value is not None:
                resolved[key] = value
        spec = resolved.get('out_specs')
        if len(outs) == 1 and spec is not None and not isinstance(spec, (list, tuple)):
            resolved['out_specs'] = (spec,)  # out_shape is always a tuple here
        return resolved

    def __call__(self, *args, outs, **params):
        from jax.experimental import pallas as pl
        spec, single = _as_outs(outs)
        outs = tuple(jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in spec)
        statics = self._statics(len(args) + len(outs), params)
        kernel = functools.partial(self.func, **statics) if statics else self.func
        options = self._resolve(outs, statics)

        def variant(interpret):
            return lambda *xs: list(pl.pallas_call(kernel, out_shape=outs, interpret=interpret,
                                                   **options)(*xs))

        args = [jax.numpy.asarray(a) for a in args]
        if self.interpret is None:
            results = jax.lax.platform_dependent(*args, cpu=variant(True), default=variant(False))
        else:
            results = variant(self.interpret)(*args)
        return results[0] if single else list(results)


def pallas_kernel(func=None, *, grid=None, in_specs=None, out_specs=None, interpret=None):
    """Turn a Pallas kernel of (input refs..., output refs...) into a kernel implementation.

    Parameters
    ----------
    func : callable
        ``func(in_ref_0, ..., out_ref_0, ..., *, static_0=default, ...)``. The
        call's static parameters arrive as keyword arguments (Python values at
        trace time); they are the parameters after the refs (keyword-only ones
        included).
    grid : tuple of int or callable, optional
        The ``pallas_call`` grid; default: a single program over whole arrays.
    in_specs, out_specs : BlockSpec, sequence of BlockSpec, or callable, optional
        The ``pallas_call`` block specs; default: whole arrays. A callable
        (for ``grid`` too) is called as ``f(outs, **static)`` with the tuple of
        declared ``jax.ShapeDtypeStruct``, for shape-dependent grids and blocks.
    interpret : bool or None
        Run in Pallas' interpreter. ``None``: interpreted on the CPU (the only
        way Pallas runs there) and compiled on GPU and TPU, chosen for the
        platform the program is compiled for.

    Returns
    -------
    PallasKernel
        An implementation to register with :meth:`XLACustomKernel.def_kernel`
        (backend ``'pallas'``, platforms ``'cpu'``, ``'gpu'`` and ``'tpu'``). It
        can also be called directly: ``k(*arrays, outs=jax.ShapeDtypeStruct(...), **static)``.

    Notes
    -----
    Interpreted on the CPU, a kernel is a correctness tool: it runs one grid
    step after another as ordinary JAX operations, far slower than the numba
    or pure-JAX implementations. On GPU (Triton or Mosaic GPU) and TPU
    (Mosaic) it is compiled.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainevent
    >>> @brainevent.pallas_kernel
    ... def scale(x_ref, out_ref, *, factor=2.0):
    ...     out_ref[...] = factor * x_ref[...]
    >>> op = brainevent.XLACustomKernel('doc_pallas_scale')
    >>> _ = op.def_kernel(kernel=scale)
    >>> out = jax.ShapeDtypeStruct((3,), jnp.float32)
    >>> op(jnp.arange(3.0), outs=out, backend='pallas').tolist()
    [0.0, 2.0, 4.0]
    >>> op(jnp.arange(3.0), outs=out, backend='pallas', factor=3.0).tolist()
    [0.0, 3.0, 6.0]
    """
    if func is None:
        return lambda f: PallasKernel(f, grid=grid, in_specs=in_specs, out_specs=out_specs,
                                      interpret=interpret)
    return PallasKernel(func, grid=grid, in_specs=in_specs, out_specs=out_specs,
                        interpret=interpret)
