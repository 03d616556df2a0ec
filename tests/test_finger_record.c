/*
 * test_finger_record.c: finger minutiae records (ISO/IEC 19794-2:2005, ANSI
 * INCITS 378-2004) and the stored template format: fixtures built byte by
 * byte as the standards lay them out are read, written back identically,
 * converted between the two; malformed records and templates are refused
 * with the reason.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modality/finger/finger.h"

/* ISO/IEC 19794-2:2005, one finger view (right index, quality 80), five
 * minutiae, no extended data: 24 + 4 + 5 * 6 + 2 = 60 bytes. */
static const unsigned char iso_fixture[60] = {
    'F',  'M',  'R',  0,    ' ',  '2',  '0', 0, /* format identifier, version */
    0x00, 0x00, 0x00, 0x3C,                     /* record length 60 */
    0x00, 0x00,                                 /* capture equipment */
    0x01, 0x80, 0x01, 0x68,                     /* image 384 x 360 */
    0x00, 0xC5, 0x00, 0xC5,                     /* 197 x 197 pixels/cm (500 ppi) */
    0x01, 0x00,                                 /* one finger view, reserved */
    0x02, 0x00, 0x50, 0x05,             /* finger 2, view 0 / live plain, quality 80, 5 minutiae */
    0x40, 0x64, 0x00, 0x78, 0x40, 0x3C, /* ending (100, 120), 64 = 90 deg, quality 60 */
    0x80, 0xC8, 0x00, 0x96, 0x80, 0x46, /* bifurcation (200, 150), 128 = 180 deg, 70 */
    0x40, 0x32, 0x01, 0x2C, 0x00, 0x32, /* ending (50, 300), 0 deg, 50 */
    0x80, 0xFA, 0x00, 0xC8, 0xC0, 0x5A, /* bifurcation (250, 200), 192 = 270 deg, 90 */
    0x01, 0x2C, 0x00, 0x32, 0x20, 0x28, /* other (300, 50), 32 = 45 deg, 40 */
    0x00, 0x00,                         /* extended data length 0 */
};

/* The same view in ANSI INCITS 378-2004: 26 + 4 + 30 + 2 = 62 bytes. */
static const unsigned char ansi_fixture[62] = {
    'F',  'M',  'R',  0,    ' ',  '2',  '0', 0, /* format identifier, version */
    0x00, 0x3E,                                 /* record length 62 */
    0x12, 0x34, 0x56, 0x78,                     /* CBEFF product identifier (owner, type) */
    0x00, 0x00,                                 /* capture equipment */
    0x01, 0x80, 0x01, 0x68,                     /* image 384 x 360 */
    0x00, 0xC5, 0x00, 0xC5,                     /* 197 x 197 pixels/cm */
    0x01, 0x00,                                 /* one finger view, reserved */
    0x02, 0x00, 0x50, 0x05,                     /* finger 2, view 0, quality 80, 5 minutiae */
    0x40, 0x64, 0x00, 0x78, 0x2D, 0x3C,         /* ending (100, 120), 45 = 90 deg */
    0x80, 0xC8, 0x00, 0x96, 0x5A, 0x46,         /* bifurcation (200, 150), 90 = 180 deg */
    0x40, 0x32, 0x01, 0x2C, 0x00, 0x32,         /* ending (50, 300), 0 */
    0x80, 0xFA, 0x00, 0xC8, 0x87, 0x5A,         /* bifurcation (250, 200), 135 = 270 deg */
    0x01, 0x2C, 0x00, 0x32, 0x16, 0x28,         /* other (300, 50), 22 = 44 deg */
    0x00, 0x00,                                 /* extended data length 0 */
};

static const struct {
    float x, y, deg;
    int type, quality;
} expected[5] = {{100, 120, 90, 1, 60},
                 {200, 150, 180, 2, 70},
                 {50, 300, 0, 1, 50},
                 {250, 200, 270, 2, 90},
                 {300, 50, 45, 0, 40}};

static double deg_diff(double rad, double deg)
{
    double d = fabs(fmod(rad * 180 / M_PI - deg, 360));
    return d > 180 ? 360 - d : d;
}

static void check_fixture_template(const abis_finger_template *t, double angle_tol)
{
    assert_int_equal(t->position, 2);
    assert_int_equal(t->quality, 80);
    assert_int_equal(t->width, 384);
    assert_int_equal(t->height, 360);
    assert_int_equal(t->n, 5);
    for (int i = 0; i < 5; i++) {
        assert_true(t->m[i].x == expected[i].x && t->m[i].y == expected[i].y);
        assert_int_equal(t->m[i].type, expected[i].type);
        assert_int_equal(t->m[i].quality, expected[i].quality);
        assert_true(deg_diff(t->m[i].angle, expected[i].deg) <= angle_tol);
    }
}

