/* weights.c: the TensorFlow.js weights manifest and shard loader (weights.h). */
#include "nn/weights.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

/* Larger files than these are not weights of these networks. */
#define MANIFEST_MAX (1u << 20)
#define SHARD_MAX (256u << 20)
#define NAME_MAX_LEN 255

typedef struct nn_tensor_entry {
    char *name;
    int rank;
    int dims[4];
    size_t n;
    float *values;    /* NULL for tensors of other types (int32 constants) */
    unsigned char *q; /* the 8-bit codes of a uint8-quantised tensor, or NULL */
    float scale, min; /* their quantisation */
} nn_tensor_entry;

struct nn_weights {
    nn_tensor_entry *t;
    size_t n, values;
};

void nn_weights_free(nn_weights *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].values);
        free(w->t[i].q);
    }
    free(w->t);
    free(w);
}

/* IEEE 754 half precision to float. */
static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexpf((float)(mant | 0x400), exp - 25);
    return sign ? -v : v;
}

/* Bytes a stored value takes, and how it is stored. */
typedef enum store_type { ST_F32, ST_I32, ST_U8, ST_U16, ST_F16, ST_BOOL } store_type;

static abis_status parse_entry(json_t *spec, const char *manifest, nn_tensor_entry *e,
                               store_type *st, int *is_float_out, double *scale, double *min,
                               abis_error *err)
{
    const char *name = json_string_value(json_object_get(spec, "name"));
    const char *dtype = json_string_value(json_object_get(spec, "dtype"));
    json_t *shape = json_object_get(spec, "shape");
    if (!name || !dtype || !json_is_array(shape))
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: a weight entry lacks its name, dtype or shape", manifest);
    if (strlen(name) > NAME_MAX_LEN)
        return abis_error_set(err, ABIS_E_INVALID, "%s: a weight name is too long", manifest);
    if (json_array_size(shape) > 4)
        return abis_error_set(err, ABIS_E_INVALID, "%s: weight '%s' has %zu dimensions (at most 4)",
                              manifest, name, json_array_size(shape));
    e->rank = (int)json_array_size(shape);
    e->n = 1;
    for (int d = 0; d < e->rank; d++) {
        json_int_t v = json_integer_value(json_array_get(shape, (size_t)d));
        if (!json_is_integer(json_array_get(shape, (size_t)d)) || v < 0 || v > (1 << 24))
            return abis_error_set(err, ABIS_E_INVALID, "%s: weight '%s' has a bad shape", manifest,
                                  name);
        e->dims[d] = (int)v;
        e->n *= (size_t)v;
        if (e->n > SHARD_MAX)
            return abis_error_set(err, ABIS_E_INVALID, "%s: weight '%s' is too large", manifest,
                                  name);
    }
    int is_float = strcmp(dtype, "float32") == 0;
    if (!is_float && strcmp(dtype, "int32") != 0 && strcmp(dtype, "bool") != 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s: weight '%s' has unsupported dtype '%s'",
                              manifest, name, dtype);
    *st = is_float ? ST_F32 : strcmp(dtype, "int32") == 0 ? ST_I32 : ST_BOOL;
    *is_float_out = is_float;
    json_t *q = json_object_get(spec, "quantization");
    if (q) {
        const char *qt = json_string_value(json_object_get(q, "dtype"));
        if (qt && strcmp(qt, "float16") == 0 && is_float) {
            *st = ST_F16;
        } else if (qt && (strcmp(qt, "uint8") == 0 || strcmp(qt, "uint16") == 0)) {
            json_t *js = json_object_get(q, "scale"), *jm = json_object_get(q, "min");
            if (!json_is_number(js) || !json_is_number(jm))
                return abis_error_set(err, ABIS_E_INVALID,
                                      "%s: quantised weight '%s' lacks its scale or min", manifest,
                                      name);
            *scale = json_number_value(js);
            *min = json_number_value(jm);
            *st = qt[4] == '8' ? ST_U8 : ST_U16;
        } else {
            return abis_error_set(err, ABIS_E_INVALID,
                                  "%s: weight '%s' has unsupported quantisation '%s'", manifest,
                                  name, qt ? qt : "?");
        }
    }
    e->name = strdup(name);
    if (!e->name)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory loading %s", manifest);
    return ABIS_OK;
}

