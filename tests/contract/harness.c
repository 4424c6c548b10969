/* Contract-test harness: real service processes, plain libcurl. See harness.h. */
#include "harness.h"

#include "tablium/jwt.h"
#include "tablium/token.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TB_BUILD_DIR
#error "TB_BUILD_DIR must be defined (the CMake build folder)"
#endif

extern char **environ;

int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

void th_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/tablium-contract-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(out));
}

bool th_via_prism(void)
{
    const char *v = getenv("TB_CONTRACT_PRISM");
    return v && strcmp(v, "1") == 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool healthy(const char *base)
{
    char url[128];
    th_resp r;
    snprintf(url, sizeof url, "%s/health", base);
    th_http(&r, "GET", url, NULL, NULL, NULL);
    bool ok = r.status == 200;
    th_resp_free(&r);
    return ok;
}

/* Every process a test started and has not stopped yet: killed when the test program exits, so
 * a failing test (Check jumps out of it) leaves no server behind. */
#define TH_LIVE_MAX 64
static pid_t th_live[TH_LIVE_MAX];
static size_t th_n_live;

static void kill_live(void)
{
    for (size_t i = 0; i < th_n_live; i++) {
        kill(th_live[i], SIGKILL);
        waitpid(th_live[i], NULL, 0); /* a Prism is not our child: then this just returns */
    }
    th_n_live = 0;
}

static void live_add(pid_t p)
{
    static bool registered;
    if (!registered) {
        atexit(kill_live);
        registered = true;
    }
    if (p > 0 && th_n_live < TH_LIVE_MAX)
        th_live[th_n_live++] = p;
}

static void live_del(pid_t p)
{
    for (size_t i = 0; i < th_n_live; i++)
        if (th_live[i] == p) {
            th_live[i] = th_live[--th_n_live];
            return;
        }
}

void th_track(pid_t pid)
{
    live_add(pid);
}

void th_untrack(pid_t pid)
{
    live_del(pid);
}

/* ---- tokens: the services verify HS256 tokens made with this secret ---- */

static const char th_secret[] = "tablium-contract-tests-hs256-secret-0123456789abcdef";
static pthread_once_t auth_once = PTHREAD_ONCE_INIT;
static char *default_token;

char *th_token(const char *sub, const char *scope, long ttl_s, const char *secret)
{
    tb_jwt_key *k = NULL;
    const char *sec = secret ? secret : th_secret;
    ck_assert_int_eq(tb_jwt_key_from_secret(sec, strlen(sec), TB_JWT_HS256, NULL, &k, NULL), 0);
    long now = (long)time(NULL);
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", TH_JWT_ISSUER, "aud",
                          TH_JWT_AUDIENCE, "sub", sub, "iat", (json_int_t)now, "exp",
                          (json_int_t)(now + ttl_s));
    if (scope)
        json_object_set_new(c, "scope", json_string(scope));
    char *t = NULL;
    ck_assert_int_eq(tb_jwt_sign(k, c, NULL, &t, NULL), 0);
    json_decref(c);
    tb_jwt_key_free(k);
    return t;
}

/* The services started from here verify tokens of th_secret (their environment is inherited),
 * and they, the test's generated clients and th_http carry a token with every scope. */
static void auth_init(void)
{
    default_token = th_token("contract-tests", TH_ALL_SCOPES, 24 * 3600, NULL);
    setenv("TB_JWT_SECRET", th_secret, 0);
    setenv("TB_JWT_ISSUER", TH_JWT_ISSUER, 0);
    setenv("TB_JWT_AUDIENCE", TH_JWT_AUDIENCE, 0);
    setenv("SERVICE_AUTH_TOKEN", default_token, 0);
    tb_service_token_init("contract-tests", NULL);
}

void th_auth_init(void)
{
    pthread_once(&auth_once, auth_init);
}

