/*
 * TLS end to end (issue 13): a real tb_server speaking HTTPS (libmicrohttpd + GnuTLS) and a real
 * tb_client (libcurl + OpenSSL), with certificates made at test time by the `openssl` command
 * in a temporary folder removed at the end: a test CA, a second CA nobody trusts, a server
 * certificate for 127.0.0.1/localhost, an expired one, one for another host name, and client
 * certificates signed by each CA for mutual TLS.
 *
 * Prints one line for make test:
 *   tls: N/N refusals clean (wrong CA, expired, host name, plain HTTP, mTLS), handshake cut in N ms
 */
#include "tablium/client.h"
#include "tablium/http.h"
#include "tablium/jwt.h"
#include "tablium/log.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the service: GET /ping ---- */

static int ping(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)ctx, (void)req;
    res->status = 200;
    tb_buf_puts(&res->body, "{\"data\":{\"pong\":true}}");
    return 0;
}

/* GET /who: security mutualTLS (OpenAPI 3.1), answers the identity it saw as `sub`;
 * GET /either: mutualTLS or an API key (X-API-Key, TB_API_KEYS_KEY) */
static const tb_security_scheme schemes[] = {{"mtls", TB_SEC_MUTUAL_TLS, NULL},
                                             {"key", TB_SEC_API_KEY_HEADER, "X-API-Key"}};
static const tb_security_req mtls_req[] = {{&schemes[0], NULL, 0}};
static const tb_security_req key_req[] = {{&schemes[1], NULL, 0}};
static const tb_security_alt mtls_only[] = {{mtls_req, 1}};
static const tb_security_alt mtls_or_key[] = {{mtls_req, 1}, {key_req, 1}};

static int secured(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res,
                   const tb_security_alt *alts, size_t n)
{
    int rc = tb_http_authorize(ctx, req, res, alts, n);
    if (rc)
        return rc > 0 ? 0 : rc;
    const char *sub = ctx->claims ? json_string_value(json_object_get(ctx->claims, "sub")) : NULL;
    res->status = 200;
    tb_buf_printf(&res->body, "{\"data\":{\"sub\":\"%s\"}}", sub ? sub : "");
    return 0;
}

static int who(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    return secured(ctx, req, res, mtls_only, 1);
}

static int either(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    return secured(ctx, req, res, mtls_or_key, 2);
}

static const tb_http_op ops[] = {{"ping", TB_HTTP_GET, "/ping", 0, ping, NULL},
                                 {"who", TB_HTTP_GET, "/who", TB_OP_SECURED, who, NULL},
                                 {"either", TB_HTTP_GET, "/either", TB_OP_SECURED, either, NULL}};
static const int16_t routes[][TB_HTTP_N_METHODS] = {{0, -1, -1, -1, -1, -1, -1, -1},
                                                    {1, -1, -1, -1, -1, -1, -1, -1},
                                                    {2, -1, -1, -1, -1, -1, -1, -1}};

static int match(const char *path, size_t len, int method, tb_str *params, size_t *n_params)
{
    (void)method; /* one operation per path here */
    (void)params;
    *n_params = 0;
    if (len == 5 && memcmp(path, "/ping", 5) == 0)
        return 0;
    if (len == 4 && memcmp(path, "/who", 4) == 0)
        return 1;
    return len == 7 && memcmp(path, "/either", 7) == 0 ? 2 : -1;
}

static const tb_http_api api = {"tlstest", "TLS test", "1.0", ops, 3, match, routes, 3, NULL, NULL, 0, NULL, 0, NULL, 0};

/* ---- certificates ---- */

static char dir[64];
static unsigned clean_refusals, refusals;
static long cut_ms = -1;

static char *path(const char *name)
{
    static char bufs[8][128];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2300];
    snprintf(full, sizeof full, "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    int rc = system(full);
    ck_assert_msg(rc == 0, "failed: %s", cmd);
}

#define NEWKEY "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"

