"""Global settings: which backend runs a kernel when a call does not say.

A backend is chosen, from the most to the least specific, by the ``backend=``
argument of a call, by the matrix, then by the setting made here for the
platform, and otherwise the first backend registered for the platform (the
fastest available one).
"""

import contextlib
import os

import jax

__all__ = ['set_backend', 'get_backend', 'backend', 'default_platform', 'set_cpu_threads']

_DEFAULTS: dict[str, str] = {}


def default_platform() -> str:
    """The platform JAX places computations on by default (``'cpu'``, ``'gpu'`` ...)."""
    platform = jax.default_backend()
    return 'gpu' if platform in ('cuda', 'rocm') else platform


def set_backend(name: str | None, platform: str | None = None) -> None:
    """Make ``name`` the default backend on ``platform`` (default: the current one).

    ``None`` removes the setting, so that the fastest available backend is used.

    Examples
    --------
    >>> import brainevent
    >>> brainevent.config.set_backend('jax')
    >>> brainevent.config.get_backend()
    'jax'
    >>> brainevent.config.set_backend(None)
    """
    from .backends._kernel import check_backend_name
    platform = platform or default_platform()
    if name is None:
        _DEFAULTS.pop(platform, None)
        return
    check_backend_name(name, platform)
    _DEFAULTS[platform] = name


def get_backend(platform: str | None = None) -> str | None:
    """The backend set for ``platform`` with :func:`set_backend`, or ``None``."""
    return _DEFAULTS.get(platform or default_platform())


@contextlib.contextmanager
def backend(name: str, platform: str | None = None):
    """Context manager that sets the default backend inside a ``with`` block.

    The choice is made when a computation is traced, so it applies to functions
    first traced (or called eagerly) inside the block.

    Examples
    --------
    >>> import brainevent
    >>> with brainevent.config.backend('jax'):
    ...     brainevent.config.get_backend()
    'jax'
    """
    platform = platform or default_platform()
    previous = _DEFAULTS.get(platform)
    set_backend(name, platform)
    try:
        yield
    finally:
        set_backend(previous, platform)


def set_cpu_threads(n: int) -> None:
    """Run this process on ``n`` CPU cores (its CPU affinity); call before any JAX computation.

    XLA sizes its CPU thread pool from the cores a process may use when JAX
    starts. A simulation loop under ``lax.scan`` is made of many small kernels
    per step, and spreading each of them over several cores costs more than it
    saves (1.5x slower on two cores for a 40000-neuron network): ``brainevent
    demo`` runs on one core. Linux only (``os.sched_setaffinity``).

    Examples
    --------
    >>> import brainevent
    >>> try:  # JAX has started in this process already (the doctests ran computations)
    ...     brainevent.config.set_cpu_threads(1)
    ... except RuntimeError as e:
    ...     print('too late')
    too late
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; received {n!r}")
    if not hasattr(os, 'sched_setaffinity'):
        raise RuntimeError("set_cpu_threads needs os.sched_setaffinity (Linux)")
    from jax._src import xla_bridge
    if xla_bridge.backends_are_initialized():
        raise RuntimeError("set_cpu_threads must run before the first JAX computation of the "
                           "process: XLA's thread pool exists already")
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[:n])
