/*
 * routes.c: every route abisd serves, in one table (docs/openapi.yaml
 * describes the same; tests/test_openapi.c checks that the two agree), and
 * matching a request's method and path against it.
 */
#include "server/server.h"

#include <string.h>

#define SEG ABISD_F_SEGMENT
#define PUR ABISD_F_PURPOSE
#define TMS ABISD_F_TEMPLATES
#define TM1 ABISD_F_TEMPLATE
#define CON ABISD_F_CONSENTS
#define K ABISD_F_K
#define REP ABISD_F_REPLACE
#define MOD ABISD_F_MODALITY

/* clang-format off */
const abisd_route abisd_routes[] = {
    /* method   pattern                                     auth write body                  fields             required   handler, arg */
    {"POST",   "/v1/subjects",                              1, 1, ABISD_BODY_REQUIRED, SEG | TMS | CON,    SEG | TMS, abisd_handle_enroll, 0},
    {"POST",   "/v1/subjects/{id}/templates",               1, 1, ABISD_BODY_REQUIRED, TM1 | REP,          TM1,       abisd_handle_template_add, 0},
    {"POST",   "/v1/subjects/{id}/verify",                  1, 0, ABISD_BODY_REQUIRED, PUR | TMS,          PUR | TMS, abisd_handle_verify, 0},
    {"POST",   "/v1/identify",                              1, 0, ABISD_BODY_REQUIRED, SEG | PUR | TMS | K, SEG | PUR | TMS, abisd_handle_identify, 0},
    {"PUT",    "/v1/subjects/{id}/consents/{purpose}",      1, 1, ABISD_BODY_OPTIONAL, 0,                  0,         abisd_handle_consent, 1},
    {"DELETE", "/v1/subjects/{id}/consents/{purpose}",      1, 1, ABISD_BODY_OPTIONAL, 0,                  0,         abisd_handle_consent, 0},
    {"POST",   "/v1/subjects/{id}/lock",                    1, 1, ABISD_BODY_OPTIONAL, MOD,                0,         abisd_handle_lock, 1},
    {"POST",   "/v1/subjects/{id}/unlock",                  1, 1, ABISD_BODY_OPTIONAL, MOD,                0,         abisd_handle_lock, 0},
    {"DELETE", "/v1/subjects/{id}",                         1, 1, ABISD_BODY_OPTIONAL, 0,                  0,         abisd_handle_delete, 0},
    {"GET",    "/v1/subjects/{id}",                         1, 0, ABISD_BODY_NONE,     0,                  0,         abisd_handle_view, 0},
    {"GET",    "/v1/subjects/{id}/history",                 1, 0, ABISD_BODY_NONE,     0,                  0,         abisd_handle_view, 1},
    {"GET",    "/v1/health",                                0, 0, ABISD_BODY_NONE,     0,                  0,         abisd_handle_health, 0},
    {"GET",    "/metrics",                                  0, 0, ABISD_BODY_NONE,     0,                  0,         abisd_handle_metrics, 0},
};
/* clang-format on */
const size_t abisd_n_routes = sizeof abisd_routes / sizeof abisd_routes[0];

/* Match `path` against `pattern`; captures {name} segments into params. */
static int path_matches(const char *pattern, const char *path,
                        char params[ABISD_PARAMS_MAX][ABISD_PARAM_LEN])
{
    size_t n = 0;
    const char *p = pattern, *q = path;
    while (*p && *q) {
        if (*p != '/' || *q != '/')
            return 0;
        p++, q++;
        const char *pe = strchr(p, '/'), *qe = strchr(q, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), ql = qe ? (size_t)(qe - q) : strlen(q);
        if (*p == '{') {
            if (ql == 0 || ql >= ABISD_PARAM_LEN || n == ABISD_PARAMS_MAX)
                return 0;
            memcpy(params[n], q, ql);
            params[n++][ql] = '\0';
        } else if (pl != ql || memcmp(p, q, pl) != 0) {
            return 0;
        }
        p += pl, q += ql;
    }
    return *p == '\0' && *q == '\0';
}

const abisd_route *abisd_route_match(const char *method, const char *path,
                                     char params[ABISD_PARAMS_MAX][ABISD_PARAM_LEN],
                                     int *path_known, char *allow, size_t allow_cap)
{
    char scratch[ABISD_PARAMS_MAX][ABISD_PARAM_LEN];
    *path_known = 0;
    size_t len = 0;
    if (allow_cap)
        allow[0] = '\0';
    for (size_t i = 0; i < abisd_n_routes; i++) {
        const abisd_route *r = &abisd_routes[i];
        if (!path_matches(r->pattern, path, scratch))
            continue;
        if (strcmp(r->method, method) == 0) {
            memcpy(params, scratch, sizeof scratch);
            return r;
        }
        *path_known = 1;
        if (len < allow_cap)
            len +=
                (size_t)snprintf(allow + len, allow_cap - len, "%s%s", len ? ", " : "", r->method);
    }
    return NULL;
}
