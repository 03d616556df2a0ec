/* test_eval_svg.c: the DET, histogram and CMC plots parse as SVG and carry
 * no non-finite numbers or unescaped text, and the JSON report has its
 * documented fields (src/eval/svg.c, src/eval/report.c). */
#include "testutil.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "eval/eval.h"

/* |a - b| <= eps, printing both at full precision when not. */
#define assert_near(a, b, eps)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (eps)))                                                             \
            fail_msg("%.17g differs from %.17g by more than %g", a_, b_, (double)(eps));           \
    } while (0)

#define NASTY_NAME "A&B <\"x\"> 'y'"

/* ---- helpers ------------------------------------------------------------------ */

/* The bytes a writer puts on a FILE, as a malloc'd NUL-terminated string. */
typedef struct capture {
    FILE *f;
    char *buf;
    size_t len;
} capture;

static void capture_open(capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
}

static char *capture_close(capture *c)
{
    fclose(c->f);
    return c->buf;
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == needle[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* Does any text node under `node` equal `want`? */
static int has_text(xmlNode *node, const char *want)
{
    for (xmlNode *n = node; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST "text")) {
            xmlChar *t = xmlNodeGetContent(n);
            int hit = t && strstr((const char *)t, want) != NULL;
            xmlFree(t);
            if (hit)
                return 1;
        }
        if (has_text(n->children, want))
            return 1;
    }
    return 0;
}

/* Parse the document strictly (any XML error fails), check the SVG root and
 * that no number is nan or inf; returns the parsed document. */
static xmlDoc *check_svg(const char *doc)
{
    size_t len = strlen(doc);
    xmlDoc *x = xmlReadMemory(doc, (int)len, "plot.svg", NULL, XML_PARSE_NONET);
    if (!x)
        fail_msg("SVG does not parse as XML:\n%s", doc);
    xmlNode *root = xmlDocGetRootElement(x);
    assert_non_null(root);
    assert_string_equal((const char *)root->name, "svg");
    assert_non_null(root->ns);
    assert_string_equal((const char *)root->ns->href, "http://www.w3.org/2000/svg");
    const char *attrs[] = {"width", "height", "viewBox"};
    for (size_t i = 0; i < 3; i++) {
        xmlChar *v = xmlGetProp(root, BAD_CAST attrs[i]);
        assert_non_null(v);
        xmlFree(v);
    }
    assert_false(contains_nocase(doc, "nan"));
    assert_false(contains_nocase(doc, "inf"));
    assert_null(strstr(doc, "<script"));
    assert_null(strstr(doc, "href")); /* nothing external */
    return x;
}

/* The largest number of points in any <polyline>. */
static size_t max_polyline_points(const char *doc)
{
    size_t best = 0;
    for (const char *p = strstr(doc, "points=\""); p; p = strstr(p + 1, "points=\"")) {
        size_t n = 1;
        for (const char *q = p + 8; *q && *q != '"'; q++)
            n += *q == ' ';
        best = n > best ? n : best;
    }
    return best;
}

static void fill_system(abis_eval_scores *s, const char *name, double shift, size_t ng, size_t ni,
                        uint64_t seed)
{
    abis_synth_rng r = {seed};
    abis_eval_scores_init(s, name);
    for (size_t i = 0; i < ng; i++)
        assert_int_equal(
            abis_eval_add_genuine(s, shift + abis_synth_normal(&r), (uint32_t)(i % 50)), 0);
    for (size_t i = 0; i < ni; i++)
        assert_int_equal(abis_eval_add_impostor(s, abis_synth_normal(&r), (uint32_t)(i % 50),
                                                (uint32_t)((i + 1) % 50)),
                         0);
}

/* ---- DET ---------------------------------------------------------------------- */

static void test_det_svg_parses_and_escapes_names(void **state)
{
    (void)state;
    abis_eval_scores a, b;
    fill_system(&a, NASTY_NAME, 3, 500, 5000, 1);
    fill_system(&b, "second", 2, 500, 5000, 2);
    const abis_eval_scores *sys[] = {&a, &b};
    capture c;
    capture_open(&c);
    abis_error err = {0};
    assert_status(abis_eval_svg_det(c.f, sys, 2, "DET <&> test", &err), ABIS_OK, &err);
    char *doc = capture_close(&c);
    assert_non_null(strstr(doc, "A&amp;B &lt;"));
    xmlDoc *x = check_svg(doc);
    xmlNode *root = xmlDocGetRootElement(x);
    assert_true(has_text(root->children, NASTY_NAME));
    assert_true(has_text(root->children, "DET <&> test"));
    assert_true(has_text(root->children, "0.1%"));
    assert_true(has_text(root->children, "40%"));
    assert_true(has_text(root->children, "EER"));
    assert_non_null(strstr(doc, "<circle")); /* EER marks */
    xmlFreeDoc(x);
    free(doc);
    abis_eval_scores_free(&a);
    abis_eval_scores_free(&b);
}

