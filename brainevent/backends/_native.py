"""Compile C++ or CUDA source into XLA FFI targets and call them from JAX.

``load_cpp_inline`` / ``load_cpp_file`` (g++) and ``load_cuda_inline`` /
``load_cuda_file`` (nvcc) compile user functions written against
``brainevent/tensor.h`` together with generated XLA FFI handlers (see
``_native_codegen``), load the shared library, register one FFI target per
function and return a :class:`CompiledModule` whose attributes call them.

Libraries are cached on disk under ``get_cache_dir() / 'native' / <hash>``;
the hash covers the sources, the generated code, the shipped header, the
compiler flags, the compiler's identity, the jaxlib version and the kind, so
a new process with the same inputs loads the library without compiling.
"""

import ctypes
import functools
import inspect
import os
import pathlib
import re
import shutil
import threading

import jax
import numpy as np
from jaxlib import xla_client

from . import _numba_ffi
from ._kernel import KernelImplementation
from ._native_codegen import (INCLUDE_DIR, SUPPORTED_DTYPES, CompilationError,
                              check_level, compute_capability_flags, handler_symbol,
                              parse_annotations, parse_functions, plan, string_list)

__all__ = ['load_cpp_inline', 'load_cpp_file', 'load_cuda_inline', 'load_cuda_file',
           'CompiledModule', 'NativeFunction', 'CompilationError', 'get_cache_dir',
           'set_cache_dir', 'clear_cache', 'INCLUDE_DIR']

_LOCK = threading.RLock()
_MODULES: dict[tuple[str, str], 'CompiledModule'] = {}  # (digest, prefix) -> module
_TARGETS: dict[str, tuple[str, str]] = {}  # FFI target -> (digest, library path)
_LIBRARIES: dict[str, ctypes.CDLL] = {}  # digest -> library, kept loaded for the process


# ---------------------------------------------------------------------------------------------
# cache directory


def get_cache_dir() -> pathlib.Path:
    """The folder where compiled kernels are cached.

    Native libraries live in its ``native/`` subfolder, numba bridges in
    ``numba/``. It is ``$BRAINEVENT_CACHE_DIR`` if that is set, otherwise
    ``~/.cache/brainevent``, unless :func:`set_cache_dir` chose another.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import brainevent
    >>> path = brainevent.get_cache_dir()
    >>> path.is_absolute()
    True
    """
    return _numba_ffi.cache_dir()


