// Checkpoints in flash (checkpoint.cc, docs/checkpoints.md): which slot a save
// writes and a load reads. Fresh flash loads nothing; saves alternate slots with
// growing sequence numbers that wrap; a corrupt slot falls back to the other;
// another model's checkpoint is refused and changes nothing; bad geometry and
// failing storage report; no heap. (Power cuts: test_checkpoint.cc.)
#include <stdio.h>
#include <string.h>

#include <vector>

#include "flash_fixture.h"
#include "heap_counter.h"

using namespace test;  // NOLINT: the fixture's names

TEST(FreshFlashLoadsNothing) {
  const Setup s(PlainModel(), TrainerOptions(), 256, 4, "plain");
  Device d(s.model, s.arena, s.options);
  const Snapshot before = d.Snap();
  RamFlash flash = s.Flash();
  bool loaded = true;
  CHECK_STATUS(d.trainer.LoadCheckpoint(flash, &loaded), Status::kOk);
  CHECK(!loaded && d.Snap() == before);
  // Garbage that is not a checkpoint reads as none too.
  for (size_t i = 0; i < flash.bytes.size(); ++i) flash.bytes[i] = static_cast<uint8_t>(i * 7);
  loaded = true;
  CHECK_STATUS(d.trainer.LoadCheckpoint(flash, &loaded), Status::kOk);
  CHECK(!loaded && d.Snap() == before);
}

TEST(SlotsAlternateAndSequenceGrows) {
  const Setup s(PlainModel(), TrainerOptions(), 256, 4, "plain");
  Device d(s.model, s.arena, s.options);
  RamFlash flash = s.Flash();
  Lcg rng(3);
  for (int i = 0; i < 5; ++i) {
    d.Train(&rng, 1);
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
    CHECK(Sequence(flash, i % 2) == static_cast<uint32_t>(i + 1));
    Snapshot got;
    CHECK(Boot(s, flash, &got) && got == d.Snap());
  }
  CHECK(flash.misuse == nullptr);
}

TEST(CorruptSlotFallsBackToTheOther) {
  const Setup s(MomentumModel(), TrainerOptions(), 256, 4, "momentum");
  Device d(s.model, s.arena, s.options);
  RamFlash flash = s.Flash();
  Lcg rng(4);
  d.Train(&rng, 2);
  CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);  // slot 0
  const Snapshot older = d.Snap();
  d.Train(&rng, 2);
  CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);  // slot 1
  const Snapshot newer = d.Snap();
  const uint32_t half = s.region / 2;
  const uint32_t payload_bytes = static_cast<uint32_t>(d.trainer.StateBytes()) + (3 * 4 + 3 + 2 * 3 + 2) * 4;
  Lcg pick(9);
  for (int i = 0; i < 40; ++i) {
    RamFlash bad = flash.Rebooted();
    // A flipped bit anywhere in the newer slot's header or payload.
    const uint32_t payload_at = static_cast<uint32_t>(pick.Int(0, static_cast<int>(payload_bytes) - 1));
    const uint32_t at = i < 8 ? static_cast<uint32_t>(i * 6) : tflm_train::kCheckpointPayloadOffset + payload_at;
    bad.bytes[half + at] ^= static_cast<uint8_t>(1u << (i % 8));
    Snapshot got;
    CHECK_MSG(Boot(s, bad, &got) && got == older, "flipped byte %u of the newer slot", at);
    // Saving then replaces the corrupt slot, never the good one (a torn header's
    // sequence number is unknown, so the new one follows the good slot's).
    Device e(s.model, s.arena, s.options);
    CHECK_STATUS(e.trainer.SaveCheckpoint(bad), Status::kOk);
    CHECK(Sequence(bad, 0) == 1 && Sequence(bad, 1) == (i < 8 ? 2u : 3u));
  }
  // Both slots corrupt: nothing loads, and the trainer is untouched.
  RamFlash both = flash.Rebooted();
  both.bytes[tflm_train::kCheckpointPayloadOffset + 5] ^= 1;
  both.bytes[half + tflm_train::kCheckpointPayloadOffset + 5] ^= 1;
  Snapshot got;
  CHECK(!Boot(s, both, &got));
  Snapshot fresh;
  CHECK(!Boot(s, s.Flash(), &fresh) && got == fresh);
  CHECK(!(newer == older));
}

