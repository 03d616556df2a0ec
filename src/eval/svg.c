/*
 * svg.c: the evaluation plots as self-contained SVG 1.1 documents -- DET,
 * genuine/impostor score histograms, CMC (docs/EVALUATION.md, "Plots").
 *
 * Every document has xmlns, width, height and viewBox, uses only the generic
 * "sans-serif" font family and no scripts or external references, escapes
 * every piece of text (system names and titles may hold & < > " and need not
 * be valid UTF-8: bad bytes and control characters become '?'), and prints
 * only finite coordinates.
 */
#include "eval/eval_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A qualitative palette (the "category10" colours of D3/matplotlib), cycled. */
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define PALETTE_N (sizeof palette / sizeof palette[0])

/* ---- text --------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (RFC 3629, Unicode table
 * 3-7), or 0 if the bytes there are not one; U+FFFE and U+FFFF, which XML
 * forbids, count as malformed. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    if (c == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
        return 0;
    return n;
}

void abis_eval_utf8_clean(const char *in, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)(in ? in : "");
    size_t o = 0;
    if (cap == 0)
        return;
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7F))) {
            if (o + 1 >= cap)
                break;
            out[o++] = '?';
            p++;
            continue;
        }
        if (o + n >= cap)
            break;
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
}

/* Write s as XML character data / attribute text. */
static void put_text(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7F))) {
            fputc('?', out);
            p++;
            continue;
        }
        if (n == 1) {
            switch (*p) {
            case '&':
                fputs("&amp;", out);
                break;
            case '<':
                fputs("&lt;", out);
                break;
            case '>':
                fputs("&gt;", out);
                break;
            case '"':
                fputs("&quot;", out);
                break;
            case '\'':
                fputs("&apos;", out);
                break;
            default:
                fputc(*p, out);
            }
        } else {
            fwrite(p, 1, n, out);
        }
        p += n;
    }
}

/* A coordinate: never nan or inf in the document. */
static double fin(double v)
{
    return isfinite(v) ? v : 0;
}

static void put_header(FILE *out, double w, double h, const char *title)
{
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n",
            w, h, w, h);
    fputs("<title>", out);
    put_text(out, title);
    fputs("</title>\n", out);
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", w, h);
    fprintf(out, "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", w / 2);
    put_text(out, title);
    fputs("</text>\n", out);
}

static abis_status finish(FILE *out, abis_error *err)
{
    fputs("</svg>\n", out);
    if (fflush(out) != 0 || ferror(out))
        return abis_error_set(err, ABIS_E_IO, "could not write the SVG document");
    return ABIS_OK;
}

/* The plot area. */
typedef struct frame {
    double left, top, width, height;
} frame;

static void put_frame(FILE *out, const frame *f, const char *xlabel, const char *ylabel)
{
    fprintf(out,
            "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
            "stroke=\"black\"/>\n",
            f->left, f->top, f->width, f->height);
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", f->left + f->width / 2,
            f->top + f->height + 62);
    put_text(out, xlabel);
    fputs("</text>\n", out);
    double cx = f->left - 62, cy = f->top + f->height / 2;
    fprintf(out,
            "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.2f %.2f)\">",
            cx, cy, cx, cy);
    put_text(out, ylabel);
    fputs("</text>\n", out);
}

static void put_xtick(FILE *out, const frame *f, double x, const char *label, int rotate)
{
    double y0 = f->top + f->height;
    fprintf(out,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n"
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"black\"/>\n",
            fin(x), f->top, fin(x), y0, fin(x), y0, fin(x), y0 + 5);
    if (rotate)
        fprintf(out,
                "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" font-size=\"10\" "
                "transform=\"rotate(-40 %.2f %.2f)\">",
                fin(x), y0 + 16, fin(x), y0 + 16);
    else
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"10\">", fin(x),
                y0 + 18);
    put_text(out, label);
    fputs("</text>\n", out);
}

static void put_ytick(FILE *out, const frame *f, double y, const char *label)
{
    double x1 = f->left + f->width;
    fprintf(out,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n"
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"black\"/>\n",
            f->left, fin(y), x1, fin(y), f->left - 5, fin(y), f->left, fin(y));
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" font-size=\"10\">", f->left - 8,
            fin(y) + 3);
    put_text(out, label);
    fputs("</text>\n", out);
}

