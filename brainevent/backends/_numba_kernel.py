"""``numba_kernel``: a numba function of (inputs..., outputs...) as a CPU kernel.

The function is compiled with ``numba.njit`` and called from XLA through the
package's typed-FFI bridge (no Python at run time). Its parameters are the
input buffers, then the output buffers, then any number of static
parameters, which are compiled in as constants (one compiled variant per
distinct set of values).

A function defined at the top level of an importable module is compiled once
and kept in the on-disk kernel cache (a new process loads it instead of
compiling; editing the module recompiles); other functions (closures, functions
of ``__main__``, ``parallel=True``) are compiled once per process.
"""

import hashlib
import importlib
import inspect
import sys

import jax
import numpy as np

from ._kernel import KernelImplementation, _as_outs
from ._numba_ffi import FFI_DTYPES, register, register_body, signature

__all__ = ['numba_kernel', 'NumbaKernel', 'cached_body']


class NumbaKernel(KernelImplementation):
    """A numba function called from XLA; made by :func:`numba_kernel`."""

    backend = 'numba'
    platforms = ('cpu',)

    def __init__(self, func, *, fastmath: bool = False, parallel: bool = False,
                 input_output_aliases: dict | None = None):
        if not callable(func) or not hasattr(func, '__code__'):
            raise TypeError(f"numba_kernel needs a Python function of (inputs..., outputs...); "
                            f"received {func!r} of type {type(func).__name__}")
        import numba
        self.func = func
        self.jit = numba.njit(fastmath=fastmath, parallel=parallel)(func)
        self._parameters = list(inspect.signature(func).parameters.values())
        for p in self._parameters:
            if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                raise TypeError(f"numba_kernel {func.__name__!r}: parameter {p.name!r} is "
                                f"{p.kind.description}; use plain positional parameters "
                                f"(inputs, outputs, then static parameters)")
        self._bodies: dict[tuple, object] = {}
        aliases = dict(input_output_aliases or {})
        for i, o in aliases.items():
            if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in (i, o)):
                raise TypeError(f"input_output_aliases must map input positions to output "
                                f"positions (ints >= 0); received {input_output_aliases!r}")
        self.aliases = aliases
        self.options = (bool(fastmath), bool(parallel))
        self.__name__ = func.__name__
        self.__doc__ = func.__doc__

    def __repr__(self):
        return f"numba_kernel({self.func.__qualname__})"

    def _statics(self, n_buffers: int, params: dict) -> tuple:
        """The static parameters' values in signature order, checked."""
        name = self.func.__name__
        if len(self._parameters) < n_buffers:
            raise TypeError(f"numba_kernel {name!r} takes {len(self._parameters)} parameters; "
                            f"the call passes {n_buffers} buffers (inputs + outputs)")
        rest = self._parameters[n_buffers:]
        unknown = sorted(set(params) - {p.name for p in rest})
        if unknown:
            raise TypeError(f"numba_kernel {name!r}: unknown static parameter(s) {unknown}; "
                            f"its static parameters are {[p.name for p in rest]}")
        values = []
        for p in rest:
            if p.name in params:
                values.append(params[p.name])
            elif p.default is not p.empty:
                values.append(p.default)
            else:
                raise TypeError(f"numba_kernel {name!r}: static parameter {p.name!r} has no "
                                f"default and was not passed (or the call passes fewer buffers "
                                f"than the function's leading parameters)")
        return tuple((p.name, v) for p, v in zip(rest, values))

    def _body(self, n_buffers: int, statics: tuple):
        """The bridge's body: the function called with the buffers and the constants."""
        key = (n_buffers, statics)
        if key not in self._bodies:
            import numba
            names = [f'a{i}' for i in range(n_buffers)]
            constants = {f'static_{i}': value for i, (_, value) in enumerate(statics)}
            call = ', '.join(names + list(constants))
            # a name unique to (function, variant): numba names compiled code after the
            # function, and cached code of two bodies must never share a symbol
            tag = hashlib.sha256(repr((self.func.__module__, self.func.__qualname__, key,
                                       self.options)).encode()).hexdigest()[:16]
            source = (f"def body_{tag}({', '.join(names)}):\n"
                      f"    kernel({call})\n"
                      f"    return 0\n")
            namespace = {'kernel': self.jit, **constants}
            exec(compile(source, f'<numba_kernel {self.func.__qualname__}>', 'exec'), namespace)
            self._bodies[key] = numba.njit(namespace[f'body_{tag}'])
        return self._bodies[key]

    def _import_path(self):
        """``(module, qualname)`` under which a new process finds this function, or None."""
        module, qualname = self.func.__module__, self.func.__qualname__
        if module in (None, '__main__') or '<' in qualname or module not in sys.modules:
            return None
        obj = _lookup(sys.modules[module], qualname)
        return (module, qualname) if obj is self or obj is self.func else None

    def _target(self, n_buffers: int, statics: tuple, ins, outs) -> str:
        path = None if self.options[1] else self._import_path()  # parallel: see numba_kernel
        if path is not None and all(isinstance(v, (bool, int, float, str)) for _, v in statics):
            try:
                text = inspect.getsource(sys.modules[path[0]])
            except (OSError, TypeError):
                text = None
            if text is not None:
                flags = (*path, *self.options, n_buffers, *(v for _, v in statics))
                return register(cached_body, flags, ins, outs, source_text=text)
        body = self._body(n_buffers, statics)
        return register_body(body, f'{self.func.__name__}_{id(self):x}', ins, outs)

    def __call__(self, *args, outs, **params):
        spec, single = _as_outs(outs)
        outs = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in spec]
        args = [jax.numpy.asarray(a) for a in args]
        for where, items in (('input', args), ('output', outs)):
            for i, a in enumerate(items):
                if np.dtype(a.dtype) not in FFI_DTYPES:
                    raise TypeError(f"numba_kernel {self.func.__name__!r}: {where} {i} has dtype "
                                    f"{np.dtype(a.dtype)}; supported: "
                                    f"{sorted(str(d) for d in FFI_DTYPES)}")
        for i, o in self.aliases.items():
            if i >= len(args) or o >= len(outs):
                raise ValueError(f"numba_kernel {self.func.__name__!r}: input_output_aliases "
                                 f"{{{i}: {o}}} refers past the {len(args)} inputs / {len(outs)} "
                                 f"outputs of the call")
            if args[i].shape != tuple(outs[o].shape) or args[i].dtype != outs[o].dtype:
                raise ValueError(f"numba_kernel {self.func.__name__!r}: output {o} aliases input "
                                 f"{i}, so it must have its shape and dtype "
                                 f"{args[i].shape} {args[i].dtype}; declared "
                                 f"{tuple(outs[o].shape)} "
                                 f"{np.dtype(outs[o].dtype)}")
        statics = self._statics(len(args) + len(outs), params)
        # the bridge carries arrays of rank >= 1: scalars travel as shape (1,)
        flat_args = [a.reshape(1) if a.ndim == 0 else a for a in args]
        flat_outs = [jax.ShapeDtypeStruct((1,) if len(o.shape) == 0 else o.shape, o.dtype)
                     for o in outs]
        import numba
        try:
            target = self._target(len(args) + len(outs), statics, signature(flat_args),
                                  signature(flat_outs))
        except numba.core.errors.NumbaError as error:
            buffers = ', '.join(f'{np.dtype(a.dtype).name}{list(a.shape)}'
                                for a in [*flat_args, *flat_outs])
            raise TypeError(f"numba_kernel {self.func.__name__!r} does not compile for the "
                            f"buffers ({buffers}) and static parameters {dict(statics)}: "
                            f"{error}") from error
        results = jax.ffi.ffi_call(target, flat_outs, vmap_method='sequential',
                                   input_output_aliases=self.aliases or None)(*flat_args)
        results = [r.reshape(o.shape) for r, o in zip(results, outs)]
        return results[0] if single else results


