/*
 * JSON Schema 2020-12 "format" assertions (see tablium/format.h for the contract).
 *
 * All validators work on s[0..len) only, use no mutable static state and never allocate. Every
 * character class test is written out for ASCII so the result does not depend on the locale or
 * on the signedness of char; bytes >= 0x80 and NUL are never part of any accepted alphabet.
 */
#include "tablium/format.h"

#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* ASCII character classes                                                                    */
/* ------------------------------------------------------------------------------------------ */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* True when c is a non-NUL member of the NUL-terminated set. */
static bool in_set(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 3339: date, time, date-time                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Parses exactly n ASCII digits at s into *out. */
static bool parse_digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) {
            return false;
        }
        v = v * 10u + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

static unsigned days_in_month(unsigned year, unsigned month)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2) {
        bool leap = (year % 4u == 0 && year % 100u != 0) || year % 400u == 0;
        return leap ? 29u : 28u;
    }
    return days[month - 1];
}

/* full-date = date-fullyear "-" date-month "-" date-mday; exactly 10 bytes. */
static bool full_date_valid(const char *s, size_t len)
{
    unsigned year, month, day;
    if (len != 10 || s[4] != '-' || s[7] != '-') {
        return false;
    }
    if (!parse_digits(s, 4, &year) || !parse_digits(s + 5, 2, &month)
        || !parse_digits(s + 8, 2, &day)) {
        return false;
    }
    if (month < 1 || month > 12 || day < 1) {
        return false;
    }
    return day <= days_in_month(year, month);
}

/*
 * full-time = partial-time time-offset
 * partial-time = time-hour ":" time-minute ":" time-second [time-secfrac]
 * time-offset = "Z" / time-numoffset;  time-numoffset = ("+" / "-") time-hour ":" time-minute
 * Second 60 is a leap second and only allowed at 23:59 UTC (the JSON Schema Test Suite rule).
 */
static bool full_time_valid(const char *s, size_t len)
{
    unsigned hour, minute, second;
    size_t i = 8;
    int offset = 0; /* minutes east of UTC */

    if (len < 9 || s[2] != ':' || s[5] != ':') {
        return false;
    }
    if (!parse_digits(s, 2, &hour) || !parse_digits(s + 3, 2, &minute)
        || !parse_digits(s + 6, 2, &second)) {
        return false;
    }
    if (hour > 23 || minute > 59 || second > 60) {
        return false;
    }
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && is_digit(s[i])) {
            i++;
        }
        if (i == start) {
            return false;
        }
    }
    if (i >= len) {
        return false; /* the offset is mandatory */
    }
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        unsigned off_hour, off_minute;
        if (len - i != 6 || s[i + 3] != ':' || !parse_digits(s + i + 1, 2, &off_hour)
            || !parse_digits(s + i + 4, 2, &off_minute)) {
            return false;
        }
        if (off_hour > 23 || off_minute > 59) {
            return false;
        }
        offset = (int)(off_hour * 60u + off_minute);
        if (s[i] == '-') {
            offset = -offset;
        }
        i += 6;
    } else {
        return false;
    }
    if (i != len) {
        return false;
    }
    if (second == 60) {
        int utc = ((int)(hour * 60u + minute) - offset + 2 * 1440) % 1440;
        if (utc != 23 * 60 + 59) {
            return false;
        }
    }
    return true;
}

bool tb_format_date(const char *s, size_t len)
{
    return s != NULL && full_date_valid(s, len);
}

bool tb_format_time(const char *s, size_t len)
{
    return s != NULL && full_time_valid(s, len);
}

bool tb_format_date_time(const char *s, size_t len)
{
    if (s == NULL || len < 11 || (s[10] != 'T' && s[10] != 't')) {
        return false;
    }
    return full_date_valid(s, 10) && full_time_valid(s + 11, len - 11);
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 4122: uuid                                                                             */
/* ------------------------------------------------------------------------------------------ */

bool tb_format_uuid(const char *s, size_t len)
{
    /* 1 for the hex digits: the validators call this for every id of every event */
    static const unsigned char hex[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
        ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
        ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1};
    if (s == NULL || len != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
        return false;
    }
    const unsigned char *u = (const unsigned char *)s;
    unsigned ok = 1;
    for (size_t i = 0; i < 36; i++) {
        ok &= hex[u[i]] | (i == 8 || i == 13 || i == 18 || i == 23);
    }
    return ok != 0;
}

/* ------------------------------------------------------------------------------------------ */
/* IPv4 (dotted quad) and IPv6 (RFC 4291 section 2.2)                                         */
/* ------------------------------------------------------------------------------------------ */

/* IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet (RFC 3986 section 3.2.2) */
static bool ipv4_valid(const char *s, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start;
        unsigned value = 0;
        if (part > 0) {
            if (i >= len || s[i] != '.') {
                return false;
            }
            i++;
        }
        start = i;
        while (i < len && i - start < 3 && is_digit(s[i])) {
            value = value * 10u + (unsigned)(s[i] - '0');
            i++;
        }
        if (i == start || value > 255 || (i - start > 1 && s[start] == '0')) {
            return false;
        }
    }
    return i == len;
}

/*
 * IPv6 text form: up to eight 16-bit groups of 1-4 hex digits separated by ":", at most one
 * "::" standing for min_elided or more zero groups, optionally a trailing dotted quad that
 * counts as two groups. RFC 4291 allows "::" for a single group (min_elided 1); RFC 5321
 * address literals require at least two (min_elided 2).
 */
static bool ipv6_valid(const char *s, size_t len, int min_elided)
{
    int groups = 0;
    bool elided = false;
    size_t i = 0;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        elided = true;
        i = 2;
    } else if (len == 0 || s[0] == ':') {
        return false;
    }
    while (i < len) {
        size_t start = i;
        while (i < len && is_hex(s[i])) {
            i++;
        }
        if (i < len && s[i] == '.') {
            /* embedded IPv4: must run to the end and occupies the last two groups */
            if (groups > 6 || !ipv4_valid(s + start, len - start)) {
                return false;
            }
            groups += 2;
            break;
        }
        if (i == start || i - start > 4 || ++groups > 8) {
            return false;
        }
        if (i == len) {
            break;
        }
        if (s[i] != ':') {
            return false;
        }
        i++;
        if (i < len && s[i] == ':') {
            if (elided) {
                return false;
            }
            elided = true;
            i++;
        } else if (i == len) {
            return false; /* a single trailing ':' */
        }
    }
    return elided ? groups <= 8 - min_elided : groups == 8;
}

bool tb_format_ipv4(const char *s, size_t len)
{
    return s != NULL && ipv4_valid(s, len);
}

bool tb_format_ipv6(const char *s, size_t len)
{
    return s != NULL && ipv6_valid(s, len, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 3986: uri, uri-reference                                                               */
/* ------------------------------------------------------------------------------------------ */

static bool is_unreserved(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_sub_delim(char c)
{
    return in_set(c, "!$&'()*+,;=");
}

/*
 * True when s[0..len) consists only of unreserved characters, sub-delims, complete
 * pct-encoded triplets and members of extra.
 */
static bool uri_chars_valid(const char *s, size_t len, const char *extra)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (len - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) {
                return false;
            }
            i += 2;
        } else if (!is_unreserved(c) && !is_sub_delim(c) && !in_set(c, extra)) {
            return false;
        }
    }
    return true;
}

/* IP-literal content between "[" and "]": IPv6address / IPvFuture */
static bool ip_literal_valid(const char *s, size_t len)
{
    size_t i = 1;
    if (len > 0 && (s[0] == 'v' || s[0] == 'V')) {
        /* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
        while (i < len && is_hex(s[i])) {
            i++;
        }
        if (i == 1 || i >= len || s[i] != '.' || ++i == len) {
            return false;
        }
        for (; i < len; i++) {
            if (!is_unreserved(s[i]) && !is_sub_delim(s[i]) && s[i] != ':') {
                return false;
            }
        }
        return true;
    }
    return ipv6_valid(s, len, 1);
}

/* authority = [ userinfo "@" ] host [ ":" port ] */
static bool authority_valid(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    size_t host_end;

    if (at != NULL) {
        size_t userinfo_len = (size_t)(at - s);
        if (!uri_chars_valid(s, userinfo_len, ":")) {
            return false;
        }
        s += userinfo_len + 1;
        len -= userinfo_len + 1;
    }
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || !ip_literal_valid(s + 1, (size_t)(close - s) - 1)) {
            return false;
        }
        host_end = (size_t)(close - s) + 1;
    } else {
        /* reg-name; IPv4address is a syntactic subset of it */
        host_end = 0;
        while (host_end < len && s[host_end] != ':') {
            host_end++;
        }
        if (!uri_chars_valid(s, host_end, "")) {
            return false;
        }
    }
    if (host_end < len) {
        if (s[host_end] != ':') {
            return false;
        }
        for (size_t i = host_end + 1; i < len; i++) {
            if (!is_digit(s[i])) {
                return false;
            }
        }
    }
    return true;
}

/*
 * URI           = scheme ":" hier-part [ "?" query ] [ "#" fragment ]
 * relative-ref  = relative-part [ "?" query ] [ "#" fragment ]
 * A leading "scheme:" can never start a relative-ref (its first segment may not contain ":"),
 * so the presence of a syntactically valid scheme decides which production applies.
 */
static bool uri_valid(const char *s, size_t len, bool allow_relative)
{
    size_t i = 0;
    size_t path_end;
    size_t query_end;
    bool has_scheme = false;
    const char *hash;
    const char *question;

    if (len > 0 && is_alpha(s[0])) {
        size_t j = 1;
        while (j < len && (is_alpha(s[j]) || is_digit(s[j]) || in_set(s[j], "+-."))) {
            j++;
        }
        if (j < len && s[j] == ':') {
            has_scheme = true;
            i = j + 1;
        }
    }
    if (!has_scheme && !allow_relative) {
        return false;
    }

    hash = memchr(s + i, '#', len - i);
    query_end = hash != NULL ? (size_t)(hash - s) : len;
    question = memchr(s + i, '?', query_end - i);
    path_end = question != NULL ? (size_t)(question - s) : query_end;

    if (path_end - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t authority_end = i + 2;
        while (authority_end < path_end && s[authority_end] != '/') {
            authority_end++;
        }
        if (!authority_valid(s + i + 2, authority_end - (i + 2))) {
            return false;
        }
        i = authority_end; /* path-abempty follows */
    } else if (!has_scheme) {
        /* path-noscheme: the first segment must not contain ":" */
        for (size_t j = i; j < path_end && s[j] != '/'; j++) {
            if (s[j] == ':') {
                return false;
            }
        }
    }
    if (!uri_chars_valid(s + i, path_end - i, ":@/")) {
        return false;
    }
    if (question != NULL && !uri_chars_valid(s + path_end + 1, query_end - path_end - 1, ":@/?")) {
        return false;
    }
    if (hash != NULL && !uri_chars_valid(s + query_end + 1, len - query_end - 1, ":@/?")) {
        return false;
    }
    return true;
}

bool tb_format_uri(const char *s, size_t len)
{
    return s != NULL && uri_valid(s, len, false);
}