/* One legend row at (x, y): a colour swatch and the text "name suffix". */
static void put_legend(FILE *out, double x, double y, const char *colour, const char *dash,
                       const char *name, const char *suffix)
{
    fprintf(out,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
            "stroke-width=\"2.5\"%s/>\n",
            x, y - 4, x + 24, y - 4, colour, dash);
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\">", x + 30, y);
    put_text(out, name);
    put_text(out, suffix);
    fputs("</text>\n", out);
}

/* "Nice" tick spacing for a linear axis spanning `span`: 1, 2 or 5 times a
 * power of ten, giving about `want` intervals. */
static double nice_step(double span, int want)
{
    if (!(span > 0) || !isfinite(span))
        return 1;
    double raw = span / want, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

/* ---- DET ---------------------------------------------------------------------- */

/* DET axis ticks: decades below 1 %, then the percentages a DET usually
 * shows (the plots of Martin et al. 1997 and NIST). */
static const struct {
    double p;
    const char *label;
} det_ticks[] = {{1e-9, "0.0000001%"}, {1e-8, "0.000001%"}, {1e-7, "0.00001%"}, {1e-6, "0.0001%"},
                 {1e-5, "0.001%"},     {1e-4, "0.01%"},     {1e-3, "0.1%"},     {1e-2, "1%"},
                 {0.05, "5%"},         {0.1, "10%"},        {0.2, "20%"},       {0.4, "40%"},
                 {0.6, "60%"},         {0.8, "80%"}};
#define DET_NTICKS (sizeof det_ticks / sizeof det_ticks[0])
#define DET_HI 0.8 /* upper end of both axes */

/* The lower end of a DET axis: the decade at or below 1/n (the smallest
 * nonzero rate n comparisons can show), within [1e-9, 1e-2]. */
static double det_axis_low(uint64_t n)
{
    double lo = 1e-2;
    while (lo > 1e-9 && lo * (double)n > 1 + 1e-9)
        lo /= 10;
    return lo;
}

typedef struct det_axes {
    frame f;
    double x0, x1, y0, y1; /* probit of the axis ends */
} det_axes;

static double det_x(const det_axes *a, double fmr)
{
    double p = abis_eval_probit(fmr); /* clipped to the axis range */
    if (p < a->x0)
        p = a->x0;
    if (p > a->x1 || !(fmr <= DET_HI))
        p = a->x1;
    return a->f.left + (p - a->x0) / (a->x1 - a->x0) * a->f.width;
}

static double det_y(const det_axes *a, double fnmr)
{
    double p = abis_eval_probit(fnmr);
    if (p < a->y0)
        p = a->y0;
    if (p > a->y1 || !(fnmr <= DET_HI))
        p = a->y1;
    return a->f.top + a->f.height - (p - a->y0) / (a->y1 - a->y0) * a->f.height;
}

/* Thinning for plotting: a walk over every operating point that keeps a point
 * only when it lies at least half a pixel (in either direction) from the last
 * point kept, plus the last point.  The curve is monotone in both
 * coordinates, so at most (width + height) / 0.5 points survive (under 2,000
 * here) whatever the number of scores, and the drawn curve is within half a
 * pixel of the full one. */
typedef struct det_thin {
    const det_axes *a;
    double *xy; /* pairs */
    size_t n, cap;
    double last_x, last_y; /* the last point seen, kept or not */
    int oom;
} det_thin;

#define DET_THIN_PX 0.5

static int thin_push(det_thin *t, double x, double y)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        double *p = realloc(t->xy, 2 * cap * sizeof *p);
        if (!p) {
            t->oom = 1;
            return -1;
        }
        t->xy = p;
        t->cap = cap;
    }
    t->xy[2 * t->n] = x;
    t->xy[2 * t->n + 1] = y;
    t->n++;
    return 0;
}

static int thin_visit(void *ctx, double threshold, double fmr, double fnmr)
{
    (void)threshold;
    det_thin *t = ctx;
    double x = det_x(t->a, fmr), y = det_y(t->a, fnmr);
    t->last_x = x;
    t->last_y = y;
    const double *k = &t->xy[2 * (t->n - 1)];
    if (fabs(x - k[0]) >= DET_THIN_PX || fabs(y - k[1]) >= DET_THIN_PX)
        return thin_push(t, x, y);
    return 0;
}

