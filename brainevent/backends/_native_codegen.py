"""Entry-point signatures, the XLA FFI bindings generated around native code, and the build.

A native module's entry points are C++ functions whose parameters follow a
signature: a list of tokens, one per parameter, in order:

``arg``
    an input buffer (``BE::Tensor``)
``ret``
    an output buffer (``BE::Tensor``)
``stream``
    the platform stream as ``int64_t`` (a ``cudaStream_t`` under CUDA, 0 on the CPU)
``attr.NAME:TYPE``
    a static scalar attribute named ``NAME`` of C++ type ``TYPE`` (see :data:`ATTR_TYPES`)

Signatures come from ``// @BE name token ...`` comment lines in the source or
from an explicit ``functions={name: [token, ...]}`` mapping. For each entry
point this module writes an XLA FFI handler (typed FFI API, header only) that
turns the call frame's buffers into ``BE::Tensor`` values, calls the function
and turns a C++ exception into an FFI error. :func:`plan` lays out the
translation unit (user sources and handlers) and hashes everything the library
depends on; :meth:`Build.compile` compiles it into a shared library unless one
built from the same inputs is already on disk.
"""

import dataclasses
import functools
import hashlib
import json
import numbers
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import uuid

import jax
import jaxlib
import numpy as np

__all__ = ['ATTR_TYPES', 'Signature', 'parse_annotations', 'parse_functions', 'binding',
           'handler_symbol', 'CompilationError', 'Build', 'plan', 'compute_capability_flags',
           'check_level', 'string_list', 'INCLUDE_DIR']

INCLUDE_DIR = pathlib.Path(__file__).resolve().parents[1] / 'include'
"""The folder to put on the include path for ``#include "brainevent/tensor.h"``."""

FALLBACK_COMPUTE_CAPABILITY = '80'
"""Architecture compiled for when none is given and no GPU is found (SASS for
sm_80 plus PTX, which newer GPUs compile when the library loads)."""

_MESSAGE_OUTPUT_LIMIT = 8000

# attribute type -> (C++ type, NumPy scalar type)
ATTR_TYPES = {
    'bool': ('bool', np.bool_),
    'int8': ('int8_t', np.int8), 'int16': ('int16_t', np.int16),
    'int32': ('int32_t', np.int32), 'int64': ('int64_t', np.int64),
    'uint8': ('uint8_t', np.uint8), 'uint16': ('uint16_t', np.uint16),
    'uint32': ('uint32_t', np.uint32), 'uint64': ('uint64_t', np.uint64),
    'float32': ('float', np.float32), 'float64': ('double', np.float64),
}

# XLA FFI data type -> BE::DType, for the buffers a function may receive.
BUFFER_DTYPES = {
    'PRED': 'Bool', 'S8': 'Int8', 'S16': 'Int16', 'S32': 'Int32', 'S64': 'Int64',
    'U8': 'UInt8', 'U16': 'UInt16', 'U32': 'UInt32', 'U64': 'UInt64',
    'F16': 'Float16', 'BF16': 'BFloat16', 'F32': 'Float32', 'F64': 'Float64',
}
SUPPORTED_DTYPES = tuple(np.dtype(d) for d in (
    'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
    'float16', 'float32', 'float64'))  # and bfloat16 (no NumPy name; checked by name)

_IDENT = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')
_ANNOTATION = re.compile(r'^\s*//\s*@BE(?:\s+(.*?))?\s*$')
_TOKEN_HELP = "expected 'arg', 'ret', 'stream' or 'attr.NAME:TYPE'"


