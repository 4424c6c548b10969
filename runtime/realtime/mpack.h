/*
 * MessagePack <-> JSON for the Redis adapter, in notepack.io's conventions (what
 * @socket.io/redis-adapter writes): Buffers are bin, ArrayBuffers ext type 0, undefined fixext1
 * type 0, Dates fixext8 type 0 (int64 ms). In JSON, binary values are Socket.IO placeholders
 * {"_placeholder":true,"num":N} whose bytes are bins[N].
 */
#ifndef TB_RT_MPACK_H
#define TB_RT_MPACK_H

#include <jansson.h>
#include <msgpack.h>
#include <string.h>

#include "tablium/realtime.h"

/** Converts o to JSON. Binary values are appended to bins (pointing into o's memory) as long as
 *  *nbins < max, else the call fails. Returns a new reference, or NULL when the value is too
 *  deep, has too many binaries, or a string that is not UTF-8 / holds U+0000. */
json_t *tb_rt__mp_to_json(const msgpack_object *o, tb_rt_bin *bins, size_t *nbins, size_t max);

/** Packs v; placeholders become bin values of bins[num]. 0, or -1 for a placeholder out of
 *  range or a value too deep. */
int tb_rt__mp_pack_json(msgpack_packer *pk, const json_t *v, const tb_rt_bin *bins, size_t nbins);

/** Packs a string given with its length. */
void tb_rt__mp_pack_strn(msgpack_packer *pk, const char *s, size_t n);
static inline void tb_rt__mp_pack_str(msgpack_packer *pk, const char *s)
{
    tb_rt__mp_pack_strn(pk, s, strlen(s));
}

/** The value of key `k` in map o, or NULL. */
const msgpack_object *tb_rt__mp_get(const msgpack_object *o, const char *k);

#endif
