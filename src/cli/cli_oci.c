/*
 * cli_oci.c - `mdscale oci setup`: the OCI side of the recipe for one model
 * deployment, so that nothing is clicked by hand.
 *
 * It prints, and with --apply creates through the Monitoring and
 * Notifications APIs: an OCI topic, the recipe's two high alarms on the
 * deployment (model_deployment_high_cpu and model_deployment_high_mem, the
 * `recipe` policy's MQL, thresholds and durations) with that topic as their
 * destination, and a CUSTOM_HTTPS subscription of the topic pointing at the
 * daemon's receiver, POST {endpoint}/v1/oci/notifications/{local topic}.
 * Before creating the subscription it makes sure, on the daemon, that the
 * local topic exists (created with a FUNCTION subscription to the autoscale
 * function if it does not) and that its receiver is enabled; afterwards it
 * waits until the daemon has confirmed the subscription.
 *
 * Unlike the other commands it also talks to OCI directly, with the request
 * signer and client of src/oci/ on a loop of its own.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "cli/cli.h"
#include "core/policy.h"
#include "http/httpc.h"
#include "oci/client.h"
#include "oci/config.h"
#include "oci/signer.h"
#include "util/err.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

#define DEFAULT_TOPIC "model-deployment-autoscaling"
#define NAMESPACE "oci_datascience_modeldeploy"
#define DEFAULT_WAIT_S 30

enum {
	O_ENDPOINT, O_APPLY, O_TOPIC, O_OCI_TOPIC, O_COMPARTMENT, O_PROFILE,
	O_CONFIG, O_API_URL, O_CA_FILE, O_CONFIRM_HOST, O_WAIT, O__COUNT
};

static const struct cli_opt setup_opts[] = {
	[O_ENDPOINT] = {"endpoint", 1},
	[O_APPLY] = {"apply", 0},
	[O_TOPIC] = {"topic", 1},
	[O_OCI_TOPIC] = {"oci-topic", 1},
	[O_COMPARTMENT] = {"compartment", 1},
	[O_PROFILE] = {"profile", 1},
	[O_CONFIG] = {"oci-config", 1},
	[O_API_URL] = {"oci-api-url", 1},
	[O_CA_FILE] = {"oci-ca-file", 1},
	[O_CONFIRM_HOST] = {"confirmation-host", 1},
	[O_WAIT] = {"wait", 1},
	{NULL, 0},
};

struct setup {
	const char *ocid;
	const char *val[O__COUNT];
	int apply;
	long wait_s;
	char region[64];
	char compartment[256];
	char *receiver_url;        /* {endpoint}/v1/oci/notifications/{topic} */
	char local_topic[128];     /* the local topic's id, once known */
	/* OCI */
	uv_loop_t loop;
	int loop_open;
	struct httpc *http;
	struct oci_signer *signer;
	struct oci_client *client;
	char *ds_url, *mon_url, *ons_url;
};

/* ---- arguments ---- */

/* OCI delivers only to https; plain http is accepted for a loopback
 * address, where a TLS proxy or a test sits in front. */
static int check_endpoint(struct cli_ctx *ctx, const char *url)
{
	static const char *const loopback[] = {
		"http://127.0.0.1", "http://localhost", "http://[::1]",
	};

	if (strncmp(url, "https://", 8) == 0 && url[8] != '\0' &&
	    url[8] != '/')
		return 0;
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		size_t n = strlen(loopback[i]);

		if (strncmp(url, loopback[i], n) == 0 &&
		    (url[n] == ':' || url[n] == '/' || url[n] == '\0'))
			return 0;
	}
	return cli_usage_error(ctx, "--endpoint must be an https:// URL "
		"(OCI Notifications delivers only to https), not '%s'", url);
}

static int parse_setup(struct cli_ctx *ctx, int argc, char **argv,
	struct setup *s)
{
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	int o;

