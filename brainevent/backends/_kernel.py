"""The kernel object: one JAX primitive with a table of implementations.

Every operation of the package is declared once as a :class:`Kernel`. The
kernel owns a JAX primitive (abstract evaluation, JVP, transpose and batching
rules attach to it) and a table ``{platform: {backend: implementation}}``. At
lowering time the implementation of the backend chosen for the call is lowered
for the platform being compiled for. A backend added later (numba, warp,
pallas, compiled C++/CUDA) is one more entry in that table; the rules and the
public functions stay as they are.

An implementation is a function ``impl(*arrays, **params) -> list[jax.Array]``
written with JAX operations (the pure-JAX backend) or one that emits a foreign
call (native backends).
"""

from functools import partial
from typing import Callable

import jax
from jax._src import dispatch
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from .. import _config

__all__ = ['Kernel', 'check_backend_name', 'all_kernels']

# JAX lowering platform names and the platform names users write.
_LOWERING_PLATFORMS = {'cpu': 'cpu', 'cuda': 'gpu', 'rocm': 'gpu', 'tpu': 'tpu'}

_KERNELS: dict[str, 'Kernel'] = {}


def all_kernels() -> dict[str, 'Kernel']:
    """Every kernel declared so far, by name."""
    return dict(_KERNELS)


def _registered_backends(platform: str) -> list[str]:
    names = []
    for kernel in _KERNELS.values():
        for name in kernel.backends(platform):
            if name not in names:
                names.append(name)
    return names


def check_backend_name(name, platform: str) -> None:
    """Raise unless some kernel has an implementation for ``name`` on ``platform``."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string such as 'jax'; received {name!r} "
                        f"of type {type(name).__name__}")
    available = _registered_backends(platform)
    if name not in available:
        raise ValueError(f"backend {name!r} is not available on platform {platform!r}; "
                         f"available backends there: {available}")


class Kernel:
    """A JAX primitive with implementations per (backend, platform).

    Parameters
    ----------
    name : str
        Unique name of the operation, used for the primitive and in listings.
    abstract_eval : callable
        ``abstract_eval(*avals, **params) -> list[jax.core.ShapedArray]``.

    Notes
    -----
    Calls go through :meth:`bind`, which resolves the backend (per call, then
    the global setting of :mod:`brainevent.config`, then the first registered
    implementation for the platform) and records it as the static parameter
    ``backend`` of the primitive. Without a batching rule of its own, a kernel
    is batched by a sequential loop over the mapped axis, which is always
    correct.
    """

    def __init__(self, name: str, abstract_eval: Callable):
        if name in _KERNELS:
            raise ValueError(f"a kernel named {name!r} is already declared")
        self.name = name
        self._impls: dict[str, dict[str, Callable]] = {}
        prim = Primitive(name)
        prim.multiple_results = True
        prim.def_impl(partial(dispatch.apply_primitive, prim))
        prim.def_abstract_eval(lambda *avals, backend, **params: abstract_eval(*avals, **params))
        for lowering_platform, platform in _LOWERING_PLATFORMS.items():
            mlir.register_lowering(prim, partial(self._lower, platform=platform),
                                   platform=lowering_platform)
        batching.primitive_batchers[prim] = self._sequential_batch
        self.primitive = prim
        _KERNELS[name] = self

    def __repr__(self):
        return f"Kernel({self.name!r})"

    # -- implementations -------------------------------------------------
    def def_impl(self, backend: str, platforms, impl: Callable, *, first: bool = False):
        """Register ``impl`` for ``backend`` on each of ``platforms``.

        ``first=True`` puts it ahead of the backends already registered, which
        makes it the default where nothing else is chosen (used for native
        backends that are faster than the pure-JAX reference).
        """
        if isinstance(platforms, str):
            platforms = (platforms,)
        for platform in platforms:
            table = self._impls.setdefault(platform, {})
            if first:
                self._impls[platform] = {backend: impl, **table}
            else:
                table[backend] = impl
        return impl

    def implementation(self, backend: str, platform: str) -> Callable:
        """The implementation registered for ``backend`` on ``platform``."""
        return self._impls[platform][backend]

    def backends(self, platform: str | None = None) -> list[str]:
        """Backend names implemented for ``platform`` (default: the current), best first."""
        return list(self._impls.get(platform or _config.default_platform(), {}))

    def resolve_backend(self, backend: str | None = None, platform: str | None = None) -> str:
        """The backend a call with ``backend=`` runs on ``platform``."""
        platform = platform or _config.default_platform()
        available = self.backends(platform)
        if not available:
            raise NotImplementedError(f"kernel {self.name!r} has no implementation for "
                                      f"platform {platform!r}")
        if backend is not None:
            if backend not in available:
                raise ValueError(f"backend {backend!r} is not available for kernel {self.name!r} "
                                 f"on platform {platform!r}; available: {available}")
            return backend
        preferred = _config.get_backend(platform)
        return preferred if preferred in available else available[0]

    # -- rules -----------------------------------------------------------
    def def_jvp_rule(self, rule: Callable):
        """``rule(primals, tangents, **params) -> (primal_out, tangent_out)``."""
        ad.primitive_jvps[self.primitive] = rule
        return rule

    def def_transpose_rule(self, rule: Callable):
        """``rule(cotangents, *args, **params) -> list`` (one entry per argument)."""
        ad.primitive_transposes[self.primitive] = rule
        return rule

    def def_batching_rule(self, rule: Callable):
        """``rule(args, dims, **params) -> (outs, out_dims)``."""
        batching.primitive_batchers[self.primitive] = rule
        return rule

    # -- calling ---------------------------------------------------------
    def bind(self, *args, backend: str | None = None, **params):
        """Call the kernel; returns the list of its outputs."""
        return self.primitive.bind(*args, backend=self.resolve_backend(backend), **params)

    def _lower(self, ctx, *args, platform, backend, **params):
        table = self._impls.get(platform, {})
        if backend not in table:
            raise ValueError(f"kernel {self.name!r} was traced for backend {backend!r}, which has "
                             f"no implementation on platform {platform!r}; available: {list(table)}")
        impl = partial(table[backend], **params)
        return mlir.lower_fun(impl, multiple_results=True)(ctx, *args)

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
