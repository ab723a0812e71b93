/*
 * fuzz_url.c - libFuzzer harness for URL and query decoding: the request
 * target split (hparse_url(), as both servers route on it) and the API's
 * query parameters (http_query_get(), percent-decoding with a capped
 * output). The input is a request target; each parameter name the API
 * reads is looked up in its query.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/hparse.h"
#include "http/http_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {
		"limit", "page", "since", "until", "level", "q", "deploymentId",
		"resolution", "a", "",
	};
	char *url = malloc(size + 1), out[64];
	struct hparse_url u;

	if (url == NULL)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	if (hparse_url(url, size, &u) == 0) {
		const struct hparse_span *sp[] = { &u.schema, &u.host,
			&u.userinfo, &u.path, &u.query, &u.fragment };

		for (size_t i = 0; i < sizeof(sp) / sizeof(sp[0]); i++)
			if (sp[i]->set && (sp[i]->off > size ||
					   sp[i]->len > size - sp[i]->off))
				abort();
	}
	/* The query as the API sees it: everything after the first '?'. */
	{
		const char *q = strchr(url, '?');

		q = q != NULL ? q + 1 : url;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			int rc = http_query_get(q, keys[i], out, sizeof(out));

			if (rc == 0 && memchr(out, '\0', sizeof(out)) == NULL)
				abort();
		}
	}
	free(url);
	return 0;
}