def set_cache_dir(path) -> None:
    """Cache compiled kernels (native libraries and numba bridges) in ``path``.

    The setting holds for this process; ``None`` goes back to the default
    (``$BRAINEVENT_CACHE_DIR`` or ``~/.cache/brainevent``). Kernels already
    loaded stay loaded.

    Parameters
    ----------
    path : str, os.PathLike or None
        The folder (created when needed).

    Examples
    --------
    >>> import pathlib, tempfile, brainevent
    >>> folder = tempfile.mkdtemp()
    >>> brainevent.set_cache_dir(folder)
    >>> brainevent.get_cache_dir() == pathlib.Path(folder).resolve()
    True
    >>> brainevent.set_cache_dir(None)  # back to $BRAINEVENT_CACHE_DIR or ~/.cache/brainevent
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f'set_cache_dir: path must be a str, a path or None, got {path!r}')
    _numba_ffi.set_cache_dir(None if path is None else pathlib.Path(path).expanduser().resolve())


def clear_cache() -> None:
    """Delete the compiled kernels cached on disk.

    Removes the ``native/`` (compiled libraries) and ``numba/`` (numba
    bridges) folders of :func:`get_cache_dir`; other files there are left
    alone. Kernels already loaded stay usable in this process; the next
    process compiles again.

    Examples
    --------
    >>> import tempfile, brainevent
    >>> brainevent.set_cache_dir(tempfile.mkdtemp())
    >>> (brainevent.get_cache_dir() / 'native' / 'some-library').mkdir(parents=True)
    >>> brainevent.clear_cache()
    >>> (brainevent.get_cache_dir() / 'native').exists()
    False
    >>> brainevent.set_cache_dir(None)
    """
    root = get_cache_dir()
    for sub in ('native', 'numba'):
        shutil.rmtree(root / sub, ignore_errors=True)


def _sources(sources, what: str, name: str):
    if isinstance(sources, str):
        sources = [sources]
    if (not isinstance(sources, (list, tuple)) or not sources
            or not all(isinstance(s, str) for s in sources)):
        raise TypeError(f'{what} must be a string or a non-empty list of strings, got '
                        f'{type(sources).__name__}')
    if len(sources) == 1:
        return [(f'{name} source', sources[0], None)]
    return [(f'{name} source {i}', text, None) for i, text in enumerate(sources)]


def _check_name(name, what='name') -> str:
    if not isinstance(name, str) or not re.fullmatch(r'[A-Za-z0-9_][A-Za-z0-9_.\-]*', name):
        raise ValueError(f'{what} must be a non-empty string of letters, digits, "_", "." and '
                         f'"-", got {name!r}')
    return name


def _load(kind, name, sources, functions, *, extra_cflags, extra_ldflags, extra_include_paths,
          build_directory, verbose, force_rebuild, auto_register, target_prefix,
          optimization_level, arch_flags=(), cmd_buffer=False):
    name = _check_name(name)
    prefix = name if target_prefix is None else _check_name(target_prefix, 'target_prefix')
    signatures = (parse_functions(functions) if functions is not None
                  else parse_annotations([(origin, text) for origin, text, _ in sources]))
    if not signatures:
        raise ValueError(f'{name}: no entry points found: put a line "// @BE name arg ... ret" '
                         f'before each function to export, or pass functions={{name: tokens}}')
    level = check_level(optimization_level)
    includes = ['-isystem', jax.ffi.include_dir(), '-I', str(INCLUDE_DIR)]
    for path in string_list(extra_include_paths, 'extra_include_paths'):
        includes += ['-I', str(pathlib.Path(path).resolve())]
    if kind == 'cpp':
        flags = [f'-O{level}', '-std=c++17', '-fPIC', '-shared', *includes]
    else:
        flags = [f'-O{level}', '-std=c++17', '-Xcompiler', '-fPIC', '-shared', *arch_flags,
                 *includes]
    flags += string_list(extra_cflags, 'extra_cflags')
    build = plan(kind, name, sources, signatures, flags,
                 string_list(extra_ldflags, 'extra_ldflags'), cache_root=get_cache_dir() / 'native',
                 build_directory=build_directory, cmd_buffer=cmd_buffer)
    with _LOCK:
        module = _MODULES.get((build.digest, prefix))
        if module is None:
            for function in signatures:
                _check_owner(f'{prefix}.{function}', build.digest)
        compiled = (build.compile(force_rebuild=force_rebuild, verbose=verbose)
                    if module is None or force_rebuild else False)
        if module is None:
            library = _LIBRARIES.get(build.digest)
            if library is None:
                library = _LIBRARIES[build.digest] = ctypes.CDLL(str(build.library))
            module = CompiledModule(kind, name, prefix, signatures, library, build, cmd_buffer)
            _MODULES[(build.digest, prefix)] = module
        module.compiled = compiled
        if auto_register:
            module.register()
        return module


def _check_owner(target: str, digest: str) -> None:
    """Refuse a target already registered by another library (XLA keeps the first)."""
    owner = _TARGETS.get(target)
    if owner is not None and owner[0] != digest:
        raise RuntimeError(
            f'the FFI target {target!r} is already registered in this process by another '
            f'library ({owner[1]}); XLA keeps the first registration, so load the changed '
            f'module under another name or target_prefix, or restart the process')


# ---------------------------------------------------------------------------------------------
# the loaded module and its functions


@functools.cache
def _has_gpu() -> bool:
    try:
        return bool(jax.devices('gpu'))
    except RuntimeError:
        return False


def _dtype_ok(dtype) -> bool:
    return np.dtype(dtype) in SUPPORTED_DTYPES or np.dtype(dtype).name == 'bfloat16'


class NativeFunction(KernelImplementation):
    """One compiled entry point of a :class:`CompiledModule`, callable from JAX.

    ``f(*inputs, outs=..., **attrs)`` calls the FFI target through
    ``jax.ffi.ffi_call``: ``outs`` is one ``jax.ShapeDtypeStruct`` (the call
    returns one array) or a list or tuple of them (the call returns a list),
    one per ``ret`` of the signature; ``attrs`` are the static scalars named by
    ``attr.NAME:TYPE`` tokens. It works under ``jax.jit``, ``lax.scan`` and
    ``jax.vmap`` (batched calls run one after the other).

    Attributes
    ----------
    name : str
        The C++ function's name.
    target : str
        The XLA FFI target name, ``f'{target_prefix}.{name}'``.
    signature : tuple of str
        The signature tokens, e.g. ``('arg', 'arg', 'ret', 'attr.alpha:float32')``.
    backend : str
        ``'cpp'`` or ``'cuda'``.
    platforms : tuple of str
        ``('cpu',)`` or ``('gpu',)``.

    Examples
    --------
    The function fills its output with a value; here it serves as the
    ``'cpp'`` implementation of a kernel object:

    >>> import jax, jax.numpy as jnp, brainevent
    >>> fill = brainevent.load_cpp_inline('doc_fill', (
    ...     '\\n#include "brainevent/tensor.h"\\n// @BE fill ret attr.value:float32\\n'
    ...     'void fill(BE::Tensor out, float value) {\\n    for (int64_t i = 0; i < out.numel(); '
    ...     '++i) out.data_ptr<float>()[i] = value;\\n}')).fill
    >>> fill.target, fill.signature, fill.backend, fill.platforms
    ('doc_fill.fill', ('ret', 'attr.value:float32'), 'cpp', ('cpu',))
    >>> kernel = brainevent.XLACustomKernel('doc_native_fill')
    >>> _ = kernel.def_kernel(kernel=fill)  # backend and platform from the function
    >>> print(kernel(outs=jax.ShapeDtypeStruct((3,), jnp.float32), value=7.0))
    [7. 7. 7.]
    """

    def __init__(self, module: 'CompiledModule', name: str, signature):
        self.module = module
        self.name = name
        self.target = f'{module.target_prefix}.{name}'
        self._signature = signature
        self.signature = signature.tokens
        self.backend = module.kind
        self.platforms = ('cpu',) if module.kind == 'cpp' else ('gpu',)
        self.__doc__ = f'{name}({", ".join(signature.tokens)}): FFI target {self.target!r}'

    def __repr__(self):
        return f'NativeFunction({self.target!r}, signature={self.signature})'

    def __call__(self, *args, outs, **attrs):
        sig, name = self._signature, self.name
        if self.backend == 'cuda' and not _has_gpu():
            raise RuntimeError(f'{name}: CUDA functions need a CUDA GPU and a CUDA build of '
                               f'jaxlib (pip install "jax[cuda12]" or "jax[cuda13]"); JAX '
                               f'sees no GPU here')
        if len(args) != sig.n_args:
            raise TypeError(f'{name}: expected {sig.n_args} input array(s) ({" ".join(sig.tokens)}'
                            f'), got {len(args)}')
        args = [a if hasattr(a, 'dtype') and hasattr(a, 'shape') else jax.numpy.asarray(a)
                for a in args]
        for i, a in enumerate(args):
            if not _dtype_ok(a.dtype):
                raise TypeError(f'{name}: input {i} has dtype {a.dtype}, which native functions '
                                f'do not take (expected bool, an integer or a float type)')
        sequence = isinstance(outs, (list, tuple))
        results = list(outs) if sequence else [outs]
        if len(results) != sig.n_rets:
            raise TypeError(f'{name}: expected {sig.n_rets} output(s) in outs, got '
                            f'{len(results)}')
        structs = []
        for i, out in enumerate(results):
            if not (hasattr(out, 'shape') and hasattr(out, 'dtype')):
                raise TypeError(f'{name}: outs[{i}] must be a jax.ShapeDtypeStruct, got {out!r}')
            if not _dtype_ok(out.dtype):
                raise TypeError(f'{name}: output {i} has dtype {out.dtype}, which native '
                                f'functions do not produce')
            structs.append(jax.ShapeDtypeStruct(out.shape, out.dtype))
        values = sig.attr_values(name, attrs)
        shape = structs if sequence else structs[0]
        return jax.ffi.ffi_call(self.target, shape, vmap_method='sequential')(*args, **values)


class CompiledModule:
    """A compiled native library and the FFI targets of its functions.

    Made by :func:`load_cpp_inline`, :func:`load_cpp_file`,
    :func:`load_cuda_inline` and :func:`load_cuda_file`. Each entry point is
    an attribute (and an item: ``mod['name']``) holding a
    :class:`NativeFunction`.

    Attributes
    ----------
    name : str
        The module name.
    kind : str
        ``'cpp'`` or ``'cuda'``.
    target_prefix : str
        Prefix of the FFI target names.
    functions : dict
        Function name -> signature tokens.
    path : pathlib.Path
        The shared library.
    source : str
        The translation unit that was compiled (generated bindings included).
    compiled : bool
        Whether the latest load compiled the library (False: it came from the
        disk cache or was already loaded in this process).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainevent
    >>> mod = brainevent.load_cpp_inline('doc_fill', '''
    ... #include "brainevent/tensor.h"
    ... // @BE fill ret attr.value:float32
    ... void fill(BE::Tensor out, float value) {
    ...     for (int64_t i = 0; i < out.numel(); ++i) out.data_ptr<float>()[i] = value;
    ... }''')
    >>> mod.functions
    {'fill': ('ret', 'attr.value:float32')}
    >>> mod.target('fill'), mod.path.suffix
    ('doc_fill.fill', '.so')
    >>> f = jax.jit(lambda: mod.fill(outs=jax.ShapeDtypeStruct((2,), jnp.float32), value=3.0))
    >>> print(f())
    [3. 3.]
    """

    def __init__(self, kind, name, prefix, signatures, library, build, cmd_buffer):
        self.kind = kind
        self.name = name
        self.target_prefix = prefix
        self.path = build.library
        self.source = build.source
        self.command = [*build.flags, str(build.source_path), '-o', str(build.library),
                        *build.ldflags]
        self.compiled = False
        self.registered = False
        self._cmd_buffer = cmd_buffer
        self._library = library
        self._digest = build.digest
        self._functions = {fn: NativeFunction(self, fn, sig) for fn, sig in signatures.items()}

    @property
    def functions(self) -> dict[str, tuple[str, ...]]:
        return {fn: f.signature for fn, f in self._functions.items()}

    def target(self, function: str) -> str:
        """The XLA FFI target name of ``function``."""
        if function not in self.__dict__.get('_functions', {}):
            raise KeyError(f'{self.name}: no function {function!r}; the module has '
                           f'{sorted(self._functions)}')
        return f'{self.target_prefix}.{function}'

    def address(self, function: str) -> int:
        """The address of ``function``'s FFI handler in the loaded library."""
        self.target(function)  # checks the name
        return ctypes.cast(getattr(self._library, handler_symbol(function)), ctypes.c_void_p).value

    def register(self) -> None:
        """Register every function with XLA (done at load unless ``auto_register=False``)."""
        platform = 'cpu' if self.kind == 'cpp' else 'CUDA'
        kwargs = {}
        traits = getattr(xla_client, 'CustomCallTargetTraits', None)
        if self._cmd_buffer and traits is not None:
            kwargs['traits'] = traits.COMMAND_BUFFER_COMPATIBLE
        with _LOCK:
            for function in self._functions:
                target = self.target(function)
                _check_owner(target, self._digest)
                if target not in _TARGETS:
                    capsule = jax.ffi.pycapsule(self.address(function))
                    jax.ffi.register_ffi_target(target, capsule, platform=platform, **kwargs)
                    _TARGETS[target] = (self._digest, str(self.path))
            self.registered = True

    def __getattr__(self, item):
        functions = self.__dict__.get('_functions', {})
        if item in functions:
            return functions[item]
        raise AttributeError(f'{type(self).__name__} {self.__dict__.get("name")!r} has no '
                             f'function {item!r}; it has {sorted(functions)}')

    def __getitem__(self, item) -> NativeFunction:
        self.target(item)
        return self._functions[item]

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._functions))

    def __repr__(self):
        return (f'CompiledModule({self.name!r}, kind={self.kind!r}, '
                f'functions={sorted(self._functions)})')


