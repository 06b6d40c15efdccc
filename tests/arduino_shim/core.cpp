// The tests' Arduino core (see Arduino.h): Serial over semihosting, time from SysTick,
// pin stubs, and main(), which drives setup() and loop(). Startup code, the linker
// script and board::Write/Exit/Ticks come from examples/cortex_m (startup.cc, compiled
// into this core's archive next to this file).
#include "Arduino.h"

#include "board.h"

#if defined(ARDUINO_ARCH_MBED)
#include "Wire.h"
arduino::MbedI2C Wire;
arduino::MbedI2C Wire1;
#endif

namespace {

// ARM semihosting operations (the ARM "Semihosting for AArch32 and AArch64" spec).
constexpr int kSysOpen = 0x01;
constexpr int kSysRead = 0x06;
constexpr int kSysGetCmdline = 0x15;
constexpr int kOpenReadBinary = 1;  // fopen mode "rb"

constexpr unsigned long kTicksPerMicrosecond = ARDUINO_SHIM_CLOCK_HZ / 1000000UL;
constexpr unsigned long kWaitLimitMs = 60000;  // delay() without output: the sketch stopped

char g_cmdline[512];
const char* g_args[16];
int g_num_args = 0;

uint64_t g_virtual_us = 0;      // time spent in delay(): simulated, not waited
unsigned long g_waited_ms = 0;  // delay() since the last output
uint32_t g_activity = 0;        // bytes written or read; loop() calls without any are idle

char g_out[256];
size_t g_out_len = 0;

int g_in_handle = -2;  // -2: not opened yet, -1: no input
uint8_t g_in[128];
size_t g_in_len = 0, g_in_pos = 0;

void ReadArgs() {
  struct {
    char* buffer;
    int size;
  } block = {g_cmdline, static_cast<int>(sizeof(g_cmdline)) - 1};
  if (arduino_shim::Semihost(kSysGetCmdline, &block) != 0) return;
  g_cmdline[block.size < 0 ? 0 : block.size] = '\0';
  char* p = g_cmdline;
  while (*p && g_num_args < static_cast<int>(sizeof(g_args) / sizeof(g_args[0]))) {
    while (*p == ' ') *p++ = '\0';
    if (!*p) break;
    g_args[g_num_args++] = p;
    while (*p && *p != ' ') ++p;
  }
}

long ArgNumber(const char* key, long fallback) {
  const char* v = arduino_shim::Arg(key, nullptr);
  return v ? strtol(v, nullptr, 10) : fallback;
}

void FlushOut() {
  if (g_out_len == 0) return;
  g_out[g_out_len] = '\0';
  board::Write(g_out);
  g_out_len = 0;
}

bool FillInput() {
  if (g_in_pos < g_in_len) return true;
  if (g_in_handle == -2) {
    g_in_handle = -1;
    const char* path = arduino_shim::Arg("input", nullptr);
    if (path) {
      struct {
        const char* name;
        int mode;
        int length;
      } open_block = {path, kOpenReadBinary, static_cast<int>(strlen(path))};
      g_in_handle = arduino_shim::Semihost(kSysOpen, &open_block);
    }
  }
  if (g_in_handle < 0) return false;
  struct {
    int handle;
    uint8_t* buffer;
    int size;
  } read_block = {g_in_handle, g_in, static_cast<int>(sizeof(g_in))};
  const int not_read = arduino_shim::Semihost(kSysRead, &read_block);  // bytes NOT read
  g_in_len = (not_read >= 0 && not_read <= static_cast<int>(sizeof(g_in))) ? sizeof(g_in) - not_read : 0;
  g_in_pos = 0;
  return g_in_len > 0;
}

}  // namespace

