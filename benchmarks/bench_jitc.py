"""Just-in-time connectivity (JITC) products: memory at scale, speed beside the explicit CSR.

    python benchmarks/bench_jitc.py [--quick] [--write docs/benchmarks.md]

A JITC matrix is regenerated from ``(prob, seed)`` inside every kernel and
never stored. Two parts:

* Memory: one event product ``spikes @ W`` of a 1,000,000 x 1,000,000
  ``JITCScalarR`` with prob 1e-4 (1e8 synapses; an explicit CSR would take
  800 MB) at 1% spikes, in a fresh process per backend so that nothing earlier
  pollutes the peak. The baseline is the process's peak resident set (VmHWM)
  after the imports, the spike vector and a small warm-up product; reported
  are the growth of the peak over the first product (compile included) and
  over a few more, their times, XLA's own account of the product's buffers,
  and an exact check of the result against the matrix's per-row entry counts.
* Speed: products of a 100,000 x 100,000 JITC matrix (prob 0.001, about 100
  entries per row) beside the explicit matrix with the same entries
  (``m.tocsr()``, or its transpose for ``...C``), timed as in bench_csr.py:
  ``steps`` products inside one compiled loop cycling through a few spike
  patterns, best of ``--repeats``, the JITC and the explicit loops taking turns.
  Absolute times on shared machines are noise; the ratios within one run are
  the result.

``--write`` replaces only this script's section of the file (between
``<!-- bench_jitc:begin -->`` and ``<!-- bench_jitc:end -->``).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import brainevent
from _common import (PATTERNS, fmt_time, jax_loop, machine_line, ratio, steps_for,
                     table_lines, targets_lines, finish)

SEED = 42
WEIGHT = 0.5  # entries are multiples of it, so sums of the scalar product are exact in float32
RATE = 0.01
BATCH = 64
STEADY = 10  # products after the first one in the memory test
MEMORY_LIMIT_MB = 100
FULL = {'mem_n': 1_000_000, 'mem_prob': 1e-4, 'speed_n': 100_000, 'speed_prob': 1e-3}
QUICK = {'mem_n': 100_000, 'mem_prob': 1e-3, 'speed_n': 10_000, 'speed_prob': 1e-2}
# (label, backend, extra environment) of the fresh processes of the memory test. glibc keeps
# freed blocks of a few MB for reuse once its mmap threshold has adapted upwards, which adds
# to the peak over repeated products; a fixed threshold shows what the product itself needs.
MEMORY_RUNS = (('numba', 'numba', {}),
               ('jax', 'jax', {}),
               ('jax, fixed glibc mmap threshold', 'jax', {'MALLOC_MMAP_THRESHOLD_': '131072'}))
MB = 1e6
SPEED_HEADER = ['matrix', 'product', 'backend', 'batch', 'generated entries', 'JITC', 'explicit',
                'explicit time', 'JITC / explicit', 'JITC ns per generated entry', 'same result']


# ---------------------------------------------------------------------------
# Memory: one big product in a fresh process
# ---------------------------------------------------------------------------

def peak_rss():
    """The process's peak resident set size in bytes (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def memory_child(spec):
    """Run in a fresh process: the peak-memory growth and times of one big event product."""
    n, prob = spec['n'], spec['prob']
    with brainevent.config.backend(spec['backend']):
        product = jax.jit(lambda s, w: brainevent.BinaryArray(s) @ w)
        spikes = jnp.asarray(np.random.default_rng(0).random(n) < spec['rate'])
        small = brainevent.JITCScalarR(1000, 1000, 0.01, WEIGHT, SEED)
        start = time.perf_counter()
        product(spikes[:1000], small).block_until_ready()  # kernel compile or cache load
        warm = time.perf_counter() - start
        w = brainevent.JITCScalarR(n, n, prob, WEIGHT, SEED)
        base = peak_rss()
        start = time.perf_counter()
        out = product(spikes, w).block_until_ready()
        first = time.perf_counter() - start
        grow_first = peak_rss() - base
        times = []
        for _ in range(spec['steady']):
            start = time.perf_counter()
            out = product(spikes, w).block_until_ready()
            times.append(time.perf_counter() - start)
        grow = peak_rss() - base
        # after the measurement: XLA's account of the buffers, and the exact check
        stats = product.lower(spikes, w).compile().memory_analysis()
        xla = None if stats is None else stats.output_size_in_bytes + stats.temp_size_in_bytes
        counts = np.asarray(w.entry_counts())
    result = np.asarray(out)
    np.save(spec['save'], result)
    spiking = np.asarray(spikes)
    total = float(result.astype(np.float64).sum())
    print(json.dumps({
        'base': base, 'warm': warm, 'first': first, 'steady': min(times), 'grow_first': grow_first,
        'grow': grow, 'xla': xla, 'total': total, 'exact': WEIGHT * float(counts[spiking].sum()),
        'expected': WEIGHT * float(spiking.sum()) * n * prob, 'spikes': int(spiking.sum()),
        'nnz': int(counts.sum())}))


