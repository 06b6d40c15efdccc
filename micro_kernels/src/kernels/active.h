// Which kernels the trainer runs: kernels::active is kernels::fast (kernels/fast/,
// the optimized kernels) unless the library is built with
// TFLM_TRAIN_REFERENCE_KERNELS defined, when it is kernels itself (the reference
// kernels, the spec). One source tree thus builds either, for benchmarks and for
// checking the optimized kernels against the spec.
#ifndef TFLM_TRAIN_KERNELS_ACTIVE_H_
#define TFLM_TRAIN_KERNELS_ACTIVE_H_

namespace tflm_train {
namespace kernels {
namespace fast {}

#ifdef TFLM_TRAIN_REFERENCE_KERNELS
namespace active = ::tflm_train::kernels;
#else
namespace active = ::tflm_train::kernels::fast;
#endif

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_ACTIVE_H_
