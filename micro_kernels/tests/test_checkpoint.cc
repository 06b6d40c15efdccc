// Checkpoints in flash (checkpoint.cc, docs/checkpoints.md) under power cuts, on
// the RAM flash of flash_fixture.h (NOR rules; the power goes after any number of
// programmed bytes or erases). For every cut point of a save, a reboot (the
// original model bytes, a new trainer) loads exactly the previous checkpoint or,
// when the save finished, the new one, and saving and loading go on working; the
// same for a second save after a cut one. Resuming from a checkpoint trains on
// byte-identically. (Slot choice, other models, geometry: test_checkpoint_slots.cc.)
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <vector>

#include "crc32.h"
#include "flash_fixture.h"

using namespace test;  // NOLINT: the fixture's names

namespace {

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

// Every cut point of a save: before it the flash holds `previous` (or nothing).
// A reboot then loads exactly `previous`, or the new checkpoint only when the
// save finished; a second save, itself cut at `second_stride`-spaced points, keeps
// that true. Returns the number of reboots checked.
int CutEverywhere(const Setup& s, bool with_previous, int second_stride) {
  Lcg rng(71);
  Device d(s.model, s.arena, s.options);
  CHECK_STATUS(d.init, Status::kOk);
  RamFlash flash = s.Flash();
  Snapshot previous;
  if (with_previous) {
    d.Train(&rng, 3);
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
    previous = d.Snap();
  }
  d.Train(&rng, 2);
  const Snapshot next = d.Snap();
  RamFlash whole = flash.Rebooted();
  CHECK_STATUS(d.trainer.SaveCheckpoint(whole), Status::kOk);
  const long long total = whole.events;
  CHECK(d.Snap() == next);  // a save changes nothing in the trainer
  int reboots = 0;
  for (long long cut = 0; cut <= total; ++cut) {
    RamFlash after(0, 1, 1);
    for (int mode = 0; mode < 2; ++mode) {  // which half of a cut erase survives
      RamFlash start = flash.Rebooted();
      start.erase_cut_keeps_start = mode == 1;
      const Status status = CutSave(&d, start, cut, &after);
      CHECK_MSG((status == Status::kOk) == (cut == total), "%s cut %lld/%lld: k%s", s.label, cut, total,
                tflm_train::StatusName(status));
      Snapshot got;
      const bool loaded = Boot(s, after, &got);
      ++reboots;
      const bool ok = cut == total ? loaded && got == next
                                   : (with_previous ? loaded && got == previous : !loaded);
      CHECK_MSG(ok, "%s: cut after %lld of %lld events (erase keeps %s half): loaded %d, %s", s.label, cut, total,
                mode ? "first" : "second", loaded,
                got == previous ? "the previous checkpoint" : got == next ? "the new one" : "a mix");
    }
    if (cut % 16 == 0 || cut == total) CheckStillWorks(s, after, &rng);
    // A second save after this cut one (a newer state): must not overwrite the survivor.
    if (second_stride > 0 && cut < total && cut % second_stride == 0) {
      Device e(s.model, s.arena, s.options);
      Lcg more(cut);
      e.Train(&more, 4);
      const Snapshot third = e.Snap();
      RamFlash ok = after.Rebooted();
      CHECK_STATUS(e.trainer.SaveCheckpoint(ok), Status::kOk);
      const long long total2 = ok.events;
      for (long long cut2 = 0; cut2 <= total2; ++cut2) {
        RamFlash after2(0, 1, 1);
        const Status status = CutSave(&e, after, cut2, &after2);
        CHECK((status == Status::kOk) == (cut2 == total2));
        Snapshot got;
        const bool loaded = Boot(s, after2, &got);
        ++reboots;
        const bool good = cut2 == total2 ? loaded && got == third
                                         : (with_previous ? loaded && got == previous : !loaded);
        CHECK_MSG(good, "%s: first save cut at %lld, second at %lld of %lld: loaded %d", s.label, cut, cut2, total2,
                  loaded);
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
  for (uint32_t program : {1u, 4u, 16u}) {
    const Setup full(PlainModel(), TrainerOptions(), 64, program, "plain Full");
    const Setup gated(MomentumModel(), Policy(PolicyKind::kTinyPropV2), 256, program, "momentum TinyPropV2");
    for (const Setup* s : {&full, &gated}) {
      reboots += CutEverywhere(*s, /*with_previous=*/true, program == 4 ? 9 : 0);
      reboots += CutEverywhere(*s, /*with_previous=*/false, program == 16 ? 11 : 0);
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
  d.Train(&train, 4);
  CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
  const Snapshot previous = d.Snap();
  d.Train(&train, 3);
  const Snapshot next = d.Snap();
  RamFlash whole = flash.Rebooted();
  CHECK_STATUS(d.trainer.SaveCheckpoint(whole), Status::kOk);
  for (int i = 0; i < 60; ++i) {
    const long long cut = rng.Int(0, static_cast<int>(whole.events));
    RamFlash after(0, 1, 1);
    CutSave(&d, flash, cut, &after);
    Snapshot got;
    CHECK(Boot(s, after, &got));
    CHECK_MSG(got == (cut == whole.events ? next : previous), "cnn: cut at %lld of %lld", cut, whole.events);
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
