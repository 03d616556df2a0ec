/*
 * options.c: the face pipeline's options (abis/face.h): defaults, setting
 * them by name, and the process-wide set the "face" modality kind uses.
 * Why each default is what it is: docs/face.md.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abis/face.h"

void abis_face_options_default(abis_face_options *o)
{
    memset(o, 0, sizeof *o);
    o->detector = ABIS_FACE_SSD;
    o->tiny_input_size = 416;     /* TinyYolov2Options' default */
    o->min_detection_score = 0.5; /* face-api's default for both detectors */
    o->take_largest = 0;
    o->max_pixels = 40000000;
    o->retry_margin = 0.25;
    o->min_eye_distance = 20;
    o->min_sharpness = 5;
    o->max_yaw = 45;
    o->max_roll = 30;
    o->max_pitch = 40;
    o->min_brightness = 35;
    o->max_brightness = 225;
}

typedef enum kind { K_DOUBLE, K_SIZE, K_FLAG, K_INT } kind;

static const struct {
    const char *name;
    kind k;
    size_t off;
    double lo, hi;
} fields[] = {
    {"tiny_input_size", K_INT, offsetof(abis_face_options, tiny_input_size), 32, 4096},
    {"min_detection_score", K_DOUBLE, offsetof(abis_face_options, min_detection_score), 0.01, 0.99},
    {"take_largest", K_FLAG, offsetof(abis_face_options, take_largest), 0, 1},
    {"max_pixels", K_SIZE, offsetof(abis_face_options, max_pixels), 1, 1e9},
    {"retry_margin", K_DOUBLE, offsetof(abis_face_options, retry_margin), 0, 2},
    {"min_eye_distance", K_DOUBLE, offsetof(abis_face_options, min_eye_distance), 0, 10000},
    {"min_sharpness", K_DOUBLE, offsetof(abis_face_options, min_sharpness), 0, 1e6},
    {"max_yaw", K_DOUBLE, offsetof(abis_face_options, max_yaw), 0, 180},
    {"max_roll", K_DOUBLE, offsetof(abis_face_options, max_roll), 0, 180},
    {"max_pitch", K_DOUBLE, offsetof(abis_face_options, max_pitch), 0, 180},
    {"min_brightness", K_DOUBLE, offsetof(abis_face_options, min_brightness), 0, 255},
    {"max_brightness", K_DOUBLE, offsetof(abis_face_options, max_brightness), 0, 255},
};

abis_status abis_face_options_set(abis_face_options *o, const char *name, const char *value,
                                  abis_error *err)
{
    if (strcmp(name, "detector") == 0) {
        if (strcmp(value, "ssd") == 0)
            o->detector = ABIS_FACE_SSD;
        else if (strcmp(value, "tiny") == 0)
            o->detector = ABIS_FACE_TINY;
        else
            return abis_error_set(err, ABIS_E_INVALID,
                                  "face option detector: '%s' is not ssd or tiny", value);
        return ABIS_OK;
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(fields[i].name, name) != 0)
            continue;
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (!value[0] || *end || errno || !isfinite(v) || v < fields[i].lo || v > fields[i].hi ||
            (fields[i].k != K_DOUBLE && v != floor(v)))
            return abis_error_set(
                err, ABIS_E_INVALID, "face option %s: '%s' is not a%s number from %g to %g", name,
                value, fields[i].k == K_DOUBLE ? "" : " whole", fields[i].lo, fields[i].hi);
        char *p = (char *)o + fields[i].off;
        switch (fields[i].k) {
        case K_DOUBLE:
            *(double *)p = v;
            break;
        case K_SIZE:
            *(size_t *)p = (size_t)v;
            break;
        case K_FLAG:
        case K_INT:
            if (strcmp(name, "tiny_input_size") == 0 && (int)v % 32 != 0)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "face option tiny_input_size: %s is not a multiple of 32",
                                      value);
            *(int *)p = (int)v;
            break;
        }
        return ABIS_OK;
    }
    return abis_error_set(err, ABIS_E_INVALID,
                          "unknown face option '%s' (known: detector, tiny_input_size, "
                          "min_detection_score, take_largest, max_pixels, retry_margin, "
                          "min_eye_distance, "
                          "min_sharpness, max_yaw, max_roll, max_pitch, min_brightness, "
                          "max_brightness)",
                          name);
}

abis_status abis_face_options_parse(abis_face_options *o, const char *list, abis_error *err)
{
    char buf[1024];
    if (strlen(list) >= sizeof buf)
        return abis_error_set(err, ABIS_E_INVALID, "face options: list too long");
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        char *eq = strchr(item, '=');
        if (!eq)
            return abis_error_set(err, ABIS_E_INVALID, "face option '%s': expected NAME=VALUE",
                                  item);
        *eq = '\0';
        abis_status st = abis_face_options_set(o, item, eq + 1, err);
        if (st != ABIS_OK)
            return st;
    }
    return ABIS_OK;
}

/* ---- the process-wide options ------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;
static abis_face_options current;
static char models_dir[4096];

/* The defaults with ABIS_FACE_OPTIONS applied (its errors are reported by
 * the extraction that uses the options: see face_configured_status). */
static abis_status env_status = ABIS_OK;
static abis_error env_error;

static void init_locked(void)
{
    if (ready)
        return;
    abis_face_options_default(&current);
    const char *env = getenv("ABIS_FACE_OPTIONS");
    if (env && env[0] &&
        (env_status = abis_face_options_parse(&current, env, &env_error)) != ABIS_OK)
        abis_error_prefix(&env_error, "ABIS_FACE_OPTIONS");
    ready = 1;
}

abis_status abis_face_configure(const abis_face_options *o, abis_error *err)
{
    if (o->models_dir && strlen(o->models_dir) >= sizeof models_dir)
        return abis_error_set(err, ABIS_E_INVALID, "face models folder name too long");
    pthread_mutex_lock(&lock);
    init_locked();
    current = *o;
    if (o->models_dir) {
        memmove(models_dir, o->models_dir, strlen(o->models_dir) + 1);
        current.models_dir = models_dir;
    }
    env_status = ABIS_OK;
    pthread_mutex_unlock(&lock);
    return ABIS_OK;
}

void abis_face_configured(abis_face_options *o)
{
    pthread_mutex_lock(&lock);
    init_locked();
    *o = current;
    pthread_mutex_unlock(&lock);
}

abis_status face_configured_status(abis_face_options *o, char *dir, size_t cap, abis_error *err)
{
    pthread_mutex_lock(&lock);
    init_locked();
    *o = current;
    if (o->models_dir) { /* copied under the lock: a later configure may rewrite it */
        snprintf(dir, cap, "%s", o->models_dir);
        o->models_dir = dir;
    }
    abis_status st = env_status;
    if (st != ABIS_OK && err)
        *err = env_error;
    pthread_mutex_unlock(&lock);
    return st;
}
