"""Event-driven CSR products side by side, in one run, reported as ratios.

    python benchmarks/bench_csr.py [--quick] [--write docs/benchmarks.md]

``--write`` replaces only this script's section of the file (between the
``<!-- bench_csr:begin -->`` and ``<!-- bench_csr:end -->`` markers).

Every method computes the same thing, ``spikes @ W`` for a connectivity matrix
``W`` of shape (n, n) with a fixed number of synapses per row, and is timed
the same way: ``steps`` products inside one compiled loop (``lax.fori_loop``
for JAX methods, an ``@njit`` loop for the numba floor, a Python loop for
scipy), so that per-call dispatch is amortised and the kernels are compared.
Absolute times on shared machines are noise; the ratios in one run are the
result. The script also measures the per-step overhead of a tiny product
inside ``lax.scan`` and the first-call latency in a fresh process with a cold
and a warm kernel cache.
"""

import argparse
import functools
import gc
import os
import subprocess
import sys
import tempfile
import textwrap

import jax
import jax.numpy as jnp
import numba
import numpy as np
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

import brainevent
from _common import (PATTERNS, best_time, fmt_time, jax_loop, machine_line, ratio, steps_for,
                     table_lines, targets_lines, write_section)

SIZES = (4000, 20000, 100000)
DEGREES = (100, 1000)
RATES = (0.001, 0.01, 0.05, 0.2)
BATCHES = (1, 64)
DENSE_LIMIT = 20000 * 20000  # entries; larger dense matrices do not fit comfortably
MEMORY_LIMIT = 5 * 10 ** 8  # nnz x batch past which O(nnz x batch) methods are skipped


@numba.njit(cache=True)
def floor_loop(data, indices, indptr, patterns, out, acc, steps):
    """The kernel floor: the plain event loop on numpy arrays, ``steps`` times.

    Like the JAX loops it cycles through the spike ``patterns`` and adds each
    product into ``acc``.
    """
    for t in range(steps):
        spikes = patterns[t % patterns.shape[0]]
        out[:] = 0
        for b in range(spikes.shape[0]):
            row = spikes[b]
            for i in range(row.shape[0]):
                if row[i]:
                    for k in range(indptr[i], indptr[i + 1]):
                        out[b, indices[k]] += data[k]
        acc += out
    return acc


@functools.lru_cache(maxsize=1)
def connectivity(n, degree, seed=0):
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.integers(0, n, size=(n, degree), dtype=np.int32), axis=1).ravel()
    indptr = np.arange(0, n * degree + 1, degree, dtype=np.int32)
    data = rng.uniform(0.1, 1.0, size=n * degree).astype(np.float32)
    return data, indices, indptr


def bench_case(n, degree, rate, batch, repeats, methods):
    data, indices, indptr = connectivity(n, degree)
    event_steps = steps_for(n * rate * degree * batch + n * batch)
    nnz_steps = steps_for(n * degree * batch)
    dense_steps = steps_for(n * n * batch)
    rng = np.random.default_rng(1)
    shape = (PATTERNS, n) if batch == 1 else (PATTERNS, batch, n)
    spikes = rng.random(shape) < rate  # a few patterns, so no step can be hoisted
    spikes2d = spikes.reshape(PATTERNS, -1, n)
    csr = brainevent.CSR((jnp.asarray(data), jnp.asarray(indices), jnp.asarray(indptr)),
                         shape=(n, n))
    out = {}
    if 'floor' in methods:
        buf = np.zeros((spikes2d.shape[1], n), np.float32)
        acc = np.zeros_like(buf)
        out['floor'] = best_time(
            lambda: floor_loop(data, indices, indptr, spikes2d, buf, acc, event_steps),
            repeats) / event_steps
    for backend in ('numba', 'jax'):
        if backend not in methods:
            continue
        steps = event_steps if backend == 'numba' else nnz_steps
        with brainevent.config.backend(backend):
            run = jax_loop(lambda w, s: brainevent.BinaryArray(s) @ w, steps)
            out[backend] = best_time(lambda: run(csr, spikes).block_until_ready(),
                                     repeats) / steps
    fspikes = jnp.asarray(spikes, jnp.float32)
    if 'dense' in methods and n * n <= DENSE_LIMIT:
        dense = jnp.asarray(sp.csr_array((data, indices, indptr), shape=(n, n)).toarray())
        run = jax_loop(lambda w, s: s @ w, dense_steps)
        out['dense'] = best_time(lambda: run(dense, fspikes).block_until_ready(),
                                 repeats) / dense_steps
        del dense
    if 'bcoo' in methods or 'bcsr' in methods:
        # jax.experimental.sparse multiplies from the left: store W.T, compute (W.T @ s.T).T
        scipy_t = sp.csr_array((data, indices, indptr), shape=(n, n)).T.tocsr()
        for name, cls in (('bcoo', jsparse.BCOO), ('bcsr', jsparse.BCSR)):
            if name in methods:
                m = cls.from_scipy_sparse(scipy_t)
                run = jax_loop(lambda w, s: (w @ s.T).T, nnz_steps)
                out[name] = best_time(lambda: run(m, fspikes).block_until_ready(),
                                      repeats) / nnz_steps
                del m
    if 'scipy' in methods:
        scipy_m = sp.csr_array((data, indices, indptr), shape=(n, n))
        fs = spikes2d.astype(np.float32)

        def scipy_loop():
            acc = np.zeros((fs.shape[1], n), np.float32)
            for t in range(nnz_steps):
                acc += fs[t % PATTERNS] @ scipy_m
            return acc

        out['scipy'] = best_time(scipy_loop, repeats) / nnz_steps
    gc.collect()
    return out


