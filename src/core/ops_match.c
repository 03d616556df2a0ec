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
    const abis_id *subject;
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
    if (v->st != ABIS_OK)
        return 1;
    double score = v->m->kind->compare(&v->m->rec, v->probe, v->probe_len, v->buf, len);
    if (!v->compared || score > v->best)
        v->best = score;
    v->compared = 1;
    return 0;
}

abis_status abis_subject_verify(abis_engine *e, const abis_caller *c, const abis_id *subject,
                                const char *purpose, const abis_template_input *probes,
                                size_t n_probes, abis_verify_result *res, abis_error *err)
{
    pthread_mutex_lock(&e->mu);
    abis_store *s = e->store;
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
                                         err);
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
    unsigned char *buf = st == ABIS_OK ? malloc(1 << 20) : NULL;
    if (st == ABIS_OK && !buf)
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    for (size_t i = 0; st == ABIS_OK && i < n_probes; i++) {
        verify_ctx v = {e,
                        subject,
                        subj.segment_id,
                        mods[i],
                        probes[i].position,
                        canon[i],
                        canon_len[i],
                        buf,
                        1 << 20,
                        0,
                        0,
                        err,
                        ABIS_OK};
        st = s->ops->template_scan_subject(s, subject, verify_one, &v, err);
        if (st == ABIS_OK)
            st = v.st;
        if (st == ABIS_OK && !v.compared)
            st = abis_error_set(err, ABIS_E_NOT_FOUND, "the subject has no '%s' template%s",
                                mods[i]->rec.name, probes[i].position ? " at that position" : "");
        if (st != ABIS_OK)
            break;
        scores[i] = v.best;
        calibs[i] = mods[i]->calib;
        double fmr = abis_calibration_fmr(mods[i]->calib, v.best);
        if (i == 0 || fmr < best_fmr) {
            best_fmr = fmr;
            best_i = i;
            res->score = v.best;
        }
    }
    if (buf)
        abis_modality_free_template(buf, 1 << 20);
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
        char hex[ABIS_ID_HEX_LEN + 1];
        abis_id_to_hex(subject, hex);
        audit_event ev = {.operation = "verify",
                          .segment = seg ? seg->rec.name : NULL,
                          .subject = hex,
                          .purpose = p->name,
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
    pthread_mutex_unlock(&e->mu);
    return st;
}

abis_status abis_subject_identify(abis_engine *e, const abis_caller *c, const char *segment,
                                  const char *purpose, const abis_template_input *probe, size_t k,
                                  abis_candidate *out, size_t *n_out, abis_error *err)
{
    pthread_mutex_lock(&e->mu);
    abis_store *s = e->store;
    if (n_out)
        *n_out = 0;
    size_t pi = 0, mi = 0;
    abis_purpose_rec *p = engine_purpose(e, purpose, &pi);
    segstate *seg = engine_segment(e, segment);
    modality_entry *m = probe ? engine_modality(e, probe->modality, &mi) : NULL;
    unsigned char *canon = NULL;
    size_t canon_len = 0;
    abis_hit *hits = NULL;
    abis_bitset filter = {0};
    abis_status st = ABIS_OK;
    if (!seg)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "segment '%.64s' does not exist",
                            segment ? segment : "");
    if (st == ABIS_OK && !p)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "purpose '%.64s' does not exist",
                            purpose ? purpose : "");
    if (st == ABIS_OK && !probe)
        st = abis_error_set(err, ABIS_E_INVALID, "identification needs a probe");
    if (st == ABIS_OK && !m)
        st = abis_error_set(err, ABIS_E_INVALID, "probe: modality '%.64s' is not declared",
                            probe->modality ? probe->modality : "");
    if (st == ABIS_OK && (k == 0 || k > 1000 || !out || !n_out))
        st = abis_error_set(err, ABIS_E_INVALID, "k must be between 1 and 1000 (was %zu)", k);
    if (st == ABIS_OK)
        st = m->kind->validate(&m->rec, probe, "probe", &canon, &canon_len, err);
    abis_gallery *g = NULL;
    if (st == ABIS_OK)
        st = segstate_gallery(e, seg, mi, &g, err);
    if (st == ABIS_OK)
        st = segstate_filter(seg, p, pi, mi, &filter, err);
    if (st == ABIS_OK && !(hits = malloc(k * sizeof *hits)))
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    size_t got = 0;
    if (st == ABIS_OK)
        st = g->ops->search(g, canon, canon_len, k, &filter, hits, &got, err);

    size_t n = 0;
    if (st == ABIS_OK) {
        /* Open set: the threshold holds the purpose's target rate of false
         * positive identifications over the whole gallery (from the fitted
         * 1:N curve, or the FMR curve at about target / size). */
        size_t size = g->ops->count(g);
        double threshold = abis_calibration_fpir_threshold(m->calib, p->target_fmr, size);
        for (size_t i = 0; i < got && st == ABIS_OK; i++) {
            if (hits[i].score < threshold)
                break;
            abis_candidate *cand = &out[n];
            memset(cand, 0, sizeof *cand);
            cand->subject_id = seg->slot_ids[hits[i].slot];
            cand->score = hits[i].score;
            cand->fmr = abis_calibration_fpir(m->calib, hits[i].score, size);
            cand->confidence = engine_confidence(cand->fmr, p->target_fmr, 1);
            abis_subject_rec r;
            st = s->ops->subject_get(s, &cand->subject_id, &r, err);
            if (st == ABIS_OK)
                memcpy(cand->external_ref, r.external_ref, sizeof cand->external_ref);
            n++;
        }
    }
    if (st == ABIS_OK) {
        /* One entry for the search, one per returned candidate, so that each
         * person sees in their history that they were identified. */
        char decision[32];
        snprintf(decision, sizeof decision, "%zu candidate(s)", n);
        st = s->ops->begin(s, err);
        if (st == ABIS_OK) {
            audit_event ev = {.operation = "identify",
                              .segment = seg->rec.name,
                              .purpose = p->name,
                              .decision = decision,
                              .detail = p->basis == ABIS_BASIS_STATUTORY ? "statutory" : "consent"};
            st = audit_in_txn(e, c, &ev, err);
            for (size_t i = 0; i < n && st == ABIS_OK; i++) {
                char hex[ABIS_ID_HEX_LEN + 1];
                abis_id_to_hex(&out[i].subject_id, hex);
                audit_event cev = {.operation = "identify",
                                   .segment = seg->rec.name,
                                   .subject = hex,
                                   .purpose = p->name,
                                   .decision = "candidate",
                                   .detail = abis_confidence_name(out[i].confidence)};
                st = audit_in_txn(e, c, &cev, err);
            }
            if (st == ABIS_OK)
                st = s->ops->commit(s, err);
            if (st != ABIS_OK)
                s->ops->rollback(s);
        }
    }
    if (st == ABIS_OK)
        *n_out = n;
    else
        audit_refusal(e, c, "identify", seg ? seg->rec.name : NULL, NULL, purpose, err);
    abis_modality_free_template(canon, canon_len);
    abis_bitset_free(&filter);
    free(hits);
    pthread_mutex_unlock(&e->mu);
    return st;
}
