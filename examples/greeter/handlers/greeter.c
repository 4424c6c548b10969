/* The greeter's handlers: all the code its authors write. */
#include "greeter/greeter.h"

#include <stdio.h>

int greeter_service_init(void **state, tb_error *err)
{
    (void)err;
    *state = NULL;
    return 0;
}

void greeter_service_fini(void *state)
{
    (void)state;
}

int greeter_get_greeting(tb_ctx *ctx, const greeter_get_greeting_req *req,
                         greeter_get_greeting_resp *resp)
{
    const char *hello = req->lang == GREETER_GET_GREETING_LANG_FR ? "Bonjour" : "Hello";
    resp->status = 200;
    resp->s200.message = tb_arena_printf(ctx->arena, "%s, %s!", hello, req->name);
    resp->s200.has_lang = true;
    resp->s200.lang = (char *)greeter_get_greeting_lang_to_string(req->lang);
    return 0;
}

int greeter_create_greeting(tb_ctx *ctx, const greeter_create_greeting_req *req,
                            greeter_create_greeting_resp *resp)
{
    const greeter_salutation *s = &req->body;
    resp->status = 201;
    if (s->kind == GREETER_SALUTATION_FORMAL)
        resp->s201.message = tb_arena_printf(ctx->arena, "Good day, %s %s.",
                                             greeter_formal_title_to_string(s->formal.title),
                                             s->formal.name);
    else
        resp->s201.message = tb_arena_printf(ctx->arena, "Hi %s!", s->casual.name);
    return 0;
}
