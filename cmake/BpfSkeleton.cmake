# SPDX-License-Identifier: GPL-2.0-only
# connwatch_bpf_skeleton(<target> SOURCE <file.bpf.c> [NAME <skeleton>]
#                        [DEPENDS <file>...] [INCLUDES <dir>...])
#
# Compiles one BPF C file with clang -target bpf into <file>.bpf.o in the current
# binary directory, and generates its libbpf skeleton with `bpftool gen skeleton`
# as gen/<file>.skel.h there (libbpf-bootstrap's bpf_object(), for our two objects:
# connwatch's and the benchmark's, which must be compiled the same way to be
# compared). <file> is SOURCE's name without ".bpf.c"; NAME, the skeleton's struct
# and function prefix (NAME__open, ...), defaults to it.
#
# <target> is an INTERFACE library and a build target (`make <target>`): linking
# it adds the gen/ directory to the include path and builds the header first.
# DEPENDS names files the object is rebuilt for beyond those clang's dependency
# file lists (it catches every #include); INCLUDES adds -I directories.

find_program(CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
# The multiarch include dir provides <asm/types.h> for the UAPI headers, which
# clang -target bpf does not find on its own.
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
                OUTPUT_VARIABLE CONNWATCH_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE)

function(connwatch_bpf_skeleton target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "SOURCE;NAME" "DEPENDS;INCLUDES")
  if(NOT arg_SOURCE OR arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "connwatch_bpf_skeleton(${target}): want SOURCE <file.bpf.c> "
                        "[NAME n] [DEPENDS ...] [INCLUDES ...], got: ${ARGN}")
  endif()
  cmake_path(ABSOLUTE_PATH arg_SOURCE BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  cmake_path(GET arg_SOURCE FILENAME file)
  string(REGEX REPLACE "\\.bpf\\.c$" "" stem "${file}")
  if(stem STREQUAL file)
    message(FATAL_ERROR "connwatch_bpf_skeleton(${target}): ${file} does not end in .bpf.c")
  endif()
  if(NOT arg_NAME)
    set(arg_NAME ${stem})
  endif()

  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${stem}.bpf.o)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/gen)
  set(skel ${dir}/${stem}.skel.h)
  set(includes)
  foreach(d IN LISTS arg_INCLUDES)
    cmake_path(ABSOLUTE_PATH d BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND includes -I${d})
  endforeach()

  # -mcpu=v3: atomic compare-and-swap (connwatch's scan state) needs BPF ISA v3
  # (kernel >= 5.12); the benchmark's programs use the same so that both objects
  # are built alike.
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CLANG} -g -O2 -target bpf -mcpu=v3 -Wall -Werror
            ${includes} -I/usr/include/${CONNWATCH_MULTIARCH}
            -MD -MF ${obj}.d
            -c ${arg_SOURCE} -o ${obj}
    DEPENDS ${arg_SOURCE} ${arg_DEPENDS}
    DEPFILE ${obj}.d
    COMMENT "clang -target bpf: ${stem}.bpf.o"
    VERBATIM)
  # Through a temporary file: a failed bpftool must not leave a truncated header
  # that the next build would take as up to date.
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND sh -c "\"$1\" gen skeleton \"$2\" name \"$3\" > \"$4.tmp\" && mv \"$4.tmp\" \"$4\""
            bpftool-gen ${BPFTOOL} ${obj} ${arg_NAME} ${skel}
    DEPENDS ${obj}
    COMMENT "bpftool gen skeleton: ${stem}.skel.h"
    VERBATIM)
  # With the header as its source the INTERFACE library is a build target of its
  # own (`make bpf_skel`), and whatever links it or depends on it waits for it.
  add_library(${target} INTERFACE ${skel})
  target_include_directories(${target} INTERFACE ${dir})
endfunction()
