/*
 * k8s_quantity.h - Kubernetes resource quantities ("250m", "1.5",
 * "512Mi", "123456789n"), read and written. Pure: no I/O.
 */
#ifndef MDS_K8S_QUANTITY_H
#define MDS_K8S_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses a quantity into thousandths of its unit (cpu "250m" -> 250,
 * "2" -> 2000; memory "1Ki" -> 1024000). Accepts decimal numbers with the
 * suffixes n u m k M G T P E and Ki Mi Gi Ti Pi Ei, and an exponent
 * ("1e3"). Returns 0, or MDS_E_PARSE (or MDS_E_LIMIT past 2^63).
 */
int k8s_quantity_milli(const char *q, int64_t *out);

/* Writes millicores as "250m" (or "2" for whole cores). */
void k8s_quantity_cpu(uint32_t mcpu, char *out, size_t outsz);

/* Writes bytes as "512Mi" when a whole number of MiB, else plain bytes. */
void k8s_quantity_mem(uint64_t bytes, char *out, size_t outsz);

#endif
