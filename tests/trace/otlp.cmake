# The OTLP/HTTP exporter (runtime/trace/otlp.c), http/json and http/protobuf, against an independent receiver,
# tests/trace/otlp-decoder (node; its packages come from its lock file by `npm ci` when
# node_modules is missing).
add_executable(otlp_test ${CMAKE_CURRENT_SOURCE_DIR}/otlp_test.c)
target_compile_options(otlp_test PRIVATE ${TB_WARNINGS})
target_compile_definitions(otlp_test PRIVATE
  OTLP_DECODER_DIR="${CMAKE_CURRENT_SOURCE_DIR}/otlp-decoder")
target_link_libraries(otlp_test PRIVATE tablium PkgConfig::CHECK)
add_test(NAME trace_otlp COMMAND otlp_test http/json)
add_test(NAME trace_otlp_protobuf COMMAND otlp_test http/protobuf)
# the same with libcurl, which the exporter uses for https, proxies and redirects
add_test(NAME trace_otlp_libcurl COMMAND otlp_test http/protobuf)
set_tests_properties(trace_otlp_libcurl PROPERTIES ENVIRONMENT TB_OTLP_HTTP_CLIENT=libcurl)
# otlp_decoder: contract_auth installs and runs the same receiver; one `npm ci` at a time
set_tests_properties(trace_otlp trace_otlp_protobuf trace_otlp_libcurl PROPERTIES WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} TIMEOUT 600
  RESOURCE_LOCK otlp_decoder)
