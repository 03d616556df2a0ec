/*
 * winograd.c: 3x3 stride-1 convolution by Winograd's minimal filtering
 * algorithm F(2x2, 3x3) (Lavin and Gray, CVPR 2016): each 2x2 block of
 * output comes from a 4x4 block of input with 16 multiplications per
 * input/output channel pair instead of 36, the sums over input channels
 * being 16 matrix products (tiles x cin) * (cin x cout) (gemm.h).
 *
 *   V = B^T d B     (input tile d, 4x4)     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   U = G g G^T     (filter g, 3x3 -> 4x4)  G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   Y = A^T M A     (M = sum over cin of U . V, 4x4 -> 2x2)  A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * Tiles are processed in bands of tile rows so that the transformed input
 * and the products stay in cache.  In float32 the result differs from direct
 * convolution only by rounding (tests/test_nn_ops.c).
 */
#include <stdlib.h>
#include <string.h>

#include "nn/conv_internal.h"
#include "nn/gemm.h"
#include "nn/nn.h"

/* Floats of transformed input and products per band. */
#define BAND_FLOATS (256u * 1024u)

/* U = G g G^T for every (cin, cout) pair, laid out [16][cin][cout]. */
static void filter_transform(const nn_conv *f, float *u)
{
    size_t ci = (size_t)f->cin, co = (size_t)f->cout;
    for (size_t i = 0; i < ci; i++)
        for (size_t o = 0; o < co; o++) {
            float g[3][3], t[4][3];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    g[ky][kx] = f->w[(((size_t)ky * 3 + kx) * ci + i) * co + o];
            for (int c = 0; c < 3; c++) {
                t[0][c] = g[0][c];
                t[1][c] = 0.5f * (g[0][c] + g[1][c] + g[2][c]);
                t[2][c] = 0.5f * (g[0][c] - g[1][c] + g[2][c]);
                t[3][c] = g[2][c];
            }
            for (int r = 0; r < 4; r++) {
                float v[4] = {t[r][0], 0.5f * (t[r][0] + t[r][1] + t[r][2]),
                              0.5f * (t[r][0] - t[r][1] + t[r][2]), t[r][2]};
                for (int c = 0; c < 4; c++)
                    u[((size_t)(r * 4 + c) * ci + i) * co + o] = v[c];
            }
        }
}

int nn_winograd_prepare(nn_conv *f, int pack)
{
    size_t ci = (size_t)f->cin, co = (size_t)f->cout;
    f->wino = malloc(16 * ci * co * sizeof(float));
    if (!f->wino)
        return -1;
    filter_transform(f, f->wino);
    if (!pack)
        return 0;
    size_t one = nn_gemm_packed_size(f->cin, f->cout);
    f->wino_pack = malloc(16 * one * sizeof(float));
    if (!f->wino_pack)
        return -1;
    for (int k = 0; k < 16; k++)
        nn_gemm_pack(f->cin, f->cout, f->wino + (size_t)k * ci * co, f->cout,
                     f->wino_pack + (size_t)k * one);
    return 0;
}

/* Channels transformed together: fixed-size local arrays the compiler keeps
 * in vector registers. */
#define LANES 8

/* V = B^T d B for LANES channels (n <= LANES valid) of one tile. */
static inline void tile_in(const float *const d[16], size_t k, size_t n, float *const out[16])
{
    float x[16][LANES], b[16][LANES];
    for (int i = 0; i < 16; i++)
        for (size_t l = 0; l < LANES; l++)
            x[i][l] = l < n ? d[i][k + l] : 0.0f;
    for (int q = 0; q < 4; q++)
        for (size_t l = 0; l < LANES; l++) {
            b[q][l] = x[q][l] - x[8 + q][l];
            b[4 + q][l] = x[4 + q][l] + x[8 + q][l];
            b[8 + q][l] = x[8 + q][l] - x[4 + q][l];
            b[12 + q][l] = x[4 + q][l] - x[12 + q][l];
        }
    for (int r = 0; r < 4; r++)
        for (size_t l = 0; l < n; l++) {
            out[r * 4 + 0][k + l] = b[r * 4 + 0][l] - b[r * 4 + 2][l];
            out[r * 4 + 1][k + l] = b[r * 4 + 1][l] + b[r * 4 + 2][l];
            out[r * 4 + 2][k + l] = b[r * 4 + 2][l] - b[r * 4 + 1][l];
            out[r * 4 + 3][k + l] = b[r * 4 + 1][l] - b[r * 4 + 3][l];
        }
}

/* V = B^T d B for the tiles of tile rows [ty0, ty1), into v[16][tiles][c]. */
NN_VECTOR_CLONES
static void input_transform(const nn_tensor *x, int pad, int tiles_x, int ty0, int ty1, float *v,
                            size_t band_tiles, const float *zeros)
{
    size_t c = (size_t)x->c, t = 0;
    for (int ty = ty0; ty < ty1; ty++)
        for (int tx = 0; tx < tiles_x; tx++, t++) {
            const float *d[16];
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++) {
                    int iy = ty * 2 - pad + r, ix = tx * 2 - pad + q;
                    d[r * 4 + q] = (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w)
                                       ? zeros
                                       : x->d + ((size_t)iy * x->w + ix) * c;
                }
            float *out[16];
            for (int k = 0; k < 16; k++)
                out[k] = v + ((size_t)k * band_tiles + t) * c;
            for (size_t k = 0; k < c; k += LANES)
                tile_in(d, k, c - k < LANES ? c - k : LANES, out);
        }
}

