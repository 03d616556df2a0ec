/*
 * test_engine_snapshot.c: gallery snapshots through the engine, on a real
 * store: written at close, used at the next open when fresh and intact,
 * rebuilt from the store when missing, stale or corrupt, and removed as soon
 * as a template is deleted.
 *
 * Whether a reopened engine used the snapshot or rebuilt its gallery is seen
 * from the file: a gallery loaded from its snapshot and not changed is not
 * written again at close (the same bytes), while a rebuilt one is (every
 * write starts a new random stream, so the bytes differ).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define DIM 64
#define SEED 9
#define PEOPLE 150

typedef struct fx {
    char *dir;
    char snap[PATH_MAX];
    abis_engine *e;
    abis_error err;
} fx;

static const char *purpose = "gate";

static void open_engine(fx *f)
{
    abis_open_options o = {.data_dir = f->dir, .actor = "test"};
    assert_status(abis_engine_open(&o, &f->e, &f->err), ABIS_OK, &f->err);
}

static abis_template_input face(float *buf, uint64_t person, uint64_t sample)
{
    abis_synth_sample(SEED, person, sample, ABIS_SYNTH_SIGMA, buf, DIM);
    return (abis_template_input){.modality = "face", .vector = buf, .dim = DIM, .quality = -1};
}

static abis_id enroll(fx *f, uint64_t person)
{
    float v[DIM];
    abis_template_input t = face(v, person, 0);
    const char *consents[] = {purpose};
    abis_enroll_request req = {
        .segment = "city", .templates = &t, .n_templates = 1, .consents = consents, .n_consents = 1};
    abis_enroll_result res;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_OK, &f->err);
    return res.subject_id;
}

/* The subject found first for a probe of `person`, or all zeros. */
static abis_id identify(fx *f, uint64_t person)
{
    float v[DIM];
    abis_template_input t = face(v, person, 1);
    abis_candidate c[3];
    size_t n = 0;
    assert_status(abis_subject_identify(f->e, NULL, "city", purpose, &t, 1, 3, c, &n, &f->err),
                  ABIS_OK, &f->err);
    abis_id none = {{0}};
    return n ? c[0].subject_id : none;
}

static abis_id ids[PEOPLE + 10];

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = abis_test_tmpdir("esnap");
    unsetenv("ABIS_MASTER_KEY");
    assert_status(abis_store_init(f->dir, &f->err), ABIS_OK, &f->err);
    open_engine(f);
    assert_status(abis_segment_add(f->e, NULL, "city", &f->err), ABIS_OK, &f->err);
    abis_purpose_def p = {.name = purpose, .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4};
    assert_status(abis_purpose_add(f->e, NULL, &p, &f->err), ABIS_OK, &f->err);
    assert_status(abis_modality_add(f->e, NULL, "face", "vector", DIM, &f->err), ABIS_OK, &f->err);
    for (uint64_t i = 0; i < PEOPLE; i++)
        ids[i] = enroll(f, i);
    /* the first (and only) segment and modality have id 1 */
    snprintf(f->snap, sizeof f->snap, "%s/galleries/1-1.snap", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    abis_engine_close(f->e);
    abis_test_rmdir(f->dir);
    free(f);
    return 0;
}

/* The snapshot's bytes (NULL when there is no file); *len gets the size. */
static unsigned char *bytes(const fx *f, size_t *len)
{
    return abis_test_read_file(f->snap, len);
}

static int exists(const fx *f)
{
    struct stat sb;
    return stat(f->snap, &sb) == 0;
}

