// A minimal Arduino core for the tests (tests/test_arduino_library.py): the part of the
// Arduino API that the three TflmTrain examples and the Arduino_TensorFlowLite library
// use, running on QEMU's mps2-an386 (Cortex-M4F) with Serial over ARM semihosting.
// Written for these tests; it is not a port of any Arduino core.
//
// Serial output goes to the semihosting console; Serial input is read from the host
// file named by the semihosting argument "input=PATH" (none: nothing to read).
// main() (core.cpp) runs setup(), then loop() until one of: "loops=N" calls (default
// 1000), "idle=N" calls in a row that neither printed nor read anything (default 3),
// or the sketch waited in delay() for over a minute of (simulated) time without
// printing: the idiom `while (true) delay(1000);` after a fatal error.
//
// With ARDUINO_ARCH_MBED (the Arduino Nano 33 BLE's mbed core) it also declares what
// the Arduino_TensorFlowLite library's board files (peripherals/*.cpp) take from that
// core: PinName, the Dn pin numbers, pin and interrupt functions, arduino::MbedI2C
// (Wire.h) and, in hal/nrf_i2s.h, the nRF52840 I2S HAL. Those are stubs: they compile
// and link, and nothing in these tests calls them.
#ifndef ARDUINO_SHIM_ARDUINO_H_
#define ARDUINO_SHIM_ARDUINO_H_

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#ifndef ARDUINO_SHIM_QEMU
#define ARDUINO_SHIM_QEMU 1
#endif

#define ARDUINO_SHIM_CLOCK_HZ 25000000UL  // mps2-an386: SysTick counts the 25 MHz CPU clock

typedef uint8_t byte;
typedef bool boolean;
typedef uint16_t word;
typedef uint8_t pin_size_t;

#define LOW 0
#define HIGH 1
#define CHANGE 2
#define FALLING 3
#define RISING 4
#define INPUT 0
#define OUTPUT 1
#define INPUT_PULLUP 2
#define INPUT_PULLDOWN 3
#define DEC 10
#define HEX 16
#define OCT 8
#define BIN 2
#define LED_BUILTIN 13

// The sketch's two functions; declared with C linkage, as Arduino cores do.
#ifdef __cplusplus
extern "C" {
#endif
void setup(void);
void loop(void);
#ifdef __cplusplus
}
#endif

#ifdef __cplusplus

unsigned long millis();
unsigned long micros();
void delay(unsigned long ms);
void delayMicroseconds(unsigned int us);

void pinMode(pin_size_t pin, int mode);
void digitalWrite(pin_size_t pin, int value);
int digitalRead(pin_size_t pin);
int analogRead(pin_size_t pin);
inline int digitalPinToInterrupt(pin_size_t pin) { return pin; }
void attachInterrupt(int interrupt, void (*handler)(void), int mode);
void detachInterrupt(int interrupt);
inline void noInterrupts() { __asm__ volatile("cpsid i" ::: "memory"); }
inline void interrupts() { __asm__ volatile("cpsie i" ::: "memory"); }

// F("text"): on ARM the text is in flash anyway; kept as a distinct type as in Arduino.
class __FlashStringHelper;
#define F(text) (reinterpret_cast<const __FlashStringHelper*>(text))

class Print {
 public:
  virtual size_t write(uint8_t c) = 0;
  virtual size_t write(const uint8_t* data, size_t n);
  size_t write(const char* text) { return text ? write(reinterpret_cast<const uint8_t*>(text), strlen(text)) : 0; }
  size_t write(const char* data, size_t n) { return write(reinterpret_cast<const uint8_t*>(data), n); }

  size_t print(const char* text) { return write(text); }
  size_t print(const __FlashStringHelper* text) { return write(reinterpret_cast<const char*>(text)); }
  size_t print(char c) { return write(static_cast<uint8_t>(c)); }
  size_t print(unsigned char v, int base = DEC) { return PrintUnsigned(v, base); }
  size_t print(int v, int base = DEC) { return PrintSigned(v, base); }
  size_t print(unsigned int v, int base = DEC) { return PrintUnsigned(v, base); }
  size_t print(long v, int base = DEC) { return PrintSigned(v, base); }
  size_t print(unsigned long v, int base = DEC) { return PrintUnsigned(v, base); }
  size_t print(long long v, int base = DEC) { return PrintSigned(v, base); }
  size_t print(unsigned long long v, int base = DEC) { return PrintUnsigned(v, base); }
  size_t print(double v, int digits = 2) { return PrintFloat(v, digits); }