/* Y = A^T M A for LANES channels of one tile: the 2x2 outputs o[0..4). */
static inline void tile_out(const float *const m[16], size_t k, size_t n, float *const o[4])
{
    float x[16][LANES], s[8][LANES];
    for (int i = 0; i < 16; i++)
        for (size_t l = 0; l < LANES; l++)
            x[i][l] = l < n ? m[i][k + l] : 0.0f;
    for (int q = 0; q < 4; q++)
        for (size_t l = 0; l < LANES; l++) {
            s[q][l] = x[q][l] + x[4 + q][l] + x[8 + q][l];
            s[4 + q][l] = x[4 + q][l] - x[8 + q][l] - x[12 + q][l];
        }
    for (int r = 0; r < 2; r++) {
        if (o[2 * r])
            for (size_t l = 0; l < n; l++)
                o[2 * r][k + l] = s[4 * r][l] + s[4 * r + 1][l] + s[4 * r + 2][l];
        if (o[2 * r + 1])
            for (size_t l = 0; l < n; l++)
                o[2 * r + 1][k + l] = s[4 * r + 1][l] - s[4 * r + 2][l] - s[4 * r + 3][l];
    }
}

/* Y = A^T M A for the band's tiles, into the output rows they cover. */
NN_VECTOR_CLONES
static void output_transform(nn_tensor *y, int tiles_x, int ty0, int ty1, const float *m,
                             size_t band_tiles)
{
    size_t c = (size_t)y->c, t = 0;
    for (int ty = ty0; ty < ty1; ty++)
        for (int tx = 0; tx < tiles_x; tx++, t++) {
            const float *in[16];
            for (int k = 0; k < 16; k++)
                in[k] = m + ((size_t)k * band_tiles + t) * c;
            int oy = ty * 2, ox = tx * 2;
            float *o00 = y->d + ((size_t)oy * y->w + ox) * c;
            int has_x1 = ox + 1 < y->w, has_y1 = oy + 1 < y->h;
            float *o[4] = {o00, has_x1 ? o00 + c : NULL, has_y1 ? o00 + (size_t)y->w * c : NULL,
                           has_x1 && has_y1 ? o00 + (size_t)y->w * c + c : NULL};
            for (size_t k = 0; k < c; k += LANES)
                tile_out(in, k, c - k < LANES ? c - k : LANES, o);
        }
}

nn_tensor nn_winograd_conv3x3(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, nn_padding pad,
                              const nn_post *post)
{
    int oh = nn_out_size(x->h, 3, 1, pad), ow = nn_out_size(x->w, 3, 1, pad);
    int p = nn_pad_before(x->h, 3, 1, pad);
    nn_tensor y = nn_tensor_new(ctx, oh, ow, f->cout);
    if (!y.d)
        return y;
    size_t ci = (size_t)f->cin, co = (size_t)f->cout;
    int tiles_y = (oh + 1) / 2, tiles_x = (ow + 1) / 2;
    size_t row_floats = 16 * (size_t)tiles_x * (ci + co);
    int band = (int)(BAND_FLOATS / row_floats);
    if (band < 1)
        band = 1;
    if (band > tiles_y)
        band = tiles_y;
    size_t band_tiles = (size_t)band * (size_t)tiles_x;
    size_t u_floats = f->wino ? 0 : 16 * ci * co, one = nn_gemm_packed_size(f->cin, f->cout);
    float *scratch = nn_scratch(ctx, 16 * band_tiles * (ci + co) + ci + u_floats);
    if (!scratch) {
        nn_tensor_free(&y);
        return y;
    }
    float *v = scratch, *m = v + 16 * band_tiles * ci, *zeros = m + 16 * band_tiles * co;
    const float *u = f->wino;
    if (!u) {
        filter_transform(f, zeros + ci);
        u = zeros + ci;
    }
    memset(zeros, 0, ci * sizeof(float));
    for (int ty0 = 0; ty0 < tiles_y; ty0 += band) {
        int ty1 = ty0 + band < tiles_y ? ty0 + band : tiles_y;
        int tiles = (ty1 - ty0) * tiles_x;
        input_transform(x, p, tiles_x, ty0, ty1, v, band_tiles, zeros);
        for (int k = 0; k < 16; k++) {
            nn_gemm_b b = {.b = u + (size_t)k * ci * co,
                           .ldb = (int)co,
                           .pack = f->wino_pack ? f->wino_pack + (size_t)k * one : NULL};
            nn_gemm(tiles, (int)co, (int)ci, v + (size_t)k * band_tiles * ci, (int)ci, &b, NULL,
                    m + (size_t)k * band_tiles * co, (int)co, NULL);
        }
        output_transform(&y, tiles_x, ty0, ty1, m, band_tiles);
        int r0 = ty0 * 2, r1 = ty1 * 2 < oh ? ty1 * 2 : oh;
        nn_post_apply(y.d + (size_t)r0 * ow * co, (size_t)(r1 - r0) * ow, (int)co, post);
    }
    return y;
}
