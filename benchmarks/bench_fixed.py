"""Fixed number of connections per neuron: products beside CSR, build time, plasticity updates.

    python benchmarks/bench_fixed.py [--quick] [--repeats N] [--write docs/benchmarks.md]

Three parts, all timed within one run so that the ratios compare like with like
(absolute times on shared machines are noise; the ratios are the result):

* Products. ``FixedPostNumConn(n, n, conn_num=c, weight=w, seed=0)`` with
  per-entry weights (plus one homogeneous row) beside the CSR of the same
  entries (``m.tocsr()``): the event product ``BinaryArray(spikes) @ W`` at 1%
  and 5% spikes for n = 4,000, 20,000 and 100,000 with c = 100 and n = 20,000
  with c = 1,000, on the numba and the jax backend; the other direction
  ``W @ BinaryArray(spikes_post)``, which reads every entry, and a batch of 64
  spike vectors at n = 20,000; and ``FixedPreNumConn`` with its natural product
  ``W @ spikes`` beside the CSC of the same entries (``m.tocsc()``). Timed as in
  bench_csr.py and bench_jitc.py: ``steps`` products inside one compiled
  ``lax.fori_loop`` cycling through a few spike patterns, best of
  ``--repeats`` rounds (more, up to five times as many, while a pair has taken
  less than a second), the fixed and the explicit loops taking turns so that a
  burst of load on a shared machine hits both. "Same result": both products of the
  first pattern agree to float tolerance.
* Build time. ``FixedPostNumConn(100000, 100000, conn_num=1000, weight=0.5)``
  (1e8 entries, 400 MB of int32 indices) and n = 20,000, c = 100, without and
  with ``replace=True``, each in a fresh process: the first call (compiling the
  generator included), a second call with another seed, then the constructor
  under ``jax.jit`` with a traced seed (first call with the compile, second
  call), each until ``block_until_ready``, and the rise of the process's peak
  resident set. A watchdog thread ends the child if its resident set passes a
  cap (most of the memory available at the start), and the parent gives it a
  time limit; what happened is reported in place of the times. The jitted
  matrix of seed 0 must equal the eager one, and the first rows' indices must be
  sorted (strictly without replacement).
* Plasticity. ``update_on_binary_pre`` / ``update_on_binary_post`` on CSR,
  FixedPostNumConn and COO of one matrix (n = 4,000 and 20,000, 100 entries per
  row, 1% spikes, per-entry weights, bounds [0, 1]) and the dense updates
  ``update_dense_on_binary_pre/post`` (n = 4,000 only), on numba and jax: the
  structure is closed over by the compiled loop (constant index arrays, so the
  per-structure grouping cache applies) and the weights are the loop's carry:
  ``data = update(conn.with_data(data), spikes[t % P], trace[t % P]).data``.
  The weights are donated to the loop (a fresh copy per call, untimed), so it
  does not copy them on entry. The time per update is the difference between a
  loop of ``steps`` updates and a loop of one, over ``steps - 1`` (what a call
  costs whatever its length cancels); ``steps`` is calibrated to a loop of about
  0.05 s (2 to 200; the count is a traced argument, so one compile serves
  all). "First call" is the compile of the loop (any grouping of the entries
  included). Each update is reported with its ratio to the CSR event product
  ``spikes @ W`` of the same matrix timed in the same turns, on the same
  backend and on numba. A second table (smallest size) passes the structure as
  a jit argument instead (traced indices: no cache can be keyed on them). Every
  update is checked once against a numpy reference (via ``x @ W_new``).

``--quick`` runs small sizes as a smoke test (about half a minute on 2 cores).
``--parts`` runs some of the three parts only (``--write`` needs all of them).
``--write`` replaces only this script's section of the file (between
``<!-- bench_fixed:begin -->`` and ``<!-- bench_fixed:end -->``).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

import brainevent
from _common import (PATTERNS, fmt_time, jax_loop, machine_line, ratio, steps_for,
                     table_lines, targets_lines, finish)

SEED = 0
WEIGHT = 0.5
RATES = (0.01, 0.05)
BATCH = 64
W_MIN, W_MAX = 0.0, 1.0
BACKENDS = ('numba', 'jax')
JAX_LIMIT = 2 * 10 ** 8  # nnz x batch past which jax-backend product rows are skipped
LOOP_TARGET = 0.05  # seconds per timed update loop (the step count is calibrated to it)
SLOW_BUILD = 30.0  # seconds: an eager build slower than this skips the jitted builds
MAX_STEPS = 200
PAIR_TIME = 1.0  # seconds: cheap product pairs get more rounds (up to 5x --repeats) until this
MB = 1e6

FULL = {
    'products': [(4000, 100), (20000, 100), (100000, 100), (20000, 1000)],
    'extra': (20000, 100),  # other direction, batch, homogeneous, FixedPreNumConn
    'builds': [(100000, 1000, False), (100000, 1000, True), (20000, 100, False),
               (20000, 100, True)],
    'build_timeout': 240,
    'plasticity': (4000, 20000),
    'plasticity_degree': 100,
    'dense_limit': 4000,
    'loop_target': LOOP_TARGET,
    'traced': True,
    'pair_time': PAIR_TIME,
}
QUICK = {
    'products': [(2000, 50)],
    'extra': (2000, 50),
    'builds': [(4000, 100, False)],
    'build_timeout': 60,
    'plasticity': (2000,),
    'plasticity_degree': 50,
    'dense_limit': 2000,
    'loop_target': 0.02,
    'traced': False,
    'pair_time': 0.0,
}

ERRORS = []  # (what, message) of every failed measurement, listed under the tables


def note_error(what, exc):
    msg = f'{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ""}'
    ERRORS.append((what, msg[:300]))
    print(f'  ! {what}: {msg[:300]}', flush=True)
    return f'error ({type(exc).__name__})'


def block(x):
    return jax.block_until_ready(x)


def timed_turns(calls, repeats, min_time=0.0):
    """Best time of each ``fn`` in ``calls``, the calls taking turns, ``repeats`` rounds.

    ``calls`` is a list of zero-argument functions (already compiled and warmed up);
    one that returns a number has timed itself (untimed preparation excluded).
    Taking turns (A, B, A, B, ...) lets a burst of load on a shared machine hit
    every call, so the ratios hold up. Rounds go on past ``repeats`` (up to
    five times as many) until they have taken ``min_time`` seconds in all.
    """
    best = [float('inf')] * len(calls)
    rounds, began = 0, time.perf_counter()
    while rounds < repeats or (time.perf_counter() - began < min_time and rounds < 5 * repeats):
        rounds += 1
        for k, call in enumerate(calls):
            start = time.perf_counter()
            elapsed = call()
            if not isinstance(elapsed, float):
                elapsed = time.perf_counter() - start
            best[k] = min(best[k], elapsed)
    return best


# ---------------------------------------------------------------------------
# Part 1: products beside the explicit matrix
# ---------------------------------------------------------------------------

def binary_left(w, s):
    return brainevent.BinaryArray(s) @ w


def binary_right(w, s):
    return w @ brainevent.BinaryArray(s)


def agree(product, a, b, operand, backend):
    with brainevent.config.backend(backend):
        got = np.asarray(jax.jit(product)(a, operand))
        want = np.asarray(jax.jit(product)(b, operand))
    return bool(np.allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max())))


def weights(n, c, seed=1):
    return np.random.default_rng(seed).uniform(0.1, 1.0, size=(n, c)).astype(np.float32)


PRODUCT_HEADER = ['matrix', 'product', 'n', 'conn/row', 'rate', 'batch', 'backend', 'fixed',
                  'explicit', 'explicit time', 'fixed / explicit', 'same result']


def product_case(label, what, n, c, rate, batch, backend, fixed, explicit, explicit_name,
                 product, operands, work, repeats, pair_time):
    steps = steps_for(work)
    patterns = jnp.asarray(operands)
    row = [label, what, f'{n:,}', str(c), f'{rate:.0%}', str(batch), backend]
    result = None
    try:
        with brainevent.config.backend(backend):
            run = jax_loop(product, steps)
            calls = [lambda w=w: run(w, patterns).block_until_ready() for w in (fixed, explicit)]
            for call in calls:
                call()  # compile / warm up
            t_fixed, t_explicit = (t / steps for t in timed_turns(calls, repeats, pair_time))
        same = agree(product, fixed, explicit, patterns[0], backend)
        row += [fmt_time(t_fixed), explicit_name, fmt_time(t_explicit),
                ratio(t_fixed, t_explicit), 'yes' if same else '**no**']
        result = (t_fixed, t_explicit, same)
    except Exception as exc:  # report and go on: one broken path must not hide the others
        err = note_error(f'{label} {what} n={n} c={c} {rate:.0%} batch {batch} {backend}', exc)
        row += [err, explicit_name, '-', '-', '-']
    print('| ' + ' | '.join(row) + ' |', flush=True)
    return row, result


def product_test(config, repeats):
    rows, results = [], {}
    pt = config['pair_time']
    print('\n'.join(table_lines(PRODUCT_HEADER, [])), flush=True)
    rng = np.random.default_rng(2)
    for n, c in config['products']:
        m = brainevent.FixedPostNumConn(n, n, conn_num=c, weight=weights(n, c), seed=SEED)
        csr = m.tocsr()
        block((csr.data, csr.indices, csr.indptr))
        nnz = n * c
        for rate in RATES:
            spikes = rng.random((PATTERNS, n)) < rate
            for backend in BACKENDS:
                if backend == 'jax' and nnz > JAX_LIMIT:
                    continue
                work = rate * nnz + n if backend == 'numba' else nnz + n
                row, res = product_case('FixedPostNumConn', '`spikes @ W`', n, c, rate, 1,
                                        backend, m, csr, 'CSR (`m.tocsr()`)', binary_left,
                                        spikes, work, repeats, pt)
                rows.append(row)
                results[('natural', n, c, rate, backend)] = res
        if (n, c) == config['extra']:
            rate = RATES[0]
            spikes = rng.random((PATTERNS, n)) < rate
            for backend in BACKENDS:
                row, res = product_case('FixedPostNumConn', '`W @ spikes` (all entries)', n, c,
                                        rate, 1, backend, m, csr, 'CSR (`m.tocsr()`)',
                                        binary_right, spikes, nnz, repeats, pt)
                rows.append(row)
                results[('right', n, c, rate, backend)] = res
            batched = rng.random((PATTERNS, BATCH, n)) < rate
            for backend in BACKENDS:
                if backend == 'jax' and nnz * BATCH > JAX_LIMIT:
                    continue
                work = (rate * nnz + n) * BATCH if backend == 'numba' else nnz * BATCH
                row, res = product_case('FixedPostNumConn', '`spikes @ W`', n, c, rate, BATCH,
                                        backend, m, csr, 'CSR (`m.tocsr()`)', binary_left,
                                        batched, work, repeats, pt)
                rows.append(row)
                results[('batch', n, c, rate, backend)] = res
            homo = brainevent.FixedPostNumConn(n, n, conn_num=c, weight=WEIGHT, seed=SEED)
            homo_csr = homo.tocsr()
            row, res = product_case('FixedPostNumConn (homogeneous)', '`spikes @ W`', n, c, rate,
                                    1, 'numba', homo, homo_csr, 'CSR (`m.tocsr()`)',
                                    binary_left, spikes, rate * nnz + n, repeats, pt)
            rows.append(row)
            results[('homogeneous', n, c, rate, 'numba')] = res
            pre = brainevent.FixedPreNumConn(n, n, conn_num=c, weight=weights(n, c, 3),
                                             seed=SEED)
            csc = pre.tocsc()
            for backend in BACKENDS:
                work = rate * nnz + n if backend == 'numba' else nnz + n
                row, res = product_case('FixedPreNumConn', '`W @ spikes`', n, c, rate, 1,
                                        backend, pre, csc, 'CSC (`m.tocsc()`)', binary_right,
                                        spikes, work, repeats, pt)
                rows.append(row)
                results[('pre', n, c, rate, backend)] = res
            del homo, homo_csr, pre, csc
        del m, csr
    return rows, results


# ---------------------------------------------------------------------------
# Part 2: build time, in a fresh process per case
# ---------------------------------------------------------------------------

def _status_kb(field):
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss():
    return _status_kb('VmHWM')


def _watchdog(cap, result):
    """End the process when its resident set passes ``cap`` bytes (before the OOM killer)."""
    while True:
        rss = _status_kb('VmRSS')
        if rss > cap:
            result['aborted'] = f'resident set {rss / 1e9:.1f} GB passed the cap {cap / 1e9:.1f} GB'
            print(json.dumps(result), flush=True)
            os._exit(99)
        time.sleep(0.05)


def build_child(spec):
    n, c, replace = spec['n'], spec['c'], spec['replace']
    result = {'stage': 'start'}
    threading.Thread(target=_watchdog, args=(spec['cap'], result), daemon=True).start()

    def emit(stage):
        result['stage'] = stage
        print(json.dumps(result), flush=True)

    def make(seed):
        return brainevent.FixedPostNumConn(n, n, conn_num=c, weight=WEIGHT, seed=seed,
                                           replace=replace)

    jnp.zeros(1).block_until_ready()
    base = peak_rss()
    result['base'] = base
    start = time.perf_counter()
    m = make(0)
    block((m.data, m.indices))
    result['first'] = time.perf_counter() - start
    result['grow_first'] = peak_rss() - base
    emit('first')
    start = time.perf_counter()
    m1 = make(1)
    block((m1.data, m1.indices))
    result['second'] = time.perf_counter() - start
    del m1
    emit('second')
    head = np.asarray(m.indices[:1000]).reshape(-1, c)
    steps = np.diff(head, axis=1)
    result['sorted'] = bool(np.all(steps >= 0) if replace else np.all(steps > 0))
    result['in_range'] = bool(head.min() >= 0 and head.max() < n)
    result['indices_shape'] = list(m.indices.shape)
    result['indices_dtype'] = str(m.indices.dtype)
    emit('checked')
    if result['first'] > SLOW_BUILD:
        result['jit_skipped'] = f'the eager build took over {SLOW_BUILD:.0f} s'
        result['grow'] = peak_rss() - base
        emit('done')
        return
    jitted = jax.jit(lambda seed: make(seed))
    start = time.perf_counter()
    j = jitted(jnp.uint32(2))
    block((j.data, j.indices))
    result['jit_first'] = time.perf_counter() - start
    del j
    emit('jit_first')
    start = time.perf_counter()
    j = jitted(jnp.uint32(3))
    block((j.data, j.indices))
    result['jit_second'] = time.perf_counter() - start
    del j
    emit('jit_second')
    j = jitted(jnp.uint32(0))
    result['jit_same'] = bool(jnp.array_equal(j.indices, m.indices)
                              and jnp.array_equal(j.data, m.data))
    result['grow'] = peak_rss() - base
    emit('done')


def mem_available():
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 10 ** 9


def build_test(cases, timeout):
    cap = int(0.8 * mem_available())
    results = []
    for n, c, replace in cases:
        spec = {'n': n, 'c': c, 'replace': replace, 'cap': cap}
        cmd = [sys.executable, os.path.abspath(__file__), '--build-child', json.dumps(spec)]
        start = time.perf_counter()
        status = None
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            out, err, code = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or '')
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or '')
            code = None
            status = f'timed out after {timeout} s'
        wall = time.perf_counter() - start
        r = {}
        for line in out.strip().splitlines()[::-1]:
            try:
                r = json.loads(line)
                break
            except ValueError:
                continue
        if status is None:
            if r.get('aborted'):
                status = f'stopped by the watchdog: {r["aborted"]}'
            elif code == 0:
                status = 'ok'
            elif code is not None and code < 0:
                status = f'killed by signal {-code} (out of memory?)'
            else:
                last = [l for l in err.strip().splitlines() if l.strip()]
                status = f'failed (exit {code}): {last[-1][:200] if last else "no message"}'
                ERRORS.append((f'build n={n} c={c} replace={replace}', status))
        if status == 'ok' and r.get('jit_skipped'):
            status = f'ok; jitted builds skipped: {r["jit_skipped"]}'
        if not status.startswith('ok') and r.get('stage'):
            status += f' (after stage {r["stage"]!r})'
        r.update(n=n, c=c, replace=replace, status=status, wall=wall)
        results.append(r)
        times = ', '.join(f'{k} {r[k]:.2f} s'
                          for k in ('first', 'second', 'jit_first', 'jit_second') if k in r)
        print(f'  build n={n:,} c={c:,} replace={replace}: {status}; {times}', flush=True)
    return results, cap


def build_lines(results, cap):
    def sec(r, k):
        return f'{r[k]:.2f} s' if k in r else '-'

    def mb(r, k):
        return f'{r[k] / MB:,.0f} MB' if k in r else '-'

    def yn(r, k):
        return '-' if k not in r else ('yes' if r[k] else '**no**')

    lines = ['### Building `FixedPostNumConn(n, n, conn_num=c, weight=0.5, seed=s)`', '',
             'Each row is a fresh process. First call: the eager constructor with seed 0, '
             'compiling its JAX operations included; second call: seed 1. Then the constructor '
             'inside `jax.jit` with a traced uint32 seed: the first call (compile included) and '
             'a second call with another seed. All until `block_until_ready`. Peak growth: '
             'the rise of the process\'s peak resident set over the first call, then over the '
             f'whole row. A watchdog ends a child past {cap / 1e9:.1f} GB resident. Checks: '
             'indices of the first 1000 rows sorted (strictly without replacement), and the '
             'jitted matrix of seed 0 equal to the eager one.', '']
    rows = []
    for r in results:
        nnz = r['n'] * r['c']
        rows.append([f'{r["n"]:,}', f'{r["c"]:,}', 'yes' if r['replace'] else 'no',
                     f'{nnz:,}', f'{nnz * 4 / MB:,.0f} MB', sec(r, 'first'), sec(r, 'second'),
                     sec(r, 'jit_first'), sec(r, 'jit_second'), mb(r, 'grow_first'),
                     mb(r, 'grow'), yn(r, 'sorted'), yn(r, 'jit_same'), r['status']])
    lines += table_lines(['n', 'conn/row', 'replace', 'entries', 'int32 indices', 'first call',
                          'second call', 'jit, first call', 'jit, second call',
                          'peak growth, first call', 'peak growth, row', 'rows sorted',
                          'jit = eager', 'status'], rows)
    return lines


# ---------------------------------------------------------------------------
# Part 3: plasticity updates
# ---------------------------------------------------------------------------

def update_loop(update, conn, traced):
    """``steps`` updates in one compiled loop, the weights in the carry (donated).

    ``update(conn, data, spikes, trace) -> data``. The structure ``conn`` is
    closed over (its index arrays are constants of the compiled loop) unless
    ``traced``, when it is an argument. The weights are donated, so that the
    loop does not copy them on entry; every call gets a fresh copy (untimed).
    """
    def loop(conn, data, spikes, traces, steps):
        def body(t, data):
            k = t % spikes.shape[0]
            return update(conn, data, spikes[k], traces[k])
        return jax.lax.fori_loop(0, steps, body, data)

    if traced:
        run = jax.jit(loop, donate_argnums=1)
        return lambda data, spikes, traces, steps: run(conn, data, spikes, traces, steps)
    return jax.jit(lambda data, spikes, traces, steps: loop(conn, data, spikes, traces, steps),
                   donate_argnums=0)


def sparse_update(direction, backend):
    if direction == 'pre':
        def update(conn, data, spikes, trace):
            return brainevent.update_on_binary_pre(conn.with_data(data), spikes, trace,
                                                   w_min=W_MIN, w_max=W_MAX,
                                                   backend=backend).data
    else:
        def update(conn, data, spikes, trace):
            return brainevent.update_on_binary_post(conn.with_data(data), trace, spikes,
                                                    w_min=W_MIN, w_max=W_MAX,
                                                    backend=backend).data
    return update


def dense_update(direction, backend):
    if direction == 'pre':
        def update(conn, data, spikes, trace):
            return brainevent.update_dense_on_binary_pre(data, spikes, trace, w_min=W_MIN,
                                                         w_max=W_MAX, backend=backend)
    else:
        def update(conn, data, spikes, trace):
            return brainevent.update_dense_on_binary_post(data, trace, spikes, w_min=W_MIN,
                                                          w_max=W_MAX, backend=backend)
    return update


class UpdateTimer:
    """Timed calls of one update loop: ``steps`` updates and one update, on fresh weights.

    The time per update is the difference of the two loops over ``steps - 1``:
    what a call costs whatever the number of steps (dispatch, output buffers)
    cancels. ``steps`` is calibrated so that the long loop takes about ``target``.
    """

    def __init__(self, run, data, spikes, traces, target):
        self.run, self.data, self.args = run, data, (spikes, traces)
        start = time.perf_counter()
        self._call(1)  # compile
        self.compile = time.perf_counter() - start
        t1 = min(self._call(1) for _ in range(2))
        t8 = min(self._call(8) for _ in range(2))
        per = max((t8 - t1) / 7, 1e-7)
        self.steps = int(max(2, min(MAX_STEPS, target / per)))
        self._call(self.steps)  # warm up the long loop
        self.long = lambda: self._call(self.steps)
        self.short = lambda: min(self._call(1) for _ in range(3))  # cheap; noise hurts it most

    def _call(self, steps):
        data = block(jnp.array(self.data, copy=True))
        count = jnp.int32(steps)
        start = time.perf_counter()
        block(self.run(data, *self.args, count))
        return time.perf_counter() - start

    def per_update(self, t_long, t_short):
        return max(t_long - t_short, 0.0) / (self.steps - 1)


def reference_update(direction, row, col, data, spikes, trace):
    data = data.astype(np.float64)
    if direction == 'pre':
        hit, add = spikes[row], trace[col]
    else:
        hit, add = spikes[col], trace[row]
    return np.where(hit, np.clip(data + add, W_MIN, W_MAX), data)


UPDATE_HEADER = ['n', 'conn/row', 'backend', 'update', 'format', 'steps', 'time per update',
                 '/ CSR product, same backend', '/ CSR product, numba', 'first call (compile)',
                 'correct']


def plasticity_test(config, repeats):
    c = config['plasticity_degree']
    rate = RATES[0]
    target = config['loop_target']
    print('\n'.join(table_lines(UPDATE_HEADER, [])), flush=True)
    rows, results, traced_rows = [], {}, []
    rng = np.random.default_rng(4)
    smallest = min(config['plasticity'])
    for n in config['plasticity']:
        m = brainevent.FixedPostNumConn(n, n, conn_num=c, weight=weights(n, c, 5), seed=SEED)
        csr = m.tocsr()
        coo = m.tocoo()
        mats = {'CSR': csr, 'FixedPostNumConn': m, 'COO': coo}
        coo_np = csr.tocoo()
        row_np, col_np = np.asarray(coo_np.row), np.asarray(coo_np.col)
        data_np = np.asarray(coo_np.data)
        dense = jnp.asarray(m.todense()) if n <= config['dense_limit'] else None
        pre_spikes = jnp.asarray(rng.random((PATTERNS, n)) < rate)
        post_spikes = jnp.asarray(rng.random((PATTERNS, n)) < rate)
        pre_trace = jnp.asarray(rng.uniform(-0.01, 0.01, (PATTERNS, n)).astype(np.float32))
        post_trace = jnp.asarray(rng.uniform(-0.01, 0.01, (PATTERNS, n)).astype(np.float32))
        x = rng.standard_normal(n).astype(np.float32)
        operands = {'pre': (pre_spikes, post_trace), 'post': (post_spikes, pre_trace)}
        refs, dense_refs = {}, {}
        for direction, (spk, tr) in operands.items():
            s0, t0 = np.asarray(spk[0]), np.asarray(tr[0]).astype(np.float64)
            new = reference_update(direction, row_np, col_np, data_np, s0, t0)
            refs[direction] = np.bincount(col_np, weights=x[row_np].astype(np.float64) * new,
                                          minlength=n)
            if dense is not None:  # every cell of a spiking row / column, zeros included
                d = np.asarray(dense, np.float64)
                hit = s0[:, None] if direction == 'pre' else s0[None, :]
                add = t0[None, :] if direction == 'pre' else t0[:, None]
                dense_refs[direction] = x.astype(np.float64) @ np.where(
                    hit, np.clip(d + add, W_MIN, W_MAX), d)
                del d
        product_time = {}
        for backend in BACKENDS:
            updates = []  # (direction, format, correct or error, timer)
            with brainevent.config.backend(backend):
                nnz = n * c
                steps = steps_for(rate * nnz + n if backend == 'numba' else nnz + n)
                prun = jax_loop(binary_left, steps)
                pcall = lambda prun=prun, csr=csr: prun(csr, pre_spikes).block_until_ready()
                pcall()
                for direction, (spk, tr) in operands.items():
                    formats = list(mats.items()) + ([('dense', dense)] if dense is not None
                                                     else [])
                    for fname, mat in formats:
                        what = f'update {direction} {fname} n={n} {backend}'
                        upd = (dense_update if fname == 'dense' else sparse_update)(direction,
                                                                                  backend)
                        data0 = mat if fname == 'dense' else mat.data
                        want = dense_refs[direction] if fname == 'dense' else refs[direction]
                        try:
                            ok = check_update(upd, mat, data0, spk[0], tr[0], x, want, fname)
                            timer = UpdateTimer(update_loop(upd, mat, traced=False), data0, spk,
                                                tr, target)
                            updates.append((direction, fname, ok, timer))
                        except Exception as exc:
                            updates.append((direction, fname, note_error(what, exc), None))
                timers = [u[3] for u in updates if u[3] is not None]
                calls = [pcall] + [f for t in timers for f in (t.long, t.short)]
                best = timed_turns(calls, repeats)
            product_time[backend] = best[0] / steps
            per = {id(t): t.per_update(best[1 + 2 * k], best[2 + 2 * k])
                   for k, t in enumerate(timers)}
            short = {id(t): best[2 + 2 * k] for k, t in enumerate(timers)}
            t = product_time[backend]
            rows.append([f'{n:,}', str(c), backend, '`spikes @ W` (reference)', 'CSR',
                         str(steps), fmt_time(t), '1.00', ratio(t, product_time.get('numba')),
                         '-', '-'])
            print('| ' + ' | '.join(rows[-1]) + ' |', flush=True)
            for direction, fname, ok, timer in updates:
                name = (f'`update{"_dense" if fname == "dense" else ""}_on_binary_'
                        f'{direction}`')
                if timer is None:
                    row = [f'{n:,}', str(c), backend, name, fname, '-', ok, '-', '-', '-', '-']
                else:
                    t = per[id(timer)]
                    results[(n, backend, direction, fname)] = (t, short[id(timer)])
                    row = [f'{n:,}', str(c), backend, name, fname, str(timer.steps), fmt_time(t),
                           ratio(t, product_time[backend]), ratio(t, product_time.get('numba')),
                           f'{timer.compile:.2f} s', 'yes' if ok else '**no**']
                rows.append(row)
                print('| ' + ' | '.join(row) + ' |', flush=True)
        if n == smallest and config['traced']:
            traced_rows = traced_test(n, c, mats, operands, results, repeats, target)
        del m, csr, coo, mats, dense
    return rows, results, traced_rows


def check_update(update, mat, data0, spikes, trace, x, want, fname):
    """One update against the numpy reference, compared through ``x @ W_new``."""
    new = jax.jit(lambda d, s, t: update(mat, d, s, t))(data0, spikes, trace)
    if fname == 'dense':
        got = np.asarray(x @ np.asarray(new, np.float64))
    else:
        got = np.asarray(jnp.asarray(x) @ mat.with_data(new), np.float64)
    return bool(np.allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max())))


TRACED_HEADER = ['n', 'conn/row', 'backend', 'update', 'format', 'call of 1 update, traced',
                 'call of 1 update, closed over', 'traced / closed',
                 'per further update, traced', 'per further update, closed over',
                 'first call (compile), traced']


def traced_test(n, c, mats, operands, closed, repeats, target):
    """The numba updates with the structure as a jit argument, beside the closed-over ones."""
    rows = []
    backend = 'numba'
    print('\n'.join(table_lines(TRACED_HEADER, [])), flush=True)
    with brainevent.config.backend(backend):
        for direction, (spk, tr) in operands.items():
            for fname, mat in mats.items():
                what = f'traced-structure update {direction} {fname} n={n}'
                per_closed, call_closed = closed.get((n, backend, direction, fname), (None,
                                                                                       None))
                name = f'`update_on_binary_{direction}`'
                try:
                    upd = sparse_update(direction, backend)
                    timer = UpdateTimer(update_loop(upd, mat, traced=True), mat.data, spk, tr,
                                        target)
                    t_long, t_short = timed_turns([timer.long, timer.short], repeats)
                    per = timer.per_update(t_long, t_short)
                    rows.append([f'{n:,}', str(c), backend, name, fname, fmt_time(t_short),
                                 fmt_time(call_closed), ratio(t_short, call_closed),
                                 fmt_time(per), fmt_time(per_closed),
                                 f'{timer.compile:.2f} s'])
                except Exception as exc:
                    rows.append([f'{n:,}', str(c), backend, name, fname, note_error(what, exc),
                                 fmt_time(call_closed), '-', '-', fmt_time(per_closed), '-'])
                print('| ' + ' | '.join(rows[-1]) + ' |', flush=True)
    return rows


# ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='smoke run at small sizes')
    parser.add_argument('--write', default=None,
                        help='replace the bench_fixed section of this markdown file')
    parser.add_argument('--repeats', type=int, default=None,
                        help='timed repeats per measurement (default 5, 3 with --quick)')
    parser.add_argument('--parts', default='products,builds,plasticity',
                        help='comma-separated parts to run (--write needs all three)')
    parser.add_argument('--build-child', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_child:
        build_child(json.loads(args.build_child))
        return

    parts = set(args.parts.split(','))
    if parts - {'products', 'builds', 'plasticity'}:
        parser.error(f'unknown parts: {sorted(parts - {"products", "builds", "plasticity"})}')
    if args.write and len(parts) < 3:
        parser.error('--write needs every part (the section is replaced as a whole)')
    started = time.perf_counter()
    config = QUICK if args.quick else FULL
    command = 'python benchmarks/bench_fixed.py' + (' --quick' if args.quick else '')
    if args.repeats is not None:
        command += f' --repeats {args.repeats}'
    lines = ['## Fixed number of connections per neuron (`FixedPostNumConn`, `FixedPreNumConn`)',
             '', machine_line(command), '',
             '### Products beside the explicit matrix (time per product)', '',
             'Per-entry weights (uniform in [0.1, 1)) unless marked homogeneous (one scalar '
             'weight); the explicit matrix holds the same entries (`m.tocsr()`, or '
             '`m.tocsc()` for `FixedPreNumConn`) and runs the same product on the same '
             'backend. Natural products: `spikes @ W` for `FixedPostNumConn`, `W @ spikes` '
             'for `FixedPreNumConn`; `W @ spikes` on `FixedPostNumConn` reads every entry.', '']
    print('\n'.join(lines), flush=True)
    args.repeats = args.repeats or (3 if args.quick else 5)
    t0 = time.perf_counter()
    prows, presults = product_test(config, args.repeats) if 'products' in parts else ([], {})
    lines += table_lines(PRODUCT_HEADER, prows)
    print(f'(products: {time.perf_counter() - t0:.0f} s)\n', flush=True)

    t0 = time.perf_counter()
    builds, cap = (build_test(config['builds'], config['build_timeout']) if 'builds' in parts
                   else ([], 0))
    if builds:
        section = build_lines(builds, cap)
        lines += [''] + section
        print('', *section, sep='\n', flush=True)
    print(f'(builds: {time.perf_counter() - t0:.0f} s)\n', flush=True)

    t0 = time.perf_counter()
    urows, uresults, trows = (plasticity_test(config, args.repeats) if 'plasticity' in parts
                              else ([], {}, []))
    lines += ['', f'### Plasticity updates (time per update, {RATES[0]:.0%} spikes, '
              f'bounds [{W_MIN:g}, {W_MAX:g}])', '',
              'Inside one compiled loop with the structure closed over and the weights in the '
              'carry (`data = update(conn.with_data(data), spikes, trace).data`), donated so '
              'that the loop does not copy it on entry. Time per update: the difference '
              'between a loop of `steps` updates and a loop of one, over `steps - 1`; `steps` '
              'is calibrated to a loop of about 0.05 s. "First call": compiling the loop (and '
              'any grouping of the entries it computes). The first row of each group is '
              'the CSR event product `spikes @ W` of the same matrix timed in the same turns; '
              'the ratios divide by it (same backend) and by its numba time. "Correct": one '
              'update agrees with a numpy reference, compared through `x @ W_new`.', '']
    lines += table_lines(UPDATE_HEADER, urows)
    if trows:
        lines += ['', '### Plasticity updates with the structure as a jit argument (numba)', '',
                  'The same loops with the matrix passed to `jax.jit` (traced index arrays, '
                  'so no grouping can be cached on them and it is computed in the call; XLA may '
                  'hoist it out of the loop), beside the closed-over loops above: a call of one '
                  'update (what a call costs, any grouping included) and the time per further '
                  'update in the loop.', '']
        lines += table_lines(TRACED_HEADER, trows)
    print(f'(plasticity: {time.perf_counter() - t0:.0f} s)\n', flush=True)

    # targets
    checks = []
    natural = [(k, v) for k, v in presults.items()
               if k[0] in ('natural', 'pre') and k[4] == 'numba' and v]
    if natural:
        worst_key, worst = max(natural, key=lambda kv: kv[1][0] / kv[1][1])
        r = worst[0] / worst[1]
        checks.append(('natural event products, numba: fixed <= 1.0x the explicit CSR/CSC '
                       '(worst row)', r <= 1.0,
                       f'{r:.2f} (n={worst_key[1]:,}, c={worst_key[2]}, {worst_key[3]:.0%}, '
                       f'{"FixedPreNumConn" if worst_key[0] == "pre" else "FixedPostNumConn"})'))
    if natural:
        gm = float(np.exp(np.mean([np.log(v[0] / v[1]) for _, v in natural])))
        checks.append((f'the same, geometric mean over the {len(natural)} natural numba rows '
                       f'<= 1.0', gm <= 1.0, f'{gm:.2f}'))
    key = ('natural', 20000, 100, 0.01, 'numba')
    if presults.get(key):
        r = presults[key][0] / presults[key][1]
        checks.append(('`spikes @ W`, n=20000, c=100, 1%, numba: fixed <= 1.0x CSR', r <= 1.0,
                       f'{r:.2f}'))
    all_same = all(v[2] for v in presults.values() if v)
    checks.append(('every product equals the explicit one', all_same,
                   'yes' if all_same else 'no'))
    for r in builds:
        name = (f'build n={r["n"]:,}, c={r["c"]:,}{", replace" if r["replace"] else ""}: '
                f'first and second call < 60 s')
        if 'second' in r:
            ok = r['first'] < 60 and r['second'] < 60
            value = f'{r["first"]:.2f} s, {r["second"]:.2f} s'
            if not r['status'].startswith('ok'):
                value += f' (then {r["status"]})'
            checks.append((name, ok, value))
        else:
            checks.append((name, False, r['status']))
    correct = all(row[-1] == 'yes' for row in urows if row[-1] != '-')
    checks.append(('every plasticity update matches the numpy reference', correct,
                   'yes' if correct else 'no'))
    lines += ['', '### Targets', '']
    if args.quick:
        lines += ['`--quick` runs small sizes as a smoke test; the targets are set for the '
                  'full sizes.', '']
    lines += targets_lines(checks)
    if ERRORS:
        lines += ['', '### Failed measurements', '']
        lines += [f'* {what}: `{msg}`' for what, msg in ERRORS]
    finish(lines, 'bench_fixed', args.write, started, lines.index('### Targets'))


if __name__ == '__main__':
    main()
