// A small reader of the FlatBuffers binary format, with every read checked
// against the bounds of the buffer. The trainer reads the .tflite and its
// training plan through it instead of FlatBuffers' generated headers, so it
// builds next to whichever FlatBuffers a TFLM program brings (2.0.6 in TFLM's
// Arduino library, 25.x in TFLM's main branch) and needs none itself.
//
// Format (flatbuffers.dev, "Internals"): the buffer starts with a uint32 offset
// to the root table. A table starts with an int32 `soffset`; its vtable sits at
// table - soffset and holds uint16 vtable size, uint16 table size, then one
// uint16 offset per field (0: absent, use the default). Offsets to tables,
// vectors and strings are uint32, relative to where they are stored. A vector is
// a uint32 length followed by its elements; a string is a vector of bytes with a
// terminating 0. Everything is little-endian.
//
// A read that would leave the buffer, or a structure that does not fit, marks
// the Reader as failed and yields an empty value; callers check failed() once
// after reading what they need (Verify* below walk whole structures).
#ifndef TFLM_TRAIN_FLATBUFFER_READER_H_
#define TFLM_TRAIN_FLATBUFFER_READER_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace tflm_train {
namespace fb {

class Table;
class Vector;

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  // The root table; an empty Table (and failed()) when the buffer is too short.
  Table Root() const;
  // Whether bytes 4..7 hold `identifier` (4 characters).
  bool HasIdentifier(const char* identifier) const;

  bool failed() const { return failed_; }
  // The table budget (a cap on tables opened, as FlatBuffers' verifier has) applies
  // to one verification walk: restart it before the next.
  void ResetTableBudget() const { tables_ = 0; }
  void Fail() const { failed_ = true; }  // a structure that is not what the schema says
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

  // `n` bytes from `at` lie inside the buffer; otherwise marks the reader failed.
  bool Inside(uint64_t at, uint64_t n) const {
    if (at <= size_ && n <= size_ - at) return true;
    failed_ = true;
    return false;
  }
  template <typename T>
  T Load(uint64_t at) const {  // caller has checked Inside(at, sizeof(T))
    T value;
    memcpy(&value, data_ + at, sizeof(T));
    return value;
  }
  // The table at `at`; empty (and failed) when its vtable or inline part do not fit.
  Table TableAt(uint64_t at) const;
  // The vector at `at` with elements of `element_size` bytes.
  Vector VectorAt(uint64_t at, uint32_t element_size) const;
  // Follows the uint32 offset stored at `at`; 0 (and failed) when it leaves the buffer.
  uint64_t Follow(uint64_t at) const;

 private:
  static constexpr uint32_t kMaxTables = 1000000;
  const uint8_t* data_;
  size_t size_;
  mutable bool failed_ = false;
  mutable uint32_t tables_ = 0;  // tables opened so far
};

class Vector {
 public:
  Vector() = default;
  bool present() const { return reader_ != nullptr; }
  uint32_t size() const { return length_; }
  // Element i as a scalar of type T (T's size must be the element size).
  template <typename T>
  T Get(uint32_t i, T fallback = T()) const {
    if (reader_ == nullptr || i >= length_ || sizeof(T) != element_size_) return fallback;
    return reader_->Load<T>(start_ + static_cast<uint64_t>(i) * sizeof(T));
  }
  // Element i of a vector of tables.
  Table TableAt(uint32_t i) const;
  // The elements' bytes (for byte vectors and raw constant data).
  const uint8_t* bytes() const { return reader_ == nullptr ? nullptr : reader_->data() + start_; }
  uint64_t byte_size() const { return static_cast<uint64_t>(length_) * element_size_; }

 private:
  friend class Reader;
  const Reader* reader_ = nullptr;
  uint64_t start_ = 0;  // first element
  uint32_t length_ = 0;
  uint32_t element_size_ = 0;
};

class Table {
 public:
  Table() = default;
  bool present() const { return reader_ != nullptr; }

  // Scalar field `field` (its id in the schema), or `fallback` when absent.
  template <typename T>
  T Get(int field, T fallback) const {
    const uint64_t at = FieldAt(field, sizeof(T));
    return at == 0 ? fallback : reader_->Load<T>(at);
  }
  Table GetTable(int field) const;
  Vector GetVector(int field, uint32_t element_size) const;
  // A string field: its characters (0-terminated) and length; null when absent.
  const char* GetString(int field, uint32_t* length = nullptr) const;
  // Whether string field `field` equals `text`.
  bool StringEquals(int field, const char* text) const;

 private:
  friend class Reader;
  // Where field `field` of `size` bytes lies, or 0 when absent (or it does not fit).
  uint64_t FieldAt(int field, uint32_t size) const;
  const Reader* reader_ = nullptr;
  uint64_t at_ = 0;
  uint64_t vtable_ = 0;
  uint16_t vtable_size_ = 0;
  uint16_t table_size_ = 0;
};

}  // namespace fb
}  // namespace tflm_train

#endif  // TFLM_TRAIN_FLATBUFFER_READER_H_