static void test_iso_fixture_read(void **state)
{
    (void)state;
    assert_int_equal(abis_finger_record_detect(iso_fixture, sizeof iso_fixture),
                     ABIS_FINGER_RECORD_ISO);
    abis_finger_template t;
    abis_error err = {0};
    assert_status(abis_finger_record_read(iso_fixture, sizeof iso_fixture, 0, &t, &err), ABIS_OK,
                  &err);
    check_fixture_template(&t, 0.01);
    /* asking for its finger reads it too */
    assert_status(abis_finger_record_read(iso_fixture, sizeof iso_fixture, 2, &t, &err), ABIS_OK,
                  &err);
}

static void test_ansi_fixture_read(void **state)
{
    (void)state;
    assert_int_equal(abis_finger_record_detect(ansi_fixture, sizeof ansi_fixture),
                     ABIS_FINGER_RECORD_ANSI);
    abis_finger_template t;
    abis_error err = {0};
    assert_status(abis_finger_record_read(ansi_fixture, sizeof ansi_fixture, 0, &t, &err), ABIS_OK,
                  &err);
    check_fixture_template(&t, 1.01); /* 44 degrees for 45: two-degree units */
}

static void test_writing_reproduces_the_fixtures(void **state)
{
    (void)state;
    abis_finger_template t;
    abis_error err = {0};
    assert_status(abis_finger_record_read(iso_fixture, sizeof iso_fixture, 0, &t, &err), ABIS_OK,
                  &err);
    const abis_finger_template *views[1] = {&t};
    unsigned char *out;
    size_t len;
    assert_status(abis_finger_record_write(ABIS_FINGER_RECORD_ISO, views, 1, &out, &len, &err),
                  ABIS_OK, &err);
    assert_int_equal(len, sizeof iso_fixture);
    assert_memory_equal(out, iso_fixture, len);
    free(out);
    assert_status(abis_finger_record_read(ansi_fixture, sizeof ansi_fixture, 0, &t, &err), ABIS_OK,
                  &err);
    assert_status(abis_finger_record_write(ABIS_FINGER_RECORD_ANSI, views, 1, &out, &len, &err),
                  ABIS_OK, &err);
    assert_int_equal(len, sizeof ansi_fixture);
    /* all but the CBEFF product identifier, which we write as 0 (unregistered) */
    assert_memory_equal(out, ansi_fixture, 10);
    assert_memory_equal(out + 10, "\0\0\0\0", 4);
    assert_memory_equal(out + 14, ansi_fixture + 14, len - 14);
    free(out);
}

static void test_iso_to_ansi_and_back(void **state)
{
    (void)state;
    abis_finger_template t, back;
    abis_error err = {0};
    assert_status(abis_finger_record_read(iso_fixture, sizeof iso_fixture, 0, &t, &err), ABIS_OK,
                  &err);
    const abis_finger_template *views[1] = {&t};
    unsigned char *out;
    size_t len;
    assert_status(abis_finger_record_write(ABIS_FINGER_RECORD_ANSI, views, 1, &out, &len, &err),
                  ABIS_OK, &err);
    assert_int_equal(abis_finger_record_detect(out, len), ABIS_FINGER_RECORD_ANSI);
    assert_status(abis_finger_record_read(out, len, 0, &back, &err), ABIS_OK, &err);
    check_fixture_template(&back, 1.01);
    free(out);
}

