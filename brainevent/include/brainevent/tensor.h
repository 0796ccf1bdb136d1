// brainevent/tensor.h -- the buffer view handed to native kernels.
//
// Functions compiled by brainevent.load_cpp_inline / load_cpp_file /
// load_cuda_inline / load_cuda_file receive each input and output buffer as a
// BE::Tensor: a pointer to the data, its element type and its shape. The
// tensor does not own its memory; it is valid for the duration of the call.
//
// The header compiles with any C++17 compiler and with nvcc. Under nvcc the
// members that touch only the tensor itself (data_ptr, itemsize, is<T>) are
// __host__ __device__; the shape lives in host memory, so numel(), size()
// and nbytes() are host-only: read sizes on the host and pass them to a
// kernel launch together with data_ptr<T>().
#ifndef BRAINEVENT_TENSOR_H_
#define BRAINEVENT_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define BE_HOST_DEVICE __host__ __device__
#else
#define BE_HOST_DEVICE
#endif

namespace BE {

// Element types a tensor can hold. float16 and bfloat16 data are 16-bit words:
// read them through data_ptr<uint16_t>() or a 16-bit floating type of your own
// (e.g. __half / __nv_bfloat16 under CUDA).
enum class DType : int32_t {
  Bool = 0,
  Int8 = 1, Int16 = 2, Int32 = 3, Int64 = 4,
  UInt8 = 5, UInt16 = 6, UInt32 = 7, UInt64 = 8,
  Float16 = 9, BFloat16 = 10, Float32 = 11, Float64 = 12,
};

// Bytes per element of `dtype`.
BE_HOST_DEVICE constexpr int64_t itemsize(DType dtype) {
  switch (dtype) {
    case DType::Bool:
    case DType::Int8:
    case DType::UInt8:
      return 1;
    case DType::Int16:
    case DType::UInt16:
    case DType::Float16:
    case DType::BFloat16:
      return 2;
    case DType::Int32:
    case DType::UInt32:
    case DType::Float32:
      return 4;
    case DType::Int64:
    case DType::UInt64:
    case DType::Float64:
      return 8;
  }
  return 0;
}

// The NumPy name of `dtype` ("float32", ...), for messages.
inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Bool: return "bool";
    case DType::Int8: return "int8";
    case DType::Int16: return "int16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::UInt8: return "uint8";
    case DType::UInt16: return "uint16";
    case DType::UInt32: return "uint32";
    case DType::UInt64: return "uint64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "unknown";
}

// dtype_of<T>::value: the DType whose elements are C++ type T (defined for
// bool, the fixed-width integers, float and double).
template <typename T>
struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct dtype_of<int16_t> { static constexpr DType value = DType::Int16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct dtype_of<uint16_t> { static constexpr DType value = DType::UInt16; };
template <> struct dtype_of<uint32_t> { static constexpr DType value = DType::UInt32; };
template <> struct dtype_of<uint64_t> { static constexpr DType value = DType::UInt64; };
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };

struct Tensor {
  void* data;            // first element (device memory for CUDA functions)
  BE::DType dtype;       // element type
  int64_t ndim;          // number of dimensions (0 for a scalar)
  const int64_t* shape;  // ndim extents, row-major layout (host memory)

  // Number of elements: the product of the extents (1 for a scalar).
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }

  // Extent of dimension i; a negative i counts from the end (size(-1) is the
  // last dimension). Throws std::out_of_range outside [-ndim, ndim).
  int64_t size(int64_t i) const {
    const int64_t k = i < 0 ? i + ndim : i;
    if (k < 0 || k >= ndim) {
      throw std::out_of_range("BE::Tensor::size(" + std::to_string(i) + ") on a tensor of " +
                              std::to_string(ndim) + " dimension(s)");
    }
    return shape[k];
  }

  // Bytes per element, and bytes of the whole buffer.
  BE_HOST_DEVICE int64_t itemsize() const { return BE::itemsize(dtype); }
  int64_t nbytes() const { return numel() * itemsize(); }

  // The data as T*; no check (see is<T>() and expect<T>()).
  template <typename T>
  BE_HOST_DEVICE T* data_ptr() const {
    return static_cast<T*>(data);
  }

  // Whether the elements are of C++ type T.
  template <typename T>
  BE_HOST_DEVICE bool is() const {
    return dtype == dtype_of<T>::value;
  }

  // The data as T*, after checking the element type: throws
  // std::invalid_argument naming `what` when the tensor does not hold T.
  template <typename T>
  T* expect(const char* what = "tensor") const {
    if (!is<T>()) {
      throw std::invalid_argument(std::string(what) + ": expected " +
                                  dtype_name(dtype_of<T>::value) + " elements, got " +
                                  dtype_name(dtype));
    }
    return data_ptr<T>();
  }
};

}  // namespace BE

#endif  // BRAINEVENT_TENSOR_H_
