// acc + a * b and acc - a * b with the product rounded before the add, as the
// reference kernels compute them (they are built with -ffp-contract=off).
//
// On an Arm core with a single-precision FPU (a Cortex-M4F) these are one VMLA or
// VMLS instruction: Arm's chained (not fused) multiply-accumulate, which rounds
// the product and then the sum, so the result is the one of a separate VMUL and
// VADD/VSUB, bit for bit (VMLS adds the negated product: w + (-p) == w - p in
// IEEE arithmetic, zeros included). GCC emits neither instruction without
// contraction, and contraction would give fused, differently rounded VFMA, so
// they are written as inline assembly here. Elsewhere (a host build) and when the
// library is built to fuse (MICRO_KERNELS_FMA, which defines
// TFLM_TRAIN_NO_VFP_ASM) they are the plain expressions.
#ifndef TFLM_TRAIN_KERNELS_FAST_MUL_ADD_H_
#define TFLM_TRAIN_KERNELS_FAST_MUL_ADD_H_

#if defined(__GNUC__) && defined(__arm__) && defined(__ARM_FP) && (__ARM_FP & 4) && \
    !defined(TFLM_TRAIN_NO_VFP_ASM)
#define TFLM_TRAIN_VFP_ASM 1
#else
#define TFLM_TRAIN_VFP_ASM 0
#endif

// A host with SSE (every x86-64): the blocked FC loops use four-lane vectors,
// lane j holding the reference's partial sum or element j of each group of four
// (separate multiplies and adds, so the same roundings). GCC does not vectorize
// those blocked loops well itself, while it does the reference's simple loops.
#if (defined(__SSE2__) || defined(_M_X64)) && !TFLM_TRAIN_VFP_ASM
#define TFLM_TRAIN_SSE 1
#include <emmintrin.h>
#else
#define TFLM_TRAIN_SSE 0
#endif

namespace tflm_train {
namespace kernels {
namespace fast {

// acc + a * b, the product rounded first.
inline float MulAdd(float acc, float a, float b) {
#if TFLM_TRAIN_VFP_ASM
  __asm__("vmla.f32 %0, %1, %2" : "+t"(acc) : "t"(a), "t"(b));
  return acc;
#else
  return acc + a * b;
#endif
}

// acc - a * b, the product rounded first.
inline float MulSub(float acc, float a, float b) {
#if TFLM_TRAIN_VFP_ASM
  __asm__("vmls.f32 %0, %1, %2" : "+t"(acc) : "t"(a), "t"(b));
  return acc;
#else
  return acc - a * b;
#endif
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_MUL_ADD_H_
