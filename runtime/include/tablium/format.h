/**
 * @file format.h
 * @brief JSON Schema 2020-12 "format" assertions for string instances.
 *
 * Every validator takes a byte range s[0..len): s need not be NUL-terminated and is never read
 * beyond len bytes. A NUL byte inside the range makes the instance invalid; s == NULL yields
 * false whatever len is. Input is treated as UTF-8 bytes; every format handled here is
 * ASCII-only on the wire, so any byte >= 0x80 is invalid (hostname A-labels "xn--..." are
 * decoded and checked as IDNA2008 labels).
 *
 * Contract for every function in this header: thread-safe and reentrant (no global or static
 * mutable state, no locale dependence), never allocates, bounded stack use, O(len) time.
 */
#ifndef TABLIUM_FORMAT_H
#define TABLIUM_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * "date-time": RFC 3339 section 5.6 date-time, e.g. "1963-06-19T08:30:06.283185Z".
 * The "T" separator and "Z" designator are case-insensitive; a numeric offset is +HH:MM or
 * -HH:MM with HH <= 23 and MM <= 59; the day is checked against the month and leap years.
 * Second 60 (leap second) is accepted only when the time normalised to UTC is 23:59:60.
 * Thread-safe, no allocation.
 */
bool tb_format_date_time(const char *s, size_t len);

/**
 * "date": RFC 3339 full-date "YYYY-MM-DD" (four-digit year, Gregorian leap year rules).
 * Thread-safe, no allocation.
 */
bool tb_format_date(const char *s, size_t len);

/**
 * "time": RFC 3339 full-time "HH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"; the offset is mandatory.
 * Leap second rule as for tb_format_date_time(). Thread-safe, no allocation.
 */
bool tb_format_time(const char *s, size_t len);

/**
 * "email": RFC 5321 section 4.1.2 Mailbox. Local part is a dot-string (atoms of atext
 * separated by single dots) or a quoted-string (qtextSMTP / quoted-pairSMTP); the domain is a
 * host name as accepted by tb_format_hostname(), or an address literal "[a.b.c.d]" or
 * "[IPv6:...]" (where "::" must stand for at least two groups, per RFC 5321 section 4.1.3).
 * Size limits of RFC 5321 section 4.5.3.1 apply: local part <= 64 octets, mailbox <= 254.
 * Thread-safe, no allocation.
 */
bool tb_format_email(const char *s, size_t len);

/**
 * "uuid": RFC 4122 string form 8-4-4-4-12 hexadecimal digits, any version and variant,
 * case-insensitive, no braces or "urn:uuid:" prefix. Thread-safe, no allocation.
 */
bool tb_format_uuid(const char *s, size_t len);

/**
 * "ipv4": dotted quad of four decimal octets 0-255 (RFC 2673 section 3.2 / RFC 3986
 * dec-octet): ASCII digits only, no leading zeros, no shorthand forms.
 * Thread-safe, no allocation.
 */
bool tb_format_ipv4(const char *s, size_t len);

/**
 * "ipv6": RFC 4291 section 2.2 text forms: eight groups of 1-4 hex digits, at most one "::"
 * standing for one or more zero groups, optionally ending in an embedded dotted-quad IPv4
 * address. No zone id, prefix length or brackets. Thread-safe, no allocation.
 */
bool tb_format_ipv6(const char *s, size_t len);

/**
 * "uri": RFC 3986 section 3 absolute URI with scheme (fragment allowed). Percent-encodings must
 * be complete, only the characters of the RFC 3986 grammar are allowed (no spaces, no
 * non-ASCII), the port is all digits, hosts are reg-names, IPv4 addresses or bracketed IPv6 /
 * IPvFuture literals. Thread-safe, no allocation.
 */
bool tb_format_uri(const char *s, size_t len);

/**
 * "uri-reference": RFC 3986 section 4.1 URI-reference, i.e. a URI as for tb_format_uri() or a
 * relative reference (the empty string is valid). Thread-safe, no allocation.
 */
bool tb_format_uri_reference(const char *s, size_t len);

/**
 * "hostname": RFC 1123 section 2.1 host name: dot-separated labels of 1-63 ASCII letters,
 * digits and hyphens, not starting or ending with a hyphen, at most 253 octets in total, no
 * trailing dot. Labels starting with "xn--" (any case) must be valid IDNA2008 A-labels
 * (RFC 5890 section 2.3.2.1): they must Punycode-decode (RFC 3492) and re-encode to the same
 * label, and the U-label must satisfy RFC 5891 section 4.2.3.1-4.2.3.3 and RFC 5892 (PVALID
 * code points, CONTEXTJ / CONTEXTO rules; Unicode 17.0 data). Not checked: NFC normalisation
 * of the U-label and the RFC 5893 Bidi rule. Thread-safe, no allocation.
 */
bool tb_format_hostname(const char *s, size_t len);

/**
 * "byte" (OpenAPI 3.0's base64-encoded characters, RFC 4648): the standard alphabet (section 4)
 * or the URL-safe one (section 5), not mixed, padded to a multiple of four with '=' or not
 * padded at all, and no length that leaves a single character over; no whitespace. The empty
 * string is valid. Thread-safe, no allocation.
 */
bool tb_format_byte(const char *s, size_t len);

/** Signature shared by all format validators above. */
typedef bool (*tb_format_fn)(const char *s, size_t len);

/**
 * Looks a format validator up by its JSON Schema name ("date-time", "date", "time", "email",
 * "uuid", "ipv4", "ipv6", "uri", "uri-reference", "hostname"); the match is exact and
 * case-sensitive. Returns NULL when the name is unknown or NULL. Thread-safe, no allocation.
 */
tb_format_fn tb_format_lookup(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* TABLIUM_FORMAT_H */
