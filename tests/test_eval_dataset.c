/*
 * test_eval_dataset.c: labelled evaluation sets (src/eval/dataset.c) and the
 * protocols over them (src/eval/protocol.c): each layout on template folders
 * made here with synthetic .npy vectors, the real public layouts under
 * /work/shared/data when present (counts only), failures counted as FTE/FTA,
 * malformed list lines reported with their numbers, and the pair counts of
 * every protocol.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/modality.h"
#include "eval/dataset.h"
#include "eval/protocol.h"

#define DIM 16
#define SEED 77u

static const char *shared_data(void)
{
    const char *d = getenv("ABIS_SHARED_DATA");
    return d && *d ? d : "/work/shared/data";
}

/* ---- making template folders ------------------------------------------------- */

static void mkdir_p(const char *root, const char *rel)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    for (char *p = buf + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

static void write_file(const char *root, const char *rel, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir_p(root, path + strlen(root) + (strlen(path) > strlen(root) ? 1 : 0));
    *slash = '/';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A .npy file (v1, <f4, 1-D) of sample `sample` of person `person`, `dim` values. */
static void write_npy(const char *root, const char *rel, uint64_t person, uint64_t sample,
                      size_t dim)
{
    float v[512];
    abis_synth_sample(SEED, person, sample, 0.5, v, dim);
    char header[128];
    int n = snprintf(header, sizeof header,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu,), }", dim);
    int pad = (64 - (10 + n + 1) % 64) % 64;
    unsigned char buf[4096];
    size_t len = 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    len = 8;
    unsigned short hlen = (unsigned short)(n + pad + 1);
    buf[len++] = hlen & 0xff;
    buf[len++] = hlen >> 8;
    memcpy(buf + len, header, (size_t)n);
    len += (size_t)n;
    memset(buf + len, ' ', (size_t)pad);
    len += (size_t)pad;
    buf[len++] = '\n';
    memcpy(buf + len, v, dim * sizeof(float));
    len += dim * sizeof(float);
    write_file(root, rel, buf, len);
}

static void write_text(const char *root, const char *rel, const char *text)
{
    write_file(root, rel, text, strlen(text));
}

static abis_modality_rec vector_rec(const char *name, int dim)
{
    abis_modality_rec m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.kind, sizeof m.kind, "vector");
    m.dim = dim;
    return m;
}

static void load_ok(abis_eval_set *set, const char *path, abis_eval_layout layout,
                    const char *pairs)
{
    abis_error err = {0};
    assert_status(abis_eval_set_load(set, path, layout, pairs, &err), ABIS_OK, &err);
}

static void templates_ok(abis_eval_templates *t, const abis_eval_set *set, const char *modality,
                         int dim)
{
    abis_error err = {0};
    abis_modality_rec m = vector_rec(modality, dim);
    assert_status(abis_eval_templates_load(t, set, NULL, abis_modality_kind_find("vector"), &m, 1,
                                           NULL, &err),
                  ABIS_OK, &err);
}

static int has_problem(const abis_eval_set *set, const char *needle)
{
    for (size_t i = 0; i < set->n_problems && i < ABIS_EVAL_MAX_PROBLEMS; i++)
        if (strstr(set->problems[i], needle))
            return 1;
    return 0;
}

/* ---- layouts on made folders --------------------------------------------------- */

static void test_folder_layout_one_folder_per_identity(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("evds");
    char rel[256];
    for (int p = 0; p < 5; p++)
        for (int s = 0; s < 3; s++) {
            snprintf(rel, sizeof rel, "person%d/sample-%d.npy", p, s);
            write_npy(dir, rel, (uint64_t)p, (uint64_t)s, DIM);
        }
    write_text(dir, "person0/notes.txt", "not a sample");
    abis_eval_set set;
    load_ok(&set, dir, ABIS_LAYOUT_AUTO, NULL);
    assert_int_equal(set.layout, ABIS_LAYOUT_FOLDER);
    assert_int_equal(set.n_identities, 5);
    assert_int_equal(set.n_records, 15);
    assert_int_equal(set.n_skipped, 1);
    assert_string_equal(set.identities[set.records[0].identity], "person0");
    assert_string_equal(set.records[0].key, "person0/sample-0.npy");
    abis_eval_templates t;
    templates_ok(&t, &set, "face", DIM);
    assert_int_equal(t.attempted, 15);
    assert_int_equal(t.fte + t.fta, 0);
    abis_eval_templates_free(&t);
    abis_eval_set_free(&set);
    abis_test_rmdir(dir);
}