def scan_overhead(steps=20000):
    """Per-step time of a tiny event product (8 x 8, 2 spikes) inside ``lax.scan``."""
    w = brainevent.CSR(jnp.eye(8, dtype=jnp.float32))
    spikes = jnp.zeros((steps, 8), bool).at[:, :2].set(True)
    rows = {}
    for backend in ('numba', 'jax'):
        with brainevent.config.backend(backend):
            @jax.jit
            def run(w, s):
                return jax.lax.scan(lambda c, x: (c + brainevent.BinaryArray(x) @ w, None),
                                    jnp.zeros(8), s)[0]

            @jax.jit
            def empty(w, s):
                return jax.lax.scan(lambda c, x: (c + x[:8].astype(jnp.float32), None),
                                    jnp.zeros(8), s)[0]

            full = best_time(lambda: run(w, spikes).block_until_ready(), 5)
            base = best_time(lambda: empty(w, spikes).block_until_ready(), 5)
            rows[backend] = (full / steps, max(full - base, 0.0) / steps)
    return rows


_FIRST_CALL = textwrap.dedent('''
    import time, jax, jax.numpy as jnp, brainevent
    w = brainevent.CSR(jnp.eye(16, dtype=jnp.float32))
    s = jnp.zeros(16, bool).at[3].set(True)
    start = time.perf_counter()
    jax.jit(lambda s, w: brainevent.BinaryArray(s) @ w)(s, w).block_until_ready()
    print(time.perf_counter() - start)
''')


