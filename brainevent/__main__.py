"""Command line: ``brainevent demo``, ``info``, ``bench`` and ``kernels``."""

import argparse
import os
import sys
import time

import numpy as np


def _progress_bar(stream=sys.stderr, after: float = 3.0):
    """A ``progress(done, total)`` callback drawing a bar on a terminal, once the rest of
    the run is projected to take more than ``after`` seconds."""
    state = {'start': None, 'shown': False}

    def progress(done, total):
        now = time.perf_counter()
        if state['start'] is None:  # the first chunk: remember where timing starts
            state['start'] = (now, done)
            return
        t0, d0 = state['start']
        remaining = (now - t0) / max(done - d0, 1) * (total - done)
        if not stream.isatty() or (not state['shown'] and remaining < after):
            return
        state['shown'] = True
        width = 30
        filled = int(width * done / total)
        stream.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {100 * done // total:3d}% "
                     f"of {total} steps")
        if done == total:
            stream.write('\n')
        stream.flush()
    return progress


def _dense_fits(n: int) -> bool:
    """Whether two dense float32 weight matrices of n columns fit in half the free memory."""
    try:
        free = os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    except (ValueError, OSError, AttributeError):
        free = 4 << 30
    return n * n * 4 * 2 < free / 2


def demo(args) -> int:
    """Simulate the COBA E/I network event-driven and report rates and timings."""
    if args.threads:
        from ._config import set_cpu_threads
        try:
            set_cpu_threads(args.threads)
        except RuntimeError as e:  # called from a process where JAX runs already
            print(f"  (--threads {args.threads} not applied: {e})")
    from .examples import coba

    duration = args.duration
    print(f"COBA network: {args.neurons} LIF neurons ({int(0.8 * args.neurons)} excitatory), "
          f"conductance synapses, {duration:g} ms at dt = 0.1 ms, format {args.format!r}")
    start = time.perf_counter()
    net = coba.COBA(args.neurons, args.format, seed=args.seed)
    build = time.perf_counter() - start
    backend = args.backend or brainevent_backend()
    print(f"  {net.synapses} synapses, built in {build:.2f} s; backend {backend!r}")
    chunk = max(1, int(round(duration / 0.1)) // 20)
    n_exc = int(0.8 * args.neurons)  # the raster shows 320 excitatory and 80 inhibitory neurons
    record = np.r_[0:min(320, n_exc), n_exc:min(n_exc + 80, args.neurons)] if args.plot else False
    result = coba.simulate(net, duration, seed=args.seed, backend=args.backend, chunk=chunk,
                           record=record, population=bool(args.plot), progress=_progress_bar())
    print(f"  firing rates: excitatory {result.rate_exc:.1f} Hz, inhibitory "
          f"{result.rate_inh:.1f} Hz ({result.n_spikes} spikes)")
    print(f"  compile: {result.compile_time:.2f} s; simulation loop: {result.run_time:.3f} s "
          f"({result.run_time / duration * 1e3:.2f} s per simulated second)")
    if args.compare_dense:
        if not _dense_fits(args.neurons):
            print(f"  dense weights: skipped ({args.neurons} x {args.neurons} float32 weights "
                  f"do not fit in half the free memory)")
        else:
            dense = coba.simulate(net.dense(), duration, seed=args.seed, chunk=chunk,
                                  progress=_progress_bar())
            same = bool(np.array_equal(dense.counts, result.counts)) if args.format != 'fixed' \
                else None
            print(f"  dense weights, same loop: {dense.run_time:.3f} s "
                  f"({dense.run_time / max(result.run_time, 1e-12):.1f}x the event-driven loop)"
                  + ('' if same is None else
                     f"; same spikes as event-driven: {'yes' if same else 'NO'}"))
    if args.plot:
        _plot(result, net, args.plot, duration)
        print(f"  raster and population rate written to {args.plot}")
    plausible = 1.0 <= result.rate_exc <= 100.0
    if not plausible:
        print("  warning: the excitatory rate is far from the 15-25 Hz this network should give")
    return 0


def brainevent_backend() -> str:
    import brainevent
    return brainevent.backends.all_kernels()['csr_matmul'].resolve_backend()


def _plot(result, net, path, duration):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'brainevent[plot]'") from None
    dt = duration / result.steps
    t, k = np.nonzero(result.spikes)
    i = result.recorded[k]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5),
                                      gridspec_kw={'height_ratios': [3, 1]})
    exc = i < net.n_exc
    top.plot(t[exc] * dt, k[exc], '.', ms=1, color='tab:red', label='excitatory')
    top.plot(t[~exc] * dt, k[~exc], '.', ms=1, color='tab:blue', label='inhibitory')
    top.set_ylabel('neuron (subset)')
    top.legend(loc='upper right', markerscale=8)
    top.set_title(f'COBA, {net.n} neurons ({net.fmt})')
    bin_steps = max(1, int(round(5.0 / dt)))  # 5 ms bins
    counts = np.add.reduceat(result.population, np.arange(0, result.steps, bin_steps))
    rate = counts / net.n / (bin_steps * dt / 1000.0)
    bottom.plot(np.arange(counts.size) * bin_steps * dt, rate, color='k')
    bottom.set_xlabel('time (ms)')
    bottom.set_ylabel('rate (Hz)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def kernels(args) -> int:
    """Print the registered products and their backends."""
    import brainevent
    print(brainevent.kernels(args.platform))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='brainevent',
                                     description='Event-driven sparse matrices for JAX.')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('demo', help='simulate the COBA E/I network event-driven',
                       description='Simulate the COBA network (Vogels & Abbott 2005) of leaky '
                                   'integrate-and-fire neurons with conductance synapses, with '
                                   'event-driven products under lax.scan, and report rates and '
                                   'timings.')
    p.add_argument('--neurons', type=int, default=4000,
                   help='number of neurons (about 80 synapses each); default 4000')
    p.add_argument('--duration', type=float, default=1000.0,
                   help='biological time in ms; default 1000')
    p.add_argument('--format', choices=('csr', 'jitc', 'fixed'), default='csr',
                   help='connectivity storage: CSR, just-in-time (regenerated from a seed), or '
                        'a fixed number of targets per neuron; default csr')
    p.add_argument('--backend', default=None, help="kernel backend, e.g. 'numba' or 'jax'")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--plot', metavar='FILE.png', default=None,
                   help='write a spike raster and the population rate (needs matplotlib)')
    p.add_argument('--threads', type=int, default=1,
                   help='CPU cores the process runs on (default 1: a simulation loop of many '
                        'small kernels runs fastest on one core); 0 leaves them all')
    p.add_argument('--compare-dense', action='store_true',
                   help='also time the same loop with dense weight matrices')
    p.set_defaults(run=demo)
    from ._tools import add_bench_arguments, add_info_arguments, bench, info
    p = sub.add_parser('info', help='versions, backends per platform, the kernel table',
                       description='Print the versions of brainevent and its dependencies, the '
                                   'backends available on each platform with the default, the '
                                   'kernel cache and the format x operand product table.')
    add_info_arguments(p)
    p.set_defaults(run=info)
    p = sub.add_parser('bench', help='run the benchmark scripts and print their tables',
                       description='Run the benchmark suite, or the named parts of it, and '
                                   'print the tables (ratios measured side by side in one run).')
    add_bench_arguments(p)
    p.set_defaults(run=bench)
    p = sub.add_parser('kernels', help='list the product table with its backends')
    p.add_argument('--platform', default=None, help="'cpu', 'gpu' or 'tpu' (default: current)")
    p.set_defaults(run=kernels)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
