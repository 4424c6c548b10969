/* Internal to libtablium's JSON code (not installed): validation state shared across checks. */
#ifndef TB_VCTX_INTERNAL_H
#define TB_VCTX_INTERNAL_H

#include "tablium/codec.h"
#include "tablium/validate.h"

/** tb_vctx_init for a check that is part of a validation already under way (a decode's quiet
 *  choice of a union branch): it shares that validation's regex budget and its undecided
 *  patterns. */
void tb__vctx_init_nested(tb_vctx *c, tb_error *err, unsigned flags);

/** Whether x passes fn (NULL: anything does), quietly, as such a nested check (codec.c). */
bool tb__quietly_valid(tb_vfn fn, const json_t *x);

#endif
