// Checkpoints in flash (checkpoint.cc, docs/checkpoints.md): which slot a save
// writes and a load reads. Fresh flash loads nothing; saves alternate slots with
// growing sequence numbers that wrap; a corrupt, unreadable (ECC) or refused slot
// falls back to the other, and the next save writes over it; an image of another
// region size is refused with both sizes; the new sequence number follows the kept
// slot; another model's checkpoint is refused and changes nothing; bad geometry and
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
    // Saving then replaces the corrupt slot, never the good one; the new sequence
    // number follows the good slot's.
    Device e(s.model, s.arena, s.options);
    CHECK_STATUS(e.trainer.SaveCheckpoint(bad), Status::kOk);
    CHECK(Sequence(bad, 0) == 1 && Sequence(bad, 1) == 2);
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

TEST(UnreadableSlotIsNoCheckpoint) {
  // Flash with ECC fails a read of a unit a power cut tore, until its page is erased.
  const Setup s(MomentumModel(), TrainerOptions(), 256, 8, "momentum");
  Device d(s.model, s.arena, s.options);
  RamFlash flash = s.Flash();
  Lcg rng(15);
  d.Train(&rng, 2);
  CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);  // slot 0
  const Snapshot older = d.Snap();
  d.Train(&rng, 2);
  CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);  // slot 1
  const Snapshot newer = d.Snap();
  const uint32_t half = s.region / 2;
  for (uint32_t at : {0u, 40u, tflm_train::kCheckpointPayloadOffset + 64}) {  // the header or the payload
    for (int slot = 0; slot < 2; ++slot) {
      RamFlash bad = flash.Rebooted();
      bad.Tear(slot * half + at, 8);
      Snapshot got;  // the load falls back to the other slot
      CHECK_MSG(Boot(s, bad, &got) && got == (slot == 1 ? older : newer), "slot %d unreadable at %u", slot, at);
      // A save writes the unreadable slot (its erase clears the fault), never the good one.
      Device e(s.model, s.arena, s.options);
      e.Train(&rng, 1);
      CHECK_STATUS(e.trainer.SaveCheckpoint(bad), Status::kOk);
      CHECK(!bad.AnyTorn(0, bad.size()) && bad.misuse == nullptr);
      CHECK(Sequence(bad, 1 - slot) == static_cast<uint32_t>(2 - slot) && Sequence(bad, slot) == 3u - slot);
      CHECK(Boot(s, bad, &got) && got == e.Snap());
    }
  }
  // Neither slot readable: kStorageError and nothing changes; a save still works.
  RamFlash both = flash.Rebooted();
  both.Tear(0, 8);
  both.Tear(half + tflm_train::kCheckpointPayloadOffset, 8);
  Device f(s.model, s.arena, s.options);
  const Snapshot before = f.Snap();
  bool loaded = true;
  CHECK_STATUS(f.trainer.LoadCheckpoint(both, &loaded), Status::kStorageError);
  CHECK_MSG(strstr(f.trainer.error_message(), "both checkpoint slots") != nullptr, "%s", f.trainer.error_message());
  CHECK(!loaded && f.Snap() == before);
  f.Train(&rng, 1);
  CHECK_STATUS(f.trainer.SaveCheckpoint(both), Status::kOk);
  Snapshot got;
  CHECK(Boot(s, both, &got) && got == f.Snap() && Sequence(both, 0) == 3);  // after slot 1's header
  // One slot unreadable, the other erased: nothing to load; the save goes into the unreadable one.
  RamFlash one = s.Flash();
  one.Tear(half, 8);
  CHECK(!Boot(s, one, &got));
  CHECK_STATUS(f.trainer.SaveCheckpoint(one), Status::kOk);
  CHECK(Sequence(one, 1) == 1 && Sequence(one, 0) == 0xDEADu && Boot(s, one, &got) && got == f.Snap());
}

