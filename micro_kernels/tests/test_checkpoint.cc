// Checkpoints in flash (checkpoint.cc, docs/checkpoints.md) under power cuts, on
// the RAM flash of flash_fixture.h (NOR rules; the power goes after any number of
// programmed bytes or erases). For every cut point of a save, on empty flash, with
// one checkpoint and with both slots full, and in every cut mode (a cut erase keeps
// either half of the page; a cut program leaves a byte with some of its bits; ECC
// flash whose torn units fail to read), a reboot (the original model bytes, a new
// trainer) loads exactly the previous checkpoint or, only once the header's last
// byte is in, the new one; and saving and loading go on working; the same for a
// second save after a cut one. Resuming from a checkpoint trains on
// byte-identically. (Slot choice, other models, geometry: test_checkpoint_slots.cc.)
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <vector>

#include "crc32.h"
#include "flash_fixture.h"

using namespace test;  // NOLINT: the fixture's names

namespace {

// How a cut tears what it was doing (flash_fixture.h).
struct CutMode {
  bool keeps_start, bits, ecc;
  const char* name;
};
constexpr CutMode kCutModes[] = {{false, false, false, "erase keeps the second half"},
                                 {true, true, false, "erase keeps the first half, bits"},
                                 {false, true, true, "ECC: torn units fail to read"}};
constexpr int kNumCutModes = 3;

RamFlash WithMode(const RamFlash& flash, const CutMode& mode) {
  RamFlash r = flash.Rebooted();
  r.erase_cut_keeps_start = mode.keeps_start;
  r.cut_leaves_bits = mode.bits;
  r.ecc = mode.ecc;
  return r;
}

// After any cut, the rebooted device can still save and load (its own state back).
void CheckStillWorks(const Setup& s, const RamFlash& flash, Lcg* rng) {
  RamFlash disk = flash.Rebooted();
  Device d(s.model, s.arena, s.options);
  bool loaded = false;
  CHECK_STATUS(d.trainer.LoadCheckpoint(disk, &loaded), Status::kOk);
  d.Train(rng, 1);
  CHECK_STATUS(d.trainer.SaveCheckpoint(disk), Status::kOk);
  CHECK(disk.misuse == nullptr);
  Snapshot got;
  CHECK(Boot(s, disk, &got) && got == d.Snap());
}

// Saves on a copy of `before` with the power cut after `cut` events; the status.
Status CutSave(Device* d, const RamFlash& before, long long cut, RamFlash* after) {
  *after = before.Rebooted();
  after->budget = cut;
  const Status status = d->trainer.SaveCheckpoint(*after);
  CHECK_MSG(after->misuse == nullptr, "cut %lld: %s", cut, after->misuse);
  return status;
}

// A save, done in full on a copy of `before`: its events, and the event that
// programs the last header byte that is not 0xFF. The header is programmed last,
// padded to a program unit, so a cut after that event leaves the header complete.
struct SaveEvents {
  long long total, last_header_byte;
};
SaveEvents CountEvents(Device* d, const RamFlash& before) {
  RamFlash whole = before.Rebooted();
  CHECK_STATUS(d->trainer.SaveCheckpoint(whole), Status::kOk);
  tflm_train::CheckpointHeader h0, h1;
  const bool has0 = tflm_train::DecodeCheckpointHeader(SlotBytes(&whole, 0), &h0);
  const bool has1 = tflm_train::DecodeCheckpointHeader(SlotBytes(&whole, 1), &h1);
  // The slot it wrote: the one with the newer header.
  const int slot = has1 && (!has0 || tflm_train::SequenceNewer(h1.sequence, h0.sequence)) ? 1 : 0;
  const uint8_t* header = SlotBytes(&whole, slot);
  int last = tflm_train::kCheckpointHeaderBytes - 1;
  while (header[last] == 0xFF) --last;
  const uint32_t unit = whole.program_size();
  const long long header_start =
      whole.events - (tflm_train::kCheckpointHeaderBytes + unit - 1) / unit * unit;
  return {whole.events, header_start + last};
}

// What a reboot after a save cut at `cut` must load: the new checkpoint once every
// header byte that is not 0xFF is in (unless ECC: the cut tore the header's unit, so
// only a finished save), else the survivor.
bool Expected(const SaveEvents& e, long long cut, const CutMode& mode) {
  return cut == e.total || (cut > e.last_header_byte && !mode.ecc);
}

// Every cut point of a save, in every cut mode, after `prefill` saves (0: empty
// flash; 1: the target slot erased; 2: both slots full, the steady state). A
// reboot then loads exactly the previous checkpoint (or nothing, without one), or
// the new one when Expected; a second save, itself cut at every point, after
// every `second_stride`-th cut, keeps that true. Returns the number of reboots checked.
int CutEverywhere(const Setup& s, int prefill, int second_stride) {
  Lcg rng(71);
  Device d(s.model, s.arena, s.options);
  CHECK_STATUS(d.init, Status::kOk);
  RamFlash flash = s.Flash();
  Snapshot previous;
  for (int i = 0; i < prefill; ++i) {
    d.Train(&rng, 3);
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
    previous = d.Snap();
  }
  d.Train(&rng, 2);
  const Snapshot next = d.Snap();
  const SaveEvents events = CountEvents(&d, flash);
  CHECK(d.Snap() == next);  // a save changes nothing in the trainer
  int reboots = 0;
  for (long long cut = 0; cut <= events.total; ++cut) {
    RamFlash after(0, 1, 1);
    bool survivor_loaded = false;
    Snapshot survivor;
    const int second_mode = second_stride > 0 ? static_cast<int>(cut / second_stride) % kNumCutModes : -1;
    for (int m = 0; m < kNumCutModes; ++m) {
      const CutMode& mode = kCutModes[m];
      RamFlash cut_flash(0, 1, 1);
      const Status status = CutSave(&d, WithMode(flash, mode), cut, &cut_flash);
      CHECK_MSG((status == Status::kOk) == (cut == events.total), "%s cut %lld/%lld: k%s", s.label, cut,
                events.total, tflm_train::StatusName(status));
      Snapshot got;
      const bool loaded = Boot(s, cut_flash, &got);
      ++reboots;
      const bool fresh = Expected(events, cut, mode);
      const bool ok = fresh ? loaded && got == next : (prefill > 0 ? loaded && got == previous : !loaded);
      CHECK_MSG(ok, "%s, %d saved before: cut after %lld of %lld events (%s): loaded %d, %s", s.label, prefill, cut,
                events.total, mode.name, loaded,
                got == previous ? "the previous checkpoint" : got == next ? "the new one" : "a mix");
      if (cut % 16 == 0 || cut == events.total) CheckStillWorks(s, cut_flash, &rng);
      if (m == second_mode) {
        after = cut_flash;
        survivor_loaded = loaded;
        survivor = got;
      }
    }
    // A second save after this cut one (a newer state): must not overwrite the survivor.
    if (second_mode >= 0 && cut < events.total && cut % second_stride == 0) {
      const CutMode& mode = kCutModes[second_mode];
      Device e(s.model, s.arena, s.options);
      Lcg more(cut);
      e.Train(&more, 4);
      const Snapshot third = e.Snap();
      const SaveEvents events2 = CountEvents(&e, after);
      for (long long cut2 = 0; cut2 <= events2.total; ++cut2) {
        RamFlash after2(0, 1, 1);
        const Status status = CutSave(&e, after, cut2, &after2);
        CHECK((status == Status::kOk) == (cut2 == events2.total));
        Snapshot got;
        const bool loaded = Boot(s, after2, &got);
        ++reboots;
        const bool good = Expected(events2, cut2, mode) ? loaded && got == third
                                                        : loaded == survivor_loaded && (!loaded || got == survivor);
        CHECK_MSG(good, "%s, %d saved before: first save cut at %lld, second at %lld of %lld (%s): loaded %d", s.label,
                  prefill, cut, cut2, events2.total, mode.name, loaded);
      }
    }
  }
  return reboots;
}

}  // namespace

