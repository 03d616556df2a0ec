/*
 * ops_match.c: verification (1:1) and identification (1:N), with the policy
 * that guards them: the purpose's legal basis (consent or statutory), the
 * subject's locks, and the decision threshold from the purpose's target false
 * match rate through the modality's calibration.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"

abis_confidence engine_confidence(double fmr, double target, int match)
{
    /* How far the observed FMR is past the target, in decades. */
    double margin = match ? target / (fmr > 1e-300 ? fmr : 1e-300) : fmr / target;
    if (margin > 1000)
        return ABIS_CONFIDENCE_HIGH;
    if (margin > 10)
        return ABIS_CONFIDENCE_MEDIUM;
    return ABIS_CONFIDENCE_LOW;
}

typedef struct lock_ctx {
    int64_t modality_id;
    int locked;
} lock_ctx;

static int check_lock(const abis_lock_rec *r, void *ctx)
{
    lock_ctx *l = ctx;
    if (r->modality_id == 0 || r->modality_id == l->modality_id)
        l->locked = 1;
    return l->locked;
}

/* ABIS_E_LOCKED when the subject locked this modality or all of them. */
static abis_status policy_lock(abis_engine *e, const abis_id *subject, const modality_entry *m,
                               abis_error *err)
{
    lock_ctx l = {m->rec.id, 0};
    abis_status st = e->store->ops->lock_scan_subject(e->store, subject, check_lock, &l, err);
    if (st == ABIS_OK && l.locked)
        st = abis_error_set(err, ABIS_E_LOCKED, "the subject has locked their '%s' biometrics",
                            m->rec.name);
    return st;
}

/* ABIS_E_NO_CONSENT when the purpose rests on consent and the subject has not
 * given it (or withdrew it). */
static abis_status policy_consent(abis_engine *e, const abis_id *subject, const abis_purpose_rec *p,
                                  abis_error *err)
{
    if (p->basis == ABIS_BASIS_STATUTORY)
        return ABIS_OK;
    abis_consent_rec cr;
    abis_status st = e->store->ops->consent_get(e->store, subject, p->id, &cr, err);
    if (st == ABIS_E_NOT_FOUND || (st == ABIS_OK && !cr.granted))
        return abis_error_set(err, ABIS_E_NO_CONSENT,
                              "the subject has not consented to purpose '%s'", p->name);
    return st;
}

typedef struct verify_ctx {
    abis_engine *e;
    int64_t segment_id;
    const modality_entry *m;
    int position;
    const unsigned char *probe;
    size_t probe_len;
    unsigned char *buf;
    size_t cap;
    int compared;
    double best;
    abis_error *err;
    abis_status st;
} verify_ctx;

/* Compare the probe with one stored template of the subject. */
static int verify_one(const abis_template_rec *r, void *ctx)
{
    verify_ctx *v = ctx;
    if (r->modality_id != v->m->rec.id)
        return 0;
    if (v->position && r->position && v->position != r->position)
        return 0;
    size_t len = 0;
    v->st = engine_unseal_template(v->e, r, v->segment_id, v->m, v->buf, v->cap, &len, v->err);
    if (v->st != ABIS_OK) {
        size_t plain = r->sealed_len > ABIS_SEAL_OVERHEAD ? r->sealed_len - ABIS_SEAL_OVERHEAD : 0;
        abis_wipe(v->buf, plain < v->cap ? plain : v->cap);
        return 1;
    }
    double score = v->m->kind->compare(&v->m->rec, v->probe, v->probe_len, v->buf, len);
    /* Wipe what was unsealed now, so that the scratch buffer (large enough
     * for any kind) need not be wiped whole when it is freed. */
    abis_wipe(v->buf, len);
    if (!v->compared || score > v->best)
        v->best = score;
    v->compared = 1;
    return 0;
}

/* The best score of a canonical probe against a subject's templates of
 * modality m (at the probe's position, where both have one); *found = 0 when
 * the subject has no such template.  `buf` (cap bytes) is scratch for
 * unsealed templates. */
