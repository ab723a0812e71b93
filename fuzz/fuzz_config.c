/*
 * fuzz_config.c - libFuzzer harness for the configuration file
 * (config_load(), read at start and on SIGHUP). The input is written to a
 * file in memory (memfd) and loaded over the defaults; a refusal must leave
 * a terminated diagnostic.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct config cfg;
	char diag[512];

	if (fd < 0) {
		fd = memfd_create("config", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	config_defaults(&cfg);
	diag[0] = '\0';
	if (config_load(path, &cfg, diag, sizeof(diag)) != 0 &&
	    memchr(diag, '\0', sizeof(diag)) == NULL)
		abort();
	return 0;
}
