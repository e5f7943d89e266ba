// zoo_run_bundle: load an aigc-zoo export bundle, read model.json, run one graph on the
// bundle's test inputs and check the outputs against test_data_set_0.
//
//   zoo_run_bundle BUNDLE [--graph NAME] [--atol A] [--rtol R]
//
// Exit status 0 when every output is within atol + rtol * |expected|, 1 when not,
// 2 on a usage or file error. Built against OpenCV's DNN module or ONNX Runtime's
// C++ API (CMake option ZOO_RUNTIME).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor_proto.hpp"

#if defined(ZOO_WITH_OPENCV)
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#elif defined(ZOO_WITH_ONNXRUNTIME)
#include <onnxruntime_cxx_api.h>
#endif

using json = nlohmann::ordered_json;  // keeps model.json's graph order: the first graph is the main one

namespace {

struct Output {
  std::vector<int64_t> dims;
  std::vector<float> values;
};

#if defined(ZOO_WITH_OPENCV)
const char* kRuntime = "OpenCV DNN " CV_VERSION;

std::vector<Output> run_model(const std::string& path, const std::vector<zoo::Tensor>& inputs,
                              const std::vector<std::string>& output_names) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(path);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  std::vector<cv::Mat> blobs;  // kept alive until forward()
  for (const zoo::Tensor& tensor : inputs) {
    std::vector<int> sizes(tensor.dims.begin(), tensor.dims.end());
    cv::Mat blob(int(sizes.size()), sizes.data(), CV_32F);
    float* data = blob.ptr<float>();
    // OpenCV's DNN computes in float32; integer inputs (token ids) are passed as floats.
    for (size_t i = 0; i < tensor.count(); ++i)
      data[i] = tensor.type == zoo::DataType::Float ? tensor.floats[i] : float(tensor.ints[i]);
    blobs.push_back(blob);
    net.setInput(blob, tensor.name);
  }
  std::vector<cv::Mat> results;
  std::vector<cv::String> names(output_names.begin(), output_names.end());
  net.forward(results, names);
  std::vector<Output> outputs;
  for (const cv::Mat& result : results) {
    cv::Mat values;
    result.convertTo(values, CV_32F);
    Output out;
    for (int axis = 0; axis < values.dims; ++axis) out.dims.push_back(values.size[axis]);
    const float* begin = values.ptr<float>();
    out.values.assign(begin, begin + values.total());
    outputs.push_back(std::move(out));
  }
  return outputs;
}

#elif defined(ZOO_WITH_ONNXRUNTIME)
const char* kRuntime = "ONNX Runtime C++ API";

std::vector<Output> run_model(const std::string& path, const std::vector<zoo::Tensor>& inputs,
                              const std::vector<std::string>& output_names) {
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "zoo");
  Ort::SessionOptions options;
  Ort::Session session(env, path.c_str(), options);
  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<std::vector<float>> floats;  // mutable copies the Ort::Values point into
  std::vector<std::vector<int64_t>> ints;
  floats.reserve(inputs.size());
  ints.reserve(inputs.size());
  std::vector<Ort::Value> values;
  std::vector<const char*> input_names;
  for (const zoo::Tensor& tensor : inputs) {
    input_names.push_back(tensor.name.c_str());
    if (tensor.type == zoo::DataType::Float) {
      floats.push_back(tensor.floats);
      values.push_back(Ort::Value::CreateTensor<float>(memory, floats.back().data(), floats.back().size(),
                                                       tensor.dims.data(), tensor.dims.size()));
    } else {
      ints.push_back(tensor.ints);
      values.push_back(Ort::Value::CreateTensor<int64_t>(memory, ints.back().data(), ints.back().size(),
                                                         tensor.dims.data(), tensor.dims.size()));
    }
  }
  std::vector<const char*> names;
  for (const std::string& name : output_names) names.push_back(name.c_str());
  auto results = session.Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                             names.data(), names.size());
  std::vector<Output> outputs;
  for (Ort::Value& result : results) {
    auto info = result.GetTensorTypeAndShapeInfo();
    Output out;
    out.dims = info.GetShape();
    size_t n = info.GetElementCount();
    if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
      const float* data = result.GetTensorData<float>();
      out.values.assign(data, data + n);
    } else if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) {
      const int64_t* data = result.GetTensorData<int64_t>();
      for (size_t i = 0; i < n; ++i) out.values.push_back(float(data[i]));
    } else {
      throw std::runtime_error("output element type " + std::to_string(int(info.GetElementType())) + " is not handled");
    }
    outputs.push_back(std::move(out));
  }
  return outputs;
}
#else
#error "build with CMake: ZOO_RUNTIME=opencv or ZOO_RUNTIME=onnxruntime"
#endif

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + "]";
}

