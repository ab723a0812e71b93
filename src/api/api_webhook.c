/*
 * api_webhook.c - the signature check of mdscale's own webhook receivers
 * (Standard Webhooks, notify/whsig.h), shared by every inbound route.
 */
#include <time.h>

#include "api/api.h"
#include "notify/whsig.h"
#include "util/err.h"

int api_webhook_verify(struct api_call *c)
{
	const struct config_receiver *r = &c->api->config->receiver;
	char why[256];
	int rc;

	if (r->secret[0] == '\0')
		return 0;
	rc = whsig_verify(r->secret, http_req_header(c->req, "webhook-id"),
			  http_req_header(c->req, "webhook-timestamp"),
			  http_req_header(c->req, "webhook-signature"),
			  c->req->body, c->req->body_len, (int64_t)time(NULL),
			  r->tolerance_s, c->api->webhook_seen, why,
			  sizeof(why));
	if (rc == 0)
		return 0;
	if (rc == MDS_E_EXISTS)
		api_reply_error(c, 409, "Conflict", "webhook-id", why);
	else if (rc == MDS_E_LIMIT)
		api_reply_error(c, 429, "TooManyRequests", NULL, why);
	else
		api_reply_error(c, 401, "NotAuthenticated", "webhook-signature",
				why);
	return rc;
}
