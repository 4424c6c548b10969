/*
 * Contract-test harness: starts real service processes (build/<name>_service) on free loopback
 * ports with their database in a temporary folder, optionally behind a Stoplight Prism proxy
 * (TB_CONTRACT_PRISM=1), and talks plain HTTP to them with libcurl. Whatever a test started
 * and did not stop is killed when the test program exits.
 */
#ifndef TB_TEST_HARNESS_H
#define TB_TEST_HARNESS_H

#include "tablium/client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct th_service {
    const char *name;  /* "wallet" */
    pid_t pid;
    int port;          /* the service's own port */
    char url[64];      /* what tests talk to: the service, or Prism in front of it */
    char direct[64];   /* the service itself */
    char dir[256];     /* temporary data folder */
    pid_t prism_pid;
    int prism_port;
    char log[300];     /* the service's stderr */
} th_service;

/* Tokens: every service started by th_start verifies HS256 tokens of the harness's secret
 * (TB_JWT_SECRET, issuer and audience below, inherited), and uses one with every scope as its
 * service token (SERVICE_AUTH_TOKEN); th_http and the test's generated clients send it too. */
#define TH_JWT_ISSUER "tablium-auth"
#define TH_JWT_AUDIENCE "tablium"
#define TH_ALL_SCOPES "wallet.read wallet.write user.read user.write game.read game.write"
/** Sets the environment up (once; th_start, th_http and th_client_opts call it). */
void th_auth_init(void);
/** A token for sub with scope (NULL: none), valid ttl_s from now (negative: expired), signed
 *  with secret (NULL: the harness's). malloc'd. */
char *th_token(const char *sub, const char *scope, long ttl_s, const char *secret);

/** A free TCP port on 127.0.0.1. */
int th_free_port(void);
/** Makes a fresh temporary folder into out (mkdtemp). */
void th_tmpdir(char *out, size_t cap);

/** Starts the service with extra "NAME=value" environment entries (NULL-terminated, may be NULL),
 *  (never behind Prism when svc->prism_port is -1)
 *  keeping svc->dir (created when empty) and svc->port (chosen when 0). Waits until GET /health
 *  answers 200 (10 s at most; aborts the test otherwise). Starts Prism too when
 *  TB_CONTRACT_PRISM=1 and svc->prism_port is -1 is not set. */
void th_start(th_service *svc, const char *const *env);
/** SIGTERM, waits; returns the exit status (or 128 + signal). Stops Prism too. */
int th_stop(th_service *svc);
/** SIGKILL, waits (no cleanup by the service). */
void th_kill(th_service *svc);
/** Waits (timeout_ms at most) for the service to exit by itself; true, with its wait status in
 *  *status, when it did. */
bool th_wait_exit(th_service *svc, int timeout_ms, int *status);
/** Removes the data folder. */
void th_cleanup(th_service *svc);
/** A process the test started itself (not through th_start): killed when the test program
 *  exits, as th_start's are, so a failed assertion leaves it no more than a service; untrack
 *  it once it is stopped. */
void th_track(pid_t pid);
void th_untrack(pid_t pid);
/** For a fixture's teardown, where Check (CK_FORK=no) ignores a failed assertion: stops svc
 *  (named name in the message); an exit status other than 0 is printed with the log's path,
 *  the folder is kept and th_teardown_failures() counts it; else the folder is removed. */
void th_stop_in_teardown(th_service *svc, const char *name);
/** Services that th_stop_in_teardown saw fail; main() fails the run when not 0. */
int th_teardown_failures(void);
/** True when the tests run behind Prism. */
bool th_via_prism(void);

/** One plain HTTP exchange. */
typedef struct th_resp {
    long status;
    char *body;          /* malloc'd, NUL-terminated */
    size_t len;
    char headers[16384]; /* raw response header block */
    json_t *json;        /* parsed body or NULL */
} th_resp;

/** method, url (absolute), body (may be NULL), content type (NULL: application/json when a
 *  body is given; "" for none), extra header lines (NULL-terminated, may be NULL). */
void th_http(th_resp *r, const char *method, const char *url, const char *body,
             const char *content_type, const char *const *headers);
/** The value of a response header (case-insensitive) into out; false when absent. */
bool th_header(const th_resp *r, const char *name, char *out, size_t cap);
void th_resp_free(th_resp *r);

/** Fails the test when Prism reported a violation of the response (an sl-violations entry at a
 *  "response" location with severity Error, or a response status the spec does not declare).
 *  No-op when not behind Prism. */
void th_assert_no_response_violation(const th_resp *r);

/** Client options for generated clients in contract tests: behind Prism, a hook fails the test
 *  on any response violation Prism reports. */
tb_client_opts th_client_opts(void);

/** Asserts r is the error envelope with this code, a requestId, and (when path is not NULL) a
 *  detail with this path and rule. */
void th_assert_error(const th_resp *r, long status, const char *code, const char *path,
                     const char *rule);

#endif
