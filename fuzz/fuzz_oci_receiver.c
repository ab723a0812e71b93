/*
 * fuzz_oci_receiver.c - libFuzzer harness for what OCI Notifications (or
 * anyone) POSTs to the receiver, POST /v1/oci/notifications/{topic} (no
 * token: the receiver checks its callers itself). The input is five lines
 * and a body:
 *
 *   TOPIC                      the path's topic: "fuzz" and "pinned" stand
 *                              for the two topics below, anything else is
 *                              taken as it is
 *   X-OCI-NS-MessageType       ("" when absent, as every header)
 *   X-OCI-NS-SubscriptionId
 *   X-OCI-NS-TopicOcid
 *   X-OCI-NS-ConfirmationURL
 *   BODY                       the rest; a JSON object, as the route wants
 *
 * read as the route reads it (api_oci_message_read()) and handed to a real
 * receiver (oci_receiver_post()) over a notifications module and an SQLite
 * store in a temporary directory: topic "fuzz" has a confirmed subscription
 * (ocid1.onssubscription.oc1.iad.aaaa, OCI topic
 * ocid1.onstopic.oc1.iad.bbbb), topic "pinned" waits for the confirmation
 * of its pinned one. The HTTP client is closed before the first input and
 * the loop never runs, so a confirmation that passes every check is
 * refused where its link would be fetched: nothing leaves the machine.
 * A refusal must say why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "fuzz_dir.h"
#include "api/api_bodies.h"
#include "http/httpc.h"
#include "notify/functions.h"
#include "notify/notifications.h"
#include "notify/oci_receiver.h"
#include "store/store.h"
#include "util/fault.h"
#include "util/log.h"

#define SUB "ocid1.onssubscription.oc1.iad.aaaa"
#define OCI_TOPIC "ocid1.onstopic.oc1.iad.bbbb"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct oci_receiver *receiver;
static char fuzz_id[64], pinned_id[64];

/* A topic, and its receiver's row as the receiver stores it. */
static void add_topic(struct notifications *n, struct store *st,
		      const char *name, char *id, size_t idsz, bool confirmed)
{
	struct notifications_topic_spec ts = { .name = "" };
	struct notifications_topic t;
	struct fault f;
	char row[512];

	snprintf(ts.name, sizeof(ts.name), "%s", name);
	if (notifications_topic_create(n, &ts, &t, &f) != 0)
		abort();
	snprintf(id, idsz, "%s", t.id);
	snprintf(row, sizeof(row),
		 "{\"topicId\":\"%s\",\"enabled\":true,"
		 "\"pinnedSubscriptionId\":\"" SUB "\","
		 "\"confirmationHostSuffix\":\".oraclecloud.com\","
		 "\"subscriptionId\":\"%s\",\"ociTopicId\":\"%s\","
		 "\"timeConfirmed\":0,\"lastError\":\"\"}",
		 t.id, confirmed ? SUB : "", confirmed ? OCI_TOPIC : "");
	if (store_put(st, "oci_receiver", t.id, row) != 0)
		abort();
}

static void open_once(void)
{
	static uv_loop_t loop;
	static struct store *st;
	static struct functions *fns;
	static struct notifications *notes;
	static struct httpc *hc;
	struct functions_env fenv = { 0 };
	struct notifications_env nenv = { 0 };
	struct oci_receiver_env renv = { 0 };
	char path[128], diag[256];

	if (receiver != NULL)
		return;
	log_set_level("error");
	fuzz_dir_make();
	if (uv_loop_init(&loop) != 0 ||
	    httpc_global_init() != 0 || httpc_new(&loop, &hc) != 0)
		abort();
	httpc_close(hc); /* refuses every request from now on */
	snprintf(path, sizeof(path), "%s/mdscale.db", fuzz_dir);
	if (store_open(path, &st, diag, sizeof(diag)) != 0)
		abort();
	fenv = (struct functions_env){ .loop = &loop, .store = st,
				       .data_dir = fuzz_dir };
	nenv = (struct notifications_env){ .loop = &loop, .store = st,
					   .data_dir = fuzz_dir };
	if (functions_open(&fenv, &fns, diag, sizeof(diag)) != 0)
		abort();
	nenv.functions = fns;
	if (notifications_open(&nenv, &notes, diag, sizeof(diag)) != 0)
		abort();
	add_topic(notes, st, "fuzz", fuzz_id, sizeof(fuzz_id), true);
	add_topic(notes, st, "pinned", pinned_id, sizeof(pinned_id), false);
	renv = (struct oci_receiver_env){ .loop = &loop, .store = st,
					  .httpc = hc,
					  .notifications = notes };
	if (oci_receiver_open(&renv, &receiver, diag, sizeof(diag)) != 0)
		abort();
}

/* Cuts the next line off *p (the rest of n bytes) into a new string. */
static char *next_line(const char **p, size_t *n)
{
	const char *nl = memchr(*p, '\n', *n);
	size_t len = nl != NULL ? (size_t)(nl - *p) : *n;
	char *s = malloc(len + 1);

	if (s == NULL)
		abort();
	memcpy(s, *p, len);
	s[len] = '\0';
	*p += nl != NULL ? len + 1 : len;
	*n -= nl != NULL ? len + 1 : len;
	return s;
}

static void never_called(void *arg, const struct fault *f, const char *sub)
{
	(void)arg;
	(void)f;
	(void)sub;
	abort(); /* the client refuses every fetch */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t n = size;
	char *line[5], *body_text, id[64];
	struct oci_ns_message m = { 0 };
	json_error_t jerr;
	json_t *body;
	struct fault f;
	int rc;

	open_once();
	for (size_t i = 0; i < 5; i++)
		line[i] = next_line(&p, &n);
	body_text = malloc(n + 1);
	if (body_text == NULL)
		abort();
	memcpy(body_text, p, n);
	body_text[n] = '\0';
	body = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
	memset(&f, 0, sizeof(f));
	if (json_is_object(body) &&
	    api_oci_message_read(body, line[4], &m, &f) != 0) {
		if (f.message[0] == '\0')
			abort();
	} else if (json_is_object(body)) {
		m.topic_id = strcmp(line[0], "fuzz") == 0     ? fuzz_id
			     : strcmp(line[0], "pinned") == 0 ? pinned_id
							      : line[0];
		m.message_type = line[1];
		m.subscription_id = line[2];
		m.topic_ocid = line[3];
		m.body = body_text;
		rc = oci_receiver_post(receiver, &m, id, sizeof(id), &f,
				       never_called, NULL);
		if (rc == OCI_RECEIVER_PENDING ||
		    (rc != 0 && (f.message[0] == '\0' ||
				 memchr(f.message, '\0',
					sizeof(f.message)) == NULL)))
			abort();
	}
	json_decref(body);
	free(body_text);
	for (size_t i = 0; i < 5; i++)
		free(line[i]);
	return 0;
}
