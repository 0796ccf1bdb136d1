"""Command-line tools: ``brainevent info`` and ``brainevent bench``.

``info`` reports the versions of brainevent and of the libraries it runs on,
the devices JAX sees, the backends registered on each platform and which one a
call runs by default, the kernel cache and the table of products.

``bench`` runs the benchmark scripts (``bench_*.py`` of the repository's
``benchmarks/`` folder, installed with the package as ``brainevent._benchmarks``)
in subprocesses of the same interpreter, each with its folder as working
directory, and streams their tables.

Each command is two functions, wired into ``python -m brainevent`` as
subcommands: ``add_info_arguments(parser)`` / ``info(args)`` and
``add_bench_arguments(parser)`` / ``bench(args)``. ``python -m brainevent._tools``
runs them on their own.
"""

import argparse
import ast
import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import pathlib
import platform as _platform
import site
import subprocess
import sys
import time
from collections import Counter

__all__ = ['add_info_arguments', 'info', 'collect_info', 'format_info',
           'add_bench_arguments', 'bench', 'benchmark_dir', 'find_benchmarks', 'main']

NOT_INSTALLED = 'not installed'

# (name shown, module imported, distribution on the package index)
_LIBRARIES = (
    ('jax', 'jax', 'jax'),
    ('jaxlib', 'jaxlib', 'jaxlib'),
    ('numpy', 'numpy', 'numpy'),
    ('scipy', 'scipy', 'scipy'),
    ('numba', 'numba', 'numba'),
    ('brainunit', 'brainunit', 'brainunit'),
)
# Optional backends: never imported here (importing may initialise a GPU or print).
_OPTIONAL = (
    ('warp', 'warp', 'warp-lang'),
)

BENCH_DIR_ENV = 'BRAINEVENT_BENCH_DIR'
_BENCH_PACKAGE = 'brainevent._benchmarks'


# ----------------------------------------------------------------------------
# brainevent info
# ----------------------------------------------------------------------------

