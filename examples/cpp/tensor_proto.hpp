// A minimal reader of ONNX TensorProto files (the test_data_set_0/*.pb a bundle ships).
// It decodes the protobuf wire format for the fields numpy_helper.from_array writes:
// dims (1), data_type (2), float_data (4), int32_data (5), int64_data (7), name (8), raw_data (9).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace zoo {

enum class DataType : int { Float = 1, Int32 = 6, Int64 = 7 };

struct Tensor {
  std::string name;
  std::vector<int64_t> dims;
  DataType type = DataType::Float;
  std::vector<float> floats;    // filled when type == Float
  std::vector<int64_t> ints;    // filled when type is Int32 or Int64
  size_t count() const;
};

// Throws std::runtime_error naming the file and the problem.
Tensor read_tensor_proto(const std::string& path);

}  // namespace zoo
