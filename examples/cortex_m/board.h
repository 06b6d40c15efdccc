// Bare-metal services of the mps2-an386 example: semihosting output and exit,
// and an instruction counter built on SysTick.
#ifndef TFLM_TRAIN_CORTEX_M_BOARD_H_
#define TFLM_TRAIN_CORTEX_M_BOARD_H_

#include <stdint.h>

#include "line.h"

namespace board {

void Write(const char* text);              // semihosting SYS_WRITE0
[[noreturn]] void Exit(int status);        // semihosting SYS_EXIT_EXTENDED
void StartTicks();                         // SysTick: reload 2^24-1, core clock, overflow IRQ
uint64_t Ticks();                          // 64-bit up-counting SysTick ticks since StartTicks
// Instructions per SysTick tick under QEMU's -icount shift=0, measured once (after
// StartTicks) on a loop of known length.
uint32_t InstructionsPerTick();
// Copies an initialized variable's first value back from the .data load image in flash
// (e.g. a model array the program trained in place).
void RestoreInitialValue(void* object, uint32_t size);

}  // namespace board

#endif  // TFLM_TRAIN_CORTEX_M_BOARD_H_