static void test_det_svg_edge_cases(void **state)
{
    (void)state;
    /* separated classes (rates of exactly 0 and 1 to clip), one score each,
     * a system with no impostors, and more systems than colours */
    abis_eval_scores sets[10];
    const abis_eval_scores *sys[10];
    abis_eval_scores_init(&sets[0], "separated");
    abis_eval_add_genuine(&sets[0], 0.9, 0);
    abis_eval_add_genuine(&sets[0], 0.8, 1);
    abis_eval_add_impostor(&sets[0], 0.1, 0, 1);
    abis_eval_scores_init(&sets[1], "one each");
    abis_eval_add_genuine(&sets[1], 0.5, 0);
    abis_eval_add_impostor(&sets[1], 0.5, 0, 1);
    abis_eval_scores_init(&sets[2], "no impostors");
    abis_eval_add_genuine(&sets[2], 0.5, 0);
    for (int k = 3; k < 10; k++)
        fill_system(&sets[k], "many", 1 + k / 3.0, 50, 200, (uint64_t)k);
    for (int k = 0; k < 10; k++)
        sys[k] = &sets[k];
    capture c;
    capture_open(&c);
    abis_error err = {0};
    assert_status(abis_eval_svg_det(c.f, sys, 10, "edges", &err), ABIS_OK, &err);
    char *doc = capture_close(&c);
    xmlDoc *x = check_svg(doc);
    assert_true(has_text(xmlDocGetRootElement(x)->children, "no impostor"));
    xmlFreeDoc(x);
    free(doc);
    for (int k = 0; k < 10; k++)
        abis_eval_scores_free(&sets[k]);

    /* no systems at all */
    capture_open(&c);
    assert_status(abis_eval_svg_det(c.f, NULL, 0, "empty", &err), ABIS_OK, &err);
    doc = capture_close(&c);
    xmlFreeDoc(check_svg(doc));
    free(doc);
}

static void test_det_svg_thins_large_sets(void **state)
{
    (void)state;
    abis_eval_scores a;
    fill_system(&a, "large", 3, 20000, 400000, 11);
    const abis_eval_scores *sys[] = {&a};
    capture c;
    capture_open(&c);
    abis_error err = {0};
    assert_status(abis_eval_svg_det(c.f, sys, 1, "large", &err), ABIS_OK, &err);
    char *doc = capture_close(&c);
    size_t pts = max_polyline_points(doc);
    assert_true(pts > 50 && pts <= 2000);
    xmlFreeDoc(check_svg(doc));
    free(doc);
    abis_eval_scores_free(&a);
}

static void test_svg_write_failure_is_an_io_error(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    if (!f)
        skip();
    abis_eval_scores a;
    fill_system(&a, "x", 2, 10, 10, 1);
    const abis_eval_scores *sys[] = {&a};
    abis_error err = {0};
    assert_int_equal(abis_eval_svg_det(f, sys, 1, "full", &err), ABIS_E_IO);
    fclose(f);
    abis_eval_scores_free(&a);
}

/* ---- histogram -------------------------------------------------------------------- */

static void test_histogram_svg(void **state)
{
    (void)state;
    abis_eval_scores a;
    fill_system(&a, NASTY_NAME, 3, 1000, 10000, 5);
    capture c;
    capture_open(&c);
    abis_error err = {0};
    assert_status(abis_eval_svg_histogram(c.f, &a, "scores & more", &err), ABIS_OK, &err);
    char *doc = capture_close(&c);
    xmlDoc *x = check_svg(doc);
    xmlNode *root = xmlDocGetRootElement(x);
    assert_true(has_text(root->children, "genuine"));
    assert_true(has_text(root->children, "impostor"));
    assert_true(has_text(root->children, "Density"));
    assert_true(has_text(root->children, "Score"));
    assert_true(has_text(root->children, NASTY_NAME));
    xmlFreeDoc(x);
    free(doc);
    abis_eval_scores_free(&a);
}

