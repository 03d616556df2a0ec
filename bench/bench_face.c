/*
 * bench_face.c: the face photo pipeline's speed (docs/BENCHMARKS.md, "Face
 * photos"), beside the JavaScript reference in the same run.
 *
 *   build/bench_face [SECONDS]        (default 10 per measurement)
 *
 * Photos: an LFW photo (../shared/data or $ABIS_DATA_ROOT) scaled up into a
 * 640 x 480 and a 1920 x 1080 frame (the face about 40 % of the height, as a
 * selfie or a gate camera shows it) and encoded as JPEG (quality 90) in
 * memory: no photo is stored in the project.
 *
 * (a) one core: milliseconds per photo for decoding, detection (SSD and
 *     tiny), landmarks, the descriptor, and the whole pipeline (median of
 *     repeated runs);
 * (b) two cores: photos per second with two threads each running the whole
 *     pipeline;
 * (c) the reference: tests/reference/face_reference.js (face-api on
 *     TensorFlow.js's wasm backend, jpeg-js), run by node on the same JPEG
 *     files, one process on one core and two processes on two cores.
 *     Skipped with a message when node or tests/reference/node_modules is
 *     missing (npm ci there).
 * (d) the descriptor network alone (150 x 150 input) with each product
 *     kernel this CPU has and with the plain-loop reference operations, CPU
 *     time (the anchors: plain loops, OpenBLAS, XNNPACK);
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h> /* after stdio.h: it needs FILE and size_t */
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "abis/face.h"
#include "modality/image.h"
#include "nn/face_nets.h"
#include "nn/gemm.h"
#include "util/file.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* This thread's CPU time: on a shared machine, the time the work took
 * without the time other programs held the core. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}

/* The photo: `src` scaled (bilinearly) to `side` x `side` in the middle of a
 * w x h frame whose sides repeat the photo's edge columns, as JPEG. */
static unsigned char *make_frame(const abis_image *src, int w, int h, unsigned long *len)
{
    int side = (int)(h * 0.98);
    unsigned char *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return NULL;
    int x0 = (w - side) / 2, y0 = (h - side) / 2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double sx = (x - x0 + 0.5) * src->width / side - 0.5;
            double sy = (y - y0 + 0.5) * src->height / side - 0.5;
            sx = fmin(fmax(sx, 0), src->width - 1);
            sy = fmin(fmax(sy, 0), src->height - 1);
            int ix = (int)sx, iy = (int)sy;
            int jx = ix + 1 < src->width ? ix + 1 : ix, jy = iy + 1 < src->height ? iy + 1 : iy;
            double fx = sx - ix, fy = sy - iy;
            for (int k = 0; k < 3; k++) {
                double v = (1 - fy) * ((1 - fx) * src->pixels[(iy * src->width + ix) * 3 + k] +
                                       fx * src->pixels[(iy * src->width + jx) * 3 + k]) +
                           fy * ((1 - fx) * src->pixels[(jy * src->width + ix) * 3 + k] +
                                 fx * src->pixels[(jy * src->width + jx) * 3 + k]);
                rgb[((size_t)y * w + x) * 3 + k] = (unsigned char)(v + 0.5);
            }
        }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    jpeg_mem_dest(&c, &out, len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = rgb + (size_t)c.next_scanline * w * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(rgb);
    return out;
}

typedef struct stages {
    double decode, ssd, tiny, landmarks, descriptor, pipe_ssd, pipe_tiny; /* wall, ms */
    double cpu[7];                                                        /* CPU, same order */
} stages;

