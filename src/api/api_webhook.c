/*
 * api_webhook.c - the signature check of mdscale's own webhook receivers
 * (Standard Webhooks, notify/whsig.h), shared by every inbound route.
 */
#include <stdio.h>
#include <time.h>

#include "api/api.h"
#include "notify/whsig.h"
#include "util/err.h"

int api_webhook_verify(struct api_call *c, int enabled)
{
	const struct config_receiver *r = &c->api->config->receiver;
	char why[256], id[WHSIG_ID_MAX + 1], ts[32], sig[2048];
	int has_id, has_ts, has_sig, rc;

	c->webhook_id[0] = '\0';
	c->webhook_open = 0;
	if (r->secret[0] == '\0' || !enabled)
		return 0;
	/* Longer values are cut: they then fail the checks below. */
	has_id = http_req_header(c->req, "webhook-id", id, sizeof(id));
	has_ts = http_req_header(c->req, "webhook-timestamp", ts, sizeof(ts));
	has_sig = http_req_header(c->req, "webhook-signature", sig,
				  sizeof(sig));
	rc = c->api->webhook_seen != NULL
		     ? whsig_seen_begin(c->api->webhook_seen)
		     : 0;
	c->webhook_open = rc == 0 && c->api->webhook_seen != NULL;
	if (rc == 0)
		rc = whsig_verify(r->secret, has_id ? id : NULL,
				  has_ts ? ts : NULL, has_sig ? sig : NULL,
				  c->req->body, c->req->body_len,
				  (int64_t)time(NULL), r->tolerance_s,
				  c->api->webhook_seen, why, sizeof(why));
	else
		mds_diag(why, sizeof(why), "the store cannot take the "
			 "delivery now (%s): send it again later",
			 mds_strerror(rc));
	if (rc == 0) {
		snprintf(c->webhook_id, sizeof(c->webhook_id), "%s", id);
		return 0;
	}
	api_webhook_end(c, 0);
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

int api_webhook_end(struct api_call *c, int ok)
{
	if (!c->webhook_open)
		return 0;
	c->webhook_open = 0;
	return whsig_seen_end(c->api->webhook_seen, ok);
}

int api_webhook_commit(struct api_call *c)
{
	struct fault f;
	int rc = api_webhook_end(c, 1);

	if (rc == 0)
		return 0;
	fault_set(&f, rc == MDS_E_NOSPACE ? MDS_E_NOSPACE : MDS_E_DB, "",
		  "the delivery could not be stored (%s); nothing was done: "
		  "send it again later", mds_strerror(rc));
	api_reply_fault(c, &f);
	return rc;
}
