// Startup for QEMU mps2-an386 (Cortex-M4F): vector table, reset handler (copies
// .data, zeroes .bss, enables the FPU, runs constructors), SysTick overflow counting,
// ARM semihosting output/exit, the instruction calibration, restoring a variable from
// the .data load image, and heap wrappers that fail the run.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board.h"

extern "C" {
extern uint32_t __data_start__, __data_end__, __data_load__, __bss_start__, __bss_end__;
extern uint32_t __stack_top__;
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);
int main(void);
[[noreturn]] void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
}

namespace {

volatile uint32_t* const kSysTickCtrl = reinterpret_cast<volatile uint32_t*>(0xE000E010);
volatile uint32_t* const kSysTickLoad = reinterpret_cast<volatile uint32_t*>(0xE000E014);
volatile uint32_t* const kSysTickVal = reinterpret_cast<volatile uint32_t*>(0xE000E018);
volatile uint32_t* const kIcsr = reinterpret_cast<volatile uint32_t*>(0xE000ED04);
volatile uint32_t* const kCpacr = reinterpret_cast<volatile uint32_t*>(0xE000ED88);
constexpr uint32_t kReload = 0xFFFFFFu;  // the 24-bit counter's full range
volatile uint32_t g_overflows = 0;

int Semihost(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

}  // namespace

extern "C" void SysTick_Handler(void) { g_overflows = g_overflows + 1; }

extern "C" void Default_Handler(void) {
  board::Write("FAIL: unexpected exception\n");
  board::Exit(3);
}

extern "C" [[noreturn]] void Reset_Handler(void) {
  uint32_t* src = &__data_load__;
  for (uint32_t* dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
  *kCpacr |= (0xFu << 20);  // CP10, CP11 full access: the FPU
  __asm__ volatile("dsb\n isb" ::: "memory");
  for (void (**f)(void) = __init_array_start; f < __init_array_end; ++f) (*f)();
  board::Exit(main());
}

using Handler = void (*)(void);
__attribute__((section(".vectors"), used)) const Handler g_vectors[16 + 32] = {
    reinterpret_cast<Handler>(&__stack_top__),
    Reset_Handler,
    Default_Handler,  // NMI
    Default_Handler,  // HardFault
    Default_Handler,  // MemManage
    Default_Handler,  // BusFault
    Default_Handler,  // UsageFault
    nullptr, nullptr, nullptr, nullptr,
    Default_Handler,  // SVCall
    Default_Handler,  // DebugMon
    nullptr,
    Default_Handler,  // PendSV
    SysTick_Handler,
    // External interrupts are never enabled; left zero.
};

namespace board {

void Write(const char* text) { Semihost(0x04, text); }  // SYS_WRITE0

void Exit(int status) {
  // SYS_EXIT_EXTENDED with ADP_Stopped_ApplicationExit: QEMU exits with `status`.
  static uint32_t block[2];
  block[0] = 0x20026;
  block[1] = static_cast<uint32_t>(status);
  Semihost(0x20, block);
  for (;;) {
  }
}

void StartTicks() {
  *kSysTickCtrl = 0;
  *kSysTickLoad = kReload;
  *kSysTickVal = 0;
  g_overflows = 0;
  *kSysTickCtrl = 0x7;  // ENABLE | TICKINT | CLKSOURCE = processor clock
  while (*kSysTickVal == 0) {
  }  // VAL is 0 until the first reload: start from a full count
}

uint64_t Ticks() {
  // Down-counter: ticks = overflows * 2^24 + (reload - VAL). With interrupts masked,
  // a wrap whose interrupt has not run yet shows as SysTick pending (ICSR.PENDSTSET):
  // then count it here and re-read VAL, which is certainly after the wrap.
  __asm__ volatile("cpsid i" ::: "memory");
  uint32_t overflows = g_overflows;
  uint32_t val = *kSysTickVal;
  if (*kIcsr & (1u << 26)) {
    overflows += 1;
    val = *kSysTickVal;
  }
  __asm__ volatile("cpsie i" ::: "memory");
  return (static_cast<uint64_t>(overflows) << 24) + (kReload - val);
}

uint32_t InstructionsPerTick() {
  static uint32_t per_tick = 0;
  if (per_tick == 0) {
    constexpr uint32_t kTurns = 1000000;
    uint32_t n = kTurns;
    const uint64_t t0 = Ticks();
    __asm__ volatile(
        "1: subs %0, %0, #1\n"
        "   bne 1b\n"
        : "+r"(n)
        :
        : "cc");  // 2 instructions a turn
    const uint64_t ticks = Ticks() - t0;
    per_tick = static_cast<uint32_t>((2ull * kTurns + ticks / 2) / ticks);
  }
  return per_tick;
}

void RestoreInitialValue(void* object, uint32_t size) {
  const uintptr_t offset = reinterpret_cast<uintptr_t>(object) - reinterpret_cast<uintptr_t>(&__data_start__);
  memcpy(object, reinterpret_cast<const unsigned char*>(&__data_load__) + offset, size);
}

}  // namespace board

// Heap use fails the run: every allocator entry point (also newlib's reentrant ones)
// is wrapped at link time to one of these.
extern "C" {
[[noreturn]] static void HeapUsed(const char* what) {
  board::Write("FAIL: heap used: ");
  board::Write(what);
  board::Write("\n");
  board::Exit(2);
}
void* __wrap_malloc(size_t) { HeapUsed("malloc"); }
void __wrap_free(void*) { HeapUsed("free"); }
void* __wrap_calloc(size_t, size_t) { HeapUsed("calloc"); }
void* __wrap_realloc(void*, size_t) { HeapUsed("realloc"); }
void* __wrap__malloc_r(void*, size_t) { HeapUsed("_malloc_r"); }
void __wrap__free_r(void*, void*) { HeapUsed("_free_r"); }
void* __wrap__calloc_r(void*, size_t, size_t) { HeapUsed("_calloc_r"); }
void* __wrap__realloc_r(void*, void*, size_t) { HeapUsed("_realloc_r"); }
// No heap at all: a pulled-in sbrk fails the run too.
void* _sbrk(ptrdiff_t) { HeapUsed("_sbrk"); }
}

// newlib's assert() reports through fiprintf (stdio, which may allocate); a failed
// assertion here reports through semihosting and fails the run instead.
extern "C" [[noreturn]] void __assert_func(const char* file, int line, const char* func, const char* expr) {
  board::Line().Str("FAIL: assertion '").Str(expr).Str("' in ").Str(func ? func : "?").Str(" at ")
      .Str(file).Str(":").I(line).Print();
  board::Exit(4);
}