/* The thinned curve of one system (starting at the +inf threshold's corner). */
static abis_status det_curve(const det_axes *a, const double *gen, size_t ng, const double *imp,
                             size_t ni, det_thin *t, abis_error *err)
{
    memset(t, 0, sizeof *t);
    t->a = a;
    if (thin_push(t, det_x(a, 0), det_y(a, 1)) == 0) {
        t->last_x = t->xy[0];
        t->last_y = t->xy[1];
        abis_eval_det_walk(gen, ng, imp, ni, thin_visit, t);
        const double *k = &t->xy[2 * (t->n - 1)];
        if (!t->oom && (k[0] != t->last_x || k[1] != t->last_y))
            thin_push(t, t->last_x, t->last_y);
    }
    if (t->oom) {
        free(t->xy);
        t->xy = NULL;
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory drawing a DET curve");
    }
    return ABIS_OK;
}

static void put_polyline(FILE *out, const double *xy, size_t n, const char *colour,
                         const char *extra)
{
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour,
            extra);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%.2f,%.2f", i ? " " : "", fin(xy[2 * i]), fin(xy[2 * i + 1]));
    fputs("\"/>\n", out);
}

abis_status abis_eval_svg_det(FILE *out, const abis_eval_scores *const *systems, size_t n,
                              const char *title, abis_error *err)
{
    if (!out || (n > 0 && !systems))
        return abis_error_set(err, ABIS_E_INVALID, "DET plot: no output or no systems");
    uint64_t max_i = 1, max_g = 1;
    for (size_t k = 0; k < n; k++) {
        if (!systems[k])
            return abis_error_set(err, ABIS_E_INVALID, "DET plot: system %zu is missing", k);
        max_i = systems[k]->n_impostor > max_i ? systems[k]->n_impostor : max_i;
        max_g = systems[k]->n_genuine > max_g ? systems[k]->n_genuine : max_g;
    }
    det_axes a = {{90, 50, 460, 460}, 0, 0, 0, 0};
    double lo_x = det_axis_low(max_i), lo_y = det_axis_low(max_g);
    a.x0 = abis_eval_probit(lo_x);
    a.x1 = abis_eval_probit(DET_HI);
    a.y0 = abis_eval_probit(lo_y);
    a.y1 = abis_eval_probit(DET_HI);
    double legend_x = a.f.left + a.f.width + 30;
    double width = legend_x + 300, height = a.f.top + a.f.height + 80;
    if (a.f.top + 20 + 20.0 * (double)n > height)
        height = a.f.top + 20 + 20.0 * (double)n;

    put_header(out, width, height, title);
    for (size_t i = 0; i < DET_NTICKS; i++) {
        double p = det_ticks[i].p;
        if (p >= lo_x * (1 - 1e-9) && p <= DET_HI)
            put_xtick(out, &a.f, det_x(&a, p), det_ticks[i].label, 1);
        if (p >= lo_y * (1 - 1e-9) && p <= DET_HI)
            put_ytick(out, &a.f, det_y(&a, p), det_ticks[i].label);
    }
    put_frame(out, &a.f, "False match rate (FMR)", "False non-match rate (FNMR)");
    /* the FMR = FNMR diagonal, where the EER lies */
    double d0 = lo_x > lo_y ? lo_x : lo_y;
    fprintf(out,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#999999\" "
            "stroke-dasharray=\"4 4\"/>\n",
            det_x(&a, d0), det_y(&a, d0), det_x(&a, DET_HI), det_y(&a, DET_HI));
    fprintf(out,
            "<clipPath id=\"det-area\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
            "height=\"%.2f\"/></clipPath>\n",
            a.f.left, a.f.top, a.f.width, a.f.height);

    abis_status st = ABIS_OK;
    for (size_t k = 0; k < n && st == ABIS_OK; k++) {
        const abis_eval_scores *s = systems[k];
        const char *colour = palette[k % PALETTE_N];
        double ly = a.f.top + 20 + 20.0 * (double)k;
        if (s->n_genuine == 0 || s->n_impostor == 0) {
            put_legend(out, legend_x, ly, colour, " stroke-dasharray=\"2 4\"", s->name,
                       " (no genuine or no impostor scores)");
            continue;
        }
        double *gen = NULL, *imp = NULL;
        st = abis_eval_sorted_copy(s->genuine, s->n_genuine, "genuine", &gen, err);
        if (st == ABIS_OK)
            st = abis_eval_sorted_copy(s->impostor, s->n_impostor, "impostor", &imp, err);
        det_thin t = {0};
        if (st == ABIS_OK)
            st = det_curve(&a, gen, s->n_genuine, imp, s->n_impostor, &t, err);
        if (st == ABIS_OK) {
            double eer, thr;
            abis_eval_eer_sorted(gen, s->n_genuine, imp, s->n_impostor, &eer, &thr);
            fputs("<g clip-path=\"url(#det-area)\">\n", out);
            put_polyline(out, t.xy, t.n, colour, "");
            fprintf(out,
                    "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"white\" stroke=\"%s\" "
                    "stroke-width=\"2\"/>\n",
                    fin(det_x(&a, eer)), fin(det_y(&a, eer)), colour);
            fputs("</g>\n", out);
            char suffix[64];
            snprintf(suffix, sizeof suffix, " (EER %.3g%%)", 100 * eer);
            put_legend(out, legend_x, ly, colour, "", s->name, suffix);
        }
        free(t.xy);
        free(gen);
        free(imp);
    }
    if (st != ABIS_OK)
        return st;
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"10\" fill=\"#555555\">", legend_x,
            a.f.top + a.f.height);
    put_text(out, "circles: equal error rate; dashed: FMR = FNMR");
    fputs("</text>\n", out);
    return finish(out, err);
}

