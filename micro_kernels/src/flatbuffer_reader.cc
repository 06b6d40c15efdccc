#include "flatbuffer_reader.h"

namespace tflm_train {
namespace fb {

Table Reader::Root() const {
  if (!Inside(0, 8)) return Table();  // root offset and file identifier
  return TableAt(Load<uint32_t>(0));
}

bool Reader::HasIdentifier(const char* identifier) const {
  return size_ >= 8 && memcmp(data_ + 4, identifier, 4) == 0;
}

uint64_t Reader::Follow(uint64_t at) const {
  if (!Inside(at, 4)) return 0;
  const uint64_t target = at + Load<uint32_t>(at);
  return Inside(target, 1) ? target : 0;
}

Table Reader::TableAt(uint64_t at) const {
  if (at == 0 || !Inside(at, 4)) {
    Fail();
    return Table();
  }
  // As FlatBuffers' own verifier does, a buffer with absurdly many tables is refused
  // (shared subtables could otherwise make a walk of a small file take very long).
  if (++tables_ > kMaxTables) {
    Fail();
    return Table();
  }
  const int64_t vtable = static_cast<int64_t>(at) - Load<int32_t>(at);
  if (vtable < 0 || !Inside(static_cast<uint64_t>(vtable), 4)) {
    Fail();
    return Table();
  }
  const uint16_t vtable_size = Load<uint16_t>(static_cast<uint64_t>(vtable));
  const uint16_t table_size = Load<uint16_t>(static_cast<uint64_t>(vtable) + 2);
  if (vtable_size < 4 || (vtable_size & 1) != 0 || table_size < 4 ||
      !Inside(static_cast<uint64_t>(vtable), vtable_size) || !Inside(at, table_size)) {
    Fail();
    return Table();
  }
  Table t;
  t.reader_ = this;
  t.at_ = at;
  t.vtable_ = static_cast<uint64_t>(vtable);
  t.vtable_size_ = vtable_size;
  t.table_size_ = table_size;
  return t;
}

Vector Reader::VectorAt(uint64_t at, uint32_t element_size) const {
  if (at == 0 || !Inside(at, 4)) {
    Fail();
    return Vector();
  }
  const uint32_t length = Load<uint32_t>(at);
  if (!Inside(at + 4, static_cast<uint64_t>(length) * element_size)) return Vector();
  Vector v;
  v.reader_ = this;
  v.start_ = at + 4;
  v.length_ = length;
  v.element_size_ = element_size;
  return v;
}

Table Vector::TableAt(uint32_t i) const {
  if (reader_ == nullptr || i >= length_ || element_size_ != 4) return Table();
  return reader_->TableAt(reader_->Follow(start_ + static_cast<uint64_t>(i) * 4));
}

uint64_t Table::FieldAt(int field, uint32_t size) const {
  if (reader_ == nullptr || field < 0) return 0;
  const uint64_t slot = 4 + 2 * static_cast<uint64_t>(field);
  if (slot + 2 > vtable_size_) return 0;  // a field newer than this table: absent
  const uint16_t offset = reader_->Load<uint16_t>(vtable_ + slot);
  if (offset == 0) return 0;
  if (static_cast<uint64_t>(offset) + size > table_size_) {
    reader_->Fail();  // the field does not fit in its table
    return 0;
  }
  return at_ + offset;
}

Table Table::GetTable(int field) const {
  const uint64_t at = FieldAt(field, 4);
  return at == 0 ? Table() : reader_->TableAt(reader_->Follow(at));
}

Vector Table::GetVector(int field, uint32_t element_size) const {
  const uint64_t at = FieldAt(field, 4);
  return at == 0 ? Vector() : reader_->VectorAt(reader_->Follow(at), element_size);
}

const char* Table::GetString(int field, uint32_t* length) const {
  const Vector v = GetVector(field, 1);
  if (!v.present()) return nullptr;
  // The terminating 0 must be there too.
  const uint64_t end = static_cast<uint64_t>(v.bytes() - reader_->data()) + v.size();
  if (!reader_->Inside(end, 1) || v.bytes()[v.size()] != 0) {
    reader_->Fail();
    return nullptr;
  }
  if (length != nullptr) *length = v.size();
  return reinterpret_cast<const char*>(v.bytes());
}

bool Table::StringEquals(int field, const char* text) const {
  uint32_t length = 0;
  const char* s = GetString(field, &length);
  return s != nullptr && strlen(text) == length && memcmp(s, text, length) == 0;
}

}  // namespace fb
}  // namespace tflm_train