TEST(AnotherModelsCheckpointIsRefused) {
  const Setup plain(PlainModel(), TrainerOptions(), 1024, 4, "plain");
  const Setup cnn(CnnModel(), TrainerOptions(), 1024, 4, "cnn");
  const Setup momentum(MomentumModel(), TrainerOptions(), 1024, 4, "momentum");
  RamFlash flash(cnn.region > plain.region ? cnn.region : plain.region, 1024, 4);
  Device c(cnn.model, cnn.arena, cnn.options);
  CHECK_STATUS(c.trainer.SaveCheckpoint(flash), Status::kOk);
  for (const Setup* other : {&plain, &momentum}) {  // momentum: the plain network with another optimizer
    Device d(other->model, other->arena, other->options);
    Lcg rng(6);
    d.Train(&rng, 2);
    const Snapshot before = d.Snap();
    bool loaded = true;
    CHECK_STATUS(d.trainer.LoadCheckpoint(flash, &loaded), Status::kInvalidArgument);
    CHECK_MSG(!loaded && strstr(d.trainer.error_message(), "another model") != nullptr, "%s",
              d.trainer.error_message());
    printf("    %s: %s\n", other->label, d.trainer.error_message());
    CHECK(d.Snap() == before);
    d.Train(&rng, 1);  // still usable
  }
  RamFlash two = flash.Rebooted();
  Device p(plain.model, plain.arena, plain.options);
  Device m(momentum.model, momentum.arena, momentum.options);
  CHECK_STATUS(m.trainer.SaveCheckpoint(two), Status::kOk);  // the other slot: momentum's
  bool loaded = false;
  CHECK_STATUS(p.trainer.LoadCheckpoint(two, &loaded), Status::kInvalidArgument);
  // Saving its own starts over; from then on it loads, and the cnn's is gone.
  CHECK_STATUS(p.trainer.SaveCheckpoint(two), Status::kOk);
  CHECK_STATUS(p.trainer.LoadCheckpoint(two, &loaded), Status::kOk);
  CHECK(loaded);
  CHECK_STATUS(c.trainer.LoadCheckpoint(two, &loaded), Status::kInvalidArgument);
  // Same sizes but other layer shapes, or another format version (headers edited to say so).
  RamFlash shapes = two.Rebooted();
  EditHeader(&shapes, 0, [](tflm_train::CheckpointHeader* h) { h->fingerprint ^= 1u; });
  CHECK_STATUS(p.trainer.LoadCheckpoint(shapes, &loaded), Status::kInvalidArgument);
  CHECK_MSG(strstr(p.trainer.error_message(), "other layer shapes") != nullptr, "%s", p.trainer.error_message());
  RamFlash version = two.Rebooted();
  EditHeader(&version, 0, [](tflm_train::CheckpointHeader* h) { h->version = 2; });
  CHECK_STATUS(p.trainer.LoadCheckpoint(version, &loaded), Status::kInvalidArgument);
  CHECK_MSG(strstr(p.trainer.error_message(), "format version 2") != nullptr, "%s", p.trainer.error_message());
}

