// What the checkpoint tests share (test_checkpoint.cc: power cuts and resuming;
// test_checkpoint_slots.cc: slot choice, other models, geometry, failing storage):
// a RAM flash that behaves like NOR (optionally with ECC) and can lose power, a
// device that boots over the original model bytes, and the header and payload
// edits the tests make.
#ifndef TFLM_TRAIN_TESTS_FLASH_FIXTURE_H_
#define TFLM_TRAIN_TESTS_FLASH_FIXTURE_H_

#include <stdint.h>
#include <string.h>

#include <vector>

#include "checkpoint_format.h"
#include "crc32.h"
#include "trainer_fixture.h"
#include "tflm_train/flash_storage.h"

namespace test {

using tflm_train::FlashStorage;

// NOR-like flash in RAM. `budget` counts events until the power is cut: an erase
// is one, a programmed byte one. The event that overruns it is half done, and every
// call after that fails, reads included:
// - a cut Program writes its first bytes; with `cut_leaves_bits` the byte it was at
//   gets only some of its bits programmed (NOR programs bits, not bytes);
// - a cut erase leaves half the page erased and half as it was (which half:
//   `erase_cut_keeps_start`);
// - with `ecc`, as on flash with error correction (STM32L4/G4/H7/U5), the units the
//   cut tore (the program unit being written; every unit of the page being erased)
//   fail every Read that touches them until their page is erased again.
// Rebooted() keeps the bytes, the torn units and these modes.
class RamFlash final : public FlashStorage {
 public:
  RamFlash(uint32_t size, uint32_t page, uint32_t program)
      : bytes(size, 0xFF), torn(size / program, false), page_(page), program_(program) {}
  uint32_t page_size() const override { return page_; }
  uint32_t program_size() const override { return program_; }
  uint32_t size() const override { return static_cast<uint32_t>(bytes.size()); }

  bool Read(uint32_t offset, void* dst, uint32_t n) override {
    ++reads;
    if (dead || fail_reads_after == 0 || !InRange(offset, n)) return false;
    if (fail_reads_after > 0) --fail_reads_after;
    if (reinterpret_cast<uintptr_t>(dst) % 8 != 0) ++unaligned;
    if (AnyTorn(offset, n)) return false;  // ECC: an uncorrectable error in a torn unit
    memcpy(dst, bytes.data() + offset, n);
    return true;
  }
  bool ErasePage(uint32_t offset) override {
    if (dead || fail_erase) return false;
    if (offset % page_ != 0 || !InRange(offset, page_)) return Misuse("erase outside a page boundary");
    uint8_t* page = bytes.data() + offset;
    if (budget == 0) {
      dead = true;
      memset(erase_cut_keeps_start ? page + page_ / 2 : page, 0xFF, page_ / 2);
      if (ecc) Tear(offset, page_);
      return false;
    }
    if (budget > 0) --budget;
    ++events;
    memset(page, 0xFF, page_);
    for (uint32_t u = offset / program_; u < (offset + page_) / program_; ++u) torn[u] = false;
    return true;
  }
  bool Program(uint32_t offset, const void* src, uint32_t n) override {
    if (dead || fail_program) return false;
    if (offset % program_ != 0 || n % program_ != 0 || n == 0 || !InRange(offset, n)) {
      return Misuse("program of a partial unit");
    }
    for (uint32_t i = 0; i < n; ++i) {
      if (bytes[offset + i] != 0xFF) return Misuse("program over bytes that are not erased");
    }
    if (AnyTorn(offset, n)) return Misuse("program of a unit a cut tore, not erased since");
    if (reinterpret_cast<uintptr_t>(src) % 8 != 0) ++unaligned;
    uint32_t now = n;
    if (budget >= 0 && budget < static_cast<long long>(n)) {
      now = static_cast<uint32_t>(budget);
      dead = true;
    }
    const uint8_t* s = static_cast<const uint8_t*>(src);
    for (uint32_t i = 0; i < now; ++i) bytes[offset + i] &= s[i];  // NOR: programming clears bits
    if (dead) {
      // The byte the power went at: all the bits it was to clear but the highest one.
      const uint8_t clear = static_cast<uint8_t>(~s[now]);
      uint8_t keep = 0x80;
      while (keep != 0 && (clear & keep) == 0) keep = static_cast<uint8_t>(keep >> 1);
      if (cut_leaves_bits) bytes[offset + now] &= static_cast<uint8_t>(s[now] | keep);
      if (ecc) Tear(offset + now - (offset + now) % program_, program_);
    }
    if (budget >= 0) budget -= now;
    events += now;
    return !dead;
  }

  // The same bytes after a reboot: power back, no budget, no failures injected;
  // torn units stay torn, and the cut modes stay.
  RamFlash Rebooted() const {
    RamFlash r(size(), page_, program_);
    r.bytes = bytes;
    r.torn = torn;
    r.erase_cut_keeps_start = erase_cut_keeps_start;
    r.cut_leaves_bits = cut_leaves_bits;
    r.ecc = ecc;
    return r;
  }
  // Marks [offset, offset + n) as torn by a cut (whole units).
  void Tear(uint32_t offset, uint32_t n) {
    for (uint32_t u = offset / program_; u < (offset + n + program_ - 1) / program_; ++u) torn[u] = true;
  }
  bool AnyTorn(uint32_t offset, uint32_t n) const {
    for (uint32_t u = offset / program_; n > 0 && u <= (offset + n - 1) / program_; ++u) {
      if (torn[u]) return true;
    }
    return false;
  }

