"""Native kernels: C++ and CUDA source compiled into XLA FFI targets and called from JAX.

Each distinct source is compiled once per module (fixtures), into a temporary
cache directory; g++ takes about two seconds per library, nvcc about five.
"""

import os
import pathlib
import shlex
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainevent
from brainevent.backends import _kernel, _native, _native_codegen, _numba_ffi

NAME = 'native_test'

SOURCE = r'''
#include <cmath>
#include <stdexcept>
#include <string>
#include "brainevent/tensor.h"

// @BE vector_add arg arg ret
void vector_add(const BE::Tensor x, const BE::Tensor y, BE::Tensor out) {
    const float* a = x.data_ptr<float>();
    const float* b = y.data_ptr<float>();
    float* o = out.data_ptr<float>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = a[i] + b[i];
}

// Attributes in no particular order: XLA passes them sorted by name.
// @BE echo_attrs ret attr.flag:bool attr.i64:int64 attr.u32:uint32 attr.f64:float64 attr.f32:float32 attr.i32:int32
void echo_attrs(BE::Tensor out, bool flag, int64_t i64, uint32_t u32, double f64, float f32,
                int32_t i32) {
    double* o = out.expect<double>("out");
    o[0] = flag; o[1] = i32; o[2] = static_cast<double>(i64); o[3] = u32; o[4] = f32; o[5] = f64;
}

//@BE   cumsum_count   arg ret ret
void cumsum_count(const BE::Tensor x, BE::Tensor sum, BE::Tensor count) {
    const double* v = x.expect<double>("x");
    double acc = 0;
    int32_t n = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
        acc += v[i];
        sum.data_ptr<double>()[i] = acc;
        n += v[i] > 0;
    }
    *count.data_ptr<int32_t>() = n;
}

// @BE describe arg ret stream
void describe(const BE::Tensor x, BE::Tensor info, int64_t stream) {
    int64_t* o = info.data_ptr<int64_t>();
    o[0] = static_cast<int64_t>(x.dtype);
    o[1] = x.ndim;
    o[2] = x.numel();
    o[3] = x.itemsize();
    o[4] = x.nbytes();
    o[5] = stream;
    o[6] = x.ndim > 0 ? x.size(-1) : -1;
    for (int64_t d = 0; d < 3; ++d) o[7 + d] = d < x.ndim ? x.size(d) : -1;
}

// @BE checked_sqrt arg ret
void checked_sqrt(const BE::Tensor x, BE::Tensor y) {
    const float* v = x.data_ptr<float>();
    for (int64_t i = 0; i < x.numel(); ++i) {
        if (v[i] < 0) throw std::domain_error("negative input at index " + std::to_string(i));
        y.data_ptr<float>()[i] = std::sqrt(v[i]);
    }
}
'''

HELPER = 'inline float twice(float v) { return 2.0f * v; }\n'

FILE_SOURCE = r'''
#include "brainevent/tensor.h"
#include "helper.h"

// @BE this line is ignored because functions= is given
void doubled(const BE::Tensor x, BE::Tensor y) {
    for (int64_t i = 0; i < x.numel(); ++i) y.data_ptr<float>()[i] = twice(x.data_ptr<float>()[i]);
}
'''

CUDA_SOURCE = r'''
#include <cuda_runtime.h>
#include "brainevent/tensor.h"

__global__ void scale_kernel(const float* x, float* y, float factor, int64_t n) {
    int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i < n) y[i] = factor * x[i];
}

// @BE scale arg ret attr.factor:float32 stream
void scale(const BE::Tensor x, BE::Tensor y, float factor, int64_t stream) {
    const int64_t n = x.numel();
    scale_kernel<<<(n + 255) / 256, 256, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
        x.data_ptr<float>(), y.data_ptr<float>(), factor, n);
}
'''


def _has_gpu():
    try:
        return bool(jax.devices('gpu'))
    except RuntimeError:
        return False


HAS_GPU = _has_gpu()
needs_gxx = pytest.mark.skipif(shutil.which(os.environ.get('CXX') or 'g++') is None,
                               reason='needs g++ (or $CXX) to compile C++')
