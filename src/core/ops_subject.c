/*
 * ops_subject.c: what a person (through an operator) does with their record:
 * grant and withdraw consent, lock and unlock, delete, and see what is held
 * and who used it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"

typedef struct consent_arg {
    abis_consent_rec rec;
    const engine_idem *idem;
} consent_arg;

static abis_status put_consent(abis_engine *e, void *arg, abis_error *err)
{
    consent_arg *a = arg;
    abis_status st = e->store->ops->consent_put(e->store, &a->rec, err);
    if (st == ABIS_OK)
        st = engine_idem_remember(e, a->idem, &a->rec.subject_id, NULL, err);
    return st;
}

abis_status engine_consent_set(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                               const abis_id *subject, const char *purpose, int granted,
                               abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    const char *op = granted ? "consent.grant" : "consent.withdraw";
    abis_subject_rec subj;
    segstate *seg = NULL;
    size_t pi;
    abis_purpose_rec *p = engine_purpose(e, purpose, &pi);
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK)
        st = engine_find_subject(e, subject, &subj, &seg, err);
    if (st == ABIS_OK && !p)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "purpose '%.64s' does not exist",
                            purpose ? purpose : "");
    if (st == ABIS_OK && p->basis == ABIS_BASIS_STATUTORY)
        st = abis_error_set(err, ABIS_E_INVALID,
                            "purpose '%s' is statutory (%s): it does not rest on consent, so "
                            "consent cannot be %s for it",
                            p->name, p->legal_ref, granted ? "granted" : "withdrawn");
    if (st == ABIS_OK) {
        consent_arg a;
        memset(&a, 0, sizeof a);
        abis_consent_rec *cr = &a.rec;
        a.idem = idem;
        cr->subject_id = *subject;
        cr->purpose_id = p->id;
        cr->granted = granted;
        cr->at = abis_now_ms();
        snprintf(cr->channel, sizeof cr->channel, "%s", c && c->channel ? c->channel : "operator");
        char hex[ABIS_ID_HEX_LEN + 1];
        abis_id_to_hex(subject, hex);
        audit_event ev = {.operation = op,
                          .segment = seg->rec.name,
                          .subject = hex,
                          .purpose = p->name,
                          .detail = cr->channel};
        st = engine_write_audited(e, c, put_consent, &a, &ev, err);
    }
    if (st == ABIS_OK) {
        engine_state_wrlock(e);
        int64_t slot = seg->loaded ? segstate_slot(seg, subject) : -1;
        abis_error mem_err;
        if (slot >= 0 &&
            segstate_set_consent(seg, pi, (uint32_t)slot, granted, &mem_err) != ABIS_OK)
            segstate_free(seg);
        engine_state_unlock(e);
    } else {
        audit_refusal(e, c, op, seg ? seg->rec.name : NULL, seg ? subject : NULL, purpose, err);
    }
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

abis_status abis_consent_grant(abis_engine *e, const abis_caller *c, const abis_id *subject,
                               const char *purpose, abis_error *err)
{
    return engine_consent_set(e, c, NULL, subject, purpose, 1, err);
}

abis_status abis_consent_withdraw(abis_engine *e, const abis_caller *c, const abis_id *subject,
                                  const char *purpose, abis_error *err)
{
    return engine_consent_set(e, c, NULL, subject, purpose, 0, err);
}

typedef struct lock_arg {
    abis_lock_rec rec;
    int lock;
    const engine_idem *idem;
} lock_arg;

static abis_status write_lock(abis_engine *e, void *arg, abis_error *err)
{
    lock_arg *l = arg;
    abis_status st;
    if (l->lock) {
        st = e->store->ops->lock_put(e->store, &l->rec, err);
    } else {
        st = e->store->ops->lock_delete(e->store, &l->rec.subject_id, l->rec.modality_id, err);
        if (st == ABIS_E_NOT_FOUND)
            st = abis_error_set(err, ABIS_E_NOT_FOUND, "the subject has no such lock to remove");
    }
    if (st == ABIS_OK)
        st = engine_idem_remember(e, l->idem, &l->rec.subject_id, NULL, err);
    return st;
}

abis_status engine_lock_set(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                            const abis_id *subject, const char *modality, int lock, abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    const char *op = lock ? "lock" : "unlock";
    int all = !modality || !*modality || strcmp(modality, "*") == 0;
    size_t mi = 0;
    modality_entry *m = all ? NULL : engine_modality(e, modality, &mi);
    abis_subject_rec subj;
    segstate *seg = NULL;
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK)
        st = engine_find_subject(e, subject, &subj, &seg, err);
    if (st == ABIS_OK && !all && !m)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "modality '%.64s' does not exist", modality);
    if (st == ABIS_OK) {
        lock_arg l;
        memset(&l, 0, sizeof l);
        l.rec.subject_id = *subject;
        l.rec.modality_id = all ? 0 : m->rec.id;
        l.rec.at = abis_now_ms();
        l.lock = lock;
        l.idem = idem;
        char hex[ABIS_ID_HEX_LEN + 1];
        abis_id_to_hex(subject, hex);
        audit_event ev = {.operation = op,
                          .segment = seg->rec.name,
                          .subject = hex,
                          .detail = all ? "*" : m->rec.name};
        st = engine_write_audited(e, c, write_lock, &l, &ev, err);
    }
    if (st == ABIS_OK) {
        engine_state_wrlock(e);
        int64_t slot = seg->loaded ? segstate_slot(seg, subject) : -1;
        abis_error mem_err;
        if (slot >= 0 && segstate_set_lock(seg, mi, all, (uint32_t)slot, lock, &mem_err) != ABIS_OK)
            segstate_free(seg);
        engine_state_unlock(e);
    } else {
        audit_refusal(e, c, op, seg ? seg->rec.name : NULL, seg ? subject : NULL, NULL, err);
    }
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

abis_status abis_subject_lock(abis_engine *e, const abis_caller *c, const abis_id *subject,
                              const char *modality, abis_error *err)
{
    return engine_lock_set(e, c, NULL, subject, modality, 1, err);
}

abis_status abis_subject_unlock(abis_engine *e, const abis_caller *c, const abis_id *subject,
                                const char *modality, abis_error *err)
{
    return engine_lock_set(e, c, NULL, subject, modality, 0, err);
}

typedef struct delete_arg {
    const abis_id *subject;
    const engine_idem *idem;
} delete_arg;

static abis_status write_delete(abis_engine *e, void *arg, abis_error *err)
{
    delete_arg *a = arg;
    abis_status st = e->store->ops->subject_delete(e->store, a->subject, err);
    if (st == ABIS_OK)
        st = engine_idem_remember(e, a->idem, a->subject, NULL, err);
    return st;
}

abis_status abis_subject_delete(abis_engine *e, const abis_caller *c, const abis_id *subject,
                                abis_error *err)
{
    return engine_delete(e, c, NULL, subject, err);
}

abis_status engine_delete(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                          const abis_id *subject, abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    abis_store *s = e->store;
    abis_subject_rec subj;
    segstate *seg = NULL;
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK)
        st = engine_find_subject(e, subject, &subj, &seg, err);
    char hex[ABIS_ID_HEX_LEN + 1] = "";
    if (st == ABIS_OK) {
        abis_id_to_hex(subject, hex);
        /* Mark the deletion in the key store first, so that a crash after the
         * data commit still ends with the key destroyed at the next open. */
        st = s->ops->keymeta_set(s, "pending_delete", hex, err);
    }
    if (st == ABIS_OK) {
        audit_event ev = {.operation = "delete", .segment = seg->rec.name, .subject = hex};
        delete_arg a = {subject, idem};
        st = engine_write_audited(e, c, write_delete, &a, &ev, err);
        if (st != ABIS_OK) {
            abis_error ignored;
            s->ops->keymeta_set(s, "pending_delete", "", &ignored);
        }
    }
    if (st == ABIS_OK) {
        /* Committed: forget in memory first (searches must stop finding the
         * subject), then destroy the key and overwrite freed pages. */
        engine_state_wrlock(e);
        if (seg->loaded)
            segstate_remove_subject(seg, subject);
        engine_state_unlock(e);
        segstate_forget_snapshots(e, seg);
        st = s->ops->key_delete(s, subject, err);
        if (st == ABIS_E_NOT_FOUND)
            st = ABIS_OK;
        if (st == ABIS_OK)
            st = s->ops->keymeta_set(s, "pending_delete", "", err);
        if (st == ABIS_OK)
            st = s->ops->compact(s, err);
        if (st != ABIS_OK)
            abis_error_prefix(err, "subject deleted, but finishing the deletion failed (it is "
                                   "completed at the next open)");
    } else {
        audit_refusal(e, c, "delete", seg ? seg->rec.name : NULL, seg ? subject : NULL, NULL, err);
    }
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

