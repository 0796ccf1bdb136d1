"""The COBA network (brainevent.examples.coba) beside Brian2 on the same model.

    python benchmarks/bench_coba.py [--quick] [--repeats N] [--write docs/benchmarks.md]

The model is the E/I network of Vogels & Abbott (2005), benchmark 1 of Brette
et al. (2007), as ``brainevent.examples.coba`` simulates it: N leaky
integrate-and-fire neurons (80% excitatory), conductance synapses, each pair
connected with probability 80 / N, forward Euler with dt = 0.1 ms, 1 s of
biological time (10,000 steps), N = 4,000 and 40,000.

* brainevent: ``coba.simulate(coba.COBA(n, fmt))`` for fmt 'csr', 'jitc' and
  'fixed' on the numba backend (the default), and the dense-weights network
  ``net.dense()`` at N = 4,000. Reported: the network build (constructor,
  first call in the process), ``Result.compile_time`` of the first
  ``simulate`` call, ``Result.run_time`` (the simulation loop, wall clock) of
  that call and the best of ``--repeats`` calls, and the E/I rates. The CSR
  runs are repeated in a child process restricted to one core
  (``os.sched_setaffinity`` before XLA starts its thread pool), since Brian2
  is single-threaded and on a small busy machine XLA's spreading of the
  step's kernels over threads costs time.
* Brian2 on the same equations, in a virtual environment that the script
  creates on demand (``~/.cache/brainevent/brian2-venv``, or
  ``$BRAINEVENT_BRIAN2_VENV``; ``python -m venv`` + ``pip install brian2``),
  run in a subprocess with a fresh project directory per run:

  - ``cpp_standalone``: compile time is ``device.build`` less the first run of
    the binary (code generation and ``make``). The loop time is the time of
    ``Network::run`` inside the generated binary, which times nothing else (not
    the synapse creation, the initialisation or the writing of the results).
    Brian2's own timer there (``device._last_run_time``) is ``std::clock()``,
    process CPU time; the script adds a wall clock (``steady_clock``) around
    the same loop (a two-line patch of the generated ``network.cpp`` before it
    is compiled), so that both simulators are timed with the same kind of
    clock. The binary is run ``--repeats`` times (same seed, same spikes); the
    best wall time is the reference of the ratios, Brian2's CPU time is shown
    beside it.
  - runtime mode (cython code generation; numpy where Cython is missing): a
    first ``run()`` of the full duration compiles, the wall time of a second
    ``run()`` of the same duration is the loop time (its rates are those of the
    second run).

  If the environment cannot be set up, the table says "Brian2 not available"
  with the reason, and the ratios are left out.

``--quick``: N = 4,000 only, 0.2 s of biological time, no Brian2 runtime mode.
Absolute times on a shared machine are noise (the load average is printed with
the machine line); the ratios within one run are the result. ``--write``
replaces only this script's section of the file (between
``<!-- bench_coba:begin -->`` and ``<!-- bench_coba:end -->``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import brainevent

from _common import finish, fmt_time, machine_line, table_lines, targets_lines

SEED = 0
FULL = {'sizes': (4000, 40000), 'duration': 1000.0}
QUICK = {'sizes': (4000,), 'duration': 200.0}
FORMATS = ('csr', 'jitc', 'fixed')
DENSE_MAX_N = 4000
RATE_RANGE = (15.0, 25.0)  # plausible rates (Hz) of this network
TARGETS = {4000: 1.0, 40000: 0.7}  # CSR loop / Brian2 cpp_standalone loop
COMPILE_LIMIT = 2.0  # s
VENV = os.environ.get('BRAINEVENT_BRIAN2_VENV',
                      os.path.join(os.path.expanduser('~'), '.cache', 'brainevent', 'brian2-venv'))
# brian2 2.9.0 still wraps ndarray.ptp, which numpy 2.4 removed
BRIAN2_REQUIREMENTS = ('brian2', 'numpy<2.4')

# The Brian2 model, run by the virtual environment's python with a JSON spec as argument;
# prints one JSON line. Same equations and parameters as brainevent.examples.coba.
BRIAN2_SCRIPT = r'''
import json, os, sys, time
spec = json.loads(sys.argv[1])
import numpy as np
import brian2
from brian2 import (NeuronGroup, Synapses, SpikeMonitor, defaultclock, device, get_device,
                    ms, mV, prefs, run, seed, set_device)

out = {'version': brian2.__version__}
mode = spec['mode']
if mode == 'standalone':
    set_device('cpp_standalone', directory=spec['directory'], build_on_run=False)
else:
    try:
        import Cython  # noqa: F401
        target = 'cython'
    except ImportError:
        target = 'numpy'
    prefs.codegen.target = out['target'] = target
defaultclock.dt = 0.1 * ms
seed(spec['seed'])

n = spec['n']
n_exc = int(0.8 * n)
p = 80.0 / n
taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
El, Vr, Vt = -60 * mV, -60 * mV, -50 * mV
Ee, Ei, I = 0 * mV, -80 * mV, 20 * mV
we, wi = 0.6, 6.7  # relative to the leak conductance
eqs = """
dv/dt = (El - v + ge * (Ee - v) + gi * (Ei - v) + I) / taum : volt (unless refractory)
dge/dt = -ge / taue : 1
dgi/dt = -gi / taui : 1
"""
P = NeuronGroup(n, eqs, threshold='v >= Vt', reset='v = Vr', refractory=5 * ms,
                method='euler')
P.v = '-55*mV + 5*mV*randn()'
Ce = Synapses(P[:n_exc], P, on_pre='ge += we')
Ce.connect(p=p)
Ci = Synapses(P[n_exc:], P, on_pre='gi += wi')
Ci.connect(p=p)
M = SpikeMonitor(P)
duration = spec['duration'] * ms

if mode == 'standalone':
    run(duration)
    dev = get_device()
    directory = spec['directory']
    wall_file = os.path.abspath(os.path.join(directory, 'results', 'loop_wall_time.txt'))
    compile_source = dev.compile_source

    def compile_with_wall_clock(directory, *args, **kwargs):
        # Network::run times its loop with std::clock() (process CPU time): add a wall clock
        # around the same loop, written to its own file
        path = os.path.join(directory, 'network.cpp')
        with open(path) as f:
            code = f.read()
        start, stop = 'start = std::clock();', '_last_run_time = elapsed_realtime;'
        if start in code and stop in code:
            code = '#include <chrono>\n#include <fstream>\n' + code
            code = code.replace(
                start, start + ' auto _wall_start = std::chrono::steady_clock::now();')
            code = code.replace(
                stop, '{ std::ofstream _wall_out("%s"); _wall_out.precision(9); _wall_out << '
                'std::chrono::duration<double>(std::chrono::steady_clock::now() - _wall_start)'
                '.count() << std::endl; } ' % wall_file + stop)
            with open(path, 'w') as f:
                f.write(code)
        return compile_source(directory, *args, **kwargs)

    dev.compile_source = compile_with_wall_clock
    start = time.perf_counter()
    device.build(directory=directory, compile=True, run=True, debug=False, clean=True,
                 with_output=False)
    build = time.perf_counter() - start
    out['make'] = dev.timers['compile']['make']
    loops, walls, binaries = [], [], []
    for k in range(spec['repeats']):
        if k:  # the same binary again: same seed, same network, same spikes
            dev.run(directory, 'results', False, None)
        binaries.append(dev.timers['run_binary'])
        loops.append(dev._last_run_time)
        if os.path.exists(wall_file):
            with open(wall_file) as f:
                walls.append(float(f.read()))
            os.remove(wall_file)
    out['compile'] = build - binaries[0]  # code generation and make
    out['binary'], out['loop_cpu'], out['loop_wall'] = binaries, loops, walls or None
    i = np.asarray(M.i)
else:
    start = time.perf_counter()
    run(duration)  # compiles (or loads the compiled code)
    out['first'] = time.perf_counter() - start
    before = len(M.i)
    start = time.perf_counter()
    run(duration)
    out['loop'] = time.perf_counter() - start
    i = np.asarray(M.i)[before:]
out['synapses'] = int(len(Ce) + len(Ci))
secs = spec['duration'] / 1000.0
out['rate_exc'] = float(np.sum(i < n_exc) / n_exc / secs)
out['rate_inh'] = float(np.sum(i >= n_exc) / (n - n_exc) / secs)
out['n_spikes'] = int(len(i))
print(json.dumps(out))
'''


# ---------------------------------------------------------------------------
# Brian2: the virtual environment and the runs
# ---------------------------------------------------------------------------

def _last_lines(text, k=3):
    lines = [line for line in (text or '').strip().splitlines() if line.strip()]
    return ' / '.join(lines[-k:]) or 'no output'


def brian2_python():
    """The venv's python, creating the venv on demand: ``(path, None)`` or ``(None, reason)``."""
    python = os.path.join(VENV, 'bin', 'python')
    check = [python, '-c', 'import brian2; print(brian2.__version__)']
    if os.path.exists(python):
        proc = subprocess.run(check, capture_output=True, text=True)
        if proc.returncode == 0:
            return python, None
    else:
        print(f'creating the Brian2 virtual environment {VENV} ...', flush=True)
        try:
            os.makedirs(os.path.dirname(VENV), exist_ok=True)
        except OSError as e:
            return None, f'cannot create {os.path.dirname(VENV)}: {e}'
        proc = subprocess.run([sys.executable, '-m', 'venv', VENV], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            return None, f'`python -m venv {VENV}` failed: {_last_lines(proc.stderr)}'
    print(f'installing {" ".join(BRIAN2_REQUIREMENTS)} into {VENV} ...', flush=True)
    try:
        proc = subprocess.run([python, '-m', 'pip', 'install', '-q', *BRIAN2_REQUIREMENTS],
                              capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return None, 'pip install brian2 took more than 15 minutes'
    if proc.returncode != 0:
        return None, f'pip install brian2 failed: {_last_lines(proc.stderr)}'
    proc = subprocess.run(check, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, f'brian2 does not import: {_last_lines(proc.stderr, 1)}'
    return python, None


def brian2_run(python, script, spec):
    """One Brian2 run in a subprocess: its JSON result, or ``{'error': reason}``."""
    try:
        proc = subprocess.run([python, script, json.dumps(spec)], capture_output=True,
                              text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        return {'error': 'took more than an hour'}
    if proc.returncode != 0:
        return {'error': _last_lines(proc.stderr)}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {'error': f'no result: {_last_lines(proc.stdout + proc.stderr)}'}


def brian2_all(sizes, duration, repeats, runtime):
    """Brian2 cpp_standalone (and runtime mode) for every N: ``(results, unavailable reason)``."""
    python, reason = brian2_python()
    if python is None:
        return {}, reason
    results = {}
    with tempfile.TemporaryDirectory(prefix='bench_coba_brian2_') as tmp:
        script = os.path.join(tmp, 'coba_brian2.py')
        with open(script, 'w') as f:
            f.write(BRIAN2_SCRIPT)
        for n in sizes:
            base = {'n': n, 'duration': duration, 'seed': SEED}
            print(f'Brian2 cpp_standalone, N = {n} ...', flush=True)
            results[(n, 'standalone')] = brian2_run(
                python, script, dict(base, mode='standalone', repeats=repeats,
                                     directory=tempfile.mkdtemp(prefix=f'standalone_{n}_',
                                                                dir=tmp)))
            if runtime:
                print(f'Brian2 runtime mode, N = {n} ...', flush=True)
                results[(n, 'runtime')] = brian2_run(python, script, dict(base, mode='runtime'))
    return results, None


# ---------------------------------------------------------------------------
# brainevent
# ---------------------------------------------------------------------------

def brainevent_runs(n, duration, repeats, formats=FORMATS + ('dense',)):
    """``simulate`` of every format (and dense at small N): dicts of times and rates."""
    import jax
    from brainevent.examples import coba

    out = []
    csr = None
    for fmt in formats:
        if fmt == 'dense' and n > DENSE_MAX_N:
            continue
        print(f'brainevent {fmt}, N = {n} ...', flush=True)
        start = time.perf_counter()
        if fmt == 'dense':
            net = csr.dense()  # the same network as the CSR one, dense weights
        else:
            net = coba.COBA(n, fmt, seed=SEED)
        jax.block_until_ready((net.w_exc, net.w_inh))
        build = time.perf_counter() - start
        if fmt == 'csr':
            csr = net
        # the dense loop takes about a minute per simulated second at N = 4000: one call
        calls = 1 if fmt == 'dense' else repeats
        results = [coba.simulate(net, duration, seed=SEED) for _ in range(calls)]
        first = results[0]
        out.append({
            'method': f'brainevent {fmt}' + (' (`net.dense()`, jax matmul)' if fmt == 'dense'
                                             else ' (numba)'),
            'fmt': fmt, 'build': build, 'compile': first.compile_time,
            'first_loop': first.run_time, 'loop': min(r.run_time for r in results),
            'calls': calls, 'rate_exc': first.rate_exc, 'rate_inh': first.rate_inh,
            'synapses': net.synapses,
            'same': all(np.array_equal(r.counts, first.counts) for r in results),
            'counts': first.counts})
        del net
    return out


def one_core_child(spec):
    """Run in a fresh process: the CSR runs with the process restricted to one core.

    XLA sizes its thread pool from the process's CPU affinity when the CPU
    client starts (at the first computation), so this must come first.
    """
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    runs = brainevent_runs(spec['n'], spec['duration'], spec['repeats'], formats=('csr',))
    for r in runs:
        del r['counts']
        r['method'] = 'brainevent csr (numba), process on one core'
        r['fmt'] = 'csr, one core'
    print(json.dumps(runs))


def one_core_runs(n, duration, repeats):
    """The CSR row again in a child process pinned to one core; ``[]`` where impossible."""
    if not hasattr(os, 'sched_setaffinity') or len(os.sched_getaffinity(0)) < 2:
        return []
    print(f'brainevent csr on one core, N = {n} ...', flush=True)
    spec = {'n': n, 'duration': duration, 'repeats': repeats}
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), '--one-core-child',
                           json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'the one-core run failed:\n{proc.stderr[-4000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------

HEADER = ['method', 'network build', 'compile', 'loop (first call)', 'loop (best)',
          'loop / Brian2 standalone loop', 'E rate', 'I rate', 'synapses']


def fmt_s(t):
    return '-' if t is None else f'{t:.2f} s' if t >= 0.1 else fmt_time(t)


def rates(r):
    return f'{r["rate_exc"]:.1f} Hz', f'{r["rate_inh"]:.1f} Hz'


def size_lines(n, duration, ours, brian, reason, repeats):
    standalone = brian.get((n, 'standalone'), {})
    reference = min(standalone['loop_wall']) if standalone.get('loop_wall') else None
    rows = []
    for r in ours:
        rows.append([r['method'], fmt_s(r['build']), fmt_s(r['compile']), fmt_s(r['first_loop']),
                     fmt_s(r['loop']) + ('' if r['calls'] > 1 else ' (one call)'),
                     '-' if reference is None else f'{r["loop"] / reference:.2f}',
                     *rates(r), f'{r["synapses"]:,}'])
    if reason is not None:
        rows.append([f'Brian2 not available: {reason}'] + ['-'] * (len(HEADER) - 1))
    else:
        if 'error' in standalone:
            rows.append([f'Brian2 cpp_standalone failed: {standalone["error"]}']
                        + ['-'] * (len(HEADER) - 1))
        elif standalone:
            s = standalone
            cpu = min(s['loop_cpu'])
            loop = ('-' if reference is None else fmt_s(reference)) + f' (CPU: {fmt_s(cpu)})'
            rows.append([f'Brian2 {s["version"]} cpp_standalone', '-',
                         f'{fmt_s(s["compile"])} (make {fmt_s(s["make"])})',
                         '-' if not s['loop_wall'] else fmt_s(s['loop_wall'][0]), loop,
                         '1.00' if reference is not None else '-', *rates(s),
                         f'{s["synapses"]:,}'])
        runtime = brian.get((n, 'runtime'))
        if runtime is not None and 'error' in runtime:
            rows.append([f'Brian2 runtime mode failed: {runtime["error"]}']
                        + ['-'] * (len(HEADER) - 1))
        elif runtime is not None:
            rt = runtime
            rows.append([f'Brian2 {rt["version"]} runtime ({rt["target"]}), second `run()`',
                         '-', f'first `run()`: {fmt_s(rt["first"])}', '-', fmt_s(rt['loop']),
                         '-' if reference is None else f'{rt["loop"] / reference:.2f}',
                         *rates(rt), f'{rt["synapses"]:,}'])
    steps = int(round(duration / 0.1))
    lines = [f'### N = {n:,} ({int(0.8 * n):,} excitatory), {duration / 1000:g} s '
             f'({steps:,} steps of 0.1 ms), p = {80 / n:g}', '']
    lines += table_lines(HEADER, rows)
    return lines, reference


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: N = 4000, 0.2 s, no Brian2 runtime mode')
    parser.add_argument('--write', default=None,
                        help='replace the bench_coba section of this markdown file')
    parser.add_argument('--repeats', type=int, default=3,
                        help='simulate calls per format and runs of the Brian2 binary')
    parser.add_argument('--no-brian2', action='store_true', help='brainevent only')
    parser.add_argument('--threads', type=int, default=1,
                        help='cores of this process (default 1, as `brainevent demo` runs); 0: '
                             'all, plus a CSR row repeated in a child process on one core')
    parser.add_argument('--one-core-child', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_core_child:
        one_core_child(json.loads(args.one_core_child))
        return
    if args.threads:  # before the first JAX computation: XLA sizes its thread pool then
        brainevent.config.set_cpu_threads(args.threads)

    started = time.perf_counter()
    load_start = os.getloadavg()
    sizes = QUICK if args.quick else FULL
    duration = sizes['duration']
    command = 'python benchmarks/bench_coba.py' + (' --quick' if args.quick else '')

    ours = {}
    for n in sizes['sizes']:
        ours[n] = brainevent_runs(n, duration, args.repeats)
        if not args.threads:
            ours[n] += one_core_runs(n, duration, args.repeats)
    if args.no_brian2:
        brian, reason = {}, 'not run (`--no-brian2`)'
    else:
        brian, reason = brian2_all(sizes['sizes'], duration, args.repeats,
                                   runtime=not args.quick)
    load_end = os.getloadavg()

    gxx = subprocess.run(['g++', '--version'], capture_output=True, text=True)
    gxx = gxx.stdout.splitlines()[0] if gxx.returncode == 0 and gxx.stdout else 'g++ not found'
    lines = ['## COBA network beside Brian2', '',
             machine_line(command) + f' Brian2 compiler: {gxx}. Load average (1 min) '
             f'{load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end.', '',
             'The E/I network of `brainevent.examples.coba` (Vogels & Abbott 2005; Brette et al. '
             '2007, benchmark 1): LIF neurons, conductance synapses, p = 80 / N, Euler, '
             'dt = 0.1 ms. brainevent: `coba.simulate(coba.COBA(n, fmt, seed=0))` on the numba '
             'backend (the event-driven products and the neuron update, a `numba_kernel` that '
             'updates the state in place); "compile" is `Result.compile_time` of the first call in the process, '
             '"loop" is `Result.run_time` (wall clock), first call and best of '
             f'{args.repeats} calls; "network build" is the constructor (its first call '
             'includes compiling the generator). '
             + (f'The process runs on {args.threads} core(s) (`--threads`, '
                '`brainevent.config.set_cpu_threads`, as `brainevent demo` does by default): XLA '
                'then runs the step\'s small kernels on one thread, which is faster than '
                'spreading them over two; Brian2 cpp_standalone is single-threaded too, and its '
                'processes inherit the restriction. ' if args.threads else
                'The row "process on one core" repeats the CSR runs in a child process '
                'restricted to one core (`os.sched_setaffinity` before JAX starts). ')
             + 'Brian2: the same equations (`method=\'euler\'`, '
             'threshold `v >= Vt`, `refractory=5*ms`, `(unless refractory)`), two `Synapses` '
             'with `connect(p=80/N)`, a `SpikeMonitor`, in a fresh project directory per run. '
             'cpp_standalone: compile = `device.build` less the first run of the binary (code '
             'generation and `make -O3 -march=native`); loop = wall clock around Brian2\'s '
             '`Network::run` loop, added to the generated `network.cpp` (Brian2\'s own timer '
             'there, `device._last_run_time`, is `std::clock()` process CPU time: shown as '
             f'"CPU"), first run and best of {args.repeats} runs of the binary. Runtime mode: '
             'the wall time of a second `run()` after a first one that compiles. The ratios '
             'are brainevent\'s best loop over Brian2 cpp_standalone\'s best wall-clock loop. '
             'The networks are different draws of the same random model (the `fixed` format '
             'gives every neuron exactly 80 targets), so rates differ a little.', '']
    references = {}
    for n in sizes['sizes']:
        section, references[n] = size_lines(n, duration, ours[n], brian, reason, args.repeats)
        lines += section + ['']

    checks = []
    for n in sizes['sizes']:
        csr = next(r for r in ours[n] if r['fmt'] == 'csr')
        limit = TARGETS.get(n)
        if limit is not None:
            ref = references[n]
            checks.append((f'CSR loop at N = {n:,} <= {limit:.1f}x Brian2 cpp_standalone loop',
                           ref is not None and csr['loop'] <= limit * ref,
                           '-' if ref is None else
                           f'{csr["loop"] / ref:.2f}x ({fmt_s(csr["loop"])} / {fmt_s(ref)})'))
            pinned = next((r for r in ours[n] if r['fmt'] == 'csr, one core'), None)
            if pinned is not None and ref is not None:
                checks.append(('the same with the brainevent process on one core, '
                               'informative', pinned['loop'] <= limit * ref,
                               f'{pinned["loop"] / ref:.2f}x'))
            s = brian.get((n, 'standalone'), {})
            if s.get('loop_cpu'):
                cpu = min(s['loop_cpu'])
                checks.append(('the same against Brian2\'s own (CPU-time) timer, informative',
                               csr['loop'] <= limit * cpu, f'{csr["loop"] / cpu:.2f}x'))
        worst = max(r['compile'] for r in ours[n])
        checks.append((f'brainevent compile time < {COMPILE_LIMIT:g} s at N = {n:,} (every '
                       f'format)', worst < COMPILE_LIMIT, f'at most {fmt_s(worst)}'))
        dense = next((r for r in ours[n] if r['fmt'] == 'dense'), None)
        if dense is not None:
            same = np.array_equal(dense['counts'], csr['counts'])
            checks.append((f'the dense-weights and the CSR run give the same spike counts '
                           f'(N = {n:,})', same, 'identical' if same else
                           f'{int(np.sum(dense["counts"] != csr["counts"]))} neurons differ'))
        differ = [r['fmt'] for r in ours[n] if not r['same']]
        checks.append((f'repeated `simulate` calls give the same spikes (N = {n:,})', not differ,
                       'yes' if not differ else 'no: ' + ', '.join(differ)))
        low, high = RATE_RANGE
        bad = [f'{r["fmt"]}: {r["rate_exc"]:.1f} / {r["rate_inh"]:.1f} Hz' for r in ours[n]
               if not (low <= r['rate_exc'] <= high and low <= r['rate_inh'] <= high)]
        checks.append((f'brainevent E and I rates in [{low:g}, {high:g}] Hz at N = {n:,}',
                       not bad, 'all' if not bad else '; '.join(bad)))
    lines += ['### Targets', '']
    if args.quick:
        lines += ['`--quick` runs 0.2 s at N = 4,000 as a smoke test; the targets are set for '
                  'the full run (1 s, N = 4,000 and 40,000).', '']
    lines += targets_lines(checks)
    finish(lines, 'bench_coba', args.write, started)


if __name__ == '__main__':
    main()