# ---------------------------------------------------------------------------------------------
# public loaders

_SHARED_PARAMETERS = """
    functions : dict, optional
        Entry points given explicitly, ``{name: ['arg', 'ret', ...]}``; when
        given, the ``// @BE`` annotations in the source are ignored. Tokens:
        ``arg`` (input buffer), ``ret`` (output buffer), ``stream`` (the
        platform stream as ``int64_t``), ``attr.NAME:TYPE`` (static scalar;
        TYPE one of bool, int8, int16, int32, int64, uint8, uint16, uint32,
        uint64, float32, float64).
    extra_ldflags : list of str, optional
        Linker flags, e.g. ``['-lm']``.
    extra_include_paths : list of str, optional
        Further include folders (their headers are not part of the cache key:
        pass ``force_rebuild=True`` after changing one).
    build_directory : str or path, optional
        Where to build, instead of ``get_cache_dir() / 'native' / <hash>``.
    verbose : bool
        Print the compiler command and output to stderr.
    force_rebuild : bool
        Compile even when a cached library exists.
    auto_register : bool
        Register the FFI targets at once (otherwise call ``module.register()``).
    target_prefix : str, optional
        FFI targets are named ``f'{target_prefix}.{function}'``; default: the
        module name.
    optimization_level : int
        0 to 3, passed as ``-O{level}``."""