abis_status engine_finish_pending_delete(abis_engine *e, abis_error *err)
{
    abis_store *s = e->store;
    char hex[ABIS_ID_HEX_LEN + 8];
    abis_status st = s->ops->keymeta_get(s, "pending_delete", hex, sizeof hex, err);
    if (st == ABIS_E_NOT_FOUND || (st == ABIS_OK && !*hex))
        return ABIS_OK;
    if (st != ABIS_OK)
        return st;
    abis_id id;
    abis_subject_rec r;
    if (abis_id_from_hex(hex, &id, NULL) == ABIS_OK &&
        s->ops->subject_get(s, &id, &r, NULL) == ABIS_E_NOT_FOUND) {
        st = s->ops->key_delete(s, &id, err);
        if (st == ABIS_E_NOT_FOUND)
            st = ABIS_OK;
        if (st == ABIS_OK)
            st = s->ops->compact(s, err);
    }
    if (st == ABIS_OK)
        st = s->ops->keymeta_set(s, "pending_delete", "", err);
    return st;
}

abis_status abis_subject_find_ref(abis_engine *e, const char *segment, const char *external_ref,
                                  abis_id *subject, abis_error *err)
{
    engine_state_rdlock(e);
    segstate *seg = engine_segment(e, segment);
    abis_subject_rec r;
    abis_status st = ABIS_OK;
    if (!seg)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "segment '%.64s' does not exist",
                            segment ? segment : "");
    if (st == ABIS_OK && !(external_ref && *external_ref))
        st = abis_error_set(err, ABIS_E_INVALID, "no external reference given");
    if (st == ABIS_OK) {
        st = e->store->ops->subject_find_ref(e->store, seg->rec.id, external_ref, &r, err);
        if (st == ABIS_E_NOT_FOUND)
            st = abis_error_set(err, ABIS_E_NOT_FOUND,
                                "no subject with that external reference in segment '%s'",
                                seg->rec.name);
    }
    if (st == ABIS_OK)
        *subject = r.id;
    engine_state_unlock(e);
    return st;
}