def add_info_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``brainevent info`` to ``parser`` (a subparser)."""
    parser.add_argument('--json', action='store_true',
                        help='print the report as JSON instead of text')
    return parser


def _version(module: str, dist: str | None = None) -> str:
    """The version of ``module`` (distribution ``dist``), or ``'not installed'``.

    An already imported module reports its ``__version__``; otherwise the
    installed distribution's metadata is read, without importing anything.
    """
    loaded = sys.modules.get(module)
    version = getattr(loaded, '__version__', None) if loaded is not None else None
    if version:
        return str(version)
    try:
        return importlib.metadata.version(dist or module)
    except importlib.metadata.PackageNotFoundError:
        pass
    except Exception:  # a broken installation's metadata: fall through
        pass
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    return NOT_INSTALLED if spec is None else 'installed (version unknown)'


def _platforms() -> list[str]:
    """The platform names of the kernel registry: ``['cpu', 'gpu', 'tpu']``."""
    from .backends._kernel import _LOWERING_PLATFORMS
    return list(dict.fromkeys(_LOWERING_PLATFORMS.values()))


def _backend_report(platform: str, kernels: dict) -> dict:
    """Registered backends of ``platform``, their coverage and the default choice."""
    from . import _config
    registered: list[str] = []
    coverage: Counter = Counter()
    resolved: dict[str, str] = {}
    for name, kernel in kernels.items():
        names = kernel.backends(platform)
        for backend in names:
            if backend not in registered:
                registered.append(backend)
            coverage[backend] += 1
        if names:
            resolved[name] = kernel.resolve_backend(platform=platform)
    counts = Counter(resolved.values())
    default = counts.most_common(1)[0][0] if counts else None
    return {
        'current': platform == _config.default_platform(),
        'registered': registered,
        'kernels': {backend: coverage[backend] for backend in registered},
        'total_kernels': len(kernels),
        'configured': _config.get_backend(platform),
        'default': default,
        # kernels that run another backend than ``default`` (one not implemented there)
        'exceptions': {k: b for k, b in resolved.items() if b != default},
    }


def _cache_report() -> dict:
    try:
        from .backends._numba_ffi import _ENV, cache_dir
        path = cache_dir()
    except Exception as error:  # numba missing or broken: report, do not crash
        return {'dir': None, 'error': f'{type(error).__name__}: {error}'}
    report = {'dir': str(path), 'env': _ENV, 'exists': path.is_dir(), 'files': 0, 'bytes': 0}
    if report['exists']:
        try:
            for root, _, files in os.walk(path):
                for f in files:
                    try:
                        report['bytes'] += os.stat(os.path.join(root, f)).st_size
                        report['files'] += 1
                    except OSError:
                        pass
        except OSError:
            pass
    return report


def collect_info() -> dict:
    """Everything ``brainevent info`` reports, as a JSON-serialisable dict."""
    import jax

    import brainevent
    from . import _config

    versions = {'brainevent': brainevent.__version__, 'python': _platform.python_version()}
    for shown, module, dist in _LIBRARIES:
        versions[shown] = _version(module, dist)
    optional = {shown: _version(module, dist) for shown, module, dist in _OPTIONAL}

    try:
        devices = [{'platform': d.platform, 'id': d.id,
                    'kind': getattr(d, 'device_kind', ''), 'repr': str(d)}
                   for d in jax.devices()]
        device_error = None
    except Exception as error:
        devices, device_error = [], f'{type(error).__name__}: {error}'

    kernels = brainevent.backends.all_kernels()
    current = _config.default_platform()
    table = brainevent.kernels(current)
    return {
        'versions': versions,
        'optional': optional,
        'python': {'implementation': _platform.python_implementation(),
                   'executable': sys.executable, 'machine': _platform.platform()},
        'jax': {'default_platform': current, 'devices': devices, 'error': device_error},
        'backends': {p: _backend_report(p, kernels) for p in _platforms()},
        'cache': _cache_report(),
        'operations': [{'name': name, 'backends': {p: kernel.backends(p) for p in _platforms()}}
                       for name, kernel in sorted(kernels.items())],
        'kernels': {'platform': current, 'rows': [row._asdict() | {'backends': list(row.backends)}
                                                  for row in table]},
        '_table': str(table),
    }


def _size(n: int) -> str:
    for unit in ('B', 'KB', 'MB', 'GB'):
        if n < 1024 or unit == 'GB':
            return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1024
    return f'{n} B'  # pragma: no cover


def format_info(report: dict) -> str:
    """The text form of :func:`collect_info`'s report."""
    versions = dict(report['versions'])
    lines = [f"brainevent {versions.pop('brainevent')}", '']
    width = max(len(k) for k in [*versions, *report['optional']])
    py = report['python']
    lines.append('Versions')
    for name, version in versions.items():
        extra = f"  ({py['implementation']}, {py['executable']})" if name == 'python' else ''
        lines.append(f'  {name:<{width}}  {version}{extra}')
    for name, version in report['optional'].items():
        lines.append(f'  {name:<{width}}  {version}  (optional backend)')
    lines.append(f"  {'machine':<{width}}  {py['machine']}")

    jx = report['jax']
    lines += ['', f"JAX devices (default platform: {jx['default_platform']})"]
    if jx['error']:
        lines.append(f"  jax.devices() failed: {jx['error']}")
    for d in jx['devices']:
        kind = f" [{d['kind']}]" if d['kind'] and d['kind'] != d['platform'] else ''
        lines.append(f"  {d['platform']}: {d['repr']}{kind}")

    lines += ['', 'Backends per platform (the default runs a call that names none; '
                  'brainevent.config.set_backend changes it)']
    width = max(len(p) for p in report['backends']) + len(' (current)')
    for p, b in report['backends'].items():
        label = f"{p} (current)" if b['current'] else p
        if not b['registered']:
            lines.append(f'  {label:<{width}}  no kernels registered')
            continue
        total = b['total_kernels']
        registered = ', '.join(f"{name} ({n}/{total} kernels)" for name, n in b['kernels'].items())
        configured = b['configured'] or 'not set'
        lines.append(f"  {label:<{width}}  registered: {registered}; default: {b['default']}; "
                     f"set_backend: {configured}")
        for kernel, backend in b['exceptions'].items():
            lines.append(f"  {'':<{width}}    {kernel} runs {backend}")

    c = report['cache']
    lines += ['', 'Kernel cache']
    if c.get('dir') is None:
        lines.append(f"  unavailable: {c.get('error')}")
    else:
        state = (f"{c['files']} files, {_size(c['bytes'])}" if c['exists']
                 else 'not created yet')
        lines.append(f"  {c['dir']}  ({state}; ${c['env']} moves it)")

    lines += ['', f"Operations ({len(report['operations'])} XLACustomKernel objects; backends "
                  f"per platform, default first)"]
    width = max((len(op['name']) for op in report['operations']), default=0)
    for op in report['operations']:
        where = '; '.join(f"{p}: {', '.join(names)}" for p, names in op['backends'].items()
                          if names)
        lines.append(f"  {op['name']:<{width}}  {where or 'no implementation'}")

    lines += ['', f"Products (backends on {report['kernels']['platform']})", report['_table']]
    return '\n'.join(lines)


