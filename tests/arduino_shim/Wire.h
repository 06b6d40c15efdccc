// The tests' Arduino core (see Arduino.h): the I2C interface of the Nano 33 BLE's mbed
// core as the Arduino_TensorFlowLite library's peripherals/i2c_arduino.cpp uses it.
// A stub: no bus behind it, and nothing in the tests calls it.
#ifndef ARDUINO_SHIM_WIRE_H_
#define ARDUINO_SHIM_WIRE_H_

#include "Arduino.h"

namespace arduino {

class MbedI2C {
 public:
  void begin() {}
  void end() {}
  void setClock(uint32_t hz) { (void)hz; }
  void beginTransmission(uint8_t address) { (void)address; }
  uint8_t endTransmission(bool stop = true) { (void)stop; return 0; }
  size_t requestFrom(uint8_t address, size_t n, bool stop = true) { (void)address, (void)stop; return n; }
  size_t write(uint8_t c) { (void)c; return 1; }
  int available() { return 0; }
  int read() { return -1; }
};

}  // namespace arduino

extern arduino::MbedI2C Wire;
extern arduino::MbedI2C Wire1;

#endif  // ARDUINO_SHIM_WIRE_H_