/* A key and a certificate `name`.crt signed by `ca` with subjectAltName `san`, valid `days`
 * (-1: expired yesterday), for `usage` (serverAuth or clientAuth). */
static void make_cert(const char *name, const char *ca, const char *san, int days,
                      const char *usage)
{
    sh("printf 'subjectAltName=%s\\nextendedKeyUsage=%s\\nbasicConstraints=CA:FALSE\\n' > %s.ext",
       san, usage, name);
    sh("openssl req -new " NEWKEY " -keyout %s.key -out %s.csr -subj /CN=%s", name, name, name);
    sh("openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial -out %s.crt "
       "-days %d -extfile %s.ext",
       name, ca, ca, name, days, name);
}

static void certs_make(void)
{
    strcpy(dir, "/tmp/tb_tls_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sh("openssl req -x509 " NEWKEY " -keyout ca.key -out ca.crt -days 2 -subj /CN=tablium-test-ca");
    sh("openssl req -x509 " NEWKEY " -keyout rogue.key -out rogue.crt -days 2 -subj /CN=rogue-ca");
    make_cert("server", "ca", "DNS:localhost,IP:127.0.0.1", 1, "serverAuth");
    make_cert("expired", "ca", "DNS:localhost,IP:127.0.0.1", -1, "serverAuth");
    make_cert("elsewhere", "ca", "DNS:elsewhere.example", 1, "serverAuth");
    make_cert("client", "ca", "DNS:client", 1, "clientAuth");
    make_cert("stranger", "rogue", "DNS:stranger", 1, "clientAuth");
    sh("printf 'not a certificate\\n' > junk.pem");
}

static void certs_remove(void)
{
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        int rc = system(cmd);
        (void)rc;
    }
    printf("tls: %u/%u refusals clean (wrong CA, expired, host name, plain HTTP, mTLS), "
           "handshake cut in %ld ms\n",
           clean_refusals, refusals, cut_ms);
}

/* ---- helpers ---- */

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static tb_server *start_tls(const char *cert, const char *client_ca, tb_server_opts *base)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    if (base)
        o = *base;
    o.threads = 2;
    o.access_log = false;
    o.tls_cert_file = path(cert);
    char key[128];
    snprintf(key, sizeof key, "%s", path(cert));
    memcpy(key + strlen(key) - 3, "key", 3);
    o.tls_key_file = key;
    o.tls_client_ca_file = client_ca ? path(client_ca) : NULL;
    tb_error err = TB_ERROR_INIT;
    tb_server *s = tb_server_new(&api, &o, &err);
    ck_assert_msg(s != NULL, "%s", err.message);
    ck_assert_msg(tb_server_start(s, &err) == 0, "%s", err.message);
    tb_error_deinit(&err);
    return s;
}

typedef struct call_out {
    int rc;
    int status;
    int attempts;
    char msg[256];
    char body[256];
} call_out;

static call_out get_path(const char *scheme, const char *host, const tb_server *s,
                         const char *ca, const char *cert, const char *path_, const char *hdr);

/* GET /ping on scheme://host:port with the given client options (name "tlstest"). */
static call_out get_ping(const char *scheme, const char *host, const tb_server *s,
                         const char *ca, const char *cert)
{
    return get_path(scheme, host, s, ca, cert, "/ping", NULL);
}