needs_nvcc = pytest.mark.skipif(shutil.which('nvcc') is None,
                                reason='needs nvcc (the CUDA toolkit) to compile CUDA')
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason='needs a CUDA GPU')


def sds(shape, dtype):
    return jax.ShapeDtypeStruct(shape, dtype)


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    """A fresh cache directory for the module, set in this process and restored after."""
    previous = _numba_ffi._cache_dir
    path = tmp_path_factory.mktemp('native_cache')
    brainevent.set_cache_dir(path)
    yield path
    _numba_ffi.set_cache_dir(previous)


FIRST_LOAD = {}


@pytest.fixture(scope='module')
def mod(cache):
    if shutil.which(os.environ.get('CXX') or 'g++') is None:
        pytest.skip('needs g++ (or $CXX) to compile C++')
    module = brainevent.load_cpp_inline(NAME, SOURCE)
    FIRST_LOAD['compiled'] = module.compiled
    return module


@pytest.fixture(scope='module')
def file_mod(cache, tmp_path_factory):
    """A source file with a relative include, its entry points given explicitly."""
    if shutil.which(os.environ.get('CXX') or 'g++') is None:
        pytest.skip('needs g++ (or $CXX) to compile C++')
    folder = tmp_path_factory.mktemp('kernel_file')
    (folder / 'helper.h').write_text(HELPER)
    (folder / 'doubling.cpp').write_text(FILE_SOURCE)
    return brainevent.load_cpp_file(folder / 'doubling.cpp', functions={'doubled': ['arg', 'ret']},
                                    target_prefix='native_test_file')


@pytest.fixture(scope='module')
def cuda_mod(cache):
    if shutil.which('nvcc') is None:
        pytest.skip('needs nvcc (the CUDA toolkit) to compile CUDA')
    return brainevent.load_cuda_inline('native_test_cuda', CUDA_SOURCE, compute_capability='sm_90',
                                       use_fast_math=True)


# ---------------------------------------------------------------------------------------------
# C++: calls and values


def test_inline_vector_add(mod, cache):
    x = np.arange(5, dtype=np.float32)
    y = np.full(5, 0.5, np.float32)
    out = mod.vector_add(x, y, outs=sds((5,), jnp.float32))
    np.testing.assert_array_equal(out, x + y)
    assert FIRST_LOAD['compiled'] and mod.registered  # a fresh cache: it was compiled
    assert mod.path.is_file() and mod.path.is_relative_to(cache / 'native')
    assert mod.path.parent.parent == brainevent.get_cache_dir() / 'native'


def test_module_and_function_objects(mod):
    assert mod.functions['vector_add'] == ('arg', 'arg', 'ret')
    assert mod.functions['describe'] == ('arg', 'ret', 'stream')
    assert set(mod.functions) == {'vector_add', 'echo_attrs', 'cumsum_count', 'describe',
                                  'checked_sqrt'}
    f = mod.vector_add
    assert f is mod['vector_add']
    assert f.target == mod.target('vector_add') == f'{NAME}.vector_add'
    assert f.signature == ('arg', 'arg', 'ret')
    assert f.backend == 'cpp' and f.platforms == ('cpu',)
    assert isinstance(f, _kernel.KernelImplementation)
    assert 'XLA_FFI_DEFINE_HANDLER_SYMBOL' in mod.source and 'vector_add(t0, t1, t2)' in mod.source
    assert 'kCmdBufferCompatible' not in mod.source  # a CPU trait has no meaning
    assert mod.command[0] == shlex.split(os.environ.get('CXX') or 'g++')[0]
    assert '-O3' in mod.command and '-shared' in mod.command
    assert mod.address('vector_add') > 0
    with pytest.raises(AttributeError, match="no function 'nope'"):
        mod.nope
    with pytest.raises(KeyError, match="no function 'nope'"):
        mod.target('nope')
    assert 'vector_add' in dir(mod) and 'native_test' in repr(mod)