static void test_fvc_layout_names_and_protocol_counts(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("evds");
    char rel[256];
    for (int f = 101; f <= 110; f++)
        for (int i = 1; i <= 8; i++) {
            snprintf(rel, sizeof rel, "DB1_B/%d_%d.npy", f, i);
            write_npy(dir, rel, (uint64_t)f, (uint64_t)i, DIM);
        }
    abis_eval_set set;
    load_ok(&set, dir, ABIS_LAYOUT_AUTO, NULL);
    assert_int_equal(set.layout, ABIS_LAYOUT_FVC);
    assert_int_equal(set.n_identities, 10);
    assert_int_equal(set.n_records, 80);
    assert_string_equal(set.identities[0], "DB1_B/101");
    assert_int_equal(set.records[0].number, 1);
    abis_eval_templates t;
    templates_ok(&t, &set, "finger", DIM);
    abis_error err = {0};
    abis_eval_scores s;
    abis_eval_scores_init(&s, "fvc");
    abis_eval_run_opts o = {.threads = 2};
    assert_status(abis_eval_run_verification(&set, &t, ABIS_PROTOCOL_FVC, &o, &s, &err), ABIS_OK,
                  &err);
    assert_int_equal(s.n_genuine, 10 * 28); /* C(8,2) per finger */
    assert_int_equal(s.n_impostor, 45);     /* C(10,2) first impressions */
    abis_eval_scores_free(&s);
    abis_eval_scores_init(&s, "all");
    assert_status(abis_eval_run_verification(&set, &t, ABIS_PROTOCOL_ALL, &o, &s, &err), ABIS_OK,
                  &err);
    assert_int_equal(s.n_genuine, 280);
    assert_int_equal(s.n_impostor, 80 * 79 / 2 - 280);
    abis_eval_scores_free(&s);
    abis_eval_templates_free(&t);
    abis_eval_set_free(&set);
    abis_test_rmdir(dir);
}

static void test_lfw_layout_and_pairs_file(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("evds");
    const char *names[] = {"Ann_Smith", "Bob_Jones", "Cy_Young"};
    char rel[256];
    for (int p = 0; p < 3; p++)
        for (int i = 1; i <= 3; i++) {
            snprintf(rel, sizeof rel, "lfw/%s/%s_%04d.npy", names[p], names[p], i);
            write_npy(dir, rel, (uint64_t)p, (uint64_t)i, DIM);
        }
    write_text(dir, "pairs.txt",
               "1\t3\n"
               "Ann_Smith\t1\t2\n"
               "Bob_Jones\t1\t3\n"
               "Cy_Young\t2\t9\n" /* no image 9: unresolved */
               "Ann_Smith\t1\tBob_Jones\t2\n"
               "Bob_Jones\t3\tCy_Young\t1\n"
               "Nobody\t1\tCy_Young\t1\n"
               "garbage line\n");
    char root[4096], pairs[4096];
    snprintf(root, sizeof root, "%s/lfw", dir);
    snprintf(pairs, sizeof pairs, "%s/pairs.txt", dir);
    abis_eval_set set;
    load_ok(&set, root, ABIS_LAYOUT_AUTO, pairs);
    assert_int_equal(set.layout, ABIS_LAYOUT_LFW);
    assert_int_equal(set.n_identities, 3);
    assert_int_equal(set.n_records, 9);
    assert_int_equal(set.pairs_genuine_listed, 3);
    assert_int_equal(set.pairs_impostor_listed, 3);
    assert_int_equal(set.n_pairs, 4);
    assert_int_equal(set.pairs_unresolved, 2);
    assert_true(has_problem(&set, "pairs line 8"));
    abis_eval_templates t;
    templates_ok(&t, &set, "face", DIM);
    abis_error err = {0};
    abis_eval_scores s;
    abis_eval_scores_init(&s, "pairs");
    abis_eval_run_opts o = {.threads = 1};
    assert_status(abis_eval_run_verification(&set, &t, ABIS_PROTOCOL_PAIRS, &o, &s, &err), ABIS_OK,
                  &err);
    assert_int_equal(s.n_genuine, 2);
    assert_int_equal(s.n_impostor, 2);
    assert_true(s.genuine[0] > 0.5 && s.impostor[0] < 0.5);
    abis_eval_scores_free(&s);
    abis_eval_templates_free(&t);
    abis_eval_set_free(&set);
    abis_test_rmdir(dir);
}

