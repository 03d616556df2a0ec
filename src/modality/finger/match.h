/*
 * match.h: comparing fingerprint minutiae templates (match.c; the argument
 * for the design is in docs/FINGER.md, "Matcher").
 *
 * Two stages, as in the Minutia Cylinder-Code (MCC) family of matchers
 * (Cappelli, Ferrara and Maltoni, "Minutia Cylinder-Code: a new
 * representation and matching technique for fingerprint recognition", IEEE
 * PAMI 32(12), 2010):
 *
 *   local   every minutia carries a "cylinder": a bit pattern of which other
 *           minutiae lie where around it (space cells in its own rotated
 *           frame) and with what relative direction (direction layers).  Two
 *           cylinders compare by the share of differing bits where both are
 *           valid, so a local comparison is a few popcounts, invariant to
 *           rotation and translation, tolerant of small distortion;
 *   global  the best-matching minutia pairs are consolidated by relaxation:
 *           a pair keeps its similarity in proportion to how geometrically
 *           consistent it is with the other pairs (distances, relative
 *           angles, relative directions), so isolated coincidences fade; the
 *           score is the mean relaxed similarity of the most efficient pairs.
 *
 * A template is prepared once (cylinders built) and then compared many
 * times.  A prepared template is one block of memory, freed with
 * abis_finger_prep_free.  Comparison is thread-safe (read-only).
 *
 * Pre-selection (the fast first stage of 1:N): the same matcher with the
 * relaxation limited to the 12 best pairs and without global pairing:
 * about half the full comparison's cost, and it keeps mates at the top of
 * the ranking (docs/FINGER.md, "1:N").
 */
#ifndef ABIS_FINGER_MATCH_H
#define ABIS_FINGER_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "abis/error.h"
#include "modality/finger/finger.h"

typedef struct abis_finger_prep abis_finger_prep;

/* Build the prepared form of a template; *out is malloc'd. */
abis_status abis_finger_prepare(const abis_finger_template *t, abis_finger_prep **out,
                                abis_error *err);
void abis_finger_prep_free(abis_finger_prep *p);
/* Bytes the prepared template occupies. */
size_t abis_finger_prep_size(const abis_finger_prep *p);
/* The finger position of the template (0 unknown). */
int abis_finger_prep_position(const abis_finger_prep *p);
/* Cylinders (minutiae usable for matching) it holds. */
int abis_finger_prep_count(const abis_finger_prep *p);

/* Similarity of two prepared templates, 0..1 (higher: more alike). */
double abis_finger_match(const abis_finger_prep *a, const abis_finger_prep *b);
/* The cheap first-stage similarity, 0..1, for pre-selection. */
double abis_finger_preselect(const abis_finger_prep *a, const abis_finger_prep *b);

/* Similarity of two templates (prepares both): for occasional 1:1 calls. */
double abis_finger_compare(const abis_finger_template *a, const abis_finger_template *b);

/* "avx512", "popcnt" or "scalar": the local-similarity kernel in use (the
 * best the CPU supports; ABIS_KERNEL=scalar in the environment forces the
 * portable one).  All give the same scores. */
const char *abis_finger_kernel_name(void);
/* Use the portable kernel (1) or the best one (0), for tests and benches. */
void abis_finger_force_scalar(int on);

#endif
