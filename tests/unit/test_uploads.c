/* multipart/form-data (tests/specs/uploads.yaml, generated at build time), over real HTTP:
 *   the generated client uploads typed fields, a repeated field, a JSON part and files with NULs,
 *   CR LF and a fake delimiter inside, and the server hands the handler exactly those bytes with
 *   their part types;
 *   libcurl's own multipart writer (curl_mime, an independent implementation) is read the same;
 *   a field of the wrong type, a missing file, a part that is not JSON, a body without its close
 *   delimiter and the wrong media type are 400s naming /body/<field> (or 415).
 * And parameters that are not plain scalars (GET /lookup/{key}): `content: application/json` in
 * the path, the query and a header (an object, a union), an object cookie (form, k,v,k,v), a
 * deepObject map (labels[k]=v): both ways, and their errors. */
#include "uploads/uploads.h"

#include "tablium/ctx.h"
#include "tablium/http.h"
#include "tablium/json.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int uploads_service_init(void **state, tb_error *err)
{
    (void)err;
    *state = NULL;
    return 0;
}

void uploads_service_fini(void *state)
{
    (void)state;
}

/* echoes what arrived: sizes, types and the file's first bytes */
int uploads_upload(tb_ctx *ctx, const uploads_upload_req *req, uploads_upload_resp *resp)
{
    const uploads_upload_body *b = &req->body;
    uploads_receipt *r = &resp->s201;
    resp->status = 201;
    r->title = b->title;
    r->has_count = b->has_count;
    r->count = b->count;
    r->has_tags = b->has_tags;
    r->tags = b->tags;
    r->n_tags = b->n_tags;
    if (b->has_meta) {
        r->has_author = true;
        r->author = b->meta.author;
        r->has_year = b->meta.has_year;
        r->year = b->meta.year;
    }
    r->file_size = (int64_t)b->file.len;
    r->file_type = (char *)(b->file.type ? b->file.type : "");
    r->n_file_head = b->file.len < 8 ? b->file.len : 8;
    r->file_head = tb_arena_calloc(ctx->arena, 8, sizeof(int64_t));
    for (size_t i = 0; i < r->n_file_head; i++)
        r->file_head[i] = (unsigned char)b->file.data[i];
    if (b->has_thumbs) {
        r->has_thumbs = true;
        r->n_thumbs = b->n_thumbs;
        r->thumbs = tb_arena_calloc(ctx->arena, b->n_thumbs + 1, sizeof(char *));
        for (size_t i = 0; i < b->n_thumbs; i++)
            r->thumbs[i] = tb_arena_printf(ctx->arena, "%zu %s", b->thumbs[i].len,
                                           b->thumbs[i].type ? b->thumbs[i].type : "-");
    }
    return 0;
}

/* echoes what arrived as one JSON object */
int uploads_lookup(tb_ctx *ctx, const uploads_lookup_req *req, uploads_lookup_resp *resp)
{
    json_t *o = json_object();
    json_object_set_new(o, "key", uploads_key_to_json(&req->key));
    if (req->has_filter)
        json_object_set_new(o, "filter", uploads_lookup_filter_to_json(&req->filter));
    if (req->has_labels)
        json_object_set_new(o, "labels", uploads_lookup_labels_to_json(&req->labels));
    if (req->has_x_shape)
        json_object_set_new(o, "shape", uploads_lookup_x_shape_to_json(&req->x_shape));
    if (req->has_prefs)
        json_object_set_new(o, "prefs", uploads_lookup_prefs_to_json(&req->prefs));
    tb_arena_hold_json(ctx->arena, o);
    json_decref(o);
    resp->status = 200;
    resp->s200 = o;
    return 0;
}

int uploads_create_note(tb_ctx *ctx, const uploads_create_note_req *req,
                        uploads_create_note_resp *resp)
{
    (void)ctx;
    resp->status = 201;
    resp->s201 = req->body;
    return 0;
}

int uploads_get_note(tb_ctx *ctx, const uploads_get_note_req *req, uploads_get_note_resp *resp)
{
    (void)ctx;
    resp->status = 200;
    resp->s200.title = "hello";
    resp->s200.has_stars = true;
    resp->s200.stars = req->id > 5 ? 5 : req->id;
    return 0;
}

