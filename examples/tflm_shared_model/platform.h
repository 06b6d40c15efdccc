// What the shared-model program needs from where it runs: the host (a test program) or
// the Cortex-M4F in QEMU (the mps2-an386 board of examples/cortex_m). Both also give
// board::Write, which board::Line (examples/cortex_m/line.h) prints with.
#ifndef TFLM_TRAIN_SHARED_MODEL_PLATFORM_H_
#define TFLM_TRAIN_SHARED_MODEL_PLATFORM_H_

#include <stdint.h>

namespace platform {

const char* Name();
// Instructions executed so far: exact on QEMU (SysTick under -icount shift=0), 0 on the host.
uint64_t Instructions();
// Puts the untrained model bytes back into the model array.
void RestoreModel();

}  // namespace platform

#endif  // TFLM_TRAIN_SHARED_MODEL_PLATFORM_H_