def memory_test(n, prob, steady, runs):
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        for label, backend, extra in runs:
            save = os.path.join(tmp, f'{len(outputs)}.npy')
            spec = {'backend': backend, 'n': n, 'prob': prob, 'rate': RATE, 'steady': steady,
                    'save': save}
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), '--memory-child',
                                   json.dumps(spec)], env=dict(os.environ, **extra),
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f'the memory test ({label}) failed:\n{proc.stderr[-4000:]}')
            results[label] = json.loads(proc.stdout.strip().splitlines()[-1])
            results[label].update(backend=backend, tuned=bool(extra))
            outputs[label] = np.load(save)
        reference = outputs[runs[0][0]]
        for label, out in outputs.items():
            results[label]['same'] = bool(np.array_equal(out, reference))
    return results


def memory_lines(n, prob, steady, results):
    first = next(iter(results.values()))
    nnz = first['nnz']
    csr_mb = (nnz * 8 + (n + 1) * 4) / MB
    lines = [f'### Memory: event product `spikes @ W`, {n:,} x {n:,} `JITCScalarR`, '
             f'prob {prob:g}', '',
             f'{nnz:,} entries (an explicit CSR of them: {csr_mb:,.0f} MB, int32 column '
             f'indices and float32 weights); {first["spikes"]:,} spiking rows ({RATE:.0%}). '
             f'Each row is a fresh process; the baseline is its peak resident set after the '
             f'imports, the spike vector and a warm-up product on a 1000 x 1000 matrix '
             f'({first["base"] / MB:.0f} MB for numba). Growth is the rise of the peak over the '
             f'first product (compile included), then over {steady} more; "XLA buffers" is '
             f'the compiled product\'s output and temporaries as XLA reports them. The check '
             f'compares the sum of the result with weight x the entry counts of the spiking '
             f'rows (`m.entry_counts()`); it must be exact.', '']
    rows = []
    for label, r in results.items():
        exact = 'exact' if r['total'] == r['exact'] else f'off by {r["total"] - r["exact"]:g}'
        rows.append([label, f'{r["warm"]:.2f} s', f'{r["first"]:.2f} s', fmt_time(r['steady']),
                     f'{r["grow_first"] / MB:.1f} MB', f'{r["grow"] / MB:.1f} MB',
                     '-' if r['xla'] is None else f'{r["xla"] / MB:.1f} MB',
                     f'{csr_mb:,.0f} MB',
                     f'{exact}; {r["total"] / r["expected"]:.3f} x #spikes x n x prob x weight; '
                     f'{"same as" if r["same"] else "differs from"} numba\'s output'])
    if any(r['tuned'] for r in results.values()):
        lines[-2] += (' The last row sets glibc\'s `MALLOC_MMAP_THRESHOLD_=131072`, so freed '
                      'blocks go back to the system at once: what it saves over the row above '
                      'is memory the allocator keeps for reuse, not memory a product holds.')
    lines += table_lines(['backend', 'warm-up (1000 x 1000)', 'first product',
                          'steady product', 'peak growth, first product',
                          f'peak growth after {steady} more', 'XLA buffers',
                          'explicit CSR would take', 'result check'], rows)
    return lines


# ---------------------------------------------------------------------------
# Speed beside the explicit matrix
# ---------------------------------------------------------------------------

def binary_left(w, s):
    return brainevent.BinaryArray(s) @ w


def binary_right(w, s):
    return w @ brainevent.BinaryArray(s)


def float_right(w, x):
    return w @ x


def timed_pair(product, matrices, patterns, backend, steps, repeats):
    """Time per product of each matrix, best of ``repeats``, the loops taking turns.

    Taking turns (A, B, A, B, ...) rather than timing all of A's repeats, then
    B's, lets a burst of load on a shared machine hit both, so the ratio holds up.
    """
    with brainevent.config.backend(backend):
        run = jax_loop(product, steps)
        calls = [lambda w=w: run(w, patterns).block_until_ready() for w in matrices]
        for call in calls:
            call()  # compile / warm up
        best = [float('inf')] * len(calls)
        for _ in range(repeats):
            for k, call in enumerate(calls):
                start = time.perf_counter()
                call()
                best[k] = min(best[k], time.perf_counter() - start)
    return [t / steps for t in best]


def agree(product, jitc, explicit, operand, backend):
    """Whether the JITC and the explicit matrix give the same product (float tolerance)."""
    with brainevent.config.backend(backend):
        got = np.asarray(jax.jit(product)(jitc, operand))
        want = np.asarray(jax.jit(product)(explicit, operand))
    return bool(np.allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max())))