/* ---- the subject view ---------------------------------------------------- */

typedef struct view_ctx {
    abis_engine *e;
    abis_subject_view *v;
    int oom;
} view_ctx;

/* Grow one of the view's arrays by one element; NULL when out of memory. */
static void *grow(void **arr, size_t *n, size_t size)
{
    void *p = realloc(*arr, (*n + 1) * size);
    if (!p)
        return NULL;
    *arr = p;
    memset((char *)p + *n * size, 0, size);
    return (char *)p + (*n)++ * size;
}

static int view_template(const abis_template_rec *r, void *ctx)
{
    view_ctx *vc = ctx;
    abis_template_info *t = grow((void **)&vc->v->templates, &vc->v->n_templates, sizeof *t);
    if (!t)
        return vc->oom = 1;
    modality_entry *m = engine_modality_by_id(vc->e, r->modality_id, NULL);
    t->template_id = r->id;
    snprintf(t->modality, sizeof t->modality, "%s", m ? m->rec.name : "?");
    t->position = r->position;
    snprintf(t->format, sizeof t->format, "%s", r->format);
    t->quality = r->quality;
    t->created_at = r->created_at;
    return 0;
}

static int view_consent(const abis_consent_rec *r, void *ctx)
{
    view_ctx *vc = ctx;
    abis_consent_info *ci = grow((void **)&vc->v->consents, &vc->v->n_consents, sizeof *ci);
    if (!ci)
        return vc->oom = 1;
    abis_purpose_rec *p = engine_purpose_by_id(vc->e, r->purpose_id, NULL);
    snprintf(ci->purpose, sizeof ci->purpose, "%s", p ? p->name : "?");
    ci->granted = r->granted;
    ci->at = r->at;
    snprintf(ci->channel, sizeof ci->channel, "%s", r->channel);
    return 0;
}

