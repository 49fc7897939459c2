# The arithmetic contract's link line has no BLAS and no JSON library (issue 11): run by the contract_link_line test
# (tests/quant/CMakeLists.txt) as
#   cmake -DPROBE_MAP=... -DCONTROL_MAP=... -DPROBE_CLOSURE=... -DCONTROL_CLOSURE=... -P check_contract_link.cmake
# Inputs:
#   PROBE_MAP        GNU ld's map file (-Map) of contract_link_probe, linked against fpqvar::contract only: its LOAD
#                    lines are every file the linker read, i.e. the link line as it was actually used;
#   PROBE_CLOSURE    the transitive link interface of fpqvar_contract, one entry per line (target names, library
#                    paths, flags), written at configure time; header-only libraries such as nlohmann_json are
#                    visible only here, never on a link line;
#   CONTROL_MAP, CONTROL_CLOSURE  the same for contract_link_control, linked against fpqvar::quant, which does link
#                    OpenBLAS and nlohmann_json: the check must find them there, so a detector that cannot see a
#                    BLAS or JSON dependency fails this test instead of passing it.
cmake_minimum_required(VERSION 3.25)
set(forbidden "blas|lapack|json")  # matched against lower-cased names and paths

function(read_map map out)
  if(NOT EXISTS "${map}")
    message(FATAL_ERROR "${map}: no link map (build the contract_link_probe and contract_link_control targets)")
  endif()
  file(STRINGS "${map}" loads REGEX "^LOAD ")
  if(NOT loads)
    message(FATAL_ERROR "${map}: no LOAD lines: not a GNU ld map file")
  endif()
  list(TRANSFORM loads REPLACE "^LOAD " "")
  set(${out} "${loads}" PARENT_SCOPE)
endfunction()

function(read_closure file out)
  if(NOT EXISTS "${file}")
    message(FATAL_ERROR "${file}: no link closure (re-run CMake's configure step)")
  endif()
  file(STRINGS "${file}" entries)
  set(${out} "${entries}" PARENT_SCOPE)
endfunction()

# The entries of `list` whose lower-cased text matches `regex`.
function(matching list regex out)
  set(hits)
  foreach(e IN LISTS list)
    string(TOLOWER "${e}" lower)
    if(lower MATCHES "${regex}")
      list(APPEND hits "${e}")
    endif()
  endforeach()
  set(${out} "${hits}" PARENT_SCOPE)
endfunction()

set(faults)
read_map("${PROBE_MAP}" probe_loads)
read_map("${CONTROL_MAP}" control_loads)
read_closure("${PROBE_CLOSURE}" probe_closure)
read_closure("${CONTROL_CLOSURE}" control_closure)

# The probe's link line: the contract's archive, not the PTQ library's, and nothing BLAS or JSON.
matching("${probe_loads}" "libfpqvar_contract\\.a$" contract_archive)
matching("${probe_loads}" "libfpqvar_quant\\.a$" quant_archive)
matching("${probe_loads}" "${forbidden}" bad_loads)
if(NOT contract_archive)
  list(APPEND faults "${PROBE_MAP}: libfpqvar_contract.a is not on the probe's link line")
endif()
if(quant_archive)
  list(APPEND faults "${PROBE_MAP}: the probe links the PTQ library (${quant_archive})")
endif()
if(bad_loads)
  list(APPEND faults "fpqvar::contract's link line reads BLAS/JSON libraries: ${bad_loads}")
endif()

# The contract's link interface: no BLAS or JSON target, library or flag anywhere in its transitive closure.
matching("${probe_closure}" "^fpqvar_contract$" self)
matching("${probe_closure}" "${forbidden}" bad_closure)
if(NOT self)
  list(APPEND faults "${PROBE_CLOSURE}: not the closure of fpqvar_contract")
endif()
if(bad_closure)
  list(APPEND faults "fpqvar::contract's link interface holds BLAS/JSON: ${bad_closure}")
endif()

# Controls: the same detectors see fpqvar::quant's OpenBLAS on its link line and nlohmann_json and OpenBLAS in its
# link interface.
matching("${control_loads}" "blas" control_blas)
matching("${control_closure}" "json" control_json)
matching("${control_closure}" "blas" control_blas_iface)
if(NOT control_blas)
  list(APPEND faults "control: no BLAS library found on fpqvar::quant's link line (${CONTROL_MAP}): the detector is blind")
endif()
if(NOT control_json OR NOT control_blas_iface)
  list(APPEND faults "control: JSON or BLAS not found in fpqvar::quant's link interface (${CONTROL_CLOSURE}): the detector is blind")
endif()

list(LENGTH probe_loads n_loads)
list(JOIN probe_closure ", " closure_text)
message(STATUS "fpqvar::contract link interface: ${closure_text}")
message(STATUS "contract_link_probe read ${n_loads} files; control saw ${control_blas} and ${control_json}")
if(faults)
  list(JOIN faults "\n  " text)
  message(FATAL_ERROR "contract link check failed:\n  ${text}")
endif()
message(STATUS "contract link check: no BLAS and no JSON on fpqvar::contract's link line or link interface")
