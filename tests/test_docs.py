"""Every code example in docs/ and in the package's docstrings runs and holds."""

import doctest
import importlib
import pathlib
import pkgutil
import re
import textwrap

import pytest

import brainevent

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / 'docs').glob('*.md'))
# Fences may be indented (inside list items); the block is dedented before it runs.
FENCE = re.compile(r'^[ \t]*```python\n(.*?)^[ \t]*```', re.S | re.M)
ANY_FENCE = re.compile(r'^[ \t]*```(\w*)$', re.M)


def test_docs_exist():
    assert DOCS, 'docs/ has no pages'
    assert sum(len(FENCE.findall(p.read_text())) for p in DOCS) >= 10, 'docs lost examples'


@pytest.mark.parametrize('page', DOCS, ids=[p.name for p in DOCS])
def test_every_code_block_is_executed(page):
    """Only python blocks appear in docs/, so every example is one the tests run."""
    text = page.read_text()
    openers = ANY_FENCE.findall(text)[::2]  # fences alternate: opener, closer
    assert all(lang == 'python' for lang in openers), f'{page.name} has non-python blocks'


# A line `<!-- requires: gpu -->` (or `nvcc`) right before a fence: the block runs only
# where JAX's default backend is a GPU (or nvcc is installed); the others run regardless.
REQUIRES = re.compile(r'<!--\s*requires:\s*(\w+)\s*-->\s*\Z')


def _unmet(requirement):
    """Why a block marked `requires: <requirement>` cannot run here, or None."""
    import shutil

    import jax
    if requirement == 'gpu':
        backend = jax.default_backend()
        return None if backend in ('gpu', 'cuda', 'rocm') else f'needs a GPU (backend: {backend})'
    if requirement == 'nvcc':
        return None if shutil.which('nvcc') else 'needs nvcc (the CUDA toolkit)'
    raise ValueError(f'unknown docs requirement {requirement!r}')


@pytest.mark.parametrize('page', DOCS, ids=[p.name for p in DOCS])
def test_docs_page_runs(page, capsys):
    namespace = {'__name__': f'docs_{page.stem}'}
    text = page.read_text()
    skipped = []
    for i, match in enumerate(FENCE.finditer(text)):
        marker = REQUIRES.search(text[:match.start()])
        reason = marker and _unmet(marker.group(1))
        if reason:
            skipped.append(f'block {i} {reason}')
            continue
        code = compile(textwrap.dedent(match.group(1)), f'{page.name}[block {i}]', 'exec')
        exec(code, namespace)
    if skipped:
        pytest.skip(f'{page.name}: the other blocks ran; skipped {"; ".join(skipped)}')


def test_readme_example_runs():
    blocks = FENCE.findall((ROOT / 'README.md').read_text())
    assert blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, 'README.md', 'exec'), namespace)


MODULES = sorted(m.name for m in pkgutil.walk_packages(brainevent.__path__, 'brainevent.')
                 if not m.name.endswith('__main__'))


@pytest.mark.parametrize('name', MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f'{result.failed} docstring example(s) failed in {name}'


def test_public_api_has_examples():
    """Each public class and function has a docstring with an example."""
    missing = []
    for name in dir(brainevent):
        obj = getattr(brainevent, name)
        if name.startswith('_') or not callable(obj) or isinstance(obj, type(brainevent)):
            continue
        if '>>>' not in (obj.__doc__ or ''):
            missing.append(name)
    assert not missing, f'public names without a runnable example: {missing}'


def test_site_builds_offline(tmp_path):
    """`mkdocs build --strict` builds the site from docs/ and the docstrings, with no network."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.skip("mkdocs is not installed; pip install '.[docs]' (or '.[test]') to build the site")
    import os
    import subprocess
    import sys

    site = tmp_path / 'site'
    dead = 'http://127.0.0.1:9'  # any download attempt fails instead of reaching the network
    env = {k: v for k, v in os.environ.items() if k.lower() not in ('no_proxy',)}
    env.update(HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead, http_proxy=dead,
               https_proxy=dead, all_proxy=dead)
    run = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir',
                          str(site)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, f'mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}'

    for page in DOCS:
        assert (site / f'{page.stem}.html').is_file(), f'{page.name} is not in the site'
    api = (site / 'api.html').read_text()
    public = [name for name in dir(brainevent) if not name.startswith('_')
              and callable(getattr(brainevent, name))]
    assert {'FixedPostNumConn', 'update_on_binary_pre', 'CSR', 'JITCScalarR'} <= set(public)
    missing = [name for name in public if f'id="brainevent.{name}"' not in api]
    assert not missing, f'docs/api.md does not document {missing}'
    assert 'id="brainevent.config.set_backend"' in api
    # the pages load nothing from the network (no CDN scripts, styles or fonts)
    remote = {m for html in site.glob('*.html')
              for m in re.findall(r'<(?:script|link|img)[^>]*(?:src|href)="(https?://[^"]+)"',
                                  html.read_text())}
    assert not remote, f'the site loads remote resources: {sorted(remote)}'
