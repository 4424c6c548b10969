/*
 * tablium-dlq: inspect and replay a service's dead-letter queue (<service>.dlq on RabbitMQ).
 *
 *   tablium-dlq list SERVICE [--json]          one line per dead letter: position, event id,
 *                                              type, attempts, when, why (--json: also the
 *                                              body, as "bodyBase64" when it is not UTF-8)
 *   tablium-dlq replay SERVICE --all           every dead letter back to SERVICE's queue
 *   tablium-dlq replay SERVICE ID [ID...]      only these event ids (the others stay): the
 *                                              AMQP message_id, else the envelope's id
 *
 * Options: --url URL (default $TB_AMQP_URL), --exchange NAME (default tablium.events).
 * Listing does not consume: the messages stay in the DLQ. A replayed message goes to the
 * service's own queue only (not to other subscribers of its type), with its attempt count reset,
 * and leaves the DLQ only once the broker confirmed the copy. Exit status: 0, 1 on an error,
 * 2 on bad usage, 3 when some requested ids were not found.
 */
#include "tb_amqp.h"
#include "tablium/buf.h"
#include "tablium/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: tablium-dlq list SERVICE [--json] [--url URL]\n"
                    "       tablium-dlq replay SERVICE (--all | ID...) [--url URL]\n"
                    "URL defaults to $TB_AMQP_URL.\n");
    return 2;
}

typedef struct pick_set {
    char **ids;
    size_t n;
    bool *found;
    bool all;
} pick_set;

/* A JSON string of s, or null when s is NULL or not UTF-8 (a dead letter may hold anything). */
static json_t *text_or_null(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

/* The event id of a dead letter: its AMQP message_id (our publishers set it), else the id of
 * the envelope in its body (a producer that does not set message_id); NULL when neither. */
static const char *event_id(const tb_amqp_delivery *m, char out[80])
{
    if (m->message_id)
        return m->message_id;
    json_t *j = json_loadb(m->body, m->len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    bool ok = id && strlen(id) < 80;
    if (ok)
        strcpy(out, id);
    json_decref(j);
    return ok ? out : NULL;
}

static void print_dead(void *user, const tb_amqp_dead *d)
{
    bool json = *(bool *)user;
    const tb_amqp_delivery *m = d->msg;
    char idbuf[80];
    const char *eid = event_id(m, idbuf);
    if (json) {
        /* every dead letter gets its line, whatever its bytes: a body that is not UTF-8 (the
         * poison a DLQ is for) as base64 */
        json_t *o = json_pack("{s:I, s:o, s:o, s:o, s:i, s:o, s:o}", "position",
                              (json_int_t)d->index, "id", text_or_null(eid),
                              "type",
                              text_or_null(m->type), "version", text_or_null(m->version),
                              "attempt", m->attempt, "deadAt", text_or_null(d->dead_at),
                              "reason", text_or_null(d->reason));
        json_t *body = o ? json_stringn((const char *)m->body, m->len) : NULL;
        if (o && body) {
            json_object_set_new(o, "body", body);
        } else if (o) {
            tb_buf b = TB_BUF_INIT;
            tb_buf_base64(&b, m->body, m->len, false);
            json_object_set_new(o, "bodyBase64",
                                b.oom ? json_null() : json_stringn(b.data ? b.data : "", b.len));
            tb_buf_deinit(&b);
        }
        if (o) {
            char *s = json_dumps(o, JSON_COMPACT);
            if (s)
                puts(s);
            free(s);
            json_decref(o);
        }
        return;
    }
    printf("%llu\t%s\t%s\tattempt %d\t%s\t%s\n", (unsigned long long)d->index,
           eid ? eid : "-", m->type ? m->type : "-", m->attempt,
           d->dead_at ? d->dead_at : "-", d->reason ? d->reason : "-");
}

static bool pick(void *user, const tb_amqp_dead *d)
{
    pick_set *p = user;
    if (p->all)
        return true;
    char idbuf[80];
    const char *id = event_id(d->msg, idbuf);
    for (size_t i = 0; i < p->n; i++)
        if (id && strcmp(p->ids[i], id) == 0) {
            p->found[i] = true;
            return true;
        }
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *cmd = argv[1], *service = argv[2];
    const char *url = getenv("TB_AMQP_URL"), *exchange = NULL;
    bool json = false;
    pick_set ps = {0};
    ps.ids = calloc((size_t)argc, sizeof *ps.ids);
    ps.found = calloc((size_t)argc, sizeof *ps.found);
    if (!ps.ids || !ps.found)
        return 1;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strcmp(argv[i], "--exchange") == 0 && i + 1 < argc)
            exchange = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--all") == 0)
            ps.all = true;
        else if (argv[i][0] == '-')
            return usage();
        else
            ps.ids[ps.n++] = argv[i];
    }
    if (!url || !*url) {
        fprintf(stderr, "tablium-dlq: no broker: pass --url or set TB_AMQP_URL\n");
        return 2;
    }
    tb_amqp_opts o = {.url = url, .exchange = exchange};
    tb_error err = TB_ERROR_INIT;
    int status = 0;
    if (strcmp(cmd, "list") == 0) {
        if (ps.n || ps.all)
            return usage();
        long n = tb_amqp_dlq_list(&o, service, print_dead, &json, &err);
        if (n < 0) {
            fprintf(stderr, "tablium-dlq: %s\n", err.message);
            status = 1;
        } else if (!json) {
            fprintf(stderr, "%ld dead letter(s) in %s.dlq\n", n, service);
        }
    } else if (strcmp(cmd, "replay") == 0) {
        if (!ps.all && ps.n == 0)
            return usage();
        long n = tb_amqp_dlq_replay(&o, service, pick, &ps, &err);
        if (n < 0) {
            fprintf(stderr, "tablium-dlq: %s\n", err.message);
            status = 1;
        } else {
            printf("replayed %ld message(s) to %s\n", n, service);
            for (size_t i = 0; i < ps.n; i++)
                if (!ps.found[i]) {
                    fprintf(stderr, "tablium-dlq: %s is not in %s.dlq\n", ps.ids[i], service);
                    status = 3;
                }
        }
    } else {
        status = usage();
    }
    tb_error_deinit(&err);
    free(ps.ids);
    free(ps.found);
    return status;
}