/* (a): each stage on its own, on one core, repeated for `seconds`; medians. */
static int time_stages(const unsigned char *jpg, size_t len, const char *models, double seconds,
                       stages *out)
{
    abis_error err = {0};
    nn_ssd *ssd;
    nn_tinyface *tiny;
    nn_landmarks *lm;
    nn_facerec *rec;
    if (nn_ssd_load(models, &ssd, &err) || nn_tinyface_load(models, &tiny, &err) ||
        nn_landmarks_load(models, &lm, &err) || nn_facerec_load(models, &rec, &err)) {
        fprintf(stderr, "bench_face: %s (make models)\n", err.message);
        return -1;
    }
    enum { MAX = 4096 };
    static double t[7][MAX], tc[7][MAX];
    size_t n = 0;
    abis_face_options o;
    abis_face_options_default(&o);
    o.models_dir = models;
    o.take_largest = 1;
    double end = now_ms() + seconds * 1000;
    nn_ctx ctx;
    nn_ctx_init(&ctx, 0);
    while ((now_ms() < end || n < 3) && n < MAX) {
        double c[9];
        c[0] = cpu_ms();
        double t0 = now_ms();
        abis_image img;
        if (abis_image_decode_rgb(jpg, len, "photo", 0, &img, &err) != ABIS_OK)
            return fprintf(stderr, "bench_face: %s\n", err.message), -1;
        nn_image im = {img.width, img.height, (size_t)img.width * 3, img.pixels};
        double t1 = now_ms();
        c[1] = cpu_ms();
        nn_detection *d;
        size_t nd;
        nn_ssd_detect(&ctx, ssd, &im, 0.5, 100, &d, &nd, &err);
        free(d);
        double t2 = now_ms();
        c[2] = cpu_ms();
        nn_tinyface_detect(&ctx, tiny, &im, 416, 0.5, &d, &nd, &err);
        double t3 = now_ms();
        c[3] = cpu_ms();
        if (nd == 0)
            return fprintf(stderr, "bench_face: no face found in the benchmark photo\n"), -1;
        float pts[2 * NN_LANDMARKS], desc[NN_DESCRIPTOR_DIM];
        int bx = (int)fmax(0, d[0].box.x), by = (int)fmax(0, d[0].box.y);
        int bw = (int)fmin(d[0].box.w, img.width - bx), bh = (int)fmin(d[0].box.h, img.height - by);
        free(d);
        nn_landmarks_run(&ctx, lm, &im, bx, by, bw, bh, pts, &err);
        double t4 = now_ms();
        c[4] = cpu_ms();
        nn_facerec_describe(&ctx, rec, &im, bx, by, bw, bh, desc, &err);
        double t5 = now_ms();
        c[5] = cpu_ms();
        abis_image_free(&img);
        float v[ABIS_FACE_DIM];
        o.detector = ABIS_FACE_SSD;
        double t6 = now_ms();
        c[6] = cpu_ms();
        if (abis_face_extract(jpg, len, &o, v, NULL, &err) != ABIS_OK)
            return fprintf(stderr, "bench_face: %s\n", err.message), -1;
        double t7 = now_ms();
        c[7] = cpu_ms();
        o.detector = ABIS_FACE_TINY;
        if (abis_face_extract(jpg, len, &o, v, NULL, &err) != ABIS_OK)
            return fprintf(stderr, "bench_face: %s\n", err.message), -1;
        double t8 = now_ms();
        c[8] = cpu_ms();
        double v7[7] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t7 - t6, t8 - t7};
        double c7[7] = {c[1] - c[0], c[2] - c[1], c[3] - c[2], c[4] - c[3],
                        c[5] - c[4], c[7] - c[6], c[8] - c[7]};
        for (int k = 0; k < 7; k++) {
            t[k][n] = v7[k];
            tc[k][n] = c7[k];
        }
        n++;
    }
    nn_ctx_free(&ctx);
    out->decode = median(t[0], n);
    out->ssd = median(t[1], n);
    out->tiny = median(t[2], n);
    out->landmarks = median(t[3], n);
    out->descriptor = median(t[4], n);
    out->pipe_ssd = median(t[5], n);
    out->pipe_tiny = median(t[6], n);
    for (int k = 0; k < 7; k++)
        out->cpu[k] = median(tc[k], n);
    nn_ssd_free(ssd);
    nn_tinyface_free(tiny);
    nn_landmarks_free(lm);
    nn_facerec_free(rec);
    return 0;
}

typedef struct runner {
    const unsigned char *jpg;
    size_t len;
    abis_face_options o;
    double end;
    long done;
} runner;

static void *run_pipeline(void *arg)
{
    runner *r = arg;
    float v[ABIS_FACE_DIM];
    abis_error err = {0};
    while (now_ms() < r->end)
        if (abis_face_extract(r->jpg, r->len, &r->o, v, NULL, &err) == ABIS_OK)
            r->done++;
    return NULL;
}

