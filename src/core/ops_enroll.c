/*
 * ops_enroll.c: enrolment with deduplication, and adding or replacing a
 * template.  Order of writes (docs/SECURITY.md, "Crash safety"): the new
 * subject's wrapped data key is written to the key store first; then the
 * subject, its sealed templates, its consents and the audit entry commit in
 * one data-store transaction; only then is memory (slots, galleries) updated.
 * A crash between the two leaves at most an unused random key.
 */
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"

typedef struct prepared {
    size_t mod_index;
    modality_entry *m;
    unsigned char *tmpl;
    size_t len;
    abis_id id;
    int position;
    double quality;
} prepared;

static void prepared_free(prepared *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        abis_modality_free_template(p[i].tmpl, p[i].len);
    free(p);
}

/* Validate every input template into canonical form. */
static abis_status prepare_templates(abis_engine *e, const abis_template_input *in, size_t n,
                                     const char *noun, prepared **out, abis_error *err)
{
    prepared *p = calloc(n ? n : 1, sizeof *p);
    if (!p)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    abis_status st = ABIS_OK;
    for (size_t i = 0; i < n && st == ABIS_OK; i++) {
        char what[48];
        if (n > 1)
            snprintf(what, sizeof what, "%s %zu", noun, i + 1);
        else
            snprintf(what, sizeof what, "%s", noun);
        p[i].m = engine_modality(e, in[i].modality, &p[i].mod_index);
        if (!p[i].m) {
            st = abis_error_set(err, ABIS_E_INVALID,
                                "%s: modality '%.64s' is not declared (abis modality add)", what,
                                in[i].modality ? in[i].modality : "");
            break;
        }
        if (in[i].position < 0 || in[i].position > 10) {
            st = abis_error_set(err, ABIS_E_INVALID, "%s: position %d is out of range (0-10)", what,
                                in[i].position);
            break;
        }
        if (in[i].quality > 100) {
            st = abis_error_set(err, ABIS_E_INVALID, "%s: quality %g is above 100", what,
                                in[i].quality);
            break;
        }
        double measured = -1;
        st = p[i].m->kind->validate(&p[i].m->rec, &in[i], what, &p[i].tmpl, &p[i].len, &measured,
                                    err);
        p[i].position = in[i].position;
        /* A quality the caller states wins; else what the kind measured. */
        p[i].quality = in[i].quality >= 0 ? in[i].quality : measured;
        abis_random_bytes(p[i].id.bytes, ABIS_ID_BYTES);
    }
    if (st != ABIS_OK) {
        prepared_free(p, n);
        return st;
    }
    *out = p;
    return ABIS_OK;
}

/* Deduplication: the best match of any template among the segment's other
 * subjects, if it reaches the dedup threshold at the current gallery size.
 * The caller holds `state` for reading with the galleries built
 * (engine_search_ready). */
static abis_status dedup_search(abis_engine *e, segstate *s, const prepared *p, size_t n,
                                int64_t exclude_slot, int *found, abis_id *who, double *score,
                                abis_error *err)
{
    *found = 0;
    *score = -1e300;
    abis_bitset filter = {0};
    abis_status st = ABIS_OK;
    for (size_t i = 0; i < n && st == ABIS_OK; i++) {
        abis_gallery *g;
        st = segstate_gallery(e, s, p[i].mod_index, &g, err);
        if (st != ABIS_OK)
            break;
        size_t size = g->ops->count(g);
        if (size == 0)
            continue;
        if (abis_bitset_copy(&filter, &s->live) != 0) {
            st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
            break;
        }
        if (exclude_slot >= 0)
            abis_bitset_clear(&filter, (size_t)exclude_slot);
        abis_hit hit;
        size_t got = 0;
        st = g->ops->search(g, p[i].tmpl, p[i].len, 1, &filter, &hit, &got, err);
        if (st != ABIS_OK || got == 0)
            continue;
        double threshold = abis_calibration_fpir_threshold(p[i].m->calib, e->dedup_fmr, size);
        if (hit.score >= threshold && hit.score > *score) {
            *found = 1;
            *score = hit.score;
            *who = s->slot_ids[hit.slot];
        }
    }
    abis_bitset_free(&filter);
    return st;
}