TEST(SequenceWrapsAround) {
  const Setup s(PlainModel(), TrainerOptions(), 256, 4, "plain");
  Device d(s.model, s.arena, s.options);
  RamFlash flash = s.Flash();
  Lcg rng(12);
  CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
  EditHeader(&flash, 0, [](tflm_train::CheckpointHeader* h) { h->sequence = 0xFFFFFFFFu; });
  d.Train(&rng, 1);
  CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
  CHECK(Sequence(flash, 0) == 0xFFFFFFFFu && Sequence(flash, 1) == 0);
  Snapshot got;
  CHECK(Boot(s, flash, &got) && got == d.Snap());  // 0 is newer than 0xFFFFFFFF
  d.Train(&rng, 1);
  CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);  // replaces 0xFFFFFFFF, not 0
  CHECK(Sequence(flash, 0) == 1 && Sequence(flash, 1) == 0);
  CHECK(Boot(s, flash, &got) && got == d.Snap());
  // Half the number space apart the order turns: 0x80000001 is older than 1.
  EditHeader(&flash, 1, [](tflm_train::CheckpointHeader* h) { h->sequence = 0x80000002u; });
  RamFlash older_wins = flash.Rebooted();
  Snapshot other;
  CHECK(Boot(s, older_wins, &other) && other == d.Snap());
  CHECK(tflm_train::SequenceNewer(1, 0xFFFFFFFFu) && !tflm_train::SequenceNewer(0xFFFFFFFFu, 1) &&
        tflm_train::SequenceNewer(0x7FFFFFFFu, 0) && !tflm_train::SequenceNewer(0x80000001u, 0));
}

TEST(StorageSizeAndGeometry) {
  const Setup s(PlainModel(), TrainerOptions(), 256, 4, "plain");
  Device d(s.model, s.arena, s.options);
  // The plain model: 23 parameters (92 bytes) and 100 state bytes after the 256-byte header area.
  CHECK(d.trainer.StateBytes() == 100);
  CHECK(d.trainer.CheckpointStorageBytes(256) == 2 * 512);
  CHECK(d.trainer.CheckpointStorageBytes(64) == 2 * 448);
  CHECK(d.trainer.CheckpointStorageBytes(4096) == 2 * 4096);
  CHECK(d.trainer.CheckpointStorageBytes(0) == 0 && d.trainer.CheckpointStorageBytes(3) == 0);
  Trainer idle;
  CHECK(idle.CheckpointStorageBytes(256) == 0);
  const Snapshot before = d.Snap();
  const struct {
    uint32_t size, page, program;
    const char* named;
  } bad[] = {{1024, 3, 1, "page_size 3"},     {1024, 256, 3, "program_size 3"},
             {8192, 4096, 512, "program_size 512"}, {1024, 128, 256, "program_size 256"},
             {512, 256, 4, "storage of 512 bytes"}, {1280, 256, 4, "storage of 1280 bytes"},
             {1000, 256, 4, "storage of 1000 bytes"}, {0, 256, 4, "storage of 0 bytes"}};
  for (const auto& b : bad) {
    RamFlash flash(b.size, b.page, b.program);
    bool loaded = true;
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kInvalidArgument);
    CHECK_MSG(strstr(d.trainer.error_message(), b.named) != nullptr, "%s", d.trainer.error_message());
    CHECK_STATUS(d.trainer.LoadCheckpoint(flash, &loaded), Status::kInvalidArgument);
    CHECK(!loaded && flash.events == 0 && d.Snap() == before);
  }
  RamFlash tight(768, 64, 4);  // an even number of pages, but it needs 2 x 448
  CHECK_STATUS(d.trainer.SaveCheckpoint(tight), Status::kInvalidArgument);
  CHECK_MSG(strstr(d.trainer.error_message(), "768 bytes does not fit") != nullptr &&
                strstr(d.trainer.error_message(), "need 896") != nullptr,
            "%s", d.trainer.error_message());
  RamFlash roomy(4 * 1024, 1024, 256);  // larger than needed, the largest program unit
  CHECK_STATUS(d.trainer.SaveCheckpoint(roomy), Status::kOk);
  CHECK_STATUS(d.trainer.SaveCheckpoint(roomy), Status::kOk);
  CHECK(Sequence(roomy, 1) == 2 && roomy.misuse == nullptr);
  // The image reads the same with another program size: the layout does not depend on it.
  RamFlash bytewise(4 * 1024, 1024, 1);
  bytewise.bytes = roomy.bytes;
  Device e(s.model, s.arena, s.options);
  bool loaded = false;
  CHECK_STATUS(e.trainer.LoadCheckpoint(bytewise, &loaded), Status::kOk);
  CHECK(loaded && e.Snap() == before);
}