_CPP_PARAMETERS = _SHARED_PARAMETERS + """
    extra_cflags : list of str, optional
        Further compiler flags, e.g. ``['-march=native', '-fopenmp']``."""

_CUDA_PARAMETERS = _SHARED_PARAMETERS + """
    extra_cuda_cflags : list of str, optional
        Further nvcc flags, e.g. ``['-lineinfo']``.
    compute_capability : str, int or tuple, optional
        ``'90'``, ``'9.0'``, ``(9, 0)`` or ``'sm_90'`` (``'sm_90a'`` for
        architecture-specific features). Default: the first visible GPU's
        (through JAX, else ``nvidia-smi``), else ``'80'``, built as SASS for
        sm_80 plus PTX, which newer GPUs compile when the library loads.
    use_fast_math : bool
        Pass ``--use_fast_math`` (faster, less accurate transcendentals,
        flush-to-zero).
    allow_cuda_graph : bool
        Declare the handlers compatible with command buffers, so XLA may
        capture them in CUDA graphs. Turn off for functions that allocate
        device memory, synchronize or query the stream."""


_FILE_PARAMETERS = """
    path : str or path
        The source file ({suffix}).
    name : str, optional
        Module name; default: the file's stem."""

_INLINE_PARAMETERS = """
    name : str
        Module name: file names and the default FFI target prefix.
    {suffix}_sources : str or list of str
        The source(s), compiled as one translation unit."""