TEST(ImageOfAnotherRegionSizeIsRefused) {
  // Slot 1 is at half the region, so an image made for one region size cannot be
  // read in another: its header says so, and a load says which sizes.
  const Setup s(PlainModel(), TrainerOptions(), 256, 4, "plain");  // 1024 bytes
  Device d(s.model, s.arena, s.options);
  RamFlash small = s.Flash();
  Lcg rng(16);
  d.Train(&rng, 1);
  CHECK_STATUS(d.trainer.SaveCheckpoint(small), Status::kOk);  // slot 0, the older
  d.Train(&rng, 1);
  CHECK_STATUS(d.trainer.SaveCheckpoint(small), Status::kOk);  // slot 1, at 512
  CHECK(Header(small, 0).region_bytes == s.region && Header(small, 1).region_bytes == s.region);
  RamFlash big(2 * s.region, 256, 4);  // the image programmed into a larger region: its slot 1 is at 1024
  memcpy(big.bytes.data(), small.bytes.data(), small.bytes.size());
  Device e(s.model, s.arena, s.options);
  const Snapshot before = e.Snap();
  bool loaded = true;
  CHECK_STATUS(e.trainer.LoadCheckpoint(big, &loaded), Status::kInvalidArgument);
  CHECK_MSG(strstr(e.trainer.error_message(), "region of 1024 bytes, this storage has 2048") != nullptr, "%s",
            e.trainer.error_message());
  CHECK(!loaded && e.Snap() == before);
  RamFlash shrunk = small.Rebooted();  // and the other way round
  for (int slot = 0; slot < 2; ++slot) {
    EditHeader(&shrunk, slot, [](tflm_train::CheckpointHeader* h) { h->region_bytes = 4096; });
  }
  CHECK_STATUS(e.trainer.LoadCheckpoint(shrunk, &loaded), Status::kInvalidArgument);
  CHECK_MSG(strstr(e.trainer.error_message(), "region of 4096 bytes, this storage has 1024") != nullptr, "%s",
            e.trainer.error_message());
  // A save there keeps the foreign slot and writes the other; from then on that loads,
  // and a misplaced slot never does, even when newer.
  e.Train(&rng, 3);
  CHECK_STATUS(e.trainer.SaveCheckpoint(big), Status::kOk);
  CHECK(Sequence(big, 1) == 2 && Header(big, 1).region_bytes == 2 * s.region);
  EditHeader(&big, 0, [](tflm_train::CheckpointHeader* h) { h->sequence = 9; });
  Snapshot got;
  CHECK(Boot(s, big, &got) && got == e.Snap());
  CHECK_STATUS(e.trainer.SaveCheckpoint(big), Status::kOk);  // replaces the misplaced one
  CHECK(Sequence(big, 0) == 3 && Header(big, 0).region_bytes == 2 * s.region && big.misuse == nullptr);
}

TEST(NewSequenceFollowsTheKeptSlot) {
  // A header that is newer than the kept checkpoint but will be erased (it vouches
  // for nothing, or is another model's) must not set the new number: half the
  // number space on, its successor would be older than the checkpoint that stays.
  const Setup s(PlainModel(), TrainerOptions(), 256, 4, "plain");
  for (int crafted = 0; crafted < 2; ++crafted) {
    Device d(s.model, s.arena, s.options);
    RamFlash flash = s.Flash();
    Lcg rng(17);
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);  // slot 0, sequence 1
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
    EditHeader(&flash, 1, [crafted](tflm_train::CheckpointHeader* h) {
      h->sequence = 0x80000000u;  // newer than 1
      if (crafted == 0) h->payload_crc ^= 1u; else h->fingerprint ^= 1u;
    });
    d.Train(&rng, 2);
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
    CHECK_MSG(Sequence(flash, 0) == 1 && Sequence(flash, 1) == 2, "%x %x", Sequence(flash, 0), Sequence(flash, 1));
    Snapshot got;
    CHECK(Boot(s, flash, &got) && got == d.Snap());
  }
}

