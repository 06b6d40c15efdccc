// Bare-metal services of the mps2-an386 example: semihosting output and exit,
// and an instruction counter built on SysTick.
#ifndef TFLM_TRAIN_CORTEX_M_BOARD_H_
#define TFLM_TRAIN_CORTEX_M_BOARD_H_

#include <stdint.h>

namespace board {

void Write(const char* text);              // semihosting SYS_WRITE0
[[noreturn]] void Exit(int status);        // semihosting SYS_EXIT_EXTENDED
void StartTicks();                         // SysTick: reload 2^24-1, core clock, overflow IRQ
uint64_t Ticks();                          // 64-bit up-counting SysTick ticks since StartTicks

// Small formatting helpers writing to a fixed buffer (no printf: no heap, no stdio).
class Line {
 public:
  Line& Str(const char* s);
  Line& U(uint64_t v);
  Line& I(int64_t v);
  Line& Hex(uint32_t v);                   // 8 hex digits
  Line& Fixed(int64_t milli);              // milli-units as d.ddd
  void Print();                            // appends "\n" and writes
 private:
  char buf_[256];
  int n_ = 0;
};

}  // namespace board

#endif  // TFLM_TRAIN_CORTEX_M_BOARD_H_
