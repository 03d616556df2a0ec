/* file.h: reading whole files (templates, captures, calibration tables). */
#ifndef ABIS_UTIL_FILE_H
#define ABIS_UTIL_FILE_H

#include <stddef.h>

#include "abis/error.h"

/* Read a whole regular file of at most `max` bytes into a malloc'd buffer
 * with a NUL after the data (so text can be used as a string); *len gets the
 * size without the NUL.  Errors name the file and say what went wrong:
 *   "eye.bmp: cannot open: No such file or directory"
 *   "big.json: 70000000 bytes is too large (at most 8388608)" (ABIS_E_INVALID)
 *   "dir: not a regular file", "x: read error", "x: file changed while being read" */
abis_status abis_file_read(const char *path, size_t max, unsigned char **out, size_t *len,
                           abis_error *err);

#endif