def first_call():
    """First-call latency of one event product in a fresh process, cold and warm cache.

    Both brainevent's bridge cache and numba's own cache point at a new empty
    folder, so the first process compiles everything and the second compiles nothing.
    """
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, BRAINEVENT_CACHE_DIR=cache, NUMBA_CACHE_DIR=cache)
        times = []
        for _ in range(2):
            result = subprocess.run([sys.executable, '-c', _FIRST_CALL], env=env, check=True,
                                    capture_output=True, text=True)
            times.append(float(result.stdout.strip().splitlines()[-1]))
    return {'cold': times[0], 'warm': times[1]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='n=4000 and 20000, 100 syn/row')
    parser.add_argument('--write', default=None, help='write the markdown report here')
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args(argv)

    sizes = SIZES[:2] if args.quick else SIZES
    degrees = DEGREES[:1] if args.quick else DEGREES
    methods = ('numba', 'floor', 'jax', 'dense', 'bcoo', 'bcsr', 'scipy')
    lines = ['# Benchmarks', '',
             machine_line(f'python benchmarks/bench_csr.py{" --quick" if args.quick else ""}'),
             '', '## Event CSR product `spikes @ W` (time per product)', '',
             'Ratios are taken within this run: `numba/floor` is brainevent\'s native kernel '
             'over the plain numba loop (the floor, lower is better, 1.0 is the floor); the '
             'other ratio columns are how many times faster brainevent (numba) is.', '']
    lines += table_lines(['n', 'syn/row', 'rate', 'batch', 'brainevent numba', 'numba floor',
                          'brainevent jax', 'dense jnp', 'BCOO', 'BCSR', 'scipy', 'numba/floor',
                          'x dense', 'x BCOO', 'x BCSR', 'x scipy'], [])
    print('\n'.join(lines), flush=True)
    results = {}
    for n in sizes:
        for degree in degrees:
            big = n * degree >= 10 ** 8
            for rate in RATES:
                for batch in BATCHES:
                    wanted = methods if not big else ('numba', 'floor', 'jax', 'scipy')
                    if n * degree * batch > MEMORY_LIMIT:  # O(nnz x batch) intermediates
                        wanted = tuple(m for m in wanted if m not in ('jax', 'bcoo', 'bcsr'))
                    r = bench_case(n, degree, rate, batch, args.repeats, wanted)
                    results[(n, degree, rate, batch)] = r
                    g = r.get
                    row = (f'| {n} | {degree} | {rate:.1%} | {batch} | {fmt_time(g("numba"))} '
                           f'| {fmt_time(g("floor"))} | {fmt_time(g("jax"))} '
                           f'| {fmt_time(g("dense"))} | {fmt_time(g("bcoo"))} '
                           f'| {fmt_time(g("bcsr"))} | {fmt_time(g("scipy"))} '
                           f'| {ratio(g("numba"), g("floor"))} | {ratio(g("dense"), g("numba"))} '
                           f'| {ratio(g("bcoo"), g("numba"))} | {ratio(g("bcsr"), g("numba"))} '
                           f'| {ratio(g("scipy"), g("numba"))} |')
                    lines.append(row)
                    print(row, flush=True)

    scan = scan_overhead()
    lines += ['', '## Per-step overhead inside `lax.scan` (8 x 8 product, 2 spikes)', '']
    lines += table_lines(['backend', 'time per step', 'minus an empty scan step'],
                         [[b, fmt_time(full), fmt_time(extra)]
                          for b, (full, extra) in scan.items()])
    first = first_call()
    lines += ['', '## First call in a fresh process (compile included)', '']
    lines += table_lines(['kernel cache', 'first jitted event product'],
                         [['cold (empty cache)', f'{first["cold"]:.2f} s'],
                          ['warm (second process)', f'{first["warm"]:.2f} s']])

    lines += ['', '## Targets', '']
    key = (20000, 100, 0.01, 1)
    r = results.get(key, {})
    checks = [
        ('event CSR, n=20000, 100 syn/row, 1%: numba <= 1.2x the numba floor',
         r.get('numba') and r.get('floor') and r['numba'] <= 1.2 * r['floor'],
         ratio(r.get('numba'), r.get('floor'))),
        ('same case: >= 50x faster than dense jnp',
         r.get('dense') and r.get('numba') and r['dense'] >= 50 * r['numba'],
         ratio(r.get('dense'), r.get('numba'))),
        ('same case: >= 10x faster than BCOO, BCSR and scipy',
         all(r.get(k) and r.get('numba') and r[k] >= 10 * r['numba']
             for k in ('bcoo', 'bcsr', 'scipy')),
         ', '.join(ratio(r.get(k), r.get('numba')) for k in ('bcoo', 'bcsr', 'scipy'))),
        ('per-step overhead of a native product inside lax.scan <= 1 µs',
         scan['numba'][1] <= 1e-6, fmt_time(scan['numba'][1])),
    ]
    r1, r5 = results.get((20000, 100, 0.01, 1), {}), results.get((20000, 100, 0.05, 1), {})
    if r1.get('numba') and r5.get('numba'):
        checks.append(('time linear in spikes: 5% costs <= 6x of 1% (n=20000, 100 syn/row)',
                       r5['numba'] <= 6 * r1['numba'], ratio(r5['numba'], r1['numba'])))
    checks.append(('first call in a fresh process with a warm cache <= 1 s',
                   first['warm'] <= 1.0, f'{first["warm"]:.2f} s'))
    lines += targets_lines(checks)
    print('\n'.join(lines[lines.index('## Per-step overhead inside `lax.scan` (8 x 8 product, '
                                      '2 spikes)'):]))
    if args.write:  # only this script's section; the title and other sections are kept
        write_section(args.write, 'bench_csr', '\n'.join(lines[2:]))
        print(f'wrote the bench_csr section of {args.write}')


if __name__ == '__main__':
    main()
