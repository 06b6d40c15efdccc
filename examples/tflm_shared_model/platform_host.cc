// The shared-model program on the host: stdout, a copy of the untrained model, no counter.
#include <stdio.h>
#include <string.h>

#include <vector>

#include "data.h"
#include "line.h"
#include "platform.h"

namespace {
const std::vector<unsigned char> g_untrained(g_model, g_model + g_model_len);
}  // namespace

// TFLM's log goes where the program's output goes.
extern "C" void DebugLog(const char* s) { fputs(s, stdout); }

namespace board {
void Write(const char* text) { fputs(text, stdout); }
}  // namespace board

namespace platform {

const char* Name() { return "host"; }
uint64_t Instructions() { return 0; }
void RestoreModel() { memcpy(g_model, g_untrained.data(), g_model_len); }

}  // namespace platform
