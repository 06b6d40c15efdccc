// Training checkpoints in flash-like storage (docs/checkpoints.md). The region
// holds two slots; a checkpoint is a header and a payload (every trainable
// layer's weights and bias, then the training state). A save erases the slot
// that LoadCheckpoint would not load from, programs the payload, reads it back
// and programs the header last, so a save cut short at any byte leaves the
// previous checkpoint the one that loads. A load checks the whole slot (CRCs, the
// region size it was saved for, the model, the state's values) before it copies
// anything, and falls back to the other slot when the newest fails a check or
// cannot be read. Everything streams through one small stack buffer: no heap.
#include <string.h>

#include "checkpoint_format.h"
#include "crc32.h"
#include "message.h"
#include "network.h"
#include "state_layout.h"
#include "tflm_train/trainer.h"

namespace tflm_train {

// The payload is the trainer's memory as it is (float32 weights, the state's
// words); the format says little-endian, as every supported target is.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoints are little-endian, as the target must be");
#endif

namespace {

// The stack buffer: a multiple of every program unit allowed, and of 4 (whole floats).
constexpr uint32_t kChunk = kCheckpointPayloadOffset;

bool PowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

uint32_t RoundUp(uint32_t v, uint32_t unit) { return (v + unit - 1) / unit * unit; }

// What a checkpoint of this trainer holds; a slot loads only when its header says the same.
struct Identity {
  uint32_t weight_bytes, state_bytes, layers, fingerprint;
  uint32_t payload_bytes() const { return weight_bytes + state_bytes; }
};

// The fingerprint is a CRC-32 of six little-endian words per trainable layer
// (builtin operator, weights, bias, fan-in, filter height and width), then the
// momentum flag: what decides the payload's layout.
Identity Identify(const Network& net, size_t state_bytes, bool momentum) {
  uint32_t crc = 0, parameters = 0;
  uint8_t bytes[24];
  for (int i = 0; i < net.num_layers; ++i) {
    const TrainableLayer& layer = net.layers[i];
    const OpRuntime& op = net.ops[layer.op];
    const uint32_t words[6] = {static_cast<uint32_t>(op.unit->code), static_cast<uint32_t>(layer.n_weights),
                               static_cast<uint32_t>(layer.n_bias),  static_cast<uint32_t>(op.fan_in),
                               static_cast<uint32_t>(op.conv.filter_h), static_cast<uint32_t>(op.conv.filter_w)};
    for (int w = 0; w < 6; ++w) checkpoint_bytes::Put32(bytes + 4 * w, words[w]);
    crc = Crc32(crc, bytes, sizeof(bytes));
    parameters += static_cast<uint32_t>(layer.n_weights + layer.n_bias);
  }
  checkpoint_bytes::Put32(bytes, momentum ? 1u : 0u);
  crc = Crc32(crc, bytes, 4);
  return {parameters * 4u, static_cast<uint32_t>(state_bytes), static_cast<uint32_t>(net.num_layers), crc};
}

bool Matches(const CheckpointHeader& h, const Identity& me) {
  return h.version == kCheckpointVersion && h.payload_bytes == me.payload_bytes() &&
         h.weight_bytes == me.weight_bytes && h.state_bytes == me.state_bytes && h.layers == me.layers &&
         h.fingerprint == me.fingerprint;
}

// The payload as pieces: each trainable layer's weights then bias (in the model
// bytes), then the training state's pieces.
class PayloadWalk {
 public:
  PayloadWalk(Network* net, Counters* counters, uint32_t* state_header, bool momentum)
      : net_(net), state_(net, counters, state_header, momentum) {}

  bool Next(StatePiece* piece) {
    while (step_ < 2 * net_->num_layers) {
      TrainableLayer& l = net_->layers[step_ / 2];
      const bool bias = step_++ % 2 == 1;
      if (!bias) {
        *piece = {StatePiece::kWeights, reinterpret_cast<uint8_t*>(l.weights),
                  static_cast<size_t>(l.n_weights) * sizeof(float)};
        return true;
      }
      if (l.n_bias > 0) {
        *piece = {StatePiece::kWeights, reinterpret_cast<uint8_t*>(l.bias),
                  static_cast<size_t>(l.n_bias) * sizeof(float)};
        return true;
      }
    }
    return state_.Next(piece);
  }