	for (;;) {
		o = cli_getopt(ctx, &g, setup_opts);
		if (o == CLI_OPT_END)
			break;
		if (o == CLI_OPT_ARG && s->ocid == NULL) {
			s->ocid = g.value;
			continue;
		}
		if (o == CLI_OPT_ARG)
			return cli_usage_error(ctx, "unexpected argument '%s'",
				g.value);
		if (o < 0)
			return cli_opt_exit(o);
		if (o == O_APPLY)
			s->apply = 1;
		else
			s->val[o] = g.value;
	}
	if (s->ocid == NULL)
		return cli_usage_error(ctx, "missing the DEPLOYMENT_OCID");
	if (strncmp(s->ocid, "ocid1.datasciencemodeldeployment.", 33) != 0)
		return cli_usage_error(ctx, "'%s' is not a model deployment "
			"OCID (ocid1.datasciencemodeldeployment....)", s->ocid);
	if (s->val[O_ENDPOINT] == NULL)
		return cli_usage_error(ctx, "missing --endpoint URL (the "
			"daemon's public https:// address)");
	if (check_endpoint(ctx, s->val[O_ENDPOINT]) != 0)
		return CLI_EXIT_USAGE;
	s->wait_s = DEFAULT_WAIT_S;
	if (s->val[O_WAIT] != NULL)
		return cli_parse_long(ctx, "--wait", s->val[O_WAIT], 0, 3600,
			&s->wait_s);
	return 0;
}

/* The region of an OCID ("ocid1.type.oc1.us-ashburn-1.xxx"), if it names
 * one in the long form. */
static void region_of(const char *ocid, char *out, size_t n)
{
	const char *p = ocid;

	out[0] = '\0';
	for (int dots = 0; *p != '\0' && dots < 3; p++)
		if (*p == '.')
			dots++;
	if (*p == '\0')
		return;
	snprintf(out, n, "%.*s", (int)strcspn(p, "."), p);
	if (strchr(out, '-') == NULL)
		out[0] = '\0';
}

/* ---- OCI calls, one at a time on the command's own loop ---- */

struct sync_call {
	int done;
	int error;
	long status;
	json_t *body;
	char detail[256];
	char request_id[64];
};

static void on_oci_done(void *arg, const struct oci_response *res)
{
	struct sync_call *c = arg;

	c->done = 1;
	c->error = res->error;
	c->status = res->status;
	snprintf(c->detail, sizeof(c->detail), "%s",
		res->detail ? res->detail : "");
	snprintf(c->request_id, sizeof(c->request_id), "%s",
		res->opc_request_id ? res->opc_request_id : "");
	if (res->body != NULL && res->body_len > 0)
		c->body = json_loadb(res->body, res->body_len, 0, NULL);
}

/* Sends one signed request and waits for its answer. Returns 0 with the
 * body in *out (caller decrefs) on a 2xx, else prints the one error line
 * naming what (the OCI operation) and returns CLI_EXIT_FAIL. */
static int oci_sync(struct setup *s, const char *what, const char *method,
	const char *url, const json_t *body, json_t **out)
{
	struct sync_call c = {0};
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	char token[33];
	struct oci_request req = {.method = method, .url = url, .body = text,
		.body_len = text ? strlen(text) : 0};
	int rc;

	/* Every POST here creates something: a retried one must create it
	 * once. */
	if (strcmp(method, "POST") == 0) {
		ids_random_hex(token, 16);
		req.retry_token = token;
	}
	rc = oci_client_send(s->client, &req, on_oci_done, &c, NULL);
	free(text);
	if (rc != 0)
		return cli_fail("%s: cannot send to %s: %s", what, url,
			mds_strerror(rc));
	while (!c.done)
		uv_run(&s->loop, UV_RUN_ONCE);
	if (c.error != 0 || c.status < 200 || c.status > 299) {
		const char *code = cli_json_str(c.body, "code");
		const char *msg = cli_json_str(c.body, "message");

		if (c.error != 0)
			cli_fail("%s: %s (%s)", what, mds_strerror(c.error),
				c.detail);
		else
			cli_fail("%s: OCI answered HTTP %ld %s: %s "
				"(opc-request-id %s)", what, c.status,
				code[0] ? code : "-", msg[0] ? msg : "-",
				c.request_id);
		json_decref(c.body);
		return CLI_EXIT_FAIL;
	}
	*out = c.body ? c.body : json_object();
	return 0;
}