  std::vector<uint8_t> bytes;
  std::vector<bool> torn;        // per program unit: a cut left it so that reading it fails
  long long budget = -1;         // events before the power is cut; -1: never
  bool dead = false;
  bool erase_cut_keeps_start = false;  // a cut erase leaves the page's first half (else its second) as it was
  bool cut_leaves_bits = false;        // a cut program leaves its last byte with only some bits programmed
  bool ecc = false;                    // a cut tears units: reading them fails until erased
  long long fail_reads_after = -1;     // reads that still succeed; -1: all
  bool fail_erase = false, fail_program = false;
  long long events = 0;          // erases and programmed bytes so far
  long long reads = 0;           // Read calls so far
  long long unaligned = 0;       // Reads into and Programs from addresses that are not 8-aligned
  const char* misuse = nullptr;  // what the trainer did that flash forbids

 private:
  bool InRange(uint32_t offset, uint32_t n) const { return offset <= bytes.size() && n <= bytes.size() - offset; }
  bool Misuse(const char* what) {
    misuse = what;
    return false;
  }
  uint32_t page_, program_;
};

// What a checkpoint must bring back exactly: the model bytes (weights in place)
// and the training state.
struct Snapshot {
  Model model;
  std::vector<uint8_t> state;
  bool operator==(const Snapshot& o) const { return model == o.model && state == o.state; }
};

// A device after a (re)boot: the original model bytes, a new arena and trainer.
struct Device {
  Bytes model;
  Bytes arena;
  Trainer trainer;
  Status init;
  Device(const Model& src, size_t arena_size, const TrainerOptions& options) : model(src), arena(arena_size) {
    init = trainer.Init(model.data(), model.size(), arena.data(), arena.size(), options);
  }
  Snapshot Snap() {
    Snapshot s{model.ToModel(), std::vector<uint8_t>(trainer.StateBytes())};
    CHECK_STATUS(trainer.SaveState(s.state.data(), s.state.size()), Status::kOk);
    return s;
  }
  void Train(Lcg* rng, int steps) {
    const int in = static_cast<int>(trainer.input_size()), classes = static_cast<int>(trainer.output_size());
    const uint32_t batch = trainer.batch_size();
    std::vector<float> xs, ys;
    tflm_train::StepResult r;
    for (int i = 0; i < steps; ++i) {
      MakeSamples(*rng, static_cast<int>(batch), in, classes, &xs, &ys);
      CHECK_STATUS(trainer.TrainStep(xs.data(), in, ys.data(), 1, batch, &r, nullptr), Status::kOk);
    }
  }
};

// One configuration of the tests: a model, its options, a flash geometry.
struct Setup {
  Model model;
  TrainerOptions options;
  uint32_t page, program;
  const char* label;
  size_t arena = 0;
  uint32_t region = 0;
  explicit Setup(const Model& m, const TrainerOptions& o, uint32_t pg, uint32_t pr, const char* l)
      : model(m), options(o), page(pg), program(pr), label(l) {
    arena = RequiredArena(model, options);
    Device d(model, arena, options);
    region = static_cast<uint32_t>(d.trainer.CheckpointStorageBytes(page));
  }
  RamFlash Flash() const { return RamFlash(region, page, program); }
};

// Boots on `flash` and loads: whether it loaded, and what it holds.
inline bool Boot(const Setup& s, const RamFlash& flash, Snapshot* got) {
  RamFlash disk = flash.Rebooted();
  Device d(s.model, s.arena, s.options);
  CHECK_STATUS(d.init, Status::kOk);
  bool loaded = false;
  const Status st = d.trainer.LoadCheckpoint(disk, &loaded);
  CHECK_MSG(st == Status::kOk, "%s: load k%s (%s)", s.label, tflm_train::StatusName(st), d.trainer.error_message());
  *got = d.Snap();
  return loaded;
}

inline TrainerOptions Policy(PolicyKind kind, uint32_t batch = 0) { return WithPolicy(kind, batch); }

// Where slot `slot` starts in `flash` (its halves).
inline uint8_t* SlotBytes(RamFlash* flash, int slot) {
  return flash->bytes.data() + (slot == 0 ? 0 : flash->bytes.size() / 2);
}

// The header of slot `slot`, rewritten by `edit` with a fresh header CRC.
template <typename Edit>
void EditHeader(RamFlash* flash, int slot, Edit edit) {
  uint8_t* at = SlotBytes(flash, slot);
  tflm_train::CheckpointHeader h;
  CHECK(tflm_train::DecodeCheckpointHeader(at, &h));
  edit(&h);
  tflm_train::EncodeCheckpointHeader(h, at);
}

// Replaces `n` bytes at `at` in slot `slot`'s payload and fixes both CRCs: the slot
// stays complete, as a crafted one would be.
inline void EditPayload(RamFlash* flash, int slot, uint32_t at, const void* src, size_t n) {
  uint8_t* payload = SlotBytes(flash, slot) + tflm_train::kCheckpointPayloadOffset;
  memcpy(payload + at, src, n);
  EditHeader(flash, slot, [&](tflm_train::CheckpointHeader* h) {
    h->payload_crc = tflm_train::Crc32(0, payload, h->payload_bytes);
  });
}

inline tflm_train::CheckpointHeader Header(const RamFlash& flash, int slot) {
  tflm_train::CheckpointHeader h;
  CHECK(tflm_train::DecodeCheckpointHeader(flash.bytes.data() + (slot == 0 ? 0 : flash.bytes.size() / 2), &h));
  return h;
}

inline uint32_t Sequence(const RamFlash& flash, int slot) {
  tflm_train::CheckpointHeader h;
  const uint8_t* at = flash.bytes.data() + (slot == 0 ? 0 : flash.bytes.size() / 2);
  return tflm_train::DecodeCheckpointHeader(at, &h) ? h.sequence : 0xDEADu;
}

}  // namespace test

#endif  // TFLM_TRAIN_TESTS_FLASH_FIXTURE_H_
