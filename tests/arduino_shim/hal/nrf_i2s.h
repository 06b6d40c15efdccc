// The tests' Arduino core (see Arduino.h): the nRF52840 I2S HAL and the NVIC calls as
// the Arduino_TensorFlowLite library's peripherals/i2s_nrf52840.cpp uses them on the
// Nano 33 BLE. Stubs with no hardware behind them: they make that file compile and
// link; nothing in the tests calls them (QEMU's mps2-an386 has no I2S).
#ifndef ARDUINO_SHIM_HAL_NRF_I2S_H_
#define ARDUINO_SHIM_HAL_NRF_I2S_H_

#include <stdint.h>

struct NRF_I2S_Type {
  struct {
    volatile uint32_t TXEN, RXEN;
  } CONFIG;
};
#define NRF_I2S_BASE 0x40025000UL
#define NRF_I2S (reinterpret_cast<NRF_I2S_Type*>(NRF_I2S_BASE))

enum IRQn_Type { I2S_IRQn = 37 };
inline void NVIC_EnableIRQ(IRQn_Type) {}
inline void NVIC_DisableIRQ(IRQn_Type) {}
inline void NVIC_ClearPendingIRQ(IRQn_Type) {}
inline void NVIC_SetPriority(IRQn_Type, uint32_t) {}
inline void NVIC_SetVector(IRQn_Type, uint32_t) {}

enum nrf_i2s_event_t { NRF_I2S_EVENT_RXPTRUPD, NRF_I2S_EVENT_TXPTRUPD, NRF_I2S_EVENT_STOPPED };
enum nrf_i2s_task_t { NRF_I2S_TASK_START, NRF_I2S_TASK_STOP };
enum : uint32_t {
  NRF_I2S_INT_RXPTRUPD_MASK = 1u << 1,
  NRF_I2S_INT_STOPPED_MASK = 1u << 2,
  NRF_I2S_INT_TXPTRUPD_MASK = 1u << 5,
  NRF_I2S_PIN_NOT_CONNECTED = 0xFFFFFFFFu
};
enum nrf_i2s_mode_t { NRF_I2S_MODE_MASTER, NRF_I2S_MODE_SLAVE };
enum nrf_i2s_format_t { NRF_I2S_FORMAT_I2S, NRF_I2S_FORMAT_ALIGNED };
enum nrf_i2s_align_t { NRF_I2S_ALIGN_LEFT, NRF_I2S_ALIGN_RIGHT };
enum nrf_i2s_swidth_t { NRF_I2S_SWIDTH_8BIT, NRF_I2S_SWIDTH_16BIT, NRF_I2S_SWIDTH_24BIT };
enum nrf_i2s_channels_t { NRF_I2S_CHANNELS_STEREO, NRF_I2S_CHANNELS_LEFT, NRF_I2S_CHANNELS_RIGHT };
enum nrf_i2s_mck_t { NRF_I2S_MCK_DISABLED = 0 };
enum nrf_i2s_ratio_t { NRF_I2S_RATIO_32X = 0 };

inline void nrf_i2s_event_clear(NRF_I2S_Type*, nrf_i2s_event_t) {}
inline bool nrf_i2s_event_check(NRF_I2S_Type*, nrf_i2s_event_t) { return false; }
inline void nrf_i2s_task_trigger(NRF_I2S_Type*, nrf_i2s_task_t) {}
inline void nrf_i2s_int_enable(NRF_I2S_Type*, uint32_t) {}
inline void nrf_i2s_enable(NRF_I2S_Type*) {}
inline void nrf_i2s_pins_set(NRF_I2S_Type*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t) {}
inline void nrf_i2s_transfer_set(NRF_I2S_Type*, uint16_t, uint32_t*, const uint32_t*) {}
inline void nrf_i2s_tx_buffer_set(NRF_I2S_Type*, const uint32_t*) {}
inline void nrf_i2s_rx_buffer_set(NRF_I2S_Type*, uint32_t*) {}
inline bool nrf_i2s_configure(NRF_I2S_Type*, nrf_i2s_mode_t, nrf_i2s_format_t, nrf_i2s_align_t,
                              nrf_i2s_swidth_t, nrf_i2s_channels_t, nrf_i2s_mck_t, nrf_i2s_ratio_t) {
  return false;
}

#endif  // ARDUINO_SHIM_HAL_NRF_I2S_H_