/* GET path_, with the header hdr ("Name: value") when not NULL. */
static call_out get_path(const char *scheme, const char *host, const tb_server *s,
                         const char *ca, const char *cert, const char *path_, const char *hdr)
{
    char url[128];
    snprintf(url, sizeof url, "%s://%s:%u", scheme, host, (unsigned)tb_server_port(s));
    tb_client_opts o = TB_CLIENT_OPTS_INIT;
    o.name = "tlstest";
    o.timeout_ms = 4000;
    o.tls_ca_file = ca ? path(ca) : NULL;
    char key[128];
    if (cert) {
        o.tls_cert_file = path(cert);
        snprintf(key, sizeof key, "%s", path(cert));
        memcpy(key + strlen(key) - 3, "key", 3);
        o.tls_key_file = key;
    }
    tb_error err = TB_ERROR_INIT;
    tb_client *c = tb_client_new(url, &o, &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_call call = {.method = "GET", .path = path_};
    if (hdr)
        call.headers[call.n_headers++] = hdr;
    tb_client_res res;
    call_out out;
    memset(&out, 0, sizeof out);
    out.rc = tb_client_send(c, &ctx, &call, &res, &err);
    out.status = res.status;
    out.attempts = res.attempts;
    snprintf(out.msg, sizeof out.msg, "%s", err.message);
    snprintf(out.body, sizeof out.body, "%s", res.body ? res.body : "");
    tb_arena_free(a);
    tb_client_free(c);
    tb_error_deinit(&err);
    return out;
}

static void expect_verify_failure(const call_out *r, const char *what)
{
    refusals++;
    ck_assert_msg(r->rc == TB_ECONN, "%s: rc %d (%s)", what, r->rc, r->msg);
    ck_assert_msg(strstr(r->msg, "TLS: certificate verify failed: ") != NULL, "%s: %s", what,
                  r->msg);
    ck_assert_msg(r->attempts == 1, "%s: retried (%d attempts)", what, r->attempts);
    clean_refusals++;
}

/* A TLS connection made with libcurl that completes its handshake and sends nothing. */
static CURL *handshake_only(const tb_server *s)
{
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/", (unsigned)tb_server_port(s));
    CURL *e = curl_easy_init();
    ck_assert_ptr_nonnull(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_CAINFO, path("ca.crt"));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 3000L);
    CURLcode cc = curl_easy_perform(e);
    ck_assert_msg(cc == CURLE_OK, "handshake: %s", curl_easy_strerror(cc));
    return e;
}

/* Waits (at most limit_ms) until the server closes e's connection; the ms it took, or -1. */
static long wait_closed(CURL *e, long limit_ms)
{
    curl_socket_t fd;
    ck_assert_int_eq(curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &fd), CURLE_OK);
    uint64_t t0 = now_ms();
    for (;;) {
        long left = limit_ms - (long)(now_ms() - t0);
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char buf[256];
        size_t n = 0;
        CURLcode cc = curl_easy_recv(e, buf, sizeof buf, &n);
        if (cc == CURLE_AGAIN)
            continue; /* a TLS 1.3 session ticket, not data */
        if (cc != CURLE_OK || n == 0)
            return (long)(now_ms() - t0);
    }
}

/* ---- tests ---- */

START_TEST(client_with_the_test_ca_succeeds_and_env_knob_sets_the_ca)
{
    tb_server *s = start_tls("server.crt", NULL, NULL);
    call_out r = get_ping("https", "127.0.0.1", s, "ca.crt", NULL);
    ck_assert_msg(r.rc == 0, "%s", r.msg);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"data\":{\"pong\":true}}");
    r = get_ping("https", "localhost", s, "ca.crt", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 200, "localhost: %s", r.msg);

    /* TB_<NAME>_TLS_CA_FILE over TB_CLIENT_TLS_CA_FILE over the options */
    setenv("TB_CLIENT_TLS_CA_FILE", path("rogue.crt"), 1);
    setenv("TB_TLSTEST_TLS_CA_FILE", path("ca.crt"), 1);
    r = get_ping("https", "127.0.0.1", s, "rogue.crt", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 200, "env CA: %s", r.msg);
    unsetenv("TB_TLSTEST_TLS_CA_FILE");
    r = get_ping("https", "127.0.0.1", s, "ca.crt", NULL);
    ck_assert_int_eq(r.rc, TB_ECONN); /* TB_CLIENT_TLS_CA_FILE: the rogue CA */
    unsetenv("TB_CLIENT_TLS_CA_FILE");

    /* an unreadable CA file is the client's configuration error, named */
    tb_client_opts o = TB_CLIENT_OPTS_INIT;
    o.tls_ca_file = "/nonexistent/ca.pem";
    tb_error err = TB_ERROR_INIT;
    ck_assert_ptr_null(tb_client_new("https://127.0.0.1:1", &o, &err));
    ck_assert_int_eq(err.code, TB_EINVAL);
    ck_assert_msg(strstr(err.message, "/nonexistent/ca.pem") != NULL, "%s", err.message);
    tb_error_deinit(&err);
    tb_server_free(s);
}
END_TEST

