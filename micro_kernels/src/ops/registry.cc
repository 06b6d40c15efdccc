// The table of operators the trainer runs: one unit per TFLite builtin operator.
#include "op_unit.h"

namespace tflm_train {

extern const OpUnit kAdd, kAveragePool2D, kConv2D, kDepthwiseConv2D, kDequantize, kExpandDims, kFullyConnected,
    kLogistic, kMaxPool2D, kMean, kMul, kPad, kQuantize, kRelu, kRelu6, kReshape, kSoftmax, kSqueeze, kSub, kTanh;

namespace {

const OpUnit* const kUnits[] = {
    &kAdd,  &kAveragePool2D, &kConv2D, &kDepthwiseConv2D, &kDequantize, &kExpandDims, &kFullyConnected,
    &kLogistic, &kMaxPool2D, &kMean, &kMul, &kPad, &kQuantize, &kRelu, &kRelu6, &kReshape, &kSoftmax, &kSqueeze, &kSub,
    &kTanh,
};

}  // namespace

const OpUnit* FindOpUnit(int32_t builtin_code) {
  for (const OpUnit* unit : kUnits) {
    if (static_cast<int32_t>(unit->code) == builtin_code) return unit;
  }
  return nullptr;
}

int32_t PrepareContext::Input(uint32_t i) const {
  const fb::Vector inputs = op.inputs();
  if (i >= inputs.size()) return -1;
  const int32_t t = inputs.Get<int32_t>(i);
  return t >= 0 && static_cast<uint32_t>(t) < view.num_tensors() ? t : -1;
}

int32_t PrepareContext::Output(uint32_t i) const {
  const fb::Vector outputs = op.outputs();
  if (i >= outputs.size()) return -1;
  const int32_t t = outputs.Get<int32_t>(i);
  return t >= 0 && static_cast<uint32_t>(t) < view.num_tensors() ? t : -1;
}

Status PrepareContext::Fail(const char* what, Status status) const {
  const OpUnit* unit = FindOpUnit(view.BuiltinCode(op));
  why->Add("operator ").Add(index).Add(" (").Add(unit != nullptr ? unit->name : "?").Add(") ").Add(what);
  return status;
}

Status PrepareContext::FusedActivation(tflite::ActivationFunctionType fused, kernels::FusedAct* act) const {
  switch (fused) {
    case tflite::ActivationFunctionType::NONE: *act = kernels::FusedAct::kNone; return Status::kOk;
    case tflite::ActivationFunctionType::RELU: *act = kernels::FusedAct::kRelu; return Status::kOk;
    case tflite::ActivationFunctionType::RELU6: *act = kernels::FusedAct::kRelu6; return Status::kOk;
    default: return Fail("has a fused activation other than NONE, RELU or RELU6");
  }
}

}  // namespace tflm_train
