#include "tensor_proto.hpp"

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace zoo {
namespace {

struct Reader {
  const uint8_t* at;
  const uint8_t* end;
  const std::string& path;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path + ": not a TensorProto (" + what + ")");
  }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= end) fail("truncated varint");
      uint8_t byte = *at++;
      value |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("varint too long");
  }
  Reader sub() {  // a length-delimited field's bytes
    uint64_t size = varint();
    if (size > uint64_t(end - at)) fail("field runs past the end");
    Reader inner{at, at + size, path};
    at += size;
    return inner;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: at += 8; break;
      case 2: sub(); break;
      case 5: at += 4; break;
      default: fail("unknown wire type " + std::to_string(wire));
    }
    if (at > end) fail("truncated field");
  }
};

}  // namespace

size_t Tensor::count() const {
  size_t n = 1;
  for (int64_t d : dims) n *= size_t(d);
  return n;
}

Tensor read_tensor_proto(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  Reader in{bytes.data(), bytes.data() + bytes.size(), path};
  Tensor tensor;
  std::vector<uint8_t> raw;
  while (in.at < in.end) {
    uint64_t key = in.varint();
    uint32_t field = uint32_t(key >> 3), wire = uint32_t(key & 7);
    if (field == 1 && wire == 0) {
      tensor.dims.push_back(int64_t(in.varint()));
    } else if (field == 1 && wire == 2) {  // packed dims
      Reader packed = in.sub();
      while (packed.at < packed.end) tensor.dims.push_back(int64_t(packed.varint()));
    } else if (field == 2 && wire == 0) {
      tensor.type = DataType(int(in.varint()));
    } else if (field == 4 && wire == 2) {  // packed float_data
      Reader packed = in.sub();
      size_t n = size_t(packed.end - packed.at) / 4;
      size_t old = tensor.floats.size();
      tensor.floats.resize(old + n);
      std::memcpy(tensor.floats.data() + old, packed.at, n * 4);
    } else if ((field == 5 || field == 7) && wire == 2) {  // packed int32_data / int64_data
      Reader packed = in.sub();
      while (packed.at < packed.end) tensor.ints.push_back(int64_t(packed.varint()));
    } else if (field == 8 && wire == 2) {
      Reader name = in.sub();
      tensor.name.assign(reinterpret_cast<const char*>(name.at), size_t(name.end - name.at));
    } else if (field == 9 && wire == 2) {
      Reader data = in.sub();
      raw.assign(data.at, data.end);
    } else {
      in.skip(wire);
    }
  }
  const size_t n = tensor.count();
  if (!raw.empty()) {  // raw_data is little-endian, as on every platform this example targets
    if (tensor.type == DataType::Float) {
      if (raw.size() != n * 4) in.fail("raw_data size does not match dims");
      tensor.floats.resize(n);
      std::memcpy(tensor.floats.data(), raw.data(), raw.size());
    } else if (tensor.type == DataType::Int64 || tensor.type == DataType::Int32) {
      size_t width = tensor.type == DataType::Int64 ? 8 : 4;
      if (raw.size() != n * width) in.fail("raw_data size does not match dims");
      tensor.ints.resize(n);
      for (size_t i = 0; i < n; ++i) {
        if (width == 8) {
          std::memcpy(&tensor.ints[i], raw.data() + i * 8, 8);
        } else {
          int32_t v;
          std::memcpy(&v, raw.data() + i * 4, 4);
          tensor.ints[i] = v;
        }
      }
    } else {
      in.fail("data_type " + std::to_string(int(tensor.type)) + " is not float32, int32 or int64");
    }
  }
  size_t have = tensor.type == DataType::Float ? tensor.floats.size() : tensor.ints.size();
  if (have != n) in.fail("holds " + std::to_string(have) + " values for " + std::to_string(n) + " elements");
  return tensor;
}

}  // namespace zoo