def block(x):
    return jax.block_until_ready(x)


def build(n, prob):
    """The three row-drawn matrices of one structure (same prob and seed) and their CSRs."""
    mats = {'JITCScalarR': brainevent.JITCScalarR(n, n, prob, WEIGHT, SEED),
            'JITCNormalR': brainevent.JITCNormalR(n, n, prob, WEIGHT, 0.1, SEED),
            'JITCUniformR': brainevent.JITCUniformR(n, n, prob, 0.1, 0.9, SEED)}
    csrs, costs = {}, {}
    for name, m in mats.items():
        start = time.perf_counter()
        csrs[name] = m.tocsr()
        block(csrs[name].data)
        first = time.perf_counter() - start
        start = time.perf_counter()
        block(m.tocsr().data)
        costs[name] = (first, time.perf_counter() - start)
    return mats, csrs, costs


def speed_test(n, prob, repeats):
    mats, csrs, costs = build(n, prob)
    rng = np.random.default_rng(1)
    spikes = rng.random((PATTERNS, n)) < RATE
    batched = rng.random((PATTERNS, BATCH, n)) < RATE
    xs = rng.standard_normal((PATTERNS, n)).astype(np.float32)
    r, c = mats['JITCScalarR'], mats['JITCScalarR'].T  # c: a JITCScalarC, the same entries
    counts = np.asarray(r.entry_counts())  # entries per row of r = per column of c
    nnz = int(counts.sum())
    natural = float(np.mean([counts[s].sum() for s in spikes]))
    natural_batch = float(np.mean([counts[s.any(axis=0)].sum() for s in batched]))
    event_work = RATE * nnz + n
    # (matrix, product, backend, batch, JITC matrix, explicit matrix, product, operands,
    #  work per product for the step count, entries generated per product)
    csr = csrs['JITCScalarR']
    cases = [
        ('JITCScalarR', '`spikes @ W` (natural)', 'numba', 1, r, csr, binary_left, spikes,
         event_work, natural),
        ('JITCScalarR', '`spikes @ W` (natural)', 'jax', 1, r, csr, binary_left, spikes,
         nnz + n, natural),
        ('JITCScalarC', '`W @ spikes` (natural)', 'numba', 1, c, csr.T, binary_right, spikes,
         event_work, natural),
        ('JITCScalarR', '`W @ spikes` (all entries)', 'numba', 1, r, csr, binary_right, spikes,
         nnz, nnz),
        ('JITCScalarC', '`spikes @ W` (all entries)', 'numba', 1, c, csr.T, binary_left, spikes,
         nnz, nnz),
        ('JITCNormalR', '`spikes @ W` (natural)', 'numba', 1, mats['JITCNormalR'],
         csrs['JITCNormalR'], binary_left, spikes, event_work, natural),
        ('JITCUniformR', '`spikes @ W` (natural)', 'numba', 1, mats['JITCUniformR'],
         csrs['JITCUniformR'], binary_left, spikes, event_work, natural),
        ('JITCScalarR', '`spikes @ W` (natural)', 'numba', BATCH, r, csr, binary_left, batched,
         event_work * BATCH, natural_batch),
        ('JITCScalarR', '`W @ x`, float x (all entries)', 'numba', 1, r, csr, float_right, xs,
         nnz, nnz),
    ]
    print('\n'.join(table_lines(SPEED_HEADER, [])), flush=True)
    rows, results = [], []
    for name, what, backend, batch, jitc, explicit, product, operands, work, entries in cases:
        steps = steps_for(work)
        patterns = jnp.asarray(operands)
        t_jitc, t_explicit = timed_pair(product, (jitc, explicit), patterns, backend, steps,
                                        repeats)
        same = agree(product, jitc, explicit, patterns[0], backend)
        results.append((name, what, backend, batch, t_jitc, t_explicit, same))
        row = [name, what, backend, str(batch), f'{entries:,.0f}', fmt_time(t_jitc),
               'CSC (`m.tocsr().T`)' if name.endswith('C') else 'CSR (`m.tocsr()`)',
               fmt_time(t_explicit), ratio(t_jitc, t_explicit), f'{t_jitc / entries * 1e9:.1f}',
               'yes' if same else '**no**']
        rows.append(row)
        print('| ' + ' | '.join(row) + ' |', flush=True)
    return rows, results, costs, nnz