/* A JWK Set over https from an issuer behind a private CA: TB_JWT_JWKS_CA_FILE (the verifier's
 * jwks_ca_file) names the CA its certificate chains to; without it the fetch is refused and
 * the verifier has no keys. The server is OpenSSL's own (`openssl s_server -WWW`). */
START_TEST(a_jwks_url_behind_a_private_ca_needs_its_ca_file)
{
    tb_jwt_key *k = NULL;
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_ES256, "p1", &k, NULL), 0);
    tb_jwks *ks = NULL;
    ck_assert_int_eq(tb_jwks_new(&k, 1, &ks), 0);
    json_t *set = tb_jwks_to_json(ks);
    tb_jwks_free(ks);
    ck_assert_int_eq(json_dump_file(set, path("jwks.json"), JSON_COMPACT), 0);
    json_decref(set);
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* a free port */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    unsigned port = ntohs(a.sin_port);
    close(fd);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char acc[32];
        snprintf(acc, sizeof acc, "127.0.0.1:%u", port);
        if (chdir(dir) != 0)
            _exit(127);
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execlp("openssl", "openssl", "s_server", "-accept", acc, "-cert", "server.crt", "-key",
               "server.key", "-WWW", "-quiet", (char *)NULL);
        _exit(127);
    }
    char url[96];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/jwks.json", port);
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) { /* until it accepts */
        int c = socket(AF_INET, SOCK_STREAM, 0);
        up = connect(c, (struct sockaddr *)&a, sizeof a) == 0;
        close(c);
        if (!up)
            usleep(50 * 1000);
    }
    ck_assert_msg(up, "openssl s_server did not start on %u", port);
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_url = url;
    o.jwks_max_age_s = 0;
    o.fetch_timeout_ms = 3000;
    tb_jwt_verifier *v = NULL;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0); /* the system's CAs: refused */
    ks = tb_jwt_verifier_keys(v);
    ck_assert_uint_eq(tb_jwks_count(ks), 0);
    tb_jwks_free(ks);
    tb_jwt_verifier_free(v);
    setenv("TB_JWT_JWKS_URL", url, 1);
    setenv("TB_JWT_JWKS_CA_FILE", path("ca.crt"), 1);
    setenv("TB_JWT_AUDIENCE", "tls-test", 1);
    tb_error err = TB_ERROR_INIT;
    int rc = tb_jwt_verifier_from_env(&v, &err);
    unsetenv("TB_JWT_JWKS_URL");
    unsetenv("TB_JWT_JWKS_CA_FILE");
    unsetenv("TB_JWT_AUDIENCE");
    ck_assert_msg(rc == 0, "%s", err.message);
    ks = tb_jwt_verifier_keys(v);
    ck_assert_uint_eq(tb_jwks_count(ks), 1);
    tb_jwks_free(ks);
    tb_jwt_verifier_free(v);
    tb_error_deinit(&err);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    tb_jwt_key_free(k);
}
END_TEST