def info(args) -> int:
    """``brainevent info [--json]``: versions, devices, backends, cache, operations, products."""
    report = collect_info()
    if getattr(args, 'json', False):
        text = json.dumps({k: v for k, v in report.items() if not k.startswith('_')}, indent=2)
    else:
        text = format_info(report)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # ``brainevent info | head``: the reader has gone, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


# ----------------------------------------------------------------------------
# brainevent bench
# ----------------------------------------------------------------------------

def add_bench_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``brainevent bench`` to ``parser`` (a subparser)."""
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help="benchmarks to run, by the part of the script's name after "
                             "'bench_' (e.g. csr jitc); default: all (see --list)")
    parser.add_argument('--quick', action='store_true',
                        help='passed to each script: a shorter grid (a smoke run)')
    parser.add_argument('--write', metavar='PATH', default=None,
                        help="passed to each script: replace the script's own section of "
                             "this markdown report (e.g. docs/benchmarks.md), keep the rest")
    parser.add_argument('--list', action='store_true',
                        help='list the available benchmarks and where they are, run nothing')
    parser.add_argument('--dir', metavar='DIR', default=None,
                        help=f'folder of the bench_*.py scripts (default: ${BENCH_DIR_ENV} if '
                             f'set, else the scripts installed with brainevent)')
    if parser.epilog is None:
        parser.epilog = (
            'Each script runs as "python bench_NAME.py [--quick] [--write PATH]" with the '
            'current interpreter and its own folder as working directory; a failing script '
            'does not stop the others, and the exit status is 1 if any failed. '
            f'The folder is --dir, else ${BENCH_DIR_ENV}, else the package '
            f'{_BENCH_PACKAGE} (the repository\'s benchmarks/ folder). Run a script '
            'directly for its other options (python PATH --help).')
    return parser


def _source_tree_benchmarks() -> pathlib.Path | None:
    """``benchmarks/`` beside the package when it runs from a source checkout."""
    folder = pathlib.Path(__file__).resolve().parent.parent / 'benchmarks'
    return folder if any(folder.glob('bench_*.py')) else None


def benchmark_dir(path=None) -> pathlib.Path:
    """The folder of the benchmark scripts.

    ``path`` if given, else ``$BRAINEVENT_BENCH_DIR``, else the installed package
    ``brainevent._benchmarks``, else (running from a source checkout whose
    package has not been installed) the repository's ``benchmarks/`` folder.
    Raises ``FileNotFoundError`` if none exists.
    """
    if path is None:
        path = os.environ.get(BENCH_DIR_ENV) or None
    if path is not None:
        folder = pathlib.Path(path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f'benchmark folder {str(folder)!r} does not exist')
        return folder.resolve()
    try:
        resource = importlib.resources.files(_BENCH_PACKAGE)
    except ModuleNotFoundError:
        resource = None
    if resource is not None:
        folder = pathlib.Path(str(resource))
        if folder.is_dir() and any(folder.glob('bench_*.py')):
            return folder
    folder = _source_tree_benchmarks()
    if folder is None:
        raise FileNotFoundError(
            f'no benchmark scripts found: the package {_BENCH_PACKAGE} is not installed '
            f'(install brainevent with pip from a checkout of its repository) and '
            f'${BENCH_DIR_ENV} is not set')
    return folder


def find_benchmarks(folder) -> dict[str, pathlib.Path]:
    """``{name: script}`` for the ``bench_NAME.py`` files of ``folder``, by name."""
    folder = pathlib.Path(folder)
    scripts = {p.stem[len('bench_'):]: p for p in folder.glob('bench_*.py')
               if p.is_file() and p.stem != 'bench_'}
    return dict(sorted(scripts.items()))


def _summary_line(script: pathlib.Path) -> str:
    """The first line of a script's docstring, read without running it."""
    try:
        doc = ast.get_docstring(ast.parse(script.read_text(encoding='utf-8')))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return ''
    return doc.strip().splitlines()[0] if doc and doc.strip() else ''