int uploads_get_note_image(tb_ctx *ctx, const uploads_get_note_image_req *req,
                           uploads_get_note_image_resp *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
    resp->s200.data = "IMG";
    resp->s200.len = 3;
    resp->s200.type = NULL; /* the one the client's Accept prefers */
    return 0;
}

static tb_server *srv;
static uploads_client *cl;
static char base[128];
static tb_arena *A;
static tb_ctx ctx;

static void setup(void)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.host = "127.0.0.1";
    srv = tb_server_new(&uploads_api, &o, NULL);
    ck_assert_ptr_nonnull(srv);
    ck_assert_int_eq(tb_server_start(srv, NULL), 0);
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)tb_server_port(srv));
    tb_error err = TB_ERROR_INIT;
    cl = uploads_client_new(base, NULL, &err);
    ck_assert_msg(cl != NULL, "%s", err.message);
    A = tb_arena_new(0);
    tb_ctx_init(&ctx, A, "rid-uploads");
}

static void teardown(void)
{
    tb_arena_free(A);
    uploads_client_free(cl);
    tb_server_stop(srv);
    tb_server_free(srv);
}

static const char FILE_BYTES[] = "\x89PNG\0\r\n--tablium-x\r\n\xff\xfe end";
#define FILE_LEN (sizeof FILE_BYTES - 1)

