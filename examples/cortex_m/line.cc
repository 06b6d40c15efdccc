#include "line.h"

#include <string.h>

namespace board {

Line& Line::Str(const char* s) {
  while (*s && n_ < kRoom) buf_[n_++] = *s++;
  return *this;
}

Line& Line::U(uint64_t v) {
  char digits[24];
  int i = 0;
  do {
    digits[i++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (i && n_ < kRoom) buf_[n_++] = digits[--i];
  return *this;
}

Line& Line::I(int64_t v) { return v < 0 ? Str("-").U(static_cast<uint64_t>(-v)) : U(static_cast<uint64_t>(v)); }

Line& Line::Hex(uint32_t v) {
  for (int shift = 28; shift >= 0 && n_ < kRoom; shift -= 4) buf_[n_++] = "0123456789abcdef"[(v >> shift) & 0xF];
  return *this;
}

Line& Line::Bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  return Hex(u);
}

Line& Line::Fixed(int64_t milli) {
  if (milli < 0) {
    Str("-");
    milli = -milli;
  }
  U(static_cast<uint64_t>(milli / 1000)).Str(".");
  const int64_t frac = milli % 1000;
  if (frac < 100) Str("0");
  if (frac < 10) Str("0");
  return U(static_cast<uint64_t>(frac));
}

void Line::Print() {
  buf_[n_++] = '\n';
  buf_[n_] = '\0';
  Write(buf_);
  n_ = 0;
}

}  // namespace board
