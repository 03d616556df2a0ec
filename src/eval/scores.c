/*
 * scores.c: the score sets of an evaluation (eval.h): 1:1 genuine and
 * impostor scores with the identities they came from, and 1:N search
 * outcomes.  Arrays grow by doubling; the set owns them.
 */
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* Reallocate `*p` to `new_cap` elements of `size` bytes; 0, or -1 on
 * out-of-memory (the array is then unchanged). */
static int grow(void **p, size_t size, size_t new_cap)
{
    void *q = realloc(*p, new_cap * size);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

/* Make room for one more entry in parallel arrays that share the capacity
 * `cap`: `arrays_grow` reallocates each to new_cap_ and is true on failure;
 * the capacity changes only when every array grew (a failed call leaves the
 * set as it was, with some arrays merely larger). */
#define RESERVE(n, cap, arrays_grow)                                                               \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            size_t new_cap_ = (cap) ? (cap)*2 : 1024;                                              \
            if (arrays_grow)                                                                       \
                return -1;                                                                         \
            (cap) = new_cap_;                                                                      \
        }                                                                                          \
    } while (0)

static void copy_name(char dst[64], const char *name)
{
    size_t l = name ? strlen(name) : 0;
    if (l > 63)
        l = 63;
    if (l)
        memcpy(dst, name, l);
    dst[l] = '\0';
}

void abis_eval_scores_init(abis_eval_scores *s, const char *name)
{
    memset(s, 0, sizeof *s);
    copy_name(s->name, name);
}

void abis_eval_scores_free(abis_eval_scores *s)
{
    if (!s)
        return;
    free(s->genuine);
    free(s->gen_id);
    free(s->impostor);
    free(s->imp_id_a);
    free(s->imp_id_b);
    char name[64];
    memcpy(name, s->name, sizeof name);
    memset(s, 0, sizeof *s);
    memcpy(s->name, name, sizeof name);
}

int abis_eval_add_genuine(abis_eval_scores *s, double score, uint32_t id)
{
    RESERVE(s->n_genuine, s->cap_genuine,
            grow((void **)&s->genuine, sizeof *s->genuine, new_cap_) ||
                grow((void **)&s->gen_id, sizeof *s->gen_id, new_cap_));
    s->genuine[s->n_genuine] = score;
    s->gen_id[s->n_genuine] = id;
    s->n_genuine++;
    return 0;
}

int abis_eval_add_impostor(abis_eval_scores *s, double score, uint32_t id_a, uint32_t id_b)
{
    RESERVE(s->n_impostor, s->cap_impostor,
            grow((void **)&s->impostor, sizeof *s->impostor, new_cap_) ||
                grow((void **)&s->imp_id_a, sizeof *s->imp_id_a, new_cap_) ||
                grow((void **)&s->imp_id_b, sizeof *s->imp_id_b, new_cap_));
    s->impostor[s->n_impostor] = score;
    s->imp_id_a[s->n_impostor] = id_a;
    s->imp_id_b[s->n_impostor] = id_b;
    s->n_impostor++;
    return 0;
}

void abis_eval_ident_init(abis_eval_ident *s, const char *name, size_t gallery_size,
                          uint32_t max_rank)
{
    memset(s, 0, sizeof *s);
    copy_name(s->name, name);
    s->gallery_size = gallery_size;
    s->max_rank = max_rank < ABIS_EVAL_MAX_RANK ? ABIS_EVAL_MAX_RANK : max_rank;
}

void abis_eval_ident_free(abis_eval_ident *s)
{
    if (!s)
        return;
    free(s->mated_rank);
    free(s->mated_score);
    free(s->mated_best_nonmate);
    free(s->mated_id);
    free(s->nonmated_best);
    free(s->nonmated_id);
    char name[64];
    memcpy(name, s->name, sizeof name);
    size_t g = s->gallery_size;
    uint32_t r = s->max_rank;
    memset(s, 0, sizeof *s);
    memcpy(s->name, name, sizeof name);
    s->gallery_size = g;
    s->max_rank = r;
}

int abis_eval_add_mated(abis_eval_ident *s, uint32_t rank, double score, double best_nonmate,
                        uint32_t id)
{
    RESERVE(s->n_mated, s->cap_mated,
            grow((void **)&s->mated_rank, sizeof *s->mated_rank, new_cap_) ||
                grow((void **)&s->mated_score, sizeof *s->mated_score, new_cap_) ||
                grow((void **)&s->mated_best_nonmate, sizeof *s->mated_best_nonmate, new_cap_) ||
                grow((void **)&s->mated_id, sizeof *s->mated_id, new_cap_));
    s->mated_rank[s->n_mated] = rank;
    s->mated_score[s->n_mated] = score;
    s->mated_best_nonmate[s->n_mated] = best_nonmate;
    s->mated_id[s->n_mated] = id;
    s->n_mated++;
    return 0;
}

int abis_eval_add_nonmated(abis_eval_ident *s, double best, uint32_t id)
{
    RESERVE(s->n_nonmated, s->cap_nonmated,
            grow((void **)&s->nonmated_best, sizeof *s->nonmated_best, new_cap_) ||
                grow((void **)&s->nonmated_id, sizeof *s->nonmated_id, new_cap_));
    s->nonmated_best[s->n_nonmated] = best;
    s->nonmated_id[s->n_nonmated] = id;
    s->n_nonmated++;
    return 0;
}