static size_t store_bytes(store_type st)
{
    switch (st) {
    case ST_U8:
    case ST_BOOL:
        return 1;
    case ST_U16:
    case ST_F16:
        return 2;
    case ST_F32:
    case ST_I32:
        return 4;
    }
    return 4;
}

/* Decode one tensor's stored bytes into floats (float tensors only: the
 * others are constants of the exported graph that the networks never read). */
static int decode(nn_tensor_entry *e, store_type st, double scale, double min,
                  const unsigned char *p)
{
    e->values = malloc((e->n ? e->n : 1) * sizeof(float));
    if (!e->values)
        return -1;
    if (st == ST_U8) { /* kept: the product kernels can read the codes (gemm.h) */
        e->q = malloc(e->n ? e->n : 1);
        if (!e->q)
            return -1;
        memcpy(e->q, p, e->n);
        e->scale = (float)scale;
        e->min = (float)min;
    }
    for (size_t i = 0; i < e->n; i++) {
        switch (st) {
        case ST_U8:
            e->values[i] = (float)(p[i] * scale + min);
            break;
        case ST_U16: {
            uint16_t q = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            e->values[i] = (float)(q * scale + min);
            break;
        }
        case ST_F16:
            e->values[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
            break;
        default: {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&e->values[i], &u, sizeof u);
        }
        }
    }
    return 0;
}

/* Read and concatenate a group's shards; *len gets the total. */
static abis_status read_group(const char *dir, json_t *paths, const char *manifest,
                              unsigned char **out, size_t *len, abis_error *err)
{
    *out = NULL;
    *len = 0;
    unsigned char *all = NULL;
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(paths); i++) {
        const char *name = json_string_value(json_array_get(paths, i));
        if (!name || !name[0] || strchr(name, '/') || strcmp(name, "..") == 0) {
            free(all);
            return abis_error_set(err, ABIS_E_INVALID,
                                  "%s: shard path '%s' is not a file name in the same folder",
                                  manifest, name ? name : "?");
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        unsigned char *buf;
        size_t n;
        abis_status st = abis_file_read(path, SHARD_MAX, &buf, &n, err);
        if (st != ABIS_OK) {
            free(all);
            return abis_error_prefix(err, "face network weights (%s)", manifest);
        }
        unsigned char *grown = realloc(all, total + n + 1);
        if (!grown) {
            free(buf);
            free(all);
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory loading %s", path);
        }
        all = grown;
        memcpy(all + total, buf, n);
        total += n;
        free(buf);
    }
    *out = all;
    *len = total;
    return ABIS_OK;
}

