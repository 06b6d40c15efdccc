// RELU, RELU6, LOGISTIC and TANH: elementwise, shape kept; backward reads the output.
#include "kernels/activations.h"
#include "kernels/logistic.h"
#include "kernels/tanh.h"
#include "ops/prepare_helpers.h"

namespace tflm_train {
namespace {

Status PrepareElementwise(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status == Status::kOk && !SameElementOrder(in, out)) {
    return ctx.Fail("must keep its input's shape", Status::kInvalidModel);
  }
  return status;
}

Status PrepareRelu(const PrepareContext& ctx, OpRuntime* op) {
  op->act = kernels::FusedAct::kRelu;
  return PrepareElementwise(ctx, op);
}

Status PrepareRelu6(const PrepareContext& ctx, OpRuntime* op) {
  op->act = kernels::FusedAct::kRelu6;
  return PrepareElementwise(ctx, op);
}

uint64_t ForwardRelu(const OpRuntime& op) {  // RELU and RELU6: the activation is op.act
  kernels::FusedActForward(op.act, op.in, op.n_out, op.out);
  return 0;
}

void BackwardRelu(const OpRuntime& op) {
  if (op.d_in != nullptr) kernels::FusedActInputGrad(op.act, op.out, op.d_out, op.n_out, op.d_in);
}

uint64_t ForwardLogistic(const OpRuntime& op) {
  kernels::Logistic(op.in, op.n_out, op.out);
  return 0;
}

void BackwardLogistic(const OpRuntime& op) {
  if (op.d_in != nullptr) kernels::LogisticInputGrad(op.out, op.d_out, op.n_out, op.d_in);
}

uint64_t ForwardTanh(const OpRuntime& op) {
  kernels::Tanh(op.in, op.n_out, op.out);
  return 0;
}

void BackwardTanh(const OpRuntime& op) {
  if (op.d_in != nullptr) kernels::TanhInputGrad(op.out, op.d_out, op.n_out, op.d_in);
}

}  // namespace

extern const OpUnit kRelu = {tflite::BuiltinOperator::RELU, "RELU", kReadsOutput, PrepareRelu, ForwardRelu,
                             BackwardRelu, nullptr, nullptr, nullptr};
extern const OpUnit kRelu6 = {tflite::BuiltinOperator::RELU6, "RELU6", kReadsOutput, PrepareRelu6, ForwardRelu,
                              BackwardRelu, nullptr, nullptr, nullptr};
extern const OpUnit kLogistic = {tflite::BuiltinOperator::LOGISTIC, "LOGISTIC", kReadsOutput, PrepareElementwise,
                                 ForwardLogistic, BackwardLogistic, nullptr, nullptr, nullptr};
extern const OpUnit kTanh = {tflite::BuiltinOperator::TANH, "TANH", kReadsOutput, PrepareElementwise, ForwardTanh,
                             BackwardTanh, nullptr, nullptr, nullptr};

}  // namespace tflm_train