/* Seal and insert prepared templates for a subject (inside a transaction). */
static abis_status insert_templates(abis_engine *e, const abis_id *subject, const abis_key *dk,
                                    const prepared *p, size_t n, int64_t now, abis_error *err)
{
    abis_store *s = e->store;
    abis_status st = ABIS_OK;
    for (size_t i = 0; i < n && st == ABIS_OK; i++) {
        size_t sealed_len = p[i].len + ABIS_SEAL_OVERHEAD;
        unsigned char *sealed = malloc(sealed_len);
        if (!sealed)
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        unsigned char ad[32];
        engine_template_ad(subject, &p[i].id, ad);
        abis_seal(dk, p[i].tmpl, p[i].len, ad, sizeof ad, sealed);
        abis_template_rec r;
        memset(&r, 0, sizeof r);
        r.id = p[i].id;
        r.subject_id = *subject;
        r.modality_id = p[i].m->rec.id;
        r.position = p[i].position;
        snprintf(r.format, sizeof r.format, "%s", p[i].m->kind->format);
        r.quality = p[i].quality;
        r.created_at = now;
        r.sealed = sealed;
        r.sealed_len = sealed_len;
        st = s->ops->template_insert(s, &r, err);
        free(sealed);
    }
    return st;
}

/* Validate an external reference: printable, no control characters. */
static abis_status check_ref(const char *ref, abis_error *err)
{
    size_t n = strlen(ref);
    if (n == 0 || n > ABIS_REF_MAX)
        return abis_error_set(err, ABIS_E_INVALID, "external reference must be 1 to %d bytes",
                              ABIS_REF_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ref[i] < 0x20 || ref[i] == 0x7f)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "external reference holds a control character at byte %zu",
                                  i + 1);
    return ABIS_OK;
}

/* What one enrolment writes, in its transaction. */
typedef struct enrol_write {
    const abis_id *id;
    const segstate *seg;
    const abis_enroll_request *req;
    const abis_key *dk;
    const prepared *p;
    size_t n;
    const size_t *purpose_idx;
    const abis_caller *c;
    int64_t now;
    const engine_idem *idem;
} enrol_write;

/* The subject, its sealed templates and its consents. */
static abis_status write_enrolment(abis_engine *e, void *arg, abis_error *err)
{
    const enrol_write *w = arg;
    abis_store *s = e->store;
    abis_subject_rec r;
    memset(&r, 0, sizeof r);
    r.id = *w->id;
    r.segment_id = w->seg->rec.id;
    snprintf(r.external_ref, sizeof r.external_ref, "%s",
             w->req->external_ref ? w->req->external_ref : "");
    r.created_at = w->now;
    abis_status st = s->ops->subject_insert(s, &r, err);
    if (st == ABIS_E_EXISTS)
        return abis_error_set(err, ABIS_E_EXISTS,
                              "the external reference is already used in segment '%s'",
                              w->seg->rec.name);
    if (st == ABIS_OK)
        st = insert_templates(e, w->id, w->dk, w->p, w->n, w->now, err);
    for (size_t i = 0; st == ABIS_OK && i < w->req->n_consents; i++) {
        abis_consent_rec cr;
        memset(&cr, 0, sizeof cr);
        cr.subject_id = *w->id;
        cr.purpose_id = e->purposes[w->purpose_idx[i]].id;
        cr.granted = 1;
        cr.at = w->now;
        snprintf(cr.channel, sizeof cr.channel, "%s",
                 w->c && w->c->channel ? w->c->channel : "enrolment");
        st = s->ops->consent_put(s, &cr, err);
    }
    if (st == ABIS_OK)
        st = engine_idem_remember(e, w->idem, w->id, NULL, err);
    return st;
}

