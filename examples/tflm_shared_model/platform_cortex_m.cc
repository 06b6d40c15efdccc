// The shared-model program on QEMU's mps2-an386: semihosting output and the SysTick
// instruction counter of examples/cortex_m (board.h, startup.cc).
#include <string.h>

#include "board.h"
#include "data.h"
#include "platform.h"

extern "C" uint32_t __data_start__, __data_load__;

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
void Write(const char* text) { board::Write(text); }

// SysTick counts core clocks; under -icount shift=0 QEMU runs a fixed number of
// instructions per clock, measured once on a loop of known length.
uint64_t Instructions() {
  static uint64_t per_tick = 0;
  if (per_tick == 0) {
    board::StartTicks();
    constexpr uint32_t kTurns = 100000;
    uint32_t n = kTurns;
    const uint64_t t0 = board::Ticks();
    __asm__ volatile("1: subs %0, %0, #1\n   bne 1b\n" : "+r"(n) : : "cc");  // 2 instructions a turn
    const uint64_t ticks = board::Ticks() - t0;
    per_tick = (2ull * kTurns + ticks / 2) / ticks;
  }
  return board::Ticks() * per_tick;
}

// The untrained bytes are still in the .data load image in flash.
void RestoreModel() {
  const uintptr_t offset = reinterpret_cast<uintptr_t>(g_model) - reinterpret_cast<uintptr_t>(&__data_start__);
  memcpy(g_model, reinterpret_cast<const unsigned char*>(&__data_load__) + offset, g_model_len);
}

}  // namespace platform