/* (b): photos per second with `threads` threads. */
static double throughput(const unsigned char *jpg, size_t len, const char *models,
                         abis_face_detector det, int threads, double seconds)
{
    runner r[8];
    pthread_t t[8];
    double start = now_ms();
    for (int i = 0; i < threads; i++) {
        r[i] = (runner){jpg, len, {0}, start + seconds * 1000, 0};
        abis_face_options_default(&r[i].o);
        r[i].o.models_dir = models;
        r[i].o.detector = det;
        r[i].o.take_largest = 1;
        pthread_create(&t[i], NULL, run_pipeline, &r[i]);
    }
    long done = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        done += r[i].done;
    }
    return done / ((now_ms() - start) / 1000);
}

/* (c): the reference on `file`: `procs` node processes at once; their
 * summed photos per second and (first process) its JSON line. */
static double reference(const char *src, const char *file, const char *det, int procs,
                        double seconds, char *json, size_t cap)
{
    char cmd[8192], out[4096];
    FILE *p[4];
    for (int i = 0; i < procs; i++) {
        snprintf(cmd, sizeof cmd,
                 "cd '%s/tests/reference' && node face_reference.js bench --detector %s "
                 "--seconds %g --threads 1 '%s' 2>/dev/null",
                 src, det, seconds, file);
        p[i] = popen(cmd, "r");
    }
    double total = 0;
    json[0] = '\0';
    for (int i = 0; i < procs; i++) {
        if (!p[i])
            continue;
        if (fgets(out, sizeof out, p[i])) {
            const char *k = strstr(out, "\"photos_per_s\":");
            if (k)
                total += atof(k + 15);
            if (i == 0)
                snprintf(json, cap, "%s", out);
        }
        pclose(p[i]);
    }
    size_t n = strlen(json);
    if (n && json[n - 1] == '\n')
        json[n - 1] = '\0';
    return total;
}

static double json_number(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(json, k);
    return p ? atof(p + strlen(k)) : NAN;
}

/* (d): CPU ms per descriptor, median over `seconds`, with kernel `kernel`
 * (NULL: the plain-loop reference operations). */