def _doc(parameters, *, inline=None, file=None):
    """Put the parameter descriptions (the shared ones and the source's) into the docstring."""
    parameters = (_INLINE_PARAMETERS.format(suffix=inline) if inline
                  else _FILE_PARAMETERS.format(suffix=file)) + parameters
    sections = ('    Parameters\n    ----------\n' + parameters.strip('\n') + '\n\n    Returns\n'
                '    -------\n    CompiledModule\n        With one :class:`NativeFunction` '
                'attribute per entry point.')

    def fill(function):
        function.__doc__ = function.__doc__.replace('    {sections}', sections)
        return function
    return fill


def _keywords(function, values) -> dict:
    """The keyword-only arguments of ``function`` (but ``name``) taken from ``values``."""
    return {k: values[k] for k, p in inspect.signature(function).parameters.items()
            if p.kind is p.KEYWORD_ONLY and k != 'name'}


def _file(path, what):
    path = pathlib.Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f'{what}: no such source file: {path}')
    return path, [(str(path), path.read_text(), str(path))]


@_doc(_CPP_PARAMETERS, inline='cpp')
def load_cpp_inline(name, cpp_sources, functions=None, *, extra_cflags=None, extra_ldflags=None,
                    extra_include_paths=None, build_directory=None, verbose=False,
                    force_rebuild=False, auto_register=True, target_prefix=None,
                    optimization_level=3) -> CompiledModule:
    """Compile C++ source with the host compiler into XLA FFI targets for the CPU.

    Each function to export takes its buffers as ``BE::Tensor``
    (``#include "brainevent/tensor.h"``) and is declared by a comment line
    ``// @BE name token ...`` (or by ``functions=``). The generated XLA FFI
    handler turns each buffer into a tensor, calls the function, and turns a
    C++ exception into a JAX runtime error carrying its message. The library
    is cached on disk (see :func:`get_cache_dir`) and loaded once per process.

    {sections}

    Raises
    ------
    ValueError
        A malformed ``// @BE`` annotation (the message quotes the line) or
        entry point.
    CompilationError
        The compiler failed; carries the command and the compiler output.
    RuntimeError
        The compiler is not installed (set ``CXX`` to choose one).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainevent
    >>> mod = brainevent.load_cpp_inline('doc_scale', \'\'\'
    ... #include "brainevent/tensor.h"
    ... // @BE scale arg ret attr.factor:float32
    ... void scale(const BE::Tensor x, BE::Tensor y, float factor) {
    ...     for (int64_t i = 0; i < x.numel(); ++i)
    ...         y.data_ptr<float>()[i] = factor * x.data_ptr<float>()[i];
    ... }\'\'\')
    >>> x = jnp.arange(4.0, dtype=jnp.float32)
    >>> print(mod.scale(x, outs=jax.ShapeDtypeStruct(x.shape, x.dtype), factor=0.5))
    [0.  0.5 1.  1.5]
    """
    return _load('cpp', name, _sources(cpp_sources, 'cpp_sources', name), functions,
                 **_keywords(load_cpp_inline, locals()))


