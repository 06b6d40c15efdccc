// Generated from schema/tflite_subset.fbs by scripts/generate_schema_code.py; do not edit.
#ifndef TFLM_TRAIN_SCHEMA_TFLITE_SUBSET_H_
#define TFLM_TRAIN_SCHEMA_TFLITE_SUBSET_H_

#include <stdint.h>

#include "flatbuffer_reader.h"

namespace tflm_train::tflite {

constexpr const char kFileIdentifier[] = "TFL3";

enum class TensorType : int8_t {
  FLOAT32 = 0,
  INT32 = 2,
  UINT8 = 3,
  INT64 = 4,
  INT16 = 7,
  INT8 = 9,
};

enum class BuiltinOperator : int32_t {
  ADD = 0,
  AVERAGE_POOL_2D = 1,
  CONV_2D = 3,
  DEPTHWISE_CONV_2D = 4,
  DEQUANTIZE = 6,
  FULLY_CONNECTED = 9,
  LOGISTIC = 14,
  MAX_POOL_2D = 17,
  MUL = 18,
  RELU = 19,
  RELU6 = 21,
  RESHAPE = 22,
  SOFTMAX = 25,
  TANH = 28,
  PAD = 34,
  MEAN = 40,
  SUB = 41,
  SQUEEZE = 43,
  EXPAND_DIMS = 70,
  QUANTIZE = 114,
};

enum class BuiltinOptions : uint8_t {
  NONE = 0,
  Conv2DOptions = 1,
  DepthwiseConv2DOptions = 2,
  Pool2DOptions = 5,
  FullyConnectedOptions = 8,
  SoftmaxOptions = 9,
  AddOptions = 11,
  ReshapeOptions = 17,
  MulOptions = 21,
  PadOptions = 22,
  ReducerOptions = 27,
  SubOptions = 28,
  SqueezeOptions = 30,
  ExpandDimsOptions = 52,
};

enum class Padding : int8_t {
  SAME = 0,
  VALID = 1,
};

enum class ActivationFunctionType : int8_t {
  NONE = 0,
  RELU = 1,
  RELU_N1_TO_1 = 2,
  RELU6 = 3,
  TANH = 4,
  SIGN_BIT = 5,
};

class Opaque;
class Conv2DOptions;
class DepthwiseConv2DOptions;
class FullyConnectedOptions;
class Pool2DOptions;
class AddOptions;
class SubOptions;
class MulOptions;
class SoftmaxOptions;
class ReducerOptions;
class QuantizationParameters;
class Tensor;
class Operator;
class OperatorCode;
class SubGraph;
class Buffer;
class Metadata;
class Model;

class Opaque {
 public:
  Opaque() = default;
  explicit Opaque(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
 private:
  fb::Table t_;
};

class Conv2DOptions {
 public:
  Conv2DOptions() = default;
  explicit Conv2DOptions(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  Padding padding() const { return static_cast<Padding>(t_.Get<int8_t>(0, static_cast<int8_t>(0))); }
  int32_t stride_w() const { return t_.Get<int32_t>(1, 0); }
  int32_t stride_h() const { return t_.Get<int32_t>(2, 0); }
  ActivationFunctionType fused_activation_function() const { return static_cast<ActivationFunctionType>(t_.Get<int8_t>(3, static_cast<int8_t>(0))); }
  int32_t dilation_w_factor() const { return t_.Get<int32_t>(4, 1); }
  int32_t dilation_h_factor() const { return t_.Get<int32_t>(5, 1); }
 private:
  fb::Table t_;
};

class DepthwiseConv2DOptions {
 public:
  DepthwiseConv2DOptions() = default;
  explicit DepthwiseConv2DOptions(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  Padding padding() const { return static_cast<Padding>(t_.Get<int8_t>(0, static_cast<int8_t>(0))); }
  int32_t stride_w() const { return t_.Get<int32_t>(1, 0); }
  int32_t stride_h() const { return t_.Get<int32_t>(2, 0); }
  int32_t depth_multiplier() const { return t_.Get<int32_t>(3, 0); }
  ActivationFunctionType fused_activation_function() const { return static_cast<ActivationFunctionType>(t_.Get<int8_t>(4, static_cast<int8_t>(0))); }
  int32_t dilation_w_factor() const { return t_.Get<int32_t>(5, 1); }
  int32_t dilation_h_factor() const { return t_.Get<int32_t>(6, 1); }
 private:
  fb::Table t_;
};

class FullyConnectedOptions {
 public:
  FullyConnectedOptions() = default;
  explicit FullyConnectedOptions(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  ActivationFunctionType fused_activation_function() const { return static_cast<ActivationFunctionType>(t_.Get<int8_t>(0, static_cast<int8_t>(0))); }
  int8_t weights_format() const { return t_.Get<int8_t>(1, 0); }
  bool keep_num_dims() const { return t_.Get<uint8_t>(2, 0) != 0; }
 private:
  fb::Table t_;
};

class Pool2DOptions {
 public:
  Pool2DOptions() = default;
  explicit Pool2DOptions(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  Padding padding() const { return static_cast<Padding>(t_.Get<int8_t>(0, static_cast<int8_t>(0))); }
  int32_t stride_w() const { return t_.Get<int32_t>(1, 0); }
  int32_t stride_h() const { return t_.Get<int32_t>(2, 0); }
  int32_t filter_width() const { return t_.Get<int32_t>(3, 0); }
  int32_t filter_height() const { return t_.Get<int32_t>(4, 0); }
  ActivationFunctionType fused_activation_function() const { return static_cast<ActivationFunctionType>(t_.Get<int8_t>(5, static_cast<int8_t>(0))); }
 private:
  fb::Table t_;
};

class AddOptions {
 public:
  AddOptions() = default;
  explicit AddOptions(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  ActivationFunctionType fused_activation_function() const { return static_cast<ActivationFunctionType>(t_.Get<int8_t>(0, static_cast<int8_t>(0))); }
 private:
  fb::Table t_;
};

class SubOptions {
 public:
  SubOptions() = default;
  explicit SubOptions(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  ActivationFunctionType fused_activation_function() const { return static_cast<ActivationFunctionType>(t_.Get<int8_t>(0, static_cast<int8_t>(0))); }
 private:
  fb::Table t_;
};

class MulOptions {
 public:
  MulOptions() = default;
  explicit MulOptions(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  ActivationFunctionType fused_activation_function() const { return static_cast<ActivationFunctionType>(t_.Get<int8_t>(0, static_cast<int8_t>(0))); }
 private:
  fb::Table t_;
};

class SoftmaxOptions {
 public:
  SoftmaxOptions() = default;
  explicit SoftmaxOptions(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  float beta() const { return t_.Get<float>(0, 0); }
 private:
  fb::Table t_;
};

class ReducerOptions {
 public:
  ReducerOptions() = default;
  explicit ReducerOptions(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  bool keep_dims() const { return t_.Get<uint8_t>(0, 0) != 0; }
 private:
  fb::Table t_;
};

class QuantizationParameters {
 public:
  QuantizationParameters() = default;
  explicit QuantizationParameters(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  fb::Vector min() const { return t_.GetVector(0, 4); }
  fb::Vector max() const { return t_.GetVector(1, 4); }
  fb::Vector scale() const { return t_.GetVector(2, 4); }
  fb::Vector zero_point() const { return t_.GetVector(3, 8); }
  uint8_t details_type() const { return t_.Get<uint8_t>(4, 0); }
  Opaque details() const { return Opaque(t_.GetTable(5)); }
  int32_t quantized_dimension() const { return t_.Get<int32_t>(6, 0); }
 private:
  fb::Table t_;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  fb::Vector shape() const { return t_.GetVector(0, 4); }
  TensorType type() const { return static_cast<TensorType>(t_.Get<int8_t>(1, static_cast<int8_t>(0))); }
  uint32_t buffer() const { return t_.Get<uint32_t>(2, 0); }
  const char* name(uint32_t* length = nullptr) const { return t_.GetString(3, length); }
  QuantizationParameters quantization() const { return QuantizationParameters(t_.GetTable(4)); }
  bool is_variable() const { return t_.Get<uint8_t>(5, 0) != 0; }
  Opaque sparsity() const { return Opaque(t_.GetTable(6)); }
  fb::Vector shape_signature() const { return t_.GetVector(7, 4); }
  bool has_rank() const { return t_.Get<uint8_t>(8, 0) != 0; }
  fb::Vector variant_tensors() const { return t_.GetVector(9, 4); }
  Opaque variant_tensors(uint32_t i) const { return Opaque(variant_tensors().TableAt(i)); }
  uint32_t external_buffer() const { return t_.Get<uint32_t>(10, 0); }
 private:
  fb::Table t_;
};

class Operator {
 public:
  Operator() = default;
  explicit Operator(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  uint32_t opcode_index() const { return t_.Get<uint32_t>(0, 0); }
  fb::Vector inputs() const { return t_.GetVector(1, 4); }
  fb::Vector outputs() const { return t_.GetVector(2, 4); }
  BuiltinOptions builtin_options_type() const { return static_cast<BuiltinOptions>(t_.Get<uint8_t>(3, static_cast<uint8_t>(0))); }
  Opaque builtin_options() const { return Opaque(t_.GetTable(4)); }
  fb::Vector custom_options() const { return t_.GetVector(5, 1); }
  int8_t custom_options_format() const { return t_.Get<int8_t>(6, 0); }
  fb::Vector mutating_variable_inputs() const { return t_.GetVector(7, 1); }
  fb::Vector intermediates() const { return t_.GetVector(8, 4); }
  uint64_t large_custom_options_offset() const { return t_.Get<uint64_t>(9, 0); }
  uint64_t large_custom_options_size() const { return t_.Get<uint64_t>(10, 0); }
  uint8_t builtin_options_2_type() const { return t_.Get<uint8_t>(11, 0); }
  Opaque builtin_options_2() const { return Opaque(t_.GetTable(12)); }
  int32_t debug_metadata_index() const { return t_.Get<int32_t>(13, -1); }
 private:
  fb::Table t_;
};

class OperatorCode {
 public:
  OperatorCode() = default;
  explicit OperatorCode(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  int8_t deprecated_builtin_code() const { return t_.Get<int8_t>(0, 0); }
  const char* custom_code(uint32_t* length = nullptr) const { return t_.GetString(1, length); }
  int32_t version() const { return t_.Get<int32_t>(2, 1); }
  BuiltinOperator builtin_code() const { return static_cast<BuiltinOperator>(t_.Get<int32_t>(3, static_cast<int32_t>(0))); }
 private:
  fb::Table t_;
};

class SubGraph {
 public:
  SubGraph() = default;
  explicit SubGraph(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  fb::Vector tensors() const { return t_.GetVector(0, 4); }
  Tensor tensors(uint32_t i) const { return Tensor(tensors().TableAt(i)); }
  fb::Vector inputs() const { return t_.GetVector(1, 4); }
  fb::Vector outputs() const { return t_.GetVector(2, 4); }
  fb::Vector operators() const { return t_.GetVector(3, 4); }
  Operator operators(uint32_t i) const { return Operator(operators().TableAt(i)); }
  const char* name(uint32_t* length = nullptr) const { return t_.GetString(4, length); }
  int32_t debug_metadata_index() const { return t_.Get<int32_t>(5, -1); }
 private:
  fb::Table t_;
};

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  fb::Vector data() const { return t_.GetVector(0, 1); }
  uint64_t offset() const { return t_.Get<uint64_t>(1, 0); }
  uint64_t size() const { return t_.Get<uint64_t>(2, 0); }
 private:
  fb::Table t_;
};

class Metadata {
 public:
  Metadata() = default;
  explicit Metadata(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  const char* name(uint32_t* length = nullptr) const { return t_.GetString(0, length); }
  uint32_t buffer() const { return t_.Get<uint32_t>(1, 0); }
 private:
  fb::Table t_;
};

class Model {
 public:
  Model() = default;
  explicit Model(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  uint32_t version() const { return t_.Get<uint32_t>(0, 0); }
  fb::Vector operator_codes() const { return t_.GetVector(1, 4); }
  OperatorCode operator_codes(uint32_t i) const { return OperatorCode(operator_codes().TableAt(i)); }
  fb::Vector subgraphs() const { return t_.GetVector(2, 4); }
  SubGraph subgraphs(uint32_t i) const { return SubGraph(subgraphs().TableAt(i)); }
  const char* description(uint32_t* length = nullptr) const { return t_.GetString(3, length); }
  fb::Vector buffers() const { return t_.GetVector(4, 4); }
  Buffer buffers(uint32_t i) const { return Buffer(buffers().TableAt(i)); }
  fb::Vector metadata_buffer() const { return t_.GetVector(5, 4); }
  fb::Vector metadata() const { return t_.GetVector(6, 4); }
  Metadata metadata(uint32_t i) const { return Metadata(metadata().TableAt(i)); }
  fb::Vector signature_defs() const { return t_.GetVector(7, 4); }
  Opaque signature_defs(uint32_t i) const { return Opaque(signature_defs().TableAt(i)); }
  fb::Vector external_buffer_groups() const { return t_.GetVector(8, 4); }
  Opaque external_buffer_groups(uint32_t i) const { return Opaque(external_buffer_groups().TableAt(i)); }
  fb::Vector external_buffers() const { return t_.GetVector(9, 4); }
  Opaque external_buffers(uint32_t i) const { return Opaque(external_buffers().TableAt(i)); }
 private:
  fb::Table t_;
};

// Each Verify reads every declared field, so a field that leaves the buffer
// marks the Reader failed wherever it is; tables and vectors of tables recurse.
inline void Verify(const Opaque& x);
inline void Verify(const Conv2DOptions& x);
inline void Verify(const DepthwiseConv2DOptions& x);
inline void Verify(const FullyConnectedOptions& x);
inline void Verify(const Pool2DOptions& x);
inline void Verify(const AddOptions& x);
inline void Verify(const SubOptions& x);
inline void Verify(const MulOptions& x);
inline void Verify(const SoftmaxOptions& x);
inline void Verify(const ReducerOptions& x);
inline void Verify(const QuantizationParameters& x);
inline void Verify(const Tensor& x);
inline void Verify(const Operator& x);
inline void Verify(const OperatorCode& x);
inline void Verify(const SubGraph& x);
inline void Verify(const Buffer& x);
inline void Verify(const Metadata& x);
inline void Verify(const Model& x);

inline void Verify(const Opaque& x) {
  (void)x;
}

inline void Verify(const Conv2DOptions& x) {
  if (!x.present()) return;
  (void)x.padding();
  (void)x.stride_w();
  (void)x.stride_h();
  (void)x.fused_activation_function();
  (void)x.dilation_w_factor();
  (void)x.dilation_h_factor();
}

inline void Verify(const DepthwiseConv2DOptions& x) {
  if (!x.present()) return;
  (void)x.padding();
  (void)x.stride_w();
  (void)x.stride_h();
  (void)x.depth_multiplier();
  (void)x.fused_activation_function();
  (void)x.dilation_w_factor();
  (void)x.dilation_h_factor();
}

inline void Verify(const FullyConnectedOptions& x) {
  if (!x.present()) return;
  (void)x.fused_activation_function();
  (void)x.weights_format();
  (void)x.keep_num_dims();
}

inline void Verify(const Pool2DOptions& x) {
  if (!x.present()) return;
  (void)x.padding();
  (void)x.stride_w();
  (void)x.stride_h();
  (void)x.filter_width();
  (void)x.filter_height();
  (void)x.fused_activation_function();
}

inline void Verify(const AddOptions& x) {
  if (!x.present()) return;
  (void)x.fused_activation_function();
}

inline void Verify(const SubOptions& x) {
  if (!x.present()) return;
  (void)x.fused_activation_function();
}

inline void Verify(const MulOptions& x) {
  if (!x.present()) return;
  (void)x.fused_activation_function();
}

inline void Verify(const SoftmaxOptions& x) {
  if (!x.present()) return;
  (void)x.beta();
}

inline void Verify(const ReducerOptions& x) {
  if (!x.present()) return;
  (void)x.keep_dims();
}

inline void Verify(const QuantizationParameters& x) {
  if (!x.present()) return;
  (void)x.min();
  (void)x.max();
  (void)x.scale();
  (void)x.zero_point();
  (void)x.details_type();
  Verify(x.details());
  (void)x.quantized_dimension();
}

inline void Verify(const Tensor& x) {
  if (!x.present()) return;
  (void)x.shape();
  (void)x.type();
  (void)x.buffer();
  (void)x.name();
  Verify(x.quantization());
  (void)x.is_variable();
  Verify(x.sparsity());
  (void)x.shape_signature();
  (void)x.has_rank();
  for (uint32_t i = 0; i < x.variant_tensors().size(); ++i) Verify(x.variant_tensors(i));
  (void)x.external_buffer();
}

inline void Verify(const Operator& x) {
  if (!x.present()) return;
  (void)x.opcode_index();
  (void)x.inputs();
  (void)x.outputs();
  (void)x.builtin_options_type();
  Verify(x.builtin_options());
  (void)x.custom_options();
  (void)x.custom_options_format();
  (void)x.mutating_variable_inputs();
  (void)x.intermediates();
  (void)x.large_custom_options_offset();
  (void)x.large_custom_options_size();
  (void)x.builtin_options_2_type();
  Verify(x.builtin_options_2());
  (void)x.debug_metadata_index();
}

inline void Verify(const OperatorCode& x) {
  if (!x.present()) return;
  (void)x.deprecated_builtin_code();
  (void)x.custom_code();
  (void)x.version();
  (void)x.builtin_code();
}

inline void Verify(const SubGraph& x) {
  if (!x.present()) return;
  for (uint32_t i = 0; i < x.tensors().size(); ++i) Verify(x.tensors(i));
  (void)x.inputs();
  (void)x.outputs();
  for (uint32_t i = 0; i < x.operators().size(); ++i) Verify(x.operators(i));
  (void)x.name();
  (void)x.debug_metadata_index();
}

inline void Verify(const Buffer& x) {
  if (!x.present()) return;
  (void)x.data();
  (void)x.offset();
  (void)x.size();
}

inline void Verify(const Metadata& x) {
  if (!x.present()) return;
  (void)x.name();
  (void)x.buffer();
}

inline void Verify(const Model& x) {
  if (!x.present()) return;
  (void)x.version();
  for (uint32_t i = 0; i < x.operator_codes().size(); ++i) Verify(x.operator_codes(i));
  for (uint32_t i = 0; i < x.subgraphs().size(); ++i) Verify(x.subgraphs(i));
  (void)x.description();
  for (uint32_t i = 0; i < x.buffers().size(); ++i) Verify(x.buffers(i));
  (void)x.metadata_buffer();
  for (uint32_t i = 0; i < x.metadata().size(); ++i) Verify(x.metadata(i));
  for (uint32_t i = 0; i < x.signature_defs().size(); ++i) Verify(x.signature_defs(i));
  for (uint32_t i = 0; i < x.external_buffer_groups().size(); ++i) Verify(x.external_buffer_groups(i));
  for (uint32_t i = 0; i < x.external_buffers().size(); ++i) Verify(x.external_buffers(i));
}

inline Model GetModel(const fb::Reader& reader) { return Model(reader.Root()); }

}  // namespace tflm_train::tflite

#endif  // TFLM_TRAIN_SCHEMA_TFLITE_SUBSET_H_