TEST(Crc32IsZlibs) {
  const char* check = "123456789";
  CHECK(tflm_train::Crc32(0, check, 9) == 0xCBF43926u);
  CHECK(tflm_train::Crc32(tflm_train::Crc32(0, check, 4), check + 4, 5) == 0xCBF43926u);
  CHECK(tflm_train::Crc32(0, check, 0) == 0);
}

TEST(CutAtEveryByteLeavesOneWholeCheckpoint) {
  const clock_t start = clock();
  int reboots = 0;
  // Program units of 1 to 256 bytes: below, at and above the 52-byte header.
  for (uint32_t program : {1u, 4u, 16u, 64u, 256u}) {
    const Setup full(PlainModel(), TrainerOptions(), program > 64 ? program : 64, program, "plain Full");
    const Setup gated(MomentumModel(), Policy(PolicyKind::kTinyPropV2), 256, program, "momentum TinyPropV2");
    for (const Setup* s : {&full, &gated}) {
      reboots += CutEverywhere(*s, /*prefill=*/2, program == 4 ? 9 : program == 64 ? 13 : 0);
      reboots += CutEverywhere(*s, /*prefill=*/program == 16 ? 0 : 1, program == 16 ? 11 : 0);
    }
  }
  printf("    %d reboots after cut saves in %.2f s\n", reboots,
         static_cast<double>(clock() - start) / CLOCKS_PER_SEC);
}

