# dlc_add_model(TARGET MODEL.dl [OPTIONS dlc-option...] [RUNTIME target])
#
# Compiles MODEL.dl with dlc at build time and makes TARGET a static
# library holding the model's object, with the directory of its header

# include path and libdlrt linked (dlc::dlrt_static, or RUNTIME, e.g.
# dlc::dlrt for the shared library). An application needs only
#
#   dlc_add_model(mnist_model mnist.dl OPTIONS -O3)
#   target_link_libraries(app PRIVATE mnist_model)   # then #include "mnist.h"
#
# dlc writes a dependency file (-MD), so editing MODEL.dl or any file it
# imports rebuilds the model. Used by dlc's own build and shipped in its
# CMake package (find_package(dlc)); needs the target dlc::dlc.
function(dlc_add_model target model)
  cmake_parse_arguments(M "" "RUNTIME" "OPTIONS" ${ARGN})
  if(M_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "dlc_add_model: unexpected arguments: ${M_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT M_RUNTIME)
    set(M_RUNTIME dlc::dlrt_static)
  endif()
  get_filename_component(src ${model} ABSOLUTE)
  get_filename_component(name ${model} NAME_WE)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${target}.dlc)
  add_custom_command(
    OUTPUT ${out}/${name}.o ${out}/${name}.h
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
    COMMAND dlc::dlc ${src} -o ${out}/${name}.o -MD -MF ${out}/${name}.d ${M_OPTIONS}
    DEPENDS dlc::dlc ${src}
    DEPFILE ${out}/${name}.d
    COMMENT "dlc ${model}"
    VERBATIM)
  add_library(${target} STATIC ${out}/${name}.o ${out}/${name}.h)
  set_target_properties(${target} PROPERTIES LINKER_LANGUAGE C)
  target_include_directories(${target} PUBLIC ${out})
  target_link_libraries(${target} PUBLIC ${M_RUNTIME})
endfunction()
