# Target helpers: settings shared by every target that includes LibTorch headers, and one static
# library per module folder of src/.

# The precompiled header (cmake/hear_pch.h) is compiled once, by the object library hear_pch; every
# other torch target reuses it (same compiler, standard and warning flags, so the .gch is valid).
if(HEAR_PCH AND NOT TARGET hear_pch)
  set(_hear_pch_src ${CMAKE_BINARY_DIR}/hear_pch_owner.cpp)
  if(NOT EXISTS ${_hear_pch_src})
    file(WRITE ${_hear_pch_src} "// Owner of the precompiled header (cmake/HearTargets.cmake).\n")
  endif()
  add_library(hear_pch OBJECT ${_hear_pch_src})
  target_link_libraries(hear_pch PRIVATE ${TORCH_LIBRARIES})
  target_compile_options(hear_pch PRIVATE -Wall -Wextra)
  target_precompile_headers(hear_pch PRIVATE ${CMAKE_SOURCE_DIR}/cmake/hear_pch.h)
endif()

# Shared settings for every target that includes LibTorch headers. Only the test executable is
# unity-built (HEAR_UNITY): the library modules compile one file per translation unit, so a
# file's private helpers keep plain names (the precompiled header already saves the LibTorch
# parsing that unity batches would).
function(hear_torch_target target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(HEAR_UNITY AND target STREQUAL "hear_tests")
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 6)
  endif()
  if(HEAR_PCH)
    target_precompile_headers(${target} REUSE_FROM hear_pch)
    # With position-independent code on (the Python module), the shared precompiled header is
    # -fPIC; CMake would give programs -fPIE, and GCC refuses a header built with other flags.
    get_target_property(type ${target} TYPE)
    if(CMAKE_POSITION_INDEPENDENT_CODE AND type STREQUAL "EXECUTABLE")
      set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
      target_compile_options(${target} PRIVATE -fPIC)
    endif()
  endif()
endfunction()

# hear_module(NAME [DEPS module...] [PUBLIC_LIBS target...] [PRIVATE_LIBS target...])
#
# The static library hear_<NAME> (exported as hear::<NAME>) from src/<NAME>/*.cpp, with the public
# headers of include/hear/. DEPS are the modules whose headers it includes ("hear/<module>/..."):
# they are PUBLIC link dependencies, so a module that uses another without declaring it fails to
# link. The module joins the umbrella target `hear` (hear::hear). Adding a module, e.g. src/util/,
# is one line in the top-level CMakeLists.txt: hear_module(util DEPS io).
function(hear_module name)
  cmake_parse_arguments(M "" "" "DEPS;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp)
  if(NOT sources)
    message(FATAL_ERROR "hear_module(${name}): no sources in src/${name}/")
  endif()
  set(target hear_${name})
  add_library(${target} STATIC ${sources})
  add_library(hear::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
                                              $<INSTALL_INTERFACE:include>)
  list(TRANSFORM M_DEPS PREPEND hear_ OUTPUT_VARIABLE dep_targets)
  target_link_libraries(${target} PUBLIC ${dep_targets} ${TORCH_LIBRARIES} ${M_PUBLIC_LIBS}
                        PRIVATE ${M_PRIVATE_LIBS})
  target_compile_definitions(${target} PUBLIC HEAR_VERSION="${PROJECT_VERSION}")
  hear_torch_target(${target})
  set_property(GLOBAL APPEND PROPERTY HEAR_MODULE_TARGETS ${target})
endfunction()
