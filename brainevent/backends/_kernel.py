"""The kernel object: one JAX primitive with a table of implementations.

Every operation of the package, and every operation a user adds, is declared
once as an :class:`XLACustomKernel`. The kernel owns a JAX primitive
(abstract evaluation, JVP, transpose and batching rules attach to it) and a
table ``{platform: {backend: implementation}}``. At lowering time the
implementation of the backend chosen for the call is lowered for the platform
being compiled for. A backend (pure JAX, numba, warp, pallas, compiled
C++/CUDA) is one entry in that table; the rules and the public functions stay
as they are.

An implementation is either a function ``impl(*arrays, **params)`` written
with JAX operations, returning an array or a sequence of arrays, or a
:class:`KernelImplementation` (what :func:`brainevent.numba_kernel`,
:func:`brainevent.warp_kernel`, :func:`brainevent.pallas_kernel` and the
functions of a compiled module are), which is called as
``impl(*arrays, outs=(jax.ShapeDtypeStruct, ...), **params)``.
"""

from functools import partial
from typing import Callable

import jax
import numpy as np
from jax._src import dispatch
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from .. import _config

__all__ = ['XLACustomKernel', 'KernelImplementation', 'check_backend_name', 'all_kernels']

# JAX lowering platform names and the platform names users write.
_LOWERING_PLATFORMS = {'cpu': 'cpu', 'cuda': 'gpu', 'rocm': 'gpu', 'tpu': 'tpu'}
PLATFORMS = ('cpu', 'gpu', 'tpu')

# Which backend is the default on a platform when several are registered and
# neither the call nor the configuration chooses: the fastest first. Backends
# not named here go before 'jax' (a user's kernel is presumably there for speed).
_SPEED_ORDER = {
    'cpu': ('cpp', 'numba', 'warp', 'jax', 'pallas'),  # pallas runs interpreted on CPU
    'gpu': ('cuda', 'pallas', 'warp', 'jax'),
    'tpu': ('pallas', 'jax'),
}

_KERNELS: dict[str, 'XLACustomKernel'] = {}


def all_kernels() -> dict[str, 'XLACustomKernel']:
    """Every kernel declared so far (the package's and the user's), by name."""
    return dict(_KERNELS)


def _registered_backends(platform: str) -> list[str]:
    names = []
    for kernel in _KERNELS.values():
        for name in kernel.backends(platform):
            if name not in names:
                names.append(name)
    return names


def _check_platform(platform) -> str:
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {list(PLATFORMS)}; received {platform!r}")
    return platform