static abis_status subject_best_score(abis_engine *e, const abis_id *subject, int64_t segment_id,
                                      const modality_entry *m, int position,
                                      const unsigned char *probe, size_t probe_len,
                                      unsigned char *buf, size_t cap, double *best, int *found,
                                      abis_error *err)
{
    verify_ctx v = {.e = e,
                    .segment_id = segment_id,
                    .m = m,
                    .position = position,
                    .probe = probe,
                    .probe_len = probe_len,
                    .buf = buf,
                    .cap = cap,
                    .err = err,
                    .st = ABIS_OK};
    abis_status st = e->store->ops->template_scan_subject(e->store, subject, verify_one, &v, err);
    if (st == ABIS_OK)
        st = v.st;
    *found = v.compared;
    *best = v.best;
    return st;
}

abis_status abis_subject_verify(abis_engine *e, const abis_caller *c, const abis_id *subject,
                                const char *purpose, const abis_template_input *probes,
                                size_t n_probes, abis_verify_result *res, abis_error *err)
{
    engine_state_rdlock(e);
    abis_verify_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    abis_purpose_rec *p = engine_purpose(e, purpose, NULL);
    abis_subject_rec subj;
    segstate *seg = NULL;
    abis_status st = ABIS_OK;
    if (!p)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "purpose '%.64s' does not exist",
                            purpose ? purpose : "");
    if (st == ABIS_OK && (n_probes == 0 || !probes))
        st = abis_error_set(err, ABIS_E_INVALID, "verification needs at least one probe");
    if (st == ABIS_OK)
        st = engine_find_subject(e, subject, &subj, &seg, err);

    /* Validate every probe before any policy decision, so bad input is named
     * as such; then policy; then compare. */
    unsigned char **canon = calloc(n_probes ? n_probes : 1, sizeof *canon);
    size_t *canon_len = calloc(n_probes ? n_probes : 1, sizeof *canon_len);
    modality_entry **mods = calloc(n_probes ? n_probes : 1, sizeof *mods);
    if (st == ABIS_OK && (!canon || !canon_len || !mods))
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    for (size_t i = 0; st == ABIS_OK && i < n_probes; i++) {
        char what[32];
        snprintf(what, sizeof what, n_probes > 1 ? "probe %zu" : "probe", i + 1);
        mods[i] = engine_modality(e, probes[i].modality, NULL);
        if (!mods[i])
            st = abis_error_set(err, ABIS_E_INVALID, "%s: modality '%.64s' is not declared", what,
                                probes[i].modality ? probes[i].modality : "");
        else
            st = mods[i]->kind->validate(&mods[i]->rec, &probes[i], what, &canon[i], &canon_len[i],
                                         NULL, err);
    }
    if (st == ABIS_OK)
        st = policy_consent(e, subject, p, err);
    for (size_t i = 0; st == ABIS_OK && i < n_probes; i++)
        st = policy_lock(e, subject, mods[i], err);

    double best_fmr = 1.0;
    size_t best_i = 0;
    double *scores = calloc(n_probes ? n_probes : 1, sizeof *scores);
    const abis_calibration **calibs = calloc(n_probes ? n_probes : 1, sizeof *calibs);
    if (st == ABIS_OK && (!scores || !calibs))
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    unsigned char *buf = st == ABIS_OK ? malloc(ABIS_TEMPLATE_MAX) : NULL;
    if (st == ABIS_OK && !buf)
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    for (size_t i = 0; st == ABIS_OK && i < n_probes; i++) {
        double best = 0;
        int found = 0;
        st = subject_best_score(e, subject, subj.segment_id, mods[i], probes[i].position, canon[i],
                                canon_len[i], buf, ABIS_TEMPLATE_MAX, &best, &found, err);
        if (st == ABIS_OK && !found)
            st = abis_error_set(err, ABIS_E_NOT_FOUND, "the subject has no '%s' template%s",
                                mods[i]->rec.name, probes[i].position ? " at that position" : "");
        if (st != ABIS_OK)
            break;
        scores[i] = best;
        calibs[i] = mods[i]->calib;
        double fmr = abis_calibration_fmr(mods[i]->calib, best);
        if (i == 0 || fmr < best_fmr) {
            best_fmr = fmr;
            best_i = i;
            res->score = best;
        }
    }
    if (buf)
        free(buf); /* every use was wiped (verify_one) */
    if (st == ABIS_OK) {
        /* One probe: its calibrated FMR against the target.  Several probes
         * (modalities, or samples of one): fused by likelihood ratio when
         * every calibration has an LR model, deciding on the fused FMR
         * computed under independence (src/match/fusion.c); otherwise the best probe
         * decides and its FMR is multiplied by the number of probes (any of n
         * impostor comparisons matching has probability at most n times
         * one's).  Both hold the purpose's target FMR. */
        double fmr = best_fmr * (double)n_probes, fused_llr, fused_fmr;
        res->threshold =
            abis_calibration_threshold(mods[best_i]->calib, p->target_fmr / (double)n_probes);
        abis_error fusion_err;
        if (n_probes > 1 && abis_fusion_lr(calibs, scores, n_probes, &fused_llr, &fused_fmr,
                                           &fusion_err) == ABIS_OK) {
            fmr = fused_fmr;
            res->score = fused_llr;
        }
        if (fmr > 1)
            fmr = 1;
        res->fmr = fmr;
        res->decision = fmr <= p->target_fmr ? ABIS_MATCH : ABIS_NO_MATCH;
        res->confidence = engine_confidence(fmr, p->target_fmr, res->decision == ABIS_MATCH);
    }
    /* The audit entry is written after the state lock is released (group
     * commit: auditq.c); names are copied out of the registry first. */
    char pname[ABIS_NAME_MAX + 1] = "";
    if (p)
        snprintf(pname, sizeof pname, "%s", p->name);
    engine_state_unlock(e);
    if (st == ABIS_OK) {
        char hex[ABIS_ID_HEX_LEN + 1];
        abis_id_to_hex(subject, hex);
        audit_event ev = {.operation = "verify",
                          .segment = seg ? seg->rec.name : NULL,
                          .subject = hex,
                          .purpose = pname,
                          .decision = abis_decision_name(res->decision),
                          .detail = abis_confidence_name(res->confidence)};
        st = audit_event_write(e, c, &ev, err);
    } else {
        audit_refusal(e, c, "verify", seg ? seg->rec.name : NULL,
                      st == ABIS_E_NOT_FOUND && !seg ? NULL : subject, purpose, err);
    }
    for (size_t i = 0; canon && i < n_probes; i++)
        abis_modality_free_template(canon[i], canon_len ? canon_len[i] : 0);
    free(scores);
    free(calibs);
    free(canon);
    free(canon_len);
    free(mods);
    return st;
}

