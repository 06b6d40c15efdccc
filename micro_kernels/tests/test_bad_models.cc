// The Trainer on model bytes it must refuse: every truncation, bit flips, bytes
// that are not a flatbuffer, no plan, plans of other versions, plans that do not
// fit their model. Every model lives in a heap block of exactly its size and
// the library is built with AddressSanitizer and UBSan where the compiler has
// them (see CMakeLists.txt), so a read outside the model fails the test.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <vector>

#include "fixtures/version1_model.h"
#include "model_reader.h"
#include "trainer_fixture.h"

using namespace test;  // NOLINT: the fixture's names

namespace {

// A 16-byte aligned heap block of exactly `size` bytes holding `src`.
class Exact {
 public:
  Exact(const uint8_t* src, size_t size) : size_(size) {
    void* p = nullptr;
    if (posix_memalign(&p, 16, size == 0 ? 1 : size) != 0) p = nullptr;
    data_ = static_cast<uint8_t*>(p);
    if (data_ != nullptr && size > 0) memcpy(data_, src, size);
  }
  ~Exact() { free(data_); }
  Exact(const Exact&) = delete;
  Exact& operator=(const Exact&) = delete;
  uint8_t* data() { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_;
  size_t size_;
};

bool Known(Status s) { return static_cast<int32_t>(s) >= 0 && static_cast<int32_t>(s) <= 11; }

// Init over `len` bytes of `src` (in an exact block, with an arena as large as it
// asks for, within reason). When it succeeds, everything the trainer hands out
// must lie inside the model, and a Predict and a TrainStep must run.
Status InitExact(const uint8_t* src, size_t len, int* inside_failures = nullptr) {
  Exact model(src, len);
  Trainer t;
  // The two-step measure, then an arena of the size asked for (within reason).
  Status s = t.Init(model.data(), len, nullptr, 0);
  if (s != Status::kArenaTooSmall) return s;
  std::unique_ptr<Bytes> arena(new Bytes(t.arena_report().required_bytes));
  s = t.Init(model.data(), len, arena->data(), arena->size());
  if (s != Status::kArenaTooSmall) return s;
  if (!t.arena_report().complete || t.arena_report().required_bytes > (size_t{1} << 22)) return s;
  arena.reset(new Bytes(t.arena_report().required_bytes));
  s = t.Init(model.data(), len, arena->data(), arena->size());
  if (s != Status::kOk) return s;
  int outside = 0;
  for (int l = 0; l < t.num_trainable_layers(); ++l) {
    size_t n_w = 0, n_b = 0;
    const float* w = t.layer_weights(l, &n_w);
    const float* b = t.layer_bias(l, &n_b);
    const uint8_t* end = model.data() + len;
    if (reinterpret_cast<const uint8_t*>(w) < model.data() || reinterpret_cast<const uint8_t*>(w + n_w) > end) ++outside;
    if (b != nullptr && (reinterpret_cast<const uint8_t*>(b) < model.data() ||
                         reinterpret_cast<const uint8_t*>(b + n_b) > end)) {
      ++outside;
    }
  }
  if (inside_failures != nullptr) *inside_failures += outside;
  std::vector<float> x(t.input_size(), 0.5f), out(t.output_size());
  const float label = 0.0f;
  t.Predict(x.data(), x.size(), out.data(), out.size());
  tflm_train::StepResult r;
  t.TrainStep(x.data(), x.size(), &label, t.target_size(), 1, &r, nullptr);
  return s;
}

// Positions inside a flatbuffer (raw format, for patching fields).
uint32_t U32(const uint8_t* p, size_t at) {
  uint32_t v;
  memcpy(&v, p + at, 4);
  return v;
}
size_t FieldPos(const uint8_t* base, size_t table, int field) {
  int32_t soffset;
  memcpy(&soffset, base + table, 4);
  const size_t vtable = table - soffset;
  uint16_t vt_size, offset;
  memcpy(&vt_size, base + vtable, 2);
  if (4u + 2u * field + 2u > vt_size) return 0;
  memcpy(&offset, base + vtable + 4 + 2 * field, 2);
  return offset == 0 ? 0 : table + offset;
}

// The plan's root table and its position in the model bytes.
struct PlanAt {
  uint8_t* base = nullptr;
  size_t root = 0;
};
PlanAt FindPlan(Bytes* model) {
  tflm_train::ModelView view(model->data(), model->size());
  char why_buffer[200];
  tflm_train::Message why(why_buffer, sizeof(why_buffer));
  PlanAt p;
  if (tflm_train::ReadModel(&view, &why) != Status::kOk) return p;
  p.base = model->data() + (view.plan_reader.data() - model->data());
  p.root = U32(p.base, 0);
  return p;
}

// Writes `value` into plan field `field` (uint32/int32, present in the fixture).
bool PatchPlanRoot(Bytes* model, int field, uint32_t value) {
  const PlanAt p = FindPlan(model);
  const size_t at = p.base != nullptr ? FieldPos(p.base, p.root, field) : 0;
  if (at == 0) return false;
  memcpy(p.base + at, &value, 4);
  return true;
}

bool PatchLayerOpIndex(Bytes* model, uint32_t layer, int32_t op_index) {
  const PlanAt p = FindPlan(model);
  const size_t layers_at = p.base != nullptr ? FieldPos(p.base, p.root, 1) : 0;
  if (layers_at == 0) return false;
  const size_t vec = layers_at + U32(p.base, layers_at);
  if (layer >= U32(p.base, vec)) return false;
  const size_t slot = vec + 4 + 4 * layer;
  const size_t table = slot + U32(p.base, slot);
  const size_t at = FieldPos(p.base, table, 0);
  if (at == 0) return false;
  memcpy(p.base + at, &op_index, 4);
  return true;
}

Status InitModel(Bytes* model) { return InitExact(model->data(), model->size()); }

}  // namespace

TEST(TruncatedAtEveryLength) {
  for (const Model& src : {PlainModel(), MomentumModel(), CnnModel()}) {
    const size_t n = src.size();
    int accepted = 0, outside = 0;
    size_t shortest = n;
    for (size_t len = 0; len < n; ++len) {
      const Status s = InitExact(src.data(), len, &outside);
      CHECK_MSG(Known(s), "cut to %zu: status %d", len, static_cast<int>(s));
      if (s == Status::kOk) {
        ++accepted;
        if (len < shortest) shortest = len;
      }
    }
    // A cut may only be accepted when it removes bytes the trainer never reads;
    // everything it uses must lie inside the cut.
    CHECK_MSG(outside == 0, "%d trainable tensors outside an accepted cut", outside);
    CHECK(shortest > n / 2);
    printf("    %zu-byte model: %d truncations (the last %zu bytes) still initialize\n", n, accepted, n - shortest);
    // A truncated copy followed by zeros (not just a short length).
    for (size_t len : {size_t{8}, size_t{16}, n / 4, n / 2, n - 200}) {
      std::vector<uint8_t> zeros(n, 0);
      memcpy(zeros.data(), src.data(), len);
      CHECK_MSG(InitExact(zeros.data(), n) != Status::kOk, "model cut to %zu bytes and zero-padded initialized", len);
    }
  }
}

TEST(BitFlipsNeverReadOutside) {
  int total = 0, accepted = 0;
  for (const Model& src : {PlainModel(), CnnModel()}) {
    std::vector<uint8_t> m = src;
    Lcg rng(77);
    for (size_t at = 0; at < m.size(); ++at) {
      // Every bit of the small model; one random bit per byte of the CNN.
      const bool every_bit = src.size() == kPlainModelSize;
      for (int bit = 0; bit < 8; ++bit) {
        const int b = every_bit ? bit : rng.Int(0, 7);
        m[at] ^= static_cast<uint8_t>(1u << b);
        const Status s = InitExact(m.data(), m.size());
        m[at] ^= static_cast<uint8_t>(1u << b);
        CHECK_MSG(Known(s), "byte %zu bit %d: status %d", at, b, static_cast<int>(s));
        ++total;
        accepted += s == Status::kOk ? 1 : 0;
        if (!every_bit) break;
      }
    }
  }
  printf("    %d single-bit corruptions, %d still initialize and train\n", total, accepted);
}

TEST(NotAFlatbuffer) {
  const size_t n = kPlainModelSize;
  std::vector<uint8_t> junk(n);
  for (size_t i = 0; i < n; ++i) junk[i] = static_cast<uint8_t>(i * 31 + 7);
  CHECK_STATUS(InitExact(junk.data(), n), Status::kInvalidModel);
  std::vector<uint8_t> zeros(n, 0), ones(n, 0xFF);
  CHECK_STATUS(InitExact(zeros.data(), n), Status::kInvalidModel);
  CHECK_STATUS(InitExact(ones.data(), n), Status::kInvalidModel);
  memcpy(junk.data() + 4, "TFL3", 4);  // the right identifier over junk
  CHECK_STATUS(InitExact(junk.data(), n), Status::kInvalidModel);
  Model wrong_id = PlainModel();
  wrong_id[7] = '2';  // TFL2
  CHECK_STATUS(InitExact(wrong_id.data(), wrong_id.size()), Status::kInvalidModel);
  Lcg rng(3);
  for (int i = 0; i < 200; ++i) {
    for (auto& b : junk) b = static_cast<uint8_t>(rng.Next());
    memcpy(junk.data() + 4, "TFL3", 4);
    CHECK(InitExact(junk.data(), n) != Status::kOk);
  }
}

TEST(NoPlan) {
  Bytes renamed(PlainModel());
  int renamed_count = 0;
  for (size_t i = 0; i + 10 <= renamed.size(); ++i) {
    if (memcmp(renamed.data() + i, "tflm_train", 10) == 0) {
      renamed.data()[i] = 'x';
      ++renamed_count;
    }
  }
  CHECK(renamed_count >= 1);
  Trainer t;
  Bytes arena(1 << 16);
  CHECK_STATUS(t.Init(renamed.data(), renamed.size(), arena.data(), arena.size()), Status::kMissingPlan);
  CHECK(strstr(t.error_message(), "tflm_train.convert") != nullptr);
  CHECK_STATUS(t.Init(renamed.data(), renamed.size(), nullptr, 0), Status::kMissingPlan);
}

TEST(OtherPlanVersions) {
  for (uint32_t version : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    Bytes m(PlainModel());
    CHECK(PatchPlanRoot(&m, 0, version));
    Trainer t;
    Bytes arena(1 << 16);
    CHECK_MSG(t.Init(m.data(), m.size(), arena.data(), arena.size()) == Status::kUnsupportedPlanVersion,
              "plan version %u", version);
    if (version < 2) CHECK(strstr(t.error_message(), "re-convert") != nullptr);
    CHECK_STATUS(t.Init(m.data(), m.size(), nullptr, 0), Status::kUnsupportedPlanVersion);
  }
  Bytes same(PlainModel());
  CHECK(PatchPlanRoot(&same, 0, 3));
  CHECK_STATUS(InitModel(&same), Status::kOk);
  // Version 2 is version 3 without the appended fields: still read.
  Bytes older(PlainModel());
  CHECK(PatchPlanRoot(&older, 0, 2));
  CHECK_STATUS(InitModel(&older), Status::kOk);
}

// A plan written in version 1's layout (tflm_train 0.1: the graph repeated as
// plan ops): refused as an old version, with the advice to re-convert.
TEST(GenuineVersion1Plan) {
  Trainer t;
  Bytes arena(1 << 16);
  Exact model(kVersion1Model, kVersion1ModelSize);
  const Status s = t.Init(model.data(), model.size(), arena.data(), arena.size());
  CHECK(s != Status::kOk);
  printf("    version 1 plan: k%s (%s)\n", tflm_train::StatusName(s), t.error_message());
  CHECK(s == Status::kUnsupportedPlanVersion);  // the version is read before the v2 tables
}

TEST(PlansThatDoNotFit) {
  // Plain model: FULLY_CONNECTED 0, FULLY_CONNECTED 1, SOFTMAX 2; layers name ops 0 and 1.
  const int32_t cases[][2] = {{0, 2}, {0, 1}, {1, 0}, {0, -1}, {1, 3}, {1, 1000000}};
  for (const auto& c : cases) {
    Bytes m(PlainModel());
    CHECK(PatchLayerOpIndex(&m, static_cast<uint32_t>(c[0]), c[1]));
    CHECK_MSG(InitModel(&m) == Status::kInvalidPlan, "layer %d -> operator %d", c[0], c[1]);
  }
  // Batch size 0 in the plan (the momentum model's plan stores its batch size 4).
  Bytes zero_batch(MomentumModel());
  CHECK(PatchPlanRoot(&zero_batch, 5, 0));
  const Status zero = InitModel(&zero_batch);
  CHECK(zero != Status::kOk);
  CHECK(zero == Status::kInvalidPlan);
  Bytes huge_batch(MomentumModel());
  CHECK(PatchPlanRoot(&huge_batch, 5, 1u << 20));
  const Status huge = InitModel(&huge_batch);
  CHECK(huge != Status::kOk);
  CHECK(huge == Status::kInvalidPlan);
}

int main() { return test::RunAll(); }