START_TEST(wrong_ca_expired_certificate_and_host_name_mismatch_fail_verification)
{
    tb_server *s = start_tls("server.crt", NULL, NULL);
    call_out r = get_ping("https", "127.0.0.1", s, "rogue.crt", NULL);
    expect_verify_failure(&r, "wrong CA");
    r = get_ping("https", "127.0.0.1", s, NULL, NULL); /* the system's CAs do not know it */
    expect_verify_failure(&r, "system CAs");
    tb_server_free(s);

    s = start_tls("expired.crt", NULL, NULL);
    r = get_ping("https", "127.0.0.1", s, "ca.crt", NULL);
    expect_verify_failure(&r, "expired");
    ck_assert_msg(strstr(r.msg, "expired") != NULL, "%s", r.msg);
    tb_server_free(s);

    s = start_tls("elsewhere.crt", NULL, NULL);
    r = get_ping("https", "127.0.0.1", s, "ca.crt", NULL);
    expect_verify_failure(&r, "host name");
    tb_server_free(s);
}
END_TEST

START_TEST(plain_http_to_the_tls_port_gets_a_plain_400_quickly)
{
    tb_server *s = start_tls("server.crt", NULL, NULL);
    refusals++;
    uint64_t t0 = now_ms();
    call_out r = get_ping("http", "127.0.0.1", s, NULL, NULL);
    uint64_t took = now_ms() - t0;
    ck_assert_msg(r.rc == 0, "%s", r.msg);
    ck_assert_int_eq(r.status, 400);
    ck_assert_msg(strstr(r.body, "speaks HTTPS") != NULL, "%s", r.body);
    ck_assert_msg(took < 1500, "took %llu ms", (unsigned long long)took);
    clean_refusals++;
    /* and an https client to a plaintext server fails the handshake, cleanly */
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 1;
    o.access_log = false;
    tb_error err = TB_ERROR_INIT;
    tb_server *plain = tb_server_new(&api, &o, &err);
    ck_assert_int_eq(tb_server_start(plain, &err), 0);
    r = get_ping("https", "127.0.0.1", plain, "ca.crt", NULL);
    ck_assert_int_eq(r.rc, TB_ECONN);
    ck_assert_msg(strstr(r.msg, "TLS: handshake failed: ") != NULL, "%s", r.msg);
    tb_server_free(plain);
    tb_error_deinit(&err);
    tb_server_free(s);
}
END_TEST

START_TEST(mutual_tls_refuses_clients_without_a_certificate_of_the_ca)
{
    tb_server *s = start_tls("server.crt", "ca.crt", NULL);
    call_out r = get_ping("https", "127.0.0.1", s, "ca.crt", "client.crt");
    ck_assert_msg(r.rc == 0 && r.status == 200, "with a client certificate: %s", r.msg);

    refusals += 2;
    r = get_ping("https", "127.0.0.1", s, "ca.crt", NULL);
    /* TLS 1.3: the client's handshake is over before the server checks its certificate, so
     * the refusal (an alert, then the close) shows on its first read */
    ck_assert_msg(r.rc == TB_ECONN, "no certificate: rc %d status %d", r.rc, r.status);
    ck_assert_msg(strstr(r.msg, "TLS: ") != NULL, "%s", r.msg);
    clean_refusals++;
    r = get_ping("https", "127.0.0.1", s, "ca.crt", "stranger.crt");
    ck_assert_msg(r.rc == TB_ECONN, "foreign certificate: rc %d status %d", r.rc, r.status);
    ck_assert_msg(strstr(r.msg, "TLS: ") != NULL, "%s", r.msg);
    clean_refusals++;
    tb_server_free(s);
}
END_TEST

/* OpenAPI 3.1's mutualTLS security: with the client CA required, every connection has a
 * verified certificate and its CN is the handler's `sub`; with TB_TLS_VERIFY_CLIENT=optional
 * a connection without one (or with one of another CA) is let in and gets 401 from operations
 * that need it, while another alternative (an API key) still works. */