/* A candidate of a multi-probe identification: its slot and, per probe,
 * whether it has a score and what it is. */
typedef struct fused_cand {
    uint32_t slot;
    double fmr;   /* per-comparison FMR of the fused (or best) evidence */
    double score; /* fused log-likelihood ratio, or the best raw score */
} fused_cand;

static int cmp_fused(const void *a, const void *b)
{
    const fused_cand *x = a, *y = b;
    if (x->fmr != y->fmr)
        return x->fmr < y->fmr ? -1 : 1;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* Per-probe state of an identification. */
typedef struct id_probe {
    modality_entry *m;
    size_t mi;
    unsigned char *canon;
    size_t len;
    abis_gallery *g;
    abis_bitset filter;
    abis_hit *hits;
    size_t got;
} id_probe;

/* Several probes: each searches its own modality's gallery for a generous
 * shortlist; every subject on any shortlist becomes a candidate, its score
 * for a probe whose shortlist missed it is computed from its stored
 * templates (absent when it has none of that modality or locked it), and the
 * scores are fused by likelihood ratio when every calibration has an LR
 * model (else the best probe's FMR times the number of probes).  The
 * candidate's FPIR at the gallery size must be at most the target. */
static abis_status identify_fused(abis_engine *e, segstate *seg, const abis_purpose_rec *p,
                                  id_probe *pr, size_t n_probes, size_t k, abis_candidate *out,
                                  size_t *n_out, abis_error *err)
{
    size_t cap = ABIS_TEMPLATE_MAX, n_c = 0, gallery = 1;
    unsigned char *buf = malloc(cap);
    fused_cand *cands = calloc(n_probes * 1000, sizeof *cands);
    const abis_calibration **calibs = calloc(n_probes, sizeof *calibs);
    double *scores = calloc(n_probes, sizeof *scores);
    abis_idmap seen = {0};
    abis_status st = ABIS_OK;
    if (!buf || !cands || !calibs || !scores)
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n_probes; i++)
        if (pr[i].g->ops->count(pr[i].g) > gallery)
            gallery = pr[i].g->ops->count(pr[i].g);
    for (size_t i = 0; st == ABIS_OK && i < n_probes; i++)
        for (size_t h = 0; st == ABIS_OK && h < pr[i].got; h++) {
            unsigned char key[16] = {0};
            memcpy(key, &pr[i].hits[h].slot, sizeof pr[i].hits[h].slot);
            uint32_t ignored;
            if (abis_idmap_get(&seen, key, &ignored))
                continue;
            if (abis_idmap_put(&seen, key, (uint32_t)n_c) != 0) {
                st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
                break;
            }
            fused_cand *fc = &cands[n_c++];
            fc->slot = pr[i].hits[h].slot;
            const abis_id *subject = &seg->slot_ids[fc->slot];
            size_t n_present = 0, all_llr = 1;
            double best_fmr = 1, best_score = -1e300;
            for (size_t j = 0; st == ABIS_OK && j < n_probes; j++) {
                double sc = 0;
                int found = 0;
                for (size_t q = 0; q < pr[j].got && !found; q++)
                    if (pr[j].hits[q].slot == fc->slot) {
                        sc = pr[j].hits[q].score;
                        found = 1;
                    }
                if (!found && abis_bitset_test(&pr[j].filter, fc->slot))
                    st = subject_best_score(e, subject, seg->rec.id, pr[j].m, 0, pr[j].canon,
                                            pr[j].len, buf, cap, &sc, &found, err);
                if (st != ABIS_OK || !found)
                    continue;
                calibs[n_present] = pr[j].m->calib;
                scores[n_present++] = sc;
                double l;
                all_llr &= abis_calibration_llr(pr[j].m->calib, sc, &l) == 0;
                double f = abis_calibration_fmr(pr[j].m->calib, sc);
                if (f < best_fmr)
                    best_fmr = f;
                if (sc > best_score)
                    best_score = sc;
            }
            double llr, fused;
            abis_error ferr;
            if (st == ABIS_OK && all_llr &&
                abis_fusion_lr(calibs, scores, n_present, &llr, &fused, &ferr) == ABIS_OK) {
                fc->fmr = fused;
                fc->score = llr;
            } else {
                fc->fmr = fmin(1.0, best_fmr * (double)n_present);
                fc->score = best_score;
            }
        }
    size_t n = 0;
    if (st == ABIS_OK) {
        qsort(cands, n_c, sizeof *cands, cmp_fused);
        for (size_t i = 0; i < n_c && n < k; i++) {
            /* FPIR of this evidence over the gallery: 1 - (1 - fmr)^size. */
            double fpir = -expm1((double)gallery * log1p(-fmin(cands[i].fmr, 1.0 - 1e-16)));
            if (fpir > p->target_fmr)
                break;
            abis_candidate *cand = &out[n++];
            memset(cand, 0, sizeof *cand);
            cand->subject_id = seg->slot_ids[cands[i].slot];
            cand->score = cands[i].score;
            cand->fmr = fpir;
            cand->confidence = engine_confidence(fpir, p->target_fmr, 1);
        }
    }
    *n_out = n;
    if (buf)
        free(buf); /* every use was wiped (verify_one) */
    abis_idmap_free(&seen);
    free(cands);
    free(calibs);
    free(scores);
    return st;
}