def test_attributes_of_every_type(mod):
    with jax.enable_x64(True):  # float64 buffers need x64
        out = mod.echo_attrs(outs=sds((6,), jnp.float64), flag=True, i32=-7, i64=-2 ** 40,
                             u32=2 ** 32 - 1, f32=1.5, f64=np.float64(0.1))
        out = np.asarray(out)
    np.testing.assert_array_equal(out, [1.0, -7.0, -2.0 ** 40, 2.0 ** 32 - 1, 1.5, 0.1])


def test_attribute_errors(mod):
    with jax.enable_x64(True):
        call = mod.echo_attrs
        good = dict(flag=False, i32=1, i64=2, u32=3, f32=4.0, f64=5.0)
        out = sds((6,), jnp.float64)
        with pytest.raises(TypeError, match=r"echo_attrs: expected attributes \(flag:bool, "
                                            r"i64:int64, .*\(missing \['i32'\]"):
            call(outs=out, **{k: v for k, v in good.items() if k != 'i32'})
        with pytest.raises(TypeError, match=r"unknown \['gamma'\]"):
            call(outs=out, gamma=1, **good)
        with pytest.raises(TypeError, match="'i32' expects a scalar of type int32, got float"):
            call(outs=out, **{**good, 'i32': 1.5})
        with pytest.raises(TypeError, match="'flag' expects a scalar of type bool, got int"):
            call(outs=out, **{**good, 'flag': 1})
        with pytest.raises(ValueError, match=r"'u32' is uint32, and -1 is out of its range"):
            call(outs=out, **{**good, 'u32': -1})
        with pytest.raises(TypeError, match="attribute 'f32' must be a static float32 scalar"):
            jax.jit(lambda v: call(outs=out, **{**good, 'f32': v}))(1.0)
        # a 0-d NumPy array is a scalar
        np.testing.assert_array_equal(call(outs=out, **{**good, 'i32': np.array(9)})[:2], [0, 9])


def test_multiple_outputs(mod):
    x = np.array([1.0, -2.0, 3.0, 0.0])
    with jax.enable_x64(True):
        as_list = mod.cumsum_count(x, outs=[sds((4,), jnp.float64), sds((), jnp.int32)])
        as_tuple = mod.cumsum_count(x, outs=(sds((4,), jnp.float64), sds((), jnp.int32)))
    assert isinstance(as_list, list) and isinstance(as_tuple, list)
    for total, count in (as_list, as_tuple):
        np.testing.assert_array_equal(total, np.cumsum(x))
        assert count.shape == () and int(count) == 2


def _describe(mod, x):
    with jax.enable_x64(True):
        return np.asarray(mod.describe(x, outs=sds((10,), jnp.int64))).tolist()


@pytest.mark.parametrize('dtype, code', [
    (np.bool_, 0), (np.int8, 1), (np.int16, 2), (np.int32, 3), (np.uint8, 5), (np.uint16, 6),
    (np.uint32, 7), (np.float16, 9), (jnp.bfloat16, 10), (np.float32, 11)])
def test_tensor_fields(mod, dtype, code):
    """dtype, ndim, numel, itemsize, nbytes, stream (0 on the CPU), size(-1), shape."""
    size = np.dtype(dtype).itemsize
    assert _describe(mod, jnp.zeros((2, 3, 4), dtype)) == [code, 3, 24, size, 24 * size, 0, 4,
                                                            2, 3, 4]


def test_tensor_of_rank_zero_and_64_bit(mod):
    with jax.enable_x64(True):
        scalar = _describe(mod, jnp.float64(2.0))
        wide = _describe(mod, jnp.zeros(7, jnp.uint64))
        signed = _describe(mod, jnp.zeros((0, 5), jnp.int64))
    assert scalar == [12, 0, 1, 8, 8, 0, -1, -1, -1, -1]
    assert wide == [8, 1, 7, 8, 56, 0, 7, 7, -1, -1]
    assert signed == [4, 2, 0, 8, 0, 0, 5, 0, 5, -1]


