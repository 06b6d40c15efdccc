// A fixed-size error message built without printf (which pulls in heap-using
// formatting code on embedded C libraries).
#ifndef TFLM_TRAIN_MESSAGE_H_
#define TFLM_TRAIN_MESSAGE_H_

#include <stddef.h>

namespace tflm_train {

class Message {
 public:
  Message(char* buffer, size_t capacity) : buffer_(buffer), capacity_(capacity) {
    if (capacity_ > 0) buffer_[0] = '\0';
  }
  Message& Add(const char* text) {
    for (; text != nullptr && *text != '\0'; ++text) Put(*text);
    return *this;
  }
  Message& Add(long long value) {
    char digits[24];
    int count = 0;
    unsigned long long magnitude =
        value < 0 ? 0ULL - static_cast<unsigned long long>(value) : static_cast<unsigned long long>(value);
    if (value < 0) Put('-');
    do {
      digits[count++] = static_cast<char>('0' + magnitude % 10);
      magnitude /= 10;
    } while (magnitude != 0);
    while (count > 0) Put(digits[--count]);
    return *this;
  }

 private:
  void Put(char c) {
    if (length_ + 1 >= capacity_) return;  // truncate, keep the terminator
    buffer_[length_++] = c;
    buffer_[length_] = '\0';
  }
  char* buffer_;
  size_t capacity_;
  size_t length_ = 0;
};

}  // namespace tflm_train

#endif  // TFLM_TRAIN_MESSAGE_H_