abis_status abis_subject_enroll(abis_engine *e, const abis_caller *c,
                                const abis_enroll_request *req, abis_enroll_result *res,
                                abis_error *err)
{
    return engine_enroll(e, c, NULL, req, res, err);
}

/* The modality indices of prepared templates, for engine_search_ready. */
static size_t *mod_indices(const prepared *p, size_t n)
{
    size_t *m = calloc(n ? n : 1, sizeof *m);
    for (size_t i = 0; m && i < n; i++)
        m[i] = p[i].mod_index;
    return m;
}

/* Deduplicate prepared templates against the segment: build its galleries
 * if needed, then search them under the read lock, beside other searches. */
static abis_status dedup_locked(abis_engine *e, segstate *s, const prepared *p, size_t n,
                                const abis_id *exclude, int *found, abis_id *who, double *score,
                                abis_error *err)
{
    size_t *mods = mod_indices(p, n);
    if (!mods)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    abis_status st = engine_search_ready(e, s, mods, n, err);
    free(mods);
    if (st != ABIS_OK)
        return st;
    st = dedup_search(e, s, p, n, exclude ? segstate_slot(s, exclude) : -1, found, who, score, err);
    engine_state_unlock(e);
    return st;
}

abis_status engine_enroll(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                          const abis_enroll_request *req, abis_enroll_result *res, abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    abis_store *s = e->store;
    abis_enroll_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    prepared *p = NULL;
    size_t n = req ? req->n_templates : 0;
    size_t *purpose_idx = NULL;
    segstate *seg = req ? engine_segment(e, req->segment) : NULL;
    const char *segname = seg ? seg->rec.name : NULL;
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK && !req)
        st = abis_error_set(err, ABIS_E_INVALID, "no enrolment request given");
    if (st == ABIS_OK && !seg)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "segment '%.64s' does not exist",
                            req->segment ? req->segment : "");
    if (st == ABIS_OK && n == 0)
        st = abis_error_set(err, ABIS_E_INVALID, "an enrolment needs at least one template");
    if (st == ABIS_OK && req->external_ref && *req->external_ref)
        st = check_ref(req->external_ref, err);
    if (st == ABIS_OK)
        st = prepare_templates(e, req->templates, n, "template", &p, err);
    if (st == ABIS_OK && req->n_consents) {
        purpose_idx = calloc(req->n_consents, sizeof *purpose_idx);
        if (!purpose_idx)
            st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        for (size_t i = 0; st == ABIS_OK && i < req->n_consents; i++)
            if (!engine_purpose(e, req->consents[i], &purpose_idx[i]))
                st = abis_error_set(err, ABIS_E_NOT_FOUND, "consent to unknown purpose '%.64s'",
                                    req->consents[i] ? req->consents[i] : "");
    }
    if (st == ABIS_OK && req->external_ref && *req->external_ref) {
        abis_subject_rec existing;
        abis_status fs =
            s->ops->subject_find_ref(s, seg->rec.id, req->external_ref, &existing, NULL);
        if (fs == ABIS_OK)
            st = abis_error_set(err, ABIS_E_EXISTS,
                                "the external reference is already used in segment '%s'",
                                seg->rec.name);
    }

    /* One person, one record: search the new templates against the segment. */
    if (st == ABIS_OK)
        st = dedup_locked(e, seg, p, n, NULL, &res->duplicate, &res->duplicate_of,
                          &res->duplicate_score, err);
    char dup_hex[ABIS_ID_HEX_LEN + 1] = "";
    if (st == ABIS_OK && res->duplicate) {
        abis_id_to_hex(&res->duplicate_of, dup_hex);
        if (!req->force) {
            st = abis_error_set(err, ABIS_E_DUPLICATE,
                                "this person is already enrolled in segment '%s' as subject %s "
                                "(use force to enrol anyway)",
                                seg->rec.name, dup_hex);
            /* Audited against the existing subject: their biometrics were presented. */
            audit_refusal(e, c, "enroll", segname, &res->duplicate_of, NULL, err);
            goto done;
        }
    }

    abis_id id;
    abis_key dk = {{0}};
    int key_written = 0;
    if (st == ABIS_OK) {
        abis_random_bytes(id.bytes, ABIS_ID_BYTES);
        abis_key_random(&dk);
        unsigned char wrapped[ABIS_WRAPPED_KEY_BYTES];
        abis_key sk;
        engine_segment_key(e, seg->rec.id, &sk);
        abis_seal(&sk, dk.bytes, ABIS_KEY_BYTES, id.bytes, ABIS_ID_BYTES, wrapped);
        abis_key_wipe(&sk);
        st = s->ops->key_put(s, &id, wrapped, sizeof wrapped, err);
        key_written = st == ABIS_OK;
    }
    if (st == ABIS_OK) {
        enrol_write w = {&id, seg, req, &dk, p, n, purpose_idx, c, abis_now_ms(), idem};
        char hex[ABIS_ID_HEX_LEN + 1], detail[160];
        abis_id_to_hex(&id, hex);
        snprintf(detail, sizeof detail, "%zu template(s), %zu consent(s)%s%s", n, req->n_consents,
                 res->duplicate ? ", forced despite a match with subject " : "", dup_hex);
        audit_event ev = {.operation = "enroll",
                          .segment = segname,
                          .subject = hex,
                          .decision = res->duplicate ? "forced" : NULL,
                          .detail = detail};
        st = engine_write_audited(e, c, write_enrolment, &w, &ev, err);
    }
    abis_key_wipe(&dk);
    if (st != ABIS_OK && key_written) {
        abis_error ignored;
        s->ops->key_delete(s, &id, &ignored);
    }
    if (st == ABIS_OK) {
        res->subject_id = id;
        /* Committed: bring memory in step (a failure here only means the
         * segment is reloaded from the store next time). */
        abis_error mem_err;
        uint32_t slot;
        engine_state_wrlock(e);
        if (seg->loaded && segstate_add_subject(seg, &id, &slot, &mem_err) == ABIS_OK) {
            for (size_t i = 0; i < req->n_consents; i++)
                segstate_set_consent(seg, purpose_idx[i], slot, 1, &mem_err);
            for (size_t i = 0; i < n; i++) {
                abis_gallery *g =
                    p[i].mod_index < seg->n_modality_sets ? seg->gallery[p[i].mod_index] : NULL;
                if (g && g->ops->add(g, &p[i].id, slot, p[i].tmpl, p[i].len, &mem_err) != ABIS_OK)
                    segstate_free(seg);
            }
        } else if (seg->loaded) {
            segstate_free(seg);
        }
        engine_state_unlock(e);
    } else {
        audit_refusal(e, c, "enroll", segname, NULL, NULL, err);
    }
