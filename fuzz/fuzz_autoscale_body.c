/*
 * fuzz_autoscale_body.c - libFuzzer harness for an API request body: the
 * autoscale settings of PUT /v1/deployments/{id}/autoscale, parsed as the
 * API parses every body (jansson, duplicate keys refused) and then read
 * through the declarative field table (api_autoscale_policy_parse()) and
 * checked by policy_validate(), as the API does. A refusal must say why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/policy.h"
#include "api/api.h"
#include "util/fault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *body = json_loadb((const char *)data, size,
				  JSON_REJECT_DUPLICATES, &jerr);
	struct policy p;
	struct fault f;
	char diag[256];

	if (body == NULL)
		return 0;
	memset(&f, 0, sizeof(f));
	if (api_autoscale_policy_parse(body, &p, "", &f) == 0)
		(void)policy_validate(&p, diag, sizeof(diag));
	else if (f.message[0] == '\0')
		abort();
	json_decref(body);
	return 0;
}
