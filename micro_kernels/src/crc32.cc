#include "crc32.h"

namespace tflm_train {
namespace {

// One entry per 4-bit value: 64 bytes of table (flash is precious on a
// microcontroller) for two lookups per byte instead of eight shifts. Each step is a
// single-return constexpr so the table is built at compile time under C++11 too (some
// Arduino cores still compile with gnu++11).
constexpr uint32_t ShiftBit(uint32_t c) { return (c & 1u) != 0 ? (c >> 1) ^ 0xEDB88320u : c >> 1; }
constexpr uint32_t NibbleEntry(uint32_t nibble) { return ShiftBit(ShiftBit(ShiftBit(ShiftBit(nibble)))); }

constexpr uint32_t kNibbleTable[16] = {
    NibbleEntry(0),  NibbleEntry(1),  NibbleEntry(2),  NibbleEntry(3),  NibbleEntry(4),  NibbleEntry(5),
    NibbleEntry(6),  NibbleEntry(7),  NibbleEntry(8),  NibbleEntry(9),  NibbleEntry(10), NibbleEntry(11),
    NibbleEntry(12), NibbleEntry(13), NibbleEntry(14), NibbleEntry(15),
};

}  // namespace

uint32_t Crc32(uint32_t crc, const void* bytes, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(bytes);
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    c = (c >> 4) ^ kNibbleTable[c & 15u];  // low nibble first: the reflected bit order
    c = (c >> 4) ^ kNibbleTable[c & 15u];
  }
  return ~c;
}

}  // namespace tflm_train