static double descriptor_ms(const nn_facerec *net, const char *kernel, double seconds)
{
    if (kernel && nn_gemm_use(kernel) != 0)
        return NAN;
    nn_ctx ctx;
    nn_ctx_init(&ctx, kernel == NULL);
    nn_tensor in = nn_tensor_new(&ctx, NN_FACEREC_INPUT, NN_FACEREC_INPUT, 3);
    for (size_t i = 0; i < nn_tensor_size(&in); i++)
        in.d[i] = (float)((i * 7919) % 256);
    enum { MAX = 4096 };
    static double t[MAX];
    size_t n = 0;
    float out[NN_DESCRIPTOR_DIM];
    abis_error err = {0};
    double end = now_ms() + seconds * 1000;
    while ((now_ms() < end || n < 3) && n < MAX) {
        double c0 = cpu_ms();
        nn_facerec_run(&ctx, net, &in, out, &err);
        t[n++] = cpu_ms() - c0;
    }
    nn_tensor_free(&in);
    nn_ctx_free(&ctx);
    return median(t, n);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 10;
    const char *src = getenv("ABIS_SOURCE_DIR") ? getenv("ABIS_SOURCE_DIR") : ABIS_SOURCE;
    const char *root = getenv("ABIS_DATA_ROOT") ? getenv("ABIS_DATA_ROOT") : "/work/shared/data";
    char models[4200], path[4200];
    if (getenv("ABIS_FACE_MODELS"))
        snprintf(models, sizeof models, "%s", getenv("ABIS_FACE_MODELS"));
    else
        snprintf(models, sizeof models, "%s/models/node_modules/@vladmandic/face-api/model", src);
    snprintf(path, sizeof path, "%s/face/lfw/Zoran_Djindjic/Zoran_Djindjic_0001.jpg", root);
    unsigned char *buf;
    size_t len;
    abis_error err = {0};
    abis_image src_img;
    if (abis_file_read(path, 1 << 24, &buf, &len, &err) != ABIS_OK ||
        abis_image_decode_rgb(buf, len, path, 0, &src_img, &err) != ABIS_OK) {
        fprintf(stderr, "bench_face: %s (set ABIS_DATA_ROOT)\n", err.message);
        return 1;
    }
    free(buf);
    printf("bench_face: product kernel %s, %g s per measurement\n", nn_gemm_kernel(), seconds);
    static const int sizes[2][2] = {{640, 480}, {1920, 1080}};
    for (int s = 0; s < 2; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        unsigned long jlen = 0;
        unsigned char *jpg = make_frame(&src_img, w, h, &jlen);
        char file[256];
        snprintf(file, sizeof file, "/tmp/bench_face_%dx%d_%d.jpg", w, h, (int)getpid());
        FILE *f = fopen(file, "wb");
        if (!f || fwrite(jpg, 1, jlen, f) != jlen) {
            fprintf(stderr, "bench_face: cannot write %s\n", file);
            return 1;
        }
        fclose(f);
        stages st;
        if (time_stages(jpg, jlen, models, seconds, &st) != 0)
            return 1;
        printf("\n%d x %d (JPEG %lu bytes)\n", w, h, jlen);
        printf("  one core, ms per photo: decode %.2f | detection SSD %.2f, tiny %.2f | "
               "landmarks %.2f | descriptor %.2f\n",
               st.decode, st.ssd, st.tiny, st.landmarks, st.descriptor);
        printf("  one core, whole pipeline: SSD %.2f ms, tiny %.2f ms\n", st.pipe_ssd,
               st.pipe_tiny);
        printf("  the same in CPU time: decode %.2f | SSD %.2f, tiny %.2f | landmarks %.2f | "
               "descriptor %.2f | pipeline SSD %.2f, tiny %.2f\n",
               st.cpu[0], st.cpu[1], st.cpu[2], st.cpu[3], st.cpu[4], st.cpu[5], st.cpu[6]);
        for (int d = 0; d < 2; d++) {
            const char *dn = d ? "tiny" : "ssd";
            double one =
                throughput(jpg, jlen, models, d ? ABIS_FACE_TINY : ABIS_FACE_SSD, 1, seconds);
            double two =
                throughput(jpg, jlen, models, d ? ABIS_FACE_TINY : ABIS_FACE_SSD, 2, seconds);
            char js[4096];
            double ref1 = reference(src, file, dn, 1, seconds, js, sizeof js);
            char js2[4096];
            double ref2 = reference(src, file, dn, 2, seconds, js2, sizeof js2);
            printf("  %s: C %.2f photos/s on one core, %.2f on two", dn, one, two);
            if (js[0]) {
                printf(" | reference %.2f on one core, %.2f on two (two processes) | "
                       "C / reference on two: %.1fx\n",
                       ref1, ref2, ref2 > 0 ? two / ref2 : 0);
                printf("    reference ms per photo: decode %.1f, detect %.1f, landmarks %.1f, "
                       "descriptor %.1f, pipeline %.1f; CPU time %.1f ms a photo (C: %.1f, "
                       "%.1fx less)\n",
                       json_number(js, "decode_ms"), json_number(js, "detect_ms"),
                       json_number(js, "landmarks_ms"), json_number(js, "descriptor_ms"),
                       json_number(js, "pipeline_ms"), json_number(js, "cpu_ms"),
                       d ? st.cpu[6] : st.cpu[5],
                       json_number(js, "cpu_ms") / (d ? st.cpu[6] : st.cpu[5]));
            } else {
                printf(" | reference not run (node, or npm ci in tests/reference)\n");
            }
        }
        unlink(file);
        free(jpg);
    }
    abis_image_free(&src_img);
    nn_facerec *net;
    if (nn_facerec_load(models, &net, &err) != ABIS_OK)
        return fprintf(stderr, "bench_face: %s\n", err.message), 1;
    const char *chosen = nn_gemm_kernel();
    printf("\ndescriptor network alone, CPU ms per face (median):");
    static const char *const kernels[] = {"blas", "avx2", "avx512"};
    for (size_t k = 0; k < 3; k++) {
        double ms = descriptor_ms(net, kernels[k], seconds / 2);
        if (!isnan(ms))
            printf(" %s %.2f |", kernels[k], ms);
    }
    nn_gemm_use(chosen);
    printf(" plain-loop reference %.1f\n", descriptor_ms(net, NULL, seconds / 2));
    nn_facerec_free(net);
    return 0;
}
