/*
 * ids.h - the clock and the random ids the daemon's modules share.
 */
#ifndef MDS_IDS_H
#define MDS_IDS_H

#include <stddef.h>
#include <stdint.h>

/* Returns the wall-clock time in milliseconds since the epoch. */
int64_t ids_now_ms(void);

/*
 * Writes nbytes random bytes (from getrandom, else a clock-and-pid mix) as
 * 2 * nbytes hex digits and a NUL into out, which must hold that many.
 * At most 64 bytes.
 */
void ids_random_hex(char *out, size_t nbytes);

/* Writes prefix and 16 random hex digits into out (outsz bytes). */
void ids_new(char *out, size_t outsz, const char *prefix);

#endif
