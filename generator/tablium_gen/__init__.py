"""tablium-gen: JSON Schema / OpenAPI to C compiler.

Three stages, each usable alone:
  load/   read YAML/JSON, index schema resources, resolve $ref        (tablium_gen.load)
  ir/     plain Python model: validator functions, C types, names       (tablium_gen.ir)
  render/ Jinja2 templates turn the IR into one .h and one .c per set   (tablium_gen.render)
"""

VERSION = "0.1.0"
# TB_GEN_ABI of the runtime the generated code is written for (runtime/include/tablium/version.h)
GEN_ABI = 5
