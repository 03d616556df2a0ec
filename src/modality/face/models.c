/*
 * models.c: the face networks, loaded from a weights folder once per
 * process and shared by every thread (face.h).  A process normally uses one
 * folder; a few are kept side by side (a test with a broken copy, say).
 * A folder that fails to load is not remembered, so installing the weights
 * and trying again works without a restart.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modality/face/face.h"

#ifndef ABIS_FACE_MODELS_DEFAULT
#define ABIS_FACE_MODELS_DEFAULT "models/node_modules/@vladmandic/face-api/model"
#endif

#define MAX_FOLDERS 4

struct face_models {
    char dir[4096];
    nn_ssd *ssd; /* each network loaded when first needed */
    nn_tinyface *tiny;
    nn_landmarks *landmarks;
    nn_facerec *facerec;
};

static face_models folders[MAX_FOLDERS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

const char *face_models_dir(const abis_face_options *o)
{
    if (o && o->models_dir && o->models_dir[0])
        return o->models_dir;
    const char *env = getenv("ABIS_FACE_MODELS");
    return env && env[0] ? env : ABIS_FACE_MODELS_DEFAULT;
}

static abis_status hint(abis_error *err, abis_status st, const char *dir)
{
    if (st == ABIS_E_NOMEM)
        return st;
    abis_error_prefix(err,
                      "cannot load the face networks from %s (install them with `make "
                      "models`, or point ABIS_FACE_MODELS at face-api's model/ folder)",
                      dir);
    return st;
}

abis_status face_models_get(const abis_face_options *o, face_models **out, abis_error *err)
{
    const char *dir = face_models_dir(o);
    if (strlen(dir) >= sizeof folders[0].dir)
        return abis_error_set(err, ABIS_E_INVALID, "face networks: folder name too long");
    pthread_mutex_lock(&lock);
    face_models *m = NULL;
    for (int i = 0; i < MAX_FOLDERS && !m; i++)
        if (strcmp(folders[i].dir, dir) == 0)
            m = &folders[i];
    for (int i = 0; i < MAX_FOLDERS && !m; i++)
        if (!folders[i].dir[0]) {
            m = &folders[i];
            snprintf(m->dir, sizeof m->dir, "%s", dir);
        }
    abis_status st = ABIS_OK;
    if (!m)
        st = abis_error_set(err, ABIS_E_INVALID,
                            "face networks: more than %d weights folders in one process",
                            MAX_FOLDERS);
    if (st == ABIS_OK && !m->landmarks)
        st = nn_landmarks_load(dir, &m->landmarks, err);
    if (st == ABIS_OK && !m->facerec)
        st = nn_facerec_load(dir, &m->facerec, err);
    if (st == ABIS_OK && o->detector == ABIS_FACE_TINY && !m->tiny)
        st = nn_tinyface_load(dir, &m->tiny, err);
    if (st == ABIS_OK && o->detector == ABIS_FACE_SSD && !m->ssd)
        st = nn_ssd_load(dir, &m->ssd, err);
    pthread_mutex_unlock(&lock);
    if (st != ABIS_OK)
        return hint(err, st, dir);
    *out = m;
    return ABIS_OK;
}

const nn_ssd *face_models_ssd(const face_models *m)
{
    return m->ssd;
}

const nn_tinyface *face_models_tiny(const face_models *m)
{
    return m->tiny;
}

const nn_landmarks *face_models_landmarks(const face_models *m)
{
    return m->landmarks;
}

const nn_facerec *face_models_facerec(const face_models *m)
{
    return m->facerec;
}
