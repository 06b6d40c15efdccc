// The bounds-checked FlatBuffers reader (flatbuffer_reader.h) on hand-built
// byte buffers: tables, scalars, defaults, vectors, strings and vectors of tables
// read right; every root, vtable, field, vector and string that leaves the
// buffer marks the reader failed and yields defaults. Every buffer lives in a
// heap block of exactly its size, so under -fsanitize=address (the ctest build
// uses it where the compiler has it) a read past the end is a crash, not luck.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "flatbuffer_reader.h"
#include "test_harness.h"

namespace fb = tflm_train::fb;
using test::Lcg;

namespace {

// Little-endian bytes with stores at explicit offsets.
struct Image {
  std::vector<uint8_t> bytes;
  explicit Image(size_t n) : bytes(n, 0) {}
  void U16(size_t at, uint16_t v) { memcpy(&bytes[at], &v, 2); }
  void U32(size_t at, uint32_t v) { memcpy(&bytes[at], &v, 4); }
  void I32(size_t at, int32_t v) { memcpy(&bytes[at], &v, 4); }
  void F32(size_t at, float v) { memcpy(&bytes[at], &v, 4); }
  void Text(size_t at, const char* s) { memcpy(&bytes[at], s, strlen(s)); }
  // A uoffset at `at` pointing at `target` (relative to where it is stored).
  void Offset(size_t at, size_t target) { U32(at, static_cast<uint32_t>(target - at)); }
};

// A copy in a heap block of exactly `size` bytes: nothing readable after it.
class Exact {
 public:
  Exact(const uint8_t* src, size_t size) : size_(size) {
    data_ = static_cast<uint8_t*>(malloc(size == 0 ? 1 : size));
    if (size > 0) memcpy(data_, src, size);
  }
  ~Exact() { free(data_); }
  Exact(const Exact&) = delete;
  Exact& operator=(const Exact&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_;
  size_t size_;
};

// The valid buffer (112 bytes):
//   0  root offset -> table at 24          4  identifier "TEST"
//   8  vtable: size 16, table size 24, fields 0..4 at +4..+20, field 5 absent
//   24 table: soffset 16; f0 int32 -7; f1 float 1.5; f2 -> int vector;
//      f3 -> string; f4 -> vector of tables
//   48 int32 vector [10, -20, 30]          64 string "hello" + 0
//   76 vector of 2 tables                  88 their vtable: size 6, table size 8, field 0 at +4
//   96 table {f0 = 111}                    104 table {f0 = 222}
Image ValidImage() {
  Image m(112);
  m.U32(0, 24);
  m.Text(4, "TEST");
  m.U16(8, 16);
  m.U16(10, 24);
  const uint16_t fields[6] = {4, 8, 12, 16, 20, 0};
  for (int i = 0; i < 6; ++i) m.U16(12 + 2 * i, fields[i]);
  m.I32(24, 24 - 8);
  m.I32(28, -7);
  m.F32(32, 1.5f);
  m.Offset(36, 48);
  m.Offset(40, 64);
  m.Offset(44, 76);
  m.U32(48, 3);
  m.I32(52, 10);
  m.I32(56, -20);
  m.I32(60, 30);
  m.U32(64, 5);
  m.Text(68, "hello");
  m.U32(76, 2);
  m.Offset(80, 96);
  m.Offset(84, 104);
  m.U16(88, 6);
  m.U16(90, 8);
  m.U16(92, 4);
  m.I32(96, 96 - 88);
  m.U32(100, 111);
  m.I32(104, 104 - 88);
  m.U32(108, 222);
  return m;
}

// Everything a schema for ValidImage would read; defaults where absent.
struct Contents {
  bool root = false;
  int32_t f0 = 0;
  float f1 = 0.0f;
  int32_t absent = 0, past_vtable = 0;
  uint32_t vector_size = 0;
  int32_t v[3] = {0, 0, 0};
  const char* text = nullptr;  // points into the reader's buffer
  uint32_t text_length = 0;
  std::string text_value;  // a copy, valid after the buffer is gone
  bool hello = false;
  uint32_t tables = 0;
  uint32_t t0 = 0, t1 = 0;
};

Contents ReadAll(const fb::Reader& r) {
  Contents c;
  const fb::Table t = r.Root();
  c.root = t.present();
  c.f0 = t.Get<int32_t>(0, 0);
  c.f1 = t.Get<float>(1, 0.0f);
  c.absent = t.Get<int32_t>(5, 42);
  c.past_vtable = t.Get<int32_t>(9, 77);
  const fb::Vector v = t.GetVector(2, 4);
  c.vector_size = v.size();
  for (uint32_t i = 0; i < 3; ++i) c.v[i] = v.Get<int32_t>(i, 0);
  c.text = t.GetString(3, &c.text_length);
  if (c.text != nullptr) c.text_value.assign(c.text, c.text_length);
  c.hello = t.StringEquals(3, "hello");
  const fb::Vector tables = t.GetVector(4, 4);
  c.tables = tables.size();
  c.t0 = tables.TableAt(0).Get<uint32_t>(0, 0);
  c.t1 = tables.TableAt(1).Get<uint32_t>(0, 0);
  return c;
}

// The reader failed; what it returned for the broken part is the default.
bool FailsOn(const Image& m, Contents* out = nullptr) {
  Exact copy(m.bytes.data(), m.bytes.size());
  fb::Reader r(copy.data(), copy.size());
  const Contents c = ReadAll(r);
  if (out != nullptr) *out = c;
  return r.failed();
}

}  // namespace

TEST(ReadsAValidBuffer) {
  const Image m = ValidImage();
  Exact copy(m.bytes.data(), m.bytes.size());
  fb::Reader r(copy.data(), copy.size());
  CHECK(r.HasIdentifier("TEST"));
  CHECK(!r.HasIdentifier("TFL3"));
  const Contents c = ReadAll(r);
  CHECK(!r.failed());
  CHECK(c.root);
  CHECK(c.f0 == -7 && c.f1 == 1.5f);
  CHECK(c.absent == 42);       // vtable entry 0: the default
  CHECK(c.past_vtable == 77);  // a field newer than the table: the default
  CHECK(c.vector_size == 3 && c.v[0] == 10 && c.v[1] == -20 && c.v[2] == 30);
  CHECK(c.text != nullptr && c.text_length == 5 && strcmp(c.text, "hello") == 0 && c.hello);
  CHECK(c.tables == 2 && c.t0 == 111 && c.t1 == 222);
  const fb::Table t = r.Root();
  const fb::Vector v = t.GetVector(2, 4);
  CHECK(v.Get<int32_t>(3, 99) == 99);   // past the end: the fallback, not a failure
  CHECK(v.Get<int16_t>(0, 5) == 5);     // wrong element size: the fallback
  CHECK(v.byte_size() == 12 && v.bytes() == copy.data() + 52);
  CHECK(!t.StringEquals(3, "hell") && !t.StringEquals(3, "hello!"));
  CHECK(!t.GetVector(4, 4).TableAt(2).present());
  CHECK(!t.GetTable(5).present() && !t.GetVector(5, 4).present() && t.GetString(5) == nullptr);
  CHECK(!r.failed());
  // An empty table and vector answer with defaults.
  const fb::Table none;
  const fb::Vector empty;
  CHECK(!none.present() && none.Get<int32_t>(0, 3) == 3 && !none.GetTable(0).present());
  CHECK(!empty.present() && empty.size() == 0 && empty.Get<int32_t>(0, 4) == 4 && empty.bytes() == nullptr);
}

TEST(BadRootFails) {
  for (size_t n : {0, 1, 4, 7}) {
    Image m(n);
    Exact copy(m.bytes.data(), n);
    fb::Reader r(copy.data(), n);
    CHECK_MSG(!r.Root().present() && r.failed(), "%zu-byte buffer", n);
    CHECK(!r.HasIdentifier("TEST"));
  }
  fb::Reader null_reader(nullptr, 0);
  CHECK(!null_reader.Root().present() && null_reader.failed());
  Image past = ValidImage();
  past.U32(0, 112);  // root at the end
  Contents c;
  CHECK(FailsOn(past, &c) && !c.root && c.f0 == 0 && c.absent == 42);
  past.U32(0, 0xFFFFFFF0u);
  CHECK(FailsOn(past, &c) && !c.root);
  past.U32(0, 0);  // the root cannot be the root offset itself
  CHECK(FailsOn(past));
}

TEST(BadVtableFails) {
  Contents c;
  Image m = ValidImage();
  m.I32(24, -200);  // vtable at 224: past the end
  CHECK(FailsOn(m, &c) && !c.root && c.f0 == 0 && c.vector_size == 0 && c.text == nullptr);
  m = ValidImage();
  m.I32(24, 100);  // vtable at -76: before the start
  CHECK(FailsOn(m, &c));
  CHECK(!c.root && c.f0 == 0);
  m = ValidImage();
  m.I32(24, 24 - 110);  // vtable at 110: its 4-byte header leaves the buffer
  CHECK(FailsOn(m, &c) && !c.root);
  m = ValidImage();
  m.U16(8, 200);  // vtable size past the end
  CHECK(FailsOn(m, &c) && !c.root);
  m = ValidImage();
  m.U16(8, 15);  // odd vtable size
  CHECK(FailsOn(m, &c) && !c.root);
  m = ValidImage();
  m.U16(8, 2);  // shorter than its own header
  CHECK(FailsOn(m, &c) && !c.root);
  m = ValidImage();
  m.U16(10, 100);  // table size past the end
  CHECK(FailsOn(m, &c) && !c.root);
  m = ValidImage();
  m.U16(10, 2);  // table smaller than its soffset
  CHECK(FailsOn(m, &c) && !c.root);
}

TEST(FieldOutsideItsTableFails) {
  Contents c;
  Image m = ValidImage();
  m.U16(10, 22);  // table size 22: field 4 (+20, 4 bytes) no longer fits
  CHECK(FailsOn(m, &c));
  CHECK(c.f0 == -7 && c.tables == 0 && c.t0 == 0);  // what fits still reads; the rest is default
  m = ValidImage();
  m.U16(12, 22);  // field 0 at +22 of a 24-byte table
  CHECK(FailsOn(m, &c) && c.f0 == 0);
}

TEST(BadVectorFails) {
  Contents c;
  Image m = ValidImage();
  m.U32(36, 1000);  // vector offset past the end
  CHECK(FailsOn(m, &c) && c.vector_size == 0 && c.v[0] == 0);
  m = ValidImage();
  m.U32(48, 0xFFFFFFFFu);  // length far past the end (and overflowing 32 bits times 4)
  CHECK(FailsOn(m, &c) && c.vector_size == 0 && c.v[1] == 0);
  m = ValidImage();
  m.U32(48, 16);  // 64 bytes from 52: 4 past the end
  CHECK(FailsOn(m, &c) && c.vector_size == 0);
  m = ValidImage();
  m.U32(76, 9);  // vector of 9 tables: the offsets run past the end
  CHECK(FailsOn(m, &c) && c.tables == 0 && c.t0 == 0);
  m = ValidImage();
  m.U32(84, 1000);  // one table offset past the end
  CHECK(FailsOn(m, &c) && c.t0 == 111 && c.t1 == 0);
  m = ValidImage();
  m.I32(104, 104 - 111);  // that table's vtable straddles the end
  CHECK(FailsOn(m, &c) && c.t1 == 0);
}

TEST(BadStringFails) {
  Contents c;
  Image m = ValidImage();
  m.bytes[73] = '!';  // no terminating 0 inside the buffer's string
  CHECK(FailsOn(m, &c) && c.text == nullptr && !c.hello);
  m = ValidImage();
  m.U32(64, 200);  // length past the end
  CHECK(FailsOn(m, &c) && c.text == nullptr);
  // A string running to the very last byte: its terminator would be past the end.
  Image tail = ValidImage();
  tail.bytes.resize(120);
  tail.Offset(40, 112);
  tail.U32(112, 4);
  tail.Text(116, "abcd");
  CHECK(FailsOn(tail, &c) && c.text == nullptr);
  tail.bytes.push_back(0);  // with its terminator it reads
  CHECK(!FailsOn(tail, &c) && c.text != nullptr && c.text_value == "abcd" && c.text_length == 4);
}

// Every prefix of the valid buffer: the reader fails (something lies past the
// cut) and nothing reads outside the prefix.
TEST(EveryTruncationFails) {
  const Image m = ValidImage();
  for (size_t n = 0; n < m.bytes.size(); ++n) {
    Exact copy(m.bytes.data(), n);
    fb::Reader r(copy.data(), n);
    ReadAll(r);
    CHECK_MSG(r.failed(), "a %zu-byte prefix read without failing", n);
  }
}

// Random corruption: whatever the reader returns, it stays inside the buffer
// (the sanitizers check) and every pointer it hands out lies inside it.
TEST(CorruptBuffersStayInside) {
  const Image valid = ValidImage();
  Lcg rng(17);
  int failed = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    Image m = valid;
    const int flips = rng.Int(1, 4);
    for (int f = 0; f < flips; ++f) {
      const size_t at = static_cast<size_t>(rng.Int(0, static_cast<int>(m.bytes.size()) - 1));
      m.bytes[at] = rng.Coin() ? static_cast<uint8_t>(rng.Next()) : static_cast<uint8_t>(m.bytes[at] ^ (1u << rng.Int(0, 7)));
    }
    Exact copy(m.bytes.data(), m.bytes.size());
    fb::Reader r(copy.data(), copy.size());
    const Contents c = ReadAll(r);
    if (c.text != nullptr) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(c.text);
      CHECK(p >= copy.data() && p + c.text_length < copy.data() + copy.size() && c.text[c.text_length] == 0);
    }
    const fb::Vector v = r.Root().GetVector(2, 4);
    if (v.present()) CHECK(v.bytes() >= copy.data() && v.bytes() + v.byte_size() <= copy.data() + copy.size());
    failed += r.failed() ? 1 : 0;
  }
  CHECK(failed > 0);
  printf("    %d of 4000 corrupted buffers failed verification\n", failed);
}

int main() { return test::RunAll(); }
