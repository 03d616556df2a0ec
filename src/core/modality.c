/* modality.c: the registry of modality kinds (see modality.h). */
#include "core/modality.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

extern const abis_modality_kind abis_modality_vector;
extern const abis_modality_kind abis_modality_iris;
extern const abis_modality_kind abis_modality_finger;
extern const abis_modality_kind abis_modality_face;

static const abis_modality_kind *const kinds[] = {&abis_modality_vector, &abis_modality_iris,
                                                  &abis_modality_finger, &abis_modality_face};

const abis_modality_kind *abis_modality_kind_find(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (name && strcmp(kinds[i]->kind, name) == 0)
            return kinds[i];
    return NULL;
}

const char *abis_modality_kind_names(void)
{
    return "vector, iriscode, minutiae, face";
}

abis_status abis_modality_check_fixed(const abis_modality_rec *m, int dim, const char *what,
                                      abis_error *err)
{
    if (m->dim != dim)
        return abis_error_set(err, ABIS_E_INVALID, "modality '%s': %s; leave the dimension out",
                              m->name, what);
    return ABIS_OK;
}

void abis_modality_free_template(unsigned char *tmpl, size_t len)
{
    if (tmpl) {
        sodium_memzero(tmpl, len);
        free(tmpl);
    }
}
