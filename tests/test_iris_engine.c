/*
 * test_iris_engine.c: the iris modality through the engine -- eye images and
 * ISO/IEC 19794-6 records in, iris codes stored, verify and identify -- on
 * real CASIA-IrisV1 images read from ../shared/data (never copied; skipped
 * when the data is not there).
 */
#include <stdlib.h>
#include <string.h>

#include "modality/image.h"
#include "modality/iris/record.h"
#include "testutil.h"

static char casia[4096];

static int have_casia(void)
{
    const char *src = getenv("ABIS_SOURCE_DIR");
    snprintf(casia, sizeof casia, "%s/../shared/data/iris/casia-v1/001/1/001_1_1.bmp",
             src ? src : ".");
    size_t n;
    unsigned char *b = abis_test_read_file(casia, &n);
    free(b);
    snprintf(casia, sizeof casia, "%s/../shared/data/iris/casia-v1", src ? src : ".");
    return b != NULL;
}

typedef struct fx {
    char *dir;
    abis_engine *e;
    abis_error err;
} fx;

static int setup(void **state)
{
    if (!have_casia()) {
        print_message("CASIA-IrisV1 not found beside the project: skipped\n");
        return -1;
    }
    fx *f = calloc(1, sizeof *f);
    f->dir = abis_test_tmpdir("iris");
    unsetenv("ABIS_MASTER_KEY");
    assert_status(abis_store_init(f->dir, &f->err), ABIS_OK, &f->err);
    abis_open_options o = {.data_dir = f->dir};
    assert_status(abis_engine_open(&o, &f->e, &f->err), ABIS_OK, &f->err);
    assert_status(abis_segment_add(f->e, NULL, "city", &f->err), ABIS_OK, &f->err);
    abis_purpose_def p = {.name = "border.control",
                          .basis = ABIS_BASIS_STATUTORY,
                          .target_fmr = 1e-6,
                          .legal_ref = "test"};
    assert_status(abis_purpose_add(f->e, NULL, &p, &f->err), ABIS_OK, &f->err);
    assert_status(abis_modality_add(f->e, NULL, "iris", "iriscode", 0, &f->err), ABIS_OK, &f->err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f) {
        abis_engine_close(f->e);
        abis_test_rmdir(f->dir);
        free(f);
    }
    return 0;
}

/* The bytes of CASIA image eye/session/k (caller frees). */
static unsigned char *eye_image(int eye, int session, int k, size_t *len)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%03d/%d/%03d_%d_%d.bmp", casia, eye, session, eye, session, k);
    unsigned char *b = abis_test_read_file(path, len);
    assert_non_null(b);
    return b;
}

static abis_template_input iris_input(const unsigned char *bytes, size_t len)
{
    abis_template_input t = {
        .modality = "iris", .capture = bytes, .capture_size = len, .position = 2, .quality = -1};
    return t;
}

static abis_id enroll_eye(fx *f, int eye)
{
    size_t len;
    unsigned char *b = eye_image(eye, 1, 1, &len);
    abis_template_input t = iris_input(b, len);
    abis_enroll_request req = {.segment = "city", .templates = &t, .n_templates = 1};
    abis_enroll_result res;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_OK, &f->err);
    free(b);
    return res.subject_id;
}

static abis_decision verify_with(fx *f, const abis_id *id, const unsigned char *b, size_t len)
{
    abis_template_input t = iris_input(b, len);
    abis_verify_result r;
    assert_status(abis_subject_verify(f->e, NULL, id, "border.control", &t, 1, &r, &f->err),
                  ABIS_OK, &f->err);
    return r.decision;
}