def test_jit_scan_and_vmap(mod):
    x = np.linspace(0, 1, 6, dtype=np.float32)

    @jax.jit
    def run(x0):
        def step(carry, _):
            nxt = mod.vector_add(carry, x0, outs=sds(x0.shape, x0.dtype))
            return nxt, nxt.sum()
        return jax.lax.scan(step, x0, None, length=4)

    last, sums = run(x)
    np.testing.assert_allclose(last, 5 * x, rtol=1e-6)
    np.testing.assert_allclose(sums, [k * x.sum() for k in (2, 3, 4, 5)], rtol=1e-5)

    batch = np.arange(12, dtype=np.float32).reshape(3, 4)
    other = np.ones(4, np.float32)
    got = jax.vmap(lambda row: mod.vector_add(row, other, outs=sds((4,), jnp.float32)))(batch)
    np.testing.assert_array_equal(got, batch + other)
    sqrt = jax.jit(jax.vmap(lambda r: mod.checked_sqrt(r, outs=sds((4,), jnp.float32))))(batch)
    np.testing.assert_allclose(sqrt, np.sqrt(batch), rtol=1e-6)


def test_cpp_exception_becomes_a_jax_error(mod):
    x = jnp.array([4.0, -1.0], jnp.float32)
    with pytest.raises(jax.errors.JaxRuntimeError, match='checked_sqrt: negative input at index 1'):
        jax.block_until_ready(mod.checked_sqrt(x, outs=sds((2,), jnp.float32)))
    # the process goes on: the next call works
    np.testing.assert_allclose(mod.checked_sqrt(jnp.array([4.0, 9.0]), outs=sds((2,), jnp.float32)),
                               [2.0, 3.0])


def test_expect_checks_the_element_type(mod):
    with pytest.raises(jax.errors.JaxRuntimeError,
                       match='cumsum_count: x: expected float64 elements, got float32'):
        jax.block_until_ready(mod.cumsum_count(jnp.ones(3, jnp.float32),
                                               outs=[sds((3,), jnp.float32), sds((), jnp.int32)]))


def test_unsupported_element_types(mod):
    z = jnp.ones(2, jnp.complex64)
    with pytest.raises(TypeError, match='vector_add: input 1 has dtype complex64'):
        mod.vector_add(jnp.ones(2), z, outs=sds((2,), jnp.float32))
    with pytest.raises(TypeError, match='vector_add: output 0 has dtype complex64'):
        mod.vector_add(jnp.ones(2), jnp.ones(2), outs=sds((2,), jnp.complex64))
    # the generated handler checks too, whoever calls the target
    raw = jax.ffi.ffi_call(mod.vector_add.target, sds((2,), jnp.float32))
    with pytest.raises(jax.errors.JaxRuntimeError,
                       match='vector_add: input 1 has an unsupported element type'):
        jax.block_until_ready(raw(jnp.ones(2), z))


def test_wrong_arity(mod):
    x = jnp.ones(3, jnp.float32)
    with pytest.raises(TypeError, match=r'vector_add: expected 2 input array\(s\) .* got 1'):
        mod.vector_add(x, outs=sds((3,), jnp.float32))
    with pytest.raises(TypeError, match=r'vector_add: expected 1 output\(s\) in outs, got 2'):
        mod.vector_add(x, x, outs=[sds((3,), jnp.float32)] * 2)
    with pytest.raises(TypeError, match=r'cumsum_count: expected 2 output\(s\) in outs, got 1'):
        mod.cumsum_count(x, outs=sds((3,), jnp.float32))
    with pytest.raises(TypeError, match=r'outs\[0\] must be a jax.ShapeDtypeStruct'):
        mod.vector_add(x, x, outs=[(3,)])
    with pytest.raises(TypeError, match='missing'):
        mod.vector_add(x, x)  # outs is required
    with pytest.raises(TypeError, match=r"vector_add: expected attributes \(none\), got \['alpha"):
        mod.vector_add(x, x, outs=sds((3,), jnp.float32), alpha=1.0)


def test_loading_again_returns_the_loaded_module(mod):
    again = brainevent.load_cpp_inline(NAME, SOURCE)
    assert again is mod and not again.compiled
    np.testing.assert_array_equal(again.vector_add(np.ones(2, np.float32), np.ones(2, np.float32),
                                                   outs=sds((2,), jnp.float32)), [2, 2])


