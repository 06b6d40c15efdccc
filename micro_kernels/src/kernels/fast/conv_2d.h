// CONV_2D, optimized: the functions of kernels/conv_2d.h (the spec) with the
// same signatures. Every sum keeps the reference's order (taps row by row, input
// channels innermost; gradients over the kept elements in ascending order), so
// results are bit-identical; what changes is that four output channels and two
// pixels share each load, a filter row's taps run as one contiguous span, the
// window bounds are found once per pixel, the kept list is walked without
// division, and zero errors are skipped (exact: kernels/fast/zero.h). For the
// weight gradient alone (a first layer), and on a Cortex-M4F for both gradients
// of nine-tap windows, each pixel's taps are read once for all its kept
// channels; each gradient element still gets its additions in pixel order. Over
// a sparse kept list those first-layer cases walk each row's run of full windows
// in one assembly loop (the list decoded in it, per pixel its taps loaded once);
// elsewhere on a Cortex-M4F a pixel whose rows are spans of a multiple of 8
// floats lists its kept channels and does them eight taps at a time, the taps
// (and dx elements) loaded once per chunk for all of them.
#ifndef TFLM_TRAIN_KERNELS_FAST_CONV_2D_H_
#define TFLM_TRAIN_KERNELS_FAST_CONV_2D_H_

#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/conv_2d.h"
#include "kernels/conv_shape.h"

namespace tflm_train {
namespace kernels {
namespace fast {

void Conv2D(const float* x, const ConvShape& s, const float* w, const float* bias, FusedAct act, float* y);

void Conv2DWeightAndInputGrad(const float* x, const float* w, const ConvShape& s, const float* delta,
                              const int32_t* kept, int32_t num_kept, float* grad_w, float* dx);

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_CONV_2D_H_