static void test_iris_verify_across_sessions(void **state)
{
    fx *f = *state;
    abis_id a = enroll_eye(f, 1);
    enroll_eye(f, 2);
    size_t len;
    unsigned char *same = eye_image(1, 2, 1, &len);
    assert_int_equal(verify_with(f, &a, same, len), ABIS_MATCH);
    free(same);
    unsigned char *other = eye_image(2, 2, 1, &len);
    assert_int_equal(verify_with(f, &a, other, len), ABIS_NO_MATCH);
    free(other);
    abis_subject_view *v;
    assert_status(abis_subject_show(f->e, NULL, &a, &v, &f->err), ABIS_OK, &f->err);
    assert_string_equal(v->templates[0].format, "iris2048");
    assert_true(v->templates[0].quality > 0); /* measured on the capture */
    abis_subject_view_free(v);
}

static void test_iris_identify_finds_the_eye(void **state)
{
    fx *f = *state;
    abis_id ids[5];
    for (int eye = 1; eye <= 5; eye++)
        ids[eye - 1] = enroll_eye(f, eye);
    size_t len, n = 0;
    unsigned char *b = eye_image(3, 2, 2, &len);
    abis_template_input t = iris_input(b, len);
    abis_candidate c[3];
    assert_status(
        abis_subject_identify(f->e, NULL, "city", "border.control", &t, 1, 3, c, &n, &f->err),
        ABIS_OK, &f->err);
    free(b);
    assert_int_equal(n, 1);
    assert_memory_equal(c[0].subject_id.bytes, ids[2].bytes, ABIS_ID_BYTES);
}

static void test_iris_record_is_read_as_capture(void **state)
{
    fx *f = *state;
    abis_id a = enroll_eye(f, 1);
    size_t len;
    unsigned char *bmp = eye_image(1, 2, 2, &len);
    abis_image img;
    assert_status(abis_image_decode(bmp, len, "eye", &img, &f->err), ABIS_OK, &f->err);
    free(bmp);
    unsigned char *rec;
    size_t rlen;
    assert_status(abis_iris_record_encode(&img, 2, &rec, &rlen, &f->err), ABIS_OK, &f->err);
    abis_image_free(&img);
    assert_int_equal(verify_with(f, &a, rec, rlen), ABIS_MATCH);
    /* A truncated record is refused with the reason. */
    abis_template_input t = iris_input(rec, rlen - 100);
    abis_verify_result r;
    assert_status(abis_subject_verify(f->e, NULL, &a, "border.control", &t, 1, &r, &f->err),
                  ABIS_E_INVALID, &f->err);
    assert_non_null(strstr(f->err.message, "iris record"));
    free(rec);
}

static void test_iris_bad_input_is_refused_with_reason(void **state)
{
    fx *f = *state;
    abis_id a = enroll_eye(f, 1);
    abis_template_input t = iris_input((const unsigned char *)"not an image at all", 19);
    abis_verify_result r;
    assert_status(abis_subject_verify(f->e, NULL, &a, "border.control", &t, 1, &r, &f->err),
                  ABIS_E_INVALID, &f->err);
    /* Named once: "probe: unknown image format ...". */
    assert_non_null(strstr(f->err.message, "probe: unknown image format"));
    assert_null(strstr(f->err.message, "probe: probe"));
    float v[4] = {1, 0, 0, 0};
    abis_template_input vec = {.modality = "iris", .vector = v, .dim = 4, .quality = -1};
    assert_status(abis_subject_verify(f->e, NULL, &a, "border.control", &vec, 1, &r, &f->err),
                  ABIS_E_INVALID, &f->err);
    assert_non_null(strstr(f->err.message, "takes eye images"));
}

/* Two-eye persons.  CASIA-IrisV1 does not say which eye classes belong to
 * one person, so person p is made of eye classes 2p - 1 (as the right eye,
 * position 1) and 2p (as the left eye, position 2): a synthetic pairing of
 * independent eyes, as docs/IRIS.md describes for the fused figures. */
enum { RIGHT = 1, LEFT = 2 };

typedef struct two_eyes {
    unsigned char *bytes[2];
    size_t len[2];
    abis_template_input t[2];
} two_eyes;

/* Person p's images of session/k as probes (or enrolment templates); with
 * `swap` each image is labelled with the other eye's position. */
