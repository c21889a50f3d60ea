# Cross-compiling for 64-bit ARM Linux with Debian's cross compiler (g++-aarch64-linux-gnu) against
# an arm64 sysroot unpacked from Debian bookworm's arm64 packages (scripts/make_arm64_sysroot.sh).
#
#   cmake -S . -B build/arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#         [-DHEAR_ARM64_SYSROOT=/path/to/sysroot]
#
# The sysroot: -DHEAR_ARM64_SYSROOT, else $HEAR_ARM64_SYSROOT, else ~/.cache/hear-cpp/arm64-sysroot.
# Programs built here run on the host under qemu-aarch64-static (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

if(NOT HEAR_ARM64_SYSROOT)
  if(DEFINED ENV{HEAR_ARM64_SYSROOT} AND NOT "$ENV{HEAR_ARM64_SYSROOT}" STREQUAL "")
    set(HEAR_ARM64_SYSROOT "$ENV{HEAR_ARM64_SYSROOT}")
  else()
    set(HEAR_ARM64_SYSROOT "$ENV{HOME}/.cache/hear-cpp/arm64-sysroot")
  endif()
endif()
set(HEAR_ARM64_SYSROOT "${HEAR_ARM64_SYSROOT}" CACHE PATH "arm64 sysroot (scripts/make_arm64_sysroot.sh)")
if(NOT EXISTS "${HEAR_ARM64_SYSROOT}/usr/include/aarch64-linux-gnu")
  message(FATAL_ERROR "No arm64 sysroot at ${HEAR_ARM64_SYSROOT}: run scripts/make_arm64_sysroot.sh")
endif()
# try_compile projects re-read this file: hand them the sysroot.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES HEAR_ARM64_SYSROOT)

find_program(HEAR_ARM64_CXX aarch64-linux-gnu-g++ REQUIRED)
find_program(HEAR_ARM64_CC aarch64-linux-gnu-gcc REQUIRED)
set(CMAKE_CXX_COMPILER "${HEAR_ARM64_CXX}")
set(CMAKE_C_COMPILER "${HEAR_ARM64_CC}")
set(CMAKE_SYSROOT "${HEAR_ARM64_SYSROOT}")

# Headers and libraries only from the sysroot; build tools (protoc, pkg-config) from the host.
set(CMAKE_FIND_ROOT_PATH "${HEAR_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (sndfile, soxr): the sysroot's .pc files, with their paths prefixed by the sysroot.
set(ENV{PKG_CONFIG_DIR} "")
set(ENV{PKG_CONFIG_LIBDIR}
    "${HEAR_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${HEAR_ARM64_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${HEAR_ARM64_SYSROOT}")

find_program(HEAR_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(HEAR_QEMU_AARCH64)
  set(_hear_libs "${HEAR_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu")
  set(CMAKE_CROSSCOMPILING_EMULATOR "${HEAR_QEMU_AARCH64};-L;${HEAR_ARM64_SYSROOT};-E;LD_LIBRARY_PATH=${_hear_libs}:${_hear_libs}/openblas-openmp")
endif()
