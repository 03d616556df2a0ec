/*
 * dataset.c: reading labelled evaluation sets in their public layouts, and
 * validating their samples into canonical templates (see dataset.h).
 */
#include "eval/dataset.h"
#include "crypto/crypto.h"
#include "util/file.h"
#include "util/progress.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>

#include "template/vector.h"

/* ---- names -------------------------------------------------------------------- */

static const char *const layout_names[] = {"auto", "folder", "csv",   "jsonl",
                                           "lfw",  "fvc",    "casia", "speaker"};

const char *abis_eval_layout_name(abis_eval_layout l)
{
    return (unsigned)l < sizeof layout_names / sizeof *layout_names ? layout_names[l] : "?";
}

int abis_eval_layout_parse(const char *name)
{
    for (size_t i = 0; i < sizeof layout_names / sizeof *layout_names; i++)
        if (strcmp(name, layout_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *abis_eval_layout_modality(abis_eval_layout l)
{
    switch (l) {
    case ABIS_LAYOUT_LFW:
        return "face";
    case ABIS_LAYOUT_FVC:
        return "finger";
    case ABIS_LAYOUT_CASIA:
        return "iris";
    case ABIS_LAYOUT_SPEAKER:
        return "voice";
    default:
        return NULL;
    }
}

static const char *extension(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash + 1 : name, '.');
    return dot ? dot + 1 : "";
}

static int ext_in(const char *name, const char *const *list)
{
    const char *e = extension(name);
    for (size_t i = 0; list[i]; i++)
        if (strcasecmp(e, list[i]) == 0)
            return 1;
    return 0;
}

/* Template files: vectors (template/vector.h).  Captures: the image and audio
 * formats the public sets come in. */
static const char *const template_exts[] = {"npy", "json", "bin", "f32", NULL};
static const char *const capture_exts[] = {"jpg", "jpeg", "png",  "tif", "tiff", "bmp",
                                           "pgm", "ppm",  "jp2",  "wsq", "wav",  "flac",
                                           "mp3", "ogg",  "opus", "sph", NULL};

int abis_eval_is_capture(const char *name)
{
    return ext_in(name, capture_exts);
}

/* ---- growing the set ---------------------------------------------------------- */

static void add_problem(abis_eval_set *set, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_problem(abis_eval_set *set, const char *fmt, ...)
{
    if (set->n_problems < ABIS_EVAL_MAX_PROBLEMS) {
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        set->problems[set->n_problems] = strdup(buf);
    }
    set->n_problems++;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int id_hash_grow(abis_eval_set *set)
{
    size_t cap = set->id_hash_cap ? set->id_hash_cap * 2 : 1024;
    uint32_t *h = malloc(cap * sizeof *h);
    if (!h)
        return -1;
    memset(h, 0xff, cap * sizeof *h);
    for (uint32_t i = 0; i < set->n_identities; i++) {
        size_t j = hash_str(set->identities[i]) & (cap - 1);
        while (h[j] != UINT32_MAX)
            j = (j + 1) & (cap - 1);
        h[j] = i;
    }
    free(set->id_hash);
    set->id_hash = h;
    set->id_hash_cap = cap;
    return 0;
}

/* The index of identity `name`, or UINT32_MAX. */
static uint32_t identity_find(const abis_eval_set *set, const char *name)
{
    if (!set->id_hash_cap)
        return UINT32_MAX;
    size_t j = hash_str(name) & (set->id_hash_cap - 1);
    for (; set->id_hash[j] != UINT32_MAX; j = (j + 1) & (set->id_hash_cap - 1))
        if (strcmp(set->identities[set->id_hash[j]], name) == 0)
            return set->id_hash[j];
    return UINT32_MAX;
}

/* The index of identity `name`, added when new; UINT32_MAX on out-of-memory. */
static uint32_t identity_get(abis_eval_set *set, const char *name)
{
    uint32_t i = identity_find(set, name);
    if (i != UINT32_MAX)
        return i;
    if ((size_t)(set->n_identities + 1) * 2 > set->id_hash_cap && id_hash_grow(set) != 0)
        return UINT32_MAX;
    if (set->n_identities == set->cap_identities) {
        uint32_t cap = set->cap_identities ? set->cap_identities * 2 : 64;
        char **ids = realloc(set->identities, cap * sizeof *ids);
        if (!ids)
            return UINT32_MAX;
        set->identities = ids;
        set->cap_identities = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return UINT32_MAX;
    i = set->n_identities++;
    set->identities[i] = copy;
    size_t j = hash_str(name) & (set->id_hash_cap - 1);
    while (set->id_hash[j] != UINT32_MAX)
        j = (j + 1) & (set->id_hash_cap - 1);
    set->id_hash[j] = i;
    return i;
}

/* Append a record of identity `name` (key and path copied; path may be NULL).
 * Returns the record, or NULL on out-of-memory. */
static abis_eval_record *record_add(abis_eval_set *set, const char *name, const char *key,
                                    const char *path, long number)
{
    uint32_t id = identity_get(set, name);
    if (id == UINT32_MAX)
        return NULL;
    if (set->n_records == set->cap_records) {
        size_t cap = set->cap_records ? set->cap_records * 2 : 256;
        abis_eval_record *r = realloc(set->records, cap * sizeof *r);
        if (!r)
            return NULL;
        set->records = r;
        set->cap_records = cap;
    }
    abis_eval_record *r = &set->records[set->n_records];
    memset(r, 0, sizeof *r);
    r->identity = id;
    r->number = number;
    r->key = strdup(key);
    r->path = path ? strdup(path) : NULL;
    if (!r->key || (path && !r->path)) {
        free(r->key);
        free(r->path);
        return NULL;
    }
    r->capture = path ? abis_eval_is_capture(path) : 0;
    set->n_records++;
    return r;
}

static abis_status nomem(abis_error *err)
{
    return abis_error_set(err, ABIS_E_NOMEM, "out of memory reading the evaluation set");
}

/* ---- walking a folder --------------------------------------------------------- */

/* Compare names as people sort them: runs of digits by value ("2" < "10"). */
static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0' && isdigit((unsigned char)a[1]))
                a++;
            while (*b == '0' && isdigit((unsigned char)b[1]))
                b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la]))
                la++;
            while (isdigit((unsigned char)b[lb]))
                lb++;
            if (la != lb)
                return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c)
                return c;
            a += la, b += lb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++, b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static int natural_qsort(const void *x, const void *y)
{
    return natural_cmp(*(const char *const *)x, *(const char *const *)y);
}

typedef struct file_list {
    char **rel; /* paths relative to the root, '/'-separated */
    size_t n, cap;
} file_list;

static void file_list_free(file_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->rel[i]);
    free(l->rel);
    memset(l, 0, sizeof *l);
}