static void test_several_fingers_in_one_record(void **state)
{
    (void)state;
    abis_finger_template a, b;
    abis_error err = {0};
    assert_status(abis_finger_record_read(iso_fixture, sizeof iso_fixture, 0, &a, &err), ABIS_OK,
                  &err);
    b = a;
    b.position = 7;
    b.quality = 33;
    const abis_finger_template *views[2] = {&a, &b};
    for (int f = 1; f <= 2; f++) {
        unsigned char *out;
        size_t len;
        assert_status(
            abis_finger_record_write((abis_finger_record_format)f, views, 2, &out, &len, &err),
            ABIS_OK, &err);
        int pos[ABIS_FINGER_RECORD_MAX_VIEWS], n = 0;
        assert_status(abis_finger_record_views(out, len, pos, &n, &err), ABIS_OK, &err);
        assert_int_equal(n, 2);
        assert_int_equal(pos[0], 2);
        assert_int_equal(pos[1], 7);
        abis_finger_template t;
        assert_status(abis_finger_record_read(out, len, 7, &t, &err), ABIS_OK, &err);
        assert_int_equal(t.position, 7);
        assert_int_equal(t.quality, 33);
        assert_status(abis_finger_record_read(out, len, 0, &t, &err), ABIS_E_INVALID, &err);
        assert_non_null(strstr(err.message, "holds 2 finger views"));
        assert_status(abis_finger_record_read(out, len, 3, &t, &err), ABIS_E_INVALID, &err);
        assert_non_null(strstr(err.message, "no view of finger 3"));
        free(out);
    }
}

static void test_record_at_1000_ppi_is_scaled_to_500(void **state)
{
    (void)state;
    unsigned char rec[sizeof iso_fixture];
    memcpy(rec, iso_fixture, sizeof rec);
    rec[18] = 0x01, rec[19] = 0x8A; /* 394 px/cm = 1000.8 ppi */
    rec[20] = 0x01, rec[21] = 0x8A;
    abis_finger_template t;
    abis_error err = {0};
    assert_status(abis_finger_record_read(rec, sizeof rec, 0, &t, &err), ABIS_OK, &err);
    double k = 500 / (394 * 2.54);
    assert_true(fabs(t.m[0].x - 100 * k) < 0.01 && fabs(t.m[0].y - 120 * k) < 0.01);
    assert_int_equal(t.width, (int)lrint(384 * k));
}

static void test_extended_data_blocks_are_skipped(void **state)
{
    (void)state;
    unsigned char rec[sizeof iso_fixture + 6];
    memcpy(rec, iso_fixture, sizeof iso_fixture);
    rec[11] = (unsigned char)sizeof rec;
    /* extended data: 6 bytes, one block of type 0x0001 (ridge counts), 6 bytes long */
    unsigned char *e = rec + sizeof iso_fixture - 2;
    const unsigned char ext[8] = {0x00, 0x06, 0x00, 0x01, 0x00, 0x06, 0x00, 0x01};
    memcpy(e, ext, 8);
    abis_finger_template t;
    abis_error err = {0};
    assert_status(abis_finger_record_read(rec, sizeof rec, 0, &t, &err), ABIS_OK, &err);
    check_fixture_template(&t, 0.01);
    e[5] = 0x08; /* a block longer than the extended data */
    assert_status(abis_finger_record_read(rec, sizeof rec, 0, &t, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "extended data block"));
}

/* Refused with ABIS_E_INVALID and `why` in the message. */
static void refused(const unsigned char *rec, size_t len, const char *why)
{
    abis_finger_template t;
    abis_error err = {0};
    if (abis_finger_record_read(rec, len, 0, &t, &err) != ABIS_E_INVALID)
        fail_msg("not refused (expected: %s)", why);
    if (!strstr(err.message, why))
        fail_msg("'%s' does not say '%s'", err.message, why);
}

static void test_malformed_records_refused(void **state)
{
    (void)state;
    unsigned char r[sizeof iso_fixture];
    refused(iso_fixture, sizeof iso_fixture - 1, "truncated");
    refused(iso_fixture, 20, "truncated");
    refused((const unsigned char *)"not a record at all, sorry", 26,
            "not a finger minutiae record");
#define MUT(off, val, why)                                                                         \
    do {                                                                                           \
        memcpy(r, iso_fixture, sizeof r);                                                          \
        r[off] = (val);                                                                            \
        refused(r, sizeof r, why);                                                                 \
    } while (0)
    MUT(11, 0x40, "length field says 64");        /* length says more than given */
    MUT(11, 0x3B, "length field says 59");        /* ... or less */
    MUT(28, 0x7F, "outside the 384 x 360 image"); /* first minutia x = 16228 */
    MUT(30, 0x3F, "outside the 384 x 360 image"); /* its y = 16248 */
    MUT(28, 0xC0, "type code 3 is reserved");
    MUT(33, 101, "quality 101 is over 100");
    MUT(26, 101, "finger quality 101");
    MUT(24, 13, "finger position 13");
    MUT(22, 0, "no finger view");
    MUT(22, 2, "truncated in finger view 2");
    MUT(19, 0, "resolution 0 x 197");
    MUT(14, 0, "outside the 128 x 360 image"); /* a narrower image */
    MUT(23, 1, "reserved header byte");
    MUT(27, 6, "truncated in view 1"); /* six minutiae announced */
#undef MUT
    memcpy(r, iso_fixture, sizeof r);
    r[14] = r[15] = 0;
    refused(r, sizeof r, "image size 0 x 360");
    /* well formed, but three minutiae are too few to compare */
    unsigned char few[48];
    memcpy(few, iso_fixture, 28 + 3 * 6);
    few[11] = sizeof few;
    few[27] = 3;
    few[46] = few[47] = 0;
    refused(few, sizeof few, "has 3 minutiae");
    /* bytes after the last view */
    unsigned char longer[sizeof iso_fixture + 2];
    memcpy(longer, iso_fixture, sizeof iso_fixture);
    longer[11] = sizeof longer;
    longer[sizeof iso_fixture] = longer[sizeof iso_fixture + 1] = 0;
    refused(longer, sizeof longer, "after its last view");
    /* ANSI angles stop at 179 */
    unsigned char a[sizeof ansi_fixture];
    memcpy(a, ansi_fixture, sizeof a);
    a[34] = 180;
    refused(a, sizeof a, "angle 180 is out of range");
}

