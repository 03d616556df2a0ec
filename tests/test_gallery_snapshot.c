/* test_gallery_snapshot.c: saving the vector gallery to an encrypted snapshot
 * and loading it back (src/gallery/snapshot.h, gallery_vector.c): round
 * trip with the graph index, subject renumbering, and refusal of every kind
 * of damage, another key, another header, a missing file and an unknown
 * subject -- each leaving the gallery empty. */
#include "testutil.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gallery/gallery_vector.h"

enum { D = 40, N = 3000 };

static abis_id make_id(uint64_t k, uint8_t tag)
{
    abis_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &k, sizeof k);
    id.bytes[15] = tag;
    return id;
}

/* Slots are subjects: slot s <-> subject id make_id(s, 0xA5); loading can
 * shift them by `shift` (as a reopened segment may number subjects anew). */
typedef struct subjects {
    abis_id ids[N + 1];
    uint32_t shift;
    int forget; /* slot_of does not know this subject (-1: none) */
} subjects;

static const abis_id *subject_of(void *ctx, uint32_t slot)
{
    return &((subjects *)ctx)->ids[slot];
}

static int64_t slot_of(void *ctx, const abis_id *subject)
{
    subjects *s = ctx;
    uint64_t k;
    memcpy(&k, subject->bytes, sizeof k);
    if (k > N || (int)k == s->forget)
        return -1;
    return (int64_t)k + s->shift;
}

typedef struct fixture {
    char *dir;
    char path[PATH_MAX];
    abis_key key;
    subjects subj;
    abis_snapshot_io io;
} fixture;

static int setup(void **state)
{
    if (abis_crypto_init(NULL) != ABIS_OK)
        return -1;
    fixture *f = calloc(1, sizeof *f);
    f->dir = abis_test_tmpdir("gsnap");
    snprintf(f->path, sizeof f->path, "%s/g.snap", f->dir);
    abis_key_random(&f->key);
    for (uint64_t s = 0; s <= N; s++)
        f->subj.ids[s] = make_id(s, 0xA5);
    f->subj.forget = -1;
    f->io = (abis_snapshot_io){.path = f->path,
                               .key = &f->key,
                               .head = {ABIS_SNAPSHOT_VERSION, ABIS_SNAPSHOT_KIND_VECTOR, 7, 3, 42,
                                        {1, 2, 3}},
                               .subject_of = subject_of,
                               .slot_of = slot_of,
                               .ctx = &f->subj};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    abis_test_rmdir(f->dir);
    free(f);
    return 0;
}

static abis_gallery *make(void)
{
    abis_vector_config c;
    abis_vector_config_default(&c);
    c.background = 0;
    c.index_min = 500;
    abis_gallery *g = NULL;
    abis_error err = {0};
    assert_status(abis_gallery_vector_create_with(D, &c, &g, &err), ABIS_OK, &err);
    return g;
}

/* A gallery of N subjects, some with two templates, a few removed. */
static abis_gallery *populated(void)
{
    abis_gallery *g = make();
    float v[D];
    abis_error err = {0};
    for (uint64_t s = 0; s < N; s++)
        for (uint64_t k = 0; k < 1 + (s % 4 == 0); k++) {
            abis_synth_sample(17, s, k, 0.6, v, D);
            abis_id id = make_id(s * 2 + k, 0x7E);
            assert_status(g->ops->add(g, &id, (uint32_t)s, v, sizeof v, &err), ABIS_OK, &err);
        }
    for (uint64_t s = 0; s < N; s += 50) {
        abis_id id = make_id(s * 2, 0x7E);
        assert_int_equal(g->ops->remove(g, &id), 1);
    }
    assert_status(abis_gallery_vector_sync(g, &err), ABIS_OK, &err);
    return g;
}