abis_status abis_subject_identify(abis_engine *e, const abis_caller *c, const char *segment,
                                  const char *purpose, const abis_template_input *probes,
                                  size_t n_probes, size_t k, abis_candidate *out, size_t *n_out,
                                  abis_error *err)
{
    engine_state_rdlock(e);
    int locked = 1; /* `state` held for reading */
    abis_store *s = e->store;
    if (n_out)
        *n_out = 0;
    size_t pi = 0;
    abis_purpose_rec *p = engine_purpose(e, purpose, &pi);
    segstate *seg = engine_segment(e, segment);
    id_probe *pr = calloc(n_probes ? n_probes : 1, sizeof *pr);
    size_t *mods = calloc(n_probes ? n_probes : 1, sizeof *mods);
    abis_status st = ABIS_OK;
    if (!pr || !mods)
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    if (st == ABIS_OK && !seg)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "segment '%.64s' does not exist",
                            segment ? segment : "");
    if (st == ABIS_OK && !p)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "purpose '%.64s' does not exist",
                            purpose ? purpose : "");
    if (st == ABIS_OK && (!probes || n_probes == 0))
        st = abis_error_set(err, ABIS_E_INVALID, "identification needs at least one probe");
    if (st == ABIS_OK && (k == 0 || k > 1000 || !out || !n_out))
        st = abis_error_set(err, ABIS_E_INVALID, "k must be between 1 and 1000 (was %zu)", k);
    for (size_t i = 0; st == ABIS_OK && i < n_probes; i++) {
        char what[32];
        snprintf(what, sizeof what, n_probes > 1 ? "probe %zu" : "probe", i + 1);
        pr[i].m = engine_modality(e, probes[i].modality, &pr[i].mi);
        if (!pr[i].m) {
            st = abis_error_set(err, ABIS_E_INVALID, "%s: modality '%.64s' is not declared", what,
                                probes[i].modality ? probes[i].modality : "");
            break;
        }
        mods[i] = pr[i].mi;
        st = pr[i].m->kind->validate(&pr[i].m->rec, &probes[i], what, &pr[i].canon, &pr[i].len,
                                     NULL, err);
    }
    /* The galleries are built on first use, under the write lock; then the
     * search runs under the read lock, beside other searches and verifies.
     * The registry may have grown meanwhile: entries are found again by
     * index (arrays only grow). */
    engine_state_unlock(e);
    locked = 0;
    if (st == ABIS_OK && (st = engine_search_ready(e, seg, mods, n_probes, err)) == ABIS_OK) {
        locked = 1;
        p = &e->purposes[pi];
        for (size_t i = 0; i < n_probes; i++)
            pr[i].m = &e->mods[pr[i].mi];
    }
    /* A shortlist per probe: k for one probe; for several, room for mates
     * that only the fused evidence lifts above the threshold. */
    size_t shortlist = n_probes > 1 ? (k * 4 < 64 ? 64 : k * 4 > 1000 ? 1000 : k * 4) : k;
    for (size_t i = 0; st == ABIS_OK && i < n_probes; i++) {
        st = segstate_gallery(e, seg, pr[i].mi, &pr[i].g, err);
        if (st == ABIS_OK)
            st = segstate_filter(seg, p, pi, pr[i].mi, &pr[i].filter, err);
        if (st == ABIS_OK && !(pr[i].hits = malloc(shortlist * sizeof *pr[i].hits)))
            st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        abis_search_opts so = {.preselect = p->basis != ABIS_BASIS_STATUTORY &&
                                            st == ABIS_OK &&
                                            pr[i].g->ops->count(pr[i].g) >= ABIS_PRESELECT_MIN};
        if (st == ABIS_OK)
            st = abis_gallery_search(pr[i].g, pr[i].canon, pr[i].len, shortlist, &pr[i].filter,
                                     &so, pr[i].hits, &pr[i].got, err);
    }

    size_t n = 0;
    if (st == ABIS_OK && n_probes > 1) {
        st = identify_fused(e, seg, p, pr, n_probes, k, out, &n, err);
    } else if (st == ABIS_OK) {
        /* Open set: the threshold holds the purpose's target rate of false
         * positive identifications over the whole gallery (from the fitted
         * 1:N curve, or the FMR curve at about target / size). */
        modality_entry *m = pr[0].m;
        size_t size = pr[0].g->ops->count(pr[0].g);
        double threshold = abis_calibration_fpir_threshold(m->calib, p->target_fmr, size);
        for (size_t i = 0; i < pr[0].got && pr[0].hits[i].score >= threshold; i++) {
            abis_candidate *cand = &out[n++];
            memset(cand, 0, sizeof *cand);
            cand->subject_id = seg->slot_ids[pr[0].hits[i].slot];
            cand->score = pr[0].hits[i].score;
            cand->fmr = abis_calibration_fpir(m->calib, pr[0].hits[i].score, size);
            cand->confidence = engine_confidence(cand->fmr, p->target_fmr, 1);
        }
    }
    char pname[ABIS_NAME_MAX + 1] = "";
    int statutory = 0;
    if (p) {
        snprintf(pname, sizeof pname, "%s", p->name);
        statutory = p->basis == ABIS_BASIS_STATUTORY;
    }
    if (locked)
        engine_state_unlock(e);
    /* External references; a candidate deleted since the search is dropped. */
    size_t kept = 0;
    for (size_t i = 0; i < n && st == ABIS_OK; i++) {
        abis_subject_rec r;
        abis_status gs = s->ops->subject_get(s, &out[i].subject_id, &r, err);
        if (gs == ABIS_E_NOT_FOUND)
            continue;
        if ((st = gs) != ABIS_OK)
            break;
        out[kept] = out[i];
        memcpy(out[kept++].external_ref, r.external_ref, sizeof out[i].external_ref);
    }
    n = kept;
    abis_error_clear(st == ABIS_OK ? err : NULL);
    if (st == ABIS_OK) {
        /* One entry for the search, one per returned candidate, so that each
         * person sees in their history that they were identified; all in one
         * group commit. */
        char decision[32];
        snprintf(decision, sizeof decision, "%zu candidate(s)", n);
        audit_event *ev = calloc(n + 1, sizeof *ev);
        char(*hex)[ABIS_ID_HEX_LEN + 1] = calloc(n + 1, sizeof *hex);
        if (!ev || !hex) {
            st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        } else {
            ev[0] = (audit_event){.operation = "identify",
                                  .segment = seg->rec.name,
                                  .purpose = pname,
                                  .decision = decision,
                                  .detail = statutory ? "statutory" : "consent"};
            for (size_t i = 0; i < n; i++) {
                abis_id_to_hex(&out[i].subject_id, hex[i]);
                ev[i + 1] = (audit_event){.operation = "identify",
                                          .segment = seg->rec.name,
                                          .subject = hex[i],
                                          .purpose = pname,
                                          .decision = "candidate",
                                          .detail = abis_confidence_name(out[i].confidence)};
            }
            st = engine_audit_group(e, c, ev, n + 1, err);
        }
        free(ev);
        free(hex);
    }
    if (st == ABIS_OK)
        *n_out = n;
    else
        audit_refusal(e, c, "identify", seg ? seg->rec.name : NULL, NULL, purpose, err);
    for (size_t i = 0; pr && i < n_probes; i++) {
        abis_modality_free_template(pr[i].canon, pr[i].len);
        abis_bitset_free(&pr[i].filter);
        free(pr[i].hits);
    }
    free(pr);
    free(mods);
    return st;
}