static void test_ansi_six_byte_length_detected(void **state)
{
    (void)state;
    /* a 0x0000 two-byte length, then a four-byte length of at least 64 KiB */
    const unsigned char big[16] = {'F', 'M', 'R', 0, ' ', '2', '0', 0, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(abis_finger_record_detect(big, sizeof big), ABIS_FINGER_RECORD_ANSI);
    assert_int_equal(abis_finger_record_detect(iso_fixture, 13), ABIS_FINGER_RECORD_NONE);
}

/* ---- the stored template ------------------------------------------------------ */

static void test_template_bytes_round_trip(void **state)
{
    (void)state;
    abis_finger_template t, back;
    abis_error err = {0};
    assert_status(abis_finger_record_read(iso_fixture, sizeof iso_fixture, 0, &t, &err), ABIS_OK,
                  &err);
    t.m[1].x = 200.25f; /* quarter pixels are kept */
    size_t len = abis_finger_template_size(t.n);
    assert_int_equal(len, 16 + 5 * 8);
    unsigned char buf[16 + 5 * 8];
    abis_finger_template_write(&t, buf);
    assert_memory_equal(buf, "AFM\1", 4);
    assert_status(abis_finger_template_read(buf, len, &back, &err), ABIS_OK, &err);
    assert_int_equal(back.n, 5);
    assert_int_equal(back.position, 2);
    assert_true(back.m[1].x == 200.25f);
    for (int i = 0; i < 5; i++)
        assert_true(deg_diff(back.m[i].angle, t.m[i].angle * 180 / M_PI) < 0.01);
    /* malformed: wrong length, bad magic, a minutia outside the image */
    assert_status(abis_finger_template_read(buf, len - 1, &back, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "5 minutiae make 56"));
    buf[0] = 'X';
    assert_status(abis_finger_template_read(buf, len, &back, &err), ABIS_E_INVALID, &err);
    buf[0] = 'A';
    buf[16] = 0xff, buf[17] = 0xff; /* x = 16383.75 px */
    assert_status(abis_finger_template_read(buf, len, &back, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "minutia 1"));
}

static void test_template_cap_keeps_the_best(void **state)
{
    (void)state;
    abis_finger_template t;
    memset(&t, 0, sizeof t);
    t.n = 10;
    for (int i = 0; i < 10; i++) {
        t.m[i].x = (float)(10 * i);
        t.m[i].quality = (uint8_t)(i % 2 ? 90 : 10);
    }
    abis_finger_template_cap(&t, 5);
    assert_int_equal(t.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(t.m[i].quality, 90);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_fixture_read),
        cmocka_unit_test(test_ansi_fixture_read),
        cmocka_unit_test(test_writing_reproduces_the_fixtures),
        cmocka_unit_test(test_iso_to_ansi_and_back),
        cmocka_unit_test(test_several_fingers_in_one_record),
        cmocka_unit_test(test_record_at_1000_ppi_is_scaled_to_500),
        cmocka_unit_test(test_extended_data_blocks_are_skipped),
        cmocka_unit_test(test_malformed_records_refused),
        cmocka_unit_test(test_ansi_six_byte_length_detected),
        cmocka_unit_test(test_template_bytes_round_trip),
        cmocka_unit_test(test_template_cap_keeps_the_best),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
