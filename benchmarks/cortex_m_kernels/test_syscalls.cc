// What the C++ unit test micro_kernels/tests/test_fast_kernels.cc needs to run as
// a firmware under QEMU (its kernels then run with the Cortex-M4F code paths,
// kernels/fast/mul_add.h's VMLA/VMLS and the VLDM/VSTM loops): a heap for its
// std::vector (a static pool behind a wrapped _sbrk, as the example's startup
// allows none) and stdout for its printf (semihosting SYS_WRITE0). main()'s
// return value becomes QEMU's exit status (the example's startup).
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board.h"

namespace {
alignas(8) unsigned char g_pool[2 * 1024 * 1024];
size_t g_used = 0;
}  // namespace

extern "C" {

void* __wrap__sbrk(ptrdiff_t increment) {
  if (increment < 0 || g_used + static_cast<size_t>(increment) > sizeof(g_pool)) {
    board::Write("FAIL: test heap exhausted\n");
    board::Exit(2);
  }
  void* p = g_pool + g_used;
  g_used += static_cast<size_t>(increment);
  return p;
}

int _write(int fd, const char* data, int length) {
  (void)fd;
  char chunk[129];
  int done = 0;
  while (done < length) {
    int n = length - done;
    if (n > 128) n = 128;
    memcpy(chunk, data + done, static_cast<size_t>(n));
    chunk[n] = '\0';
    board::Write(chunk);
    done += n;
  }
  return length;
}

}  // extern "C"