@dataclasses.dataclass(frozen=True)
class Signature:
    """The parameters of one entry point, in order."""

    tokens: tuple[str, ...]

    @property
    def n_args(self) -> int:
        return self.tokens.count('arg')

    @property
    def n_rets(self) -> int:
        return self.tokens.count('ret')

    @property
    def attrs(self) -> dict[str, str]:
        """Attribute name -> type, in signature order."""
        return dict(t[5:].split(':') for t in self.tokens if t.startswith('attr.'))

    def attr_values(self, function: str, attrs: dict) -> dict:
        """The attributes of a call of ``function`` as NumPy scalars of their declared types."""
        expected = self.attrs
        if set(attrs) != set(expected):
            missing = sorted(set(expected) - set(attrs))
            unknown = sorted(set(attrs) - set(expected))
            wanted = ', '.join(f'{k}:{v}' for k, v in expected.items()) or 'none'
            raise TypeError(f'{function}: expected attributes ({wanted}), got '
                            f'{sorted(attrs) or "none"} (missing {missing or "none"}, unknown '
                            f'{unknown or "none"})')
        return {k: _attr_value(function, k, kind, attrs[k]) for k, kind in expected.items()}


def _attr_value(function: str, attr: str, kind: str, value):
    """``value`` as the NumPy scalar of attribute type ``kind``, or a TypeError/ValueError."""
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f'{function}: attribute {attr!r} must be a static {kind} scalar known at '
                        f'trace time, got a traced value {value}')
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    scalar = ATTR_TYPES[kind][1]
    is_bool = isinstance(value, (bool, np.bool_))
    if kind == 'bool':
        ok = is_bool
    elif kind.startswith(('int', 'uint')):
        ok = not is_bool and isinstance(value, numbers.Integral)
        if ok and not np.iinfo(scalar).min <= int(value) <= np.iinfo(scalar).max:
            raise ValueError(f'{function}: attribute {attr!r} is {kind}, and {value} is out of '
                             f'its range [{np.iinfo(scalar).min}, {np.iinfo(scalar).max}]')
    else:
        ok = not is_bool and isinstance(value, numbers.Real)
    if not ok:
        raise TypeError(f'{function}: attribute {attr!r} expects a scalar of type {kind}, got '
                        f'{type(value).__name__} {value!r}')
    return scalar(int(value)) if kind[0] in 'iu' else scalar(value)


