# CMake toolchain file: Debian's arm-none-eabi GCC for a Cortex-M4F with hard float.
#   cmake -S examples/cortex_m -B build/cm -DCMAKE_TOOLCHAIN_FILE=$PWD/examples/cortex_m/arm-none-eabi.cmake
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy)
set(CMAKE_SIZE arm-none-eabi-size)
# Cross compilers cannot link a test program without a linker script.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CORTEX_M4F_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(CMAKE_C_FLAGS_INIT "${CORTEX_M4F_FLAGS} -ffunction-sections -fdata-sections -ffp-contract=off")
set(CMAKE_CXX_FLAGS_INIT "${CORTEX_M4F_FLAGS} -ffunction-sections -fdata-sections -ffp-contract=off -fno-exceptions -fno-rtti -fno-threadsafe-statics")
set(CMAKE_ASM_FLAGS_INIT "${CORTEX_M4F_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${CORTEX_M4F_FLAGS} -Wl,--gc-sections")

# Headers and libraries of the host (FlatBuffers from pip) may be searched; programs too.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
