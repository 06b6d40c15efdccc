// Counts heap allocations in the whole process, to prove the trainer makes none:
// these definitions interpose glibc's allocator (libstdc++'s operator new calls
// malloc too). Include it in exactly one test source (it defines malloc), never
// in one built with AddressSanitizer (which interposes the allocator itself).
#ifndef TFLM_TRAIN_TESTS_HEAP_COUNTER_H_
#define TFLM_TRAIN_TESTS_HEAP_COUNTER_H_

#include <errno.h>
#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TFLM_TRAIN_TESTS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TFLM_TRAIN_TESTS_ASAN 1
#endif

#if defined(__GLIBC__) && !defined(TFLM_TRAIN_TESTS_ASAN)

namespace test {
constexpr bool kCountsHeap = true;
inline volatile unsigned long g_heap_calls = 0;
}  // namespace test

extern "C" void* __libc_malloc(size_t size);
extern "C" void* __libc_calloc(size_t count, size_t size);
extern "C" void* __libc_realloc(void* ptr, size_t size);
extern "C" void* __libc_memalign(size_t alignment, size_t size);
extern "C" void* malloc(size_t size) noexcept {
  test::g_heap_calls = test::g_heap_calls + 1;
  return __libc_malloc(size);
}
extern "C" void* calloc(size_t count, size_t size) noexcept {
  test::g_heap_calls = test::g_heap_calls + 1;
  return __libc_calloc(count, size);
}
extern "C" void* realloc(void* ptr, size_t size) noexcept {
  test::g_heap_calls = test::g_heap_calls + 1;
  return __libc_realloc(ptr, size);
}
extern "C" void* aligned_alloc(size_t alignment, size_t size) noexcept {
  test::g_heap_calls = test::g_heap_calls + 1;
  return __libc_memalign(alignment, size);
}
extern "C" int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  test::g_heap_calls = test::g_heap_calls + 1;
  *out = __libc_memalign(alignment, size);
  return *out != nullptr || size == 0 ? 0 : ENOMEM;
}

#else

namespace test {
constexpr bool kCountsHeap = false;  // no portable interposition here, or ASan owns the allocator
inline volatile unsigned long g_heap_calls = 0;
}  // namespace test

#endif

#endif  // TFLM_TRAIN_TESTS_HEAP_COUNTER_H_
