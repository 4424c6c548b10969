/*
 * tablium platform demo (grows with every capability). Today: the schema compiler's output at
 * work on the platform's events: typed construction, envelope, serialization, parsing back, and
 * what a consumer sees when a foreign producer sends a bad event.
 */
#include "events/events.h"
#include "tablium/json.h"
#include "tablium/validate.h"

#include <stdio.h>
#include <string.h>

static void print_errors(const char *what, const tb_error *e)
{
    printf("  %s -> %s (%s)\n", what, tb_err_name(e->code), e->message);
    for (size_t i = 0; i < e->n_details; i++)
        printf("    {\"path\": \"%s\", \"rule\": \"%s\", \"message\": \"%s\"}\n",
               e->details[i].path, e->details[i].rule, e->details[i].message);
}

int main(void)
{
    tb_arena *a = tb_arena_new(0);
    tb_error err = TB_ERROR_INIT;
    tb_buf out = TB_BUF_INIT;
    int rc = 1;

    printf("== 1. Auth service builds a typed user.registered 1.0 event\n");
    user_registered_v1 ev = {
        .user_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        .email = "ada@example.com",
        .username = "ada",
        .has_display_name = true,
        .display_name = "Ada Lovelace",
        .registered_at = "2026-11-24T10:00:00Z",
    };
    json_t *dj = user_registered_v1_to_json(&ev);
    if (!dj || user_registered_v1_validate(dj, TB_VALIDATE_FORMATS, &err)) {
        print_errors("own event invalid", &err);
        goto fail;
    }
    event_envelope env = {
        .id = "0b6f3b7e-93a1-4f1e-9a55-3e0a4c1f2b11",
        .type = "user.registered",
        .version = "1.0",
        .timestamp = "2026-11-24T10:00:00.123Z",
        .producer = "auth-service",
        .data = dj,
        .metadata = {.correlation_id = "req-42",
                     .has_trace_id = true,
                     .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"},
    };
    event_envelope_serialize(&env, &out);
    json_decref(dj);
    printf("  wire: %s\n", out.data);

    printf("== 2. User service parses it: envelope, then data by type and version\n");
    event_envelope got;
    if (event_envelope_parse(out.data, out.len, a, &got, &err)) {
        print_errors("envelope", &err);
        goto fail;
    }
    user_registered_v1 u;
    if (user_registered_v1_from_json(got.data, a, &u, &err)) {
        print_errors("data", &err);
        goto fail;
    }
    printf("  %s %s from %s: user %s <%s> \"%s\" (correlation %s)\n", got.type, got.version,
           got.producer, u.user_id, u.email, u.has_display_name ? u.display_name : "",
           got.metadata.correlation_id);

    printf("== 3. A foreign producer sends bad events; each is refused with paths and rules\n");
    const char *bad[] = {
        "{\"userId\": \"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\n \"email\": ,}",
        "{\"userId\": \"not-a-uuid\", \"email\": \"ada@example.com\", \"username\": \"a\","
        " \"registeredAt\": \"2026-11-24T10:00:00Z\", \"isAdmin\": true}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        user_registered_v1 x;
        int r = user_registered_v1_parse(bad[i], strlen(bad[i]), a, &x, &err);
        if (r == 0)
            goto fail;
        print_errors(i == 0 ? "malformed" : "invalid", &err);
    }
    printf("== demo: ok\n");
    rc = 0;
fail:
    tb_buf_deinit(&out);
    tb_error_deinit(&err);
    tb_arena_free(a);
    return rc;
}
