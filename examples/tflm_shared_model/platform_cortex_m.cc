// The shared-model program on QEMU's mps2-an386: semihosting output, the SysTick
// instruction counter and the .data load image of examples/cortex_m (board.h, startup.cc).
#include "board.h"
#include "data.h"
#include "platform.h"

// TFLM's log goes to semihosting.
extern "C" void DebugLog(const char* s) { board::Write(s); }

// TFLM calls abort() on internal errors: end the run as failed rather than pulling in
// newlib's signal machinery (which needs _kill, _getpid and _exit from an OS).
extern "C" [[noreturn]] void abort(void) {
  board::Write("FAIL: abort\n");
  board::Exit(1);
}

namespace platform {

const char* Name() { return "cortex-m4f (qemu mps2-an386)"; }

uint64_t Instructions() {
  // Started and calibrated on the first call, before the counter is read.
  static const uint32_t per_tick = (board::StartTicks(), board::InstructionsPerTick());
  return board::Ticks() * per_tick;
}

void RestoreModel() { board::RestoreInitialValue(g_model, g_model_len); }

}  // namespace platform