namespace arduino_shim {

int Semihost(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

const char* Arg(const char* key, const char* fallback) {
  const size_t n = strlen(key);
  for (int i = 0; i < g_num_args; ++i) {
    if (strncmp(g_args[i], key, n) == 0 && g_args[i][n] == '=') return g_args[i] + n + 1;
  }
  return fallback;
}

}  // namespace arduino_shim

ShimSerial Serial;

size_t Print::write(const uint8_t* data, size_t n) {
  size_t written = 0;
  while (n--) written += write(*data++);
  return written;
}

size_t Print::PrintUnsigned(unsigned long long v, int base) {
  if (base < 2 || base > 16) base = 10;
  char digits[66];
  int i = 0;
  do {
    digits[i++] = "0123456789ABCDEF"[v % base];
    v /= base;
  } while (v);
  size_t written = 0;
  while (i) written += write(static_cast<uint8_t>(digits[--i]));
  return written;
}

size_t Print::PrintSigned(long long v, int base) {
  if (base == DEC && v < 0) {
    return write(static_cast<uint8_t>('-')) + PrintUnsigned(0ULL - static_cast<unsigned long long>(v), base);
  }
  // Other bases print the two's complement bits, as Arduino does.
  return PrintUnsigned(static_cast<unsigned long>(v), base);
}

size_t Print::PrintFloat(double v, int digits) {
  // NaN and Inf told from the bits: the core is built with -Ofast for the "nrf52840"
  // test board, under which isnan() and isinf() fold to false.
  uint64_t bits;
  memcpy(&bits, &v, sizeof(bits));
  if ((bits & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL) {
    if (bits & 0x000fffffffffffffULL) return write("nan");
    return write(bits >> 63 ? "-inf" : "inf");
  }
  size_t written = 0;
  if (v < 0) {
    written += write(static_cast<uint8_t>('-'));
    v = -v;
  }
  if (digits < 0) digits = 0;
  double rounding = 0.5;
  for (int i = 0; i < digits; ++i) rounding /= 10.0;
  v += rounding;
  if (v >= 1e19) return written + write("ovf");
  const unsigned long long whole = static_cast<unsigned long long>(v);
  written += PrintUnsigned(whole, DEC);
  double rest = v - static_cast<double>(whole);
  if (digits > 0) written += write(static_cast<uint8_t>('.'));
  for (int i = 0; i < digits; ++i) {
    rest *= 10.0;
    int d = static_cast<int>(rest);
    if (d > 9) d = 9;
    written += write(static_cast<uint8_t>('0' + d));
    rest -= d;
  }
  return written;
}

size_t ShimSerial::write(uint8_t c) {
  ++g_activity;
  g_waited_ms = 0;
  g_out[g_out_len++] = static_cast<char>(c);
  if (c == '\n' || g_out_len == sizeof(g_out) - 1) FlushOut();
  return 1;
}

size_t ShimSerial::write(const uint8_t* data, size_t n) {
  for (size_t i = 0; i < n; ++i) write(data[i]);
  return n;
}

void ShimSerial::flush() { FlushOut(); }

int ShimSerial::available() { return FillInput() ? static_cast<int>(g_in_len - g_in_pos) : 0; }

int ShimSerial::read() {
  if (!FillInput()) return -1;
  ++g_activity;
  return g_in[g_in_pos++];
}

int ShimSerial::peek() { return FillInput() ? g_in[g_in_pos] : -1; }

unsigned long micros() {
  return static_cast<unsigned long>(board::Ticks() / kTicksPerMicrosecond + g_virtual_us);
}

unsigned long millis() { return static_cast<unsigned long>((board::Ticks() / kTicksPerMicrosecond + g_virtual_us) / 1000); }

void delay(unsigned long ms) {
  g_virtual_us += static_cast<uint64_t>(ms) * 1000;
  g_waited_ms += ms;
  if (g_waited_ms > kWaitLimitMs) {
    FlushOut();
    board::Write("[arduino_shim] the sketch waits in delay() without printing: stopped\n");
    board::Exit(3);
  }
}

void delayMicroseconds(unsigned int us) { g_virtual_us += us; }

void pinMode(pin_size_t, int) {}
void digitalWrite(pin_size_t, int) {}
int digitalRead(pin_size_t) { return LOW; }
int analogRead(pin_size_t) { return 0; }
void attachInterrupt(int, void (*)(void), int) {}
void detachInterrupt(int) {}
#if defined(ARDUINO_ARCH_MBED)
void pinMode(PinName, int) {}
void digitalWrite(PinName, int) {}
int digitalRead(PinName) { return LOW; }
#endif

// What the C and C++ runtimes expect from a core: the handle of the program that
// registers its static destructors (normally in crtbegin.o, which -nostartfiles leaves
// out), and the system calls of abort() (TFLM aborts when it halts): the run ends with
// status 1.
extern "C" {
void* __dso_handle = &__dso_handle;
void _exit(int status) { board::Exit(status == 0 ? 1 : status); }
int _kill(int, int) { return -1; }
int _getpid(void) { return 1; }
}

int main() {
  board::StartTicks();
  ReadArgs();
  const long max_loops = ArgNumber("loops", 1000);
  const long idle_limit = ArgNumber("idle", 3);
  setup();
  long idle = 0;
  for (long n = 0; n < max_loops && idle < idle_limit; ++n) {
    const uint32_t before = g_activity;
    loop();
    idle = g_activity == before ? idle + 1 : 0;
  }
  FlushOut();
  return 0;
}