/* ---- histogram ------------------------------------------------------------------ */

#define HIST_BINS 50 /* shared bins across both classes */

/* Densities of x[0..n) over HIST_BINS bins from lo with width w (sum of
 * density * w = 1). */
static void hist_density(const double *x, size_t n, double lo, double w, double *dens)
{
    for (int b = 0; b < HIST_BINS; b++)
        dens[b] = 0;
    for (size_t i = 0; i < n; i++) {
        long b = (long)floor((x[i] - lo) / w);
        b = b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b;
        dens[b] += 1;
    }
    for (int b = 0; b < HIST_BINS; b++)
        dens[b] = n ? dens[b] / ((double)n * w) : 0;
}

abis_status abis_eval_svg_histogram(FILE *out, const abis_eval_scores *s, const char *title,
                                    abis_error *err)
{
    if (!out || !s)
        return abis_error_set(err, ABIS_E_INVALID, "histogram: no output or no score set");
    double lo = INFINITY, hi = -INFINITY;
    const double *cls[2] = {s->genuine, s->impostor};
    size_t cnt[2] = {s->n_genuine, s->n_impostor};
    static const char *const what[2] = {"genuine", "impostor"};
    for (int c = 0; c < 2; c++)
        for (size_t i = 0; i < cnt[c]; i++) {
            double v = cls[c][i];
            if (!isfinite(v))
                return abis_error_set(err, ABIS_E_INVALID,
                                      "%s score %zu is %g: scores must be finite", what[c], i, v);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    if (!(lo <= hi)) { /* no scores at all */
        lo = 0;
        hi = 1;
    } else if (hi - lo < 1e-12 * (fabs(lo) + 1)) {
        lo -= 0.5;
        hi += 0.5;
    }
    double w = (hi - lo) / HIST_BINS;
    double dens[2][HIST_BINS], dmax = 0;
    for (int c = 0; c < 2; c++) {
        hist_density(cls[c], cnt[c], lo, w, dens[c]);
        for (int b = 0; b < HIST_BINS; b++)
            dmax = dens[c][b] > dmax ? dens[c][b] : dmax;
    }
    if (!(dmax > 0) || !isfinite(dmax))
        dmax = 1;
    double ystep = nice_step(dmax, 5), ymax = ceil(dmax * 1.05 / ystep) * ystep;

    frame f = {90, 50, 560, 360};
    double width = 900, height = f.top + f.height + 80;
    put_header(out, width, height, title);
#define HX(v) (f.left + ((v)-lo) / (hi - lo) * f.width)
#define HY(d) (f.top + f.height - (d) / ymax * f.height)
    double xstep = nice_step(hi - lo, 6);
    char label[48];
    for (double t = ceil(lo / xstep) * xstep; t <= hi + xstep * 1e-9; t += xstep) {
        snprintf(label, sizeof label, "%g", fabs(t) < xstep * 1e-9 ? 0.0 : t);
        put_xtick(out, &f, HX(t), label, 0);
    }
    for (double t = 0; t <= ymax + ystep * 1e-9; t += ystep) {
        snprintf(label, sizeof label, "%g", t);
        put_ytick(out, &f, HY(t), label);
    }
    put_frame(out, &f, "Score", "Density");
    static const char *const colour[2] = {"#1f77b4", "#d62728"};
    for (int c = 0; c < 2; c++) {
        if (cnt[c] == 0)
            continue;
        /* a closed step outline of the bins */
        fprintf(out,
                "<path fill=\"%s\" fill-opacity=\"0.25\" stroke=\"%s\" stroke-width=\"1.5\" "
                "d=\"M%.2f,%.2f",
                colour[c], colour[c], HX(lo), HY(0));
        for (int b = 0; b < HIST_BINS; b++)
            fprintf(out, " L%.2f,%.2f L%.2f,%.2f", fin(HX(lo + b * w)), fin(HY(dens[c][b])),
                    fin(HX(lo + (b + 1) * w)), fin(HY(dens[c][b])));
        fprintf(out, " L%.2f,%.2f Z\"/>\n", HX(hi), HY(0));
    }
#undef HX
#undef HY
    double lx = f.left + f.width + 30;
    for (int c = 0; c < 2; c++) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, " (%zu scores)", cnt[c]);
        put_legend(out, lx, f.top + 20 + 20.0 * c, colour[c], "", c == 0 ? "genuine" : "impostor",
                   suffix);
    }
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"11\">", lx, f.top + 70);
    put_text(out, s->name);
    fputs("</text>\n", out);
    return finish(out, err);
}

