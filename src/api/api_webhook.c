/*
 * api_webhook.c - the signature check of mdscale's own webhook receivers
 * (Standard Webhooks, notify/whsig.h), shared by every inbound route.
 */
#include <time.h>

#include "api/api.h"
#include "notify/whsig.h"
#include "util/err.h"

int api_webhook_verify(struct api_call *c, int enabled)
{
	const struct config_receiver *r = &c->api->config->receiver;
	char why[256], id[WHSIG_ID_MAX + 1], ts[32], sig[2048];
	int has_id, has_ts, has_sig, rc;

	if (r->secret[0] == '\0' || !enabled)
		return 0;
	/* Longer values are cut: they then fail the checks below. */
	has_id = http_req_header(c->req, "webhook-id", id, sizeof(id));
	has_ts = http_req_header(c->req, "webhook-timestamp", ts, sizeof(ts));
	has_sig = http_req_header(c->req, "webhook-signature", sig,
				  sizeof(sig));
	rc = whsig_verify(r->secret, has_id ? id : NULL, has_ts ? ts : NULL,
			  has_sig ? sig : NULL,
			  c->req->body, c->req->body_len, (int64_t)time(NULL),
			  r->tolerance_s, c->api->webhook_seen, why,
			  sizeof(why));
	if (rc == 0)
		return 0;
	if (rc == MDS_E_EXISTS)
		api_reply_error(c, 409, "Conflict", "webhook-id", why);
	else if (rc == MDS_E_LIMIT)
		api_reply_error(c, 429, "TooManyRequests", NULL, why);
	else if (rc == MDS_E_NOSPACE)
		api_reply_error(c, 507, "InsufficientStorage", NULL, why);
	else if (rc == MDS_E_DB)
		api_reply_error(c, 503, "ServiceUnavailable", NULL, why);
	else
		api_reply_error(c, 401, "NotAuthenticated", "webhook-signature",
				why);
	return rc;
}
