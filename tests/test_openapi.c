/*
 * test_openapi.c: docs/openapi.yaml and the routes abisd serves agree, both
 * ways: every route of the server's table is in the spec, every operation of
 * the spec is in the table, and a running abisd answers every spec route
 * (not "no such path", not "method not allowed").
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"
#include "server/server.h"
#include "testutil.h"

#define MAX_OPS 64

typedef struct op {
    char method[8];
    char path[128];
} op;

/* The operations under `paths:` of the spec: a path is a key indented two
 * spaces, a method a key indented four (the layout docs/openapi.yaml keeps). */
static size_t spec_ops(op *ops)
{
    const char *src = getenv("ABIS_SOURCE_DIR");
    char path[4200];
    snprintf(path, sizeof path, "%s/docs/openapi.yaml", src ? src : ".");
    char *text = abis_test_slurp(path);
    assert_non_null(strstr(text, "openapi: 3.1"));
    size_t n = 0;
    int in_paths = 0;
    char current[128] = "";
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != ' ' && line[0] != '#') {
            in_paths = strncmp(line, "paths:", 6) == 0;
            continue;
        }
        if (!in_paths)
            continue;
        size_t len = strlen(line);
        while (len && (line[len - 1] == ' ' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!strncmp(line, "  /", 3) && line[len - 1] == ':') {
            snprintf(current, sizeof current, "%.*s", (int)(len - 3), line + 2);
        } else if (!strncmp(line, "    ", 4) && line[4] != ' ' && line[len - 1] == ':') {
            static const char *const methods[] = {"get", "post", "put", "delete", "patch"};
            for (size_t m = 0; m < 5; m++)
                if (len - 5 == strlen(methods[m]) && !strncmp(line + 4, methods[m], len - 5)) {
                    assert_true(n < MAX_OPS);
                    for (size_t k = 0; k <= strlen(methods[m]); k++)
                        ops[n].method[k] = (char)toupper((unsigned char)methods[m][k]);
                    snprintf(ops[n].path, sizeof ops[n].path, "%s", current);
                    n++;
                }
        }
    }
    free(text);
    return n;
}

static void test_every_served_route_is_in_the_spec_and_back(void **state)
{
    (void)state;
    op ops[MAX_OPS];
    size_t n = spec_ops(ops);
    assert_int_equal(n, abisd_n_routes);
    for (size_t i = 0; i < abisd_n_routes; i++) {
        size_t k = 0;
        while (k < n && !(strcmp(ops[k].method, abisd_routes[i].method) == 0 &&
                          strcmp(ops[k].path, abisd_routes[i].pattern) == 0))
            k++;
        if (k == n)
            fail_msg("abisd serves %s %s, which docs/openapi.yaml lacks", abisd_routes[i].method,
                     abisd_routes[i].pattern);
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = 0;
        while (i < abisd_n_routes && !(strcmp(ops[k].method, abisd_routes[i].method) == 0 &&
                                       strcmp(ops[k].path, abisd_routes[i].pattern) == 0))
            i++;
        if (i == abisd_n_routes)
            fail_msg("docs/openapi.yaml has %s %s, which abisd does not serve", ops[k].method,
                     ops[k].path);
    }
}

static void test_a_running_abisd_answers_every_spec_route(void **state)
{
    (void)state;
    op ops[MAX_OPS];
    size_t n = spec_ops(ops);
    char *dir = abis_test_tmpdir("openapi");
    abis_error err = {0};
    unsetenv("ABIS_MASTER_KEY");
    assert_status(abis_store_init(dir, &err), ABIS_OK, &err);
    abisd_proc p;
    assert_int_equal(abisd_proc_start(&p, dir, NULL), 0);
    for (size_t k = 0; k < n; k++) {
        char path[256];
        size_t len = 0;
        for (const char *s = ops[k].path; *s && len < sizeof path - 40;) {
            if (*s == '{') {
                const char *e = strchr(s, '}');
                len += (size_t)snprintf(path + len, sizeof path - len, "%s",
                                        !strncmp(s, "{id}", 4) ? "00000000000000000000000000000000"
                                                               : "some.purpose");
                s = e + 1;
            } else {
                path[len++] = *s++;
            }
        }
        path[len] = '\0';
        http_resp r;
        http_do(p.port, ops[k].method, path, NULL, NULL, &r);
        if (r.status == 0 || r.status == 405 || !strcmp(http_error_code(&r), "no_route"))
            fail_msg("%s %s: %d %s", ops[k].method, path, r.status, r.body ? r.body : "");
        http_resp_free(&r);
    }
    assert_int_equal(abisd_proc_stop(&p, SIGTERM), 0);
    abis_test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_served_route_is_in_the_spec_and_back),
        cmocka_unit_test(test_a_running_abisd_answers_every_spec_route),
    };
    if (!getenv("ABISD")) {
        fprintf(stderr, "test_openapi: ABISD is not set (ctest sets it); skipping\n");
        return 0;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
