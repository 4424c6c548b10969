/*
 * tablium: versions. Generated headers check TB_GEN_ABI: code generated for another runtime
 * (other table layouts in tablium/codec.h and tablium/op.h) stops at compile time with a clear
 * message instead of misreading tables at run time.
 */
#ifndef TABLIUM_VERSION_H
#define TABLIUM_VERSION_H

#define TB_VERSION "0.1.0"

/** The contract between tablium-gen's output and this runtime. tablium-gen writes the value it
 *  targets into every generated header; a mismatch is an #error. Raised whenever a table
 *  layout or a function generated code calls changes. */
#define TB_GEN_ABI 5

#endif