@_doc(_CPP_PARAMETERS, file='.cpp')
def load_cpp_file(path, functions=None, *, name=None, extra_cflags=None, extra_ldflags=None,
                  extra_include_paths=None, build_directory=None, verbose=False,
                  force_rebuild=False, auto_register=True, target_prefix=None,
                  optimization_level=3) -> CompiledModule:
    """Compile a C++ source file into XLA FFI targets for the CPU.

    Like :func:`load_cpp_inline`, with the source read from ``path``;
    ``#include`` lines relative to the file work, and compiler messages point
    at the file's own lines.

    {sections}

    Examples
    --------
    >>> import pathlib, tempfile, jax, jax.numpy as jnp, brainevent
    >>> path = pathlib.Path(tempfile.mkdtemp()) / 'doc_fill.cpp'
    >>> _ = path.write_text('''
    ... #include "brainevent/tensor.h"
    ... // @BE fill ret attr.value:float32
    ... void fill(BE::Tensor out, float value) {
    ...     for (int64_t i = 0; i < out.numel(); ++i) out.data_ptr<float>()[i] = value;
    ... }''')
    >>> mod = brainevent.load_cpp_file(path)  # module name: the file's stem
    >>> print(mod.fill(outs=jax.ShapeDtypeStruct((2,), jnp.float32), value=4.0))
    [4. 4.]
    """
    path, sources = _file(path, 'load_cpp_file')
    return _load('cpp', path.stem if name is None else name, sources, functions,
                 **_keywords(load_cpp_file, locals()))


def _load_cuda(name, sources, functions, *, extra_cuda_cflags, compute_capability,
               use_fast_math, allow_cuda_graph, **common):
    return _load('cuda', name, sources, functions, extra_cflags=extra_cuda_cflags,
                 arch_flags=compute_capability_flags(compute_capability, use_fast_math),
                 cmd_buffer=bool(allow_cuda_graph), **common)