/* ---- CMC ---------------------------------------------------------------------- */

abis_status abis_eval_svg_cmc(FILE *out, const abis_eval_ident_metrics *const *systems,
                              const char *const *names, size_t n, const char *title,
                              abis_error *err)
{
    if (!out || (n > 0 && !systems))
        return abis_error_set(err, ABIS_E_INVALID, "CMC plot: no output or no systems");
    /* the y axis starts at the tenth below the lowest rate shown */
    double ymin = 1;
    for (size_t k = 0; k < n; k++) {
        if (!systems[k])
            return abis_error_set(err, ABIS_E_INVALID, "CMC plot: system %zu is missing", k);
        for (int r = 0; r < ABIS_EVAL_MAX_RANK; r++)
            if (isfinite(systems[k]->cmc[r]) && systems[k]->cmc[r] < ymin)
                ymin = systems[k]->cmc[r];
    }
    ymin = floor(ymin * 10) / 10;
    if (ymin > 0.9)
        ymin = 0.9;
    if (ymin < 0)
        ymin = 0;

    frame f = {90, 50, 460, 360};
    double legend_x = f.left + f.width + 30;
    double width = legend_x + 300, height = f.top + f.height + 80;
    if (f.top + 20 + 20.0 * (double)n > height)
        height = f.top + 20 + 20.0 * (double)n;
    put_header(out, width, height, title);
#define CX(r) (f.left + ((r)-1) / (double)(ABIS_EVAL_MAX_RANK - 1) * f.width)
#define CY(v) (f.top + f.height - ((v)-ymin) / (1 - ymin) * f.height)
    char label[32];
    for (int r = 1; r <= ABIS_EVAL_MAX_RANK; r++) {
        if (r != 1 && r % 5 != 0)
            continue;
        snprintf(label, sizeof label, "%d", r);
        put_xtick(out, &f, CX(r), label, 0);
    }
    double ystep = (1 - ymin) > 0.45 ? 0.1 : (1 - ymin) > 0.15 ? 0.05 : 0.02;
    for (double v = ymin; v <= 1 + 1e-9; v += ystep) {
        snprintf(label, sizeof label, "%.0f%%", 100 * v);
        put_ytick(out, &f, CY(v), label);
    }
    put_frame(out, &f, "Rank", "Identification rate");
    for (size_t k = 0; k < n; k++) {
        const abis_eval_ident_metrics *m = systems[k];
        const char *colour = palette[k % PALETTE_N];
        const char *name = names && names[k] ? names[k] : "";
        double ly = f.top + 20 + 20.0 * (double)k;
        if (!isfinite(m->cmc[0])) {
            put_legend(out, legend_x, ly, colour, " stroke-dasharray=\"2 4\"", name,
                       " (no mated probes)");
            continue;
        }
        double xy[2 * ABIS_EVAL_MAX_RANK];
        for (int r = 0; r < ABIS_EVAL_MAX_RANK; r++) {
            double v = isfinite(m->cmc[r]) ? m->cmc[r] : ymin;
            xy[2 * r] = CX(r + 1);
            xy[2 * r + 1] = CY(v < ymin ? ymin : v > 1 ? 1 : v);
        }
        put_polyline(out, xy, ABIS_EVAL_MAX_RANK, colour, "");
        for (int r = 0; r < ABIS_EVAL_MAX_RANK; r++)
            fprintf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n",
                    fin(xy[2 * r]), fin(xy[2 * r + 1]), colour);
        char suffix[64];
        snprintf(suffix, sizeof suffix, " (rank 1: %.2f%%)", 100 * m->cmc[0]);
        put_legend(out, legend_x, ly, colour, "", name, suffix);
    }
#undef CX
#undef CY
    return finish(out, err);
}
