/*
 * fuzz_api_body.c - libFuzzer harness for the API's request bodies that
 * the other harnesses leave (fuzz_autoscale_body has the autoscale
 * settings, fuzz_monitoring_body the alarms, fuzz_metric_data
 * PostMetricData). The first byte chooses the body, the rest is parsed as
 * the API parses every body (jansson, duplicate keys refused) and read as
 * its route reads it:
 *
 *   0  POST /v1/deployments            api_deployment_body_check()
 *   1  PUT /v1/deployments/{id}        api_deployment_body_check()
 *   2  POST /v1/topics                 its field table, then created and
 *                                      deleted in a notifications module
 *   3  POST /v1/subscriptions          api_subscription_body_read(), then
 *                                      created and deleted (topic "fuzz")
 *   4  POST /v1/functions              its field table, then created and
 *                                      deleted in a functions module
 *   5  POST /v1/tokens                 its field table
 *   6  POST /v1/metrics/query          its field table
 *   7  POST /v1/alertmanager/{topic}   api_alertmanager_payload_check()
 *   8  POST /v1/deployments/import     api_deployment_import_check()
 *   9  PUT /v1/functions/autoscale/config
 *                                      api_autoscale_config_parse() over
 *                                      the default, then policy_validate()
 *                                      and the summary a decision ends with
 *  10  PUT /v1/oci/receivers/{topic}   api_oci_settings_read(), then set
 *                                      on topic "fuzz" in an OCI receiver
 *  11  PUT /v1/topics/{id}             its field table
 *  12  PUT /v1/subscriptions/{id}      its field table
 *  13  PUT /v1/functions/{name}        its field table
 *
 * The modules work over an SQLite store in a temporary directory (in
 * /dev/shm when there is one, for speed) that lives for the whole run;
 * their loop never runs, so nothing is delivered or started. A refusal
 * must say why.
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
#include "api/api.h"
#include "api/api_bodies.h"
#include "api/fields.h"
#include "core/policy.h"
#include "notify/autoscale.h"
#include "notify/autoscale_config.h"
#include "notify/functions.h"
#include "notify/notifications.h"
#include "notify/oci_receiver.h"
#include "store/store.h"
#include "util/fault.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct notifications *notes;
static struct functions *fns;
static struct oci_receiver *receiver;
static char topic_id[64];

static void open_once(void)
{
	static uv_loop_t loop;
	static struct store *st;
	struct functions_env fenv = { 0 };
	struct notifications_env nenv = { 0 };
	struct oci_receiver_env renv = { 0 };
	struct notifications_topic_spec ts = { .name = "fuzz" };
	struct notifications_topic t;
	char path[128], diag[256];
	struct fault f;

	if (notes != NULL)
		return;
	log_set_level("error");
	fuzz_dir_make();
	if (uv_loop_init(&loop) != 0)
		abort();
	snprintf(path, sizeof(path), "%s/mdscale.db", fuzz_dir);
	if (store_open(path, &st, diag, sizeof(diag)) != 0)
		abort();
	fenv = (struct functions_env){ .loop = &loop, .store = st,
				       .data_dir = fuzz_dir };
	if (functions_open(&fenv, &fns, diag, sizeof(diag)) != 0)
		abort();
	nenv = (struct notifications_env){ .loop = &loop, .store = st,
					   .functions = fns,
					   .data_dir = fuzz_dir };
	if (notifications_open(&nenv, &notes, diag, sizeof(diag)) != 0 ||
	    notifications_topic_create(notes, &ts, &t, &f) != 0)
		abort();
	snprintf(topic_id, sizeof(topic_id), "%s", t.id);
	renv = (struct oci_receiver_env){ .loop = &loop, .store = st,
					  .notifications = notes };
	if (oci_receiver_open(&renv, &receiver, diag, sizeof(diag)) != 0)
		abort();
}

static void check_refusal(const struct fault *f)
{
	if (f->message[0] == '\0' ||
	    memchr(f->message, '\0', sizeof(f->message)) == NULL)
		abort();
}

/* The bytes a table's struct takes: its last member's end. */
static size_t table_size(const struct field *table)
{
	size_t n = 1;

	for (const struct field *fd = table; fd->name != NULL; fd++) {
		size_t end = fd->offset + fd->size;

		if (fd->type == FIELD_ARRAY &&
		    fd->count_offset + sizeof(size_t) > end)
			end = fd->count_offset + sizeof(size_t);
		if (end > n)
			n = end;
	}
	return n;
}