START_TEST(the_generated_client_uploads_fields_json_and_files)
{
    char *tags[] = {"red", "blue"};
    tb_bytes thumbs[] = {{"\0\0\0", 3, "image/gif"}, {"abcd", 4, NULL}};
    uploads_upload_req req;
    memset(&req, 0, sizeof req);
    req.body.title = "Sunset \xc3\xa9t\xc3\xa9 \"quoted\"";
    req.body.has_count = true;
    req.body.count = 0;
    req.body.has_tags = true;
    req.body.tags = tags;
    req.body.n_tags = 2;
    req.body.has_meta = true;
    req.body.meta.author = "Ada";
    req.body.meta.has_year = true;
    req.body.meta.year = 1843;
    req.body.file.data = FILE_BYTES;
    req.body.file.len = FILE_LEN;
    req.body.has_thumbs = true;
    req.body.thumbs = thumbs;
    req.body.n_thumbs = 2;
    uploads_upload_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(uploads_upload_call(cl, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 201);
    uploads_receipt *r = &out.s201;
    ck_assert_str_eq(r->title, "Sunset \xc3\xa9t\xc3\xa9 \"quoted\"");
    ck_assert(r->has_count && r->count == 0); /* 0 is sent, not dropped */
    ck_assert_uint_eq(r->n_tags, 2);
    ck_assert_str_eq(r->tags[1], "blue");
    ck_assert_str_eq(r->author, "Ada");
    ck_assert_int_eq(r->year, 1843);
    ck_assert_int_eq(r->file_size, (int64_t)FILE_LEN);
    ck_assert_str_eq(r->file_type, "image/png"); /* the encoding's contentType */
    ck_assert_int_eq(r->file_head[0], 0x89);
    ck_assert_int_eq(r->file_head[4], 0); /* a NUL, kept */
    ck_assert_uint_eq(r->n_thumbs, 2);
    ck_assert_str_eq(r->thumbs[0], "3 image/gif");
    ck_assert_str_eq(r->thumbs[1], "4 application/octet-stream");
    tb_error_deinit(&err);
}
END_TEST

/* A multipart request as libcurl writes it; the answer's status and body. */
static long curl_upload(bool with_file, const char *count, const char *meta, char *out, size_t cap)
{
    CURL *c = curl_easy_init();
    curl_mime *m = curl_mime_init(c);
    curl_mimepart *p = curl_mime_addpart(m);
    curl_mime_name(p, "title");
    curl_mime_data(p, "from curl", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(m);
    curl_mime_name(p, "tags");
    curl_mime_data(p, "green", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(m);
    curl_mime_name(p, "tags");
    curl_mime_data(p, "gold", CURL_ZERO_TERMINATED);
    if (count) {
        p = curl_mime_addpart(m);
        curl_mime_name(p, "count");
        curl_mime_data(p, count, CURL_ZERO_TERMINATED);
    }
    if (meta) {
        p = curl_mime_addpart(m);
        curl_mime_name(p, "meta");
        curl_mime_data(p, meta, CURL_ZERO_TERMINATED);
        curl_mime_type(p, "application/json");
    }
    if (with_file) {
        p = curl_mime_addpart(m);
        curl_mime_name(p, "file");
        curl_mime_data(p, FILE_BYTES, FILE_LEN);
        curl_mime_filename(p, "photo.jpg");
        curl_mime_type(p, "image/jpeg");
    }
    char url[256];
    snprintf(url, sizeof url, "%s/uploads", base);
    memset(out, 0, cap);
    FILE *f = fmemopen(out, cap - 1, "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, m);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(f);
    curl_mime_free(m);
    curl_easy_cleanup(c);
    return status;
}

START_TEST(libcurl_multipart_is_read_the_same)
{
    char out[4096];
    long st = curl_upload(true, "12", "{\"author\":\"Grace\"}", out, sizeof out);
    ck_assert_int_eq(st, 201);
    ck_assert_msg(strstr(out, "\"title\":\"from curl\"") && strstr(out, "\"count\":12") &&
                      strstr(out, "\"tags\":[\"green\",\"gold\"]") &&
                      strstr(out, "\"author\":\"Grace\"") &&
                      strstr(out, "\"file_type\":\"image/jpeg\"") &&
                      strstr(out, "\"file_head\":[137,80,78,71,0,13,10,45]"),
                  "%s", out);
    char size[32];
    snprintf(size, sizeof size, "\"file_size\":%zu", FILE_LEN);
    ck_assert_msg(strstr(out, size), "%s", out);
}
END_TEST

START_TEST(bad_parts_name_their_field)
{
    char out[4096];
    ck_assert_int_eq(curl_upload(true, "many", NULL, out, sizeof out), 400);
    ck_assert_msg(strstr(out, "\"path\":\"/body/count\"") && strstr(out, "\"rule\":\"type\""), "%s",
                  out);
    ck_assert_int_eq(curl_upload(false, NULL, NULL, out, sizeof out), 400);
    ck_assert_msg(strstr(out, "\"path\":\"/body/file\"") && strstr(out, "\"rule\":\"required\""),
                  "%s", out);
    ck_assert_int_eq(curl_upload(true, NULL, "{not json", out, sizeof out), 400);
    ck_assert_msg(strstr(out, "\"path\":\"/body/meta\"") && strstr(out, "\"rule\":\"json\""), "%s",
                  out);
    ck_assert_int_eq(curl_upload(true, NULL, "{\"year\":1}", out, sizeof out), 400);
    ck_assert_msg(strstr(out, "\"path\":\"/body/meta/author\""), "%s", out);
}
END_TEST

static long raw_post(const char *ct, const char *body, size_t len, char *out, size_t cap)
{
    CURL *c = curl_easy_init();
    char url[256], line[160];
    snprintf(url, sizeof url, "%s/uploads", base);
    snprintf(line, sizeof line, "Content-Type: %s", ct);
    struct curl_slist *h = curl_slist_append(NULL, line);
    memset(out, 0, cap);
    FILE *f = fmemopen(out, cap - 1, "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(f);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

START_TEST(malformed_multipart_and_wrong_media_type)
{
    char out[4096];
    const char *cut = "--b1\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n--b1\r\n"
                      "Content-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nabc";
    ck_assert_int_eq(raw_post("multipart/form-data; boundary=b1", cut, strlen(cut), out, sizeof out),
                     400);
    ck_assert_msg(strstr(out, "\"rule\":\"multipart\"") && strstr(out, "close delimiter"), "%s", out);
    const char *ok = "preamble\r\n--b1\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n"
                     "--b1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n"
                     "\r\nabc\r\n--b1--\r\nepilogue";
    ck_assert_int_eq(raw_post("multipart/form-data; boundary=\"b1\"", ok, strlen(ok), out, sizeof out),
                     201);
    ck_assert_msg(strstr(out, "\"file_size\":3") && strstr(out, "\"file_type\":\"\""), "%s", out);
    ck_assert_int_eq(raw_post("multipart/form-data", ok, strlen(ok), out, sizeof out), 400);
    ck_assert_msg(strstr(out, "boundary"), "%s", out);
    const char *nodisp = "--b1\r\nContent-Type: text/plain\r\n\r\nx\r\n--b1--\r\n";
    ck_assert_int_eq(raw_post("multipart/form-data; boundary=b1", nodisp, strlen(nodisp), out,
                              sizeof out),
                     400);
    ck_assert_int_eq(raw_post("application/json", "{}", 2, out, sizeof out), 415);
    /* an unknown field: the schema is closed */
    const char *extra = "--b1\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n"
                        "--b1\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n"
                        "--b1\r\nContent-Disposition: form-data; name=\"evil\"\r\n\r\n1\r\n--b1--\r\n";
    ck_assert_int_eq(raw_post("multipart/form-data; boundary=b1", extra, strlen(extra), out,
                              sizeof out),
                     400);
    ck_assert_msg(strstr(out, "\"path\":\"/body/evil\""), "%s", out);
    /* a part name that is not UTF-8: 400 (it was a 500: the JSON object refused the key) */
    const char *latin1 = "--b1\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n"
                         "--b1\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n"
                         "--b1\r\nContent-Disposition: form-data; name=\"\xe9\"\r\n\r\n1\r\n--b1--\r\n";
    ck_assert_int_eq(raw_post("multipart/form-data; boundary=b1", latin1, strlen(latin1), out,
                              sizeof out),
                     400);
    ck_assert_msg(strstr(out, "\"rule\":\"multipart\"") && strstr(out, "not UTF-8"), "%s", out);
    /* a text part that is not UTF-8: 400 naming it; the file beside it holds bytes, any bytes */
    const char *text = "--b1\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n\xe9t\xe9\r\n"
                       "--b1\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n\xff\r\n"
                       "--b1--\r\n";
    ck_assert_int_eq(raw_post("multipart/form-data; boundary=b1", text, strlen(text), out,
                              sizeof out),
                     400);
    ck_assert_msg(strstr(out, "\"path\":\"/body/title\",\"rule\":\"encoding\""), "%s", out);
    const char *file = "--b1\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n"
                       "--b1\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n\xff\xfe\r\n"
                       "--b1--\r\n";
    ck_assert_int_eq(raw_post("multipart/form-data; boundary=b1", file, strlen(file), out,
                              sizeof out),
                     201);
    ck_assert_msg(strstr(out, "\"file_size\":2"), "%s", out);
}
END_TEST

START_TEST(content_cookie_and_deep_object_parameters_both_ways)
{
    uploads_lookup_req req;
    memset(&req, 0, sizeof req);
    req.key.id = 42;
    req.key.region = "eu/west?&";
    req.has_filter = true;
    req.filter.min = 3;
    char *tags[] = {"a b", "c"};
    req.filter.has_tags = true;
    req.filter.tags = tags;
    req.filter.n_tags = 2;
    uploads_lookup_labels_entry labels[] = {{"x y", 1}, {"z[1]", 100}};
    req.has_labels = true;
    req.labels.items = labels;
    req.labels.n = 2;
    int64_t dims[] = {2, 3};
    req.has_x_shape = true;
    req.x_shape.kind = UPLOADS_LOOKUP_X_SHAPE_ARRAY;
    req.x_shape.array = dims;
    req.x_shape.n_array = 2;
    req.has_prefs = true;
    req.prefs.has_theme = true;
    req.prefs.theme = UPLOADS_LOOKUP_PREFS_THEME_DARK;
    req.prefs.has_size = true;
    req.prefs.size = 12;
    uploads_lookup_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(uploads_lookup_call(cl, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 200);
    json_t *want = json_loads("{\"key\":{\"id\":42,\"region\":\"eu/west?&\"},"
                              "\"filter\":{\"min\":3,\"tags\":[\"a b\",\"c\"]},"
                              "\"labels\":{\"x y\":1,\"z[1]\":100},\"shape\":[2,3],"
                              "\"prefs\":{\"theme\":\"dark\",\"size\":12}}",
                              0, NULL);
    char *got = json_dumps(out.s200, JSON_SORT_KEYS);
    ck_assert_msg(json_equal(want, out.s200), "%s", got);
    free(got);
    json_decref(want);
    /* the union's other branch, and nothing optional */
    memset(&req, 0, sizeof req);
    req.key.id = 1;
    req.key.region = "r";
    req.has_x_shape = true;
    req.x_shape.kind = UPLOADS_LOOKUP_X_SHAPE_INTEGER;
    req.x_shape.integer = 7;
    ck_assert_msg(uploads_lookup_call(cl, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(json_integer_value(json_object_get(out.s200, "shape")), 7);
    ck_assert_ptr_null(json_object_get(out.s200, "labels"));
    tb_error_deinit(&err);
}
END_TEST

static long raw_get(const char *path_query, const char *header, char *out, size_t cap)
{
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path_query);
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
    memset(out, 0, cap);
    FILE *f = fmemopen(out, cap - 1, "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(f);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

START_TEST(parameters_as_other_clients_write_them_and_their_errors)
{
    char out[4096];
    /* as another client writes them */
    long st = raw_get("/lookup/%7B%22id%22%3A5%2C%22region%22%3A%22n%22%7D?labels%5Ba%5D=4"
                      "&labels%5Bb%5D=5&filter=%7B%22min%22%3A0%7D",
                      "Cookie: prefs=theme,light,size,3", out, sizeof out);
    ck_assert_int_eq(st, 200);
    ck_assert_msg(strstr(out, "\"labels\":{\"a\":4,\"b\":5}") &&
                      strstr(out, "\"prefs\":{\"theme\":\"light\",\"size\":3}") &&
                      strstr(out, "\"key\":{\"id\":5,\"region\":\"n\"}") &&
                      strstr(out, "\"filter\":{\"min\":0}"),
                  "%s", out);
    /* not JSON; JSON of the wrong shape; a map value over its maximum; a cookie member */
    st = raw_get("/lookup/%7Bnope", NULL, out, sizeof out);
    ck_assert_int_eq(st, 400);
    ck_assert_msg(strstr(out, "\"path\":\"/path/key\"") && strstr(out, "\"rule\":\"json\""), "%s",
                  out);
    st = raw_get("/lookup/%7B%22id%22%3A1%2C%22region%22%3A%22n%22%7D?filter=%7B%22min%22%3A-1%7D"
                 "&labels%5Bq%5D=101",
                 "X-Shape: \"wide\"", out, sizeof out);
    ck_assert_int_eq(st, 400);
    ck_assert_msg(strstr(out, "\"path\":\"/query/filter/min\"") &&
                      strstr(out, "\"path\":\"/query/labels/q\"") &&
                      strstr(out, "\"path\":\"/header/X-Shape\""),
                  "%s", out);
    st = raw_get("/lookup/%7B%22id%22%3A1%2C%22region%22%3A%22n%22%7D", "Cookie: prefs=theme,blue",
                 out, sizeof out);
    ck_assert_int_eq(st, 400);
    ck_assert_msg(strstr(out, "\"path\":\"/cookie/prefs/theme\""), "%s", out);
}
END_TEST

static long post_to(const char *path, const char *ct, const char *body, char *out, size_t cap)
{
    CURL *c = curl_easy_init();
    char url[256], line[160];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(line, sizeof line, "Content-Type: %s", ct);
    struct curl_slist *h = curl_slist_append(NULL, line);
    memset(out, 0, cap);
    FILE *f = fmemopen(out, cap - 1, "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(f);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

START_TEST(one_body_in_several_media_types)
{
    char out[2048];
    /* the same Note as JSON, as a form and as multipart (libcurl's writer) */
    ck_assert_int_eq(post_to("/notes", "application/json", "{\"title\":\"a b\",\"stars\":4}", out,
                             sizeof out),
                     201);
    ck_assert_str_eq(out, "{\"title\":\"a b\",\"stars\":4}");
    ck_assert_int_eq(post_to("/notes", "application/x-www-form-urlencoded", "title=a+b&stars=4", out,
                             sizeof out),
                     201);
    ck_assert_str_eq(out, "{\"title\":\"a b\",\"stars\":4}");
    CURL *c = curl_easy_init();
    curl_mime *m = curl_mime_init(c);
    curl_mimepart *p = curl_mime_addpart(m);
    curl_mime_name(p, "title");
    curl_mime_data(p, "a b", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(m);
    curl_mime_name(p, "stars");
    curl_mime_data(p, "4", CURL_ZERO_TERMINATED);
    char url[256];
    snprintf(url, sizeof url, "%s/notes", base);
    memset(out, 0, sizeof out);
    FILE *f = fmemopen(out, sizeof out - 1, "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, m);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    fclose(f);
    curl_mime_free(m);
    curl_easy_cleanup(c);
    ck_assert_int_eq(st, 201);
    ck_assert_str_eq(out, "{\"title\":\"a b\",\"stars\":4}");
    /* each media type validates the same way; another type is 415 naming all three */
    ck_assert_int_eq(post_to("/notes", "application/x-www-form-urlencoded", "stars=9", out, sizeof out),
                     400);
    ck_assert_msg(strstr(out, "\"path\":\"/body/title\"") && strstr(out, "\"path\":\"/body/stars\""),
                  "%s", out);
    ck_assert_int_eq(post_to("/notes", "text/plain", "hello", out, sizeof out), 415);
    ck_assert_msg(strstr(out, "application/json, application/x-www-form-urlencoded or "
                              "multipart/form-data"),
                  "%s", out);
}
END_TEST

/* GET path with an Accept header (NULL: none): status, Content-Type into ct */
static long get_accept(const char *path, const char *accept, char *ct, size_t cap)
{
    CURL *c = curl_easy_init();
    char url[256], line[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *h = NULL;
    if (accept) {
        snprintf(line, sizeof line, "Accept: %s", accept);
        h = curl_slist_append(NULL, line);
    }
    char sink[1024];
    FILE *f = fmemopen(sink, sizeof sink, "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    char *t = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &t);
    snprintf(ct, cap, "%s", t ? t : "");
    fclose(f);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

START_TEST(answers_in_the_media_type_accept_prefers)
{
    char ct[128];
    ck_assert_int_eq(get_accept("/notes/3", NULL, ct, sizeof ct), 200);
    ck_assert_str_eq(ct, "application/json");
    ck_assert_int_eq(get_accept("/notes/3", "application/vnd.notes.v1+json", ct, sizeof ct), 200);
    ck_assert_str_eq(ct, "application/vnd.notes.v1+json");
    ck_assert_int_eq(get_accept("/notes/3",
                                "application/json;q=0.5, application/vnd.notes.v1+json;q=0.9",
                                ct, sizeof ct),
                     200);
    ck_assert_str_eq(ct, "application/vnd.notes.v1+json");
    ck_assert_int_eq(get_accept("/notes/3", "application/*;q=0.2, application/json", ct, sizeof ct),
                     200);
    ck_assert_str_eq(ct, "application/json");
    /* nothing acceptable: the declared type anyway, not 406 */
    ck_assert_int_eq(get_accept("/notes/3", "text/html", ct, sizeof ct), 200);
    ck_assert_str_eq(ct, "application/json");
    /* bytes: the handler left the type to the client's Accept */
    ck_assert_int_eq(get_accept("/notes/3/image", "image/jpeg", ct, sizeof ct), 200);
    ck_assert_str_eq(ct, "image/jpeg");
    ck_assert_int_eq(get_accept("/notes/3/image", NULL, ct, sizeof ct), 200);
    ck_assert_str_eq(ct, "image/png");
    ck_assert_int_eq(get_accept("/notes/3/image", "image/png;q=0.1, image/*;q=0.5", ct, sizeof ct),
                     200);
    ck_assert_str_eq(ct, "image/jpeg"); /* the image range (0.5) outranks png's own 0.1 */
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("uploads");
    TCase *tc = tcase_create("multipart");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, the_generated_client_uploads_fields_json_and_files);
    tcase_add_test(tc, libcurl_multipart_is_read_the_same);
    tcase_add_test(tc, bad_parts_name_their_field);
    tcase_add_test(tc, malformed_multipart_and_wrong_media_type);
    tcase_add_test(tc, content_cookie_and_deep_object_parameters_both_ways);
    tcase_add_test(tc, parameters_as_other_clients_write_them_and_their_errors);
    tcase_add_test(tc, one_body_in_several_media_types);
    tcase_add_test(tc, answers_in_the_media_type_accept_prefers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