static int same_bytes(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
    return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

static void found(fx *f, uint64_t person, const abis_id *want)
{
    abis_id got = identify(f, person);
    assert_memory_equal(&got, want, sizeof got);
}

static void test_snapshot_written_at_close_and_used_at_open(void **state)
{
    fx *f = *state;
    found(f, 5, &ids[5]); /* builds the gallery from the store */
    abis_engine_close(f->e);
    size_t len1 = 0, len2 = 0;
    unsigned char *first = bytes(f, &len1);
    assert_non_null(first);
    struct stat sb;
    assert_int_equal(stat(f->snap, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_true(abis_test_file_contains(f->snap, "ABISSNAP", 8)); /* our header */
    open_engine(f);
    for (uint64_t p = 0; p < PEOPLE; p += 7)
        found(f, p, &ids[p]);
    abis_engine_close(f->e); /* loaded and unchanged: not written again */
    unsigned char *second = bytes(f, &len2);
    assert_true(same_bytes(first, len1, second, len2));
    free(first);
    free(second);
    open_engine(f);
}

static void test_corrupt_snapshot_is_rebuilt_from_the_store(void **state)
{
    fx *f = *state;
    found(f, 1, &ids[1]);
    abis_engine_close(f->e);
    size_t len = 0;
    unsigned char *b = abis_test_read_file(f->snap, &len);
    assert_non_null(b);
    b[len / 2] ^= 0x01; /* one bit in the middle of the encrypted body */
    FILE *fp = fopen(f->snap, "wb");
    fwrite(b, 1, len, fp);
    fclose(fp);
    open_engine(f);
    for (uint64_t p = 0; p < PEOPLE; p += 5) /* every answer right: rebuilt */
        found(f, p, &ids[p]);
    abis_engine_close(f->e); /* and written anew */
    size_t len2 = 0;
    unsigned char *again = bytes(f, &len2);
    assert_non_null(again);
    assert_false(same_bytes(b, len, again, len2));
    free(b);
    free(again);
    open_engine(f);
    found(f, 9, &ids[9]);
}

static void test_stale_snapshot_is_rebuilt_from_the_store(void **state)
{
    fx *f = *state;
    found(f, 2, &ids[2]);
    abis_engine_close(f->e);
    char old[PATH_MAX + 8];
    snprintf(old, sizeof old, "%s.old", f->snap);
    assert_int_equal(abis_test_copy_file(f->snap, old), 0);
    /* the store moves on: a new person is enrolled (as if the process then
     * died before writing a new snapshot, the old one is put back) */
    open_engine(f);
    ids[PEOPLE] = enroll(f, PEOPLE);
    found(f, 3, &ids[3]); /* searches in between leave a snapshot fresh ... */
    abis_engine_close(f->e);
    assert_int_equal(rename(old, f->snap), 0);
    open_engine(f);
    found(f, PEOPLE, &ids[PEOPLE]); /* ... an enrolment does not: rebuilt */
    found(f, 4, &ids[4]);
}

static void test_missing_snapshot_is_rebuilt(void **state)
{
    fx *f = *state;
    found(f, 6, &ids[6]);
    abis_engine_close(f->e);
    assert_int_equal(unlink(f->snap), 0);
    open_engine(f);
    found(f, 6, &ids[6]);
    abis_engine_close(f->e);
    assert_true(exists(f));
    open_engine(f);
}

static void test_deletion_removes_the_snapshot_at_once(void **state)
{
    fx *f = *state;
    found(f, 7, &ids[7]);
    abis_engine_close(f->e);
    assert_true(exists(f));
    /* deleted while the gallery is loaded, and while it is not */
    open_engine(f);
    found(f, 8, &ids[8]);
    assert_status(abis_subject_delete(f->e, NULL, &ids[7], &f->err), ABIS_OK, &f->err);
    assert_false(exists(f));
    abis_id none = {{0}};
    found(f, 7, &none);
    abis_engine_close(f->e);
    assert_true(exists(f));
    open_engine(f);
    assert_status(abis_subject_delete(f->e, NULL, &ids[8], &f->err), ABIS_OK, &f->err);
    assert_false(exists(f));
    abis_engine_close(f->e);
    open_engine(f);
    found(f, 7, &none);
    found(f, 8, &none);
    found(f, 10, &ids[10]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_written_at_close_and_used_at_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_snapshot_is_rebuilt_from_the_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stale_snapshot_is_rebuilt_from_the_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_snapshot_is_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletion_removes_the_snapshot_at_once, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