static int view_lock(const abis_lock_rec *r, void *ctx)
{
    view_ctx *vc = ctx;
    abis_lock_info *li = grow((void **)&vc->v->locks, &vc->v->n_locks, sizeof *li);
    if (!li)
        return vc->oom = 1;
    modality_entry *m = r->modality_id ? engine_modality_by_id(vc->e, r->modality_id, NULL) : NULL;
    snprintf(li->modality, sizeof li->modality, "%s",
             r->modality_id == 0 ? "*"
             : m                 ? m->rec.name
                                 : "?");
    li->at = r->at;
    return 0;
}

static int view_history(const abis_audit_rec *r, void *ctx)
{
    view_ctx *vc = ctx;
    abis_history_info *h = grow((void **)&vc->v->history, &vc->v->n_history, sizeof *h);
    if (!h)
        return vc->oom = 1;
    h->at = r->at;
    snprintf(h->actor, sizeof h->actor, "%s", r->actor);
    snprintf(h->operation, sizeof h->operation, "%s", r->operation);
    snprintf(h->purpose, sizeof h->purpose, "%s", r->purpose);
    abis_purpose_rec *p = r->purpose[0] ? engine_purpose(vc->e, r->purpose, NULL) : NULL;
    snprintf(h->basis, sizeof h->basis, "%s",
             !p                                 ? ""
             : p->basis == ABIS_BASIS_STATUTORY ? "statutory"
                                                : "consent");
    snprintf(h->outcome, sizeof h->outcome, "%s", r->outcome);
    snprintf(h->decision, sizeof h->decision, "%s", r->decision);
    return 0;
}

void abis_subject_view_free(abis_subject_view *v)
{
    if (!v)
        return;
    free(v->templates);
    free(v->consents);
    free(v->locks);
    free(v->history);
    free(v);
}

abis_status abis_subject_show(abis_engine *e, const abis_caller *c, const abis_id *subject,
                              abis_subject_view **out, abis_error *err)
{
    abis_store *s = e->store;
    *out = NULL;
    abis_subject_rec subj;
    segstate *seg = NULL;
    abis_subject_view *v = NULL;
    engine_state_rdlock(e);
    abis_status st = engine_find_subject(e, subject, &subj, &seg, err);
    engine_state_unlock(e);
    char hex[ABIS_ID_HEX_LEN + 1] = "";
    if (st == ABIS_OK) {
        abis_id_to_hex(subject, hex);
        /* The person sees this reading of their record too. */
        audit_event ev = {.operation = "subject.show", .segment = seg->rec.name, .subject = hex};
        st = audit_event_write(e, c, &ev, err);
    }
    if (st == ABIS_OK && !(v = calloc(1, sizeof *v)))
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    view_ctx vc = {e, v, 0};
    engine_state_rdlock(e); /* the callbacks name modalities and purposes */
    if (st == ABIS_OK) {
        v->subject_id = *subject;
        snprintf(v->segment, sizeof v->segment, "%s", seg->rec.name);
        memcpy(v->external_ref, subj.external_ref, sizeof v->external_ref);
        v->created_at = subj.created_at;
        st = s->ops->template_scan_subject(s, subject, view_template, &vc, err);
    }
    if (st == ABIS_OK)
        st = s->ops->consent_scan_subject(s, subject, view_consent, &vc, err);
    if (st == ABIS_OK)
        st = s->ops->lock_scan_subject(s, subject, view_lock, &vc, err);
    if (st == ABIS_OK)
        st = s->ops->audit_scan_subject(s, hex, view_history, &vc, err);
    engine_state_unlock(e);
    if (st == ABIS_OK && vc.oom)
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    if (st != ABIS_OK) {
        abis_subject_view_free(v);
        if (st == ABIS_E_NOT_FOUND || st == ABIS_E_INVALID)
            audit_refusal(e, c, "subject.show", NULL, NULL, NULL, err);
    } else {
        *out = v;
    }
    return st;
}