/* Depth-first walk of root/rel in natural order, collecting the relative paths
 * of regular files (hidden entries skipped) up to `depth` levels down. */
static abis_status walk(const char *root, const char *rel, int depth, file_list *out,
                        abis_error *err)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof dir)
        return abis_error_set(err, ABIS_E_INVALID, "path too long under '%s'", root);
    DIR *d = opendir(dir);
    if (!d)
        return abis_error_set(err, ABIS_E_IO, "cannot read folder '%s': %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    abis_status st = ABIS_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                st = nomem(err);
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            st = nomem(err);
            break;
        }
        n++;
    }
    closedir(d);
    if (st == ABIS_OK && n > 1)
        qsort(names, n, sizeof *names, natural_qsort);
    for (size_t i = 0; i < n && st == ABIS_OK; i++) {
        char sub[4096], full[4096];
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]) >=
                (int)sizeof sub ||
            snprintf(full, sizeof full, "%s/%s", root, sub) >= (int)sizeof full) {
            st = abis_error_set(err, ABIS_E_INVALID, "path too long under '%s'", root);
            break;
        }
        struct stat sb;
        if (stat(full, &sb) != 0)
            continue; /* a dangling link: nothing to read */
        if (S_ISDIR(sb.st_mode)) {
            if (depth > 0)
                st = walk(root, sub, depth - 1, out, err);
            continue;
        }
        if (!S_ISREG(sb.st_mode))
            continue;
        if (out->n == out->cap) {
            size_t c = out->cap ? out->cap * 2 : 256;
            char **nr = realloc(out->rel, c * sizeof *nr);
            if (!nr) {
                st = nomem(err);
                break;
            }
            out->rel = nr;
            out->cap = c;
        }
        if (!(out->rel[out->n] = strdup(sub))) {
            st = nomem(err);
            break;
        }
        out->n++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

/* ---- what a file name says, per layout ---------------------------------------- */

/* Parse a run of digits at *s (advancing it); -1 when there is none. */
static long digits(const char **s)
{
    if (!isdigit((unsigned char)**s))
        return -1;
    long v = 0;
    while (isdigit((unsigned char)**s)) {
        if (v < 100000000)
            v = v * 10 + (**s - '0');
        (*s)++;
    }
    return v;
}

/* The file name without folders and extension, into buf. */
static void stem(const char *rel, char *buf, size_t cap)
{
    const char *slash = strrchr(rel, '/');
    const char *base = slash ? slash + 1 : rel;
    const char *dot = strrchr(base, '.');
    size_t len = dot ? (size_t)(dot - base) : strlen(base);
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, base, len);
    buf[len] = '\0';
}

/* The first folder of a relative path into buf; 0 when the file is at the top. */
static int first_dir(const char *rel, char *buf, size_t cap)
{
    const char *slash = strchr(rel, '/');
    if (!slash || (size_t)(slash - rel) >= cap)
        return 0;
    memcpy(buf, rel, (size_t)(slash - rel));
    buf[slash - rel] = '\0';
    return 1;
}