/* A body read through a table alone, into a struct of exactly the size
 * the table says (so that a write past it is caught). */
static void table_only(const struct field *table, const json_t *body)
{
	void *base = calloc(1, table_size(table));
	struct fault f;

	if (base == NULL)
		abort();
	memset(&f, 0, sizeof(f));
	if (fields_parse(table, body, base, "", NULL, &f) != 0)
		check_refusal(&f);
	fields_free(table, base);
	free(base);
}

static void topic(const json_t *body)
{
	struct notifications_topic_spec spec = { .name = "" };
	struct notifications_topic t;
	struct fault f, g;
	char id[128];

	memset(&f, 0, sizeof(f));
	if (fields_parse(api_topic_fields(), body, &spec, "", NULL, &f) != 0 ||
	    notifications_topic_create(notes, &spec, &t, &f) != 0)
		check_refusal(&f);
	else if (snprintf(id, sizeof(id), "%s", t.id) < 0 ||
		 notifications_topic_delete(notes, id, &g) != 0)
		abort();
}

static void subscription(const json_t *body)
{
	struct notifications_subscription_spec spec;
	struct notifications_subscription s;
	struct fault f, g;
	char id[128];

	memset(&f, 0, sizeof(f));
	if (api_subscription_body_read(body, &spec, &f) != 0 ||
	    notifications_subscription_create(notes, &spec, &s, &f) != 0)
		check_refusal(&f);
	else if (snprintf(id, sizeof(id), "%s", s.id) < 0 ||
		 notifications_subscription_delete(notes, id, &g) != 0)
		abort();
	api_subscription_body_free(&spec);
}

static void function(const json_t *body)
{
	struct functions_spec spec = { .name = "" };
	struct functions_info fn;
	struct fault f, g;
	char name[FUNCTIONS_NAME_MAX + 1];

	memset(&f, 0, sizeof(f));
	if (fields_parse(api_function_fields(), body, &spec, "", NULL, &f) !=
		    0 ||
	    functions_create(fns, &spec, &fn, &f) != 0)
		check_refusal(&f);
	else if (snprintf(name, sizeof(name), "%s", fn.name) < 0 ||
		 functions_delete(fns, name, &g) != 0)
		abort();
	fields_free(api_function_fields(), &spec);
}

static void autoscale_config(const json_t *body)
{
	struct autoscale_config c;
	struct fault f;
	char out[512];

	memset(&c, 0, sizeof(c));
	policy_default(&c.policy);
	memset(&f, 0, sizeof(f));
	if (api_autoscale_config_parse(body, &c, &f) != 0) {
		check_refusal(&f);
		return;
	}
	(void)policy_validate(&c.policy, out, sizeof(out));
	autoscale_config_summary(&c, true, out, sizeof(out));
}

static void oci_settings(const json_t *body)
{
	struct oci_receiver_settings s;
	struct fault f;

	memset(&f, 0, sizeof(f));
	if (api_oci_settings_read(body, &s, &f) != 0 ||
	    oci_receiver_configure(receiver, topic_id, &s, &f) != 0)
		check_refusal(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *body;
	struct fault f;

	if (size == 0)
		return 0;
	open_once();
	body = json_loadb((const char *)data + 1, size - 1,
			  JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL)
		return 0;
	memset(&f, 0, sizeof(f));
	switch (data[0] % 14) {
	case 0:
	case 1:
		if (api_deployment_body_check(body, data[0] % 14 == 1, &f) !=
		    0)
			check_refusal(&f);
		break;
	case 2:
		topic(body);
		break;
	case 3:
		subscription(body);
		break;
	case 4:
		function(body);
		break;
	case 5:
		table_only(api_token_fields(), body);
		break;
	case 6:
		table_only(api_metrics_query_fields(), body);
		break;
	case 7:
		if (api_alertmanager_payload_check(body, &f) != 0)
			check_refusal(&f);
		break;
	case 8:
		if (api_deployment_import_check(body, &f) != 0)
			check_refusal(&f);
		break;
	case 9:
		autoscale_config(body);
		break;
	case 10:
		oci_settings(body);
		break;
	case 11:
		table_only(api_topic_update_fields(), body);
		break;
	case 12:
		table_only(api_subscription_update_fields(), body);
		break;
	default:
		table_only(api_function_update_fields(), body);
		break;
	}
	json_decref(body);
	return 0;
}
