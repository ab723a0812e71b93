/* ids.c - see ids.h. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>

#include "ids.h"

int64_t ids_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void ids_random_hex(char *out, size_t nbytes)
{
	unsigned char r[64];

	if (nbytes > sizeof(r))
		nbytes = sizeof(r);
	if (getrandom(r, nbytes, 0) != (ssize_t)nbytes) {
		uint64_t t = (uint64_t)ids_now_ms() ^
			     ((uint64_t)getpid() << 40) ^
			     (uint64_t)(uintptr_t)out;

		for (size_t i = 0; i < nbytes; i++)
			r[i] = (unsigned char)(t >> (8 * (i % 8))) ^
			       (unsigned char)(i * 131);
	}
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

void ids_new(char *out, size_t outsz, const char *prefix)
{
	char hex[17];

	ids_random_hex(hex, 8);
	snprintf(out, outsz, "%s%s", prefix, hex);
}