static void test_histogram_svg_degenerate_sets(void **state)
{
    (void)state;
    abis_eval_scores a;
    abis_error err = {0};
    capture c;
    /* every score equal */
    abis_eval_scores_init(&a, "flat");
    for (int i = 0; i < 5; i++) {
        abis_eval_add_genuine(&a, 0.5, 0);
        abis_eval_add_impostor(&a, 0.5, 0, 1);
    }
    capture_open(&c);
    assert_status(abis_eval_svg_histogram(c.f, &a, "flat", &err), ABIS_OK, &err);
    char *doc = capture_close(&c);
    xmlFreeDoc(check_svg(doc));
    free(doc);
    abis_eval_scores_free(&a);
    /* nothing at all */
    abis_eval_scores_init(&a, "empty");
    capture_open(&c);
    assert_status(abis_eval_svg_histogram(c.f, &a, "empty", &err), ABIS_OK, &err);
    doc = capture_close(&c);
    xmlFreeDoc(check_svg(doc));
    free(doc);
    abis_eval_scores_free(&a);
    /* a bad name: invalid UTF-8 and a control character still make XML */
    abis_eval_scores_init(&a, "bad \xff\xfe name \x01");
    abis_eval_add_genuine(&a, 0.5, 0);
    capture_open(&c);
    assert_status(abis_eval_svg_histogram(c.f, &a, "bad \xc3", &err), ABIS_OK, &err);
    doc = capture_close(&c);
    xmlFreeDoc(check_svg(doc));
    free(doc);
    abis_eval_scores_free(&a);
}

/* ---- CMC ---------------------------------------------------------------------------- */

static void test_cmc_svg(void **state)
{
    (void)state;
    abis_eval_ident_metrics m1 = {0}, m2 = {0}, none = {0};
    for (int r = 0; r < ABIS_EVAL_MAX_RANK; r++) {
        m1.cmc[r] = 0.9 + 0.1 * (1 - exp(-r));
        m2.cmc[r] = 0.6 + 0.02 * r;
        none.cmc[r] = NAN; /* no mated probes */
    }
    const abis_eval_ident_metrics *sys[] = {&m1, &m2, &none};
    const char *names[] = {NASTY_NAME, "second", "empty"};
    capture c;
    capture_open(&c);
    abis_error err = {0};
    assert_status(abis_eval_svg_cmc(c.f, sys, names, 3, "CMC", &err), ABIS_OK, &err);
    char *doc = capture_close(&c);
    xmlDoc *x = check_svg(doc);
    xmlNode *root = xmlDocGetRootElement(x);
    assert_true(has_text(root->children, NASTY_NAME));
    assert_true(has_text(root->children, "Rank"));
    assert_true(has_text(root->children, "no mated probes"));
    assert_int_equal(max_polyline_points(doc), ABIS_EVAL_MAX_RANK);
    xmlFreeDoc(x);
    free(doc);
    /* no names given */
    capture_open(&c);
    assert_status(abis_eval_svg_cmc(c.f, sys, NULL, 2, "CMC", &err), ABIS_OK, &err);
    doc = capture_close(&c);
    xmlFreeDoc(check_svg(doc));
    free(doc);
}

/* ---- JSON report ---------------------------------------------------------------- */

static json_t *report(const char *name, const abis_eval_verif_metrics *v,
                      const abis_eval_ident_metrics *id)
{
    capture c;
    capture_open(&c);
    abis_error err = {0};
    assert_status(abis_eval_report_json(c.f, name, v, id, &err), ABIS_OK, &err);
    char *doc = capture_close(&c);
    json_error_t jerr;
    json_t *root = json_loads(doc, 0, &jerr);
    if (!root)
        fail_msg("report is not JSON (%s):\n%s", jerr.text, doc);
    free(doc);
    return root;
}

static void check_rate(json_t *r, const char *target_key)
{
    assert_true(json_is_object(r));
    const char *keys[] = {"value", "lo", "hi", "threshold"};
    for (int k = 0; k < 4; k++) {
        json_t *v = json_object_get(r, keys[k]);
        assert_true(json_is_real(v) || json_is_null(v));
    }
    assert_true(json_is_integer(json_object_get(r, "support")));
    assert_true(json_is_boolean(json_object_get(r, "supported")));
    if (target_key)
        assert_true(json_is_real(json_object_get(r, target_key)));
}

