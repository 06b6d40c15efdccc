// A line of text built in a fixed buffer and written with board::Write: no printf, so
// no heap and no stdio. The host build of examples/tflm_shared_model uses it too, with a
// board::Write of its own.
#ifndef TFLM_TRAIN_CORTEX_M_LINE_H_
#define TFLM_TRAIN_CORTEX_M_LINE_H_

#include <stdint.h>

namespace board {

void Write(const char* text);

class Line {
 public:
  Line& Str(const char* s);
  Line& U(uint64_t v);
  Line& I(int64_t v);
  Line& Hex(uint32_t v);      // 8 hex digits
  Line& Bits(float f);        // the float's bits as 8 hex digits: exact, for comparing runs
  Line& Fixed(int64_t milli);  // milli-units as d.ddd
  void Print();               // appends "\n" and writes

 private:
  static constexpr int kRoom = 256 - 2;  // room for "\n\0"
  char buf_[256];
  int n_ = 0;
};

}  // namespace board

#endif  // TFLM_TRAIN_CORTEX_M_LINE_H_