def test_other_library_cannot_take_a_registered_target(mod):
    changed = SOURCE.replace('o[i] = a[i] + b[i]', 'o[i] = a[i] - b[i]')
    with pytest.raises(RuntimeError, match=f"'{NAME}.vector_add' is already registered"):
        brainevent.load_cpp_inline(NAME, changed)
    # nothing was compiled for it: the refusal comes first
    assert len(list((brainevent.get_cache_dir() / 'native').glob('*/*.so'))) >= 1
    assert not [p for p in (brainevent.get_cache_dir() / 'native').glob('*/*.cpp')
                if 'a[i] - b[i]' in p.read_text()]


def test_file_with_explicit_functions(file_mod):
    assert file_mod.functions == {'doubled': ('arg', 'ret')}
    assert file_mod.name == 'doubling' and file_mod.target('doubled') == 'native_test_file.doubled'
    assert '#include "' in file_mod.source and 'doubling.cpp"' in file_mod.source
    got = jax.jit(lambda v: file_mod.doubled(v, outs=sds(v.shape, v.dtype)))(jnp.arange(3.0))
    np.testing.assert_array_equal(got, [0.0, 2.0, 4.0])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='load_cpp_file: no such source file'):
        brainevent.load_cpp_file(tmp_path / 'absent.cpp')
    with pytest.raises(TypeError, match="load_cuda_file.* unexpected keyword .*'extra_cflags'"):
        (tmp_path / 'k.cu').write_text('')
        brainevent.load_cuda_file(tmp_path / 'k.cu', extra_cflags=['-O1'])


# ---------------------------------------------------------------------------------------------
# annotations and explicit signatures (rejected before anything compiles)


@pytest.mark.parametrize('line, problem', [
    ('// @BE f arg bogus ret', "unknown token 'bogus'"),
    ('// @BE arg arg ret', 'needs a function name first'),
    ('// @BE', 'needs a function name first'),
    ('// @BE f arg ret attr.a:float16', "attribute 'a' has unknown type 'float16'"),
    ('// @BE f arg ret attr.a', 'malformed attribute'),
    ('// @BE f arg ret attr.1a:int32', 'malformed attribute'),
    ('// @BE f arg ret attr.a:int32 attr.a:int64', "attribute 'a' is given twice"),
    ('// @BE f arg arg', "needs at least one output ('ret')"),
    ('// @BE f arg ret stream stream', "'stream' is given twice"),
    ('// @BE f-g arg ret', 'must be a C identifier'),
])
def test_malformed_annotation(line, problem):
    source = f'#include "brainevent/tensor.h"\n\n{line}\nvoid f();\n'
    with pytest.raises(ValueError) as err:
        brainevent.load_cpp_inline('bad_annotation', source)
    message = str(err.value)
    assert 'line 3' in message and problem in message and line.strip() in message


def test_duplicate_annotation_quotes_both_lines():
    source = '// @BE f arg ret\nvoid f();\n// @BE f ret\n'
    with pytest.raises(ValueError, match=r"line 3: 'f' is already declared at .*line 1") as err:
        brainevent.load_cpp_inline('dup', source)
    assert '// @BE f ret' in str(err.value)


def test_annotations_across_sources():
    found = _native_codegen.parse_annotations([
        ('a', '// @BE first arg ret attr.k:int32\n'),
        ('b', 'int x;\n  //@BE second ret stream   \n// @BEfoo is no annotation\n')])
    assert {k: v.tokens for k, v in found.items()} == {
        'first': ('arg', 'ret', 'attr.k:int32'), 'second': ('ret', 'stream')}
    with pytest.raises(ValueError, match=r'source 1, line 2: .*unknown token'):
        brainevent.load_cpp_inline('two', ['// @BE ok ret\n', 'int y;\n// @BE f what\n'])


