// Platform switches of the optimized kernels.
//
// TFLM_TRAIN_VFP_ASM: an Arm core with a single-precision FPU (a Cortex-M4F), GCC
// or Clang. The FC and fused SGD kernels then run inline-assembly inner loops that
// load and store four floats per VLDM/VSTM; the arithmetic is the reference's
// VMULs and VADD/VSUBs in the reference's order, so the bits are the same. (Not
// VMLA/VMLS, Arm's chained multiply-accumulate, which rounds as a separate
// multiply and add would: one instruction for two, but on a Cortex-M4 it takes 3
// cycles where a VMUL and a VADD take 2.) Not when the library is built to fuse
// (MICRO_KERNELS_FMA defines TFLM_TRAIN_NO_VFP_ASM), nor unoptimized (-O0): the
// loops take up to a dozen core registers, more than GCC can allocate without
// optimization (it keeps a frame pointer and reloads each reference operand
// through a register of its own); the C loops there give the same bits.
//
// TFLM_TRAIN_SSE: a host with SSE (every x86-64): the blocked FC loops use
// four-lane vectors, lane j holding the reference's partial sum or element j of
// each group of four (separate multiplies and adds, so the same roundings). GCC
// does not vectorize those blocked loops well itself, while it does the
// reference's simple loops.
#ifndef TFLM_TRAIN_KERNELS_FAST_PLATFORM_H_
#define TFLM_TRAIN_KERNELS_FAST_PLATFORM_H_

#if defined(__GNUC__) && defined(__arm__) && defined(__ARM_FP) && (__ARM_FP & 4) && \
    defined(__OPTIMIZE__) && !defined(TFLM_TRAIN_NO_VFP_ASM)
#define TFLM_TRAIN_VFP_ASM 1
#else
#define TFLM_TRAIN_VFP_ASM 0
#endif

#if (defined(__SSE2__) || defined(_M_X64)) && !TFLM_TRAIN_VFP_ASM
#define TFLM_TRAIN_SSE 1
#include <emmintrin.h>
#else
#define TFLM_TRAIN_SSE 0
#endif

// TFLM_TRAIN_AVX_DISPATCH: an x86 host built by GCC or Clang, which may run AVX
// code compiled for it alone (__attribute__((target("avx")))) after asking the
// CPU (HasAvx). The AVX loops keep the SSE loops' lanes (two rows of four per
// register) and their separate multiplies and adds, so the same bits.
#if TFLM_TRAIN_SSE && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && \
    !defined(TFLM_TRAIN_NO_AVX_DISPATCH)
#define TFLM_TRAIN_AVX_DISPATCH 1
#include <immintrin.h>
namespace tflm_train {
namespace kernels {
namespace fast {
inline bool HasAvx() { return __builtin_cpu_supports("avx"); }
}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
#else
#define TFLM_TRAIN_AVX_DISPATCH 0
#endif

#endif  // TFLM_TRAIN_KERNELS_FAST_PLATFORM_H_