int usage(const char* problem) {
  std::cerr << "zoo_run_bundle: error: " << problem
            << "\nusage: zoo_run_bundle BUNDLE [--graph NAME] [--atol A] [--rtol R]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bundle, graph_name;
  double atol = 1e-4, rtol = 1e-3;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--graph" || arg == "--atol" || arg == "--rtol") && i + 1 >= argc) return usage("missing value");
    if (arg == "--graph") graph_name = argv[++i];
    else if (arg == "--atol") atol = std::stod(argv[++i]);
    else if (arg == "--rtol") rtol = std::stod(argv[++i]);
    else if (bundle.empty()) bundle = arg;
    else return usage(("unexpected argument " + arg).c_str());
  }
  if (bundle.empty()) return usage("no bundle given");
  try {
    std::ifstream manifest_file(bundle + "/model.json");
    if (!manifest_file) return usage(("no model.json in " + bundle + "; export one with `zoo export NAME -o out/`").c_str());
    json manifest = json::parse(manifest_file);
    json graphs = manifest.at("graphs");
    if (graph_name.empty()) graph_name = graphs.begin().key();
    if (!graphs.contains(graph_name)) return usage(("the bundle has no graph '" + graph_name + "'").c_str());
    json graph = graphs.at(graph_name);
    std::string folder = bundle + "/" + graph.at("test_data").get<std::string>();

    std::vector<zoo::Tensor> inputs;
    for (size_t i = 0; i < graph.at("inputs").size(); ++i)
      inputs.push_back(zoo::read_tensor_proto(folder + "/input_" + std::to_string(i) + ".pb"));
    std::vector<std::string> output_names;
    std::vector<zoo::Tensor> expected;
    for (size_t i = 0; i < graph.at("outputs").size(); ++i) {
      output_names.push_back(graph.at("outputs")[i].at("name").get<std::string>());
      expected.push_back(zoo::read_tensor_proto(folder + "/output_" + std::to_string(i) + ".pb"));
    }

    std::cout << manifest.at("model").get<std::string>() << " graph '" << graph_name << "' ("
              << graph.at("file").get<std::string>() << ", opset " << manifest.value("opset", 0) << ") on " << kRuntime
              << "\n";
    std::vector<Output> outputs = run_model(bundle + "/" + graph.at("file").get<std::string>(), inputs, output_names);
    bool ok = true;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const zoo::Tensor& want = expected[i];
      const Output& got = outputs[i];
      if (got.values.size() != want.count()) {
        std::cout << "  " << output_names[i] << ": shape " << shape_text(got.dims) << ", expected "
                  << shape_text(want.dims) << ": FAIL\n";
        ok = false;
        continue;
      }
      double worst = 0.0;
      bool within = true;
      for (size_t k = 0; k < want.count(); ++k) {
        double reference = want.type == zoo::DataType::Float ? want.floats[k] : double(want.ints[k]);
        double error = std::fabs(double(got.values[k]) - reference);
        worst = std::max(worst, error);
        within = within && error <= atol + rtol * std::fabs(reference);
      }
      std::printf("  %s %s: max abs difference %.3g vs test_data_set_0 (atol %g, rtol %g): %s\n",
                  output_names[i].c_str(), shape_text(want.dims).c_str(), worst, atol, rtol, within ? "ok" : "FAIL");
      ok = ok && within;
    }
    return ok ? 0 : 1;
  } catch (const std::exception& error) {
    std::cerr << "zoo_run_bundle: error: " << error.what() << "\n";
    return 2;
  }
}
