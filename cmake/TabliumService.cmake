# tablium_add_service(NAME SPEC spec [HANDLERS file...] [DEPS service...] [LIBS lib...]
#                     [OUTPUT_DIR dir])
#
# Generates the C of an OpenAPI spec at build time (tablium-gen openapi, rerun when any
# .json/.yaml beside the spec changes) into OUTPUT_DIR/NAME (default
# ${CMAKE_CURRENT_BINARY_DIR}/tablium-gen/NAME) and builds
#   NAME_api      library: the spec's types, codecs and generated client (link it to call NAME);
#                 #include "NAME/NAME.h"
#   NAME_service  executable: the generated server, HANDLERS and a one-line main()
#                 (NAME_service_main); only when HANDLERS are given
# DEPS: other services made by tablium_add_service whose clients NAME uses (x-tablium-depends).
# LIBS: more libraries for the service, e.g. tablium::bus when it publishes or consumes events
# (a service without events links no broker library).
#
# Needs TABLIUM_GEN (the tablium-gen program), TABLIUM_MAIN_IN (the main() template) and the
# target tablium::tablium: find_package(tablium) sets them.
function(tablium_add_service name)
  cmake_parse_arguments(S "" "SPEC;OUTPUT_DIR" "HANDLERS;DEPS;LIBS" ${ARGN})
  if(NOT S_SPEC)
    message(FATAL_ERROR "tablium_add_service(${name}): SPEC is required")
  endif()
  if(NOT name MATCHES "^[a-z][a-z0-9_]*$")
    message(FATAL_ERROR "tablium_add_service(${name}): NAME must be a C identifier in lower case")
  endif()
  get_filename_component(spec "${S_SPEC}" ABSOLUTE)
  if(NOT EXISTS "${spec}")
    message(FATAL_ERROR "tablium_add_service(${name}): no spec at ${spec}")
  endif()
  get_filename_component(specdir "${spec}" DIRECTORY)
  if(S_OUTPUT_DIR)
    set(root "${S_OUTPUT_DIR}")
  else()
    set(root "${CMAKE_CURRENT_BINARY_DIR}/tablium-gen")
  endif()
  set(out "${root}/${name}")
  # the spec and the files it may $ref
  file(GLOB_RECURSE spec_files CONFIGURE_DEPENDS "${specdir}/*.json" "${specdir}/*.yaml"
       "${specdir}/*.yml")
  # and, in a source tree, the generator's code and templates beside the script (a changed
  # generator regenerates; an installed one changes only with its package)
  get_filename_component(gendir "${TABLIUM_GEN}" DIRECTORY)
  file(GLOB_RECURSE gen_files CONFIGURE_DEPENDS "${gendir}/tablium_gen/*.py"
       "${gendir}/tablium_gen/*.j2")
  add_custom_command(
    OUTPUT "${out}/${name}.h" "${out}/${name}.c" "${out}/${name}_server.c"
    COMMAND "${TABLIUM_GEN}" openapi "${spec}" -o "${out}" --name "${name}"
    DEPENDS "${spec}" ${spec_files} "${TABLIUM_GEN}" ${gen_files}
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    COMMENT "tablium-gen openapi ${S_SPEC} -> ${name}"
    VERBATIM)
  add_library(${name}_api "${out}/${name}.c" "${out}/${name}.h")
  target_include_directories(${name}_api PUBLIC "${root}")
  target_link_libraries(${name}_api PUBLIC tablium::tablium)
  foreach(dep ${S_DEPS})
    target_link_libraries(${name}_api PUBLIC ${dep}_api)
  endforeach()
  if(S_HANDLERS)
    set(TB_SERVICE ${name})
    configure_file("${TABLIUM_MAIN_IN}" "${out}/${name}_main.c" @ONLY)
    add_executable(${name}_service "${out}/${name}_server.c" "${out}/${name}_main.c"
      ${S_HANDLERS})
    target_link_libraries(${name}_service PRIVATE ${name}_api ${S_LIBS})
  endif()
endfunction()