done:
    prepared_free(p, n);
    free(purpose_idx);
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

typedef struct replace_ctx {
    int64_t modality_id;
    int position;
    abis_id *ids;
    size_t n, cap;
} replace_ctx;

static int collect_replaced(const abis_template_rec *r, void *ctx)
{
    replace_ctx *rc = ctx;
    if (r->modality_id != rc->modality_id || r->position != rc->position)
        return 0;
    if (rc->n == rc->cap) {
        size_t ncap = rc->cap ? rc->cap * 2 : 4;
        abis_id *n = realloc(rc->ids, ncap * sizeof *n);
        if (!n)
            return 1;
        rc->ids = n;
        rc->cap = ncap;
    }
    rc->ids[rc->n++] = r->id;
    return 0;
}

/* What adding (or replacing) a template writes, in its transaction. */
typedef struct template_write {
    const abis_id *subject;
    const abis_key *dk;
    const prepared *p;
    const replace_ctx *replaced;
    const engine_idem *idem;
} template_write;

static abis_status write_template(abis_engine *e, void *arg, abis_error *err)
{
    const template_write *w = arg;
    abis_status st = ABIS_OK;
    for (size_t i = 0; i < w->replaced->n && st == ABIS_OK; i++)
        st = e->store->ops->template_delete(e->store, &w->replaced->ids[i], err);
    if (st == ABIS_OK)
        st = insert_templates(e, w->subject, w->dk, w->p, 1, abis_now_ms(), err);
    if (st == ABIS_OK)
        st = engine_idem_remember(e, w->idem, w->subject, &w->p[0].id, err);
    return st;
}

