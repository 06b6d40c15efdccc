// CRC-32 as zlib, PNG and Ethernet compute it (reflected polynomial 0xEDB88320,
// initial value and final XOR 0xFFFFFFFF), so Python's zlib.crc32 gives the same
// numbers. It guards checkpoints (docs/checkpoints.md).
#ifndef TFLM_TRAIN_CRC32_H_
#define TFLM_TRAIN_CRC32_H_

#include <stddef.h>
#include <stdint.h>

namespace tflm_train {

// Continues `crc` (0 for the first piece) over n more bytes:
// Crc32(Crc32(0, a, na), b, nb) == Crc32(0, a then b, na + nb).
uint32_t Crc32(uint32_t crc, const void* bytes, size_t n);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_CRC32_H_
