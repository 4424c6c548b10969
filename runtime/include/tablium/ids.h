/*
 * tablium: identifiers and timestamps services hand out.
 */
#ifndef TABLIUM_IDS_H
#define TABLIUM_IDS_H

#include <stdint.h>

/** A random (version 4) UUID, lowercase 8-4-4-4-12, NUL-terminated, into out[37]. Thread-safe;
 *  uses getrandom(2). */
void tb_uuid_new(char out[37]);
/** The current UTC time as RFC 3339 with milliseconds ("2026-11-24T10:00:00.123Z") into out[25]. */
void tb_time_rfc3339(char out[25]);
/** Milliseconds since the Unix epoch. */
int64_t tb_time_ms(void);

#endif
