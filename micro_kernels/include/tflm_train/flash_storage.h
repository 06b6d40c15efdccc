// The storage a training checkpoint lives in (Trainer::SaveCheckpoint and
// LoadCheckpoint; docs/checkpoints.md gives the format). The application
// implements it over whatever it has: a region of internal flash, an SPI NOR
// flash, a file. The trainer only ever calls these six functions.
#ifndef TFLM_TRAIN_FLASH_STORAGE_H_
#define TFLM_TRAIN_FLASH_STORAGE_H_

#include <stdint.h>

namespace tflm_train {

// Storage shaped like NOR flash that the application provides (a region of internal flash,
// an SPI flash, a file). Erased bytes read 0xFF; Program only writes erased bytes.
// Offsets are relative to the start of the region.
//
// Buffers: `dst` and `src` may have any alignment (the trainer's own buffers are
// 8-aligned, but a load also reads straight into the model's weights and the
// trainer's state, which may be only 4-aligned); a Read may have any length, a
// Program's length is a multiple of program_size().
//
// Failures: Read returns false only when the bytes cannot be read, as on flash with
// ECC after a power cut tore a unit (retry a transient bus error inside Read). The
// trainer then treats that slot as holding no checkpoint: a load falls back to the
// other slot, and the next save writes the unreadable slot (its erase clears the
// fault). Status::kStorageError comes from an ErasePage or Program that fails, a
// save's read-back that fails, a load that can read neither slot, or a Read that
// fails while a load copies a checkpoint it has checked.
class FlashStorage {
 public:
  virtual uint32_t page_size() const = 0;     // erase unit in bytes
  virtual uint32_t program_size() const = 0;  // program unit in bytes: a power of two dividing page_size
  virtual uint32_t size() const = 0;          // bytes in the region, whole pages
  virtual bool Read(uint32_t offset, void* dst, uint32_t n) = 0;             // any offset and length
  virtual bool ErasePage(uint32_t offset) = 0;                               // offset: a multiple of page_size
  virtual bool Program(uint32_t offset, const void* src, uint32_t n) = 0;  // offset, n: multiples of program_size

 protected:
  ~FlashStorage() = default;   // non-virtual, protected: no deleting destructor, so no operator delete on bare metal
};

}  // namespace tflm_train

#endif  // TFLM_TRAIN_FLASH_STORAGE_H_
