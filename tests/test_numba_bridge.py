"""The numba FFI bridge: its hand-mirrored struct layout, its cache, its errors."""

import os
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainevent
from brainevent.backends import _numba_ffi, _numba_intrinsics

pytestmark = pytest.mark.skipif(not _numba_ffi.numba_available, reason='numba is not installed')

NESTED = {'args': 'XLA_FFI_Args', 'rets': 'XLA_FFI_Rets', 'api_version': 'XLA_FFI_Api_Version'}


def _offset_expr(struct, field):
    if '.' in field:
        outer, inner = field.split('.')
        return f'offsetof({struct}, {outer}) + offsetof({NESTED[outer]}, {inner})'
    return f'offsetof({struct}, {field})'


@pytest.mark.skipif(shutil.which('g++') is None, reason='needs g++ to read the C header')
def test_layout_matches_installed_header(tmp_path):
    """Every offset the bridge uses equals offsetof() in the installed jaxlib's c_api.h."""
    layout = _numba_intrinsics.FRAME_LAYOUT
    lines = [f'  std::printf("%s %zu\\n", "{s}.{f}", (size_t)({_offset_expr(s, f)}));'
             for s, f in layout]
    sizes = [f'  std::printf("%s %zu\\n", "{s}", (size_t){s}_STRUCT_SIZE);'
             for s in _numba_intrinsics._SIZES]
    source = tmp_path / 'layout.cc'
    source.write_text('#include <cstddef>\n#include <cstdio>\n#include "xla/ffi/api/c_api.h"\n'
                      'int main() {\n' + '\n'.join(lines + sizes) + '\n  return 0;\n}\n')
    exe = tmp_path / 'layout'
    subprocess.run(['g++', '-std=c++17', '-I', jax.ffi.include_dir(), str(source), '-o', str(exe)],
                   check=True, capture_output=True)
    measured = dict(line.rsplit(' ', 1) for line in
                    subprocess.run([str(exe)], check=True, capture_output=True,
                                   text=True).stdout.splitlines())
    expected = {f'{s}.{f}': v for (s, f), v in layout.items()}
    expected.update(_numba_intrinsics._SIZES)
    assert {k: int(v) for k, v in measured.items()} == expected


def test_api_version_is_accepted():
    """The bridge reports an FFI API version inside the range the header declares."""
    with open(os.path.join(jax.ffi.include_dir(), 'xla/ffi/api/c_api.h')) as f:
        header = f.read()
    major = int(header.split('#define XLA_FFI_API_MAJOR')[1].split()[0])
    minor = int(header.split('#define XLA_FFI_API_MINOR')[1].split()[0])
    assert (_numba_intrinsics.API_MAJOR, _numba_intrinsics.API_MINOR) <= (major, minor)


def test_kernel_error_is_a_runtime_error():
    """An index past the matrix shape is reported by the kernel, never a silent success."""
    bad = brainevent.CSR((jnp.ones(2), jnp.array([0, 9]), jnp.array([0, 1, 2])), shape=(2, 3))
    with brainevent.config.backend('numba'):
        with pytest.raises(Exception, match='index is out of range'):
            jax.block_until_ready(brainevent.BinaryArray(jnp.ones(2)) @ bad)


_CHILD = textwrap.dedent('''
    import jax.numpy as jnp, numba.core.ccallback, brainevent
    compiled = []
    original = numba.core.ccallback.CFunc._compile_uncached
    def counting(self):
        compiled.append(self.__name__)
        return original(self)
    numba.core.ccallback.CFunc._compile_uncached = counting
    w = brainevent.CSR(jnp.array([[0., 2.], [3., 0.]]))
    out = brainevent.BinaryArray(jnp.array([True, True])) @ w
    assert out.tolist() == [3.0, 2.0], out
    print(len(compiled))
''')


def test_second_process_loads_from_the_cache(tmp_path):
    """A fresh process with a warm cache compiles no bridge."""
    env = dict(os.environ, BRAINEVENT_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, '-c', _CHILD], env=env, capture_output=True,
                           text=True, check=True).stdout.split()[-1] for _ in range(2)]
    assert int(runs[0]) >= 1, 'the first process should compile its bridge'
    assert int(runs[1]) == 0, 'the second process should load every bridge from the cache'
    assert any(p.suffix == '.py' for p in (tmp_path / 'numba').iterdir())


def test_unsupported_dtype_falls_back_to_jax():
    """float16 cannot cross the bridge; the numba backend then runs the reference."""
    w = brainevent.CSR(jnp.array([[0., 2.], [3., 0.]], jnp.float16))
    with brainevent.config.backend('numba'):
        out = brainevent.BinaryArray(jnp.array([True, False])) @ w
    assert out.dtype == jnp.float16
    np.testing.assert_array_equal(np.asarray(out, np.float32), [0., 2.])