START_TEST(mutual_tls_security_names_the_certificate_and_optional_mode_answers_401)
{
    tb_server *s = start_tls("server.crt", "ca.crt", NULL);
    call_out r = get_path("https", "127.0.0.1", s, "ca.crt", "client.crt", "/who", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 200, "required, with a certificate: %d %s", r.status,
                  r.msg);
    ck_assert_str_eq(r.body, "{\"data\":{\"sub\":\"client\"}}");
    tb_server_free(s);

    setenv("TB_TLS_VERIFY_CLIENT", "optional", 1);
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    tb_server_opts_from_env(&o, "tlstest");
    unsetenv("TB_TLS_VERIFY_CLIENT");
    ck_assert(o.tls_client_optional);
    s = start_tls("server.crt", "ca.crt", &o);
    r = get_path("https", "127.0.0.1", s, "ca.crt", "client.crt", "/who", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 200, "optional, with a certificate: %d %s", r.status,
                  r.msg);
    ck_assert_str_eq(r.body, "{\"data\":{\"sub\":\"client\"}}");
    r = get_path("https", "127.0.0.1", s, "ca.crt", NULL, "/ping", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 200, "optional, no certificate, open operation: %d %s",
                  r.status, r.msg);
    r = get_path("https", "127.0.0.1", s, "ca.crt", NULL, "/who", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 401, "optional, no certificate: %d %s", r.status,
                  r.msg);
    ck_assert_msg(strstr(r.body, "\"code\":\"unauthorized\"") &&
                      strstr(r.body, "a client certificate (mutual TLS) is required"),
                  "%s", r.body);
    /* a certificate of another CA is presented but proves nothing */
    r = get_path("https", "127.0.0.1", s, "ca.crt", "stranger.crt", "/who", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 401, "optional, foreign certificate: %d %s", r.status,
                  r.msg);
    setenv("TB_API_KEYS_KEY", "k-123", 1);
    r = get_path("https", "127.0.0.1", s, "ca.crt", NULL, "/either", "X-API-Key: k-123");
    ck_assert_msg(r.rc == 0 && r.status == 200, "the other alternative: %d %s", r.status, r.body);
    r = get_path("https", "127.0.0.1", s, "ca.crt", NULL, "/either", "X-API-Key: wrong");
    ck_assert_msg(r.rc == 0 && r.status == 401, "a wrong key and no certificate: %d", r.status);
    r = get_path("https", "127.0.0.1", s, "ca.crt", "client.crt", "/either", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 200, "the certificate alternative: %d", r.status);
    ck_assert_str_eq(r.body, "{\"data\":{\"sub\":\"client\"}}");
    unsetenv("TB_API_KEYS_KEY");
    tb_server_free(s);

    /* without a client CA no certificate is asked for: the operation cannot be reached */
    s = start_tls("server.crt", NULL, NULL);
    r = get_path("https", "127.0.0.1", s, "ca.crt", "client.crt", "/who", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 401, "no client CA: %d %s", r.status, r.msg);
    tb_server_free(s);
}
END_TEST

