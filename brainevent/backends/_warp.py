"""``warp_kernel``: an NVIDIA Warp kernel as a kernel implementation (CPU and GPU).

A Warp kernel's parameters are its input arrays and static scalars, then its
output arrays (Warp's JAX interop requires the outputs last). At a call, the
array parameters before the outputs receive the call's positional arrays in
order, the scalar parameters receive the call's static keyword arguments by
name, and the last ``len(outs)`` parameters receive the output buffers. The
scalars are ordinary run-time arguments of the compiled kernel, so one
compiled module serves every value of them.

The kernel is launched over the shape of the first output unless the
decorator's ``dim=`` says otherwise. The call goes through
``warp.jax_kernel`` (an XLA FFI target): on the GPU it is a CUDA launch on
JAX's stream; on the CPU every call passes through a Python trampoline (tens
of microseconds), so on the CPU a numba kernel is the faster route.

Warp is imported on first use; brainevent imports without it.
"""

import inspect
import numbers

import jax
import numpy as np

from ._kernel import KernelImplementation, _as_outs

__all__ = ['warp_kernel', 'WarpKernel']

_INSTALL_HINT = ("warp_kernel needs NVIDIA Warp, which is not installed: "
                 "pip install warp-lang (or pip install 'brainevent[warp]')")
_WARP_READY = False


def _warp():
    """Import warp, initialising it once without its banner."""
    global _WARP_READY
    try:
        import warp
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    if not _WARP_READY:
        # Warp logs a banner at initialisation and a line per module load at
        # its default level (info); keep to warnings unless the user chose a level.
        if warp.config.log_level == warp.LOG_INFO:
            warp.config.log_level = warp.LOG_WARNING
        warp.init()
        _WARP_READY = True
    return warp


def _array_layout(wp, annotation) -> tuple[np.dtype, int, tuple]:
    """(scalar dtype, JAX rank, trailing element shape) of a ``wp.array`` annotation."""
    element = annotation.dtype
    inner = tuple(getattr(element, '_shape_', ()))
    scalar = getattr(element, '_wp_scalar_type_', element)
    return np.dtype(wp.dtype_to_jax(scalar)), annotation.ndim + len(inner), inner


def _describe(layout) -> str:
    dtype, rank, inner = layout
    return f"a rank-{rank} {dtype} array" + (f" ending in {inner}" if inner else "")