def speed_lines(n, prob, rows, costs, nnz, results):
    lines = [f'### Speed beside the explicit matrix: {n:,} x {n:,}, prob {prob:g}, '
             f'{RATE:.0%} spikes (time per product)', '',
             f'The explicit matrix holds the same {nnz:,} entries: `m.tocsr()` for `...R`, its '
             f'transpose (a CSC) for `...C`; both run the same product on the same backend. '
             f'"Natural" products generate only the rows of spiking neurons (`...R`: '
             f'`spikes @ W`; `...C`: `W @ spikes`); the other direction and float products '
             f'generate every entry once. Generated entries are per product (for batch '
             f'{BATCH}, each serves all {BATCH} rows of the batch); the last column is the JITC '
             f'time over them. Normal and Uniform weights have the same structure as Scalar '
             f'(same prob and seed). "Same result": the JITC and the explicit product of the '
             f'first spike pattern agree to float tolerance.', '']
    lines += table_lines(SPEED_HEADER, rows)
    natural = results[0][4]
    lines += ['', '### Building the explicit matrix: `m.tocsr()`', '',
              'Eager, pure JAX (two passes over all entries: the counts, then the entries); '
              'the first call includes compiling them. The last column is the second call in '
              'JITC event products `spikes @ W` of the first speed row.', '']
    lines += table_lines(
        ['matrix', 'entries', 'CSR size', 'first call', 'second call', 'in JITC products'],
        [[name, f'{nnz:,}', f'{(nnz * 8 + (n + 1) * 4) / MB:.0f} MB', f'{first:.2f} s',
          f'{again:.2f} s', f'{again / natural:,.0f}'] for name, (first, again) in costs.items()])
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: memory test at n=100000, speed at n=10000')
    parser.add_argument('--write', default=None,
                        help='replace the bench_jitc section of this markdown file')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--memory-child', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(json.loads(args.memory_child))
        return

    started = time.perf_counter()
    sizes = QUICK if args.quick else FULL
    mem_n, mem_prob = sizes['mem_n'], sizes['mem_prob']
    speed_n, speed_prob = sizes['speed_n'], sizes['speed_prob']
    lines = ['## Just-in-time connectivity (JITC)', '',
             machine_line(f'python benchmarks/bench_jitc.py{" --quick" if args.quick else ""}'),
             '']
    print('\n'.join(lines), flush=True)

    runs = MEMORY_RUNS[:2] if args.quick else MEMORY_RUNS  # quick: no allocator variant
    memory = memory_test(mem_n, mem_prob, STEADY, runs)
    section = memory_lines(mem_n, mem_prob, STEADY, memory)
    lines += section
    print(*section, '', sep='\n', flush=True)

    rows, results, costs, nnz = speed_test(speed_n, speed_prob, args.repeats)
    lines += [''] + speed_lines(speed_n, speed_prob, rows, costs, nnz, results)

    head = results[0]
    limit = MEMORY_LIMIT_MB * MB
    checks = [
        (f'event product `spikes @ W`, n={speed_n}, prob {speed_prob:g}, {RATE:.0%} spikes, '
         f'numba: JITC <= 2x the explicit CSR', head[4] <= 2 * head[5], ratio(head[4], head[5])),
    ]
    # One product's growth is the target. Over repeated products glibc keeps freed blocks for
    # reuse (the default jax row); the row with a fixed mmap threshold shows what they hold.
    for r in memory.values():
        name = r['backend'] + (', fixed glibc mmap threshold' if r['tuned'] else '')
        if not r['tuned']:
            checks.append((f'peak memory growth of one event product on {mem_n:,} x {mem_n:,} '
                           f'(prob {mem_prob:g}), {name} < {MEMORY_LIMIT_MB} MB',
                           r['grow_first'] < limit, f'{r["grow_first"] / MB:.1f} MB'))
        if r['tuned'] or r['backend'] == 'numba':
            checks.append((f'the same over {STEADY} more products, {name} < {MEMORY_LIMIT_MB} MB',
                           r['grow'] < limit, f'{r["grow"] / MB:.1f} MB'))
    exact = all(r['total'] == r['exact'] and r['same'] for r in memory.values())
    checks.append(('that product is exact (sum = weight x entries of the spiking rows) and the '
                   'same on every backend', exact, 'yes' if exact else 'no'))
    checks.append(('every JITC product of the speed table equals the explicit one',
                   all(r[6] for r in results),
                   'yes' if all(r[6] for r in results) else
                   'no: ' + '; '.join(f'{r[0]} {r[1]} {r[2]} batch {r[3]}'
                                      for r in results if not r[6])))
    lines += ['', '### Targets', '']
    if args.quick:
        lines += ['`--quick` runs smaller sizes as a smoke test; the targets are set for the '
                  'full sizes (n = 1,000,000 for memory, n = 100,000 for speed).', '']
    lines += targets_lines(checks)
    finish(lines, 'bench_jitc', args.write, started,
           lines.index('### Building the explicit matrix: `m.tocsr()`'))


if __name__ == '__main__':
    main()
