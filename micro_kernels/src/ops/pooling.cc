// MAX_POOL_2D and AVERAGE_POOL_2D over NHWC windows (Pool2DOptions).
#include "kernels/active.h"
#include "kernels/average_pool.h"
#include "kernels/fast/average_pool.h"
#include "kernels/fast/max_pool.h"
#include "kernels/int8/pooling.h"
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status != Status::kOk) return status;
  const auto options = ctx.Options<tflite::Pool2DOptions>(tflite::BuiltinOptions::Pool2DOptions);
  if (!options.present()) return ctx.Fail("has no Pool2DOptions", Status::kInvalidModel);
  status = ctx.FusedActivation(options.fused_activation_function(), &op->act);
  if (status != Status::kOk) return status;
  op->padding = options.padding();
  status = PrepareWindow(ctx, in, out, options.padding(), options.stride_h(), options.stride_w(), 1, 1,
                         options.filter_height(), options.filter_width(), &op->conv);
  if (status == Status::kOk && op->conv.in_c != op->conv.out_c) {
    return ctx.Fail("must keep the channel count", Status::kInvalidModel);
  }
  return status;
}

uint64_t MaxForward(const OpRuntime& op) {
  kernels::active::MaxPool2D(op.in, op.conv, op.act, op.out);
  return 0;
}

void MaxBackward(const OpRuntime& op) {
  kernels::FusedActGradInPlace(op.act, op.out, op.n_out, op.d_out);
  if (op.d_in != nullptr) kernels::active::MaxPool2DInputGrad(op.in, op.conv, op.d_out, op.d_in);
}

uint64_t AverageForward(const OpRuntime& op) {
  kernels::active::AveragePool2D(op.in, op.conv, op.act, op.out);
  return 0;
}

void AverageBackward(const OpRuntime& op) {
  kernels::FusedActGradInPlace(op.act, op.out, op.n_out, op.d_out);
  if (op.d_in != nullptr) kernels::active::AveragePool2DInputGrad(op.conv, op.d_out, op.d_in);
}

uint64_t MaxForwardInt8(const OpRuntime& op) {
  kernels::MaxPoolInt8(op.conv, Int8In(op), op.quant->act_min, op.quant->act_max, Int8Out(op));
  return 0;
}

uint64_t AverageForwardInt8(const OpRuntime& op) {
  kernels::AveragePoolInt8(op.conv, Int8In(op), op.quant->act_min, op.quant->act_max, Int8Out(op));
  return 0;
}

}  // namespace

// Max pooling's gradient goes to the first maximum in window scan order: backward reads the input.
extern const OpUnit kMaxPool2D = {tflite::BuiltinOperator::MAX_POOL_2D, "MAX_POOL_2D", kReadsInput, Prepare,
                                  MaxForward, MaxBackward, nullptr,
                                  PrepareInt8SameQuantization, MaxForwardInt8};
extern const OpUnit kAveragePool2D = {tflite::BuiltinOperator::AVERAGE_POOL_2D, "AVERAGE_POOL_2D", 0, Prepare,
                                      AverageForward, AverageBackward, nullptr,
                                      PrepareInt8SameQuantization, AverageForwardInt8};

}  // namespace tflm_train