void th_start(th_service *svc, const char *const *env)
{
    th_auth_init();
    char bin[512], upper[32], portvar[48], dbpath[300];
    if (!svc->dir[0])
        th_tmpdir(svc->dir, sizeof svc->dir);
    if (!svc->port)
        svc->port = th_free_port();
    snprintf(bin, sizeof bin, "%s/%s_service", TB_BUILD_DIR, svc->name);
    size_t i;
    for (i = 0; svc->name[i] && i + 1 < sizeof upper; i++)
        upper[i] = (char)(svc->name[i] >= 'a' && svc->name[i] <= 'z' ? svc->name[i] - 32 : svc->name[i]);
    upper[i] = '\0';
    snprintf(portvar, sizeof portvar, "%s_PORT=%d", upper, svc->port);
    snprintf(dbpath, sizeof dbpath, "%s/%s.db", svc->dir, svc->name);
    snprintf(svc->log, sizeof svc->log, "%s/%s.log", svc->dir, svc->name);
    snprintf(svc->direct, sizeof svc->direct, "http://127.0.0.1:%d", svc->port);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(svc->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        setenv("TB_VALIDATE_RESPONSES", "1", 0);
        setenv("TB_THREADS", "2", 0);
        putenv(portvar);
        char *dbv = malloc(strlen(upper) + strlen(dbpath) + 8);
        sprintf(dbv, "%s_DB=%s", upper, dbpath);
        putenv(dbv);
        for (size_t k = 0; env && env[k]; k++)
            putenv((char *)env[k]);
        execl(bin, bin, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    svc->pid = pid;
    live_add(pid);
    bool up = false;
    for (int t = 0; t < 200 && !up; t++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            live_del(pid);
            svc->pid = 0;
            ck_abort_msg("%s exited at start (status %d); log: %s", svc->name, st, svc->log);
        }
        up = healthy(svc->direct);
        if (!up)
            sleep_ms(50);
    }
    ck_assert_msg(up, "%s did not answer /health within 10 s; log: %s", svc->name, svc->log);
    snprintf(svc->url, sizeof svc->url, "%s", svc->direct);

    if (th_via_prism() && svc->prism_port != -1) { /* -1: this one never behind Prism */
        char cmd[1024], pidf[300], logf[300];
        svc->prism_port = th_free_port();
        snprintf(pidf, sizeof pidf, "%s/prism.pid", svc->dir);
        snprintf(logf, sizeof logf, "%s/prism.log", svc->dir);
        snprintf(cmd, sizeof cmd,
                 "bash tests/contract/referee/prism.sh start openapi/%s.yaml %s %d %s %s",
                 svc->name, svc->direct, svc->prism_port, pidf, logf);
        ck_assert_msg(system(cmd) == 0, "prism did not start: %s", cmd);
        FILE *f = fopen(pidf, "r");
        ck_assert_ptr_nonnull(f);
        int pp = 0;
        ck_assert_int_eq(fscanf(f, "%d", &pp), 1);
        fclose(f);
        svc->prism_pid = pp;
        live_add(pp);
        snprintf(svc->url, sizeof svc->url, "http://127.0.0.1:%d", svc->prism_port);
    }
}

static void stop_prism(th_service *svc)
{
    if (!svc->prism_pid)
        return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bash tests/contract/referee/prism.sh stop %s/prism.pid", svc->dir);
    if (system(cmd) != 0)
        kill(svc->prism_pid, SIGKILL);
    live_del(svc->prism_pid);
    svc->prism_pid = 0;
}

int th_stop(th_service *svc)
{
    stop_prism(svc);
    if (!svc->pid)
        return -1;
    kill(svc->pid, SIGTERM);
    int st = 0;
    for (int t = 0; t < 300; t++) { /* 15 s */
        if (waitpid(svc->pid, &st, WNOHANG) == svc->pid) {
            live_del(svc->pid);
            svc->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        sleep_ms(50);
    }
    kill(svc->pid, SIGKILL);
    waitpid(svc->pid, &st, 0);
    live_del(svc->pid);
    svc->pid = 0;
    return 255;
}

void th_kill(th_service *svc)
{
    stop_prism(svc);
    if (!svc->pid)
        return;
    kill(svc->pid, SIGKILL);
    int st;
    waitpid(svc->pid, &st, 0);
    live_del(svc->pid);
    svc->pid = 0;
}

bool th_wait_exit(th_service *svc, int timeout_ms, int *status)
{
    for (int t = 0; svc->pid && t <= timeout_ms; t += 50) {
        if (waitpid(svc->pid, status, WNOHANG) == svc->pid) {
            live_del(svc->pid);
            svc->pid = 0;
            return true;
        }
        sleep_ms(50);
    }
    return false;
}

void th_cleanup(th_service *svc)
{
    char cmd[300];
    if (!svc->dir[0] || getenv("TB_KEEP_TMP"))
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", svc->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", svc->dir);
    svc->dir[0] = '\0';
}

static int teardown_failures;

void th_stop_in_teardown(th_service *svc, const char *name)
{
    int st = th_stop(svc);
    if (st != 0) { /* the folder stays: its log says why */
        fprintf(stderr, "%s exited with %d on SIGTERM (log %s)\n", name, st, svc->log);
        teardown_failures++;
        return;
    }
    th_cleanup(svc);
}

int th_teardown_failures(void)
{
    return teardown_failures;
}

/* ---- plain HTTP ---- */

typedef struct sink {
    char *p;
    size_t n;
} sink;

static size_t on_body(char *d, size_t sz, size_t nm, void *u)
{
    sink *s = u;
    size_t n = sz * nm;
    char *p = realloc(s->p, s->n + n + 1);
    if (!p)
        return 0;
    memcpy(p + s->n, d, n);
    s->p = p;
    s->n += n;
    p[s->n] = '\0';
    return n;
}

static size_t on_header(char *d, size_t sz, size_t nm, void *u)
{
    th_resp *r = u;
    size_t n = sz * nm, have = strlen(r->headers);
    if (n >= 5 && strncmp(d, "HTTP/", 5) == 0)
        r->headers[0] = '\0', have = 0; /* a new response (after 100-continue) */
    if (have + n + 1 < sizeof r->headers) {
        memcpy(r->headers + have, d, n);
        r->headers[have + n] = '\0';
    }
    return n;
}

void th_http(th_resp *r, const char *method, const char *url, const char *body,
             const char *content_type, const char *const *headers)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    struct curl_slist *h = NULL;
    char ct[200];
    if (body && !content_type)
        content_type = "application/json";
    if (content_type && *content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        h = curl_slist_append(h, ct);
    } else if (body) {
        h = curl_slist_append(h, "Content-Type:");
    }
    h = curl_slist_append(h, "Expect:");
    bool auth = false;
    for (size_t i = 0; headers && headers[i]; i++) {
        h = curl_slist_append(h, headers[i]);
        auth |= strncasecmp(headers[i], "Authorization:", 14) == 0;
    }
    char bearer[2048];
    th_auth_init();
    if (!auth) { /* "Authorization:" in headers sends none */
        snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", default_token);
        h = curl_slist_append(h, bearer);
    }
    sink s = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    else
        r->status = -(long)rc;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r->body = s.p ? s.p : calloc(1, 1);
    r->len = s.n;
    r->json = r->len ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

bool th_header(const th_resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = r->headers;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(p + len - v);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        if (!eol)
            break;
        p = eol + 2;
    }
    return false;
}

