# TensorFlow Lite Micro built from its Arduino library source (TFLM_DIR, a folder laid
# out as the official Arduino_TensorFlowLite library: src/tensorflow, src/third_party).
# The source is never copied into this project: it is compiled where it lies.
#
#   include(${tflm_train_SOURCE_DIR}/cmake/tflm.cmake)
#   tflm_add_library(tflm "${TFLM_DIR}")          # a static library target named tflm
#   target_link_libraries(app PRIVATE tflm)
#
# The library is built as Arduino builds it (ARDUINO defined: TFLM then uses its
# CMSIS-NN kernels, which fall back to portable C where the target has no DSP
# extension), minus the two board files that need an Arduino core: system_setup.cpp
# (Serial logging) and micro_time.cpp (a board timer). A program linking it provides
# DebugLog() itself; see examples/tflm_shared_model/platform.h.
function(tflm_add_library target tflm_dir)
  get_filename_component(root "${tflm_dir}" ABSOLUTE)
  if(NOT EXISTS "${root}/src/tensorflow/lite/micro/micro_interpreter.h")
    message(FATAL_ERROR "TFLM_DIR=${tflm_dir} holds no src/tensorflow/lite/micro/micro_interpreter.h "
                        "(expected TFLM's Arduino library layout)")
  endif()
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS
       "${root}/src/tensorflow/*.cpp" "${root}/src/tensorflow/*.c"
       "${root}/src/third_party/cmsis_nn/*.c")
  list(FILTER sources EXCLUDE REGEX "/tensorflow/lite/micro/(system_setup|micro_time)\\.cpp$")
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} SYSTEM PUBLIC "${root}/src")
  # TFLM's own configuration: static memory, no error strings stripped, Arduino flavour.
  target_compile_definitions(${target} PUBLIC ARDUINO TF_LITE_STATIC_MEMORY)
  target_compile_features(${target} PUBLIC cxx_std_17)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF POSITION_INDEPENDENT_CODE OFF)
  # Third-party code: its warnings are not ours to fix.
  target_compile_options(${target} PRIVATE -w $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti>)
endfunction()
