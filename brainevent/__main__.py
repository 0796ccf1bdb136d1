"""Command line: ``brainevent demo`` and ``brainevent kernels``."""

import argparse
import sys
import time


def demo(args) -> int:
    """Event-driven ``spikes @ csr`` on a random E/I connectivity, checked against dense."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import scipy.sparse as sp

    import brainevent

    n, p = args.neurons, args.prob
    n_exc = int(0.8 * n)
    rng = np.random.default_rng(args.seed)
    w_exc = sp.random_array((n_exc, n), density=p, format='csr', rng=rng) * 0.6
    w_inh = sp.random_array((n - n_exc, n), density=p, format='csr', rng=rng) * -6.7
    conn = brainevent.vstack([brainevent.CSR(w_exc), brainevent.CSR(w_inh)], format='csr')
    spikes = rng.random(n) < args.rate

    product = jax.jit(lambda s, w: brainevent.BinaryArray(s) @ w)
    start = time.perf_counter()
    current = product(spikes, conn).block_until_ready()
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.repeats):
        current = product(spikes, conn)
    current.block_until_ready()
    per_call = (time.perf_counter() - start) / args.repeats

    dense = np.asarray(conn.todense())
    expected = spikes.astype(dense.dtype) @ dense
    error = float(np.max(np.abs(np.asarray(current) - expected), initial=0.0))
    print(f"network: {n} neurons ({n_exc} excitatory), {conn.nnz} synapses, "
          f"{int(spikes.sum())} spikes this step")
    print("synaptic input, first 5 neurons: " +
          ", ".join(f"{v:.3f}" for v in np.asarray(current[:5])))
    print(f"total excitatory input {float(jnp.sum(jnp.maximum(current, 0))):.2f}, "
          f"inhibitory {float(jnp.sum(jnp.minimum(current, 0))):.2f}")
    print(f"dense check: max |event - dense| = {error:.2e} "
          f"({'OK' if error <= 1e-4 * max(1.0, np.abs(expected).max(initial=0)) else 'MISMATCH'})")
    print(f"time: first call (compile) {first * 1e3:.1f} ms, then {per_call * 1e6:.1f} us per call "
          f"on backend {brainevent.backends.all_kernels()['csr_matmul'].resolve_backend()!r}")
    return 0 if error <= 1e-4 * max(1.0, np.abs(expected).max(initial=0)) else 1


def kernels(args) -> int:
    """Print the registered products and their backends."""
    import brainevent
    print(brainevent.kernels(args.platform))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='brainevent',
                                     description='Event-driven sparse matrices for JAX.')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('demo', help='run an event-driven product and check it against dense')
    p.add_argument('--neurons', type=int, default=4000)
    p.add_argument('--prob', type=float, default=0.02, help='connection probability')
    p.add_argument('--rate', type=float, default=0.01, help='fraction of neurons that spike')
    p.add_argument('--repeats', type=int, default=100)
    p.add_argument('--seed', type=int, default=0)
    p.set_defaults(run=demo)
    p = sub.add_parser('kernels', help='list the product table with its backends')
    p.add_argument('--platform', default=None, help="'cpu', 'gpu' or 'tpu' (default: current)")
    p.set_defaults(run=kernels)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