def test_explicit_functions_replace_annotations_and_are_checked():
    with pytest.raises(ValueError, match=r"functions\['f'\]: f: unknown token 'argh'"):
        brainevent.load_cpp_inline('explicit', '// @BE g arg ret\n', functions={'f': ['argh']})
    with pytest.raises(ValueError, match=r"functions\['f'\]: f: a function needs at least one"):
        brainevent.load_cpp_inline('explicit', '', functions={'f': 'arg arg'})
    with pytest.raises(TypeError, match='functions must be a non-empty dict'):
        brainevent.load_cpp_inline('explicit', '', functions={})
    with pytest.raises(ValueError, match='no entry points found'):
        brainevent.load_cpp_inline('explicit', 'int f();\n')


def test_bad_options():
    with pytest.raises(ValueError, match='optimization_level must be 0, 1, 2 or 3, got 4'):
        brainevent.load_cpp_inline('opts', '// @BE f ret\n', optimization_level=4)
    with pytest.raises(ValueError, match="name must be a non-empty string .* got 'a b'"):
        brainevent.load_cpp_inline('a b', '// @BE f ret\n')
    with pytest.raises(TypeError, match='cpp_sources must be a string or a non-empty list'):
        brainevent.load_cpp_inline('opts', [])
    with pytest.raises(ValueError, match="compute_capability must look like '90'"):
        _native_codegen.compute_capability_flags('ninety', False)


# ---------------------------------------------------------------------------------------------
# compiler problems


@needs_gxx
def test_compile_error_carries_command_and_output(cache):
    source = ('#include "brainevent/tensor.h"\n// @BE broken ret\n'
              'void broken(BE::Tensor y) { y.nope(); }\n')
    with pytest.raises(brainevent.CompilationError) as err:
        brainevent.load_cpp_inline('native_broken', source)
    e = err.value
    assert isinstance(e, RuntimeError)
    assert isinstance(e.command, list) and '-shared' in e.command
    assert any(part.endswith('.cpp') for part in e.command)
    assert 'nope' in e.output and 'error' in e.output
    assert shlex.join(e.command) in str(e) and 'nope' in str(e)
    assert "native_broken source:3" in e.output  # messages point at the user's own lines
    # no library, and no temporary left behind
    folder = next(p.parent for p in (cache / 'native').glob('*/native_broken_*.cpp'))
    assert not list(folder.glob('*.so')) and not list(folder.glob('.*'))


def test_compilation_error_message_is_truncated():
    output = 'x' * 20000
    err = brainevent.CompilationError(['cc', 'k.cpp'], output)
    assert err.output == output and len(str(err)) < 10000
    assert 'more characters in CompilationError.output' in str(err)


def test_missing_compiler(monkeypatch):
    monkeypatch.setenv('CXX', 'no-such-compiler-brainevent')
    with pytest.raises(RuntimeError, match=r"'no-such-compiler-brainevent' was not found.*CXX"):
        brainevent.load_cpp_inline('nocc', '// @BE f ret\n')
    monkeypatch.setenv('NVCC', '/no/such/nvcc')
    with pytest.raises(RuntimeError, match=r"NVCC='/no/such/nvcc' was not found"):
        brainevent.load_cuda_inline('nocc', '// @BE f ret\n', compute_capability='80')


# ---------------------------------------------------------------------------------------------
# the cache


CHILD = '''
import pathlib, sys
import jax, jax.numpy as jnp, numpy as np
import brainevent

name, source_file, log = sys.argv[1:]
source = pathlib.Path(source_file).read_text()
mod = brainevent.load_cpp_inline(name, source)
print('first', mod.compiled, pathlib.Path(log).read_text().count('-shared'))
x = np.arange(3, dtype=np.float32)
print('sum', mod.vector_add(x, x, outs=jax.ShapeDtypeStruct((3,), jnp.float32)).tolist())
brainevent.clear_cache()
print('cleared', (brainevent.get_cache_dir() / 'native').exists(),
      mod.vector_add(x, x, outs=jax.ShapeDtypeStruct((3,), jnp.float32)).tolist())
again = brainevent.load_cpp_inline(name, source, force_rebuild=True, verbose=True)
print('forced', again is mod, again.compiled, mod.path.is_file(),
      pathlib.Path(log).read_text().count('-shared'))
'''


