"""``brainevent info`` and ``brainevent bench`` (brainevent._tools), and the packaging of
the benchmark scripts as ``brainevent._benchmarks``."""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
import scipy

import brainevent
from brainevent import _tools

ROOT = pathlib.Path(__file__).resolve().parent.parent


def parse(add_arguments, argv):
    parser = argparse.ArgumentParser(prog='brainevent')
    add_arguments(parser)
    return parser.parse_args(argv)


def run_info(argv, capsys):
    code = _tools.info(parse(_tools.add_info_arguments, argv))
    out = capsys.readouterr().out
    assert code == 0
    return out


def run_bench(argv):
    return _tools.bench(parse(_tools.add_bench_arguments, argv))


# -- info ----------------------------------------------------------------------

def test_info_text_lists_versions_backends_cache_and_products(capsys):
    out = run_info([], capsys)
    assert out.startswith(f'brainevent {brainevent.__version__}\n')
    for name, version in [('python', sys.version.split()[0]), ('jax', jax.__version__),
                          ('numpy', np.__version__), ('scipy', scipy.__version__)]:
        assert re.search(rf'^  {name} +{re.escape(version)}', out, re.M), name
    for name in ('jaxlib', 'numba', 'brainunit', 'warp'):
        assert re.search(rf'^  {name} +\S', out, re.M), name
    cpu = brainevent.backends.all_kernels()['csr_matmul'].backends('cpu')
    line = next(l for l in out.splitlines() if l.strip().startswith('cpu (current)'))
    for backend in cpu:
        assert backend in line
    assert f'default: {cpu[0]}' in line
    assert re.search(r'^  gpu +registered: jax', out, re.M)
    assert re.search(r'^  tpu +registered: jax', out, re.M)
    assert 'BRAINEVENT_CACHE_DIR' in out
    assert re.search(r'^\| BinaryArray +\| CSR +\| csr_matmul +\| numba, jax +\|$', out, re.M)
    assert re.search(r'^\| CSR +\| BinaryArray +\| csr_matmul +\|', out, re.M)


def test_info_json_has_the_same_content(capsys):
    report = json.loads(run_info(['--json'], capsys))
    assert report['versions']['brainevent'] == brainevent.__version__
    assert report['versions']['jax'] == jax.__version__
    assert report['versions']['numpy'] == np.__version__
    assert set(report['versions']) >= {'python', 'jaxlib', 'scipy', 'numba', 'brainunit'}
    assert 'warp' in report['optional']
    assert report['jax']['default_platform'] == 'cpu'
    assert [d['platform'] for d in report['jax']['devices']] == [d.platform
                                                                 for d in jax.devices()]
    assert list(report['backends']) == ['cpu', 'gpu', 'tpu']
    cpu = report['backends']['cpu']
    assert cpu['current'] and cpu['configured'] is None
    # every declared kernel counts, a user's too (other test modules declare some)
    kernels = brainevent.backends.all_kernels().values()
    assert cpu['registered'] == list(dict.fromkeys(b for k in kernels for b in k.backends('cpu')))
    csr_backends = brainevent.backends.all_kernels()['csr_matmul'].backends('cpu')
    assert cpu['default'] == csr_backends[0]
    assert 'jax' in report['backends']['gpu']['registered']
    assert report['cache']['dir'] == str(brainevent.backends._numba_ffi.cache_dir())
    rows = {(r['left'], r['right']): r for r in report['kernels']['rows']}
    assert rows[('BinaryArray', 'CSR')]['kernel'] == 'csr_matmul'
    assert rows[('BinaryArray', 'CSR')]['backends'] == csr_backends
    assert rows[('CSR', 'BinaryArray')]['kernel'] == 'csr_matmul'
    assert len(rows) == len(brainevent.kernels())


def test_info_follows_the_configured_backend():
    with brainevent.config.backend('jax'):
        cpu = _tools.collect_info()['backends']['cpu']
    assert cpu['configured'] == 'jax' and cpu['default'] == 'jax'


def test_missing_library_reads_not_installed(monkeypatch):
    assert _tools._version('brainevent_no_such_module', 'brainevent-no-such-dist') == \
        'not installed'
    monkeypatch.setattr(_tools, '_OPTIONAL', (('warp', 'brainevent_no_such_module',
                                              'brainevent-no-such-dist'),))
    report = _tools.collect_info()
    assert report['optional'] == {'warp': 'not installed'}
    assert re.search(r'^  warp +not installed', _tools.format_info(report), re.M)


# -- bench ---------------------------------------------------------------------

@pytest.fixture
def fake_benchmarks(tmp_path, monkeypatch):
    """A folder with a working, a failing script and a sibling module, set as the bench dir."""
    folder = tmp_path / 'fake_benchmarks'
    folder.mkdir()
    (folder / '_common.py').write_text('VALUE = 42\n')
    (folder / 'bench_fake.py').write_text(textwrap.dedent('''\
        """A fake benchmark for the tests.

        More text.
        """
        import os
        import sys

        import importlib.util

        import _common  # a sibling, imported from the script's folder

        brainevent = importlib.util.find_spec('brainevent').origin  # found, not imported
        print('fake ran', sys.argv[1:], os.getcwd(), _common.VALUE, brainevent)
        '''))
    (folder / 'bench_broken.py').write_text('import sys\nprint("broken ran")\nsys.exit(3)\n')
    (folder / 'notabench.py').write_text('raise SystemExit(9)\n')
    monkeypatch.setenv(_tools.BENCH_DIR_ENV, str(folder))
    return folder