 private:
  Network* net_;
  StateWalk state_;
  int step_ = 0;
};

// What a slot holds, as far as a save and a load care. A slot that cannot be read
// (on flash with ECC, a unit a power cut tore fails to read) is not an error of
// its own: it is not a checkpoint, and the next save erases it.
enum class SlotKind : uint8_t {
  kUnreadable,  // a Read of its header or payload failed
  kEmpty,       // no valid header: erased, torn, not a checkpoint
  kIncomplete,  // a valid header, but the payload does not fit or fails its CRC (or was not read)
  kMisplaced,   // complete and version 1, but saved in a region of another size: slot 1 is elsewhere there
  kForeign,     // complete, of another model or format version
  kRefused,     // complete and this model's, but its state holds a value LoadState refuses
  kLoadable,    // complete and this model's: what a load restores
};

// How much a save wants to keep a slot: the higher, the more (the save writes the other).
int KeepRank(SlotKind kind) {
  switch (kind) {
    case SlotKind::kUnreadable: return 0;
    case SlotKind::kEmpty: return 1;
    case SlotKind::kIncomplete: return 2;
    case SlotKind::kLoadable: return 4;
    default: return 3;  // a complete checkpoint, though not one this trainer loads
  }
}

// One slot as found in the storage.
struct Slot {
  uint32_t offset = 0;
  bool has_header = false;  // magic and header CRC right (read before anything else)
  SlotKind kind = SlotKind::kEmpty;
  const char* problem = nullptr;  // kRefused: what LoadState would refuse
  CheckpointHeader header;
};

// The storage, checked once, and its calls.
class Storage {
 public:
  Storage(FlashStorage& flash, char* error, size_t error_size)
      : flash_(flash), error_(error), error_size_(error_size) {}

  // Checks the geometry against a payload of `payload_bytes`.
  Status Prepare(uint32_t payload_bytes) {
    page_ = flash_.page_size();
    program_ = flash_.program_size();
    size_ = flash_.size();
    Message m(error_, error_size_);
    if (!PowerOfTwo(page_) || !PowerOfTwo(program_) || program_ > page_ || program_ > kCheckpointPayloadOffset) {
      m.Add("storage page_size ").Add(static_cast<long long>(page_)).Add(" and program_size ")
          .Add(static_cast<long long>(program_))
          .Add(" must be powers of two, program_size at most page_size and at most 256");
      return Status::kInvalidArgument;
    }
    const uint64_t needed = 2 * CheckpointSlotBytes(payload_bytes, page_);
    if (size_ % (2ull * page_) != 0 || size_ < needed) {
      m.Add("storage of ").Add(static_cast<long long>(size_)).Add(" bytes does not fit: this model's checkpoints need ")
          .Add(static_cast<long long>(needed)).Add(" (or more), an even number of ")
          .Add(static_cast<long long>(page_)).Add("-byte pages");
      return Status::kInvalidArgument;
    }
    slot_bytes_ = size_ / 2;
    return Status::kOk;
  }

  // The one buffer a save or load streams through (kChunk bytes).
  uint8_t* buffer() { return buffer_; }
  uint32_t page() const { return page_; }
  uint32_t program() const { return program_; }
  uint32_t size() const { return size_; }
  uint32_t slot_offset(int slot) const { return CheckpointSlotOffset(size_, slot); }

  bool Read(uint32_t at, void* dst, uint32_t n) { return flash_.Read(at, dst, n); }
  // The calls of a save once it has chosen its slot: a refusal is kStorageError.
  Status ReadBack(uint32_t at, void* dst, uint32_t n) {
    return flash_.Read(at, dst, n) ? Status::kOk : Failed("Read", at, n);
  }
  Status Erase(uint32_t at) { return flash_.ErasePage(at) ? Status::kOk : Failed("ErasePage", at, page_); }
  Status Program(uint32_t at, const void* src, uint32_t n) {
    return flash_.Program(at, src, n) ? Status::kOk : Failed("Program", at, n);
  }
  Status Failed(const char* call, uint32_t at, uint32_t n) {
    Message m(error_, error_size_);
    m.Add("storage ").Add(call).Add(" of ").Add(static_cast<long long>(n)).Add(" bytes at offset ")
        .Add(static_cast<long long>(at)).Add(" failed");
    return Status::kStorageError;
  }

  // Reads both headers; a slot whose header cannot be read is kUnreadable.
  void ReadHeaders(Slot slots[2]) {
    alignas(8) uint8_t bytes[kCheckpointHeaderBytes];
    for (int s = 0; s < 2; ++s) {
      slots[s] = Slot();
      slots[s].offset = slot_offset(s);
      if (!Read(slots[s].offset, bytes, sizeof(bytes))) {
        slots[s].kind = SlotKind::kUnreadable;
        continue;
      }
      slots[s].has_header = DecodeCheckpointHeader(bytes, &slots[s].header);
      if (slots[s].has_header) slots[s].kind = SlotKind::kIncomplete;  // until its payload checks out
    }
  }

