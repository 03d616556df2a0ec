/*
 * iris_synth.h: synthetic near-infrared eye images with known pupil, limbus
 * and eyelids, for the iris tests (segmentation accuracy, encoding
 * invariants, capture formats).
 */
#ifndef ABIS_TEST_IRIS_SYNTH_H
#define ABIS_TEST_IRIS_SYNTH_H

#include "modality/image.h"

#define ABIS_TEST_EYE_W 320 /* CASIA-IrisV1's image size */
#define ABIS_TEST_EYE_H 280

typedef struct abis_test_eye {
    double px, py, pr, ix, iy, ir; /* pupil and limbus circles, pixels */
    double rot;                    /* radians the whole eye is turned by */
    unsigned seed;                 /* iris texture */
    double lid_top;                /* rows above are upper eyelid skin (0: none) */
    double lid_bottom;             /* rows below are lower eyelid skin (0: none) */
    double lid_curv;               /* lids bend towards the pupil by lid_curv (x - ix)^2 */
    double lid_level;              /* eyelid skin grey level (0: 175) */
} abis_test_eye;

/* A 320 x 280 eye with a 40-px pupil and a 105-px iris, no eyelids. */
extern const abis_test_eye abis_test_base_eye;
/* The same with a smaller pupil whose centre is 8 px left of and 6 px above
 * the iris's (non-concentric circles). */
extern const abis_test_eye abis_test_offset_eye;

/* Draw an eye: pupil 30, textured iris around 110, sclera 190.  The texture
 * is a sum of angular x radial sinusoids in the iris's own polar frame, so
 * turning the eye by `rot` turns the texture with it.  The caller frees the
 * pixels (abis_image_free). */
abis_image abis_test_draw_eye(const abis_test_eye *e);

#endif
