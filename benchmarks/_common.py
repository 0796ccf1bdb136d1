"""Pieces shared by the benchmark scripts: timing, formatting, the report file.

Every script times its methods the same way (``steps`` products inside one
compiled loop, best of a few repeats), prints markdown tables, and with
``--write PATH`` replaces only its own section of the report, the text between
``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``; the rest of the file is kept.
"""

import os
import platform
import re
import time

import jax
import jax.numpy as jnp
import numba

import brainevent

__all__ = ['PATTERNS', 'best_time', 'jax_loop', 'steps_for', 'fmt_time', 'ratio', 'table_lines',
           'targets_lines', 'machine_line', 'write_section', 'finish']

PATTERNS = 4  # spike patterns a timed loop cycles through, so no step can be hoisted
TITLE = '# Benchmarks'


def best_time(fn, repeats):
    """The shortest of ``repeats`` timed calls of ``fn``, after one untimed call."""
    fn()  # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def jax_loop(product, steps):
    """``steps`` products in one compiled loop over the spike patterns, summed."""

    @jax.jit
    def run(w, patterns):
        def body(t, acc):
            return acc + product(w, patterns[t % patterns.shape[0]])
        return jax.lax.fori_loop(0, steps, body, jnp.zeros_like(product(w, patterns[0])))

    return run


def steps_for(work, budget=2e7):
    """Products per timed loop: about ``budget`` operations, between 1 and 200."""
    return int(max(1, min(200, budget / max(work, 1.0))))


def fmt_time(t):
    if t is None:
        return '-'
    return f'{t * 1e6:.1f} µs' if t < 1e-3 else f'{t * 1e3:.2f} ms'


def ratio(a, b):
    return '-' if a is None or b is None else f'{a / b:.2f}'


def table_lines(header, rows):
    """A markdown table: the header line, the rule and one line per row (cells as strings)."""
    def line(cells):
        return '| ' + ' | '.join(cells) + ' |'
    return [line(header), '|' + '---|' * len(header)] + [line(row) for row in rows]


def targets_lines(checks):
    """The targets table: one row per ``(target, holds, measured)``."""
    return table_lines(['target', 'measured', 'holds'],
                       [[name, value, 'yes' if ok else 'no'] for name, ok, value in checks])


def machine_line(command):
    """The machine, the library versions and the command line that produced a report."""
    return (f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; '
            f'jax {jax.__version__}, numba {numba.__version__}, '
            f'brainevent {brainevent.__version__}. Command: `{command}`.')


def _markers(name):
    return f'<!-- {name}:begin -->', f'<!-- {name}:end -->'


def write_section(path, name, text):
    """Replace section ``name`` of the markdown file ``path`` with ``text``, keep the rest.

    The section is the text between the ``<!-- name:begin -->`` and
    ``<!-- name:end -->`` lines. A file without the section gets it appended;
    a missing file is created with the ``# Benchmarks`` title.
    """
    begin, end = _markers(name)
    block = f'{begin}\n\n{text.strip()}\n\n{end}'
    old = ''
    if os.path.exists(path):
        with open(path, encoding='utf-8') as f:
            old = f.read()
    found = re.search(rf'^{re.escape(begin)}$.*?^{re.escape(end)}$', old, re.S | re.M)
    if found:
        new = old[:found.start()] + block + old[found.end():]
    elif begin in old or end in old:
        raise ValueError(f'{path}: the {name} section has only one of its markers '
                         f'{begin} and {end}; fix the file by hand')
    elif old.strip():
        new = old.rstrip('\n') + '\n\n' + block + '\n'
    else:
        new = f'{TITLE}\n\n{block}\n'
    with open(path, 'w', encoding='utf-8') as f:
        f.write(new)


def finish(lines, name, write, started=None, shown_from=0):
    """End a report: the script's run time (when ``started`` is given), print ``lines`` from
    index ``shown_from``, and with ``write`` replace section ``name`` of that file."""
    if started is not None:
        lines += ['', f'Run time of the whole script: {time.perf_counter() - started:.0f} s.']
    print('', *lines[shown_from:], sep='\n')
    if write:  # only this script's section; the title and other sections are kept
        write_section(write, name, '\n'.join(lines))
        print(f'wrote the {name} section of {write}')