void th_resp_free(th_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* Fails on an sl-violations value that reports a response violation (see harness.h). */
static void check_violations(const char *v)
{
    json_t *arr = json_loads(v, 0, NULL);
    if (!arr) { /* Prism truncates long lists ("Too many violations! ...") */
        ck_assert_msg(strstr(v, "\"response\"") == NULL, "Prism: response violations: %s", v);
        return;
    }
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        json_t *loc = json_array_get(json_object_get(x, "location"), 0);
        const char *sev = json_string_value(json_object_get(x, "severity"));
        const char *msg = json_string_value(json_object_get(x, "message"));
        bool response = json_is_string(loc) && strcmp(json_string_value(loc), "response") == 0;
        bool undeclared = msg && strstr(msg, "Unable to match the returned status code");
        if ((response && sev && strcmp(sev, "Error") == 0) || undeclared) {
            char *dump = json_dumps(x, JSON_COMPACT);
            ck_abort_msg("Prism: the response violates the spec: %s", dump);
        }
    }
    json_decref(arr);
}

void th_assert_no_response_violation(const th_resp *r)
{
    char v[16384];
    if (th_via_prism() && th_header(r, "sl-violations", v, sizeof v))
        check_violations(v);
}

static void prism_after(void *self, tb_ctx *ctx, const tb_client_call *call, int rc,
                        const tb_client_res *res)
{
    (void)self;
    (void)ctx;
    (void)call;
    const char *v = rc == 0 ? tb_client_res_header(res, "sl-violations") : NULL;
    if (v)
        check_violations(v);
}

static const tb_client_hook prism_hook = {"prism-referee", NULL, prism_after, NULL};

tb_client_opts th_client_opts(void)
{
    static tb_client_hook hooks[2];
    th_auth_init();
    tb_client_opts o = TB_CLIENT_OPTS_INIT;
    size_t n = 0;
    if (tb_service_token_hook())
        hooks[n++] = *tb_service_token_hook();
    if (th_via_prism())
        hooks[n++] = prism_hook;
    o.hooks = n ? hooks : NULL;
    o.n_hooks = n;
    return o;
}

void th_assert_error(const th_resp *r, long status, const char *code, const char *path,
                     const char *rule)
{
    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status, r->body);
    json_t *e = json_object_get(r->json, "error");
    ck_assert_msg(json_is_object(e), "no error envelope: %s", r->body);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "message")));
    ck_assert_msg(json_string_length(json_object_get(e, "requestId")) > 0, "no requestId: %s",
                  r->body);
    if (!path)
        return;
    json_t *d = json_object_get(e, "details");
    size_t i;
    json_t *x;
    json_array_foreach(d, i, x) {
        if (strcmp(json_string_value(json_object_get(x, "path")), path) == 0 &&
            strcmp(json_string_value(json_object_get(x, "rule")), rule) == 0)
            return;
    }
    ck_abort_msg("no detail {path %s, rule %s} in %s", path, rule, r->body);
}