  size_t println() { return write("\r\n"); }
  template <typename T>
  size_t println(T v) { return print(v) + println(); }
  template <typename T>
  size_t println(T v, int format) { return print(v, format) + println(); }

  virtual void flush() {}

 protected:
  ~Print() = default;

 private:
  size_t PrintUnsigned(unsigned long long v, int base);
  size_t PrintSigned(long long v, int base);
  size_t PrintFloat(double v, int digits);
};

class Stream : public Print {
 public:
  virtual int available() = 0;
  virtual int read() = 0;
  virtual int peek() = 0;

 protected:
  ~Stream() = default;
};

// The board's serial port: semihosting console out, a host file in.
class ShimSerial : public Stream {
 public:
  void begin(unsigned long baud) { (void)baud; }
  void begin(unsigned long baud, uint16_t config) { (void)baud, (void)config; }
  void end() {}
  explicit operator bool() const { return true; }  // the "USB port" is always open
  int available() override;
  int read() override;
  int peek() override;
  size_t write(uint8_t c) override;
  size_t write(const uint8_t* data, size_t n) override;
  using Print::write;
  void flush() override;
};
extern ShimSerial Serial;

// A fixed ring buffer of N bytes (ArduinoCore-API's RingBufferN interface, which the
// Arduino_TensorFlowLite library's system_setup.cpp uses for SerialReadLine).
template <int N>
class RingBufferN {
 public:
  uint8_t _aucBuffer[N];
  void store_char(uint8_t c) {
    if (count_ == N) return;
    _aucBuffer[head_] = c;
    head_ = (head_ + 1) % N;
    ++count_;
  }
  void clear() { head_ = tail_ = count_ = 0; }
  int read_char() {
    if (count_ == 0) return -1;
    uint8_t c = _aucBuffer[tail_];
    tail_ = (tail_ + 1) % N;
    --count_;
    return c;
  }
  int peek() { return count_ ? _aucBuffer[tail_] : -1; }
  int available() { return count_; }
  int availableForStore() { return N - count_; }
  bool isFull() { return count_ == N; }

 private:
  int head_ = 0, tail_ = 0, count_ = 0;
};

// What the tests' board adds: semihosting and its arguments (core.cpp).
namespace arduino_shim {
// One ARM semihosting call (bkpt 0xab): operation number and parameter block.
int Semihost(int op, const void* arg);
// The value of semihosting argument "key=value", or fallback when not given.
const char* Arg(const char* key, const char* fallback);
}  // namespace arduino_shim

#if defined(ARDUINO_ARCH_MBED)
// The Nano 33 BLE's mbed core: nRF52840 port/pin names and the board's Dn pins.
enum PinName {
  P0_0 = 0, P0_1, P0_2, P0_3, P0_4, P0_5, P0_6, P0_7, P0_8, P0_9, P0_10, P0_11, P0_12, P0_13,
  P0_14, P0_15, P0_16, P0_17, P0_18, P0_19, P0_20, P0_21, P0_22, P0_23, P0_24, P0_25, P0_26,
  P0_27, P0_28, P0_29, P0_30, P0_31,
  P1_0, P1_1, P1_2, P1_3, P1_4, P1_5, P1_6, P1_7, P1_8, P1_9, P1_10, P1_11, P1_12, P1_13,
  P1_14, P1_15
};
enum : pin_size_t { D0 = 0, D1, D2, D3, D4, D5, D6, D7, D8, D9, D10, D11, D12, D13 };
void pinMode(PinName pin, int mode);
void digitalWrite(PinName pin, int value);
int digitalRead(PinName pin);
#endif  // ARDUINO_ARCH_MBED

#endif  // __cplusplus

#endif  // ARDUINO_SHIM_ARDUINO_H_
