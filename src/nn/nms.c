/*
 * nms.c: what the two face detectors share after their networks (face_nets.h):
 * box overlap, face-api's two non-maximum suppressions, and its rule for the
 * scaled input size.  Both suppressions sort stably, as JavaScript's
 * Array.prototype.sort does, so equal scores keep face-api's order.
 */
#include <math.h>
#include <stdlib.h>

#include "nn/face_nets.h"

double nn_box_iou(const nn_box *a, const nn_box *b)
{
    double area_a = a->w * a->h, area_b = b->w * b->h;
    if (area_a <= 0 || area_b <= 0)
        return 0;
    double w = fmax(0.0, fmin(a->x + a->w, b->x + b->w) - fmax(a->x, b->x));
    double h = fmax(0.0, fmin(a->y + a->h, b->y + b->h) - fmax(a->y, b->y));
    double inter = w * h;
    return inter / (area_a + area_b - inter);
}

/* Stable insertion sort of idx[0..n) by scores: ascending, or descending. */
static void sort_by_score(size_t *idx, size_t n, const double *scores, int descending)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 &&
               (descending ? scores[idx[j - 1]] < scores[v] : scores[idx[j - 1]] > scores[v])) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

size_t nn_nms_greedy(const nn_box *boxes, const double *scores, size_t n, double iou_max,
                     size_t *keep)
{
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return 0;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    sort_by_score(order, n, scores, 0);
    size_t left = n, kept = 0;
    while (left > 0) {
        size_t cur = order[--left]; /* the last of the ascending order: the best */
        keep[kept++] = cur;
        size_t m = 0;
        for (size_t i = 0; i < left; i++)
            if (nn_box_iou(&boxes[cur], &boxes[order[i]]) <= iou_max)
                order[m++] = order[i];
        left = m;
    }
    free(order);
    return kept;
}

size_t nn_nms_ssd(const nn_box *boxes, const double *scores, size_t n, double iou_max,
                  double min_score, size_t max_keep, size_t *keep)
{
    size_t *cand = malloc((n ? n : 1) * sizeof *cand), m = 0, kept = 0;
    if (!cand)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (scores[i] > min_score)
            cand[m++] = i;
    sort_by_score(cand, m, scores, 1);
    if (max_keep > n)
        max_keep = n;
    for (size_t c = 0; c < m && kept < max_keep; c++) {
        int suppressed = 0;
        for (size_t j = kept; j-- > 0;) {
            double iou = nn_box_iou(&boxes[cand[c]], &boxes[keep[j]]);
            if (iou > iou_max) { /* the score drops to 0, at or below min_score */
                suppressed = 1;
                break;
            }
        }
        if (!suppressed)
            keep[kept++] = cand[c];
    }
    free(cand);
    return kept;
}

void nn_reshaped_dims(int w, int h, int size, double *rw, double *rh)
{
    double scale = (double)size / (double)(w > h ? w : h);
    /* Math.round: halves go up */
    *rw = floor(w * scale + 0.5);
    *rh = floor(h * scale + 0.5);
}