def _check_tokens(name, tokens) -> Signature:
    """The signature of ``tokens``; raises ValueError('...') on the first problem found."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f'the function name must be a C identifier, got {name!r}')
    attrs, normal = set(), []
    for token in tokens:
        if not isinstance(token, str):
            raise ValueError(f'{name}: signature tokens are strings, got {token!r}')
        if token in ('arg', 'ret', 'stream'):
            if token == 'stream' and 'stream' in normal:
                raise ValueError(f"{name}: 'stream' is given twice")
            normal.append(token)
            continue
        if not token.startswith('attr.'):
            raise ValueError(f'{name}: unknown token {token!r}; {_TOKEN_HELP}')
        attr, _, kind = token[5:].partition(':')
        if not _IDENT.match(attr) or not kind:
            raise ValueError(f'{name}: malformed attribute {token!r}; expected attr.NAME:TYPE '
                             f'with NAME a C identifier')
        if kind not in ATTR_TYPES:
            raise ValueError(f'{name}: attribute {attr!r} has unknown type {kind!r}; '
                             f'expected one of {", ".join(ATTR_TYPES)}')
        if attr in attrs:
            raise ValueError(f'{name}: attribute {attr!r} is given twice')
        attrs.add(attr)
        normal.append(token)
    if 'ret' not in normal:
        raise ValueError(f"{name}: a function needs at least one output ('ret')")
    return Signature(tuple(normal))


def parse_annotations(sources) -> dict[str, Signature]:
    """Entry points declared by ``// @BE name token ...`` lines in ``sources``.

    ``sources`` is a list of ``(origin, text)`` pairs; ``origin`` names the
    source in error messages, which quote the offending line and its number.
    """
    found: dict[str, tuple[Signature, str]] = {}
    for origin, text in sources:
        for number, line in enumerate(text.splitlines(), 1):
            match = _ANNOTATION.match(line)
            if match is None:
                continue
            where = f'{origin}, line {number}'
            words = (match.group(1) or '').split()
            try:
                if not words or words[0] in ('arg', 'ret', 'stream', 'attr') or '.' in words[0]:
                    raise ValueError('the annotation needs a function name first: '
                                     '// @BE name arg ... ret')
                if words[0] in found:
                    raise ValueError(f'{words[0]!r} is already declared at {found[words[0]][1]}')
                found[words[0]] = (_check_tokens(words[0], words[1:]), where)
            except ValueError as err:
                raise ValueError(f'{where}: {err}\n    {line.strip()}') from None
    return {name: signature for name, (signature, _) in found.items()}


def parse_functions(functions) -> dict[str, Signature]:
    """Entry points given explicitly: ``{name: ['arg', 'ret', ...]}`` (or ``'arg ret'``)."""
    if not isinstance(functions, dict) or not functions:
        raise TypeError(f'functions must be a non-empty dict {{name: [token, ...]}}, '
                        f'got {functions!r}')
    result = {}
    for name, tokens in functions.items():
        if isinstance(tokens, str):
            tokens = tokens.split()
        if not isinstance(tokens, (list, tuple)):
            raise TypeError(f'functions[{name!r}] must be a list of tokens, got {tokens!r}')
        try:
            result[name] = _check_tokens(name, tuple(tokens))
        except ValueError as err:
            raise ValueError(f'functions[{name!r}]: {err}') from None
    return result


def handler_symbol(name: str) -> str:
    """The exported C symbol of the FFI handler of entry point ``name``."""
    return f'brainevent_ffi_{name}'


_PRELUDE = '''\
// Generated by brainevent: XLA FFI handlers for the native module {module!r}.
#include <cstdint>
#include <exception>
#include <string>
#include "xla/ffi/api/ffi.h"
#include "brainevent/tensor.h"
{platform_include}'''

_HELPERS = '''\
namespace brainevent_ffi {{
namespace ffi = ::xla::ffi;

inline bool to_dtype(ffi::DataType type, BE::DType* dtype) {{
  switch (type) {{
{cases}
    default: return false;
  }}
}}

inline ffi::Error to_tensor(const ffi::AnyBuffer& buffer, const char* function,
                            const char* what, BE::Tensor* tensor) {{
  BE::DType dtype;
  if (!to_dtype(buffer.element_type(), &dtype)) {{
    return ffi::Error::InvalidArgument(
        std::string(function) + ": " + what + " has an unsupported element type (XLA data "
        "type code " + std::to_string(static_cast<int>(buffer.element_type())) +
        "); supported: bool, int8-int64, uint8-uint64, float16, bfloat16, float32, float64");
  }}
  const auto dims = buffer.dimensions();
  *tensor = BE::Tensor{{buffer.untyped_data(), dtype, static_cast<int64_t>(dims.size()),
                       dims.begin()}};
  return ffi::Error::Success();
}}
}}  // namespace brainevent_ffi
'''

_HANDLER = '''
static ::xla::ffi::Error brainevent_impl_{name}({params}) {{
  namespace ffi = ::xla::ffi;
{tensors}  try {{
    {name}({call});
  }} catch (const std::exception& error) {{
    return ffi::Error::Internal(std::string("{name}: ") + error.what());
  }} catch (...) {{
    return ffi::Error::Internal("{name}: unknown C++ exception");
  }}
{after}  return ffi::Error::Success();
}}

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    {symbol}, brainevent_impl_{name},
    ::xla::ffi::Ffi::Bind(){bind}{traits});
'''

_TENSOR = '''\
  BE::Tensor t{i};
  {{
    ffi::Error status = brainevent_ffi::to_tensor({buffer}, "{name}", "{what}", &t{i});
    if (status.failure()) return status;
  }}
'''

_CUDA_CHECK = '''\
  const cudaError_t launch = cudaGetLastError();
  if (launch != cudaSuccess) {{
    return ffi::Error::Internal(std::string("{name}: CUDA error: ") + cudaGetErrorString(launch));
  }}
'''


def _handler(name: str, signature: Signature, cuda: bool, cmd_buffer: bool) -> str:
    params, tensors, call, bind = [], [], [], []
    n_in = n_out = 0
    for token in signature.tokens:
        if token in ('arg', 'ret'):
            i = n_in + n_out
            if token == 'arg':
                params.append(f'::xla::ffi::AnyBuffer in{n_in}')
                buffer, what = f'in{n_in}', f'input {n_in}'
                bind.append('.Arg<::xla::ffi::AnyBuffer>()')
                n_in += 1
            else:
                params.append(f'::xla::ffi::Result<::xla::ffi::AnyBuffer> out{n_out}')
                buffer, what = f'*out{n_out}', f'output {n_out}'
                bind.append('.Ret<::xla::ffi::AnyBuffer>()')
                n_out += 1
            tensors.append(_TENSOR.format(i=i, buffer=buffer, name=name, what=what))
            call.append(f't{i}')
        elif token == 'stream':
            if cuda:
                params.append('cudaStream_t stream')
                bind.append('.Ctx<::xla::ffi::PlatformStream<cudaStream_t>>()')
                call.append('reinterpret_cast<int64_t>(stream)')
            else:
                call.append('int64_t{0}')
        else:
            attr, kind = token[5:].split(':')
            params.append(f'{ATTR_TYPES[kind][0]} attr_{attr}')
            bind.append(f'.Attr<{ATTR_TYPES[kind][0]}>("{attr}")')
            call.append(f'attr_{attr}')
    traits = ',\n    {::xla::ffi::Traits::kCmdBufferCompatible}' if cmd_buffer else ''
    return _HANDLER.format(name=name, params=', '.join(params), tensors=''.join(tensors),
                           call=', '.join(call), symbol=handler_symbol(name),
                           after=_CUDA_CHECK.format(name=name) if cuda else '',
                           bind=''.join(f'\n        {b}' for b in bind), traits=traits)


def binding(module: str, functions: dict[str, Signature], *, cuda: bool,
            cmd_buffer: bool = False) -> tuple[str, str]:
    """The generated code around the user's sources: ``(prelude, handlers)``.

    The translation unit is the prelude, the user's sources, then the handlers.
    """
    prelude = _PRELUDE.format(module=module,
                              platform_include='#include <cuda_runtime_api.h>\n' if cuda else '')
    cases = '\n'.join(f'    case ffi::DataType::{xla}: *dtype = BE::DType::{be}; return true;'
                      for xla, be in BUFFER_DTYPES.items())
    handlers = _HELPERS.format(cases=cases) + ''.join(
        _handler(name, signature, cuda, cuda and cmd_buffer)
        for name, signature in functions.items())
    return prelude, handlers


class CompilationError(RuntimeError):
    """The compiler rejected a native module.

    Attributes
    ----------
    command : list of str
        The compiler command line that failed.
    output : str
        Everything the compiler printed (stdout and stderr), complete; the
        message shows it truncated when it is very long.

    Examples
    --------
    >>> import brainevent
    >>> err = brainevent.CompilationError(['g++', 'k.cpp'], "k.cpp:3: error: expected ';'")
    >>> err.command
    ['g++', 'k.cpp']
    >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
    compilation failed: g++ k.cpp
    k.cpp:3: error: expected ';'
    """

    def __init__(self, command, output: str):
        self.command = list(command)
        self.output = output
        shown = output
        if len(shown) > _MESSAGE_OUTPUT_LIMIT:
            shown = (shown[:_MESSAGE_OUTPUT_LIMIT] + f'\n... ({len(output) - _MESSAGE_OUTPUT_LIMIT}'
                     ' more characters in CompilationError.output)')
        super().__init__(f'compilation failed: {shlex.join(self.command)}\n{shown.rstrip()}')


# ---------------------------------------------------------------------------------------------
# compilers


def _compiler(kind: str) -> list[str]:
    """The compiler command prefix for ``kind`` ('cpp' or 'cuda'), found or explained."""
    if kind == 'cpp':
        command = shlex.split(os.environ.get('CXX') or 'g++')
        if command and shutil.which(command[0]):
            return command
        raise RuntimeError(
            f"C++ compiler {command[0] if command else ''!r} was not found: install g++ (e.g. "
            f"'apt-get install g++' or 'conda install gxx') or set the CXX environment variable "
            f"to a C++17 compiler")
    if os.environ.get('NVCC'):
        command = shlex.split(os.environ['NVCC'])
        if shutil.which(command[0]):
            return command
        raise RuntimeError(f'the CUDA compiler NVCC={os.environ["NVCC"]!r} was not found')
    homes = [os.environ.get('CUDA_HOME'), os.environ.get('CUDA_PATH'), '/usr/local/cuda']
    for found in [shutil.which('nvcc')] + [h and shutil.which(os.path.join(h, 'bin', 'nvcc'))
                                           for h in homes]:
        if found:
            return [found]
    raise RuntimeError("CUDA compiler 'nvcc' was not found: install the CUDA toolkit "
                       "(https://developer.nvidia.com/cuda-downloads) and put its bin/ on PATH, "
                       "or set NVCC to the nvcc executable or CUDA_HOME to the toolkit's folder")


@functools.cache
def _compiler_identity(command: tuple[str, ...]) -> str:
    """``<compiler> --version`` (computed once per process), part of the cache key."""
    try:
        run = subprocess.run([*command, '--version'], capture_output=True, text=True, timeout=60)
        return run.stdout + run.stderr
    except (OSError, subprocess.SubprocessError) as err:
        return f'{command}: {err}'


@functools.cache
def _detected_compute_capability() -> str:
    try:
        for device in jax.devices('gpu'):
            capability = getattr(device, 'compute_capability', None)
            if capability:
                return _compute_capability(capability)
    except RuntimeError:  # no GPU backend in this jaxlib or no GPU
        pass
    smi = shutil.which('nvidia-smi')
    if smi:
        try:
            run = subprocess.run([smi, '--query-gpu=compute_cap', '--format=csv,noheader'],
                                 capture_output=True, text=True, timeout=30)
            if run.returncode == 0 and run.stdout.strip():
                return _compute_capability(run.stdout.split()[0])
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    return FALLBACK_COMPUTE_CAPABILITY


def _compute_capability(value) -> str:
    """'90', '9.0', (9, 0), 90 or 'sm_90' (and 'sm_90a') -> '90' ('90a')."""
    text = value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        text = f'{value[0]}{value[1]}'
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        text = str(value)
    if isinstance(text, str):
        text = re.sub(r'^(sm_|compute_)', '', text.strip()).replace('.', '')
        if re.fullmatch(r'\d{2,3}[af]?', text):
            return text
    raise ValueError(f"compute_capability must look like '90', '9.0', (9, 0) or 'sm_90', "
                     f"got {value!r}")


def compute_capability_flags(compute_capability, use_fast_math: bool) -> list[str]:
    """nvcc flags for ``compute_capability`` (None: detect, else the fallback)."""
    capability = (_detected_compute_capability() if compute_capability is None
                  else _compute_capability(compute_capability))
    flags = [f'-gencode=arch=compute_{capability},code=[sm_{capability},compute_{capability}]']
    return flags + (['--use_fast_math'] if use_fast_math else [])


def check_level(level) -> int:
    if isinstance(level, bool) or not isinstance(level, numbers.Integral) or not 0 <= level <= 3:
        raise ValueError(f'optimization_level must be 0, 1, 2 or 3, got {level!r}')
    return int(level)


def string_list(value, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    if not all(isinstance(v, (str, os.PathLike)) for v in value):
        raise TypeError(f'{what} must be a list of strings, got {value!r}')
    return [os.fspath(v) for v in value]


# ---------------------------------------------------------------------------------------------
# building


def _quoted(text: str) -> str:
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


@dataclasses.dataclass(frozen=True)
class Build:
    """What to compile, and where the library goes (made by :func:`plan`)."""

    name: str
    digest: str
    library: pathlib.Path
    source: str  # the translation unit
    source_path: pathlib.Path  # where it is written
    flags: tuple[str, ...]  # compiler and flags before the source
    ldflags: tuple[str, ...]  # flags after the output (libraries)

    def compile(self, *, force_rebuild: bool, verbose: bool) -> bool:
        """Compile unless the library exists (or ``force_rebuild``); True when it compiled.

        The source and the library are written under temporary names and then
        renamed, so processes compiling the same library at once do not clash.
        """
        if self.library.exists() and not force_rebuild:
            if verbose:
                print(f'brainevent: {self.name}: cached library {self.library}', file=sys.stderr)
            return False
        directory = self.library.parent
        directory.mkdir(parents=True, exist_ok=True)
        unique = f'.{os.getpid()}.{uuid.uuid4().hex[:8]}'
        src = self.source_path
        tmp_src = directory / f'.{src.name}{unique}{src.suffix}'
        tmp_lib = directory / f'.{self.library.stem}{unique}.so'
        tmp_src.write_text(self.source)
        os.replace(tmp_src, src)
        command = [*self.flags, str(src), '-o', str(tmp_lib), *self.ldflags]
        if verbose:
            print(f'brainevent: {self.name}: {shlex.join(command)}', file=sys.stderr)
        try:
            run = subprocess.run(command, capture_output=True, text=True, cwd=directory)
            if verbose and (run.stdout or run.stderr):
                print(run.stdout + run.stderr, file=sys.stderr)
            if run.returncode != 0:
                raise CompilationError(command, run.stdout + run.stderr)
            os.replace(tmp_lib, self.library)
        finally:
            tmp_lib.unlink(missing_ok=True)
        return True


def plan(kind, name, sources, functions, flags, ldflags, *, cache_root, build_directory,
         cmd_buffer=False) -> Build:
    """Generate the translation unit and hash everything the library depends on.

    ``sources`` is a list of ``(origin, text, included)`` triples: ``included``
    is a file the translation unit ``#include``-s (so its own relative includes
    resolve), otherwise ``text`` is pasted in. ``flags`` come before the
    source on the command line, ``ldflags`` after it. The library goes to
    ``build_directory`` or else ``cache_root / <hash>``.
    """
    compiler = _compiler(kind)
    prelude, handlers = binding(name, functions, cuda=kind == 'cuda', cmd_buffer=cmd_buffer)
    header = (INCLUDE_DIR / 'brainevent' / 'tensor.h').read_text()
    key = json.dumps({
        'kind': kind, 'name': name, 'sources': [text for _, text, _ in sources],
        'prelude': prelude, 'handlers': handlers, 'header': header, 'flags': flags,
        'ldflags': ldflags, 'compiler': _compiler_identity(tuple(compiler)),
        'jaxlib': jaxlib.__version__,
    })
    digest = hashlib.sha256(key.encode()).hexdigest()
    directory = (pathlib.Path(build_directory).expanduser().resolve()
                 if build_directory is not None else pathlib.Path(cache_root) / digest[:24])
    stem = f'{name}_{digest[:16]}'
    parts = [prelude]
    for origin, text, included in sources:
        parts.append(f'#include {_quoted(included)}\n' if included else
                     f'#line 1 {_quoted(origin)}\n{text}\n')
    src = directory / f'{stem}{".cu" if kind == "cuda" else ".cpp"}'
    line = ''.join(parts).count('\n') + 2  # the handlers' own line in the written file
    parts.append(f'#line {line} {_quoted(str(src))}\n{handlers}')
    return Build(name, digest, directory / f'{stem}.so', ''.join(parts), src,
                 (*compiler, *flags), tuple(ldflags))