  // Reads a slot's payload: false when a Read fails. *complete says whether it
  // matches its header's CRC. With `walk` (a slot of this model) it reads piece by
  // piece and also notes the first state value a load would refuse.
  bool Verify(uint32_t offset, const CheckpointHeader& h, PayloadWalk* walk, bool* complete, const char** problem) {
    *complete = false;
    if (h.payload_bytes > slot_bytes_ - kCheckpointPayloadOffset) return true;  // not from a slot this size
    uint8_t* buffer = buffer_;
    uint32_t crc = 0;
    uint32_t at = offset + kCheckpointPayloadOffset;
    StatePiece piece = {StatePiece::kWeights, nullptr, h.payload_bytes};  // without a walk: one piece
    bool more = walk == nullptr || walk->Next(&piece);
    while (more) {
      for (size_t done = 0; done < piece.size;) {
        const uint32_t n = piece.size - done < kChunk ? static_cast<uint32_t>(piece.size - done) : kChunk;
        if (!Read(at, buffer, n)) return false;  // nothing read is looked at
        crc = Crc32(crc, buffer, n);
        if (walk != nullptr && *problem == nullptr) {
          *problem = StateValueProblem(piece.kind, buffer, n);
          if (piece.kind == StatePiece::kHeader && memcmp(buffer, piece.data, piece.size) != 0) {
            *problem = "its training state was saved for another model or optimizer";
          }
        }
        at += n;
        done += n;
      }
      more = walk != nullptr && walk->Next(&piece);
    }
    *complete = crc == h.payload_crc;
    return true;
  }