bool tb_format_uri_reference(const char *s, size_t len)
{
    return s != NULL && uri_valid(s, len, true);
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 5321: email (Mailbox)                                                                  */
/* ------------------------------------------------------------------------------------------ */

#define EMAIL_MAX_LOCAL_PART 64u /* RFC 5321 section 4.5.3.1.1 */
#define EMAIL_MAX_MAILBOX 254u   /* RFC 5321 section 4.5.3.1.3: path of 256 incl. "<" ">" */

static bool is_atext(char c)
{
    return is_alpha(c) || is_digit(c) || in_set(c, "!#$%&'*+-/=?^_`{|}~");
}

/* Returns the length of the local part at s (followed by "@"), or 0 when it is invalid. */
static size_t email_local_part(const char *s, size_t len)
{
    size_t i = 0;
    if (len > 0 && s[0] == '"') {
        /* Quoted-string = DQUOTE *( qtextSMTP / quoted-pairSMTP ) DQUOTE */
        for (i = 1; i < len; i++) {
            char c = s[i];
            if (c == '"') {
                return i + 1;
            }
            if (c == '\\') {
                /* quoted-pairSMTP = "\" %d32-126 */
                if (++i == len || s[i] < 32 || s[i] > 126) {
                    return 0;
                }
            } else if (c < 32 || c > 126) {
                return 0; /* qtextSMTP = %d32-33 / %d35-91 / %d93-126 */
            }
        }
        return 0;
    }
    /* Dot-string = Atom *("." Atom) */
    size_t atom = 0;
    for (i = 0; i < len && s[i] != '@'; i++) {
        if (s[i] == '.') {
            if (atom == 0) {
                return 0;
            }
            atom = 0;
        } else if (is_atext(s[i])) {
            atom++;
        } else {
            return 0;
        }
    }
    return atom == 0 ? 0 : i;
}

bool tb_format_email(const char *s, size_t len)
{
    size_t local_len;
    const char *domain;
    size_t domain_len;

    if (s == NULL || len > EMAIL_MAX_MAILBOX) {
        return false;
    }
    local_len = email_local_part(s, len);
    if (local_len == 0 || local_len > EMAIL_MAX_LOCAL_PART || local_len >= len
        || s[local_len] != '@') {
        return false;
    }
    domain = s + local_len + 1;
    domain_len = len - local_len - 1;
    if (domain_len > 0 && domain[0] == '[') {
        /* address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
         * General-address-literal ) "]"; no general tag other than IPv6 is registered. */
        const char *lit = domain + 1;
        size_t lit_len;
        if (domain_len < 2 || domain[domain_len - 1] != ']') {
            return false;
        }
        lit_len = domain_len - 2;
        if (lit_len >= 5 && to_lower(lit[0]) == 'i' && to_lower(lit[1]) == 'p'
            && to_lower(lit[2]) == 'v' && lit[3] == '6' && lit[4] == ':') {
            return ipv6_valid(lit + 5, lit_len - 5, 2);
        }
        return ipv4_valid(lit, lit_len);
    }
    return tb_format_hostname(domain, domain_len);
}

/* ------------------------------------------------------------------------------------------ */
/* IDNA2008 code point properties (RFC 5892), Unicode 17.0                                    */
/* ------------------------------------------------------------------------------------------ */

/*
 * Each entry is (first_code_point << 10) | properties; an entry covers the code points up to
 * the next entry's first code point (the last one up to U+10FFFF). Property bits:
 *   bits 0-1  IDNA2008 derived property: 0 DISALLOWED/UNASSIGNED, 1 PVALID, 2 CONTEXTJ,
 *             3 CONTEXTO
 *   bit  2    General_Category Mark (Mn, Mc, Me)
 *   bit  3    Canonical_Combining_Class = Virama (9)
 *   bits 4-6  Joining_Type: 0 other (U, C), 1 L, 2 D, 3 R, 4 T
 *   bits 7-9  Script: 0 other, 1 Greek, 2 Hebrew, 3 Hiragana, 4 Katakana, 5 Han
 * Bits 2-9 are only filled in for PVALID / CONTEXTJ / CONTEXTO code points (they are the only
 * ones the contextual rules can meet). Generated from the Unicode 17.0 data of the Python
 * "idna" 3.13 package (idnadata.py: codepoint_classes, scripts, joining_types) plus
 * General_Category and Canonical_Combining_Class from ICU 78 (Unicode 17.0); regenerate by
 * run-length encoding those properties over U+0000..U+10FFFF in this layout.
 */
enum {
    IDNA_CLASS_MASK = 0x3,
    IDNA_DISALLOWED = 0,
    IDNA_PVALID = 1,
    IDNA_CONTEXTJ = 2,
    IDNA_CONTEXTO = 3,
    IDNA_MARK = 1 << 2,
    IDNA_VIRAMA = 1 << 3,
    IDNA_JT_SHIFT = 4,
    IDNA_JT_L = 1,
    IDNA_JT_D = 2,
    IDNA_JT_R = 3,
    IDNA_JT_T = 4,
    IDNA_SCRIPT_SHIFT = 7,
    IDNA_SCRIPT_GREEK = 1,
    IDNA_SCRIPT_HEBREW = 2,
    IDNA_SCRIPT_HIRAGANA = 3,
    IDNA_SCRIPT_KATAKANA = 4,
    IDNA_SCRIPT_HAN = 5,
    IDNA_PROPS_BITS = 10
};

static const uint32_t idna_props[] = {
    0x00000000, 0x0000b401, 0x0000b800, 0x0000c001, 0x0000e800, 0x00018401, 0x0001ec00, 0x0002dc03,
    0x0002e000, 0x00037c01, 0x0003dc00, 0x0003e001, 0x00040000, 0x00040401, 0x00040800, 0x00040c01,
    0x00041000, 0x00041401, 0x00041800, 0x00041c01, 0x00042000, 0x00042401, 0x00042800, 0x00042c01,
    0x00043000, 0x00043401, 0x00043800, 0x00043c01, 0x00044000, 0x00044401, 0x00044800, 0x00044c01,
    0x00045000, 0x00045401, 0x00045800, 0x00045c01, 0x00046000, 0x00046401, 0x00046800, 0x00046c01,
    0x00047000, 0x00047401, 0x00047800, 0x00047c01, 0x00048000, 0x00048401, 0x00048800, 0x00048c01,
    0x00049000, 0x00049401, 0x00049800, 0x00049c01, 0x0004a000, 0x0004a401, 0x0004a800, 0x0004ac01,
    0x0004b000, 0x0004b401, 0x0004b800, 0x0004bc01, 0x0004c000, 0x0004c401, 0x0004c800, 0x0004d401,
    0x0004d800, 0x0004dc01, 0x0004e400, 0x0004e801, 0x0004ec00, 0x0004f001, 0x0004f400, 0x0004f801,
    0x0004fc00, 0x00050801, 0x00050c00, 0x00051001, 0x00051400, 0x00051801, 0x00051c00, 0x00052001,
    0x00052400, 0x00052c01, 0x00053000, 0x00053401, 0x00053800, 0x00053c01, 0x00054000, 0x00054401,
    0x00054800, 0x00054c01, 0x00055000, 0x00055401, 0x00055800, 0x00055c01, 0x00056000, 0x00056401,
    0x00056800, 0x00056c01, 0x00057000, 0x00057401, 0x00057800, 0x00057c01, 0x00058000, 0x00058401,
    0x00058800, 0x00058c01, 0x00059000, 0x00059401, 0x00059800, 0x00059c01, 0x0005a000, 0x0005a401,
    0x0005a800, 0x0005ac01, 0x0005b000, 0x0005b401, 0x0005b800, 0x0005bc01, 0x0005c000, 0x0005c401,
    0x0005c800, 0x0005cc01, 0x0005d000, 0x0005d401, 0x0005d800, 0x0005dc01, 0x0005e000, 0x0005e801,
    0x0005ec00, 0x0005f001, 0x0005f400, 0x0005f801, 0x0005fc00, 0x00060001, 0x00060400, 0x00060c01,
    0x00061000, 0x00061401, 0x00061800, 0x00062001, 0x00062400, 0x00063001, 0x00063800, 0x00064801,
    0x00064c00, 0x00065401, 0x00065800, 0x00066401, 0x00067000, 0x00067801, 0x00067c00, 0x00068401,
    0x00068800, 0x00068c01, 0x00069000, 0x00069401, 0x00069800, 0x0006a001, 0x0006a400, 0x0006a801,
    0x0006b000, 0x0006b401, 0x0006b800, 0x0006c001, 0x0006c400, 0x0006d001, 0x0006d400, 0x0006d801,
    0x0006dc00, 0x0006e401, 0x0006f000, 0x0006f401, 0x00071000, 0x00073801, 0x00073c00, 0x00074001,
    0x00074400, 0x00074801, 0x00074c00, 0x00075001, 0x00075400, 0x00075801, 0x00075c00, 0x00076001,
    0x00076400, 0x00076801, 0x00076c00, 0x00077001, 0x00077800, 0x00077c01, 0x00078000, 0x00078401,
    0x00078800, 0x00078c01, 0x00079000, 0x00079401, 0x00079800, 0x00079c01, 0x0007a000, 0x0007a401,
    0x0007a800, 0x0007ac01, 0x0007b000, 0x0007b401, 0x0007b800, 0x0007bc01, 0x0007c400, 0x0007d401,
    0x0007d800, 0x0007e401, 0x0007e800, 0x0007ec01, 0x0007f000, 0x0007f401, 0x0007f800, 0x0007fc01,
    0x00080000, 0x00080401, 0x00080800, 0x00080c01, 0x00081000, 0x00081401, 0x00081800, 0x00081c01,
    0x00082000, 0x00082401, 0x00082800, 0x00082c01, 0x00083000, 0x00083401, 0x00083800, 0x00083c01,
    0x00084000, 0x00084401, 0x00084800, 0x00084c01, 0x00085000, 0x00085401, 0x00085800, 0x00085c01,
    0x00086000, 0x00086401, 0x00086800, 0x00086c01, 0x00087000, 0x00087401, 0x00087800, 0x00087c01,
    0x00088000, 0x00088401, 0x00088800, 0x00088c01, 0x00089000, 0x00089401, 0x00089800, 0x00089c01,
    0x0008a000, 0x0008a401, 0x0008a800, 0x0008ac01, 0x0008b000, 0x0008b401, 0x0008b800, 0x0008bc01,
    0x0008c000, 0x0008c401, 0x0008c800, 0x0008cc01, 0x0008e800, 0x0008f001, 0x0008f400, 0x0008fc01,
    0x00090400, 0x00090801, 0x00090c00, 0x00091c01, 0x00092000, 0x00092401, 0x00092800, 0x00092c01,
    0x00093000, 0x00093401, 0x00093800, 0x00093c01, 0x000ac000, 0x000ae401, 0x000b0800, 0x000b1801,
    0x000b4800, 0x000bb001, 0x000bb400, 0x000bb801, 0x000bbc00, 0x000c0045, 0x000d0000, 0x000d0845,
    0x000d0c00, 0x000d1845, 0x000d3c00, 0x000d4045, 0x000dc000, 0x000dc481, 0x000dc800, 0x000dcc81,
    0x000dd000, 0x000dd483, 0x000dd800, 0x000ddc81, 0x000de000, 0x000dec81, 0x000df800, 0x000e4081,
    0x000e4400, 0x000eb081, 0x000f3c00, 0x000f5c81, 0x000f6000, 0x000f6481, 0x000f6800, 0x000f6c81,
    0x000f7000, 0x000f7481, 0x000f7800, 0x000f7c81, 0x000f8000, 0x000f8481, 0x000f8800, 0x000f8c01,
    0x000f9000, 0x000f9401, 0x000f9800, 0x000f9c01, 0x000fa000, 0x000fa401, 0x000fa800, 0x000fac01,
    0x000fb000, 0x000fb401, 0x000fb800, 0x000fbc01, 0x000fc000, 0x000fcc81, 0x000fd000, 0x000fe081,
    0x000fe400, 0x000fec81, 0x000ff400, 0x0010c001, 0x00118000, 0x00118401, 0x00118800, 0x00118c01,
    0x00119000, 0x00119401, 0x00119800, 0x00119c01, 0x0011a000, 0x0011a401, 0x0011a800, 0x0011ac01,
    0x0011b000, 0x0011b401, 0x0011b800, 0x0011bc01, 0x0011c000, 0x0011c401, 0x0011c800, 0x0011cc01,
    0x0011d000, 0x0011d401, 0x0011d800, 0x0011dc01, 0x0011e000, 0x0011e401, 0x0011e800, 0x0011ec01,
    0x0011f000, 0x0011f401, 0x0011f800, 0x0011fc01, 0x00120000, 0x00120401, 0x00120800, 0x00120c45,
    0x00122000, 0x00122c01, 0x00123000, 0x00123401, 0x00123800, 0x00123c01, 0x00124000, 0x00124401,
    0x00124800, 0x00124c01, 0x00125000, 0x00125401, 0x00125800, 0x00125c01, 0x00126000, 0x00126401,
    0x00126800, 0x00126c01, 0x00127000, 0x00127401, 0x00127800, 0x00127c01, 0x00128000, 0x00128401,
    0x00128800, 0x00128c01, 0x00129000, 0x00129401, 0x00129800, 0x00129c01, 0x0012a000, 0x0012a401,
    0x0012a800, 0x0012ac01, 0x0012b000, 0x0012b401, 0x0012b800, 0x0012bc01, 0x0012c000, 0x0012c401,
    0x0012c800, 0x0012cc01, 0x0012d000, 0x0012d401, 0x0012d800, 0x0012dc01, 0x0012e000, 0x0012e401,
    0x0012e800, 0x0012ec01, 0x0012f000, 0x0012f401, 0x0012f800, 0x0012fc01, 0x00130000, 0x00130801,
    0x00130c00, 0x00131001, 0x00131400, 0x00131801, 0x00131c00, 0x00132001, 0x00132400, 0x00132801,
    0x00132c00, 0x00133001, 0x00133400, 0x00133801, 0x00134000, 0x00134401, 0x00134800, 0x00134c01,
    0x00135000, 0x00135401, 0x00135800, 0x00135c01, 0x00136000, 0x00136401, 0x00136800, 0x00136c01,
    0x00137000, 0x00137401, 0x00137800, 0x00137c01, 0x00138000, 0x00138401, 0x00138800, 0x00138c01,
    0x00139000, 0x00139401, 0x00139800, 0x00139c01, 0x0013a000, 0x0013a401, 0x0013a800, 0x0013ac01,
    0x0013b000, 0x0013b401, 0x0013b800, 0x0013bc01, 0x0013c000, 0x0013c401, 0x0013c800, 0x0013cc01,
    0x0013d000, 0x0013d401, 0x0013d800, 0x0013dc01, 0x0013e000, 0x0013e401, 0x0013e800, 0x0013ec01,
    0x0013f000, 0x0013f401, 0x0013f800, 0x0013fc01, 0x00140000, 0x00140401, 0x00140800, 0x00140c01,
    0x00141000, 0x00141401, 0x00141800, 0x00141c01, 0x00142000, 0x00142401, 0x00142800, 0x00142c01,
    0x00143000, 0x00143401, 0x00143800, 0x00143c01, 0x00144000, 0x00144401, 0x00144800, 0x00144c01,
    0x00145000, 0x00145401, 0x00145800, 0x00145c01, 0x00146000, 0x00146401, 0x00146800, 0x00146c01,
    0x00147000, 0x00147401, 0x00147800, 0x00147c01, 0x00148000, 0x00148401, 0x00148800, 0x00148c01,
    0x00149000, 0x00149401, 0x00149800, 0x00149c01, 0x0014a000, 0x0014a401, 0x0014a800, 0x0014ac01,
    0x0014b000, 0x0014b401, 0x0014b800, 0x0014bc01, 0x0014c000, 0x00156401, 0x00156800, 0x00158001,
    0x00161c00, 0x00162001, 0x00162400, 0x00164545, 0x0016f800, 0x0016fd45, 0x00170000, 0x00170545,
    0x00170c00, 0x00171145, 0x00171800, 0x00171d45, 0x00172000, 0x00174101, 0x0017ac00, 0x0017bd01,
    0x0017cd03, 0x0017d400, 0x00184045, 0x00186c00, 0x00188021, 0x00188401, 0x00188831, 0x00189821,
    0x00189c31, 0x0018a021, 0x0018a431, 0x0018a821, 0x0018bc31, 0x0018cc21, 0x00190000, 0x00190421,
    0x00192031, 0x00192421, 0x00192c45, 0x00198003, 0x0019a800, 0x0019b821, 0x0019c045, 0x0019c431,
    0x0019d001, 0x0019d400, 0x0019e421, 0x001a2031, 0x001a6821, 0x001b0031, 0x001b0421, 0x001b0c31,
    0x001b3021, 0x001b3431, 0x001b3821, 0x001b3c31, 0x001b4021, 0x001b4831, 0x001b5000, 0x001b5431,
    0x001b5845, 0x001b7400, 0x001b7c45, 0x001b9401, 0x001b9c45, 0x001ba400, 0x001ba845, 0x001bb831,
    0x001bc003, 0x001be821, 0x001bf401, 0x001bfc21, 0x001c0000, 0x001c4031, 0x001c4445, 0x001c4821,
    0x001c5431, 0x001c6821, 0x001c7831, 0x001c7c21, 0x001ca031, 0x001ca421, 0x001ca831, 0x001cac21,
    0x001cb031, 0x001cb421, 0x001cbc31, 0x001cc045, 0x001d2c00, 0x001d3431, 0x001d3821, 0x001d6431,
    0x001d7021, 0x001dac31, 0x001db421, 0x001dc431, 0x001dc821, 0x001dcc31, 0x001dd421, 0x001de031,
    0x001de821, 0x001e0001, 0x001e9845, 0x001ec401, 0x001ec800, 0x001f0001, 0x001f2821, 0x001fac45,
    0x001fd001, 0x001fd800, 0x001ff445, 0x001ff800, 0x00200001, 0x00205845, 0x00206801, 0x00206c45,
    0x00209001, 0x00209445, 0x0020a001, 0x0020a445, 0x0020b800, 0x00210031, 0x00210421, 0x00211831,
    0x00212021, 0x00212431, 0x00212821, 0x00215031, 0x00215421, 0x00215831, 0x00216445, 0x00217000,
    0x00218021, 0x00218401, 0x00218821, 0x00219801, 0x00219c31, 0x0021a021, 0x0021a431, 0x0021ac00,
    0x0021c031, 0x00220c01, 0x00221821, 0x00221c01, 0x00222000, 0x00222421, 0x00223831, 0x00223c21,
    0x00224000, 0x00225c45, 0x00228021, 0x0022a831, 0x0022b401, 0x0022b831, 0x0022bc21, 0x0022c431,
    0x0022cc21, 0x0022e431, 0x0022e821, 0x00232401, 0x00232845, 0x00238800, 0x00238c45, 0x00240c05,
    0x00241001, 0x0024e845, 0x0024ec05, 0x0024f045, 0x0024f401, 0x0024f805, 0x00250445, 0x00252405,
    0x0025344d, 0x00253805, 0x00254001, 0x00254445, 0x00256000, 0x00258001, 0x00258845, 0x00259000,
    0x00259801, 0x0025c000, 0x0025c401, 0x00260445, 0x00260805, 0x00261000, 0x00261401, 0x00263400,
    0x00263c01, 0x00264400, 0x00264c01, 0x0026a400, 0x0026a801, 0x0026c400, 0x0026c801, 0x0026cc00,
    0x0026d801, 0x0026e800, 0x0026f045, 0x0026f401, 0x0026f805, 0x00270445, 0x00271400, 0x00271c05,
    0x00272400, 0x00272c05, 0x0027344d, 0x00273801, 0x00273c00, 0x00275c05, 0x00276000, 0x00278001,
    0x00278845, 0x00279000, 0x00279801, 0x0027c800, 0x0027f001, 0x0027f400, 0x0027f845, 0x0027fc00,
    0x00280445, 0x00280c05, 0x00281000, 0x00281401, 0x00282c00, 0x00283c01, 0x00284400, 0x00284c01,
    0x0028a400, 0x0028a801, 0x0028c400, 0x0028c801, 0x0028cc00, 0x0028d401, 0x0028d800, 0x0028e001,
    0x0028e800, 0x0028f045, 0x0028f400, 0x0028f805, 0x00290445, 0x00290c00, 0x00291c45, 0x00292400,
    0x00292c45, 0x0029344d, 0x00293800, 0x00294445, 0x00294800, 0x00297001, 0x00297400, 0x00299801,
    0x0029c045, 0x0029c801, 0x0029d445, 0x0029d800, 0x002a0445, 0x002a0c05, 0x002a1000, 0x002a1401,
    0x002a3800, 0x002a3c01, 0x002a4800, 0x002a4c01, 0x002aa400, 0x002aa801, 0x002ac400, 0x002ac801,
    0x002ad000, 0x002ad401, 0x002ae800, 0x002af045, 0x002af401, 0x002af805, 0x002b0445, 0x002b1800,
    0x002b1c45, 0x002b2405, 0x002b2800, 0x002b2c05, 0x002b344d, 0x002b3800, 0x002b4001, 0x002b4400,
    0x002b8001, 0x002b8845, 0x002b9000, 0x002b9801, 0x002bc000, 0x002be401, 0x002be845, 0x002c0000,
    0x002c0445, 0x002c0805, 0x002c1000, 0x002c1401, 0x002c3400, 0x002c3c01, 0x002c4400, 0x002c4c01,
    0x002ca400, 0x002ca801, 0x002cc400, 0x002cc801, 0x002cd000, 0x002cd401, 0x002ce800, 0x002cf045,
    0x002cf401, 0x002cf805, 0x002cfc45, 0x002d0005, 0x002d0445, 0x002d1400, 0x002d1c05, 0x002d2400,
    0x002d2c05, 0x002d344d, 0x002d3800, 0x002d5445, 0x002d5c05, 0x002d6000, 0x002d7c01, 0x002d8845,
    0x002d9000, 0x002d9801, 0x002dc000, 0x002dc401, 0x002dc800, 0x002e0845, 0x002e0c01, 0x002e1000,
    0x002e1401, 0x002e2c00, 0x002e3801, 0x002e4400, 0x002e4801, 0x002e5800, 0x002e6401, 0x002e6c00,
    0x002e7001, 0x002e7400, 0x002e7801, 0x002e8000, 0x002e8c01, 0x002e9400, 0x002ea001, 0x002eac00,
    0x002eb801, 0x002ee800, 0x002ef805, 0x002f0045, 0x002f0405, 0x002f0c00, 0x002f1805, 0x002f2400,
    0x002f2805, 0x002f344d, 0x002f3800, 0x002f4001, 0x002f4400, 0x002f5c05, 0x002f6000, 0x002f9801,
    0x002fc000, 0x00300045, 0x00300405, 0x00301045, 0x00301401, 0x00303400, 0x00303801, 0x00304400,
    0x00304801, 0x0030a400, 0x0030a801, 0x0030e800, 0x0030f045, 0x0030f401, 0x0030f845, 0x00310405,
    0x00311400, 0x00311845, 0x00312400, 0x00312845, 0x0031344d, 0x00313800, 0x00315445, 0x00315c00,
    0x00316001, 0x00316c00, 0x00317001, 0x00317800, 0x00318001, 0x00318845, 0x00319000, 0x00319801,
    0x0031c000, 0x00320001, 0x00320445, 0x00320805, 0x00321000, 0x00321401, 0x00323400, 0x00323801,
    0x00324400, 0x00324801, 0x0032a400, 0x0032a801, 0x0032d000, 0x0032d401, 0x0032e800, 0x0032f045,
    0x0032f401, 0x0032f805, 0x0032fc45, 0x00330005, 0x00331400, 0x00331845, 0x00331c05, 0x00332400,
    0x00332805, 0x00333045, 0x0033344d, 0x00333800, 0x00335405, 0x00335c00, 0x00337001, 0x00337c00,
    0x00338001, 0x00338845, 0x00339000, 0x00339801, 0x0033c000, 0x0033c401, 0x0033cc05, 0x0033d000,
    0x00340045, 0x00340805, 0x00341001, 0x00343400, 0x00343801, 0x00344400, 0x00344801, 0x0034ec4d,
    0x0034f401, 0x0034f805, 0x00350445, 0x00351400, 0x00351805, 0x00352400, 0x00352805, 0x0035344d,
    0x00353801, 0x00353c00, 0x00355001, 0x00355c05, 0x00356000, 0x00357c01, 0x00358845, 0x00359000,
    0x00359801, 0x0035c000, 0x0035e801, 0x00360000, 0x00360445, 0x00360805, 0x00361000, 0x00361401,
    0x00365c00, 0x00366801, 0x0036c800, 0x0036cc01, 0x0036f000, 0x0036f401, 0x0036f800, 0x00370001,
    0x00371c00, 0x0037284d, 0x00372c00, 0x00373c05, 0x00374845, 0x00375400, 0x00375845, 0x00375c00,
    0x00376005, 0x00378000, 0x00379801, 0x0037c000, 0x0037c805, 0x0037d000, 0x00380401, 0x0038c445,
    0x0038c801, 0x0038cc00, 0x0038d045, 0x0038e84d, 0x0038ec00, 0x00390001, 0x00391c45, 0x00393c00,
    0x00394001, 0x00396800, 0x003a0401, 0x003a0c00, 0x003a1001, 0x003a1400, 0x003a1801, 0x003a2c00,
    0x003a3001, 0x003a9000, 0x003a9401, 0x003a9800, 0x003a9c01, 0x003ac445, 0x003ac801, 0x003acc00,
    0x003ad045, 0x003ae84d, 0x003aec45, 0x003af401, 0x003af800, 0x003b0001, 0x003b1400, 0x003b1801,
    0x003b1c00, 0x003b2045, 0x003b3c00, 0x003b4001, 0x003b6800, 0x003b7801, 0x003b8000, 0x003c0001,
    0x003c0400, 0x003c2c01, 0x003c3000, 0x003c6045, 0x003c6800, 0x003c8001, 0x003ca800, 0x003cd445,
    0x003cd800, 0x003cdc45, 0x003ce000, 0x003ce445, 0x003ce800, 0x003cf805, 0x003d0001, 0x003d0c00,
    0x003d1001, 0x003d2000, 0x003d2401, 0x003d3400, 0x003d3801, 0x003d4800, 0x003d4c01, 0x003d5c00,
    0x003d6001, 0x003d7000, 0x003d7401, 0x003da400, 0x003da801, 0x003db400, 0x003dc445, 0x003dcc00,
    0x003dd045, 0x003dd400, 0x003de845, 0x003dfc05, 0x003e0045, 0x003e0400, 0x003e0845, 0x003e104d,
    0x003e1400, 0x003e1845, 0x003e2001, 0x003e3445, 0x003e4c00, 0x003e5045, 0x003e6000, 0x003e6445,
    0x003e7400, 0x003e7845, 0x003e8800, 0x003e8c45, 0x003e9c00, 0x003ea045, 0x003eb000, 0x003eb445,
    0x003ee400, 0x003ee845, 0x003ef400, 0x003f1845, 0x003f1c00, 0x00400001, 0x0040ac05, 0x0040b445,
    0x0040c405, 0x0040c845, 0x0040e005, 0x0040e44d, 0x0040ec05, 0x0040f445, 0x0040fc01, 0x00412800,
    0x00414001, 0x00415805, 0x00416045, 0x00416801, 0x00417845, 0x00418401, 0x00418805, 0x00419401,
    0x00419c05, 0x0041b801, 0x0041c445, 0x0041d401, 0x00420845, 0x00420c05, 0x00421445, 0x00421c05,
    0x00423445, 0x00423801, 0x00423c05, 0x00424001, 0x00426805, 0x00427445, 0x00427800, 0x00434001,
    0x0043ec00, 0x0043f401, 0x00440000, 0x00480001, 0x00492400, 0x00492801, 0x00493800, 0x00494001,
    0x00495c00, 0x00496001, 0x00496400, 0x00496801, 0x00497800, 0x00498001, 0x004a2400, 0x004a2801,
    0x004a3800, 0x004a4001, 0x004ac400, 0x004ac801, 0x004ad800, 0x004ae001, 0x004afc00, 0x004b0001,
    0x004b0400, 0x004b0801, 0x004b1800, 0x004b2001, 0x004b5c00, 0x004b6001, 0x004c4400, 0x004c4801,
    0x004c5800, 0x004c6001, 0x004d6c00, 0x004d7445, 0x004d8000, 0x004e0001, 0x004e4000, 0x004e8001,
    0x004fd800, 0x00500401, 0x0059b400, 0x0059bc01, 0x005a0000, 0x005a0401, 0x005a6c00, 0x005a8001,
    0x005bac00, 0x005bc401, 0x005be400, 0x005c0001, 0x005c4845, 0x005c504d, 0x005c540d, 0x005c5800,
    0x005c7c01, 0x005cc845, 0x005cd00d, 0x005cd400, 0x005d0001, 0x005d4845, 0x005d5000, 0x005d8001,
    0x005db400, 0x005db801, 0x005dc400, 0x005dc845, 0x005dd000, 0x005e0001, 0x005ed000, 0x005ed805,
    0x005edc45, 0x005ef805, 0x005f1845, 0x005f1c05, 0x005f2445, 0x005f484d, 0x005f4c45, 0x005f5000,
    0x005f5c01, 0x005f6000, 0x005f7001, 0x005f7445, 0x005f7800, 0x005f8001, 0x005fa800, 0x00604001,
    0x00606800, 0x00608021, 0x0061e400, 0x00620001, 0x00621445, 0x00621c21, 0x0062a445, 0x0062a821,
    0x0062ac00, 0x0062c001, 0x0063d800, 0x00640001, 0x00647c00, 0x00648045, 0x00648c05, 0x00649c45,
    0x0064a405, 0x0064b000, 0x0064c005, 0x0064c845, 0x0064cc05, 0x0064e445, 0x0064f000, 0x00651801,
    0x0065b800, 0x0065c001, 0x0065d400, 0x00660001, 0x0066b000, 0x0066c001, 0x00672800, 0x00674001,
    0x00676800, 0x00680001, 0x00685c45, 0x00686405, 0x00686c45, 0x00687000, 0x00688001, 0x00695405,
    0x00695845, 0x00695c05, 0x00696045, 0x00697c00, 0x0069804d, 0x00698405, 0x00698845, 0x00698c05,
    0x00699445, 0x0069b405, 0x0069cc45, 0x0069f400, 0x0069fc45, 0x006a0001, 0x006a2800, 0x006a4001,
    0x006a6800, 0x006a9c01, 0x006aa000, 0x006ac045, 0x006af800, 0x006afc45, 0x006b7800, 0x006b8045,
    0x006bb000, 0x006c0045, 0x006c1005, 0x006c1401, 0x006cd045, 0x006cd405, 0x006cd845, 0x006cec05,
    0x006cf045, 0x006cf405, 0x006d0845, 0x006d0c05, 0x006d100d, 0x006d1401, 0x006d3400, 0x006d4001,
    0x006d6800, 0x006dac45, 0x006dd000, 0x006e0045, 0x006e0805, 0x006e0c01, 0x006e8405, 0x006e8845,
    0x006e9805, 0x006ea045, 0x006ea80d, 0x006eac4d, 0x006eb045, 0x006eb801, 0x006f9845, 0x006f9c05,
    0x006fa045, 0x006fa805, 0x006fb445, 0x006fb805, 0x006fbc45, 0x006fc80d, 0x006fd000, 0x00700001,
    0x00709005, 0x0070b045, 0x0070d005, 0x0070d845, 0x0070e000, 0x00710001, 0x00712800, 0x00713401,
    0x0071f800, 0x00722801, 0x00722c00, 0x00734045, 0x00734c00, 0x00735045, 0x00738405, 0x00738845,
    0x0073a401, 0x0073b445, 0x0073b801, 0x0073d045, 0x0073d401, 0x0073dc05, 0x0073e045, 0x0073e801,
    0x0073ec00, 0x00740001, 0x00749881, 0x0074ac01, 0x0074b000, 0x0074bc01, 0x0074c000, 0x0074ec01,
    0x0074f000, 0x00753801, 0x00753c00, 0x0075ac01, 0x0075e000, 0x0075e401, 0x00766c00, 0x00770045,
    0x00780000, 0x00780401, 0x00780800, 0x00780c01, 0x00781000, 0x00781401, 0x00781800, 0x00781c01,
    0x00782000, 0x00782401, 0x00782800, 0x00782c01, 0x00783000, 0x00783401, 0x00783800, 0x00783c01,
    0x00784000, 0x00784401, 0x00784800, 0x00784c01, 0x00785000, 0x00785401, 0x00785800, 0x00785c01,
    0x00786000, 0x00786401, 0x00786800, 0x00786c01, 0x00787000, 0x00787401, 0x00787800, 0x00787c01,
    0x00788000, 0x00788401, 0x00788800, 0x00788c01, 0x00789000, 0x00789401, 0x00789800, 0x00789c01,
    0x0078a000, 0x0078a401, 0x0078a800, 0x0078ac01, 0x0078b000, 0x0078b401, 0x0078b800, 0x0078bc01,
    0x0078c000, 0x0078c401, 0x0078c800, 0x0078cc01, 0x0078d000, 0x0078d401, 0x0078d800, 0x0078dc01,
    0x0078e000, 0x0078e401, 0x0078e800, 0x0078ec01, 0x0078f000, 0x0078f401, 0x0078f800, 0x0078fc01,
    0x00790000, 0x00790401, 0x00790800, 0x00790c01, 0x00791000, 0x00791401, 0x00791800, 0x00791c01,
    0x00792000, 0x00792401, 0x00792800, 0x00792c01, 0x00793000, 0x00793401, 0x00793800, 0x00793c01,
    0x00794000, 0x00794401, 0x00794800, 0x00794c01, 0x00795000, 0x00795401, 0x00795800, 0x00795c01,
    0x00796000, 0x00796401, 0x00796800, 0x00796c01, 0x00797000, 0x00797401, 0x00797800, 0x00797c01,
    0x00798000, 0x00798401, 0x00798800, 0x00798c01, 0x00799000, 0x00799401, 0x00799800, 0x00799c01,
    0x0079a000, 0x0079a401, 0x0079a800, 0x0079ac01, 0x0079b000, 0x0079b401, 0x0079b800, 0x0079bc01,
    0x0079c000, 0x0079c401, 0x0079c800, 0x0079cc01, 0x0079d000, 0x0079d401, 0x0079d800, 0x0079dc01,
    0x0079e000, 0x0079e401, 0x0079e800, 0x0079ec01, 0x0079f000, 0x0079f401, 0x0079f800, 0x0079fc01,
    0x007a0000, 0x007a0401, 0x007a0800, 0x007a0c01, 0x007a1000, 0x007a1401, 0x007a1800, 0x007a1c01,
    0x007a2000, 0x007a2401, 0x007a2800, 0x007a2c01, 0x007a3000, 0x007a3401, 0x007a3800, 0x007a3c01,
    0x007a4000, 0x007a4401, 0x007a4800, 0x007a4c01, 0x007a5000, 0x007a5401, 0x007a6800, 0x007a7001,
    0x007a7800, 0x007a7c01, 0x007a8000, 0x007a8401, 0x007a8800, 0x007a8c01, 0x007a9000, 0x007a9401,
    0x007a9800, 0x007a9c01, 0x007aa000, 0x007aa401, 0x007aa800, 0x007aac01, 0x007ab000, 0x007ab401,
    0x007ab800, 0x007abc01, 0x007ac000, 0x007ac401, 0x007ac800, 0x007acc01, 0x007ad000, 0x007ad401,
    0x007ad800, 0x007adc01, 0x007ae000, 0x007ae401, 0x007ae800, 0x007aec01, 0x007af000, 0x007af401,
    0x007af800, 0x007afc01, 0x007b0000, 0x007b0401, 0x007b0800, 0x007b0c01, 0x007b1000, 0x007b1401,
    0x007b1800, 0x007b1c01, 0x007b2000, 0x007b2401, 0x007b2800, 0x007b2c01, 0x007b3000, 0x007b3401,
    0x007b3800, 0x007b3c01, 0x007b4000, 0x007b4401, 0x007b4800, 0x007b4c01, 0x007b5000, 0x007b5401,
    0x007b5800, 0x007b5c01, 0x007b6000, 0x007b6401, 0x007b6800, 0x007b6c01, 0x007b7000, 0x007b7401,
    0x007b7800, 0x007b7c01, 0x007b8000, 0x007b8401, 0x007b8800, 0x007b8c01, 0x007b9000, 0x007b9401,
    0x007b9800, 0x007b9c01, 0x007ba000, 0x007ba401, 0x007ba800, 0x007bac01, 0x007bb000, 0x007bb401,
    0x007bb800, 0x007bbc01, 0x007bc000, 0x007bc401, 0x007bc800, 0x007bcc01, 0x007bd000, 0x007bd401,
    0x007bd800, 0x007bdc01, 0x007be000, 0x007be401, 0x007be800, 0x007bec01, 0x007bf000, 0x007bf401,
    0x007bf800, 0x007bfc01, 0x007c0081, 0x007c2000, 0x007c4081, 0x007c5800, 0x007c8081, 0x007ca000,
    0x007cc081, 0x007ce000, 0x007d0081, 0x007d1800, 0x007d4081, 0x007d6000, 0x007d8081, 0x007da000,
    0x007dc081, 0x007dc400, 0x007dc881, 0x007dcc00, 0x007dd081, 0x007dd400, 0x007dd881, 0x007ddc00,
    0x007de081, 0x007de400, 0x007de881, 0x007dec00, 0x007df081, 0x007df400, 0x007ec081, 0x007ec800,
    0x007ed881, 0x007edc00, 0x007f1881, 0x007f1c00, 0x007f4081, 0x007f4c00, 0x007f5881, 0x007f6000,
    0x007f8081, 0x007f8c00, 0x007f9081, 0x007fa000, 0x007fd881, 0x007fdc00, 0x00803002, 0x00803800,
    0x00853801, 0x00853c00, 0x00861001, 0x00861400, 0x00b0c001, 0x00b18000, 0x00b18401, 0x00b18800,
    0x00b19401, 0x00b19c00, 0x00b1a001, 0x00b1a400, 0x00b1a801, 0x00b1ac00, 0x00b1b001, 0x00b1b400,
    0x00b1c401, 0x00b1c800, 0x00b1cc01, 0x00b1d400, 0x00b1d801, 0x00b1f000, 0x00b20401, 0x00b20800,
    0x00b20c01, 0x00b21000, 0x00b21401, 0x00b21800, 0x00b21c01, 0x00b22000, 0x00b22401, 0x00b22800,
    0x00b22c01, 0x00b23000, 0x00b23401, 0x00b23800, 0x00b23c01, 0x00b24000, 0x00b24401, 0x00b24800,
    0x00b24c01, 0x00b25000, 0x00b25401, 0x00b25800, 0x00b25c01, 0x00b26000, 0x00b26401, 0x00b26800,
    0x00b26c01, 0x00b27000, 0x00b27401, 0x00b27800, 0x00b27c01, 0x00b28000, 0x00b28401, 0x00b28800,
    0x00b28c01, 0x00b29000, 0x00b29401, 0x00b29800, 0x00b29c01, 0x00b2a000, 0x00b2a401, 0x00b2a800,
    0x00b2ac01, 0x00b2b000, 0x00b2b401, 0x00b2b800, 0x00b2bc01, 0x00b2c000, 0x00b2c401, 0x00b2c800,
    0x00b2cc01, 0x00b2d000, 0x00b2d401, 0x00b2d800, 0x00b2dc01, 0x00b2e000, 0x00b2e401, 0x00b2e800,
    0x00b2ec01, 0x00b2f000, 0x00b2f401, 0x00b2f800, 0x00b2fc01, 0x00b30000, 0x00b30401, 0x00b30800,
    0x00b30c01, 0x00b31000, 0x00b31401, 0x00b31800, 0x00b31c01, 0x00b32000, 0x00b32401, 0x00b32800,
    0x00b32c01, 0x00b33000, 0x00b33401, 0x00b33800, 0x00b33c01, 0x00b34000, 0x00b34401, 0x00b34800,
    0x00b34c01, 0x00b35000, 0x00b35401, 0x00b35800, 0x00b35c01, 0x00b36000, 0x00b36401, 0x00b36800,
    0x00b36c01, 0x00b37000, 0x00b37401, 0x00b37800, 0x00b37c01, 0x00b38000, 0x00b38401, 0x00b38800,
    0x00b38c01, 0x00b39400, 0x00b3b001, 0x00b3b400, 0x00b3b801, 0x00b3bc45, 0x00b3c800, 0x00b3cc01,
    0x00b3d000, 0x00b40001, 0x00b49800, 0x00b49c01, 0x00b4a000, 0x00b4b401, 0x00b4b800, 0x00b4c001,
    0x00b5a000, 0x00b5fc4d, 0x00b60001, 0x00b65c00, 0x00b68001, 0x00b69c00, 0x00b6a001, 0x00b6bc00,
    0x00b6c001, 0x00b6dc00, 0x00b6e001, 0x00b6fc00, 0x00b70001, 0x00b71c00, 0x00b72001, 0x00b73c00,
    0x00b74001, 0x00b75c00, 0x00b76001, 0x00b77c00, 0x00b78045, 0x00b80000, 0x00b8bc01, 0x00b8c000,
    0x00c01681, 0x00c01801, 0x00c01e81, 0x00c02000, 0x00c0a845, 0x00c0b800, 0x00c0f001, 0x00c0f400,
    0x00c10581, 0x00c25c00, 0x00c26445, 0x00c26c00, 0x00c27581, 0x00c27c00, 0x00c28601, 0x00c3ec03,
    0x00c3f001, 0x00c3f601, 0x00c3fc00, 0x00c41401, 0x00c4c000, 0x00c68001, 0x00c70000, 0x00c7c201,
    0x00c80000, 0x00d00281, 0x01370000, 0x01380281, 0x02800001, 0x02923400, 0x02934001, 0x0293f800,
    0x02940001, 0x02983400, 0x02984001, 0x0298b000, 0x02990401, 0x02990800, 0x02990c01, 0x02991000,
    0x02991401, 0x02991800, 0x02991c01, 0x02992000, 0x02992401, 0x02992800, 0x02992c01, 0x02993000,
    0x02993401, 0x02993800, 0x02993c01, 0x02994000, 0x02994401, 0x02994800, 0x02994c01, 0x02995000,
    0x02995401, 0x02995800, 0x02995c01, 0x02996000, 0x02996401, 0x02996800, 0x02996c01, 0x02997000,
    0x02997401, 0x02997800, 0x02997c01, 0x02998000, 0x02998401, 0x02998800, 0x02998c01, 0x02999000,
    0x02999401, 0x02999800, 0x02999c01, 0x0299a000, 0x0299a401, 0x0299a800, 0x0299ac01, 0x0299b000,
    0x0299b401, 0x0299bc45, 0x0299c000, 0x0299d045, 0x0299f800, 0x0299fc01, 0x029a0000, 0x029a0401,
    0x029a0800, 0x029a0c01, 0x029a1000, 0x029a1401, 0x029a1800, 0x029a1c01, 0x029a2000, 0x029a2401,
    0x029a2800, 0x029a2c01, 0x029a3000, 0x029a3401, 0x029a3800, 0x029a3c01, 0x029a4000, 0x029a4401,
    0x029a4800, 0x029a4c01, 0x029a5000, 0x029a5401, 0x029a5800, 0x029a5c01, 0x029a6000, 0x029a6401,
    0x029a6800, 0x029a6c01, 0x029a7000, 0x029a7845, 0x029a8001, 0x029b9800, 0x029bc045, 0x029bc800,
    0x029c5c01, 0x029c8000, 0x029c8c01, 0x029c9000, 0x029c9401, 0x029c9800, 0x029c9c01, 0x029ca000,
    0x029ca401, 0x029ca800, 0x029cac01, 0x029cb000, 0x029cb401, 0x029cb800, 0x029cbc01, 0x029cc800,
    0x029ccc01, 0x029cd000, 0x029cd401, 0x029cd800, 0x029cdc01, 0x029ce000, 0x029ce401, 0x029ce800,
    0x029cec01, 0x029cf000, 0x029cf401, 0x029cf800, 0x029cfc01, 0x029d0000, 0x029d0401, 0x029d0800,
    0x029d0c01, 0x029d1000, 0x029d1401, 0x029d1800, 0x029d1c01, 0x029d2000, 0x029d2401, 0x029d2800,
    0x029d2c01, 0x029d3000, 0x029d3401, 0x029d3800, 0x029d3c01, 0x029d4000, 0x029d4401, 0x029d4800,
    0x029d4c01, 0x029d5000, 0x029d5401, 0x029d5800, 0x029d5c01, 0x029d6000, 0x029d6401, 0x029d6800,
    0x029d6c01, 0x029d7000, 0x029d7401, 0x029d7800, 0x029d7c01, 0x029d8000, 0x029d8401, 0x029d8800,
    0x029d8c01, 0x029d9000, 0x029d9401, 0x029d9800, 0x029d9c01, 0x029da000, 0x029da401, 0x029da800,
    0x029dac01, 0x029db000, 0x029db401, 0x029db800, 0x029dbc01, 0x029dc000, 0x029dc401, 0x029de400,
    0x029de801, 0x029dec00, 0x029df001, 0x029df400, 0x029dfc01, 0x029e0000, 0x029e0401, 0x029e0800,
    0x029e0c01, 0x029e1000, 0x029e1401, 0x029e1800, 0x029e1c01, 0x029e2400, 0x029e3001, 0x029e3400,
    0x029e3801, 0x029e4000, 0x029e4401, 0x029e4800, 0x029e4c01, 0x029e5800, 0x029e5c01, 0x029e6000,
    0x029e6401, 0x029e6800, 0x029e6c01, 0x029e7000, 0x029e7401, 0x029e7800, 0x029e7c01, 0x029e8000,
    0x029e8401, 0x029e8800, 0x029e8c01, 0x029e9000, 0x029e9401, 0x029e9800, 0x029e9c01, 0x029ea000,
    0x029ea401, 0x029ea800, 0x029ebc01, 0x029ec000, 0x029ed401, 0x029ed800, 0x029edc01, 0x029ee000,
    0x029ee401, 0x029ee800, 0x029eec01, 0x029ef000, 0x029ef401, 0x029ef800, 0x029efc01, 0x029f0000,
    0x029f0401, 0x029f0800, 0x029f0c01, 0x029f1000, 0x029f2001, 0x029f2400, 0x029f2801, 0x029f2c00,
    0x029f3401, 0x029f3800, 0x029f3c01, 0x029f4000, 0x029f4401, 0x029f4800, 0x029f4c01, 0x029f5000,
    0x029f5401, 0x029f5800, 0x029f5c01, 0x029f6000, 0x029f6401, 0x029f6800, 0x029f6c01, 0x029f7000,
    0x029fd801, 0x029fe000, 0x029fe801, 0x02a00845, 0x02a00c01, 0x02a0184d, 0x02a01c01, 0x02a02c45,
    0x02a03001, 0x02a08c05, 0x02a09445, 0x02a09c05, 0x02a0a000, 0x02a0b04d, 0x02a0b400, 0x02a10021,
    0x02a1c811, 0x02a1cc01, 0x02a1d000, 0x02a20005, 0x02a20801, 0x02a2d005, 0x02a3104d, 0x02a31445,
    0x02a31800, 0x02a34001, 0x02a36800, 0x02a38045, 0x02a3c801, 0x02a3e000, 0x02a3ec01, 0x02a3f000,
    0x02a3f401, 0x02a3fc45, 0x02a40001, 0x02a49845, 0x02a4b800, 0x02a4c001, 0x02a51c45, 0x02a54805,
    0x02a54c0d, 0x02a55000, 0x02a60045, 0x02a60c05, 0x02a61001, 0x02a6cc45, 0x02a6d005, 0x02a6d845,
    0x02a6e805, 0x02a6f045, 0x02a6f805, 0x02a7000d, 0x02a70400, 0x02a73c01, 0x02a76800, 0x02a78001,
    0x02a79445, 0x02a79801, 0x02a7fc00, 0x02a80001, 0x02a8a445, 0x02a8bc05, 0x02a8c445, 0x02a8cc05,
    0x02a8d445, 0x02a8dc00, 0x02a90001, 0x02a90c45, 0x02a91001, 0x02a93045, 0x02a93405, 0x02a93800,
    0x02a94001, 0x02a96800, 0x02a98001, 0x02a9dc00, 0x02a9e801, 0x02a9ec05, 0x02a9f045, 0x02a9f405,
    0x02a9f801, 0x02aac045, 0x02aac401, 0x02aac845, 0x02aad401, 0x02aadc45, 0x02aae401, 0x02aaf845,
    0x02ab0001, 0x02ab0445, 0x02ab0801, 0x02ab0c00, 0x02ab6c01, 0x02ab7800, 0x02ab8001, 0x02abac05,
    0x02abb045, 0x02abb805, 0x02abc000, 0x02abc801, 0x02abd405, 0x02abd84d, 0x02abdc00, 0x02ac0401,
    0x02ac1c00, 0x02ac2401, 0x02ac3c00, 0x02ac4401, 0x02ac5c00, 0x02ac8001, 0x02ac9c00, 0x02aca001,
    0x02acbc00, 0x02acc001, 0x02ad6c00, 0x02ad8001, 0x02ad9481, 0x02ad9801, 0x02ada400, 0x02af0001,
    0x02af8c05, 0x02af9445, 0x02af9805, 0x02afa045, 0x02afa405, 0x02afac00, 0x02afb005, 0x02afb44d,
    0x02afb800, 0x02afc001, 0x02afe800, 0x02b00001, 0x035e9000, 0x03e83a81, 0x03e84000, 0x03e84681,
    0x03e84800, 0x03e84e81, 0x03e85400, 0x03e87e81, 0x03e88000, 0x03e88681, 0x03e88800, 0x03e88e81,
    0x03e89400, 0x03e89e81, 0x03e8a800, 0x03ec7945, 0x03ec7c00, 0x03f88045, 0x03f8c000, 0x03f9cc01,
    0x03f9d000, 0x04000001, 0x04003000, 0x04003401, 0x04009c00, 0x0400a001, 0x0400ec00, 0x0400f001,
    0x0400f800, 0x0400fc01, 0x04013800, 0x04014001, 0x04017800, 0x04020001, 0x0403ec00, 0x0407f445,
    0x0407f800, 0x040a0001, 0x040a7400, 0x040a8001, 0x040b4400, 0x040b8045, 0x040b8400, 0x040c0001,
    0x040c8000, 0x040cb401, 0x040d0400, 0x040d0801, 0x040d2800, 0x040d4001, 0x040dd845, 0x040dec00,
    0x040e0001, 0x040e7800, 0x040e8001, 0x040f1000, 0x040f2001, 0x040f4000, 0x0410a001, 0x04127800,
    0x04128001, 0x0412a800, 0x04136001, 0x0413f000, 0x04140001, 0x0414a000, 0x0414c001, 0x04159000,
    0x04165c01, 0x04168800, 0x04168c01, 0x0416c800, 0x0416cc01, 0x0416e800, 0x0416ec01, 0x0416f400,
    0x04170001, 0x0417d000, 0x04180001, 0x041cdc00, 0x041d0001, 0x041d5800, 0x041d8001, 0x041da000,
    0x041e0001, 0x041e0400, 0x04200001, 0x04201800, 0x04202001, 0x04202400, 0x04202801, 0x0420d800,
    0x0420dc01, 0x0420e400, 0x0420f001, 0x0420f400, 0x0420fc01, 0x04215800, 0x04218001, 0x0421dc00,
    0x04220001, 0x04227c00, 0x04238001, 0x0423cc00, 0x0423d001, 0x0423d800, 0x04240001, 0x04245800,
    0x04248001, 0x0424e800, 0x04250001, 0x04256800, 0x04260001, 0x0426e000, 0x0426f801, 0x04270000,
    0x04280001, 0x04280445, 0x04281000, 0x04281445, 0x04281c00, 0x04283045, 0x04284001, 0x04285000,
    0x04285401, 0x04286000, 0x04286401, 0x0428d800, 0x0428e045, 0x0428ec00, 0x0428fc4d, 0x04290000,
    0x04298001, 0x0429f400, 0x042a0001, 0x042a7400, 0x042b0021, 0x042b1431, 0x042b1801, 0x042b1c31,
    0x042b2000, 0x042b2431, 0x042b2c01, 0x042b3411, 0x042b3831, 0x042b4c21, 0x042b5c11, 0x042b6021,
    0x042b7431, 0x042b7821, 0x042b8431, 0x042b8801, 0x042b9031, 0x042b9445, 0x042b9c00, 0x042c0001,
    0x042cd800, 0x042d0001, 0x042d5800, 0x042d8001, 0x042dcc00, 0x042e0021, 0x042e0431, 0x042e0821,
    0x042e0c31, 0x042e1821, 0x042e2431, 0x042e2821, 0x042e3031, 0x042e3421, 0x042e3831, 0x042e4021,
    0x042e4431, 0x042e4800, 0x04300001, 0x04312400, 0x04330001, 0x0433cc00, 0x04340011, 0x04340421,
    0x04348831, 0x04348c21, 0x04349045, 0x0434a000, 0x0434c001, 0x0434e800, 0x04350001, 0x04354000,
    0x0435a445, 0x0435b800, 0x0435bc01, 0x04361800, 0x043a0001, 0x043aa800, 0x043aac45, 0x043ab400,
    0x043ac001, 0x043ac800, 0x043b0831, 0x043b0c21, 0x043b1401, 0x043b1821, 0x043b2000, 0x043be845,
    0x043c0001, 0x043c7400, 0x043c9c01, 0x043ca000, 0x043cc021, 0x043ccc31, 0x043cd021, 0x043d1401,
    0x043d1845, 0x043d4400, 0x043dc021, 0x043dd031, 0x043dd821, 0x043e0845, 0x043e1800, 0x043ec021,
    0x043ec401, 0x043ec821, 0x043ed031, 0x043edc01, 0x043ee021, 0x043ee431, 0x043eec21, 0x043ef431,
    0x043ef821, 0x043f0001, 0x043f0421, 0x043f0831, 0x043f1021, 0x043f1400, 0x043f8001, 0x043fdc00,
    0x04400005, 0x04400445, 0x04400805, 0x04400c01, 0x0440e045, 0x0441184d, 0x04411c00, 0x04419801,
    0x0441c04d, 0x0441c401, 0x0441cc45, 0x0441d401, 0x0441d800, 0x0441fc4d, 0x04420045, 0x04420805,
    0x04420c01, 0x0442c005, 0x0442cc45, 0x0442dc05, 0x0442e44d, 0x0442e845, 0x0442ec00, 0x04430845,
    0x04430c00, 0x04434001, 0x0443a400, 0x0443c001, 0x0443e800, 0x04440045, 0x04440c01, 0x04449c45,
    0x0444b005, 0x0444b445, 0x0444cc4d, 0x0444d400, 0x0444d801, 0x04450000, 0x04451001, 0x04451405,
    0x04451c01, 0x04452000, 0x04454001, 0x0445cc45, 0x0445d000, 0x0445d801, 0x0445dc00, 0x04460045,
    0x04460805, 0x04460c01, 0x0446cc05, 0x0446d845, 0x0446fc05, 0x0447000d, 0x04470401, 0x04471400,
    0x04472445, 0x04473400, 0x04473805, 0x04473c45, 0x04474001, 0x04476c00, 0x04477001, 0x04477400,
    0x04480001, 0x04484800, 0x04484c01, 0x0448b005, 0x0448bc45, 0x0448c805, 0x0448d045, 0x0448d40d,
    0x0448d845, 0x0448e000, 0x0448f845, 0x0448fc01, 0x04490445, 0x04490800, 0x044a0001, 0x044a1c00,
    0x044a2001, 0x044a2400, 0x044a2801, 0x044a3800, 0x044a3c01, 0x044a7800, 0x044a7c01, 0x044aa400,
    0x044ac001, 0x044b7c45, 0x044b8005, 0x044b8c45, 0x044ba84d, 0x044bac00, 0x044bc001, 0x044be800,
    0x044c0045, 0x044c0805, 0x044c1000, 0x044c1401, 0x044c3400, 0x044c3c01, 0x044c4400, 0x044c4c01,
    0x044ca400, 0x044ca801, 0x044cc400, 0x044cc801, 0x044cd000, 0x044cd401, 0x044ce800, 0x044cec45,
    0x044cf401, 0x044cf805, 0x044d0045, 0x044d0405, 0x044d1400, 0x044d1c05, 0x044d2400, 0x044d2c05,
    0x044d340d, 0x044d3800, 0x044d4001, 0x044d4400, 0x044d5c05, 0x044d6000, 0x044d7401, 0x044d8805,
    0x044d9000, 0x044d9845, 0x044db400, 0x044dc045, 0x044dd400, 0x044e0001, 0x044e2800, 0x044e2c01,
    0x044e3000, 0x044e3801, 0x044e3c00, 0x044e4001, 0x044ed800, 0x044edc01, 0x044ee005, 0x044eec45,
    0x044f0400, 0x044f0805, 0x044f0c00, 0x044f1405, 0x044f1800, 0x044f1c05, 0x044f2c00, 0x044f3005,
    0x044f384d, 0x044f3c0d, 0x044f404d, 0x044f4401, 0x044f4845, 0x044f4c01, 0x044f5000, 0x044f8445,
    0x044f8c00, 0x04500001, 0x0450d405, 0x0450e045, 0x04510005, 0x0451084d, 0x04510c45, 0x04511405,
    0x04511845, 0x04511c01, 0x04512c00, 0x04514001, 0x04516800, 0x04517845, 0x04517c01, 0x04518800,
    0x04520001, 0x0452c005, 0x0452cc45, 0x0452e405, 0x0452e845, 0x0452ec05, 0x0452fc45, 0x04530405,
    0x0453084d, 0x04530c45, 0x04531001, 0x04531800, 0x04531c01, 0x04532000, 0x04534001, 0x04536800,
    0x04560001, 0x0456bc05, 0x0456c845, 0x0456d800, 0x0456e005, 0x0456f045, 0x0456f805, 0x0456fc4d,
    0x04570045, 0x04570400, 0x04576001, 0x04577045, 0x04577800, 0x04580001, 0x0458c005, 0x0458cc45,
    0x0458ec05, 0x0458f445, 0x0458f805, 0x0458fc4d, 0x04590045, 0x04590400, 0x04591001, 0x04591400,
    0x04594001, 0x04596800, 0x045a0001, 0x045aac45, 0x045ab005, 0x045ab445, 0x045ab805, 0x045ac045,
    0x045ad80d, 0x045adc45, 0x045ae001, 0x045ae400, 0x045b0001, 0x045b2800, 0x045b4001, 0x045b9000,
    0x045c0001, 0x045c6c00, 0x045c7445, 0x045c7805, 0x045c7c45, 0x045c8005, 0x045c8845, 0x045c9805,
    0x045c9c45, 0x045cac4d, 0x045cb000, 0x045cc001, 0x045ce800, 0x045d0001, 0x045d1c00, 0x04600001,
    0x0460b005, 0x0460bc45, 0x0460e005, 0x0460e44d, 0x0460e845, 0x0460ec00, 0x04630001, 0x0463a800,
    0x0463fc01, 0x04641c00, 0x04642401, 0x04642800, 0x04643001, 0x04645000, 0x04645401, 0x04645c00,
    0x04646001, 0x0464c005, 0x0464d800, 0x0464dc05, 0x0464e400, 0x0464ec45, 0x0464f40d, 0x0464f84d,
    0x0464fc01, 0x04650005, 0x04650401, 0x04650805, 0x04650c45, 0x04651000, 0x04654001, 0x04656800,
    0x04668001, 0x0466a000, 0x0466a801, 0x04674405, 0x04675045, 0x04676000, 0x04676845, 0x04677005,
    0x0467804d, 0x04678401, 0x04678800, 0x04678c01, 0x04679005, 0x04679400, 0x04680001, 0x04680445,
    0x04682c01, 0x0468cc45, 0x0468d04d, 0x0468d445, 0x0468e405, 0x0468e801, 0x0468ec45, 0x0468fc00,
    0x04691c4d, 0x04692000, 0x04694001, 0x04694445, 0x04695c05, 0x04696445, 0x04697001, 0x046a2845,
    0x046a5c05, 0x046a6045, 0x046a644d, 0x046a6800, 0x046a7401, 0x046a7800, 0x046ac001, 0x046be400,
    0x046d8045, 0x046d8405, 0x046d8845, 0x046d9405, 0x046d9845, 0x046d9c05, 0x046da000, 0x046f0001,
    0x046f8400, 0x046fc001, 0x046fe800, 0x04700001, 0x04702400, 0x04702801, 0x0470bc05, 0x0470c045,
    0x0470dc00, 0x0470e045, 0x0470f805, 0x0470fc4d, 0x04710001, 0x04710400, 0x04714001, 0x04716800,
    0x0471c801, 0x04724000, 0x04724845, 0x0472a000, 0x0472a405, 0x0472a845, 0x0472c405, 0x0472c845,
    0x0472d005, 0x0472d445, 0x0472dc00, 0x04740001, 0x04741c00, 0x04742001, 0x04742800, 0x04742c01,
    0x0474c445, 0x0474dc00, 0x0474e845, 0x0474ec00, 0x0474f045, 0x0474f800, 0x0474fc45, 0x0475104d,
    0x04751801, 0x04751c45, 0x04752000, 0x04754001, 0x04756800, 0x04758001, 0x04759800, 0x04759c01,
    0x0475a400, 0x0475a801, 0x04762805, 0x04763c00, 0x04764045, 0x04764800, 0x04764c05, 0x04765445,
    0x04765805, 0x04765c4d, 0x04766001, 0x04766400, 0x04768001, 0x0476a800, 0x0476c001, 0x04777000,
    0x04778001, 0x0477a800, 0x047b8001, 0x047bcc45, 0x047bd405, 0x047bdc00, 0x047c0045, 0x047c0801,
    0x047c0c05, 0x047c1001, 0x047c4400, 0x047c4801, 0x047cd005, 0x047cd845, 0x047cec00, 0x047cf805,
    0x047d0045, 0x047d040d, 0x047d084d, 0x047d0c00, 0x047d4001, 0x047d6845, 0x047d6c00, 0x047ec001,
    0x047ec400, 0x04800001, 0x048e6800, 0x04920001, 0x04951000, 0x04be4001, 0x04bfc400, 0x04c00001,
    0x04d0c000, 0x04d10045, 0x04d10401, 0x04d11c45, 0x04d15800, 0x04d18001, 0x050fec00, 0x05100001,
    0x05191c00, 0x05840001, 0x05847845, 0x0584a805, 0x0584b445, 0x0584bc4d, 0x0584c001, 0x0584e800,
    0x05a00001, 0x05a8e400, 0x05a90001, 0x05a97c00, 0x05a98001, 0x05a9a800, 0x05a9c001, 0x05aafc00,
    0x05ab0001, 0x05ab2800, 0x05ab4001, 0x05abb800, 0x05abc045, 0x05abd400, 0x05ac0001, 0x05acc045,
    0x05acdc00, 0x05ad0001, 0x05ad1000, 0x05ad4001, 0x05ad6800, 0x05ad8c01, 0x05ade000, 0x05adf401,
    0x05ae4000, 0x05b50001, 0x05b5b400, 0x05b5c001, 0x05b5e800, 0x05b98001, 0x05ba0000, 0x05baec01,
    0x05bb5000, 0x05bc0001, 0x05bd2c00, 0x05bd3c45, 0x05bd4001, 0x05bd4405, 0x05be2000, 0x05be3c45,
    0x05be4c01, 0x05be8000, 0x05bf8001, 0x05bf8800, 0x05bf8e81, 0x05bf9045, 0x05bf9400, 0x05bfc285,
    0x05bfca81, 0x05bfd000, 0x05c00001, 0x06335800, 0x0633fc01, 0x06347c00, 0x06360001, 0x0637cc00,
    0x06bfc201, 0x06bfd000, 0x06bfd601, 0x06bff000, 0x06bff601, 0x06bffc00, 0x06c00201, 0x06c00581,
    0x06c48201, 0x06c48c00, 0x06c4c981, 0x06c4cc00, 0x06c54181, 0x06c54c00, 0x06c55601, 0x06c55800,
    0x06c59201, 0x06c5a000, 0x06c5c001, 0x06cbf000, 0x06f00001, 0x06f1ac00, 0x06f1c001, 0x06f1f400,
    0x06f20001, 0x06f22400, 0x06f24001, 0x06f26800, 0x06f27445, 0x06f27c00, 0x073c0045, 0x073cb800,
    0x073cc045, 0x073d1c00, 0x07680045, 0x0768dc00, 0x0768ec45, 0x0769b400, 0x0769d445, 0x0769d800,
    0x076a1045, 0x076a1400, 0x076a6c45, 0x076a8000, 0x076a8445, 0x076ac000, 0x077c0001, 0x077c7c00,
    0x077c9401, 0x077cac00, 0x07800045, 0x07801c00, 0x07802045, 0x07806400, 0x07806c45, 0x07808800,
    0x07808c45, 0x07809400, 0x07809845, 0x0780ac00, 0x07823c45, 0x07824000, 0x07840001, 0x0784b400,
    0x0784c045, 0x0784dc01, 0x0784f800, 0x07850001, 0x07852800, 0x07853801, 0x07853c00, 0x078a4001,
    0x078ab845, 0x078abc00, 0x078b0001, 0x078bb045, 0x078bc001, 0x078be800, 0x07934001, 0x0793b045,
    0x0793c001, 0x0793e800, 0x07974001, 0x0797b845, 0x0797c001, 0x0797ec00, 0x079b0001, 0x079b7c00,
    0x079b8001, 0x079b8c45, 0x079b9001, 0x079b9845, 0x079b9c01, 0x079bb845, 0x079bc001, 0x079bd445,
    0x079bd800, 0x079bf801, 0x079c0000, 0x079f8001, 0x079f9c00, 0x079fa001, 0x079fb000, 0x079fb401,
    0x079fbc00, 0x079fc001, 0x079ffc00, 0x07a00001, 0x07a31400, 0x07a34045, 0x07a35c00, 0x07a48821,
    0x07a51045, 0x07a52c41, 0x07a53000, 0x07a54001, 0x07a56800, 0x08000281, 0x0a9b8000, 0x0a9c0281,
    0x0ae07800, 0x0ae08281, 0x0b3ab800, 0x0b3ac281, 0x0baf8400, 0x0bafc281, 0x0bb97800, 0x0c000281,
    0x0c4d2c00, 0x0c4d4281, 0x0cd1e800,
};

static unsigned idna_lookup(uint32_t cp)
{
    size_t lo = 0;
    size_t hi = sizeof idna_props / sizeof idna_props[0];
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((idna_props[mid] >> IDNA_PROPS_BITS) <= cp) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return (unsigned)(idna_props[lo] & ((1u << IDNA_PROPS_BITS) - 1u));
}

static unsigned idna_joining_type(uint32_t cp)
{
    return (idna_lookup(cp) >> IDNA_JT_SHIFT) & 0x7u;
}

static unsigned idna_script(uint32_t cp)
{
    return (idna_lookup(cp) >> IDNA_SCRIPT_SHIFT) & 0x7u;
}

/* ------------------------------------------------------------------------------------------ */
/* Punycode (RFC 3492)                                                                        */
/* ------------------------------------------------------------------------------------------ */

enum {
    PUNY_BASE = 36,
    PUNY_TMIN = 1,
    PUNY_TMAX = 26,
    PUNY_SKEW = 38,
    PUNY_DAMP = 700,
    PUNY_INITIAL_BIAS = 72,
    PUNY_INITIAL_N = 0x80
};

static uint32_t puny_adapt(uint32_t delta, uint32_t num_points, bool first_time)
{
    uint32_t k = 0;
    delta = first_time ? delta / PUNY_DAMP : delta / 2u;
    delta += delta / num_points;
    while (delta > ((PUNY_BASE - PUNY_TMIN) * PUNY_TMAX) / 2) {
        delta /= PUNY_BASE - PUNY_TMIN;
        k += PUNY_BASE;
    }
    return k + (PUNY_BASE - PUNY_TMIN + 1) * delta / (delta + PUNY_SKEW);
}

static uint32_t puny_threshold(uint32_t k, uint32_t bias)
{
    if (k <= bias) {
        return PUNY_TMIN;
    }
    return k >= bias + PUNY_TMAX ? PUNY_TMAX : k - bias;
}

/* Digit value of c (case-insensitive), or PUNY_BASE when c is not a digit. */
static uint32_t puny_digit_value(char c)
{
    if (c >= 'a' && c <= 'z') {
        return (uint32_t)(c - 'a');
    }
    if (c >= 'A' && c <= 'Z') {
        return (uint32_t)(c - 'A');
    }
    if (c >= '0' && c <= '9') {
        return (uint32_t)(c - '0') + 26u;
    }
    return PUNY_BASE;
}

static char puny_digit_char(uint32_t d)
{
    return d < 26 ? (char)('a' + d) : (char)('0' + (d - 26));
}

/*
 * Decodes in[0..len) (an A-label without its "xn--" prefix) into at most cap code points.
 * Basic code points are lowercased: host names compare case-insensitively (RFC 4343).
 */
static bool puny_decode(const char *in, size_t len, uint32_t *out, size_t cap, size_t *out_len)
{
    uint32_t n = PUNY_INITIAL_N;
    uint32_t i = 0;
    uint32_t bias = PUNY_INITIAL_BIAS;
    size_t basic = 0;
    size_t count = 0;
    size_t pos;

    for (size_t j = 0; j < len; j++) {
        if (in[j] == '-') {
            basic = j;
        }
    }
    if (basic > cap) {
        return false;
    }
    for (; count < basic; count++) {
        out[count] = (uint32_t)(unsigned char)to_lower(in[count]);
    }
    for (pos = basic > 0 ? basic + 1 : 0; pos < len;) {
        uint32_t old_i = i;
        uint32_t w = 1;
        for (uint32_t k = PUNY_BASE;; k += PUNY_BASE) {
            uint32_t digit;
            uint32_t t;
            if (pos >= len) {
                return false;
            }
            digit = puny_digit_value(in[pos++]);
            if (digit >= PUNY_BASE || digit > (UINT32_MAX - i) / w) {
                return false;
            }
            i += digit * w;
            t = puny_threshold(k, bias);
            if (digit < t) {
                break;
            }
            if (w > UINT32_MAX / (PUNY_BASE - t)) {
                return false;
            }
            w *= PUNY_BASE - t;
        }
        bias = puny_adapt(i - old_i, (uint32_t)count + 1u, old_i == 0);
        if (i / ((uint32_t)count + 1u) > UINT32_MAX - n) {
            return false;
        }
        n += i / ((uint32_t)count + 1u);
        i %= (uint32_t)count + 1u;
        if (n < PUNY_INITIAL_N || n > 0x10FFFF || count >= cap) {
            return false;
        }
        memmove(out + i + 1, out + i, (count - i) * sizeof *out);
        out[i++] = n;
        count++;
    }
    *out_len = count;
    return true;
}

/* Matches the next output character c against expect[*pos], ignoring ASCII case. */
static bool puny_emit(char c, const char *expect, size_t len, size_t *pos)
{
    if (*pos >= len || to_lower(expect[*pos]) != c) {
        return false;
    }
    (*pos)++;
    return true;
}

/*
 * Punycode-encodes cp[0..count) (RFC 3492 section 6.3) and reports whether the result equals
 * expect[0..len), ignoring ASCII case. Used for the A-label round trip of RFC 5891 section 5.4.
 */
static bool puny_encodes_to(const uint32_t *cp, size_t count, const char *expect, size_t len)
{
    uint32_t n = PUNY_INITIAL_N;
    uint32_t delta = 0;
    uint32_t bias = PUNY_INITIAL_BIAS;
    size_t basic = 0;
    size_t handled;
    size_t pos = 0;

    for (size_t j = 0; j < count; j++) {
        if (cp[j] < PUNY_INITIAL_N) {
            if (!puny_emit((char)cp[j], expect, len, &pos)) {
                return false;
            }
            basic++;
        }
    }
    if (basic > 0 && !puny_emit('-', expect, len, &pos)) {
        return false;
    }
    for (handled = basic; handled < count;) {
        uint32_t m = UINT32_MAX;
        for (size_t j = 0; j < count; j++) {
            if (cp[j] >= n && cp[j] < m) {
                m = cp[j];
            }
        }
        if (m - n > (UINT32_MAX - delta) / ((uint32_t)handled + 1u)) {
            return false;
        }
        delta += (m - n) * ((uint32_t)handled + 1u);
        n = m;
        for (size_t j = 0; j < count; j++) {
            if (cp[j] < n && ++delta == 0) {
                return false;
            }
            if (cp[j] == n) {
                uint32_t q = delta;
                for (uint32_t k = PUNY_BASE;; k += PUNY_BASE) {
                    uint32_t t = puny_threshold(k, bias);
                    if (q < t) {
                        break;
                    }
                    if (!puny_emit(puny_digit_char(t + (q - t) % (PUNY_BASE - t)), expect, len,
                                   &pos)) {
                        return false;
                    }
                    q = (q - t) / (PUNY_BASE - t);
                }
                if (!puny_emit(puny_digit_char(q), expect, len, &pos)) {
                    return false;
                }
                bias = puny_adapt(delta, (uint32_t)handled + 1u, handled == basic);
                delta = 0;
                handled++;
            }
        }
        delta++;
        n++;
    }
    return pos == len;
}

/* ------------------------------------------------------------------------------------------ */
/* IDNA2008 U-label validity (RFC 5891 section 4.2.3, RFC 5892 appendix A)                    */
/* ------------------------------------------------------------------------------------------ */

/* RFC 5892 A.1 ZERO WIDTH NON-JOINER and A.2 ZERO WIDTH JOINER */
static bool idna_contextj_valid(const uint32_t *cp, size_t count, size_t at)
{
    bool left = false;
    bool right = false;

    if (at > 0 && (idna_lookup(cp[at - 1]) & IDNA_VIRAMA) != 0) {
        return true;
    }
    if (cp[at] != 0x200C) {
        return false;
    }
    /* RegExpMatch((Joining_Type:{L,D})(Joining_Type:T)*\u200C
     *             (Joining_Type:T)*(Joining_Type:{R,D})) */
    for (size_t j = at; j > 0;) {
        unsigned jt = idna_joining_type(cp[--j]);
        if (jt != IDNA_JT_T) {
            left = jt == IDNA_JT_L || jt == IDNA_JT_D;
            break;
        }
    }
    for (size_t j = at + 1; j < count; j++) {
        unsigned jt = idna_joining_type(cp[j]);
        if (jt != IDNA_JT_T) {
            right = jt == IDNA_JT_R || jt == IDNA_JT_D;
            break;
        }
    }
    return left && right;
}

/* True when some code point of cp[0..count) lies in [lo, hi]. */
static bool idna_contains_range(const uint32_t *cp, size_t count, uint32_t lo, uint32_t hi)
{
    for (size_t j = 0; j < count; j++) {
        if (cp[j] >= lo && cp[j] <= hi) {
            return true;
        }
    }
    return false;
}

/* RFC 5892 A.3-A.9 */
static bool idna_contexto_valid(const uint32_t *cp, size_t count, size_t at)
{
    uint32_t c = cp[at];

    switch (c) {
    case 0x00B7: /* MIDDLE DOT: between two 'l' */
        return at > 0 && at + 1 < count && cp[at - 1] == 0x6C && cp[at + 1] == 0x6C;
    case 0x0375: /* GREEK LOWER NUMERAL SIGN (KERAIA): followed by Greek */
        return at + 1 < count && idna_script(cp[at + 1]) == IDNA_SCRIPT_GREEK;
    case 0x05F3: /* HEBREW PUNCTUATION GERESH */
    case 0x05F4: /* HEBREW PUNCTUATION GERSHAYIM: preceded by Hebrew */
        return at > 0 && idna_script(cp[at - 1]) == IDNA_SCRIPT_HEBREW;
    case 0x30FB: /* KATAKANA MIDDLE DOT: some Hiragana, Katakana or Han in the label */
        for (size_t j = 0; j < count; j++) {
            unsigned script = idna_script(cp[j]);
            if (script == IDNA_SCRIPT_HIRAGANA || script == IDNA_SCRIPT_KATAKANA
                || script == IDNA_SCRIPT_HAN) {
                return true;
            }
        }
        return false;
    default:
        break;
    }
    if (c >= 0x0660 && c <= 0x0669) { /* ARABIC-INDIC DIGITS: not mixed with extended ones */
        return !idna_contains_range(cp, count, 0x06F0, 0x06F9);
    }
    if (c >= 0x06F0 && c <= 0x06F9) { /* EXTENDED ARABIC-INDIC DIGITS */
        return !idna_contains_range(cp, count, 0x0660, 0x0669);
    }
    return false;
}

static bool idna_u_label_valid(const uint32_t *cp, size_t count)
{
    /* RFC 5890 section 2.3.2.1: a U-label contains at least one non-ASCII character */
    if (!idna_contains_range(cp, count, 0x80, 0x10FFFF)) {
        return false;
    }
    /* RFC 5891 section 4.2.3.1: hyphen restrictions */
    if (cp[0] == '-' || cp[count - 1] == '-' || (count >= 4 && cp[2] == '-' && cp[3] == '-')) {
        return false;
    }
    /* RFC 5891 section 4.2.3.2: no leading combining mark */
    if ((idna_lookup(cp[0]) & IDNA_MARK) != 0) {
        return false;
    }
    /* RFC 5891 sections 4.2.2 and 4.2.3.3: PVALID, or CONTEXTJ / CONTEXTO with its rule */
    for (size_t j = 0; j < count; j++) {
        switch (idna_lookup(cp[j]) & IDNA_CLASS_MASK) {
        case IDNA_PVALID:
            break;
        case IDNA_CONTEXTJ:
            if (!idna_contextj_valid(cp, count, j)) {
                return false;
            }
            break;
        case IDNA_CONTEXTO:
            if (!idna_contexto_valid(cp, count, j)) {
                return false;
            }
            break;
        default:
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 1123: hostname                                                                         */
/* ------------------------------------------------------------------------------------------ */

#define HOSTNAME_MAX_LENGTH 253u
#define HOSTNAME_MAX_LABEL 63u

/* label = let-dig [ *61( let-dig-hyp ) let-dig ]; "xn--" labels must be A-labels. */
static bool hostname_label_valid(const char *s, size_t len)
{
    if (len == 0 || len > HOSTNAME_MAX_LABEL || s[0] == '-' || s[len - 1] == '-') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-') {
            return false;
        }
    }
    if (len >= 4 && to_lower(s[0]) == 'x' && to_lower(s[1]) == 'n' && s[2] == '-'
        && s[3] == '-') {
        uint32_t cp[HOSTNAME_MAX_LABEL];
        size_t count;
        return puny_decode(s + 4, len - 4, cp, HOSTNAME_MAX_LABEL, &count)
               && idna_u_label_valid(cp, count) && puny_encodes_to(cp, count, s + 4, len - 4);
    }
    return true;
}

bool tb_format_hostname(const char *s, size_t len)
{
    size_t start = 0;

    if (s == NULL || len == 0 || len > HOSTNAME_MAX_LENGTH) {
        return false;
    }
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (!hostname_label_valid(s + start, i - start)) {
                return false;
            }
            start = i + 1;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Lookup by name                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------------ */
/* OpenAPI 3.0: byte (RFC 4648 base64)                                                        */
/* ------------------------------------------------------------------------------------------ */

bool tb_format_byte(const char *s, size_t len)
{
    if (s == NULL)
        return false;
    size_t n = len;
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && len % 4 != 0)
        return false; /* padding pads to a multiple of four */
    if (n % 4 == 1)
        return false; /* one character holds 6 bits: no whole byte */
    int alphabet = 0; /* 1 standard (+/), 2 URL-safe (-_) */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int kind = (c == '+' || c == '/') ? 1 : (c == '-' || c == '_') ? 2 : 0;
        if (!kind && !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
        if (kind) {
            if (alphabet && alphabet != kind)
                return false;
            alphabet = kind;
        }
    }
    return true;
}

tb_format_fn tb_format_lookup(const char *name)
{
    static const struct {
        const char *name;
        tb_format_fn fn;
    } formats[] = {
        {"date-time", tb_format_date_time},
        {"date", tb_format_date},
        {"time", tb_format_time},
        {"email", tb_format_email},
        {"uuid", tb_format_uuid},
        {"ipv4", tb_format_ipv4},
        {"ipv6", tb_format_ipv6},
        {"uri", tb_format_uri},
        {"uri-reference", tb_format_uri_reference},
        {"hostname", tb_format_hostname},
        {"byte", tb_format_byte},
    };

    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(name, formats[i].name) == 0) {
            return formats[i].fn;
        }
    }
    return NULL;
}
