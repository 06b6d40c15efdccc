// The checkpoint's bytes in flash (docs/checkpoints.md): where the two slots
// are, the slot header and its little-endian encoding. checkpoint.cc decides
// what to write and when; this file only says where and how.
#ifndef TFLM_TRAIN_CHECKPOINT_FORMAT_H_
#define TFLM_TRAIN_CHECKPOINT_FORMAT_H_

#include <stddef.h>
#include <stdint.h>

#include "crc32.h"

namespace tflm_train {

constexpr uint32_t kCheckpointMagic = 0x4B435454;  // the bytes "TTCK"
constexpr uint32_t kCheckpointVersion = 1;
constexpr uint32_t kCheckpointHeaderBytes = 52;
// The payload starts here in its slot whatever the program unit, so an image
// written with one program size loads with any other; it is also the largest
// program unit a storage may have.
constexpr uint32_t kCheckpointPayloadOffset = 256;

// A slot's header. Valid only when the magic and its own CRC are right; it is
// programmed last, so a valid header means the payload before it was complete.
struct CheckpointHeader {
  uint32_t magic = kCheckpointMagic;
  uint32_t version = kCheckpointVersion;
  uint32_t sequence = 0;       // newer wins, compared with wrap-around
  uint32_t region_bytes = 0;   // FlashStorage::size() of the save: where slot 1 starts (region_bytes / 2)
  uint32_t payload_bytes = 0;  // weight_bytes + state_bytes
  uint32_t payload_crc = 0;    // CRC-32 of the payload_bytes after kCheckpointPayloadOffset
  uint32_t weight_bytes = 0;   // the trainable weights and biases, 4 bytes each
  uint32_t state_bytes = 0;    // the training state (Trainer::StateBytes())
  uint32_t layers = 0;         // trainable layers
  uint32_t fingerprint = 0;    // CRC-32 of the layer shapes and optimizer layout
  uint64_t steps = 0;          // Counters::steps, for tools that list checkpoints
  uint32_t header_crc = 0;     // CRC-32 of the 48 bytes before it
};

namespace checkpoint_bytes {

inline void Put32(uint8_t* at, uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t Get32(const uint8_t* at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(at[i]) << (8 * i);
  return v;
}

}  // namespace checkpoint_bytes

// Writes the header's bytes, with header_crc computed over them.
inline void EncodeCheckpointHeader(const CheckpointHeader& h, uint8_t out[kCheckpointHeaderBytes]) {
  using checkpoint_bytes::Put32;
  const uint32_t words[10] = {h.magic,       h.version,      h.sequence,    h.region_bytes, h.payload_bytes,
                              h.payload_crc, h.weight_bytes, h.state_bytes, h.layers,       h.fingerprint};
  for (int i = 0; i < 10; ++i) Put32(out + 4 * i, words[i]);
  Put32(out + 40, static_cast<uint32_t>(h.steps));
  Put32(out + 44, static_cast<uint32_t>(h.steps >> 32));
  Put32(out + 48, Crc32(0, out, 48));
}

// Reads a header; false when its magic or its CRC is wrong (erased, torn, not a
// checkpoint). The version is the caller's to judge.
inline bool DecodeCheckpointHeader(const uint8_t in[kCheckpointHeaderBytes], CheckpointHeader* h) {
  using checkpoint_bytes::Get32;
  if (Get32(in) != kCheckpointMagic || Get32(in + 48) != Crc32(0, in, 48)) return false;
  uint32_t* words[10] = {&h->magic,       &h->version,      &h->sequence,    &h->region_bytes, &h->payload_bytes,
                         &h->payload_crc, &h->weight_bytes, &h->state_bytes, &h->layers,       &h->fingerprint};
  for (int i = 0; i < 10; ++i) *words[i] = Get32(in + 4 * i);
  h->steps = static_cast<uint64_t>(Get32(in + 40)) | (static_cast<uint64_t>(Get32(in + 44)) << 32);
  h->header_crc = Get32(in + 48);
  return true;
}

// The region holds two slots, its two halves: slot 1 starts at size / 2. A region
// therefore is an even number of pages, and each half must hold a whole checkpoint:
// the payload offset plus the payload, rounded up to whole pages. A header records
// the region's size, so a slot read in a region of another size (an image made for
// a smaller region) is not taken for a checkpoint.
inline uint32_t CheckpointSlotOffset(uint32_t region_size, int slot) {
  return slot == 0 ? 0u : region_size / 2;
}
inline uint64_t CheckpointSlotBytes(uint64_t payload_bytes, uint32_t page_size) {
  const uint64_t used = kCheckpointPayloadOffset + payload_bytes;
  return (used + page_size - 1) / page_size * page_size;
}

// Serial-number arithmetic (RFC 1982): whether sequence a is newer than b, so
// the count may wrap from 0xFFFFFFFF to 0.
inline bool SequenceNewer(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

}  // namespace tflm_train

#endif  // TFLM_TRAIN_CHECKPOINT_FORMAT_H_
