// The tests' Arduino core (see Arduino.h): a tflm_train::FlashStorage kept in a host
// file through ARM semihosting, so that "flash" survives from one QEMU run to the next.
// Shaped like the nRF52840's flash (4 KiB pages, 4-byte program unit) and strict like
// NOR flash with ECC: Program refuses bytes that are not erased (0xFF). The file is the
// raw image of the region, the format tflm_train.MicroTrainer.save_checkpoint and
// load_checkpoint read and write. Path: semihosting argument "flash=PATH" (default
// flash.bin, relative to QEMU's working directory); a missing file starts erased.
#ifndef ARDUINO_SHIM_SHIM_FLASH_H_
#define ARDUINO_SHIM_SHIM_FLASH_H_

#include <Arduino.h>
#include <string.h>

#include "tflm_train/flash_storage.h"

class ShimFlash final : public tflm_train::FlashStorage {
 public:
  // Opens (or creates, erased) the file holding a region of `size` bytes.
  bool begin(uint32_t size) {
    size_ = size;
    const char* path = arduino_shim::Arg("flash", "flash.bin");
    handle_ = open(path, kReadWriteBinary);
    if (handle_ < 0) {
      handle_ = open(path, kCreateReadWriteBinary);
      if (handle_ < 0) return false;
    }
    struct {
      int handle;
    } length_block = {handle_};
    int length = arduino_shim::Semihost(kSysFlen, &length_block);
    if (length < 0) return false;
    uint8_t erased[256];
    memset(erased, 0xFF, sizeof(erased));
    for (uint32_t at = static_cast<uint32_t>(length); at < size_;) {  // a new or short file: erased
      const uint32_t n = size_ - at < sizeof(erased) ? size_ - at : sizeof(erased);
      if (!write(at, erased, n)) return false;
      at += n;
    }
    return true;
  }

  uint32_t page_size() const override { return 4096; }
  uint32_t program_size() const override { return 4; }
  uint32_t size() const override { return size_; }

  bool Read(uint32_t offset, void* dst, uint32_t n) override {
    if (handle_ < 0 || offset > size_ || n > size_ - offset || !seek(offset)) return false;
    struct {
      int handle;
      void* buffer;
      int size;
    } block = {handle_, dst, static_cast<int>(n)};
    return arduino_shim::Semihost(kSysRead, &block) == 0;  // returns the bytes NOT read
  }

  bool ErasePage(uint32_t offset) override {
    if (handle_ < 0 || offset % page_size() != 0 || offset >= size_) return false;
    uint8_t erased[256];
    memset(erased, 0xFF, sizeof(erased));
    for (uint32_t i = 0; i < page_size(); i += sizeof(erased)) {
      if (!write(offset + i, erased, sizeof(erased))) return false;
    }
    ++erases;
    return true;
  }

  bool Program(uint32_t offset, const void* src, uint32_t n) override {
    if (handle_ < 0 || offset % program_size() != 0 || n % program_size() != 0 || offset > size_ ||
        n > size_ - offset) {
      return false;
    }
    uint8_t current[256];
    for (uint32_t done = 0; done < n;) {  // every byte must still be erased
      const uint32_t chunk = n - done < sizeof(current) ? n - done : sizeof(current);
      if (!Read(offset + done, current, chunk)) return false;
      for (uint32_t i = 0; i < chunk; ++i) {
        if (current[i] != 0xFF) return false;
      }
      done += chunk;
    }
    ++programs;
    return write(offset, src, n);
  }

  uint32_t erases = 0, programs = 0;  // calls, for the sketch's report

 private:
  // ARM semihosting operations and fopen modes.
  static constexpr int kSysOpen = 0x01, kSysWrite = 0x05, kSysRead = 0x06, kSysSeek = 0x0A, kSysFlen = 0x0C;
  static constexpr int kReadWriteBinary = 3, kCreateReadWriteBinary = 7;  // "r+b", "w+b"

  static int open(const char* path, int mode) {
    struct {
      const char* name;
      int mode;
      int length;
    } block = {path, mode, static_cast<int>(strlen(path))};
    return arduino_shim::Semihost(kSysOpen, &block);
  }
  bool seek(uint32_t offset) {
    struct {
      int handle;
      int position;
    } block = {handle_, static_cast<int>(offset)};
    return arduino_shim::Semihost(kSysSeek, &block) == 0;
  }
  bool write(uint32_t offset, const void* src, uint32_t n) {
    if (!seek(offset)) return false;
    struct {
      int handle;
      const void* buffer;
      int size;
    } block = {handle_, src, static_cast<int>(n)};
    return arduino_shim::Semihost(kSysWrite, &block) == 0;  // returns the bytes NOT written
  }

  int handle_ = -1;
  uint32_t size_ = 0;
};

#endif  // ARDUINO_SHIM_SHIM_FLASH_H_