@needs_gxx
def test_cache_serves_a_new_process(mod, cache, tmp_path):
    """A second process loads the library from the cache: the compiler is not invoked."""
    log = tmp_path / 'compiler.log'
    log.write_text('')
    compiler = shlex.split(os.environ.get('CXX') or 'g++')
    wrapper = tmp_path / 'cxx'
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(log))}\n'
                       f'exec {shlex.join([shutil.which(compiler[0])] + compiler[1:])} "$@"\n')
    wrapper.chmod(0o755)
    (tmp_path / 'source.cpp').write_text(SOURCE)
    env = {**os.environ, 'BRAINEVENT_CACHE_DIR': str(cache), 'CXX': str(wrapper)}
    run = subprocess.run([sys.executable, '-c', CHILD, NAME, str(tmp_path / 'source.cpp'),
                          str(log)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(' ', 1) for line in run.stdout.splitlines())
    assert lines['first'] == 'False 0', 'a cached library must load without compiling'
    assert lines['sum'] == '[0.0, 2.0, 4.0]'
    assert lines['cleared'] == 'False [0.0, 2.0, 4.0]', 'a loaded library outlives clear_cache'
    assert lines['forced'] == 'True True True 1', 'force_rebuild compiles once more'
    assert '-shared' in run.stderr  # verbose=True printed the command
    assert '--version' in log.read_text()  # the compiler's identity is part of the key
    assert mod.path.is_file()  # the child rebuilt it


def test_cache_dir_functions(tmp_path):
    previous = _numba_ffi._cache_dir
    try:
        brainevent.set_cache_dir(tmp_path)
        assert brainevent.get_cache_dir() == tmp_path.resolve() == _numba_ffi.cache_dir()
        for sub in ('native/abc', 'numba/__pycache__', 'other'):
            (tmp_path / sub).mkdir(parents=True)
        brainevent.clear_cache()
        assert sorted(p.name for p in tmp_path.iterdir()) == ['other']
        with pytest.raises(TypeError, match='set_cache_dir: path must be'):
            brainevent.set_cache_dir(3)
    finally:
        _numba_ffi.set_cache_dir(previous)


def test_build_directory(mod, tmp_path):
    """``build_directory`` puts the library elsewhere; the same code is still one module."""
    again = brainevent.load_cpp_inline(NAME, SOURCE, build_directory=tmp_path)
    assert again is mod and not list(tmp_path.iterdir())  # already loaded: nothing built


# ---------------------------------------------------------------------------------------------
# CUDA


@needs_nvcc
def test_cuda_generated_binding(cuda_mod):
    assert cuda_mod.kind == 'cuda' and cuda_mod.functions == {
        'scale': ('arg', 'ret', 'attr.factor:float32', 'stream')}
    f = cuda_mod.scale
    assert f.backend == 'cuda' and f.platforms == ('gpu',)
    assert f.target == 'native_test_cuda.scale'
    source = cuda_mod.source
    assert '.Ctx<::xla::ffi::PlatformStream<cudaStream_t>>()' in source
    assert '::xla::ffi::Traits::kCmdBufferCompatible' in source
    assert 'scale(t0, t1, attr_factor, reinterpret_cast<int64_t>(stream))' in source
    assert 'cudaGetLastError()' in source
    assert '-gencode=arch=compute_90,code=[sm_90,compute_90]' in cuda_mod.command
    assert '--use_fast_math' in cuda_mod.command and '-O3' in cuda_mod.command
    assert cuda_mod.path.suffix == '.so' and cuda_mod.path.with_suffix('.cu').is_file()


@needs_nvcc
def test_cuda_handler_symbol_and_registration(cuda_mod):
    assert cuda_mod.address('scale') > 0
    assert cuda_mod.registered
    from jaxlib import xla_client
    pending = getattr(xla_client, '_custom_callback', None)
    handlers = getattr(xla_client, '_custom_callback_handler', None)
    if pending is None or handlers is None:
        pytest.skip('this jaxlib does not expose its pending registrations')
    if 'CUDA' in handlers:  # a CUDA jaxlib registered it with XLA at once
        return
    # a CPU-only jaxlib keeps CUDA registrations pending until a CUDA plugin loads
    assert 'native_test_cuda.scale' in [entry[0] for entry in pending.get('CUDA', [])]


def test_cuda_without_cmd_buffer_trait():
    signature = _native_codegen.parse_functions({'k': ['arg', 'ret', 'stream']})
    _, with_trait = _native_codegen.binding('m', signature, cuda=True, cmd_buffer=True)
    _, without = _native_codegen.binding('m', signature, cuda=True, cmd_buffer=False)
    _, cpu = _native_codegen.binding('m', signature, cuda=False)
    assert 'kCmdBufferCompatible' in with_trait and 'kCmdBufferCompatible' not in without
    assert 'k(t0, t1, int64_t{0})' in cpu and 'PlatformStream' not in cpu


@pytest.mark.parametrize('value, flag', [
    ('90', 'compute_90,code=[sm_90'), ((8, 6), 'compute_86,code=[sm_86'),
    ('sm_90a', 'compute_90a,code=[sm_90a'), ('12.0', 'compute_120,code=[sm_120'),
    (75, 'compute_75,code=[sm_75')])
def test_compute_capability_forms(value, flag):
    flags = _native_codegen.compute_capability_flags(value, use_fast_math=False)
    assert len(flags) == 1 and flag in flags[0]


@needs_nvcc
@pytest.mark.skipif(HAS_GPU, reason='checks the error raised without a GPU')
def test_cuda_call_without_gpu_is_refused(cuda_mod):
    with pytest.raises(RuntimeError, match='scale: CUDA functions need a CUDA GPU'):
        cuda_mod.scale(jnp.ones(4), outs=sds((4,), jnp.float32), factor=2.0)


@needs_nvcc
@needs_gpu
def test_cuda_call(cuda_mod):
    x = jnp.arange(1000, dtype=jnp.float32)
    got = jax.jit(lambda v: cuda_mod.scale(v, outs=sds(v.shape, v.dtype), factor=0.5))(x)
    np.testing.assert_allclose(got, np.arange(1000) * 0.5)
    batched = jax.vmap(lambda r: cuda_mod.scale(r, outs=sds(r.shape, r.dtype), factor=2.0))(
        x.reshape(10, 100))
    np.testing.assert_allclose(batched, np.arange(1000).reshape(10, 100) * 2.0)


def test_header_ships_in_the_package():
    header = pathlib.Path(_native.INCLUDE_DIR) / 'brainevent' / 'tensor.h'
    text = header.read_text()
    assert 'namespace BE' in text and 'struct Tensor' in text and '__CUDACC__' in text
    assert header.is_relative_to(pathlib.Path(brainevent.__file__).parent)


def test_as_a_kernel_implementation(mod):
    """A compiled function is an implementation of a kernel object; attrs are its static params."""
    kernel = brainevent.XLACustomKernel('native_test_echo')
    kernel.def_kernel(kernel=mod.echo_attrs)  # backend 'cpp', platform 'cpu' from the function
    kernel.def_kernel('jax', 'cpu', lambda **p: [jnp.array([p['flag'], p['i32'], p['i64'], p['u32'],
                                                            p['f32'], p['f64']], jnp.float64)])
    params = dict(flag=True, i32=-3, i64=12, u32=7, f32=0.25, f64=2.5)
    with jax.enable_x64(True):
        native = kernel(outs=sds((6,), jnp.float64), backend='cpp', **params)
        reference = kernel(outs=sds((6,), jnp.float64), backend='jax', **params)
    np.testing.assert_array_equal(native, [1, -3, 12, 7, 0.25, 2.5])
    np.testing.assert_array_equal(native, reference)

    add = brainevent.XLACustomKernel('native_test_add')
    add.def_kernel(kernel=mod.vector_add)
    batch = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = jax.jit(jax.vmap(lambda r: add(r, r, outs=sds((3,), jnp.float32), backend='cpp')))(batch)
    np.testing.assert_array_equal(got, 2 * batch)