TEST(FailingStorageReports) {
  const Setup s(MomentumModel(), TrainerOptions(), 256, 4, "momentum");
  Device d(s.model, s.arena, s.options);
  Lcg rng(14);
  d.Train(&rng, 2);
  RamFlash flash = s.Flash();
  CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
  const Snapshot saved = d.Snap();
  d.Train(&rng, 1);
  for (int failure = 0; failure < 3; ++failure) {
    RamFlash f = flash.Rebooted();
    f.fail_reads_after = failure == 0 ? 0 : -1;
    f.fail_erase = failure == 1;
    f.fail_program = failure == 2;
    CHECK_STATUS(d.trainer.SaveCheckpoint(f), Status::kStorageError);
    CHECK_MSG(strstr(d.trainer.error_message(), failure == 0 ? "Read" : failure == 1 ? "ErasePage" : "Program"),
              "%s", d.trainer.error_message());
    Snapshot got;
    CHECK(Boot(s, f, &got) && got == saved);  // the checkpoint before survives
  }
  // A load whose reads stop after K calls: while it is still checking, nothing
  // changes and the trainer goes on; once it is copying (the slot checked out,
  // then the storage failed), the trainer reports that and must be Init again.
  int checking = 0, copying = 0;
  for (long long k = 0; k < 1000; ++k) {
    Device e(s.model, s.arena, s.options);
    const Snapshot before = e.Snap();
    RamFlash f = flash.Rebooted();
    f.fail_reads_after = k;
    bool loaded = false;
    const Status st = e.trainer.LoadCheckpoint(f, &loaded);
    if (st == Status::kOk) {
      CHECK(loaded && e.Snap() == saved);
      break;
    }
    CHECK_STATUS(st, Status::kStorageError);
    char why[200];
    snprintf(why, sizeof(why), "%s", e.trainer.error_message());
    float x[4] = {}, out[2];
    if (e.trainer.Predict(x, 4, out, 2) == Status::kOk) {
      ++checking;
      CHECK(!loaded && e.Snap() == before);
    } else {
      ++copying;
      CHECK_MSG(strstr(why, "Init again") != nullptr, "%s", why);
      CHECK_STATUS(e.trainer.Init(e.model.data(), e.model.size(), e.arena.data(), e.arena.size(), s.options),
                   Status::kOk);
      RamFlash good = flash.Rebooted();
      CHECK_STATUS(e.trainer.LoadCheckpoint(good, &loaded), Status::kOk);
      CHECK(loaded && e.Snap() == saved);
    }
  }
  CHECK(checking > 2 && copying > 2);
}

TEST(NeedsAnInitializedTrainer) {
  Trainer t;
  RamFlash flash(1024, 256, 4);
  bool loaded = true;
  CHECK_STATUS(t.SaveCheckpoint(flash), Status::kNotInitialized);
  CHECK_STATUS(t.LoadCheckpoint(flash, &loaded), Status::kNotInitialized);
  CHECK(!loaded);
  const Setup s(PlainModel(), TrainerOptions(), 256, 4, "plain");
  Device d(s.model, s.arena, s.options);
  CHECK_STATUS(d.trainer.LoadCheckpoint(flash, nullptr), Status::kInvalidArgument);
}

TEST(NoHeapInSaveOrLoad) {
  if (!kCountsHeap) return;
  const Setup s(CnnModel(), TrainerOptions(), 512, 8, "cnn");
  Device d(s.model, s.arena, s.options);
  RamFlash flash = s.Flash();
  bool loaded = false;
  const unsigned long start = g_heap_calls;
  const Status save1 = d.trainer.SaveCheckpoint(flash);
  const Status save2 = d.trainer.SaveCheckpoint(flash);
  const Status load = d.trainer.LoadCheckpoint(flash, &loaded);
  const size_t bytes = d.trainer.CheckpointStorageBytes(512);
  CHECK(g_heap_calls == start);
  CHECK(save1 == Status::kOk && save2 == Status::kOk && load == Status::kOk && loaded && bytes == s.region);
}

int main() { return test::RunAll(); }
