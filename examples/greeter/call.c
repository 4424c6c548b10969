/* Calls the greeter through its generated client: greeter_call BASE_URL */
#include "greeter/greeter.h"

#include "tablium/ctx.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: greeter_call BASE_URL\n");
        return 2;
    }
    tb_error err = TB_ERROR_INIT;
    greeter_client *c = greeter_client_new(argv[1], NULL, &err);
    if (!c) {
        fprintf(stderr, "client: %s\n", err.message);
        return 1;
    }
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "greeter-call-1");
    int status = 0;

    greeter_get_greeting_req g = {.name = "Ada", .has_lang = true,
                                  .lang = GREETER_GET_GREETING_LANG_FR};
    greeter_get_greeting_resp gr;
    int rc = greeter_get_greeting_call(c, &ctx, &g, &gr, &err);
    if (rc || gr.status != 200) {
        fprintf(stderr, "getGreeting: rc %d status %d: %s\n", rc, gr.status, err.message);
        status = 1;
    } else {
        printf("getGreeting: %s (%s)\n", gr.s200.message, gr.s200.has_lang ? gr.s200.lang : "-");
    }

    greeter_create_greeting_req p;
    memset(&p, 0, sizeof p);
    p.body.kind = GREETER_SALUTATION_FORMAL;
    p.body.formal.kind = "formal";
    p.body.formal.title = GREETER_FORMAL_TITLE_DR;
    p.body.formal.name = "Grace";
    greeter_create_greeting_resp pr;
    rc = greeter_create_greeting_call(c, &ctx, &p, &pr, &err);
    if (rc || pr.status != 201) {
        fprintf(stderr, "createGreeting: rc %d status %d: %s\n", rc, pr.status, err.message);
        status = 1;
    } else {
        printf("createGreeting: %s\n", pr.s201.message);
    }

    p.body.kind = GREETER_SALUTATION_CASUAL;
    p.body.casual.kind = "casual";
    p.body.casual.name = "Linus";
    rc = greeter_create_greeting_call(c, &ctx, &p, &pr, &err);
    if (rc || pr.status != 201) {
        fprintf(stderr, "createGreeting: rc %d status %d: %s\n", rc, pr.status, err.message);
        status = 1;
    } else {
        printf("createGreeting: %s\n", pr.s201.message);
    }

    tb_error_deinit(&err);
    tb_arena_free(a);
    greeter_client_free(c);
    return status;
}