def _child_env() -> dict[str, str]:
    """The environment of a script: unbuffered output, this process's brainevent importable."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    root = str(pathlib.Path(__file__).resolve().parent.parent)
    site_dirs = set(site.getsitepackages()) | {site.getusersitepackages()}
    if root not in {str(pathlib.Path(d).resolve()) for d in site_dirs if d}:
        # a source checkout (or an editable install): the scripts, which run from their
        # own folder, must import the same brainevent as this process
        parts = [root] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p]
        env['PYTHONPATH'] = os.pathsep.join(dict.fromkeys(parts))
    return env


def bench(args) -> int:
    """``brainevent bench [NAME ...] [--quick] [--write PATH] [--list] [--dir DIR]``."""
    try:
        folder = benchmark_dir(getattr(args, 'dir', None))
    except FileNotFoundError as error:
        print(f'brainevent bench: {error}', file=sys.stderr)
        return 2
    scripts = find_benchmarks(folder)
    if not scripts:
        print(f'brainevent bench: no bench_*.py scripts in {folder}', file=sys.stderr)
        return 2
    names = list(dict.fromkeys(getattr(args, 'names', None) or []))
    unknown = [n for n in names if n not in scripts]
    if unknown:
        print(f"brainevent bench: unknown benchmark{'s' if len(unknown) > 1 else ''} "
              f"{', '.join(map(repr, unknown))}; available: {', '.join(scripts)}",
              file=sys.stderr)
        return 2

    if getattr(args, 'list', False):
        print(f'benchmarks in {folder}:')
        width = max(len(n) for n in scripts)
        for name, script in scripts.items():
            if names and name not in names:
                continue
            print(f'  {name:<{width}}  {_summary_line(script)}'.rstrip())
        return 0

    flags = []
    if getattr(args, 'quick', False):
        flags.append('--quick')
    if getattr(args, 'write', None):
        # the scripts run from their own folder: a relative path means the caller's
        flags += ['--write', os.path.abspath(os.path.expanduser(args.write))]
    env = _child_env()
    python = sys.executable or 'python'
    results = []
    for name in names or list(scripts):
        script = scripts[name]
        print(f"== {name}: {script.name} {' '.join(flags)}".rstrip() + ' ==', flush=True)
        sys.stderr.flush()
        start = time.perf_counter()
        try:
            code = subprocess.run([python, str(script), *flags], cwd=str(folder),
                                  env=env).returncode
        except KeyboardInterrupt:
            print(f'\nbrainevent bench: interrupted during {name}', file=sys.stderr)
            return 130
        except OSError as error:
            print(f'brainevent bench: could not run {script}: {error}', file=sys.stderr)
            code = None
        results.append((name, code, time.perf_counter() - start))
        sys.stdout.flush()
        if code != 0:
            print(f'brainevent bench: {script.name} failed '
                  f"({'exit status ' + str(code) if code is not None else 'not started'})",
                  file=sys.stderr, flush=True)
    if len(results) > 1:
        print('== summary ==')
        width = max(len(n) for n, _, _ in results)
        for name, code, seconds in results:
            state = 'ok' if code == 0 else f'FAILED ({code})'
            print(f'  {name:<{width}}  {state:<12} {seconds:8.1f} s')
    return 0 if all(code == 0 for _, code, _ in results) else 1


# ----------------------------------------------------------------------------

def main(argv=None) -> int:
    """``python -m brainevent._tools {info,bench} ...``."""
    parser = argparse.ArgumentParser(prog='python -m brainevent._tools',
                                     description='brainevent info and bench.')
    sub = parser.add_subparsers(dest='command', required=True)
    add_info_arguments(sub.add_parser('info', help='versions, devices, backends, kernel cache, '
                                                   'products')).set_defaults(run=info)
    add_bench_arguments(sub.add_parser('bench', help='run the benchmark scripts')
                        ).set_defaults(run=bench)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
