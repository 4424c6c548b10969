/*
 * Shared by the HTTP server suites (test_http_auth.c, test_http_policy.c): one libcurl
 * exchange into a fixed-size reply, and the path matcher of their small hand-written services.
 * Header-only (static inline) so that each suite stays one file.
 */
#ifndef TB_TEST_HTTP_H
#define TB_TEST_HTTP_H

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

typedef struct tht_reply {
    long status; /* 0 when the exchange failed */
    char body[4096];
    size_t len;
    char headers[4096];
    size_t hlen;
} tht_reply;

static inline size_t tht_collect(const char *p, size_t k, char *dst, size_t cap, size_t *len)
{
    size_t room = cap - 1 - *len;
    memcpy(dst + *len, p, k < room ? k : room);
    *len += k < room ? k : room;
    dst[*len] = '\0';
    return k;
}

static inline size_t tht_on_body(char *p, size_t sz, size_t n, void *u)
{
    tht_reply *r = u;
    return tht_collect(p, sz * n, r->body, sizeof r->body, &r->len);
}

static inline size_t tht_on_header(char *p, size_t sz, size_t n, void *u)
{
    tht_reply *r = u;
    return tht_collect(p, sz * n, r->headers, sizeof r->headers, &r->hlen);
}

/* method on url from 127.0.0.<host> (0: any source) with the header lines hdrs (may be NULL),
 * on handle h (NULL: a one-off, kept-alive handles otherwise). Returns r->status. */
static inline long tht_request(CURL *h, const char *method, const char *url, int host,
                               struct curl_slist *hdrs, tht_reply *r)
{
    CURL *c = h ? h : curl_easy_init();
    char src[32];
    memset(r, 0, sizeof *r);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (host > 0) {
        snprintf(src, sizeof src, "127.0.0.%d", host);
        curl_easy_setopt(c, CURLOPT_INTERFACE, src);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tht_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tht_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    if (!h)
        curl_easy_cleanup(c);
    return r->status;
}

/* The index of path[0..len) among paths[0..n) (exact), or -1: the match function of a service
 * whose routes have no parameters. */
static inline int tht_match(const char *const *paths, int n, const char *path, size_t len)
{
    for (int i = 0; i < n; i++) {
        if (strlen(paths[i]) == len && memcmp(path, paths[i], len) == 0)
            return i;
    }
    return -1;
}

#endif