TEST(CutsAtRandomOnTheCnn) {
  Lcg rng(5);
  const Setup s(CnnModel(), Policy(PolicyKind::kTinyPropV2), 512, 16, "cnn TinyPropV2");
  Device d(s.model, s.arena, s.options);
  RamFlash flash = s.Flash();
  Lcg train(8);
  for (int save = 0; save < 2; ++save) {  // both slots full
    d.Train(&train, 4);
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
  }
  const Snapshot previous = d.Snap();
  d.Train(&train, 3);
  const Snapshot next = d.Snap();
  const SaveEvents events = CountEvents(&d, flash);
  for (int i = 0; i < 60; ++i) {
    const long long cut = rng.Int(0, static_cast<int>(events.total));
    const CutMode& mode = kCutModes[i % kNumCutModes];
    RamFlash after(0, 1, 1);
    CutSave(&d, WithMode(flash, mode), cut, &after);
    Snapshot got;
    CHECK(Boot(s, after, &got));
    CHECK_MSG(got == (Expected(events, cut, mode) ? next : previous), "cnn: cut at %lld of %lld (%s)", cut,
              events.total, mode.name);
    if (i % 10 == 0) CheckStillWorks(s, after, &train);
  }
}

TEST(ResumeIsByteIdentical) {
  // N steps, save, reboot over the original bytes, load, M steps == N + M steps.
  const struct {
    Model model;
    TrainerOptions options;
    const char* label;
  } cases[] = {{MomentumModel(), Policy(PolicyKind::kFull), "momentum + cosine, Full"},
               {MomentumModel(), Policy(PolicyKind::kTinyPropV2), "momentum + cosine, TinyPropV2"},
               {MomentumModel(), Policy(PolicyKind::kTinyPropV2, 1), "momentum + cosine, TinyPropV2, batch 1"},
               {CnnModel(), Policy(PolicyKind::kTinyPropV2), "cnn TinyPropV2"}};
  for (const auto& c : cases) {
    const Setup s(c.model, c.options, 4096, 4, c.label);
    Device whole(s.model, s.arena, s.options), first(s.model, s.arena, s.options);
    Lcg a(21), b(21);
    whole.Train(&a, 12);
    first.Train(&b, 7);
    RamFlash flash = s.Flash();
    CHECK_STATUS(first.trainer.SaveCheckpoint(flash), Status::kOk);
    RamFlash disk = flash.Rebooted();
    Device second(s.model, s.arena, s.options);
    bool loaded = false;
    CHECK_STATUS(second.trainer.LoadCheckpoint(disk, &loaded), Status::kOk);
    CHECK(loaded && second.trainer.counters().steps == 7);
    CHECK(second.trainer.LearningRate() == first.trainer.LearningRate());
    second.Train(&b, 5);
    CHECK_MSG(second.model.Same(whole.model) && second.Snap() == whole.Snap(), "%s: resumed training differs",
              c.label);
  }
}

int main() { return test::RunAll(); }