static int session_open(struct setup *s)
{
	char diag[512];
	struct oci_client_opts o = {.ca_file = s->val[O_CA_FILE]};
	const char *override = s->val[O_API_URL];
	int rc;

	rc = oci_signer_from_config(s->val[O_CONFIG], s->val[O_PROFILE],
		&s->signer, diag, sizeof(diag));
	if (rc != 0)
		return cli_fail("OCI config: %s", diag);
	region_of(s->ocid, s->region, sizeof(s->region));
	if (s->region[0] == '\0')
		snprintf(s->region, sizeof(s->region), "%s",
			oci_signer_region(s->signer));
	if (s->region[0] == '\0')
		return cli_fail("no region: the OCID has none and the OCI "
			"config profile names none");
	uv_loop_init(&s->loop);
	s->loop_open = 1;
	if (httpc_global_init() != 0 || httpc_new(&s->loop, &s->http) != 0)
		return cli_fail("cannot start the HTTP client");
	s->client = oci_client_new(&s->loop, s->http, s->signer, &o);
	s->ds_url = oci_endpoint("datascience", s->region, override);
	s->mon_url = oci_endpoint("telemetry", s->region, override);
	s->ons_url = oci_endpoint("notification", s->region, override);
	return 0;
}

static void session_close(struct setup *s)
{
	oci_client_free(s->client);
	if (s->http != NULL)
		httpc_close(s->http);
	if (s->loop_open) {
		uv_run(&s->loop, UV_RUN_DEFAULT);
		uv_loop_close(&s->loop);
		httpc_global_cleanup();
	}
	oci_signer_free(s->signer);
	free(s->ds_url);
	free(s->mon_url);
	free(s->ons_url);
	free(s->receiver_url);
}

/* ---- what is created ---- */

/* Reads the deployment: it must exist and be visible, and gives the
 * compartment unless --compartment is set. */
static int read_deployment(struct setup *s)
{
	char *url = xasprintf("%s/20190101/modelDeployments/%s", s->ds_url,
		s->ocid);
	json_t *d = NULL;
	int ret = oci_sync(s, "GetModelDeployment", "GET", url, NULL, &d);

	free(url);
	if (ret != 0)
		return ret;
	snprintf(s->compartment, sizeof(s->compartment), "%s",
		s->val[O_COMPARTMENT] ? s->val[O_COMPARTMENT]
				      : cli_json_str(d, "compartmentId"));
	json_decref(d);
	if (s->compartment[0] == '\0')
		return cli_fail("the deployment shows no compartmentId; pass "
			"--compartment OCID");
	return 0;
}

static json_t *topic_body(const struct setup *s)
{
	return json_pack("{s:s, s:s, s:s}", "name",
		s->val[O_TOPIC] ? s->val[O_TOPIC] : DEFAULT_TOPIC,
		"compartmentId", s->compartment, "description",
		"Alarms of model deployments for mdscale's autoscale function");
}

/* One of the recipe's high alarms, from the `recipe` scaling policy. */
static json_t *alarm_body(const struct setup *s, const char *title,
	const char *metric, double threshold, const char *topic_id)
{
	struct policy p;
	char *query;
	json_t *o;

	policy_recipe(&p);
	query = xasprintf("%s[%s]{resourceId = \"%s\"}.%s() > %g", metric,
		p.high_window, s->ocid, p.high_statistic, threshold);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:b, s:s, s:s, "
		      "s:s}",
		"displayName", title, "compartmentId", s->compartment,
		"metricCompartmentId", s->compartment, "namespace", NAMESPACE,
		"query", query, "severity", "INFO", "destinations", topic_id,
		"isEnabled", 1, "pendingDuration", p.high_pending,
		"repeatNotificationDuration", p.high_repeat, "messageFormat",
		"ONS_OPTIMIZED");
	free(query);
	return o;
}

static json_t *subscription_body(const struct setup *s, const char *topic_id)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "topicId", topic_id,
		"compartmentId", s->compartment, "protocol", "CUSTOM_HTTPS",
		"endpoint", s->receiver_url);
}

static void print_step(const char *method, const char *url,
	const json_t *body)
{
	char *text = json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	printf("%s %s\n%s\n\n", method, url, text);
	free(text);
}