abis_status nn_weights_load(const char *dir, const char *model, nn_weights **out, abis_error *err)
{
    *out = NULL;
    char manifest[4096];
    snprintf(manifest, sizeof manifest, "%s/%s-weights_manifest.json", dir, model);
    unsigned char *text;
    size_t len;
    abis_status st = abis_file_read(manifest, MANIFEST_MAX, &text, &len, err);
    if (st != ABIS_OK)
        return abis_error_prefix(err, "face network weights");
    json_error_t jerr;
    json_t *root = json_loadb((const char *)text, len, 0, &jerr);
    free(text);
    if (!root || !json_is_array(root)) {
        json_decref(root);
        return abis_error_set(err, ABIS_E_INVALID, "%s: not a weights manifest (%s)", manifest,
                              root ? "not a JSON array" : jerr.text);
    }
    nn_weights *w = calloc(1, sizeof *w);
    if (!w) {
        json_decref(root);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory loading %s", manifest);
    }
    size_t cap = 0;
    for (size_t g = 0; g < json_array_size(root) && st == ABIS_OK; g++) {
        json_t *group = json_array_get(root, g);
        json_t *paths = json_object_get(group, "paths"), *specs = json_object_get(group, "weights");
        if (!json_is_array(paths) || !json_is_array(specs)) {
            st = abis_error_set(err, ABIS_E_INVALID, "%s: group %zu lacks paths or weights",
                                manifest, g);
            break;
        }
        unsigned char *data;
        size_t have;
        if ((st = read_group(dir, paths, manifest, &data, &have, err)) != ABIS_OK)
            break;
        size_t at = 0;
        for (size_t i = 0; i < json_array_size(specs) && st == ABIS_OK; i++) {
            if (w->n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                nn_tensor_entry *grown = realloc(w->t, nc * sizeof *grown);
                if (!grown) {
                    st = abis_error_set(err, ABIS_E_NOMEM, "out of memory loading %s", manifest);
                    break;
                }
                w->t = grown;
                cap = nc;
            }
            nn_tensor_entry *e = &w->t[w->n];
            memset(e, 0, sizeof *e);
            store_type stype = ST_F32;
            int is_float = 0;
            double scale = 1, min = 0;
            if ((st = parse_entry(json_array_get(specs, i), manifest, e, &stype, &is_float, &scale,
                                  &min, err)) != ABIS_OK)
                break;
            w->n++;
            size_t bytes = e->n * store_bytes(stype);
            if (bytes > have - at) {
                st = abis_error_set(err, ABIS_E_INVALID,
                                    "%s: the shards of group %zu are truncated (%zu bytes; the "
                                    "manifest needs %zu to hold weight '%s')",
                                    manifest, g, have, at + bytes, e->name);
                break;
            }
            if (is_float && decode(e, stype, scale, min, data + at) != 0) {
                st = abis_error_set(err, ABIS_E_NOMEM, "out of memory loading %s", manifest);
                break;
            }
            if (e->values)
                w->values += e->n;
            at += bytes;
        }
        if (st == ABIS_OK && at != have)
            st = abis_error_set(err, ABIS_E_INVALID,
                                "%s: the shards of group %zu hold %zu bytes but the manifest "
                                "describes %zu: wrong or damaged files",
                                manifest, g, have, at);
        free(data);
    }
    json_decref(root);
    if (st != ABIS_OK) {
        nn_weights_free(w);
        return st;
    }
    *out = w;
    return ABIS_OK;
}

static const nn_tensor_entry *find(const nn_weights *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return &w->t[i];
    return NULL;
}

const int *nn_weights_shape(const nn_weights *w, const char *name, int *rank)
{
    const nn_tensor_entry *e = find(w, name);
    if (!e)
        return NULL;
    *rank = e->rank;
    return e->dims;
}

static void shape_text(int rank, const int *dims, char *buf, size_t cap)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && at < cap; d++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%d", d ? ", " : "", dims[d]);
    if (at < cap)
        snprintf(buf + at, cap - at, "]");
}

const float *nn_weights_get(const nn_weights *w, const char *name, int rank, const int *shape,
                            abis_error *err)
{
    const nn_tensor_entry *e = find(w, name);
    if (!e) {
        abis_error_set(err, ABIS_E_INVALID, "face network weights: tensor '%s' is missing", name);
        return NULL;
    }
    int ok = e->values != NULL && (!shape || e->rank == rank);
    for (int d = 0; ok && shape && d < rank; d++)
        ok = shape[d] < 0 || shape[d] == e->dims[d];
    if (!ok) {
        char want[64], have[64];
        shape_text(rank, shape, want, sizeof want);
        shape_text(e->rank, e->dims, have, sizeof have);
        abis_error_set(err, ABIS_E_INVALID,
                       "face network weights: tensor '%s' has shape %s%s, expected %s", name, have,
                       e->values ? "" : " and is not float32", want);
        return NULL;
    }
    return e->values;
}

abis_status nn_weights_conv(const nn_weights *w, const char *name, int kh, int kw, int cin,
                            int cout, nn_conv *f, abis_error *err)
{
    int shape[4] = {kh, kw, cin, cout};
    memset(f, 0, sizeof *f);
    f->w = nn_weights_get(w, name, 4, shape, err);
    if (!f->w)
        return err ? err->status : ABIS_E_INVALID;
    f->kh = kh;
    f->kw = kw;
    f->cin = cin;
    f->cout = cout;
    const nn_tensor_entry *e = find(w, name);
    f->q = e->q;
    f->q_scale = e->scale;
    f->q_min = e->min;
    return ABIS_OK;
}

const float *nn_weights_vec(const nn_weights *w, const char *name, int n, abis_error *err)
{
    return nn_weights_get(w, name, 1, &n, err);
}

size_t nn_weights_count(const nn_weights *w)
{
    return w->n;
}

size_t nn_weights_values(const nn_weights *w)
{
    return w->values;
}