/* Identity and sample number of one file under `layout`; 0 when the name does
 * not fit the layout. */
static int classify(abis_eval_layout layout, const char *rel, char *id, size_t cap, long *number)
{
    char st[1024];
    stem(rel, st, sizeof st);
    *number = -1;
    switch (layout) {
    case ABIS_LAYOUT_FOLDER:
        return first_dir(rel, id, cap);
    case ABIS_LAYOUT_LFW: { /* <name>/<name>_<NNNN> */
        if (!first_dir(rel, id, cap))
            return 0;
        size_t l = strlen(id);
        if (strncmp(st, id, l) != 0 || st[l] != '_')
            return 0;
        const char *p = st + l + 1;
        *number = digits(&p);
        return *number >= 0 && *p == '\0';
    }
    case ABIS_LAYOUT_FVC: { /* [<db>/]<finger>_<impression> */
        const char *p = st;
        long finger = digits(&p);
        if (finger < 0 || *p++ != '_')
            return 0;
        *number = digits(&p);
        if (*number < 0 || *p)
            return 0;
        const char *slash = strrchr(rel, '/');
        size_t dl = slash ? (size_t)(slash - rel) : 0;
        int w = dl ? snprintf(id, cap, "%.*s/%ld", (int)dl, rel, finger)
                   : snprintf(id, cap, "%ld", finger);
        return w > 0 && (size_t)w < cap;
    }
    case ABIS_LAYOUT_CASIA: { /* <eye>/<session>/<eye>_<session>_<n> */
        if (!first_dir(rel, id, cap))
            return 0;
        size_t l = strlen(id);
        if (strncmp(st, id, l) != 0 || st[l] != '_')
            return 0;
        const char *p = st + l + 1;
        long session = digits(&p);
        if (session < 0 || *p++ != '_')
            return 0;
        long n = digits(&p);
        if (n < 0 || *p)
            return 0;
        *number = session * 1000 + n;
        return 1;
    }
    case ABIS_LAYOUT_SPEAKER: {
        const char *p = st;
        long a = digits(&p);
        if (a < 0)
            return 0;
        if (*p == '_') { /* FSDD <digit>_<speaker>_<index> */
            const char *sp = ++p;
            while (isalnum((unsigned char)*p) && !(isdigit((unsigned char)*p) && p == sp))
                p++;
            if (p == sp || *p != '_' || (size_t)(p - sp) >= cap)
                return 0;
            memcpy(id, sp, (size_t)(p - sp));
            id[p - sp] = '\0';
            p++;
            *number = digits(&p);
            return *number >= 0 && !*p;
        }
        if (*p == '-') { /* LibriSpeech <speaker>-<chapter>-<utt> */
            p++;
            long chapter = digits(&p);
            if (chapter < 0 || *p++ != '-')
                return 0;
            long utt = digits(&p);
            if (utt < 0 || *p)
                return 0;
            *number = utt;
            return snprintf(id, cap, "%ld", a) < (int)cap;
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* Does every file of the list fit `layout`? */
static int all_fit(const file_list *l, abis_eval_layout layout)
{
    size_t fit = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!ext_in(l->rel[i], template_exts) && !ext_in(l->rel[i], capture_exts))
            continue;
        char id[1024];
        long num;
        if (!classify(layout, l->rel[i], id, sizeof id, &num))
            return 0;
        fit++;
    }
    return fit > 0;
}

static abis_status load_folder(abis_eval_set *set, const char *root, abis_eval_layout layout,
                               abis_error *err)
{
    file_list l = {0};
    /* Deep enough for casia (eye/session/file) and fvc (db/file) under a parent folder. */
    abis_status st = walk(root, "", 4, &l, err);
    if (st == ABIS_OK && layout == ABIS_LAYOUT_AUTO) {
        static const abis_eval_layout order[] = {ABIS_LAYOUT_FVC, ABIS_LAYOUT_CASIA,
                                                 ABIS_LAYOUT_LFW, ABIS_LAYOUT_SPEAKER};
        layout = ABIS_LAYOUT_FOLDER;
        for (size_t i = 0; i < sizeof order / sizeof *order; i++)
            if (all_fit(&l, order[i])) {
                layout = order[i];
                break;
            }
    }
    set->layout = layout;
    for (size_t i = 0; i < l.n && st == ABIS_OK; i++) {
        const char *rel = l.rel[i];
        if (!ext_in(rel, template_exts) && !ext_in(rel, capture_exts)) {
            set->n_skipped++;
            continue;
        }
        char id[1024], path[8192];
        long num;
        if (!classify(layout, rel, id, sizeof id, &num)) {
            add_problem(set, "%s: name does not fit the %s layout, skipped", rel,
                        abis_eval_layout_name(layout));
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", root, rel);
        if (!record_add(set, id, rel, path, num))
            st = nomem(err);
    }
    file_list_free(&l);
    return st;
}

/* ---- CSV and JSON Lines --------------------------------------------------------- */

/* Read a text file line by line: cb(line without newline, number, ctx). */
static abis_status each_line(const char *path, int (*cb)(char *, size_t, void *), void *ctx,
                             abis_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return abis_error_set(err, ABIS_E_IO, "cannot open '%s': %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, no = 0;
    ssize_t len;
    int stop = 0;
    while (!stop && (len = getline(&line, &cap, f)) >= 0) {
        no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        stop = cb(line, no, ctx);
    }
    int bad = ferror(f);
    free(line);
    fclose(f);
    if (stop < 0)
        return nomem(err);
    if (bad)
        return abis_error_set(err, ABIS_E_IO, "cannot read '%s'", path);
    return ABIS_OK;
}

typedef struct text_ctx {
    abis_eval_set *set;
    char dir[4096]; /* the list file's folder, for relative paths */
    int seen_first;
} text_ctx;

static int blank(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0' || *s == '#';
}

static void trim(char **s)
{
    while (isspace((unsigned char)**s))
        (*s)++;
    size_t l = strlen(*s);
    while (l && isspace((unsigned char)(*s)[l - 1]))
        (*s)[--l] = '\0';
}

/* Split one CSV line into at most `max` fields in place (double quotes group,
 * "" is a quote); returns the number of fields, or -1 for an open quote. */
static int csv_split(char *s, char **f, int max)
{
    int n = 0;
    for (;;) {
        char *out = s, *start = s;
        int quoted = 0;
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '"') {
            quoted = 1;
            s++;
            start = out = s;
            for (;;) {
                if (!*s)
                    return -1;
                if (*s == '"') {
                    if (s[1] == '"') {
                        *out++ = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                *out++ = *s++;
            }
            while (*s && *s != ',')
                s++;
        } else {
            start = out = s;
            while (*s && *s != ',')
                s++;
            out = s;
        }
        char sep = *s;
        *out = '\0';
        if (n < max)
            f[n] = start;
        n++;
        if (!quoted)
            trim(&f[n <= max ? n - 1 : 0]);
        if (sep != ',')
            return n;
        s++;
    }
}

static int csv_line(char *line, size_t no, void *p)
{
    text_ctx *c = p;
    if (blank(line))
        return 0;
    char *f[3];
    int n = csv_split(line, f, 3);
    int first = !c->seen_first;
    c->seen_first = 1;
    if (n != 2 || !*f[0] || !*f[1]) {
        add_problem(c->set, "line %zu: expected 'identity,path' (%s)", no,
                    n < 0    ? "unclosed quote"
                    : n != 2 ? "wrong number of fields"
                             : "empty field");
        return 0;
    }
    if (first && strcasecmp(f[0], "identity") == 0 &&
        (strcasecmp(f[1], "path") == 0 || strcasecmp(f[1], "sample") == 0))
        return 0; /* the header */
    char path[8192];
    if (f[1][0] == '/')
        snprintf(path, sizeof path, "%s", f[1]);
    else
        snprintf(path, sizeof path, "%s/%s", c->dir, f[1]);
    return record_add(c->set, f[0], f[1], path, -1) ? 0 : -1;
}

/* The numbers of a JSON array as floats (malloc'd); NULL with a reason. */
static float *json_vector(const json_t *a, size_t *n, const char **why)
{
    if (!json_is_array(a)) {
        *why = "is not an array of numbers";
        return NULL;
    }
    *n = json_array_size(a);
    if (*n == 0) {
        *why = "is empty";
        return NULL;
    }
    float *v = malloc(*n * sizeof *v);
    if (!v) {
        *why = "out of memory";
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        const json_t *x = json_array_get(a, i);
        if (!json_is_number(x)) {
            free(v);
            *why = "has a value that is not a number";
            return NULL;
        }
        v[i] = (float)json_number_value(x);
    }
    return v;
}

static int modality_seen(abis_eval_set *set, const char *name)
{
    for (size_t i = 0; i < set->n_modalities; i++)
        if (strcmp(set->modalities[i], name) == 0)
            return 0;
    char **m = realloc(set->modalities, (set->n_modalities + 1) * sizeof *m);
    if (!m)
        return -1;
    set->modalities = m;
    if (!(m[set->n_modalities] = strdup(name)))
        return -1;
    set->n_modalities++;
    return 0;
}

static int jsonl_line(char *line, size_t no, void *p)
{
    text_ctx *c = p;
    abis_eval_set *set = c->set;
    if (blank(line))
        return 0;
    json_error_t je;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        add_problem(set, "line %zu: invalid JSON at column %d: %s", no, je.column, je.text);
        return 0;
    }
    int rc = 0;
    const char *why = NULL;
    const json_t *id = json_object_get(o, "identity");
    const json_t *path = json_object_get(o, "path");
    if (!path)
        path = json_object_get(o, "sample");
    const json_t *vec = json_object_get(o, "vector");
    json_t *tm = json_object_get(o, "templates");
    char key[64];
    snprintf(key, sizeof key, "line %zu", no);
    if (!json_is_object(o) || !json_is_string(id) || !*json_string_value(id)) {
        add_problem(set, "line %zu: no \"identity\" string", no);
    } else if ((path != NULL) + (vec != NULL) + (tm != NULL) != 1) {
        add_problem(set, "line %zu: needs exactly one of \"path\", \"vector\", \"templates\"", no);
    } else if (path) {
        if (!json_is_string(path) || !*json_string_value(path)) {
            add_problem(set, "line %zu: \"path\" is not a string", no);
        } else {
            const char *ps = json_string_value(path);
            char full[8192];
            if (ps[0] == '/')
                snprintf(full, sizeof full, "%s", ps);
            else
                snprintf(full, sizeof full, "%s/%s", c->dir, ps);
            rc = record_add(set, json_string_value(id), ps, full, -1) ? 0 : -1;
        }
    } else {
        /* Inline values: one unnamed vector, or one per modality. */
        size_t n_in = vec ? 1 : json_is_object(tm) ? json_object_size(tm) : 0;
        abis_eval_inline *in = calloc(n_in ? n_in : 1, sizeof *in);
        size_t k = 0;
        if (!in) {
            rc = -1;
        } else if (vec) {
            in[0].values = json_vector(vec, &in[0].n, &why);
            if (in[0].values)
                k = 1;
            else
                add_problem(set, "line %zu: \"vector\" %s", no, why);
        } else if (!json_is_object(tm) || n_in == 0) {
            add_problem(set, "line %zu: \"templates\" is not an object of modality: vector", no);
        } else {
            const char *name;
            json_t *v;
            json_object_foreach(tm, name, v)
            {
                in[k].values = json_vector(v, &in[k].n, &why);
                if (!in[k].values) {
                    add_problem(set, "line %zu: template \"%s\" %s", no, name, why);
                    break;
                }
                in[k].modality = strdup(name);
                k++;
                if (!in[k - 1].modality || modality_seen(set, name) != 0) {
                    rc = -1;
                    break;
                }
            }
            if (k < n_in && rc == 0) { /* a bad template spoils the line */
                for (size_t i = 0; i < k; i++) {
                    free(in[i].values);
                    free(in[i].modality);
                }
                k = 0;
            }
        }
        abis_eval_record *r = NULL;
        if (rc == 0 && k > 0) {
            r = record_add(set, json_string_value(id), key, NULL, -1);
            if (!r)
                rc = -1;
        }
        if (r) {
            r->inl = in;
            r->n_inline = k;
        } else {
            for (size_t i = 0; in && i < k; i++) {
                free(in[i].values);
                free(in[i].modality);
            }
            free(in);
        }
    }
    json_decref(o);
    return rc;
}

static abis_status load_list(abis_eval_set *set, const char *path, abis_eval_layout layout,
                             abis_error *err)
{
    text_ctx c = {.set = set};
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(c.dir, sizeof c.dir, "%.*s", (int)(slash - path), path);
    else
        snprintf(c.dir, sizeof c.dir, ".");
    if (slash == path)
        snprintf(c.dir, sizeof c.dir, "/");
    set->layout = layout;
    return each_line(path, layout == ABIS_LAYOUT_CSV ? csv_line : jsonl_line, &c, err);
}

/* ---- pairs files ------------------------------------------------------------------ */

typedef struct pairs_ctx {
    abis_eval_set *set;
    size_t *start; /* records of identity i: by_id[start[i] .. start[i+1]) */
    uint32_t *by_id;
    int seen_header;
    size_t fold_lines; /* pair lines per fold (0: no folds) */
} pairs_ctx;

/* The record of identity `name` with sample number `n` (the layout's number
 * when it has them, else the n-th record, 1-based); UINT32_MAX when absent. */
static uint32_t pair_record(const pairs_ctx *c, const char *name, long n)
{
    uint32_t id = identity_find(c->set, name);
    if (id == UINT32_MAX || n < 1)
        return UINT32_MAX;
    size_t a = c->start[id], b = c->start[id + 1];
    for (size_t i = a; i < b; i++)
        if (c->set->records[c->by_id[i]].number == n)
            return c->by_id[i];
    if (c->set->records[c->by_id[a]].number < 0 && (size_t)n <= b - a)
        return c->by_id[a + (size_t)n - 1];
    return UINT32_MAX;
}

static int parse_long(const char *s, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return errno == 0 && end != s && *end == '\0';
}

static int pairs_line(char *line, size_t no, void *p)
{
    pairs_ctx *c = p;
    abis_eval_set *set = c->set;
    if (blank(line))
        return 0;
    char *f[5], *save = NULL;
    int n = 0;
    for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
        if (n < 5)
            f[n++] = t;
        else
            n = 6;
    long a, b;
    if (!c->seen_header) {
        c->seen_header = 1;
        if (n <= 2 && parse_long(f[0], &a) && (n == 1 || parse_long(f[1], &b))) {
            /* "<folds> <pairs per fold>": each fold lists that many genuine,
             * then that many impostor pairs (LFW's pairs.txt) */
            if (n == 2 && a >= 2 && a <= 1000 && b >= 1) {
                set->pairs_folds = (int)a;
                c->fold_lines = 2 * (size_t)b;
            }
            return 0; /* or "<count>" */
        }
    }
    uint32_t ra, rb;
    int genuine;
    size_t listed = set->pairs_genuine_listed + set->pairs_impostor_listed;
    int fold = c->fold_lines ? (int)(listed / c->fold_lines) : -1;
    if (fold >= set->pairs_folds)
        fold = -1; /* more lines than the header announced */
    if (n == 3 && parse_long(f[1], &a) && parse_long(f[2], &b)) {
        genuine = 1;
        set->pairs_genuine_listed++;
        ra = pair_record(c, f[0], a);
        rb = pair_record(c, f[0], b);
    } else if (n == 4 && parse_long(f[1], &a) && parse_long(f[3], &b)) {
        genuine = 0;
        set->pairs_impostor_listed++;
        ra = pair_record(c, f[0], a);
        rb = pair_record(c, f[2], b);
    } else {
        add_problem(set, "pairs line %zu: expected 'name n1 n2' or 'name1 n1 name2 n2'", no);
        return 0;
    }
    if (ra == UINT32_MAX || rb == UINT32_MAX) {
        set->pairs_unresolved++;
        return 0;
    }
    size_t np_ = set->n_pairs;
    if (np_ == 0 || (np_ >= 64 && (np_ & (np_ - 1)) == 0)) { /* capacity 64, then doubling */
        abis_eval_pair *np =
            realloc(set->pairs, (set->n_pairs ? set->n_pairs * 2 : 64) * sizeof *np);
        if (!np)
            return -1;
        set->pairs = np;
    }
    set->pairs[set->n_pairs++] = (abis_eval_pair){ra, rb, genuine, fold};
    return 0;
}

abis_status abis_eval_set_load_pairs(abis_eval_set *set, const char *pairs_path, abis_error *err)
{
    pairs_ctx c = {.set = set};
    c.start = calloc((size_t)set->n_identities + 1, sizeof *c.start);
    c.by_id = malloc((set->n_records ? set->n_records : 1) * sizeof *c.by_id);
    if (!c.start || !c.by_id) {
        free(c.start);
        free(c.by_id);
        return nomem(err);
    }
    /* Counting sort of records by identity, keeping their order within one. */
    for (size_t i = 0; i < set->n_records; i++)
        c.start[set->records[i].identity + 1]++;
    for (uint32_t i = 0; i < set->n_identities; i++)
        c.start[i + 1] += c.start[i];
    size_t *fill = malloc(((size_t)set->n_identities + 1) * sizeof *fill);
    if (!fill) {
        free(c.start);
        free(c.by_id);
        return nomem(err);
    }
    memcpy(fill, c.start, ((size_t)set->n_identities + 1) * sizeof *fill);
    for (size_t i = 0; i < set->n_records; i++)
        c.by_id[fill[set->records[i].identity]++] = (uint32_t)i;
    free(fill);
    abis_status st = each_line(pairs_path, pairs_line, &c, err);
    free(c.start);
    free(c.by_id);
    if (st == ABIS_OK && set->pairs_genuine_listed + set->pairs_impostor_listed == 0)
        st = abis_error_set(err, ABIS_E_INVALID, "pairs file '%s' lists no pairs", pairs_path);
    return st;
}

/* ---- the set ------------------------------------------------------------------------ */

abis_status abis_eval_set_load(abis_eval_set *set, const char *path, abis_eval_layout layout,
                               const char *pairs_path, abis_error *err)
{
    memset(set, 0, sizeof *set);
    if (!(set->source = strdup(path)))
        return nomem(err);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return abis_error_set(err, ABIS_E_IO, "cannot read the evaluation set '%s': %s", path,
                              strerror(errno));
    int is_dir = S_ISDIR(sb.st_mode);
    if (layout == ABIS_LAYOUT_AUTO && !is_dir) {
        const char *e = extension(path);
        if (strcasecmp(e, "csv") == 0)
            layout = ABIS_LAYOUT_CSV;
        else if (strcasecmp(e, "jsonl") == 0 || strcasecmp(e, "ndjson") == 0 ||
                 strcasecmp(e, "json") == 0)
            layout = ABIS_LAYOUT_JSONL;
        else
            return abis_error_set(err, ABIS_E_INVALID,
                                  "cannot tell the layout of '%s' from its name: give --layout "
                                  "csv or jsonl",
                                  path);
    }
    int list = layout == ABIS_LAYOUT_CSV || layout == ABIS_LAYOUT_JSONL;
    if (list && is_dir)
        return abis_error_set(err, ABIS_E_INVALID, "--layout %s needs a file, '%s' is a folder",
                              abis_eval_layout_name(layout), path);
    if (!list && !is_dir)
        return abis_error_set(err, ABIS_E_INVALID, "--layout %s needs a folder, '%s' is a file",
                              abis_eval_layout_name(layout), path);
    abis_status st = list ? load_list(set, path, layout, err) : load_folder(set, path, layout, err);
    if (st != ABIS_OK)
        return st;
    if (set->n_records == 0)
        return abis_error_set(
            err, ABIS_E_INVALID, "the evaluation set '%s' has no samples (layout %s%s%s)", path,
            abis_eval_layout_name(set->layout), set->n_problems ? "; first problem: " : "",
            set->n_problems ? set->problems[0] : "");
    if (pairs_path)
        return abis_eval_set_load_pairs(set, pairs_path, err);
    return ABIS_OK;
}

void abis_eval_set_free(abis_eval_set *set)
{
    if (!set)
        return;
    for (uint32_t i = 0; i < set->n_identities; i++)
        free(set->identities[i]);
    free(set->identities);
    for (size_t i = 0; i < set->n_records; i++) {
        abis_eval_record *r = &set->records[i];
        free(r->key);
        free(r->path);
        for (size_t k = 0; k < r->n_inline; k++) {
            free(r->inl[k].modality);
            free(r->inl[k].values);
        }
        free(r->inl);
    }
    free(set->records);
    for (size_t i = 0; i < set->n_modalities; i++)
        free(set->modalities[i]);
    free(set->modalities);
    free(set->pairs);
    for (size_t i = 0; i < set->n_problems && i < ABIS_EVAL_MAX_PROBLEMS; i++)
        free(set->problems[i]);
    free(set->id_hash);
    free(set->source);
    memset(set, 0, sizeof *set);
}

size_t abis_eval_set_identity_size(const abis_eval_set *set, uint32_t id)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n_records; i++)
        n += set->records[i].identity == id;
    return n;
}

/* ---- templates -------------------------------------------------------------------- */

static const abis_eval_inline *record_inline(const abis_eval_record *r, const char *modality)
{
    const abis_eval_inline *unnamed = NULL;
    for (size_t k = 0; k < r->n_inline; k++) {
        if (r->inl[k].modality && strcmp(r->inl[k].modality, modality) == 0)
            return &r->inl[k];
        if (!r->inl[k].modality)
            unnamed = &r->inl[k];
    }
    return unnamed;
}

static void note(char *buf, size_t cap, const char *msg)
{
    if (!buf[0])
        snprintf(buf, cap, "%.250s", msg); /* the reason fields hold 256 */
}

/* Captures are turned into templates by the modality (a face photo takes
 * tens of milliseconds), on several threads: each takes the next capture
 * record in turn. */
typedef struct capture_work {
    abis_eval_templates *t;
    const abis_eval_set *set;
    const size_t *idx; /* the capture records */
    size_t n, next, done;
    pthread_mutex_t lock;
    abis_progress *progress;
    int nomem;
    char nomem_message[ABIS_ERROR_MESSAGE_MAX];
} capture_work;

static void *capture_worker(void *arg)
{
    capture_work *w = arg;
    abis_eval_templates *t = w->t;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        size_t k = w->next < w->n && !w->nomem ? w->next++ : w->n;
        pthread_mutex_unlock(&w->lock);
        if (k >= w->n)
            return NULL;
        size_t i = w->idx[k];
        const abis_eval_record *r = &w->set->records[i];
        char what[600];
        snprintf(what, sizeof what, "sample '%.500s' of '%.60s'", r->key,
                 w->set->identities[r->identity]);
        /* The kind turns the capture into its template, as the engine does;
         * anything that goes wrong on the way is a failure to acquire. */
        abis_error e = {0};
        size_t clen = 0;
        unsigned char *bytes = NULL, *tmpl = NULL;
        size_t len = 0;
        /* 64 MiB is far past any capture. */
        abis_status st = abis_file_read(r->path, 64u << 20, &bytes, &clen, &e);
        abis_template_input ci = {
            .modality = t->mod.name, .capture = bytes, .capture_size = clen, .quality = -1};
        if (st == ABIS_OK)
            st = t->kind->validate(&t->mod, &ci, what, &tmpl, &len, NULL, &e);
        abis_wipe_free(bytes, clen);
        pthread_mutex_lock(&w->lock);
        if (st == ABIS_OK) {
            t->tmpl[i] = tmpl;
            t->len[i] = len;
        } else if (st == ABIS_E_NOMEM) {
            w->nomem = 1;
            snprintf(w->nomem_message, sizeof w->nomem_message, "%s", e.message);
        } else {
            t->fta++;
            note(t->fta_reason, sizeof t->fta_reason, e.message);
        }
        abis_progress_update(w->progress, ++w->done);
        pthread_mutex_unlock(&w->lock);
    }
}

/* Run the capture records idx[0..n) through the kind on `threads` threads. */
static abis_status load_captures(abis_eval_templates *t, const abis_eval_set *set,
                                 const size_t *idx, size_t n, unsigned threads,
                                 const char *progress_label, abis_error *err)
{
    if (n == 0)
        return ABIS_OK;
    capture_work w = {.t = t, .set = set, .idx = idx, .n = n};
    pthread_mutex_init(&w.lock, NULL);
    w.progress = progress_label ? abis_progress_create(progress_label, n, "captures") : NULL;
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    pthread_t tid[64];
    unsigned started = 0;
    for (; started + 1 < threads; started++)
        if (pthread_create(&tid[started], NULL, capture_worker, &w) != 0)
            break;
    capture_worker(&w); /* the calling thread works too */
    for (unsigned i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    abis_progress_finish(w.progress);
    pthread_mutex_destroy(&w.lock);
    if (w.nomem)
        return abis_error_set(err, ABIS_E_NOMEM, "%s", w.nomem_message);
    return ABIS_OK;
}

abis_status abis_eval_templates_load(abis_eval_templates *t, const abis_eval_set *set,
                                     const unsigned char *use, const abis_modality_kind *kind,
                                     const abis_modality_rec *m, unsigned threads,
                                     const char *progress_label, abis_error *err)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->mod = *m;
    t->n = set->n_records;
    size_t n = t->n ? t->n : 1;
    t->tmpl = calloc(n, sizeof *t->tmpl);
    t->len = calloc(n, sizeof *t->len);
    t->identity = calloc(n, sizeof *t->identity);
    size_t *captures = malloc(n * sizeof *captures), n_captures = 0;
    if (!t->tmpl || !t->len || !t->identity || !captures) {
        free(captures);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for %zu templates", t->n);
    }
    for (size_t i = 0; i < t->n; i++) {
        const abis_eval_record *r = &set->records[i];
        t->identity[i] = r->identity;
        if (use && !use[i])
            continue;
        const abis_eval_inline *in = NULL;
        if (!r->path) {
            in = record_inline(r, m->name);
            if (!in)
                continue; /* the line carries other modalities only: not attempted */
        }
        t->attempted++;
        abis_error e = {0};
        float *values = NULL;
        size_t nv = 0;
        const float *src;
        char what[600];
        snprintf(what, sizeof what, "sample '%.500s' of '%.60s'", r->key,
                 set->identities[r->identity]);
        if (in) {
            src = in->values;
            nv = in->n;
        } else if (r->capture) {
            captures[n_captures++] = i; /* below, on several threads */
            continue;
        } else {
            if (abis_vector_read_file(r->path, &values, &nv, &e) != ABIS_OK) {
                if (e.status == ABIS_E_NOMEM) {
                    free(captures);
                    return abis_error_set(err, ABIS_E_NOMEM, "%s", e.message);
                }
                t->fte++;
                note(t->fte_reason, sizeof t->fte_reason, e.message);
                continue;
            }
            src = values;
        }
        if (t->mod.dim == 0)
            t->mod.dim = (int)nv;
        abis_template_input ti = {.modality = m->name, .vector = src, .dim = nv, .quality = -1};
        abis_status st = kind->validate(&t->mod, &ti, what, &t->tmpl[i], &t->len[i], NULL, &e);
        free(values);
        if (st == ABIS_E_NOMEM) {
            free(captures);
            return abis_error_set(err, ABIS_E_NOMEM, "%s", e.message);
        }
        if (st != ABIS_OK) {
            t->tmpl[i] = NULL;
            t->fte++;
            note(t->fte_reason, sizeof t->fte_reason, e.message);
        }
    }
    abis_status st = load_captures(t, set, captures, n_captures, threads, progress_label, err);
    free(captures);
    return st;
}

void abis_eval_templates_free(abis_eval_templates *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->tmpl && i < t->n; i++)
        if (t->tmpl[i])
            abis_modality_free_template(t->tmpl[i], t->len[i]);
    free(t->tmpl);
    free(t->len);
    free(t->identity);
    memset(t, 0, sizeof *t);
}