/* Without --apply: what would be created, in order. */
static int print_plan(struct setup *s)
{
	struct policy p;
	const char *topic = s->val[O_OCI_TOPIC] ? s->val[O_OCI_TOPIC]
						: "<the new topic's OCID>";
	char *url;
	json_t *b;

	policy_recipe(&p);
	printf("# OCI setup for %s (region %s, compartment %s)\n"
	       "# On the daemon: local topic '%s' (created with a FUNCTION\n"
	       "# subscription to 'autoscale' if missing), its OCI receiver\n"
	       "# enabled. Then, in OCI:\n\n", s->ocid, s->region,
	       s->compartment, s->val[O_TOPIC] ? s->val[O_TOPIC] : DEFAULT_TOPIC);
	if (s->val[O_OCI_TOPIC] == NULL) {
		url = xasprintf("%s/20181201/topics", s->ons_url);
		b = topic_body(s);
		print_step("POST", url, b);
		json_decref(b);
		free(url);
	}
	url = xasprintf("%s/20180401/alarms", s->mon_url);
	b = alarm_body(s, "model_deployment_high_cpu", "CpuUtilization",
		p.cpu_high, topic);
	print_step("POST", url, b);
	json_decref(b);
	b = alarm_body(s, "model_deployment_high_mem", "MemoryUtilization",
		p.mem_high, topic);
	print_step("POST", url, b);
	json_decref(b);
	free(url);
	url = xasprintf("%s/20181201/subscriptions", s->ons_url);
	b = subscription_body(s, topic);
	print_step("POST", url, b);
	json_decref(b);
	free(url);
	printf("# Run again with --apply to create them.\n");
	return CLI_EXIT_OK;
}

/* ---- the daemon's side ---- */

/* Finds the local topic by name, or creates it with a FUNCTION
 * subscription to the autoscale function; keeps its id. */
static int ensure_local_topic(struct cli_ctx *ctx, struct setup *s)
{
	const char *name = s->val[O_TOPIC] ? s->val[O_TOPIC] : DEFAULT_TOPIC;
	char *esc = cli_escape(name), *path = xasprintf("/v1/topics?name=%s",
		esc);
	json_t *resp = NULL, *body, *items;
	int ret = cli_call(ctx, "GET", path, NULL, &resp);

	free(esc);
	free(path);
	if (ret != 0)
		return ret;
	items = json_object_get(resp, "items");
	if (json_array_size(items) > 0) {
		snprintf(s->local_topic, sizeof(s->local_topic), "%s",
			cli_json_str(json_array_get(items, 0), "topicId"));
		json_decref(resp);
		printf("local topic %s (%s) exists\n", s->local_topic, name);
		return 0;
	}
	json_decref(resp);
	body = json_pack("{s:s}", "name", name);
	ret = cli_call(ctx, "POST", "/v1/topics", body, &resp);
	json_decref(body);
	if (ret != 0)
		return ret;
	snprintf(s->local_topic, sizeof(s->local_topic), "%s",
		cli_json_str(resp, "topicId"));
	json_decref(resp);
	body = json_pack("{s:s, s:s, s:s}", "topicId", s->local_topic,
		"protocol", "FUNCTION", "endpoint", "autoscale");
	ret = cli_call(ctx, "POST", "/v1/subscriptions", body, &resp);
	json_decref(body);
	json_decref(resp);
	if (ret == 0)
		printf("created local topic %s (%s), subscribed the autoscale "
		       "function\n", s->local_topic, name);
	return ret;
}

static int enable_receiver(struct cli_ctx *ctx, struct setup *s)
{
	char *path = cli_item_path("oci/receivers", s->local_topic, "");
	json_t *body = json_pack("{s:b}", "enabled", 1), *resp = NULL;
	int ret;

	if (s->val[O_CONFIRM_HOST] != NULL)
		json_object_set_new(body, "confirmationHostSuffix",
			json_string(s->val[O_CONFIRM_HOST]));
	ret = cli_call(ctx, "PUT", path, body, &resp);
	json_decref(body);
	json_decref(resp);
	free(path);
	if (ret == 0)
		printf("enabled the OCI receiver of local topic %s\n",
			s->local_topic);
	return ret;
}