static void test_casia_and_speaker_layouts(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("evds");
    char rel[256];
    for (int e = 1; e <= 3; e++)
        for (int s = 1; s <= 2; s++)
            for (int k = 1; k <= 3; k++) {
                snprintf(rel, sizeof rel, "casia/%03d/%d/%03d_%d_%d.npy", e, s, e, s, k);
                write_npy(dir, rel, (uint64_t)e, (uint64_t)(s * 10 + k), DIM);
            }
    const char *spk[] = {"george", "jackson"};
    for (int d = 0; d < 2; d++)
        for (int p = 0; p < 2; p++)
            for (int i = 5; i < 7; i++) {
                snprintf(rel, sizeof rel, "voice/fsdd/%d_%s_%d.npy", d, spk[p], i);
                write_npy(dir, rel, (uint64_t)p, (uint64_t)(d * 100 + i), DIM);
            }
    for (int u = 0; u < 3; u++) {
        snprintf(rel, sizeof rel, "voice/libri/1688/1688-142285-%04d.npy", u);
        write_npy(dir, rel, 1688, (uint64_t)u, DIM);
    }
    char root[4096];
    abis_eval_set set;
    snprintf(root, sizeof root, "%s/casia", dir);
    load_ok(&set, root, ABIS_LAYOUT_AUTO, NULL);
    assert_int_equal(set.layout, ABIS_LAYOUT_CASIA);
    assert_int_equal(set.n_identities, 3);
    assert_int_equal(set.n_records, 18);
    assert_string_equal(set.identities[0], "001");
    abis_eval_set_free(&set);
    snprintf(root, sizeof root, "%s/voice", dir);
    load_ok(&set, root, ABIS_LAYOUT_SPEAKER, NULL);
    assert_int_equal(set.n_identities, 3); /* george, jackson, 1688 */
    assert_int_equal(set.n_records, 11);
    abis_eval_set_free(&set);
    abis_test_rmdir(dir);
}

/* ---- lists ----------------------------------------------------------------------------- */

static void test_csv_list_with_header_and_bad_lines(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("evds");
    write_npy(dir, "t/a1.npy", 1, 1, DIM);
    write_npy(dir, "t/a2.npy", 1, 2, DIM);
    write_npy(dir, "t/b1.npy", 2, 1, DIM);
    write_text(dir, "t/short.f32", "abc"); /* 3 bytes: not a vector */
    write_text(dir, "set.csv",
               "identity,path\n"
               "alice,t/a1.npy\n"
               "alice,t/a2.npy\n"
               "bob,t/b1.npy\n"
               "just-one-field\n"
               "\"carol, jr\",t/short.f32\n"
               "dave,t/missing.npy\n"
               "erin,photos/erin.jpg\n");
    char path[4096];
    snprintf(path, sizeof path, "%s/set.csv", dir);
    abis_eval_set set;
    load_ok(&set, path, ABIS_LAYOUT_AUTO, NULL);
    assert_int_equal(set.layout, ABIS_LAYOUT_CSV);
    assert_int_equal(set.n_records, 6);
    assert_int_equal(set.n_identities, 5);
    assert_int_equal(set.n_problems, 1);
    assert_true(has_problem(&set, "line 5"));
    assert_string_equal(set.identities[2], "carol, jr");
    abis_eval_templates t;
    templates_ok(&t, &set, "face", DIM);
    assert_int_equal(t.attempted, 6);
    assert_int_equal(t.fte, 2); /* unreadable short.f32, missing.npy */
    assert_int_equal(t.fta, 1); /* a capture that is not there */
    assert_non_null(strstr(t.fta_reason, "cannot open"));
    abis_eval_templates_free(&t);
    /* The wrong size for the declared dimension is a failure to enrol too. */
    templates_ok(&t, &set, "face", DIM * 2);
    assert_int_equal(t.fte, 5);
    assert_non_null(strstr(t.fte_reason, "expects"));
    abis_eval_templates_free(&t);
    abis_eval_set_free(&set);
    abis_test_rmdir(dir);
}

