/*
 * request.c: what a request carries, checked at the door: JSON bodies
 * (strict: unknown fields, wrong types and bad templates are refused with
 * the exact reason, before anything reaches the engine), the bearer
 * credential of the Authorization header, and subject ids in paths.  No
 * engine call happens here, so the fuzz target (fuzz/fuzz_request.c) can
 * drive all of it.
 */
#include "server/server.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int abisd_fail(abisd_error *e, int status, const char *code, const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

int abisd_parse_json(const char *body, size_t len, json_t **out, abisd_error *e)
{
    *out = NULL;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len) {
        *out = json_object();
        return *out ? 0 : abisd_fail(e, 503, "overloaded", "out of memory");
    }
    json_error_t je;
    json_t *root = abisd_json_fast(body, len);
    if (!root)
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return abisd_fail(e, 400, "invalid_json",
                          "the request body is not valid JSON: %s (line %d, column %d)", je.text,
                          je.line, je.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return abisd_fail(e, 400, "wrong_type", "the request body must be a JSON object");
    }
    *out = root;
    return 0;
}

void abisd_templates_free(abisd_templates *t)
{
    for (size_t i = 0; i < t->n; i++)
        abis_json_template_free(&t->json[i]);
    t->n = 0;
}

void abisd_body_free(abisd_body *b)
{
    abisd_templates_free(&b->templates);
}

/* The field names and their bits, for unknown-field messages. */
static const struct {
    const char *name;
    unsigned bit;
} fields[] = {
    {"segment", ABISD_F_SEGMENT},     {"purpose", ABISD_F_PURPOSE},
    {"templates", ABISD_F_TEMPLATES}, {"template", ABISD_F_TEMPLATE},
    {"consents", ABISD_F_CONSENTS},   {"k", ABISD_F_K},
    {"replace", ABISD_F_REPLACE},     {"modality", ABISD_F_MODALITY},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static void list_fields(unsigned allowed, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_FIELDS; i++)
        if ((allowed & fields[i].bit) && len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", fields[i].name);
}

/* A template object into b->templates. */
static int add_template(json_t *obj, const char *what, abisd_body *b, abisd_error *e)
{
    abisd_templates *t = &b->templates;
    if (t->n == ABISD_TEMPLATES_MAX)
        return abisd_fail(e, 400, "invalid", "more than %d templates", ABISD_TEMPLATES_MAX);
    const char *code = "invalid";
    abis_error err = {0};
    abis_status st = abis_json_template_parse(obj, what, &t->json[t->n], &code, &err);
    t->n++; /* owned from here on, whatever happened */
    if (st == ABIS_E_NOMEM)
        return abisd_fail(e, 503, "overloaded", "%s", err.message);
    if (st != ABIS_OK)
        return abisd_fail(e, 400, code, "%s", err.message);
    t->in[t->n - 1] = t->json[t->n - 1].in;
    return 0;
}

static int get_string(json_t *root, const char *name, const char **out, abisd_error *e)
{
    json_t *v = json_object_get(root, name);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return abisd_fail(e, 400, "wrong_type", "\"%s\" must be a string", name);
    if (json_string_length(v) != strlen(json_string_value(v)))
        return abisd_fail(e, 400, "invalid", "\"%s\" holds a NUL character", name);
    *out = json_string_value(v);
    return 0;
}

int abisd_parse_body(json_t *root, unsigned allowed, unsigned required, abisd_body *b,
                     abisd_error *e)
{
    memset(b, 0, sizeof *b);
    b->k = ABISD_K_DEFAULT;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        size_t i = 0;
        while (i < N_FIELDS && !((allowed & fields[i].bit) && strcmp(key, fields[i].name) == 0))
            i++;
        if (i == N_FIELDS) {
            char list[128];
            list_fields(allowed, list, sizeof list);
            return abisd_fail(e, 400, "unknown_field",
                              "unknown field '%.64s' (this request takes: %s)", key,
                              *list ? list : "no body");
        }
    }
    for (size_t i = 0; i < N_FIELDS; i++)
        if ((required & fields[i].bit) && !json_object_get(root, fields[i].name))
            return abisd_fail(e, 400, "missing_field", "the request body has no \"%s\"",
                              fields[i].name);
    if (get_string(root, "segment", &b->segment, e) ||
        get_string(root, "purpose", &b->purpose, e) ||
        get_string(root, "modality", &b->modality, e))
        return -1;

    json_t *tm = json_object_get(root, "templates");
    if (tm) {
        if (!json_is_array(tm))
            return abisd_fail(e, 400, "wrong_type", "\"templates\" must be an array of objects");
        if (json_array_size(tm) == 0)
            return abisd_fail(e, 400, "missing_field", "\"templates\" is empty");
        for (size_t i = 0; i < json_array_size(tm); i++) {
            char what[32];
            snprintf(what, sizeof what, "templates[%zu]", i);
            if (add_template(json_array_get(tm, i), what, b, e) != 0)
                return -1;
        }
    }
    json_t *one = json_object_get(root, "template");
    if (one && add_template(one, "template", b, e) != 0)
        return -1;

    json_t *cons = json_object_get(root, "consents");
    if (cons && !json_is_null(cons)) {
        if (!json_is_array(cons))
            return abisd_fail(e, 400, "wrong_type",
                              "\"consents\" must be an array of purpose names");
        if (json_array_size(cons) > ABISD_CONSENTS_MAX)
            return abisd_fail(e, 400, "invalid", "more than %d consents", ABISD_CONSENTS_MAX);
        for (size_t i = 0; i < json_array_size(cons); i++) {
            json_t *c = json_array_get(cons, i);
            if (!json_is_string(c))
                return abisd_fail(e, 400, "wrong_type", "consents[%zu] must be a string", i);
            b->consents[b->n_consents++] = json_string_value(c);
        }
    }

    json_t *k = json_object_get(root, "k");
    if (k && !json_is_null(k)) {
        if (!json_is_integer(k))
            return abisd_fail(e, 400, "wrong_type", "\"k\" must be a whole number");
        json_int_t v = json_integer_value(k);
        if (v < 1 || v > ABISD_K_MAX)
            return abisd_fail(e, 400, "invalid", "\"k\" must be from 1 to %d (was %lld)",
                              ABISD_K_MAX, (long long)v);
        b->k = (size_t)v;
    }
    json_t *rep = json_object_get(root, "replace");
    if (rep && !json_is_null(rep)) {
        if (!json_is_boolean(rep))
            return abisd_fail(e, 400, "wrong_type", "\"replace\" must be true or false");
        b->replace = json_is_true(rep);
    }
    return 0;
}

int abisd_is_json_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return 0;
    ct += 16;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

const char *abisd_bearer(const char *header)
{
    if (!header || strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return NULL;
    header += 6;
    while (*header == ' ' || *header == '\t')
        header++;
    return *header ? header : NULL;
}

int abisd_parse_subject(const char *text, abis_id *id, abisd_error *e)
{
    if (abis_id_from_hex(text, id, NULL) != ABIS_OK)
        return abisd_fail(e, 400, "invalid", "'%.64s' is not a subject id (32 hex digits)", text);
    return 0;
}
