/*
 * abis/face.h: turning a face photo into a face template, in libabis, with
 * no Python, GPU or vendor SDK: the networks of the npm package
 * @vladmandic/face-api (MIT), run by OpenABIS's own C inference engine.
 *
 *   photo (JPEG, PNG, BMP, TIFF, PGM; EXIF orientation honoured)
 *     -> face detection (SSD MobileNet v1 by default, or the tiny detector)
 *     -> 68 facial landmarks
 *     -> the descriptor crop, exactly as face-api makes it from the landmarks
 *     -> a 128-value descriptor (dlib's ResNet face recognition network)
 *     -> the quality gate: a face too small, blurred, turned, dark or
 *        overexposed is refused with the reason
 *
 * Descriptors are compared by Euclidean distance, the way the network was
 * trained (dlib: same person below about 0.6); the "face" modality kind
 * reports score = 1 - distance.  The photo's pixels are wiped as soon as the
 * descriptor is made; nothing of the photo is kept.  docs/face.md has the
 * details and the measured accuracy and speed.
 *
 * The weights are read at run time from the package's model/ folder:
 * options.models_dir, else $ABIS_FACE_MODELS, else where `make models`
 * installs them.  They are loaded once per process and shared by all
 * threads; abis_face_extract is thread-safe and runs on its caller's thread.
 */
#ifndef ABIS_FACE_H
#define ABIS_FACE_H

#include <stddef.h>

#include "abis/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ABIS_FACE_DIM 128      /* values in a face descriptor */
#define ABIS_FACE_LANDMARKS 68 /* iBUG 300-W points */

typedef enum abis_face_detector {
    ABIS_FACE_SSD = 0, /* SSD MobileNet v1 at 512 x 512: the more accurate (default) */
    ABIS_FACE_TINY = 1 /* the tiny YOLOv2-style detector: about 4 times faster */
} abis_face_detector;

/* How photos are turned into descriptors, and the quality gate.  Start from
 * abis_face_options_default and change what you need, or set fields by name
 * (abis_face_options_set: "min_eye_distance=40").  Each default and why is
 * in docs/face.md. */
typedef struct abis_face_options {
    const char *models_dir;      /* NULL: $ABIS_FACE_MODELS, else the built-in folder */
    abis_face_detector detector; /* "detector": ssd | tiny */
    int tiny_input_size;         /* "tiny_input_size": multiple of 32 (416) */
    double min_detection_score;  /* "min_detection_score": 0..1 (0.5) */
    int take_largest;            /* "take_largest": 0 refuses a photo with several faces;
                                  * 1 takes the largest (0) */
    size_t max_pixels;           /* "max_pixels": larger photos are refused (40e6) */
    double retry_margin;         /* "retry_margin": when no face is found, detect again with
                                  * a grey margin of this share of the longer side all round
                                  * (tightly cropped portraits); 0: no retry (0.25) */
    /* the quality gate (a check is off when its limit is 0, or 180 for angles) */
    double min_eye_distance; /* "min_eye_distance": pixels between the eye centres (20) */
    double min_sharpness;    /* "min_sharpness": variance of the Laplacian of the
                              * 150 x 150 crop, grey levels squared (5) */
    double max_yaw;          /* "max_yaw": degrees, estimated from the landmarks (45) */
    double max_roll;         /* "max_roll": degrees, the tilt of the eye line (30) */
    double max_pitch;        /* "max_pitch": degrees, estimated from the landmarks (40) */
    double min_brightness;   /* "min_brightness": mean grey of the face, 0..255 (35) */
    double max_brightness;   /* "max_brightness": mean grey of the face, 0..255 (225) */
} abis_face_options;

/* The defaults (documented in docs/face.md). */
void abis_face_options_default(abis_face_options *o);
/* Set one option by the name in its comment ("detector", "tiny"); ABIS_E_INVALID
 * names the option and the values it takes. */
abis_status abis_face_options_set(abis_face_options *o, const char *name, const char *value,
                                  abis_error *err);
/* Set several: "name=value,name=value" (also NAME=VALUE alone). */
abis_status abis_face_options_parse(abis_face_options *o, const char *list, abis_error *err);

/* What the pipeline found and measured on one photo. */
typedef struct abis_face_info {
    int width, height;                        /* the photo, upright */
    int faces;                                /* faces detected */
    double box[4];                            /* the face used: x, y, width, height */
    double score;                             /* its detection score */
    float landmarks[2 * ABIS_FACE_LANDMARKS]; /* x, y of each point, photo pixels */
    int crop[4];                              /* the descriptor crop: x, y, width, height */
    double eye_distance, sharpness, yaw, roll, pitch, brightness;
    double quality; /* 0..100 (docs/face.md) */
} abis_face_info;

/* Make the descriptor of the one face in a photo held in memory.  `info` (may
 * be NULL) gets what was found, also when the photo is refused.  Errors:
 * ABIS_E_INVALID for a photo that is not an image, is corrupt, truncated or
 * too large, shows no face or several (without take_largest), or fails the
 * quality gate ("face refused: eyes 14 pixels apart, at least 20 needed");
 * ABIS_E_IO when the weights cannot be read; ABIS_E_NOMEM. */
abis_status abis_face_extract(const void *photo, size_t len, const abis_face_options *o,
                              float descriptor[ABIS_FACE_DIM], abis_face_info *info,
                              abis_error *err);

/* Euclidean distance between two descriptors. */
double abis_face_distance(const float a[ABIS_FACE_DIM], const float b[ABIS_FACE_DIM]);

/* The options the "face" modality kind uses for every capture in this
 * process (the defaults until set; ABIS_FACE_OPTIONS in the environment,
 * "name=value,...", is applied first).  The strings are copied. */
abis_status abis_face_configure(const abis_face_options *o, abis_error *err);
/* A copy of those options (models_dir points into libabis and stays valid
 * until the next abis_face_configure; do not free). */
void abis_face_configured(abis_face_options *o);

#ifdef __cplusplus
}
#endif
#endif