static void test_jsonl_inline_multimodal_and_bad_lines(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("evds");
    write_npy(dir, "x.npy", 3, 1, 4);
    write_text(dir, "set.jsonl",
               "{\"identity\": \"a\", \"templates\": {\"face\": [1,0,0,0], \"voice\": [0,1,0]}}\n"
               "{\"identity\": \"a\", \"templates\": {\"face\": [1,0.1,0,0]}}\n"
               "{\"identity\": \"b\", \"vector\": [0,0,1,0]}\n"
               "{\"identity\": \"b\", \"path\": \"x.npy\"}\n"
               "not json\n"
               "{\"path\": \"x.npy\"}\n"
               "{\"identity\": \"c\", \"vector\": [1, \"x\"]}\n"
               "{\"identity\": \"c\", \"vector\": [0,0,0,0]}\n");
    char path[4096];
    snprintf(path, sizeof path, "%s/set.jsonl", dir);
    abis_eval_set set;
    load_ok(&set, path, ABIS_LAYOUT_AUTO, NULL);
    assert_int_equal(set.layout, ABIS_LAYOUT_JSONL);
    assert_int_equal(set.n_records, 5);
    assert_int_equal(set.n_problems, 3);
    assert_true(has_problem(&set, "line 5: invalid JSON"));
    assert_true(has_problem(&set, "line 6: no \"identity\""));
    assert_true(has_problem(&set, "line 7:"));
    assert_int_equal(set.n_modalities, 2);
    abis_eval_templates t;
    templates_ok(&t, &set, "face", 4);
    assert_int_equal(t.attempted, 5);
    assert_int_equal(t.fte, 1); /* the zero vector */
    abis_eval_templates_free(&t);
    templates_ok(&t, &set, "voice", 0); /* dimension from the data */
    assert_int_equal(t.mod.dim, 3);
    assert_int_equal(t.attempted, 4); /* line 2 carries no voice */
    assert_int_equal(t.fte, 3);       /* the 4-value vectors: wrong size */
    abis_eval_templates_free(&t);
    abis_eval_set_free(&set);
    abis_test_rmdir(dir);
}

static void test_unreadable_set_and_empty_set_are_errors(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("evds");
    abis_eval_set set;
    abis_error err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/none.csv", dir);
    assert_int_equal(abis_eval_set_load(&set, path, ABIS_LAYOUT_AUTO, NULL, &err), ABIS_E_IO);
    abis_eval_set_free(&set);
    assert_int_equal(abis_eval_set_load(&set, dir, ABIS_LAYOUT_AUTO, NULL, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "no samples"));
    abis_eval_set_free(&set);
    abis_test_rmdir(dir);
}

/* ---- protocols -------------------------------------------------------------------------- */