abis_status abis_template_add(abis_engine *e, const abis_caller *c, const abis_id *subject,
                              const abis_template_input *tmpl, int replace, int force,
                              abis_id *template_id, abis_error *err)
{
    return engine_template_add(e, c, NULL, subject, tmpl, replace, force, template_id, err);
}

abis_status engine_template_add(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                                const abis_id *subject, const abis_template_input *tmpl,
                                int replace, int force, abis_id *template_id, abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    abis_store *s = e->store;
    prepared *p = NULL;
    replace_ctx rc = {0};
    abis_subject_rec subj;
    segstate *seg = NULL;
    const char *op = replace ? "template.replace" : "template.add";
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK)
        st = engine_find_subject(e, subject, &subj, &seg, err);
    if (st == ABIS_OK)
        st = prepare_templates(e, tmpl, 1, "template", &p, err);
    int dup = 0;
    abis_id dup_of;
    double dup_score;
    if (st == ABIS_OK)
        st = dedup_locked(e, seg, p, 1, subject, &dup, &dup_of, &dup_score, err);
    if (st == ABIS_OK && dup && !force) {
        char hex[ABIS_ID_HEX_LEN + 1];
        abis_id_to_hex(&dup_of, hex);
        st = abis_error_set(err, ABIS_E_DUPLICATE,
                            "this template matches another subject, %s, in segment '%s' (use "
                            "force to add it anyway)",
                            hex, seg->rec.name);
    }
    if (st == ABIS_OK && replace) {
        rc.modality_id = p[0].m->rec.id;
        rc.position = p[0].position;
        st = s->ops->template_scan_subject(s, subject, collect_replaced, &rc, err);
    }
    abis_key dk = {{0}};
    if (st == ABIS_OK)
        st = engine_subject_key(e, subject, subj.segment_id, &dk, err);
    if (st == ABIS_OK) {
        template_write w = {subject, &dk, p, &rc, idem};
        char hex[ABIS_ID_HEX_LEN + 1], detail[192];
        abis_id_to_hex(subject, hex);
        snprintf(detail, sizeof detail, "modality %s, %zu replaced%s", p[0].m->rec.name, rc.n,
                 dup ? ", forced despite a match with another subject" : "");
        audit_event ev = {
            .operation = op, .segment = seg->rec.name, .subject = hex, .detail = detail};
        st = engine_write_audited(e, c, write_template, &w, &ev, err);
    }
    abis_key_wipe(&dk);
    if (st == ABIS_OK) {
        if (template_id)
            *template_id = p[0].id;
        if (rc.n)
            segstate_forget_snapshots(e, seg);
        engine_state_wrlock(e);
        abis_gallery *g = seg->loaded && p[0].mod_index < seg->n_modality_sets
                              ? seg->gallery[p[0].mod_index]
                              : NULL;
        if (g) {
            abis_error mem_err;
            for (size_t i = 0; i < rc.n; i++)
                g->ops->remove(g, &rc.ids[i]);
            int64_t slot = segstate_slot(seg, subject);
            if (slot < 0 ||
                g->ops->add(g, &p[0].id, (uint32_t)slot, p[0].tmpl, p[0].len, &mem_err) != ABIS_OK)
                segstate_free(seg);
        }
        engine_state_unlock(e);
    } else {
        audit_refusal(e, c, op, seg ? seg->rec.name : NULL, subject, NULL, err);
    }
    free(rc.ids);
    prepared_free(p, 1);
    pthread_mutex_unlock(&e->write_mu);
    return st;
}
