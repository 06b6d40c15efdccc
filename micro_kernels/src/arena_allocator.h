// Carves the caller's arena into 16-byte aligned blocks. With a null base it
// only measures, so one planning routine both sizes and lays out the arena.
#ifndef TFLM_TRAIN_ARENA_ALLOCATOR_H_
#define TFLM_TRAIN_ARENA_ALLOCATOR_H_

#include <stddef.h>
#include <stdint.h>

namespace tflm_train {

class ArenaAllocator {
 public:
  // `used`: bytes before the first block (a measure that continues another layout).
  ArenaAllocator(uint8_t* base, size_t size, size_t used = 0) : base_(base), size_(size), used_(used) {}

  template <typename T>
  T* Take(size_t count) {
    const size_t start = (used_ + 15u) & ~static_cast<size_t>(15u);
    if (start < used_ || count > (~static_cast<size_t>(0) - start) / sizeof(T)) {
      overflow_ = true;
      return nullptr;
    }
    used_ = start + count * sizeof(T);
    if (base_ == nullptr || used_ > size_) return nullptr;
    return reinterpret_cast<T*>(base_ + start);
  }

  // Rounds the used size up to the next block start, so that sections measured
  // with used() carry their own alignment padding.
  void Align() {
    const size_t start = (used_ + 15u) & ~static_cast<size_t>(15u);
    if (start < used_) overflow_ = true;
    used_ = start;
  }

  size_t used() const { return used_; }
  bool overflow() const { return overflow_; }
  bool measuring() const { return base_ == nullptr; }
  uint8_t* base() const { return base_; }

 private:
  uint8_t* base_;
  size_t size_;
  size_t used_ = 0;
  bool overflow_ = false;
};

}  // namespace tflm_train

#endif  // TFLM_TRAIN_ARENA_ALLOCATOR_H_