_CACHED: dict[tuple, NumbaKernel] = {}


def cached_body(module: str, qualname: str, fastmath: bool, parallel: bool, n_buffers: int,
                *values):
    """The body of a cached bridge: the function ``module.qualname`` with ``values`` compiled in."""
    key = (module, qualname, fastmath, parallel)
    if key not in _CACHED:
        obj = _lookup(importlib.import_module(module), qualname)
        _CACHED[key] = NumbaKernel(obj.func if isinstance(obj, NumbaKernel) else obj,
                                   fastmath=fastmath, parallel=parallel)
    kernel = _CACHED[key]
    # ``values`` are the static values _statics checked and ordered in the process that
    # wrote the bridge: pair them with the names again
    names = [p.name for p in kernel._parameters[n_buffers:]]
    return kernel._body(n_buffers, tuple(zip(names, values)))


def _lookup(module, qualname: str):
    """The object named ``qualname`` (dotted) in ``module``, or None."""
    obj = module
    for part in qualname.split('.'):
        obj = getattr(obj, part, None)
    return obj


def numba_kernel(func=None, *, fastmath: bool = False, parallel: bool = False,
                 input_output_aliases: dict | None = None):
    """Turn a numba function of (inputs..., outputs...) into a CPU kernel.

    The function receives the input arrays, then the output arrays, which it
    fills (every element: outputs start uninitialised unless aliased), then the static
    parameters of the call as compile-time constants. It is compiled with
    ``numba.njit`` and runs from XLA through a typed FFI target, with no Python
    at run time, under ``jit``, ``lax.scan`` and ``vmap`` (sequentially).

    Parameters
    ----------
    func : callable
        ``func(in_0, ..., out_0, ..., static_0=default, ...)``. Bool arrays are
        seen as ``uint8``; arrays of rank 0 as shape ``(1,)``.
    fastmath, parallel : bool
        Passed to ``numba.njit`` (``parallel=True`` enables ``numba.prange``;
        such a kernel is compiled once per process, never loaded from the disk
        cache, where numba's threading layer fails to start).
    input_output_aliases : dict, optional
        ``{input_position: output_position}``: that output shares the input's
        buffer and starts with its values, so the function updates it in place
        (XLA copies the input first where it is still needed elsewhere). In a
        ``lax.scan`` whose carry is updated this way, no buffer is copied per
        step.

    Returns
    -------
    NumbaKernel
        An implementation to register with :meth:`XLACustomKernel.def_kernel`
        (backend ``'numba'``, platform ``'cpu'``). It can also be called
        directly: ``k(*arrays, outs=jax.ShapeDtypeStruct(...), **static)``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainevent
    >>> @brainevent.numba_kernel
    ... def axpy(x, y, out, alpha=1.0):
    ...     for i in range(out.size):
    ...         out[i] = alpha * x[i] + y[i]
    >>> op = brainevent.XLACustomKernel('doc_axpy')
    >>> _ = op.def_kernel(kernel=axpy)
    >>> x = jnp.arange(4.0)
    >>> op(x, x, outs=jax.ShapeDtypeStruct(x.shape, x.dtype), alpha=2.0).tolist()
    [0.0, 3.0, 6.0, 9.0]
    """
    options = dict(fastmath=fastmath, parallel=parallel, input_output_aliases=input_output_aliases)
    if func is None:
        return lambda f: NumbaKernel(f, **options)
    return NumbaKernel(func, **options)