/* Exact and pre-selected answers of a and b agree (b's slots shifted). */
static void same_answers(abis_gallery *a, abis_gallery *b, uint32_t shift)
{
    abis_hit ha[10], hb[10];
    float q[D];
    for (int pre = 0; pre <= 1; pre++)
        for (uint64_t t = 0; t < 40; t++) {
            abis_synth_sample(17, t * 71 % N, 9, 0.6, q, D);
            abis_search_opts o = {.preselect = pre};
            size_t na = 0, nb = 0;
            abis_error err = {0};
            assert_status(abis_gallery_search(a, q, sizeof q, 10, NULL, &o, ha, &na, &err), ABIS_OK,
                          &err);
            assert_status(abis_gallery_search(b, q, sizeof q, 10, NULL, &o, hb, &nb, &err), ABIS_OK,
                          &err);
            assert_int_equal(na, nb);
            for (size_t i = 0; i < na; i++) {
                assert_int_equal(ha[i].slot + shift, hb[i].slot);
                assert_true(ha[i].score == hb[i].score);
                assert_memory_equal(&ha[i].template_id, &hb[i].template_id, sizeof(abis_id));
            }
        }
}

static void test_round_trip_keeps_rows_and_graph(void **state)
{
    fixture *f = *state;
    abis_gallery *a = populated();
    abis_error err = {0};
    assert_status(a->ops->snapshot_save(a, &f->io, &err), ABIS_OK, &err);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    abis_gallery *b = make();
    f->subj.shift = 5;
    assert_status(b->ops->snapshot_load(b, &f->io, &err), ABIS_OK, &err);
    abis_vector_stats sa, sbb;
    abis_gallery_vector_stats(a, &sa);
    abis_gallery_vector_stats(b, &sbb);
    assert_int_equal(sbb.live, sa.live);
    assert_int_equal(sbb.rows, sa.live); /* written compacted */
    assert_int_equal(sbb.indexed, sa.indexed);
    same_answers(a, b, 5);
    /* an unchanged gallery is not written again ... */
    assert_int_equal(stat(f->path, &sb), 0);
    time_t before = sb.st_mtime;
    ino_t ino = sb.st_ino;
    assert_status(b->ops->snapshot_save(b, &f->io, &err), ABIS_OK, &err);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_ino, ino);
    assert_int_equal(sb.st_mtime, before);
    /* ... and removing a template removes the file at once */
    abis_id gone = make_id(2, 0x7E);
    assert_int_equal(b->ops->remove(b, &gone), 1);
    assert_int_not_equal(stat(f->path, &sb), 0);
    abis_gallery_destroy(a);
    abis_gallery_destroy(b);
}

/* Load must fail with `want` and leave the gallery empty and usable. */
static void load_fails(fixture *f, abis_status want)
{
    abis_gallery *b = make();
    abis_error err = {0};
    assert_int_equal(b->ops->snapshot_load(b, &f->io, &err), want);
    assert_true(strlen(err.message) > 0);
    assert_int_equal(b->ops->count(b), 0);
    float v[D];
    abis_synth_identity(1, 1, v, D);
    abis_id id = make_id(1, 1);
    assert_status(b->ops->add(b, &id, 0, v, sizeof v, &err), ABIS_OK, &err);
    abis_gallery_destroy(b);
}