/* Waits until the daemon has confirmed subscription sub_id. */
static int wait_confirmed(struct cli_ctx *ctx, struct setup *s,
	const char *sub_id)
{
	char *path = cli_item_path("oci/receivers", s->local_topic, "");
	time_t end = time(NULL) + s->wait_s;
	json_t *resp = NULL;
	int ret;

	for (;;) {
		ret = cli_call(ctx, "GET", path, NULL, &resp);
		if (ret != 0)
			break;
		if (strcmp(cli_json_str(resp, "state"), "CONFIRMED") == 0 &&
		    strcmp(cli_json_str(resp, "subscriptionId"), sub_id) == 0) {
			printf("subscription %s confirmed by the daemon\n",
				sub_id);
			break;
		}
		if (time(NULL) >= end) {
			const char *err = cli_json_str(resp, "lastError");

			ret = cli_fail("subscription %s is not confirmed after "
				"%lds (receiver: %s%s%s); check that %s reaches "
				"the daemon", sub_id, s->wait_s,
				cli_json_str(resp, "state"), err[0] ? ", " : "",
				err, s->receiver_url);
			break;
		}
		json_decref(resp);
		resp = NULL;
		uv_sleep(200);
	}
	json_decref(resp);
	free(path);
	return ret;
}

/* ---- OCI's side ---- */

/* POSTs body to url and keeps the new resource's id (key) in out. */
static int create(struct setup *s, const char *what, const char *url,
	json_t *body, const char *key, char *out, size_t outsz)
{
	json_t *resp = NULL;
	int ret = oci_sync(s, what, "POST", url, body, &resp);

	json_decref(body);
	if (ret != 0)
		return ret;
	snprintf(out, outsz, "%s", cli_json_str(resp, key));
	json_decref(resp);
	if (out[0] == '\0')
		return cli_fail("%s: OCI's answer has no %s", what, key);
	return 0;
}

static int apply(struct cli_ctx *ctx, struct setup *s)
{
	struct policy p;
	char topic[256], cpu[256], mem[256], sub[256];
	char *url;
	int ret;

	policy_recipe(&p);
	ret = ensure_local_topic(ctx, s);
	if (ret == 0)
		ret = enable_receiver(ctx, s);
	if (ret != 0)
		return ret;
	s->receiver_url = xasprintf("%s/v1/oci/notifications/%s",
		s->val[O_ENDPOINT], s->local_topic);
	if (s->val[O_OCI_TOPIC] != NULL) {
		snprintf(topic, sizeof(topic), "%s", s->val[O_OCI_TOPIC]);
	} else {
		url = xasprintf("%s/20181201/topics", s->ons_url);
		ret = create(s, "CreateTopic", url, topic_body(s), "topicId",
			topic, sizeof(topic));
		free(url);
		if (ret != 0)
			return ret;
		printf("created OCI topic %s\n", topic);
	}
	url = xasprintf("%s/20180401/alarms", s->mon_url);
	ret = create(s, "CreateAlarm model_deployment_high_cpu", url,
		alarm_body(s, "model_deployment_high_cpu", "CpuUtilization",
			p.cpu_high, topic), "id", cpu, sizeof(cpu));
	if (ret == 0) {
		printf("created alarm model_deployment_high_cpu %s\n", cpu);
		ret = create(s, "CreateAlarm model_deployment_high_mem", url,
			alarm_body(s, "model_deployment_high_mem",
				"MemoryUtilization", p.mem_high, topic),
			"id", mem, sizeof(mem));
	}
	free(url);
	if (ret != 0)
		return ret;
	printf("created alarm model_deployment_high_mem %s\n", mem);
	url = xasprintf("%s/20181201/subscriptions", s->ons_url);
	ret = create(s, "CreateSubscription", url, subscription_body(s, topic),
		"id", sub, sizeof(sub));
	free(url);
	if (ret != 0)
		return ret;
	printf("created subscription %s -> %s\n", sub, s->receiver_url);
	return wait_confirmed(ctx, s, sub);
}

int cli_oci_setup(struct cli_ctx *ctx, int argc, char **argv)
{
	struct setup s = {0};
	int ret = parse_setup(ctx, argc, argv, &s);

	if (ret != 0)
		return ret;
	/* The OCI client logs each request at info; a command prints only
	 * its result or its one error line. */
	log_set_level("warn");
	ret = session_open(&s);
	if (ret == 0)
		ret = read_deployment(&s);
	if (ret == 0 && !s.apply) {
		s.receiver_url = xasprintf("%s/v1/oci/notifications/<local "
			"topic id>", s.val[O_ENDPOINT]);
		ret = print_plan(&s);
	} else if (ret == 0) {
		ret = apply(ctx, &s);
	}
	session_close(&s);
	return ret;
}