def test_bench_list_shows_the_repository_scripts(monkeypatch, capsys):
    monkeypatch.delenv(_tools.BENCH_DIR_ENV, raising=False)
    assert run_bench(['--list']) == 0
    out = capsys.readouterr().out
    for name in ('csr', 'jitc', 'fixed'):
        assert re.search(rf'^  {name} +\S', out, re.M), name
    folder = _tools.benchmark_dir()
    assert {'csr', 'jitc', 'fixed'} <= set(_tools.find_benchmarks(folder))
    assert (folder / '_common.py').is_file()


def test_bench_unknown_name_fails_listing_the_names(monkeypatch, capsys):
    monkeypatch.delenv(_tools.BENCH_DIR_ENV, raising=False)
    assert run_bench(['csr', 'nope']) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert "unknown benchmark 'nope'" in captured.err
    available = captured.err.split('available:')[1]
    for name in ('csr', 'jitc', 'fixed'):
        assert name in available


def test_bench_runs_a_script_from_its_folder_passing_the_flags(fake_benchmarks, tmp_path,
                                                               monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    assert run_bench(['fake', '--quick', '--write', 'report.md']) == 0
    out, err = capfd.readouterr()
    assert '== fake: bench_fake.py --quick --write' in out
    expected = ['--quick', '--write', str(tmp_path / 'report.md')]
    line = next(l for l in out.splitlines() if l.startswith('fake ran'))
    assert line.startswith(f'fake ran {expected!r} {fake_benchmarks} 42 ')
    assert line.endswith(brainevent.__file__)  # the same brainevent as this process
    assert 'broken ran' not in out and 'summary' not in out and err == ''


def test_bench_all_runs_every_script_and_reports_failures(fake_benchmarks, capfd):
    assert run_bench([]) == 1
    out, err = capfd.readouterr()
    assert 'broken ran' in out and 'fake ran []' in out
    assert out.index('== broken') < out.index('== fake')  # by name
    assert re.search(r'^  broken +FAILED \(3\)', out, re.M)
    assert re.search(r'^  fake +ok', out, re.M)
    assert 'bench_broken.py failed (exit status 3)' in err


def test_bench_list_and_dir_option(fake_benchmarks, tmp_path, monkeypatch, capsys):
    assert run_bench(['--list']) == 0
    out = capsys.readouterr().out
    assert f'benchmarks in {fake_benchmarks}' in out
    assert re.search(r'^  fake +A fake benchmark for the tests\.$', out, re.M)
    assert re.search(r'^  broken$', out, re.M)
    assert 'notabench' not in out
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'bench_x.py').write_text('"""X."""\n')
    assert run_bench(['--list', '--dir', str(other)]) == 0  # --dir wins over the variable
    assert re.search(r'^  x +X\.$', capsys.readouterr().out, re.M)
    assert run_bench(['--dir', str(tmp_path / 'missing')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    monkeypatch.setenv(_tools.BENCH_DIR_ENV, str(tmp_path))
    assert run_bench([]) == 2
    assert 'no bench_*.py scripts' in capsys.readouterr().err


def test_bench_help_documents_the_folder_variable():
    parser = argparse.ArgumentParser(prog='brainevent bench')
    _tools.add_bench_arguments(parser)
    assert _tools.BENCH_DIR_ENV in parser.format_help()


def test_module_entry_point(fake_benchmarks):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    result = subprocess.run([sys.executable, '-m', 'brainevent._tools', 'bench', 'fake'],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'fake ran []' in result.stdout
    result = subprocess.run([sys.executable, '-m', 'brainevent._tools', 'info', '--json'],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)['versions']['brainevent'] == brainevent.__version__


# -- packaging -----------------------------------------------------------------

@pytest.mark.skipif(not (ROOT / 'setup.py').is_file(), reason='not a source checkout')
def test_the_benchmarks_are_packaged_as_brainevent_benchmarks():
    """setup.py + pyproject.toml install benchmarks/ as brainevent._benchmarks, and every
    package of the tree (what a plain ``pip install .`` would otherwise miss)."""
    script = ('import json, setuptools\n'
              'from distutils.core import run_setup\n'
              'd = run_setup("setup.py", stop_after="config")\n'
              'print(json.dumps([d.packages, d.package_dir]))\n')
    result = subprocess.run([sys.executable, '-W', 'ignore', '-c', script], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    packages, package_dir = json.loads(result.stdout.strip().splitlines()[-1])
    assert package_dir == {'brainevent._benchmarks': 'benchmarks'}
    tree = {'.'.join(p.relative_to(ROOT).parts) for p in (ROOT / 'brainevent').rglob('*')
            if p.is_dir() and p.name != '__pycache__' and any(p.glob('*.py'))}
    assert tree | {'brainevent', 'brainevent._benchmarks'} <= set(packages)
    assert (ROOT / 'benchmarks' / '__init__.py').is_file()


def test_subcommands_are_wired_into_the_brainevent_command(capsys):
    from brainevent.__main__ import main as brainevent_main
    assert brainevent_main(['info', '--json']) == 0
    report = json.loads(capsys.readouterr().out)
    assert 'versions' in report or 'brainevent' in json.dumps(report)
    assert brainevent_main(['bench', '--list']) == 0
    assert 'csr' in capsys.readouterr().out