def check_backend_name(name, platform: str) -> None:
    """Raise unless some kernel has an implementation for ``name`` on ``platform``."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string such as 'jax'; received {name!r} "
                        f"of type {type(name).__name__}")
    available = _registered_backends(platform)
    if name not in available:
        raise ValueError(f"backend {name!r} is not available on platform {platform!r}; "
                         f"available backends there: {available}")


class KernelImplementation:
    """Base of the implementations the backend routes make.

    A subclass sets ``backend`` (its name in a kernel's table) and
    ``platforms`` (where it runs), and defines
    ``__call__(*arrays, outs, **params) -> list[jax.Array]``, where ``outs`` is
    the tuple of ``jax.ShapeDtypeStruct`` the kernel declared for the call.
    """

    backend: str = ''
    platforms: tuple[str, ...] = ()

    def __call__(self, *arrays, outs, **params):  # pragma: no cover - abstract
        raise NotImplementedError


def _as_outs(outs) -> tuple[tuple, bool]:
    """``outs=`` of a call as a hashable tuple of ``(shape, dtype)`` and whether it was a list."""
    single = not isinstance(outs, (list, tuple))
    items = [outs] if single else list(outs)
    spec = []
    for i, item in enumerate(items):
        if not (hasattr(item, 'shape') and hasattr(item, 'dtype')):
            raise TypeError(f"outs must be a jax.ShapeDtypeStruct or a list of them; item {i} "
                            f"is {item!r} of type {type(item).__name__}")
        spec.append((tuple(int(d) for d in item.shape),
                     np.dtype(jax.dtypes.canonicalize_dtype(item.dtype))))
    return tuple(spec), single


def _check_params(name: str, params: dict) -> None:
    for key, value in params.items():
        try:
            hash(value)
        except TypeError:
            raise TypeError(f"kernel {name!r}: static parameter {key}={value!r} must be hashable "
                            f"(an int, float, bool, str or tuple); received "
                            f"{type(value).__name__}. Pass arrays as positional operands."
                            ) from None


class XLACustomKernel:
    """A JAX operation with implementations per (backend, platform).

    Parameters
    ----------
    name : str
        Unique name of the operation, used for the primitive and in listings
        (``brainevent info``).
    abstract_eval : callable, optional
        ``abstract_eval(*avals, **params) -> list[jax.core.ShapedArray]``. Without
        it, each call declares its outputs with ``outs=``.

    Notes
    -----
    A call resolves the backend per call (``backend=``), then by the setting of
    :func:`brainevent.config.set_backend` for the platform, then the fastest
    backend registered for the platform (compiled C++/CUDA, numba, warp, then
    pure JAX on CPU). Keyword arguments other than ``outs`` and ``backend`` are
    static parameters: hashable values passed to every implementation and rule.
    Without a batching rule of its own, a kernel is batched under ``jax.vmap``
    by a sequential loop over the mapped axis, which is always correct.
    Differentiation needs a JVP rule (and, for reverse mode of a linear
    kernel, a transpose rule).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainevent
    >>> scale = brainevent.XLACustomKernel('doc_scale')
    >>> _ = scale.def_kernel('jax', 'cpu', lambda x, *, factor: [x * factor])
    >>> y = scale(jnp.arange(3.0), outs=jax.ShapeDtypeStruct((3,), jnp.float32), factor=2.0)
    >>> y.tolist()
    [0.0, 2.0, 4.0]
    """

    def __init__(self, name: str, abstract_eval: Callable | None = None):
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string; received {name!r}")
        if name in _KERNELS:
            raise ValueError(f"a kernel named {name!r} is already declared; choose another name "
                             f"(brainevent.backends.all_kernels() lists the declared ones)")
        self.name = name
        self._abstract_eval = abstract_eval
        self._impls: dict[str, dict[str, Callable]] = {}
        self._defaults: dict[str, str] = {}
        prim = Primitive(name)
        prim.multiple_results = True
        prim.def_impl(partial(dispatch.apply_primitive, prim))
        prim.def_abstract_eval(self._abstract)
        for lowering_platform, platform in _LOWERING_PLATFORMS.items():
            mlir.register_lowering(prim, partial(self._lower, platform=platform),
                                   platform=lowering_platform)
        batching.primitive_batchers[prim] = self._sequential_batch
        self.primitive = prim
        _KERNELS[name] = self

    def __repr__(self):
        return f"XLACustomKernel({self.name!r})"

    # -- implementations -------------------------------------------------
    def def_kernel(self, backend: str | None = None, platform=None, kernel: Callable | None = None,
                   *, default: bool = False):
        """Register ``kernel`` as the implementation of ``backend`` on ``platform``.

        Parameters
        ----------
        backend : str, optional
            The backend's name (``'jax'``, ``'numba'``, ``'warp'``, ``'pallas'``,
            ``'cpp'``, ``'cuda'`` or one of your own). Defaults to the
            ``backend`` of a :class:`KernelImplementation`.
        platform : str or sequence of str, optional
            ``'cpu'``, ``'gpu'``, ``'tpu'``. Defaults to the platforms of a
            :class:`KernelImplementation`.
        kernel : callable
            A JAX function ``kernel(*arrays, **params)`` returning an array or
            a sequence of arrays, or an implementation made by
            :func:`brainevent.numba_kernel`, :func:`brainevent.warp_kernel`,
            :func:`brainevent.pallas_kernel` or a compiled module.
        default : bool
            Make it the default on ``platform`` even where a faster backend is
            registered.

        Returns
        -------
        The kernel, so the method can be used as a decorator factory:
        ``@k.def_kernel('jax', 'cpu')``.
        """
        if kernel is None:  # decorator use
            return lambda fn: self.def_kernel(backend, platform, fn, default=default)
        if not callable(kernel):
            raise TypeError(f"kernel must be callable (a JAX function or a kernel implementation); "
                            f"received {kernel!r} of type {type(kernel).__name__}")
        if isinstance(kernel, KernelImplementation):
            backend = backend or kernel.backend
            platform = platform or kernel.platforms
        if not isinstance(backend, str) or not backend:
            raise TypeError(f"backend must be a non-empty string such as 'jax' or 'numba'; "
                            f"received {backend!r}")
        if platform is None:
            raise TypeError(f"def_kernel({backend!r}): platform is required for a plain function; "
                            f"one of {list(PLATFORMS)} or a sequence of them")
        platforms = (platform,) if isinstance(platform, str) else tuple(platform)
        for p in platforms:
            _check_platform(p)
            self._impls.setdefault(p, {})[backend] = kernel
            if default:
                self._defaults[p] = backend
        return kernel

    def implementation(self, backend: str, platform: str) -> Callable:
        """The implementation registered for ``backend`` on ``platform``."""
        return self._impls[platform][backend]

    def backends(self, platform: str | None = None) -> list[str]:
        """Backend names implemented for ``platform`` (default: the current), default first."""
        platform = platform or _config.default_platform()
        names = list(self._impls.get(platform, {}))
        order = _SPEED_ORDER.get(platform, ())

        def rank(name):
            if name == self._defaults.get(platform):
                return -1.0
            if name in order:
                return float(order.index(name))
            return order.index('jax') - 0.5 if 'jax' in order else float(len(order))
        return sorted(names, key=rank)

    def resolve_backend(self, backend: str | None = None, platform: str | None = None) -> str:
        """The backend a call with ``backend=`` runs on ``platform``."""
        platform = platform or _config.default_platform()
        available = self.backends(platform)
        if not available:
            raise NotImplementedError(
                f"kernel {self.name!r} has no implementation for platform {platform!r}; "
                f"it has implementations for {sorted(self._impls) or 'no platform'}")
        if backend is not None:
            if backend not in available:
                raise ValueError(f"backend {backend!r} is not available for kernel {self.name!r} "
                                 f"on platform {platform!r}; registered there: {available}")
            return backend
        preferred = _config.get_backend(platform)
        return preferred if preferred in available else available[0]

    # -- rules -----------------------------------------------------------
    def def_jvp_rule(self, rule: Callable):
        """``rule(primals, tangents, **params) -> (primal_outs, tangent_outs)`` (lists).

        ``params`` hold the static parameters, ``backend`` and, for kernels
        whose outputs are declared per call, ``outs``; pass them on when the
        rule calls the kernel again (``self.primitive.bind(..., **params)``).
        """
        ad.primitive_jvps[self.primitive] = rule
        return rule

    def def_transpose_rule(self, rule: Callable):
        """``rule(cotangents, *args, **params) -> list`` (one entry per argument).

        Linear arguments arrive as ``jax.interpreters.ad.UndefinedPrimal``;
        return ``None`` for the others.
        """
        ad.primitive_transposes[self.primitive] = rule
        return rule

    def def_batching_rule(self, rule: Callable):
        """``rule(args, dims, **params) -> (outs, out_dims)``; replaces the sequential default."""
        batching.primitive_batchers[self.primitive] = rule
        return rule

    # -- calling ---------------------------------------------------------
    def __call__(self, *args, outs=None, backend: str | None = None, **params):
        """Call the kernel on ``args``.

        ``outs`` declares the outputs (a ``jax.ShapeDtypeStruct`` or a list of
        them) when the kernel has no ``abstract_eval``; the result is one
        array for one declared struct and a list for a list.
        """
        single = False
        if outs is not None:
            params['outs'], single = _as_outs(outs)
        elif self._abstract_eval is None:
            raise TypeError(f"kernel {self.name!r} declares its outputs per call: pass "
                            f"outs=jax.ShapeDtypeStruct(shape, dtype) (or a list of them)")
        results = self.bind(*args, backend=backend, **params)
        return results[0] if single else list(results)

    def bind(self, *args, backend: str | None = None, **params):
        """Bind the primitive with the resolved backend; returns the list of outputs."""
        _check_params(self.name, params)
        args = [a if isinstance(a, jax.Array) else jax.numpy.asarray(a) for a in args]
        return self.primitive.bind(*args, backend=self.resolve_backend(backend), **params)

    def _abstract(self, *avals, backend, **params):
        if self._abstract_eval is not None:
            return self._abstract_eval(*avals, **params)
        return [jax.core.ShapedArray(shape, dtype) for shape, dtype in params['outs']]

    def _lower(self, ctx, *args, platform, backend, **params):
        table = self._impls.get(platform, {})
        if backend not in table:
            raise ValueError(f"kernel {self.name!r} was traced for backend {backend!r}, which has "
                             f"no implementation on platform {platform!r}; registered there: "
                             f"{self.backends(platform)}")
        impl = table[backend]
        if isinstance(impl, KernelImplementation):
            outs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in ctx.avals_out)
            params.pop('outs', None)
            fn = partial(impl, outs=outs, **params)
        else:
            if self._abstract_eval is None:
                params.pop('outs', None)
            fn = partial(_as_list, impl, self.name, backend, ctx.avals_out, **params)
        return mlir.lower_fun(fn, multiple_results=True)(ctx, *args)

    def _sequential_batch(self, args, dims, **params):
        mapped = [i for i, d in enumerate(dims) if d is not None]
        moved = tuple(jax.numpy.moveaxis(args[i], dims[i], 0) for i in mapped)

        def one(slices):
            full = list(args)
            for i, x in zip(mapped, slices):
                full[i] = x
            return self.primitive.bind(*full, **params)

        outs = jax.lax.map(one, moved)
        return outs, [0] * len(outs)


def _as_list(impl, name, backend, declared, *args, **params):
    """Call a JAX implementation; its results must be what the kernel declared."""
    out = impl(*args, **params)
    out = list(out) if isinstance(out, (list, tuple)) else [out]
    got = [(tuple(jax.numpy.shape(o)), np.dtype(jax.numpy.result_type(o))) for o in out]
    want = [(tuple(a.shape), np.dtype(a.dtype)) for a in declared]
    if got != want:
        raise TypeError(f"kernel {name!r}, backend {backend!r}: the implementation returned "
                        f"{_describe(got)}; the kernel declares {_describe(want)}")
    return out


def _describe(items) -> str:
    return "[" + ", ".join(f"{d.name}{list(s)}" for s, d in items) + "]"