static void test_all_pairs_capped_and_1n_counts(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("evds");
    FILE *f;
    char path[4096];
    snprintf(path, sizeof path, "%s/set.jsonl", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    float v[DIM];
    for (int p = 0; p < 30; p++)
        for (int s = 0; s < 3; s++) {
            abis_synth_sample(SEED, (uint64_t)p, (uint64_t)s, 0.5, v, DIM);
            fprintf(f, "{\"identity\": \"p%d\", \"vector\": [", p);
            for (int i = 0; i < DIM; i++)
                fprintf(f, i ? ",%.8g" : "%.8g", v[i]);
            fprintf(f, "]}\n");
        }
    fclose(f);
    abis_eval_set set;
    load_ok(&set, path, ABIS_LAYOUT_AUTO, NULL);
    abis_eval_templates t;
    templates_ok(&t, &set, "face", DIM);
    abis_error err = {0};
    abis_eval_scores s;
    abis_eval_scores_init(&s, "capped");
    abis_eval_run_opts o = {.threads = 3, .max_impostors = 500, .seed = 4};
    assert_status(abis_eval_run_verification(&set, &t, ABIS_PROTOCOL_ALL, &o, &s, &err), ABIS_OK,
                  &err);
    assert_int_equal(s.n_genuine, 30 * 3);
    assert_int_equal(s.n_impostor, 500);
    for (size_t i = 0; i < s.n_impostor; i++)
        assert_int_not_equal(s.imp_id_a[i], s.imp_id_b[i]);
    abis_eval_scores_free(&s);

    /* Scores of the uncapped run do not depend on the number of threads. */
    abis_eval_scores s1, s4;
    abis_eval_scores_init(&s1, "1");
    abis_eval_scores_init(&s4, "4");
    abis_eval_run_opts o1 = {.threads = 1}, o4 = {.threads = 4};
    assert_status(abis_eval_run_verification(&set, &t, ABIS_PROTOCOL_ALL, &o1, &s1, &err), ABIS_OK,
                  &err);
    assert_status(abis_eval_run_verification(&set, &t, ABIS_PROTOCOL_ALL, &o4, &s4, &err), ABIS_OK,
                  &err);
    assert_int_equal(s1.n_impostor, 90 * 89 / 2 - 90);
    assert_memory_equal(s1.impostor, s4.impostor, s1.n_impostor * sizeof(double));
    assert_memory_equal(s1.imp_id_b, s4.imp_id_b, s1.n_impostor * sizeof(uint32_t));
    abis_eval_scores_free(&s1);
    abis_eval_scores_free(&s4);

    abis_eval_ident id;
    abis_eval_ident_init(&id, "1n", 0, ABIS_EVAL_MAX_RANK);
    abis_eval_run_opts oi = {.threads = 2, .nonmated_share = 0.2, .seed = 3};
    assert_status(abis_eval_run_identification(&set, &t, &oi, &id, &err), ABIS_OK, &err);
    assert_int_equal(id.gallery_size, 24);
    assert_int_equal(id.n_mated, 24 * 2);
    assert_int_equal(id.n_nonmated, 6 * 3);
    size_t first = 0;
    for (size_t i = 0; i < id.n_mated; i++) {
        assert_true(id.mated_rank[i] <= ABIS_EVAL_MAX_RANK);
        assert_false(isnan(id.mated_score[i]));
        first += id.mated_rank[i] == 1;
    }
    assert_true(first * 10 >= id.n_mated * 9); /* sigma 0.5: the mate nearly always wins */
    abis_eval_ident_free(&id);
    abis_eval_templates_free(&t);
    abis_eval_set_free(&set);
    abis_test_rmdir(dir);
}

static void test_split_identities_is_disjoint_and_seeded(void **state)
{
    (void)state;
    abis_eval_set set;
    memset(&set, 0, sizeof set);
    abis_eval_record rec[40];
    memset(rec, 0, sizeof rec);
    for (int i = 0; i < 40; i++)
        rec[i].identity = (uint32_t)(i / 4);
    set.records = rec;
    set.n_records = 40;
    set.n_identities = 10;
    unsigned char a[40], b[40], a2[40], b2[40];
    abis_eval_split_identities(&set, NULL, 0.5, 9, a, b);
    abis_eval_split_identities(&set, NULL, 0.5, 9, a2, b2);
    assert_memory_equal(a, a2, 40);
    int na = 0;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(a[i] + b[i], 1);
        assert_int_equal(a[i], a[(i / 4) * 4]); /* whole identities */
        na += a[i];
    }
    assert_int_equal(na, 20);
}

/* ---- the real public layouts (counts only; the data is never copied) -------------- */

static int have(const char *rel, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", shared_data(), rel);
    return access(path, R_OK) == 0;
}

/* Load a real set; every sample is a capture, so with no extractor every one
 * is a failure to acquire, counted. */