class WarpKernel(KernelImplementation):
    """A Warp kernel called from XLA; made by :func:`warp_kernel`."""

    backend = 'warp'
    platforms = ('cpu', 'gpu')

    def __init__(self, kernel, *, dim=None):
        wp = _warp()
        if inspect.isfunction(kernel):
            kernel = wp.kernel(kernel)
        if not isinstance(kernel, wp.Kernel):
            raise TypeError(f"warp_kernel needs a Warp kernel (a @wp.kernel object) or a Python "
                            f"function with Warp type annotations; received {kernel!r} of type "
                            f"{type(kernel).__name__}")
        name = kernel.func.__name__
        if kernel.is_generic:
            raise TypeError(f"warp_kernel {name!r}: the kernel is generic (typing.Any "
                            f"annotations); annotate every parameter with a concrete Warp type")
        if dim is not None and not callable(dim):
            dim = self._check_dim(name, dim)
        self.kernel = kernel
        self.dim = dim
        self._params = []  # (name, 'array' | 'scalar', layout or dtype), in kernel order
        for arg in kernel.adj.args:
            if isinstance(arg.type, wp.array):
                self._params.append((arg.label, 'array', _array_layout(wp, arg.type)))
                continue
            try:
                dtype = np.dtype(wp.dtype_to_jax(arg.type))
            except TypeError:
                raise TypeError(f"warp_kernel {name!r}: parameter {arg.label!r} has type "
                                f"{arg.type!r}; supported are wp.array(...) and scalar "
                                f"types (float, int, bool, wp.float32, ...)") from None
            self._params.append((arg.label, 'scalar', dtype))
        self._calls: dict[int, object] = {}
        self.__name__ = name
        self.__doc__ = kernel.func.__doc__

    def __repr__(self):
        return f"warp_kernel({self.kernel.func.__qualname__})"

    @staticmethod
    def _check_dim(name, dim) -> tuple:
        dims = (dim,) if isinstance(dim, numbers.Integral) else dim
        if (not isinstance(dims, (tuple, list)) or not 1 <= len(dims) <= 4
                or not all(isinstance(d, numbers.Integral) and d >= 0 for d in dims)):
            raise TypeError(f"warp_kernel {name!r}: dim must be a non-negative int or a tuple of "
                            f"1 to 4 of them (or a callable returning one); received {dim!r}")
        return tuple(int(d) for d in dims)

    def _split(self, n_outs: int):
        """(inputs, array inputs, scalar inputs, outputs) of the kernel for ``n_outs`` outputs."""
        name = self.__name__
        if not 1 <= n_outs <= len(self._params):
            raise TypeError(f"warp_kernel {name!r}: the call declares {n_outs} outputs; the kernel "
                            f"has {len(self._params)} parameters, of which the last ones are "
                            f"the outputs (at least one)")
        inputs, outputs = self._params[:-n_outs], self._params[-n_outs:]
        for label, kind, _ in outputs:
            if kind != 'array':
                raise TypeError(f"warp_kernel {name!r}: with {n_outs} declared output(s) the "
                                f"parameter {label!r} would be an output, but it is a scalar; "
                                f"outs must declare one array per output parameter (the last "
                                f"parameters of the kernel)")
        arrays = [p for p in inputs if p[1] == 'array']
        scalars = [p for p in inputs if p[1] == 'scalar']
        return inputs, arrays, scalars, outputs

    def _check_array(self, where: str, label: str, layout, value) -> None:
        dtype, rank, inner = layout
        shape = tuple(value.shape)
        if (np.dtype(value.dtype) != dtype or len(shape) != rank
                or (inner and shape[len(shape) - len(inner):] != inner)):
            raise TypeError(f"warp_kernel {self.__name__!r}: {where} {label!r} must be "
                            f"{_describe(layout)}; received shape {shape} and dtype "
                            f"{np.dtype(value.dtype)}")

    def _static(self, label: str, dtype: np.dtype, value):
        if dtype == np.bool_:
            ok = isinstance(value, (bool, np.bool_))
        elif np.issubdtype(dtype, np.integer):
            ok = isinstance(value, numbers.Integral)
        else:
            ok = isinstance(value, numbers.Real)
        if not ok:
            raise TypeError(f"warp_kernel {self.__name__!r}: static parameter {label!r} has "
                            f"dtype {dtype} in the kernel; received {value!r} of type "
                            f"{type(value).__name__}")
        return value

    def _launch_dims(self, outs, statics: dict) -> tuple:
        if self.dim is None:
            layout = next(p[2] for p in self._params[-len(outs):])
            shape = tuple(outs[0].shape)
            return shape[:len(shape) - len(layout[2])]
        if callable(self.dim):
            return self._check_dim(self.__name__, self.dim(tuple(outs), **statics))
        return self.dim

    def _callable(self, n_outs: int):
        if n_outs not in self._calls:
            from warp import jax_kernel
            # the kernel object batches with a loop of its own; a standalone call does the same
            self._calls[n_outs] = jax_kernel(self.kernel, num_outputs=n_outs,
                                             vmap_method='sequential')
        return self._calls[n_outs]

    def __call__(self, *args, outs, **params):
        spec, single = _as_outs(outs)
        outs = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in spec]
        inputs, arrays, scalars, outputs = self._split(len(outs))
        name = self.__name__
        if len(args) != len(arrays):
            raise TypeError(f"warp_kernel {name!r} takes {len(arrays)} input array(s) "
                            f"{[p[0] for p in arrays]} before its {len(outs)} output(s); the call "
                            f"passes {len(args)}")
        unknown = sorted(set(params) - {p[0] for p in scalars})
        if unknown:
            raise TypeError(f"warp_kernel {name!r}: unknown static parameter(s) {unknown}; its "
                            f"static parameters (scalar parameters) are {[p[0] for p in scalars]}")
        missing = [p[0] for p in scalars if p[0] not in params]
        if missing:
            raise TypeError(f"warp_kernel {name!r}: static parameter(s) {missing} not passed; "
                            f"pass each scalar parameter of the kernel as a keyword argument")
        args = [jax.numpy.asarray(a) for a in args]
        for (label, _, layout), value in zip(arrays, args):
            self._check_array('input', label, layout, value)
        for (label, _, layout), value in zip(outputs, outs):
            self._check_array('output', label, layout, value)
        statics = {label: self._static(label, dtype, params[label]) for label, _, dtype in scalars}
        operands = iter(args)
        call_args = [next(operands) if kind == 'array' else statics[label]
                     for label, kind, _ in inputs]
        results = self._callable(len(outs))(
            *call_args, launch_dims=self._launch_dims(outs, statics),
            output_dims={label: o.shape for (label, _, _), o in zip(outputs, outs)})
        results = list(results)
        return results[0] if single else results


