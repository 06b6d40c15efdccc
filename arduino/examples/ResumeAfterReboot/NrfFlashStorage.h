// The nRF52840's internal flash as a tflm_train::FlashStorage, programmed through its
// NVMC (non-volatile memory controller): 4 KiB pages, 32-bit words.
//
// NOT TESTED ON A BOARD: the tflm_train tests run this sketch in QEMU, which has no
// NVMC; there the sketch uses the tests' file-backed storage instead. Before you rely
// on it, check on your board that:
//  - the region (kFlashRegionStart below) is free: above your sketch and below whatever
//    the bootloader or core keeps at the top of flash (the Arduino Nano 33 BLE's
//    application area ends at 0x100000; Adafruit's nRF52 core keeps its file system at
//    0xED000 and its bootloader at 0xF4000). begin() refuses a region that would extend
//    past kFlashRegionLimit, the first of those addresses for your core;
//  - nothing else writes flash at the same time. With the SoftDevice running (Bluetooth
//    on the Adafruit core) the NVMC must not be used directly: use sd_flash_write and
//    sd_flash_page_erase instead. On the mbed core, mbed::FlashIAP is an alternative.
#ifndef NRF_FLASH_STORAGE_H_
#define NRF_FLASH_STORAGE_H_

#include <string.h>

#include <TflmTrain.h>

#if defined(NRF52840_XXAA)

constexpr uint32_t kFlashRegionStart = 0xE0000;  // 896 KiB into the 1 MiB flash
// The region ends at or before this address: the first byte of flash that is not the
// sketch's to use.
#if defined(ARDUINO_NRF52_ADAFRUIT)
constexpr uint32_t kFlashRegionLimit = 0xED000;  // Adafruit's core: its file system starts here
#else
constexpr uint32_t kFlashRegionLimit = 0x100000;  // the end of the nRF52840's 1 MiB flash
#endif

class NrfFlashStorage final : public tflm_train::FlashStorage {
 public:
  explicit NrfFlashStorage(uint32_t start) : start_(start) {}
  // Sets the region's size in bytes, before the trainer uses the storage. Refuses
  // (returns false, and the storage stays empty) a size that is not whole pages or a
  // region that would extend past kFlashRegionLimit: a bigger model needs a bigger region,
  // so move kFlashRegionStart down (still above your sketch) rather than write over
  // what lies beyond the limit.
  bool begin(uint32_t size) {
    size_ = 0;
    if (start_ % page_size() != 0 || size % page_size() != 0 || start_ > kFlashRegionLimit ||
        size > kFlashRegionLimit - start_) {
      return false;
    }
    size_ = size;
    return true;
  }

  uint32_t page_size() const override { return 4096; }
  uint32_t program_size() const override { return 4; }
  uint32_t size() const override { return size_; }

  bool Read(uint32_t offset, void* dst, uint32_t n) override {
    if (!inside(offset, n)) return false;
    memcpy(dst, reinterpret_cast<const void*>(start_ + offset), n);  // flash is memory-mapped
    return true;
  }

  bool ErasePage(uint32_t offset) override {
    if (offset % page_size() != 0 || !inside(offset, page_size())) return false;
    setMode(kEraseEnable);
    reg(kErasePage) = start_ + offset;
    waitReady();
    setMode(kReadOnly);
    return true;
  }

  bool Program(uint32_t offset, const void* src, uint32_t n) override {
    if (offset % 4 != 0 || n % 4 != 0 || !inside(offset, n)) return false;
    setMode(kWriteEnable);
    const uint8_t* bytes = static_cast<const uint8_t*>(src);
    for (uint32_t i = 0; i < n; i += 4) {
      uint32_t word;
      memcpy(&word, bytes + i, 4);  // src need not be aligned
      *reinterpret_cast<volatile uint32_t*>(start_ + offset + i) = word;
      waitReady();
    }
    setMode(kReadOnly);
    return true;
  }

 private:
  // NVMC registers (nRF52840 Product Specification): base 0x4001E000.
  static constexpr uint32_t kNvmcBase = 0x4001E000;
  static constexpr uint32_t kReady = 0x400;      // 1 when ready for the next operation
  static constexpr uint32_t kConfig = 0x504;     // 0 read only, 1 write enable, 2 erase enable
  static constexpr uint32_t kErasePage = 0x508;  // write a page's address to erase it
  static constexpr uint32_t kReadOnly = 0, kWriteEnable = 1, kEraseEnable = 2;

  static volatile uint32_t& reg(uint32_t offset) {
    return *reinterpret_cast<volatile uint32_t*>(kNvmcBase + offset);
  }
  static void waitReady() {
    while (reg(kReady) == 0) {
    }
  }
  static void setMode(uint32_t mode) {
    reg(kConfig) = mode;
    __asm__ volatile("dsb\n isb" ::: "memory");
    waitReady();
  }
  bool inside(uint32_t offset, uint32_t n) const { return offset <= size_ && n <= size_ - offset; }

  uint32_t start_;
  uint32_t size_ = 0;
};

#endif  // NRF52840_XXAA

#endif  // NRF_FLASH_STORAGE_H_