static void real_set(const char *rel, abis_eval_layout layout, const char *pairs_rel,
                     uint32_t identities, size_t records, const char *modality)
{
    char path[4096], pairs[4096];
    if (!have(rel, path, sizeof path)) {
        printf("  (%s not present: skipped)\n", path);
        return;
    }
    if (pairs_rel)
        have(pairs_rel, pairs, sizeof pairs);
    abis_eval_set set;
    load_ok(&set, path, layout, pairs_rel ? pairs : NULL);
    assert_int_equal(set.n_identities, identities);
    assert_int_equal(set.n_records, records);
    assert_int_equal(set.n_problems, 0);
    if (pairs_rel) {
        assert_int_equal(set.pairs_genuine_listed, 1500);
        assert_int_equal(set.pairs_impostor_listed, 1500);
        assert_int_equal(set.n_pairs, 3000);
        assert_int_equal(set.pairs_unresolved, 0);
    }
    abis_eval_templates t;
    templates_ok(&t, &set, modality, 512);
    assert_int_equal(t.attempted, records);
    assert_int_equal(t.fta, records);
    assert_non_null(strstr(t.fta_reason, "needs an extractor"));
    abis_eval_templates_free(&t);
    abis_eval_set_free(&set);
}

/* "2 1": two folds, each one genuine then one impostor line; a line that
 * names a missing sample still takes its place in its fold. */
static void test_pairs_file_folds(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("evds");
    const char *names[] = {"Ann_Smith", "Bob_Jones"};
    char rel[256];
    for (int p = 0; p < 2; p++)
        for (int i = 1; i <= 2; i++) {
            snprintf(rel, sizeof rel, "lfw/%s/%s_%04d.npy", names[p], names[p], i);
            write_npy(dir, rel, (uint64_t)p, (uint64_t)i, DIM);
        }
    write_text(dir, "pairs.txt",
               "2\t1\n"
               "Ann_Smith\t1\t9\n" /* fold 1, unresolved */
               "Ann_Smith\t1\tBob_Jones\t1\n"
               "Bob_Jones\t1\t2\n" /* fold 2 */
               "Ann_Smith\t2\tBob_Jones\t2\n");
    char root[4096], pairs[4096];
    snprintf(root, sizeof root, "%s/lfw", dir);
    snprintf(pairs, sizeof pairs, "%s/pairs.txt", dir);
    abis_eval_set set;
    load_ok(&set, root, ABIS_LAYOUT_LFW, pairs);
    assert_int_equal(set.pairs_folds, 2);
    assert_int_equal(set.n_pairs, 3);
    assert_int_equal(set.pairs[0].fold, 0);
    assert_int_equal(set.pairs[1].fold, 1);
    assert_int_equal(set.pairs[2].fold, 1);
    abis_eval_set_free(&set);
    abis_test_rmdir(dir);
}

static void test_real_fvc2002_layout_counts(void **state)
{
    (void)state;
    real_set("finger/fvc2002/DB1_B", ABIS_LAYOUT_AUTO, NULL, 10, 80, "finger");
    real_set("finger/fvc2002", ABIS_LAYOUT_FVC, NULL, 30, 240, "finger");
}

static void test_real_lfw_pairs_counts(void **state)
{
    (void)state;
    real_set("face/lfw", ABIS_LAYOUT_LFW, "face/lfw_pairs_dev.txt", 2835, 6165, "face");
}

static void test_real_casia_and_speaker_counts(void **state)
{
    (void)state;
    real_set("iris/casia-v1", ABIS_LAYOUT_AUTO, NULL, 54, 378, "iris");
    real_set("voice/fsdd", ABIS_LAYOUT_AUTO, NULL, 6, 2700, "voice");
    real_set("voice/librispeech_test-other", ABIS_LAYOUT_SPEAKER, NULL, 5, 50, "voice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folder_layout_one_folder_per_identity),
        cmocka_unit_test(test_fvc_layout_names_and_protocol_counts),
        cmocka_unit_test(test_lfw_layout_and_pairs_file),
        cmocka_unit_test(test_casia_and_speaker_layouts),
        cmocka_unit_test(test_csv_list_with_header_and_bad_lines),
        cmocka_unit_test(test_jsonl_inline_multimodal_and_bad_lines),
        cmocka_unit_test(test_unreadable_set_and_empty_set_are_errors),
        cmocka_unit_test(test_all_pairs_capped_and_1n_counts),
        cmocka_unit_test(test_split_identities_is_disjoint_and_seeded),
        cmocka_unit_test(test_pairs_file_folds),
        cmocka_unit_test(test_real_fvc2002_layout_counts),
        cmocka_unit_test(test_real_lfw_pairs_counts),
        cmocka_unit_test(test_real_casia_and_speaker_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
