// Shared pieces of the ops' Prepare: window geometry as TFLite computes it, and
// the weights and bias of a weight op.
#ifndef TFLM_TRAIN_OPS_PREPARE_HELPERS_H_
#define TFLM_TRAIN_OPS_PREPARE_HELPERS_H_

#include "op_unit.h"

namespace tflm_train {

// TFLM keeps strides, dilations and paddings in 16-bit fields: beyond this they wrap there.
constexpr int32_t kMaxWindow = 32767;

// The first activation input and the output: dims, element counts, rows/depth.
Status PrepareInOut(const PrepareContext& ctx, OpRuntime* op, Dims* in, Dims* out);

// Geometry of a convolution or pooling window over NHWC [1, H, W, C] tensors.
Status PrepareWindow(const PrepareContext& ctx, const Dims& in, const Dims& out, tflite::Padding padding,
                     int32_t stride_h, int32_t stride_w, int32_t dilation_h, int32_t dilation_w,
                     int32_t filter_h, int32_t filter_w, kernels::ConvShape* s);

// Weights (input 1, shaped `shape`) and optional bias (input 2, `bias_size` long).
Status PrepareWeights(const PrepareContext& ctx, const int32_t* shape, int rank, int32_t bias_size,
                      OpRuntime* op);

// Shapes equal once leading 1s are dropped: the same elements in the same order.
bool SameElementOrder(const Dims& a, const Dims& b);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_OPS_PREPARE_HELPERS_H_