 private:
  FlashStorage& flash_;
  char* error_;
  size_t error_size_;
  uint32_t page_ = 0, program_ = 0, size_ = 0, slot_bytes_ = 0;
  alignas(8) uint8_t buffer_[kChunk];  // any alignment works; 8 suits drivers that copy words
};

// Reads both slots and says what each holds: slots with a valid header, newest
// first, each read in full (and, when of this model, its state checked as LoadState
// would) until one loads. Returns the slot a load restores, or -1.
int Choose(Storage& io, Slot slots[2], const Identity& me, Network* net, Counters* counters,
           uint32_t* state_header, bool momentum) {
  io.ReadHeaders(slots);
  int order[2];
  int n = 0;
  for (int s = 0; s < 2; ++s) {
    if (slots[s].has_header) order[n++] = s;
  }
  if (n == 2 && SequenceNewer(slots[order[1]].header.sequence, slots[order[0]].header.sequence)) {
    order[0] = 1;
    order[1] = 0;
  }
  for (int i = 0; i < n; ++i) {
    Slot& slot = slots[order[i]];
    const bool same_version = slot.header.version == kCheckpointVersion;
    const bool placed = slot.header.region_bytes == io.size();  // (another version may keep no region_bytes)
    const bool mine = same_version && placed && Matches(slot.header, me);
    PayloadWalk walk(net, counters, state_header, momentum);
    bool complete = false;
    const char* problem = nullptr;
    if (!io.Verify(slot.offset, slot.header, mine ? &walk : nullptr, &complete, &problem)) {
      slot.kind = SlotKind::kUnreadable;
      continue;
    }
    if (!complete) continue;  // torn or corrupt (kIncomplete): the other slot may still hold one
    if (same_version && !placed) {
      slot.kind = SlotKind::kMisplaced;
    } else if (!mine) {
      slot.kind = SlotKind::kForeign;
    } else if (problem != nullptr) {
      slot.kind = SlotKind::kRefused;
      slot.problem = problem;
    } else {
      slot.kind = SlotKind::kLoadable;
      return order[i];
    }
  }
  return -1;
}

// The newest slot of `kind`, or -1.
int Newest(const Slot slots[2], SlotKind kind) {
  const bool a = slots[0].kind == kind, b = slots[1].kind == kind;
  if (a && b) return SequenceNewer(slots[1].header.sequence, slots[0].header.sequence) ? 1 : 0;
  return a ? 0 : b ? 1 : -1;
}

}  // namespace

size_t Trainer::CheckpointStorageBytes(uint32_t page_size) const {
  if (!ready_ || !PowerOfTwo(page_size)) return 0;
  const Identity me = Identify(*net_, state_bytes_, sgd_.momentum > 0.0f);
  const uint64_t bytes = 2 * CheckpointSlotBytes(me.payload_bytes(), page_size);
  return bytes > 0xFFFFFFFFu ? 0 : static_cast<size_t>(bytes);  // larger than any FlashStorage::size()
}

Status Trainer::SaveCheckpoint(FlashStorage& storage) {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  const bool momentum = sgd_.momentum > 0.0f;
  const Identity me = Identify(*net_, state_bytes_, momentum);
  Storage io(storage, error_, sizeof(error_));
  Slot slots[2];
  uint32_t state_header[kStateHeaderWords];
  StateHeaderWords(state_header);
  Status status = io.Prepare(me.payload_bytes());
  if (status != Status::kOk) return status;
  Choose(io, slots, me, net_, &counters_, state_header, momentum);
  // Keep the slot a load would restore; failing that, a complete checkpoint of
  // another kind, then a valid header, then an erased or torn slot; between equals,
  // the newer header. A slot that cannot be read is the first to go: erasing it
  // clears the fault. Never the slot a load would restore: until this save's header
  // is in place, that checkpoint stays the newest complete one.
  const int rank0 = KeepRank(slots[0].kind), rank1 = KeepRank(slots[1].kind);
  int keep = 1;  // nothing to tell them apart: write slot 0
  if (rank0 != rank1) {
    keep = rank0 > rank1 ? 0 : 1;
  } else if (slots[0].has_header && slots[1].has_header) {
    keep = SequenceNewer(slots[1].header.sequence, slots[0].header.sequence) ? 1 : 0;
  }
  const int target = 1 - keep;
  const uint32_t base = io.slot_offset(target);

  // 1. Erase the pages the checkpoint uses, the header's first: a cut from here on
  //    leaves this slot without a valid header.
  const uint32_t used = static_cast<uint32_t>(CheckpointSlotBytes(me.payload_bytes(), io.page()));
  for (uint32_t page = 0; page < used && status == Status::kOk; page += io.page()) status = io.Erase(base + page);
  if (status != Status::kOk) return status;

  // 2. The payload, streamed from the model bytes and the trainer through the
  //    buffer; the last program unit is padded with erased bytes.
  uint8_t* buffer = io.buffer();
  uint32_t fill = 0, crc = 0, at = base + kCheckpointPayloadOffset;
  PayloadWalk walk(net_, &counters_, state_header, momentum);
  StatePiece piece;
  while (walk.Next(&piece)) {
    crc = Crc32(crc, piece.data, piece.size);
    for (size_t done = 0; done < piece.size;) {
      const size_t n = piece.size - done < kChunk - fill ? piece.size - done : kChunk - fill;
      memcpy(buffer + fill, piece.data + done, n);
      fill += static_cast<uint32_t>(n);
      done += n;
      if (fill == kChunk) {
        status = io.Program(at, buffer, kChunk);
        if (status != Status::kOk) return status;
        at += kChunk;
        fill = 0;
      }
    }
  }
  if (fill > 0) {
    const uint32_t padded = RoundUp(fill, io.program());
    memset(buffer + fill, 0xFF, padded - fill);
    status = io.Program(at, buffer, padded);
    if (status != Status::kOk) return status;
  }

  // 3. Read it back: a header must never vouch for bytes the storage did not keep.
  //    The sequence number follows the slot that stays (whatever its header is), so
  //    the new checkpoint is newer than anything that survives this save.
  CheckpointHeader h;
  h.sequence = slots[keep].has_header ? slots[keep].header.sequence + 1 : 1;
  h.region_bytes = io.size();
  h.payload_bytes = me.payload_bytes();
  h.payload_crc = crc;
  h.weight_bytes = me.weight_bytes;
  h.state_bytes = me.state_bytes;
  h.layers = me.layers;
  h.fingerprint = me.fingerprint;
  h.steps = counters_.steps;
  bool complete = false;
  if (!io.Verify(base, h, nullptr, &complete, nullptr)) {
    return io.Failed("Read", base + kCheckpointPayloadOffset, me.payload_bytes());
  }
  if (!complete) {
    return Fail(Status::kStorageError, "storage does not read back the checkpoint programmed at offset ", base);
  }

  // 4. The header, last: from here on this slot is the newest complete checkpoint.
  memset(buffer, 0xFF, kChunk);
  EncodeCheckpointHeader(h, buffer);
  status = io.Program(base, buffer, RoundUp(kCheckpointHeaderBytes, io.program()));
  if (status != Status::kOk) return status;
  alignas(8) uint8_t check[kCheckpointHeaderBytes];
  status = io.ReadBack(base, check, sizeof(check));
  if (status != Status::kOk) return status;
  if (memcmp(check, buffer, sizeof(check)) != 0) {
    return Fail(Status::kStorageError, "storage does not read back the checkpoint header programmed at offset ", base);
  }
  return Status::kOk;
}

Status Trainer::LoadCheckpoint(FlashStorage& storage, bool* loaded) {
  if (loaded == nullptr) return Fail(Status::kInvalidArgument, "LoadCheckpoint needs `loaded` (it is null)");
  *loaded = false;
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  const bool momentum = sgd_.momentum > 0.0f;
  const Identity me = Identify(*net_, state_bytes_, momentum);
  Storage io(storage, error_, sizeof(error_));
  Slot slots[2];
  uint32_t state_header[kStateHeaderWords];
  StateHeaderWords(state_header);
  Status status = io.Prepare(me.payload_bytes());
  if (status != Status::kOk) return status;
  const int own = Choose(io, slots, me, net_, &counters_, state_header, momentum);
  if (own < 0) {
    // Nothing loads. Say why when there is a complete checkpoint: this model's with
    // a state LoadState refuses, another model's, one made for a region of another
    // size (in that order); or when neither slot can be read.
    Message m(error_, sizeof(error_));
    const int refused = Newest(slots, SlotKind::kRefused);
    const int foreign = Newest(slots, SlotKind::kForeign);
    const int misplaced = Newest(slots, SlotKind::kMisplaced);
    if (refused >= 0) {
      m.Add("the checkpoint in slot ").Add(refused).Add(" cannot be restored: ").Add(slots[refused].problem);
      return Status::kInvalidArgument;
    }
    if (foreign >= 0) {
      const CheckpointHeader& h = slots[foreign].header;
      m.Add("the checkpoint in slot ").Add(foreign);
      if (h.version != kCheckpointVersion) {
        m.Add(" has format version ").Add(static_cast<long long>(h.version)).Add("; this trainer reads version 1");
      } else {
        m.Add(" is of another model: ").Add(static_cast<long long>(h.weight_bytes / 4)).Add(" parameters, ")
            .Add(static_cast<long long>(h.layers)).Add(" layers, ").Add(static_cast<long long>(h.state_bytes))
            .Add(" state bytes; this one has ").Add(static_cast<long long>(me.weight_bytes / 4)).Add(", ")
            .Add(static_cast<long long>(me.layers)).Add(", ").Add(static_cast<long long>(me.state_bytes));
        if (h.payload_bytes == me.payload_bytes() && h.layers == me.layers) m.Add(" (other layer shapes)");
      }
      return Status::kInvalidArgument;
    }
    if (misplaced >= 0) {
      m.Add("the checkpoint in slot ").Add(misplaced).Add(" was saved in a region of ")
          .Add(static_cast<long long>(slots[misplaced].header.region_bytes)).Add(" bytes, this storage has ")
          .Add(static_cast<long long>(io.size())).Add(": an image must be exactly the size of its region");
      return Status::kInvalidArgument;
    }
    if (slots[0].kind == SlotKind::kUnreadable && slots[1].kind == SlotKind::kUnreadable) {
      m.Add("storage Read failed in both checkpoint slots (at offsets 0 and ")
          .Add(static_cast<long long>(io.slot_offset(1))).Add(")");
      return Status::kStorageError;
    }
    return Status::kOk;  // erased, torn or unreadable: start fresh
  }

  // The slot checked out completely; copy it in. Only a storage that now fails or
  // reads differently can stop this half way.
  const Slot& slot = slots[own];
  alignas(8) uint8_t scratch[kStateHeaderWords * sizeof(uint32_t)];
  uint32_t crc = 0, at = slot.offset + kCheckpointPayloadOffset;
  PayloadWalk walk(net_, &counters_, state_header, momentum);
  StatePiece piece;
  bool intact = true;
  while (intact && walk.Next(&piece)) {
    uint8_t* to = piece.kind == StatePiece::kHeader ? scratch : piece.data;  // the header is checked, not kept
    intact = storage.Read(at, to, static_cast<uint32_t>(piece.size));
    if (intact) crc = Crc32(crc, to, piece.size);  // a failed Read may have left `to` unfilled
    at += static_cast<uint32_t>(piece.size);
  }
  if (!intact || crc != slot.header.payload_crc) {
    ready_ = false;
    Message m(error_, sizeof(error_));
    m.Add("storage failed while the checkpoint in slot ").Add(own)
        .Add(" was copied; the model holds part of it: Init again and load again");
    return Status::kStorageError;
  }
  *loaded = true;
  return Status::kOk;
}

}  // namespace tflm_train
