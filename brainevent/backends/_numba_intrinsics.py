"""The numba pieces the generated FFI bridges use: pointers from integers, FFI calls."""

import numba
import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.extending import intrinsic

__all__ = ['addr_to_ptr', 'call_fnptr_i64', 'ffi_handshake', 'ffi_error', 'FRAME_LAYOUT']

# Byte offsets of the fields the bridge touches (LP64), mirrored from the installed
# jaxlib's xla/ffi/api/c_api.h; tests/test_numba_bridge.py compiles a program that
# checks every entry against the header.
FRAME_LAYOUT = {
    ('XLA_FFI_CallFrame', 'extension_start'): 8,
    ('XLA_FFI_CallFrame', 'api'): 16,
    ('XLA_FFI_CallFrame', 'stage'): 32,
    ('XLA_FFI_CallFrame', 'args.size'): 56,
    ('XLA_FFI_CallFrame', 'args.args'): 72,
    ('XLA_FFI_CallFrame', 'rets.size'): 96,
    ('XLA_FFI_CallFrame', 'rets.rets'): 112,
    ('XLA_FFI_Buffer', 'dtype'): 16,
    ('XLA_FFI_Buffer', 'data'): 24,
    ('XLA_FFI_Buffer', 'rank'): 32,
    ('XLA_FFI_Buffer', 'dims'): 40,
    ('XLA_FFI_Extension_Base', 'type'): 8,
    ('XLA_FFI_Metadata_Extension', 'metadata'): 24,
    ('XLA_FFI_Metadata', 'api_version.struct_size'): 8,
    ('XLA_FFI_Metadata', 'api_version.extension_start'): 16,
    ('XLA_FFI_Metadata', 'api_version.major_version'): 24,
    ('XLA_FFI_Metadata', 'api_version.minor_version'): 28,
    ('XLA_FFI_Metadata', 'traits'): 32,
    ('XLA_FFI_Metadata', 'state_type_id'): 40,
    ('XLA_FFI_Api', 'XLA_FFI_Error_Create'): 48,
    ('XLA_FFI_Error_Create_Args', 'message'): 16,
    ('XLA_FFI_Error_Create_Args', 'errc'): 24,
}
_SIZES = {'XLA_FFI_Api_Version': 24, 'XLA_FFI_Error_Create_Args': 28}
_VERSION_SIZE = _SIZES['XLA_FFI_Api_Version']
_ERROR_ARGS_SIZE = _SIZES['XLA_FFI_Error_Create_Args']


def _word(struct, field):
    return FRAME_LAYOUT[(struct, field)] // 8


def _half(struct, field):
    return FRAME_LAYOUT[(struct, field)] // 4


_EXT_TYPE = _word('XLA_FFI_Extension_Base', 'type')
_EXT_METADATA = _word('XLA_FFI_Metadata_Extension', 'metadata')
_MD_VERSION_SIZE = _word('XLA_FFI_Metadata', 'api_version.struct_size')
_MD_VERSION_EXT = _word('XLA_FFI_Metadata', 'api_version.extension_start')
_MD_MAJOR = _half('XLA_FFI_Metadata', 'api_version.major_version')
_MD_MINOR = _half('XLA_FFI_Metadata', 'api_version.minor_version')
_MD_TRAITS = _half('XLA_FFI_Metadata', 'traits')
_MD_STATE = _word('XLA_FFI_Metadata', 'state_type_id')
_API_ERROR_CREATE = _word('XLA_FFI_Api', 'XLA_FFI_Error_Create')
_ERR_MESSAGE = _word('XLA_FFI_Error_Create_Args', 'message')
_ERR_CODE = _word('XLA_FFI_Error_Create_Args', 'errc')

# The FFI API version this bridge reports at registration; XLA accepts 0.1 to 0.3.
API_MAJOR, API_MINOR = 0, 1
_EXTENSION_METADATA = 1
_INVALID_ARGUMENT = 3


@intrinsic
def addr_to_ptr(typingctx, addr, dtype):
    """``addr_to_ptr(address, np.float32)`` is a ``float32*`` at that address."""
    target = dtype.dtype
    sig = types.CPointer(target)(addr, dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(target)))

    return sig, codegen


@intrinsic
def call_fnptr_i64(typingctx, fn, arg):
    """Call the C function at address ``fn`` with one 64-bit argument; returns 64 bits."""
    sig = types.int64(fn, arg)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64)])
        return builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [args[1]])

    return sig, codegen


@numba.njit(cache=True)
def ffi_handshake(extension):
    """Answer XLA's metadata request at registration; True if the call was that request."""
    ext = carray(addr_to_ptr(extension, np.int64), 4)
    if (ext[_EXT_TYPE] & 0xffffffff) != _EXTENSION_METADATA:
        return False
    metadata = carray(addr_to_ptr(ext[_EXT_METADATA], np.int64), 6)
    halves = carray(addr_to_ptr(ext[_EXT_METADATA], np.int32), 12)
    metadata[_MD_VERSION_SIZE] = _VERSION_SIZE
    metadata[_MD_VERSION_EXT] = 0
    halves[_MD_MAJOR] = API_MAJOR
    halves[_MD_MINOR] = API_MINOR
    halves[_MD_TRAITS] = 0
    if metadata[0] >= 8 * (_MD_STATE + 1):  # older headers end before state_type_id
        metadata[_MD_STATE] = 0
    return True


@numba.njit(cache=True)
def ffi_error(api, message):
    """An ``XLA_FFI_Error*`` (INVALID_ARGUMENT) carrying the NUL-terminated ``message``."""
    create_args = np.zeros(4, np.int64)
    create_args[0] = _ERROR_ARGS_SIZE
    create_args[_ERR_MESSAGE] = message
    create_args[_ERR_CODE] = _INVALID_ARGUMENT
    table = carray(addr_to_ptr(api, np.int64), _API_ERROR_CREATE + 1)
    return call_fnptr_i64(table[_API_ERROR_CREATE], create_args.ctypes.data)