static void person_eyes(int p, int session, int k, int swap, two_eyes *x)
{
    for (int i = 0; i < 2; i++) {
        x->bytes[i] = eye_image(2 * p - 1 + i, session, k, &x->len[i]);
        x->t[i] = iris_input(x->bytes[i], x->len[i]);
        x->t[i].position = (i == 0) != (swap != 0) ? RIGHT : LEFT;
    }
}

static void two_eyes_free(two_eyes *x)
{
    free(x->bytes[0]);
    free(x->bytes[1]);
}

static abis_id enroll_person(fx *f, int p)
{
    two_eyes x;
    person_eyes(p, 1, 1, 0, &x);
    abis_enroll_request req = {.segment = "city", .templates = x.t, .n_templates = 2};
    abis_enroll_result res;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_OK, &f->err);
    two_eyes_free(&x);
    return res.subject_id;
}

static abis_verify_result verify_eyes(fx *f, const abis_id *id, const abis_template_input *t,
                                      size_t n)
{
    abis_verify_result r;
    assert_status(abis_subject_verify(f->e, NULL, id, "border.control", t, n, &r, &f->err), ABIS_OK,
                  &f->err);
    return r;
}

static void test_two_eyes_verify_fuses_both(void **state)
{
    fx *f = *state;
    abis_id a = enroll_person(f, 1);
    enroll_person(f, 2);
    two_eyes x;
    person_eyes(1, 2, 1, 0, &x);
    abis_verify_result right = verify_eyes(f, &a, &x.t[0], 1);
    abis_verify_result left = verify_eyes(f, &a, &x.t[1], 1);
    abis_verify_result both = verify_eyes(f, &a, x.t, 2);
    two_eyes_free(&x);
    assert_int_equal(both.decision, ABIS_MATCH);
    /* Fused evidence is stronger than either eye's alone (the best-probe
     * fallback would report twice the better eye's FMR instead). */
    assert_true(both.fmr < right.fmr && both.fmr < left.fmr);
    /* The other person's eyes, and this person's eyes at the wrong
     * positions (each compared with the other eye), do not match. */
    person_eyes(2, 2, 1, 0, &x);
    assert_int_equal(verify_eyes(f, &a, x.t, 2).decision, ABIS_NO_MATCH);
    two_eyes_free(&x);
    person_eyes(1, 2, 1, 1, &x);
    assert_int_equal(verify_eyes(f, &a, x.t, 2).decision, ABIS_NO_MATCH);
    two_eyes_free(&x);
}

/* Identify with person p's session-2 image k of both eyes (positions
 * swapped with `swap`); returns the number of candidates, up to 3 in c. */
static size_t identify_eyes(fx *f, int p, int k, int swap, abis_candidate c[3])
{
    two_eyes x;
    size_t n = 0;
    person_eyes(p, 2, k, swap, &x);
    assert_status(
        abis_subject_identify(f->e, NULL, "city", "border.control", x.t, 2, 3, c, &n, &f->err),
        ABIS_OK, &f->err);
    two_eyes_free(&x);
    return n;
}

static void test_two_eyes_identify_fuses_both(void **state)
{
    fx *f = *state;
    abis_id ids[3];
    for (int p = 1; p <= 3; p++)
        ids[p - 1] = enroll_person(f, p);
    abis_candidate c[3];
    assert_int_equal(identify_eyes(f, 2, 3, 0, c), 1);
    assert_memory_equal(c[0].subject_id.bytes, ids[1].bytes, ABIS_ID_BYTES);
    /* Positions count: the same images labelled with the wrong eyes are
     * scored against the other eye of each candidate and find no one. */
    assert_int_equal(identify_eyes(f, 2, 3, 1, c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_iris_verify_across_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iris_identify_finds_the_eye, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iris_record_is_read_as_capture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iris_bad_input_is_refused_with_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_eyes_verify_fuses_both, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_eyes_identify_fuses_both, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