TEST(NewerSlotWithARefusedStateFallsBack) {
  // A complete newer slot whose state LoadState would refuse (a crafted one: its CRCs
  // are right) is skipped: the older one loads, and the next save replaces the refused.
  const float bad_ymax = -1.0f, bad_velocity = __builtin_nanf("");
  const Setup plain(PlainModel(), TrainerOptions(), 256, 4, "plain: negative Ymax");
  const Setup momentum(MomentumModel(), TrainerOptions(), 256, 4, "momentum: NaN velocity");
  for (const Setup* s : {&plain, &momentum}) {
    Device d(s->model, s->arena, s->options);
    RamFlash flash = s->Flash();
    Lcg rng(18);
    d.Train(&rng, 2);
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
    const Snapshot older = d.Snap();
    d.Train(&rng, 2);
    CHECK_STATUS(d.trainer.SaveCheckpoint(flash), Status::kOk);
    // The state: its header words, the Counters, a Ymax per layer, then the velocities.
    const uint32_t ymax_at = Header(flash, 1).weight_bytes + 20 + static_cast<uint32_t>(sizeof(tflm_train::Counters));
    const bool velocity = s == &momentum;
    const uint32_t at = ymax_at + (velocity ? 4u * d.trainer.num_trainable_layers() + 8 : 4);
    RamFlash bad = flash.Rebooted();
    EditPayload(&bad, 1, at, velocity ? &bad_velocity : &bad_ymax, 4);
    Snapshot got;
    CHECK_MSG(Boot(*s, bad, &got) && got == older, "%s", s->label);
    Device e(s->model, s->arena, s->options);
    CHECK_STATUS(e.trainer.SaveCheckpoint(bad), Status::kOk);
    CHECK(Sequence(bad, 0) == 1 && Sequence(bad, 1) == 2 && Boot(*s, bad, &got) && got == e.Snap());
    // Both refused: the load says why and changes nothing.
    RamFlash worse = flash.Rebooted();
    EditPayload(&worse, 0, at, velocity ? &bad_velocity : &bad_ymax, 4);
    EditPayload(&worse, 1, at, velocity ? &bad_velocity : &bad_ymax, 4);
    const Snapshot before = e.Snap();
    bool loaded = true;
    CHECK_STATUS(e.trainer.LoadCheckpoint(worse, &loaded), Status::kInvalidArgument);
    CHECK_MSG(strstr(e.trainer.error_message(), "slot 1 cannot be restored: state holds a") != nullptr, "%s",
              e.trainer.error_message());
    CHECK(!loaded && e.Snap() == before);
  }
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
  // No region of 4 GiB or more exists (FlashStorage::size() is 32 bits): 0, never a wrapped size.
  CHECK(d.trainer.CheckpointStorageBytes(1u << 30) == size_t{2} << 30);
  CHECK(d.trainer.CheckpointStorageBytes(1u << 31) == 0);
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
  CHECK(roomy.unaligned == 0);  // the trainer's own buffers are 8-aligned (a help to word-copying drivers)
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
  RamFlash probe = flash.Rebooted();
  CHECK_STATUS(d.trainer.SaveCheckpoint(probe), Status::kOk);
  // An erase or program that fails, or a read-back (of the payload, then of the
  // header) that fails: kStorageError, and the checkpoint before survives, unless the
  // header went in before its read-back failed.
  for (int failure = 0; failure < 4; ++failure) {
    RamFlash f = flash.Rebooted();
    f.fail_erase = failure == 0;
    f.fail_program = failure == 1;
    f.fail_reads_after = failure == 2 ? probe.reads - 2 : failure == 3 ? probe.reads - 1 : -1;
    CHECK_STATUS(d.trainer.SaveCheckpoint(f), Status::kStorageError);
    CHECK_MSG(strstr(d.trainer.error_message(), failure == 0 ? "ErasePage" : failure == 1 ? "Program" : "Read"),
              "%s", d.trainer.error_message());
    Snapshot got;
    CHECK(Boot(s, f, &got) && got == (failure == 3 ? d.Snap() : saved));
  }
  // Reads that always fail: neither slot can be read, so the save has nothing to
  // keep; it writes slot 0 and fails reading it back.
  RamFlash unreadable = flash.Rebooted();
  unreadable.fail_reads_after = 0;
  CHECK_STATUS(d.trainer.SaveCheckpoint(unreadable), Status::kStorageError);
  CHECK_MSG(strstr(d.trainer.error_message(), "Read of ") != nullptr, "%s", d.trainer.error_message());
  // A load whose reads stop after K calls: while it is still checking, the slot
  // whose read failed is no checkpoint (kOk and nothing loaded; kStorageError once
  // neither slot can be read), nothing changes and the trainer goes on; once it is
  // copying (the slot checked out, then the storage failed), the trainer reports
  // that and must be Init again.
  int checking = 0, copying = 0;
  for (long long k = 0; k < 1000; ++k) {
    Device e(s.model, s.arena, s.options);
    const Snapshot before = e.Snap();
    RamFlash f = flash.Rebooted();
    f.fail_reads_after = k;
    bool loaded = false;
    const Status st = e.trainer.LoadCheckpoint(f, &loaded);
    if (st == Status::kOk && loaded) {
      CHECK(e.Snap() == saved);
      break;
    }
    if (st == Status::kOk) {  // the slot's reads failed while it was checked: not a checkpoint
      ++checking;
      CHECK(e.Snap() == before);
      continue;
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