START_TEST(bad_tls_files_fail_tb_server_new_naming_the_file)
{
    static const struct {
        const char *cert, *key, *ca, *needle;
    } cases[] = {
        {"/nonexistent/cert.pem", "server.key", NULL, "/nonexistent/cert.pem"},
        {"junk.pem", "server.key", NULL, "junk.pem: no PEM certificate"},
        {"server.crt", "junk.pem", NULL, "junk.pem: no unencrypted PEM private key"},
        {"server.crt", "client.key", NULL, "client.key does not match"},
        {"server.crt", "server.key", "junk.pem", "junk.pem: no PEM certificate"},
        {"server.crt", NULL, NULL, "both a certificate and a key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tb_server_opts o = TB_SERVER_OPTS_INIT;
        char cert[128], key[128], ca[128];
        snprintf(cert, sizeof cert, "%s", cases[i].cert[0] == '/' ? cases[i].cert
                                                                 : path(cases[i].cert));
        o.tls_cert_file = cert;
        if (cases[i].key) {
            snprintf(key, sizeof key, "%s", path(cases[i].key));
            o.tls_key_file = key;
        }
        if (cases[i].ca) {
            snprintf(ca, sizeof ca, "%s", path(cases[i].ca));
            o.tls_client_ca_file = ca;
        }
        tb_error err = TB_ERROR_INIT;
        tb_server *s = tb_server_new(&api, &o, &err);
        ck_assert_msg(s == NULL, "case %zu accepted", i);
        ck_assert_int_eq(err.code, TB_EINVAL);
        ck_assert_msg(strstr(err.message, cases[i].needle) != NULL, "case %zu: %s", i,
                      err.message);
        tb_error_deinit(&err);
    }
}
END_TEST

START_TEST(silent_tls_client_after_its_handshake_is_cut_at_the_header_deadline)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.header_timeout_ms = 400;
    tb_server *s = start_tls("server.crt", NULL, &o);
    CURL *e = handshake_only(s);
    long ms = wait_closed(e, 3000);
    ck_assert_msg(ms >= 0, "not cut within 3 s");
    ck_assert_msg(ms <= 400 + 600, "cut after %ld ms", ms);
    cut_ms = ms;
    curl_easy_cleanup(e);
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_ge(st.header_timeouts, 1);

    /* a connection that never even starts its handshake is cut by the front door */
    e = curl_easy_init();
    uint64_t t0 = now_ms();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)tb_server_port(s));
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
    ck_assert_msg(wait_closed(e, 3000) >= 0, "silent TCP connection not cut");
    ck_assert_msg(now_ms() - t0 <= 400 + 600, "silent TCP connection cut late");
    curl_easy_cleanup(e);

    /* a request still works afterwards */
    call_out r = get_ping("https", "127.0.0.1", s, "ca.crt", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 200, "%s", r.msg);
    tb_server_free(s);
}
END_TEST

START_TEST(the_tls_connection_cap_closes_extra_connections_and_counts_them)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.max_connections_per_addr = 2;
    tb_server *s = start_tls("server.crt", NULL, &o);
    CURL *held[2] = {handshake_only(s), handshake_only(s)};
    uint64_t t0 = now_ms();
    call_out r = get_ping("https", "127.0.0.1", s, "ca.crt", NULL);
    ck_assert_msg(r.rc == TB_ECONN, "over the cap: rc %d status %d", r.rc, r.status);
    ck_assert_msg(now_ms() - t0 < 2000, "the refusal took %llu ms",
                  (unsigned long long)(now_ms() - t0));
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_ge(st.refused_per_addr, 1);
    curl_easy_cleanup(held[0]);
    curl_easy_cleanup(held[1]);
    /* once they are gone, connections are admitted again */
    for (int i = 0; i < 50; i++) {
        tb_server_stats_get(s, &st);
        if (st.open == 0)
            break;
        usleep(20 * 1000);
    }
    r = get_ping("https", "127.0.0.1", s, "ca.crt", NULL);
    ck_assert_msg(r.rc == 0 && r.status == 200, "%s", r.msg);
    tb_server_free(s);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tb_log_set_level(TB_LOG_OFF);
    tb_global_init();
    Suite *suite = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, certs_make, certs_remove);
    tcase_add_test(tc, client_with_the_test_ca_succeeds_and_env_knob_sets_the_ca);
    tcase_add_test(tc, wrong_ca_expired_certificate_and_host_name_mismatch_fail_verification);
    tcase_add_test(tc, plain_http_to_the_tls_port_gets_a_plain_400_quickly);
    tcase_add_test(tc, mutual_tls_refuses_clients_without_a_certificate_of_the_ca);
    tcase_add_test(tc, mutual_tls_security_names_the_certificate_and_optional_mode_answers_401);
    tcase_add_test(tc, bad_tls_files_fail_tb_server_new_naming_the_file);
    tcase_add_test(tc, silent_tls_client_after_its_handshake_is_cut_at_the_header_deadline);
    tcase_add_test(tc, the_tls_connection_cap_closes_extra_connections_and_counts_them);
    tcase_add_test(tc, a_jwks_url_behind_a_private_ca_needs_its_ca_file);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