@_doc(_CUDA_PARAMETERS, inline='cuda')
def load_cuda_inline(name, cuda_sources, functions=None, *, extra_cuda_cflags=None,
                     extra_ldflags=None, extra_include_paths=None, build_directory=None,
                     verbose=False, compute_capability=None, force_rebuild=False,
                     auto_register=True, target_prefix=None, optimization_level=3,
                     use_fast_math=False, allow_cuda_graph=True) -> CompiledModule:
    """Compile CUDA source with nvcc into XLA FFI targets for NVIDIA GPUs.

    The functions run on the host: they receive ``BE::Tensor`` buffers in
    device memory and the platform stream (token ``stream``, an ``int64_t``
    to cast to ``cudaStream_t``) and launch kernels on that stream. After the
    function returns, a pending CUDA error (``cudaGetLastError``) becomes a
    JAX runtime error. Targets are registered for the ``CUDA`` platform.

    {sections}

    Raises
    ------
    ValueError, CompilationError, RuntimeError
        As :func:`load_cpp_inline`; the RuntimeError names ``NVCC`` and
        ``CUDA_HOME`` when nvcc is not found.

    Examples
    --------
    Compiling needs nvcc, calling a CUDA GPU (with a CUDA build of jaxlib):

    >>> import jax, jax.numpy as jnp, brainevent
    >>> mod = brainevent.load_cuda_inline('doc_cuda_scale', \'\'\'
    ... #include <cuda_runtime.h>
    ... #include "brainevent/tensor.h"
    ... __global__ void scale_kernel(const float* x, float* y, float a, int64_t n) {
    ...     int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ...     if (i < n) y[i] = a * x[i];
    ... }
    ... // @BE scale arg ret attr.factor:float32 stream
    ... void scale(const BE::Tensor x, BE::Tensor y, float factor, int64_t stream) {
    ...     int64_t n = x.numel();
    ...     scale_kernel<<<(n + 255) / 256, 256, 0, (cudaStream_t)stream>>>(
    ...         x.data_ptr<float>(), y.data_ptr<float>(), factor, n);
    ... }\'\'\')  # doctest: +SKIP
    >>> x = jnp.arange(4.0, dtype=jnp.float32)
    >>> y = mod.scale(x, outs=jax.ShapeDtypeStruct(x.shape, x.dtype), factor=2.0)  # doctest: +SKIP
    >>> print(y)  # doctest: +SKIP
    [0. 2. 4. 6.]
    """
    return _load_cuda(name, _sources(cuda_sources, 'cuda_sources', name), functions,
                      **_keywords(load_cuda_inline, locals()))


@_doc(_CUDA_PARAMETERS, file='.cu')
def load_cuda_file(path, functions=None, *, name=None, extra_cuda_cflags=None,
                   extra_ldflags=None, extra_include_paths=None, build_directory=None,
                   verbose=False, compute_capability=None, force_rebuild=False,
                   auto_register=True, target_prefix=None, optimization_level=3,
                   use_fast_math=False, allow_cuda_graph=True) -> CompiledModule:
    """Compile a CUDA source file with nvcc into XLA FFI targets for NVIDIA GPUs.

    Like :func:`load_cuda_inline`, with the source read from ``path``;
    ``#include`` lines relative to the file work. A package can ship a
    ``.cu`` file beside a module and load it at import time, with a
    ``target_prefix`` of its own so its targets cannot clash with others.

    {sections}

    Examples
    --------
    Compiling needs nvcc, calling a CUDA GPU; in a package's ``__init__.py``:

    >>> from pathlib import Path
    >>> import brainevent
    >>> _kernels = brainevent.load_cuda_file(Path(__file__).parent / 'kernels.cu',
    ...                                      target_prefix='mypkg')  # doctest: +SKIP
    >>> _kernels.target('scale')  # doctest: +SKIP
    'mypkg.scale'
    """
    path, sources = _file(path, 'load_cuda_file')
    return _load_cuda(path.stem if name is None else name, sources, functions,
                      **_keywords(load_cuda_file, locals()))