static void test_report_json_fields(void **state)
{
    (void)state;
    abis_eval_scores a;
    fill_system(&a, NASTY_NAME, 3, 500, 2000, 3);
    abis_eval_verif_metrics v;
    abis_error err = {0};
    assert_status(abis_eval_verification(&a, 50, &v, &err), ABIS_OK, &err);
    abis_eval_ident s;
    abis_eval_ident_init(&s, "id", 100, 20);
    for (uint32_t i = 0; i < 50; i++)
        assert_int_equal(abis_eval_add_mated(&s, i % 3, 0.9, 0.2, i), 0);
    for (uint32_t i = 0; i < 150; i++)
        assert_int_equal(abis_eval_add_nonmated(&s, i / 150.0, 50 + i), 0);
    abis_eval_ident_metrics id;
    assert_status(abis_eval_identification(&s, 50, &id, &err), ABIS_OK, &err);

    json_t *root = report(a.name, &v, &id);
    assert_string_equal(json_string_value(json_object_get(root, "system")), NASTY_NAME);
    assert_int_equal(json_integer_value(json_object_get(root, "version")), 1);
    json_t *counts = json_object_get(root, "counts");
    assert_int_equal(json_integer_value(json_object_get(counts, "genuine")), 500);
    assert_int_equal(json_integer_value(json_object_get(counts, "impostor")), 2000);
    assert_int_equal(json_integer_value(json_object_get(counts, "mated")), 50);
    assert_int_equal(json_integer_value(json_object_get(counts, "nonmated")), 150);
    check_rate(json_object_get(root, "eer"), NULL);
    assert_near(json_real_value(json_object_get(json_object_get(root, "eer"), "value")),
                v.eer.value, 1e-15);
    json_t *fa = json_object_get(root, "fnmr_at_fmr");
    assert_int_equal(json_array_size(fa), ABIS_EVAL_N_FMR_TARGETS);
    for (size_t k = 0; k < json_array_size(fa); k++)
        check_rate(json_array_get(fa, k), "fmr");
    /* 2000 impostors: FMR 1e-2 and 1e-3 supported, 1e-4 not (value null) */
    assert_true(json_is_true(json_object_get(json_array_get(fa, 1), "supported")));
    assert_true(json_is_false(json_object_get(json_array_get(fa, 2), "supported")));
    assert_true(json_is_null(json_object_get(json_array_get(fa, 2), "value")));
    assert_true(json_is_real(json_object_get(root, "d_prime")));
    assert_true(json_is_null(json_object_get(root, "fte"))); /* attempted not recorded */
    assert_true(json_is_null(json_object_get(root, "fta")));
    json_t *ident = json_object_get(root, "identification");
    assert_int_equal(json_integer_value(json_object_get(ident, "gallery_size")), 100);
    json_t *fi = json_object_get(ident, "fnir_at_fpir");
    assert_int_equal(json_array_size(fi), ABIS_EVAL_N_FPIR_TARGETS);
    for (size_t k = 0; k < json_array_size(fi); k++)
        check_rate(json_array_get(fi, k), "fpir");
    json_t *cmc = json_object_get(ident, "cmc");
    assert_int_equal(json_array_size(cmc), ABIS_EVAL_MAX_RANK);
    assert_near(json_real_value(json_array_get(cmc, 0)), id.cmc[0], 1e-15);
    json_decref(root);

    /* either part may be missing: its keys are null */
    root = report("only 1:N", NULL, &id);
    assert_true(json_is_null(json_object_get(root, "eer")));
    assert_true(json_is_null(json_object_get(root, "fnmr_at_fmr")));
    assert_true(json_is_null(json_object_get(json_object_get(root, "counts"), "genuine")));
    assert_true(json_is_object(json_object_get(root, "identification")));
    json_decref(root);
    root = report("bad \xff name", &v, NULL);
    assert_true(json_is_null(json_object_get(root, "identification")));
    assert_string_equal(json_string_value(json_object_get(root, "system")), "bad ? name");
    json_decref(root);

    abis_eval_ident_free(&s);
    abis_eval_scores_free(&a);
}

int main(void)
{
    LIBXML_TEST_VERSION;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_det_svg_parses_and_escapes_names),
        cmocka_unit_test(test_det_svg_edge_cases),
        cmocka_unit_test(test_det_svg_thins_large_sets),
        cmocka_unit_test(test_svg_write_failure_is_an_io_error),
        cmocka_unit_test(test_histogram_svg),
        cmocka_unit_test(test_histogram_svg_degenerate_sets),
        cmocka_unit_test(test_cmc_svg),
        cmocka_unit_test(test_report_json_fields),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