static void test_damage_is_detected(void **state)
{
    fixture *f = *state;
    abis_gallery *a = populated();
    abis_error err = {0};
    assert_status(a->ops->snapshot_save(a, &f->io, &err), ABIS_OK, &err);
    size_t len = 0;
    unsigned char *orig = abis_test_read_file(f->path, &len);
    assert_non_null(orig);
    /* one flipped byte anywhere: header, stream header, length, first and
     * later messages, the final tag */
    size_t offsets[] = {0, 9, 20, 40, 71, 72, 90, 96, 97, 200, len / 3, len / 2, len - 20, len - 1};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        unsigned char *c = malloc(len);
        memcpy(c, orig, len);
        c[offsets[i]] ^= 0x10;
        FILE *fp = fopen(f->path, "wb");
        fwrite(c, 1, len, fp);
        fclose(fp);
        free(c);
        load_fails(f, ABIS_E_CRYPTO);
    }
    /* truncated anywhere, or with bytes appended */
    size_t cuts[] = {0, 10, 72, 96, 100, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        FILE *fp = fopen(f->path, "wb");
        fwrite(orig, 1, cuts[i], fp);
        fclose(fp);
        load_fails(f, ABIS_E_CRYPTO);
    }
    FILE *fp = fopen(f->path, "wb");
    fwrite(orig, 1, len, fp);
    fwrite("x", 1, 1, fp);
    fclose(fp);
    load_fails(f, ABIS_E_CRYPTO);
    /* intact again: loads */
    fp = fopen(f->path, "wb");
    fwrite(orig, 1, len, fp);
    fclose(fp);
    abis_gallery *b = make();
    assert_status(b->ops->snapshot_load(b, &f->io, &err), ABIS_OK, &err);
    abis_gallery_destroy(b);
    free(orig);
    abis_gallery_destroy(a);
}

static void test_wrong_key_header_file_or_subject(void **state)
{
    fixture *f = *state;
    abis_error err = {0};
    load_fails(f, ABIS_E_NOT_FOUND); /* no file yet */
    abis_snapshot_head h;
    assert_int_equal(abis_snapshot_peek(f->path, &h, &err), ABIS_E_NOT_FOUND);
    abis_gallery *a = populated();
    assert_status(a->ops->snapshot_save(a, &f->io, &err), ABIS_OK, &err);
    assert_status(abis_snapshot_peek(f->path, &h, &err), ABIS_OK, &err);
    assert_int_equal(h.audit_seq, 42);
    assert_int_equal(h.segment_id, 7);
    assert_int_equal(h.modality_id, 3);
    abis_key right = f->key;
    abis_key_random(&f->key);
    load_fails(f, ABIS_E_CRYPTO);
    f->key = right;
    f->io.head.audit_seq = 43; /* a different point in the store's history */
    load_fails(f, ABIS_E_CRYPTO);
    f->io.head.audit_seq = 42;
    f->io.head.modality_id = 4;
    load_fails(f, ABIS_E_CRYPTO);
    f->io.head.modality_id = 3;
    f->subj.forget = 77; /* a subject deleted from the store */
    load_fails(f, ABIS_E_NOT_FOUND);
    f->subj.forget = -1;
    abis_gallery *b = make();
    assert_status(b->ops->snapshot_load(b, &f->io, &err), ABIS_OK, &err);
    same_answers(a, b, 0);
    abis_gallery_destroy(b);
    abis_gallery_destroy(a);
}

static void test_gallery_without_graph_and_empty_gallery(void **state)
{
    fixture *f = *state;
    abis_gallery *e = make();
    abis_error err = {0};
    assert_status(e->ops->snapshot_save(e, &f->io, &err), ABIS_OK, &err);
    abis_gallery *b = make();
    assert_status(b->ops->snapshot_load(b, &f->io, &err), ABIS_OK, &err);
    assert_int_equal(b->ops->count(b), 0);
    abis_gallery_destroy(b);
    /* 100 rows: below index_min, no graph */
    float v[D];
    for (uint64_t s = 0; s < 100; s++) {
        abis_synth_sample(17, s, 0, 0.6, v, D);
        abis_id id = make_id(s, 0x7E);
        assert_status(e->ops->add(e, &id, (uint32_t)s, v, sizeof v, &err), ABIS_OK, &err);
    }
    assert_status(e->ops->snapshot_save(e, &f->io, &err), ABIS_OK, &err);
    b = make();
    assert_status(b->ops->snapshot_load(b, &f->io, &err), ABIS_OK, &err);
    same_answers(e, b, 0);
    abis_gallery_destroy(b);
    abis_gallery_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_keeps_rows_and_graph, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_is_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_header_file_or_subject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gallery_without_graph_and_empty_gallery, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
