/*
 * test_server_tls.c: abisd over HTTPS with certificates made for the test
 * by certtool (gnutls-bin), spoken to by curl: the server's certificate
 * verifies against the test CA, plain HTTP to the TLS port gets nothing,
 * a client bound to a certificate (abis client add --cert) must present it
 * under mutual TLS while other clients need only their key, and with
 * tls_client_auth = required every request needs a client certificate.
 * Also: abisd refuses plain HTTP on an address that is not loopback.
 * Skipped when certtool or curl is missing.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abis/client.h"
#include "httpc.h"
#include "testutil.h"

static char *dir;
static char data[4200];
static char certtool_bin[1024], curl_bin[1024];

/* The full path of a tool on PATH (posix_spawn does not search it); 0 if found. */
static int which(const char *tool, char *out, size_t cap)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s 2>/dev/null", tool);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    int ok = fgets(out, (int)cap, f) != NULL;
    pclose(f);
    if (!ok)
        return -1;
    out[strcspn(out, "\n")] = '\0';
    return out[0] == '/' ? 0 : -1;
}

static void path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void write_text(const char *name, const char *text)
{
    char p[4300];
    path(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Run argv; its stdout into `out` (malloc'd, may be NULL); the exit status. */
static int run(const char *const *argv, char **out)
{
    char o[4300], e[4300];
    path(o, sizeof o, "run.out");
    path(e, sizeof e, "run.err");
    int st = abis_test_spawn(argv, NULL, o, e);
    if (out)
        *out = abis_test_slurp(o);
    return st;
}

static void certtool(const char *const *args)
{
    const char *argv[16] = {certtool_bin};
    size_t n = 1;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (run(argv, NULL) != 0)
        fail_msg("certtool %s failed", args[0]);
}

/* An ECDSA key and a certificate for `name` signed by the CA (or self-signed). */
static void make_cert(const char *name, const char *tmpl, int self_signed)
{
    char key[4300], cert[4300], t[4300], ca[4300], cakey[4300];
    char fkey[64], fcert[64], ftmpl[64];
    snprintf(fkey, sizeof fkey, "%s.key", name);
    snprintf(fcert, sizeof fcert, "%s.pem", name);
    snprintf(ftmpl, sizeof ftmpl, "%s.tmpl", name);
    path(key, sizeof key, fkey);
    path(cert, sizeof cert, fcert);
    path(t, sizeof t, ftmpl);
    path(ca, sizeof ca, "ca.pem");
    path(cakey, sizeof cakey, "ca.key");
    write_text(ftmpl, tmpl);
    const char *gen[] = {"--generate-privkey", "--key-type=ecdsa", "--outfile", key, NULL};
    certtool(gen);
    if (self_signed) {
        const char *ss[] = {"--generate-self-signed",
                            "--load-privkey",
                            key,
                            "--template",
                            t,
                            "--outfile",
                            cert,
                            NULL};
        certtool(ss);
    } else {
        const char *gc[] = {"--generate-certificate",
                            "--load-privkey",
                            key,
                            "--load-ca-certificate",
                            ca,
                            "--load-ca-privkey",
                            cakey,
                            "--template",
                            t,
                            "--outfile",
                            cert,
                            NULL};
        certtool(gc);
    }
}

static char key_plain[ABIS_API_KEY_LEN + 1], key_bound[ABIS_API_KEY_LEN + 1];

static void cli_client(const char *const *args, char *key)
{
    const char *cli = getenv("ABIS_CLI");
    const char *argv[24] = {cli, "--data", data, "--json", "client", "add"};
    size_t n = 6;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *out = NULL;
    if (run(argv, &out) != 0)
        fail_msg("abis client add failed: %s", out ? out : "");
    json_t *j = json_loads(out, 0, NULL);
    snprintf(key, ABIS_API_KEY_LEN + 1, "%s", json_string_value(json_object_get(j, "api_key")));
    json_decref(j);
    free(out);
}

static int group_setup(void **state)
{
    (void)state;
    if (which("certtool", certtool_bin, sizeof certtool_bin) != 0 ||
        which("curl", curl_bin, sizeof curl_bin) != 0 || !getenv("ABISD") || !getenv("ABIS_CLI")) {
        fprintf(stderr, "test_server_tls: certtool (gnutls-bin), curl or the built programs are "
                        "missing; skipping\n");
        return 0; /* the tests skip */
    }
    dir = abis_test_tmpdir("tls");
    snprintf(data, sizeof data, "%s/var", dir);
    unsetenv("ABIS_MASTER_KEY");
    make_cert("ca", "cn = \"OpenABIS test CA\"\nca\ncert_signing_key\nexpiration_days = 2\n", 1);
    make_cert("server",
              "cn = \"localhost\"\nip_address = \"127.0.0.1\"\ndns_name = \"localhost\"\n"
              "tls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n",
              0);
    make_cert("client",
              "cn = \"bank back end\"\ntls_www_client\nsigning_key\nexpiration_days = 2\n", 0);
    const char *cli = getenv("ABIS_CLI");
    const char *cmds[][12] = {
        {cli, "--data", data, "init", NULL},
        {cli, "--data", data, "segment", "add", "city", NULL},
        {cli, "--data", data, "purpose", "add", "bank.remote-id", "--basis", "consent", "--fmr",
         "1e-4"},
    };
    for (size_t i = 0; i < 3; i++)
        if (run(cmds[i], NULL) != 0)
            fail_msg("setup command %zu failed", i);
    char cert[4300];
    path(cert, sizeof cert, "client.pem");
    const char *plain[] = {"plain",          "--segments",   "city",   "--purposes",
                           "bank.remote-id", "--operations", "verify", NULL};
    const char *bound[] = {"bound",        "--segments", "city",   "--purposes", "bank.remote-id",
                           "--operations", "verify",     "--cert", cert,         NULL};
    cli_client(plain, key_plain);
    cli_client(bound, key_bound);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (dir)
        abis_test_rmdir(dir);
    return 0;
}

static void skip_without_tools(void)
{
    if (!dir)
        skip();
}

static int start_tls(abisd_proc *p, const char *client_auth)
{
    char cert[4300], key[4300], ca[4300];
    path(cert, sizeof cert, "server.pem");
    path(key, sizeof key, "server.key");
    path(ca, sizeof ca, "ca.pem");
    const char *args[] = {"--tls-cert",        cert,        "--tls-key", key, "--tls-client-ca", ca,
                          "--tls-client-auth", client_auth, NULL};
    return abisd_proc_start(p, data, args);
}

/* curl a request; its HTTP status ("000" when none). */
static int curl(int port, const char *method, const char *url_path, const char *key,
                int client_cert, int use_ca)
{
    char url[256], auth[160], ca[4300], cert[4300], ckey[4300], body[4300];
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, url_path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key ? key : "");
    path(ca, sizeof ca, "ca.pem");
    path(cert, sizeof cert, "client.pem");
    path(ckey, sizeof ckey, "client.key");
    path(body, sizeof body, "curl.body");
    const char *argv[32] = {curl_bin,       "-s",         "-o", body, "-w",
                            "%{http_code}", "--max-time", "10", "-X", method};
    size_t n = 10;
    if (use_ca) {
        argv[n++] = "--cacert";
        argv[n++] = ca;
    }
    if (key) {
        argv[n++] = "-H";
        argv[n++] = auth;
    }
    if (client_cert) {
        argv[n++] = "--cert";
        argv[n++] = cert;
        argv[n++] = "--key";
        argv[n++] = ckey;
    }
    if (!strcmp(method, "POST")) {
        argv[n++] = "-H";
        argv[n++] = "Content-Type: application/json";
        argv[n++] = "--data";
        argv[n++] = "{\"purpose\":\"bank.remote-id\",\"templates\":[{\"modality\":\"face\","
                    "\"vector\":[1]}]}";
    }
    argv[n++] = url;
    argv[n] = NULL;
    char *out = NULL;
    run(argv, &out);
    int code = out ? atoi(out) : 0;
    free(out);
    return code;
}

#define VERIFY_PATH "/v1/subjects/00000000000000000000000000000000/verify"

static void test_https_with_the_test_ca(void **state)
{
    (void)state;
    skip_without_tools();
    abisd_proc p;
    assert_int_equal(start_tls(&p, "optional"), 0);
    assert_int_equal(curl(p.port, "GET", "/v1/health", NULL, 0, 1), 200);
    /* Without the CA, curl refuses the certificate. */
    assert_int_equal(curl(p.port, "GET", "/v1/health", NULL, 0, 0), 0);
    /* Plain HTTP to the TLS port gets no HTTP answer. */
    http_resp r;
    http_do(p.port, "GET", "/v1/health", NULL, NULL, &r);
    assert_int_not_equal(r.status, 200);
    http_resp_free(&r);
    /* A client without a bound certificate needs only its key: past
     * authentication, the subject is not found. */
    assert_int_equal(curl(p.port, "POST", VERIFY_PATH, key_plain, 0, 1), 404);
    assert_int_equal(abisd_proc_stop(&p, SIGTERM), 0);
}

static void test_client_bound_to_a_certificate_must_present_it(void **state)
{
    (void)state;
    skip_without_tools();
    abisd_proc p;
    assert_int_equal(start_tls(&p, "optional"), 0);
    assert_int_equal(curl(p.port, "POST", VERIFY_PATH, key_bound, 0, 1), 401);
    assert_int_equal(curl(p.port, "POST", VERIFY_PATH, key_bound, 1, 1), 404);
    assert_int_equal(abisd_proc_stop(&p, SIGTERM), 0);
}

static void test_required_client_certificates(void **state)
{
    (void)state;
    skip_without_tools();
    abisd_proc p;
    assert_int_equal(start_tls(&p, "required"), 0);
    assert_int_equal(curl(p.port, "POST", VERIFY_PATH, key_plain, 0, 1), 401);
    assert_int_equal(curl(p.port, "POST", VERIFY_PATH, key_plain, 1, 1), 404);
    assert_int_equal(curl(p.port, "GET", "/v1/health", NULL, 0, 1), 200);
    assert_int_equal(abisd_proc_stop(&p, SIGTERM), 0);
}

static void test_plain_http_only_on_loopback(void **state)
{
    (void)state;
    skip_without_tools();
    char log[4300], ready[4300];
    path(log, sizeof log, "refused.log");
    path(ready, sizeof ready, "refused.port");
    const char *argv[] = {getenv("ABISD"), "--data",       data,  "--listen",
                          "0.0.0.0:0",     "--ready-file", ready, NULL};
    char o[4300];
    path(o, sizeof o, "refused.out");
    assert_int_equal(abis_test_spawn(argv, NULL, o, log), 1);
    char *text = abis_test_slurp(log);
    assert_non_null(strstr(text, "refusing plain HTTP"));
    assert_non_null(strstr(text, "allow_plain_http"));
    free(text);
    assert_int_not_equal(access(ready, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_with_the_test_ca),
        cmocka_unit_test(test_client_bound_to_a_certificate_must_present_it),
        cmocka_unit_test(test_required_client_certificates),
        cmocka_unit_test(test_plain_http_only_on_loopback),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