def warp_kernel(kernel=None, *, dim=None):
    """Turn a Warp kernel of (inputs..., outputs...) into a kernel implementation.

    Parameters
    ----------
    kernel : warp.Kernel or callable
        A ``@wp.kernel`` object, or a Python function with Warp type
        annotations (it is passed through ``wp.kernel``; Warp reads its source,
        so it must be defined in a file, a notebook cell or a doctest, not in a
        string given to ``exec``). Its ``wp.array`` parameters before the
        outputs receive the call's arrays in order; its scalar parameters
        (``float``, ``int``, ``bool``, ``wp.float32``...), which Warp wants
        before the outputs too, receive the call's static keyword arguments by
        name (every one must be passed); its last ``len(outs)`` parameters are
        the outputs, which the kernel fills (they start uninitialised).
    dim : int, tuple of int or callable, optional
        The launch dimensions (the range of ``wp.tid()``). By default the shape
        of the first output (without the trailing element shape of vector or
        matrix dtypes). A callable is called as ``dim(outs, **static)`` with
        the tuple of declared ``jax.ShapeDtypeStruct``.

    Returns
    -------
    WarpKernel
        An implementation to register with :meth:`XLACustomKernel.def_kernel`
        (backend ``'warp'``, platforms ``'cpu'`` and ``'gpu'``). It can also
        be called directly: ``k(*arrays, outs=jax.ShapeDtypeStruct(...), **static)``.

    Raises
    ------
    ImportError
        If Warp is not installed (``pip install warp-lang``).
    TypeError
        If ``kernel`` is not a Warp kernel or a function, or at a call whose
        arrays, outputs or static parameters do not match the kernel's
        parameters.

    Notes
    -----
    The first use initialises Warp; if ``warp.config.log_level`` is still at
    Warp's default (info), it is raised to warnings first, which silences the
    banner and the per-module load messages. Set it back after this first use
    to see them. On the CPU each call costs a Python trampoline (tens of
    microseconds); on the GPU it is a kernel launch on JAX's stream.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, warp as wp, brainevent
    >>> @brainevent.warp_kernel
    ... def doc_warp_clip(x: wp.array(dtype=float), top: float, out: wp.array(dtype=float)):
    ...     i = wp.tid()
    ...     out[i] = wp.min(x[i], top)
    >>> clip = brainevent.XLACustomKernel('doc_warp_clip')
    >>> _ = clip.def_kernel(kernel=doc_warp_clip)
    >>> out = jax.ShapeDtypeStruct((4,), jnp.float32)
    >>> jax.jit(lambda x: clip(x, outs=out, top=2.0))(jnp.arange(4.0)).tolist()
    [0.0, 1.0, 2.0, 2.0]
    """
    if kernel is None:
        return lambda k: WarpKernel(k, dim=dim)
    return WarpKernel(kernel, dim=dim)
