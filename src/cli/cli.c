/*
 * cli.c - the command table, option parsing, dispatch and the one-line
 * error messages of the CLI; see cli.h.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "util/err.h"
#include "util/xalloc.h"

/* Every client command, in the order `mdscale help` lists them. */
static const struct cli_cmd cli_cmds[] = {
	{
		.name = "deployment create",
		.usage = "--name NAME (--command 'STRING' | --argv ARG [--argv ARG ...])\n"
			 "\t[--shape S] [--count N] [--health-path P] [--env K=V ...]\n"
			 "\t[--ready-timeout SECONDS] [--drain-timeout SECONDS]\n"
			 "\t[--tag K=V ...] [--autoscale\n"
			 "\t [--autoscale-profile default|recipe|mdscale]\n"
			 "\t [--max-instances N]] [--wait [--timeout SECONDS]]",
		.help = "Creates a deployment.\n"
			"--command runs through /bin/sh -c; --argv gives the argument\n"
			"vector, run without a shell. $PORT is where each instance must\n"
			"listen. --wait waits (default 120 s) until it is ACTIVE, and\n"
			"fails if it becomes FAILED. --autoscale sets up the high-cpu\n"
			"and high-mem alarms, a topic and the autoscale function's\n"
			"subscription, with the default or the recipe's profile.\n"
			"--tag sets a freeform tag (OCI's limits: at most 64, keys of\n"
			"1-100 characters without '.', '=' or spaces, values of at\n"
			"most 256).",
		.exec = cli_deployment_create,
	},
	{
		.name = "deployment import",
		.usage = "--backend kubernetes|oci REF [--name NAME]\n"
			 "\t[--wait [--timeout SECONDS]]",
		.help = "Takes a deployment that lives on a platform under\n"
			"mdscale's care: REF is NAMESPACE/NAME of a Kubernetes\n"
			"Deployment, or the OCID of an OCI model deployment. The\n"
			"platform keeps running it; mdscale reads its count and\n"
			"shape, scales it and follows its progress. --name defaults\n"
			"to REF's part after its last '/'. --wait waits until it is\n"
			"ACTIVE.",
		.exec = cli_deployment_import,
	},
	{
		.name = "deployment list",
		.usage = "[--name NAME] [--state STATE] [--tag K=V]\n"
			"\t[--sort-by timeCreated|displayName|lifecycleState|instanceCount]\n"
			"\t[--sort-order asc|desc] [--watch]",
		.help = "Lists the live deployments, oldest first.\n"
			"--name, --state (ACTIVE, UPDATING, ...) and --tag keep only\n"
			"the deployments that match (the server filters); --sort-by\n"
			"and --sort-order order them. -o wide shows the tags. --watch\n"
			"prints the list again each time it changes (a long-poll on\n"
			"the daemon, no busy loop) until interrupted.",
		.exec = cli_deployment_list,
	},
	{
		.name = "deployment get",
		.usage = "ID|NAME [--watch]",
		.help = "Shows a deployment and its instances.\n"
			"--watch prints it again each time it changes, and ends once\n"
			"it is gone.",
		.exec = cli_deployment_get,
	},
	{
		.name = "deployment update",
		.usage = "ID|NAME [--count N] [--shape S]\n"
			"\t[--command 'STRING' | --argv ARG [--argv ARG ...]]\n"
			"\t[--env K=V ...] [--health-path P] [--ready-timeout SECONDS]\n"
			"\t[--drain-timeout SECONDS] [--tag K=V ...]\n"
			"\t[--wait [--timeout SECONDS]]",
		.help = "Changes any of a deployment's mutable fields.\n"
			"Without downtime: a new count adds or drains instances; a new\n"
			"shape, command, environment (--env replaces all of it) or\n"
			"health path starts a new set of instances, switches traffic\n"
			"to it once all are ready, then drains the old set. Timeouts\n"
			"and freeform tags (--tag replaces all of them) change at once.\n"
			"Prints the work request; --wait waits until it is done and\n"
			"prints its final state, then the deployment's (-o json: one\n"
			"document, the work request with a deployment member).",
		.exec = cli_deployment_update,
	},
	{
		.name = "deployment delete",
		.usage = "ID|NAME [--wait [--timeout SECONDS]]",
		.help = "Deletes a deployment.\n"
			"Its instances drain first. Prints the work request; --wait\n"
			"waits until the deployment is DELETED, then prints the final\n"
			"work request and what is left of the deployment (-o json:\n"
			"the work request with a deployment member, null when gone).",
		.exec = cli_deployment_delete,
	},
	{
		.name = "deployment history",
		.usage = "ID|NAME",
		.help = "Shows the scaling decisions of a deployment: when, which\n"
			"alarm, which value, what changed, the work request, and why.",
		.exec = cli_deployment_history,
	},
	{
		.name = "workrequest get",
		.usage = "ID [--watch]",
		.help = "Shows a work request and its steps.\n"
			"--watch prints it again each time it changes (a long-poll on\n"
			"the deployments' version, which every step moves) until\n"
			"interrupted.",
		.exec = cli_workrequest_get,
	},
	{
		.name = "workrequest list",
		.usage = "[--deployment ID|NAME] [--state STATUS] [--operation OP]\n"
			 "\t[--sort-by timeAccepted|operationType|status]\n"
			 "\t[--sort-order asc|desc] [--limit N] [--page TOKEN] [--watch]",
		.help = "Lists the work requests, newest first; --deployment keeps\n"
			"one deployment's, --state one status (SUCCEEDED, FAILED, ...),\n"
			"--operation one operation (CREATE_DEPLOYMENT, UPDATE_DEPLOYMENT,\n"
			"DELETE_DEPLOYMENT). --limit N (1 to 100) prints a page of at\n"
			"most N; when more follow, stderr says so with the option that\n"
			"reads the next page, \"mdscale: more: --page TOKEN\" (with any\n"
			"-o: stdout is the list alone). --watch prints the list again\n"
			"each time it changes.",
		.exec = cli_workrequest_list,
	},
	{
		.name = "shape list",
		.usage = "",
		.help = "Lists the instance shapes, smallest first.",
		.exec = cli_shape_list,
	},
	{
		.name = "load",
		.usage = "--url URL (--rate R [--duration SECONDS] | --schedule FILE)\n"
			 "\t[--format auto|steps|azure|times|rates] [--compress X]\n"
			 "\t[--scale X] [--start S] [--duration D] [--cost-instances N]\n"
			 "\t[--body FILE] [--method M] [--header 'K: V' ...]\n"
			 "\t[--connections C] [--timeout SECONDS]",
		.help = "Sends open-loop HTTP load to any URL (not the daemon's).\n"
			"Requests are due at fixed times, R per second evenly spaced\n"
			"(default 10 s), or per FILE: lines 'SECONDS RATE' or\n"
			"'ramp SECONDS FROM TO', # comments; or FILE is a trace that\n"
			"`mdscale simulate` reads (azure, times, rates), replayed from\n"
			"--start S for --duration D seconds of its compressed time;\n"
			"--cost-instances N sends cost x N copies of --body's first\n"
			"instance (the model server's cost). Latency counts from the\n"
			"due time, so a stalled server shows as latency. Up to C\n"
			"keep-alive connections (default 64), one request at a time\n"
			"each; due requests wait for a free one. --timeout (default\n"
			"10 s) runs from the due time. Prints a line per second on\n"
			"stderr and a summary; --output json prints one JSON object.\n"
			"Exits 0 once the run completed, even with failed requests.",
		.exec = cli_load,
	},
	{
		.name = "simulate",
		.usage = "--trace FILE [--format auto|azure|times|rates]\n"
			 "\t[--compress X] [--scale X] [--policy NAME|FILE ...]\n"
			 "\t[--set key=value ...] [--sweep [POLICY:]key=a,b,c ...]\n"
			 "\t[--compare POLICY] [--steady] [--plot FILE.png]",
		.help = "Replays a request trace against scaling policies in virtual\n"
			"time and compares them with the oracle (the cheapest schedule\n"
			"in hindsight that meets the SLO). Built-in policies: recipe,\n"
			"oci-native, hpa, kpa, mdscale (all five by default); a FILE\n"
			"holds 'key = value' lines (docs/simulate.md). --set changes the\n"
			"deployment model (serviceMs, startupMs, sloMs, ...), --sweep\n"
			"runs every policy (or the one named) for each value of a\n"
			"model or policy field; --compare POLICY prints, per other\n"
			"policy, its best attainment at POLICY's cost or less;\n"
			"--steady adds the cheapest schedule in hindsight with no\n"
			"reversal within the flap window (slower: a dynamic programme).\n"
			"--compress divides times, --scale multiplies the rate. Prints a\n"
			"table (--output json: one JSON object); --plot writes a PNG.\n"
			"--metrics FILE ('seconds,cpu[,mem]' lines) instead of --trace\n"
			"runs one alarm policy's chain over those samples and prints\n"
			"its moves.",
		.exec = cli_simulate,
	},
	{
		.name = "query",
		.usage = "'EXPR' [--namespace NS] [--start T] [--end T]\n"
			 "\t[--resolution R]",
		.help = "Runs an MQL query over the daemon's metrics.\n"
			"Prints one row per series (or per stream meeting the\n"
			"condition): its dimensions, its number of points and the\n"
			"last value. T is RFC 3339 or milliseconds since the epoch\n"
			"(default: the last hour); R is like 1m, 10s or PT1M.",
		.exec = cli_query,
	},
	{
		.name = "metric post",
		.usage = "--file FILE|-",
		.help = "Posts metrics in OCI's PostMetricData shape.\n"
			"FILE holds {\"metricData\": [...]}; refused items are listed\n"
			"with the reason, the others are kept.",
		.exec = cli_metric_post,
	},
	{
		.name = "alarm create",
		.usage = "--name N --query Q [--namespace NS] [--severity S]\n"
			 "\t[--pending PT1M] [--repeat PT5M] [--destination TOPIC ...]\n"
			 "\t[--body TEXT] [--format F] [--disabled] [--wait]",
		.help = "Creates an alarm.\n"
			"S is CRITICAL, ERROR, WARNING or INFO (default); F is RAW,\n"
			"PRETTY_JSON or ONS_OPTIMIZED (default); durations are\n"
			"ISO-8601; TOPIC is a topic's id or name. --wait prints the\n"
			"alarm as read back once it is stored.",
		.exec = cli_alarm_create,
	},
	{
		.name = "alarm list",
		.usage = "[--name N] [--state STATE]\n"
			 "\t[--sort-by timeCreated|displayName|severity|timeUpdated]\n"
			 "\t[--sort-order asc|desc] [--watch]",
		.help = "Lists the alarms, oldest first.\n"
			"--name and --state (lifecycleState: ACTIVE) keep only those\n"
			"that match, --sort-by and --sort-order order them (the\n"
			"daemon filters and sorts; an unknown key is refused).\n"
			"--watch prints the list again each time it changes (a\n"
			"long-poll on the daemon, no busy loop) until interrupted.",
		.exec = cli_alarm_list,
	},
	{
		.name = "alarm get",
		.usage = "ID [--watch]",
		.help = "Shows an alarm.\n"
			"--watch prints it again each time it changes, and ends once\n"
			"it is gone.",
		.exec = cli_alarm_get,
	},
	{
		.name = "alarm update",
		.usage = "ID [--name N] [--query Q] [--namespace NS] [--severity S]\n"
			 "\t[--pending D] [--repeat D|none] [--destination TOPIC ...]\n"
			 "\t[--body TEXT] [--format F] [--enabled | --disabled] [--wait]",
		.help = "Changes the fields given of an alarm.\n"
			"A new query or namespace resets the alarm's state to OK.\n"
			"--wait prints the alarm as read back after the change.",
		.exec = cli_alarm_update,
	},
	{
		.name = "alarm delete",
		.usage = "ID [--wait]",
		.help = "Deletes an alarm and its history.\n"
			"--wait reads it back and prints that it is gone.",
		.exec = cli_alarm_delete,
	},
	{
		.name = "alarm status",
		.usage = "ID",
		.help = "Shows an alarm's state and its pending and firing streams.",
		.exec = cli_alarm_status,
	},
	{
		.name = "alarm history",
		.usage = "ID [--limit N]",
		.help = "Lists an alarm's transitions, newest last.\n"
			"The last 100 unless --limit says otherwise (at most 1000).",
		.exec = cli_alarm_history,
	},
	{
		.name = "topic create",
		.usage = "--name NAME [--description TEXT] [--wait]",
		.help = "Creates a topic.\n"
			"NAME: 1 to 256 characters of A-Z a-z 0-9 _ -, unique.\n"
			"--wait prints the topic as read back once it is stored.",
		.exec = cli_topic_create,
	},
	{
		.name = "topic list",
		.usage = "[--name NAME] [--state STATE] [--sort-by timeCreated|name]\n"
			 "\t[--sort-order asc|desc] [--watch]",
		.help = "Lists the topics, oldest first.\n"
			"--name and --state keep only those that match, --sort-by and\n"
			"--sort-order order them (the daemon does both). --watch\n"
			"prints the list again each time it changes until\n"
			"interrupted.",
		.exec = cli_topic_list,
	},
	{
		.name = "topic get",
		.usage = "ID|NAME [--watch]",
		.help = "Shows a topic.\n"
			"--watch prints it again each time it changes, and ends once\n"
			"it is gone.",
		.exec = cli_topic_get,
	},
	{
		.name = "topic delete",
		.usage = "ID|NAME [--wait]",
		.help = "Deletes a topic and its subscriptions.\n"
			"Their pending deliveries are dropped. --wait reads it back\n"
			"and prints that it is gone.",
		.exec = cli_topic_delete,
	},
	{
		.name = "topic publish",
		.usage = "ID|NAME --file FILE|-",
		.help = "Publishes a message (a JSON object) on a topic.\n"
			"Every subscription of the topic gets it, at least once.\n"
			"Prints the message ID.",
		.exec = cli_topic_publish,
	},
	{
		.name = "token create",
		.usage = "[--name NAME] [--read-only]",
		.help = "Issues an API token and prints it, once.\n"
			"--read-only: the token may read everything and change "
			"nothing.\nNeeds the data directory's token.",
		.exec = cli_token_create,
	},
	{
		.name = "token list",
		.usage = "",
		.help = "Lists the issued tokens (never their secrets).",
		.exec = cli_token_list,
	},
	{
		.name = "token rotate",
		.usage = "ID",
		.help = "Gives a token a new secret and prints it, once; the old "
			"one stops working.",
		.exec = cli_token_rotate,
	},
	{
		.name = "token revoke",
		.usage = "ID",
		.help = "Revokes a token: it stops working at once.",
		.exec = cli_token_revoke,
	},
	{
		.name = "subscription create",
		.usage = "--topic ID|NAME --protocol FUNCTION|HTTPS|HTTP|COMMAND\n"
			 "\t(--endpoint FUNCTION-OR-URL | --command ARG [--command ARG ...])\n"
			 "\t[--max-attempts N] [--timeout SECONDS] [--secret SECRET]\n"
			 "\t[--wait]",
		.help = "Subscribes a function, a URL or a command to a topic.\n"
			"COMMAND runs the program (no shell) with the message on\n"
			"stdin; arguments after -- are added to the command. HTTP(S)\n"
			"deliveries are signed; their secret is printed once (not\n"
			"with --wait, which prints the subscription as read back).",
		.exec = cli_subscription_create,
	},
	{
		.name = "subscription list",
		.usage = "[--topic ID|NAME] [--state STATE]\n"
			 "\t[--sort-by timeCreated|topicId|protocol|pendingDeliveries|deadLetters]\n"
			 "\t[--sort-order asc|desc] [--watch]",
		.help = "Lists the subscriptions, oldest first.\n"
			"--topic and --state keep only those that match, --sort-by and\n"
			"--sort-order order them (the daemon does both). --watch\n"
			"prints the list again each time it changes (new pending\n"
			"deliveries and dead letters too) until interrupted.",
		.exec = cli_subscription_list,
	},
	{
		.name = "subscription get",
		.usage = "ID [--watch]",
		.help = "Shows a subscription.\n"
			"--watch prints it again each time it changes, and ends once\n"
			"it is gone.",
		.exec = cli_subscription_get,
	},
	{
		.name = "subscription delete",
		.usage = "ID [--wait]",
		.help = "Deletes a subscription; its pending deliveries are dropped.\n"
			"--wait reads it back and prints that it is gone.",
		.exec = cli_subscription_delete,
	},
	{
		.name = "subscription deliveries",
		.usage = "ID",
		.help = "Lists a subscription's delivery attempts, newest last.",
		.exec = cli_subscription_deliveries,
	},
	{
		.name = "subscription dead-letters",
		.usage = "ID",
		.help = "Lists a subscription's dead letters, oldest first: the\n"
			"messages refused (REFUSED: never retried) or out of attempts\n"
			"(FAILED), each with its reason.",
		.exec = cli_subscription_dead_letters,
	},
	{
		.name = "subscription replay",
		.usage = "ID DEAD-LETTER-ID",
		.help = "Queues a dead letter again for its subscription; its\n"
			"attempts start over.",
		.exec = cli_subscription_replay,
	},
	{
		.name = "oci setup",
		.usage = "DEPLOYMENT_OCID --endpoint URL [--apply] [--topic NAME]\n"
			 "\t[--oci-topic OCID] [--compartment OCID] [--oci-config FILE]\n"
			 "\t[--profile NAME] [--oci-api-url URL] [--oci-ca-file FILE]\n"
			 "\t[--confirmation-host SUFFIX] [--wait SECONDS]",
		.help = "Sets up OCI for the autoscaling of an OCI model deployment.\n"
			"Prints, and with --apply creates through the OCI APIs: a\n"
			"topic (--topic, default model-deployment-autoscaling; or\n"
			"--oci-topic to use one), the recipe's alarms\n"
			"model_deployment_high_cpu and model_deployment_high_mem on\n"
			"the deployment, and a CUSTOM_HTTPS subscription to URL's\n"
			"/v1/oci/notifications/{topic}, after enabling that receiver\n"
			"on the daemon's local topic of the same name (created with\n"
			"the autoscale function's subscription if missing); then waits\n"
			"(--wait, default 30 s) for the daemon to confirm it. Signs\n"
			"with the OCI config file's profile (OCI_CONFIG_FILE,\n"
			"~/.oci/config). --oci-api-url sends every OCI call to one base\n"
			"URL instead (a stand-in or proxy), --oci-ca-file trusts that\n"
			"CA, --confirmation-host sets the receiver's allowed\n"
			"confirmation host.",
		.exec = cli_oci_setup,
	},
	{
		.name = "oci-receiver list",
		.usage = "",
		.help = "Lists the local topics that have OCI receiver settings.",
		.exec = cli_oci_receiver_list,
	},
	{
		.name = "oci-receiver get",
		.usage = "TOPIC",
		.help = "Shows a topic's OCI Notifications receiver.\n"
			"Its state, the confirmed subscription, the messages accepted\n"
			"and refused, the last refusal.",
		.exec = cli_oci_receiver_get,
	},
	{
		.name = "oci-receiver enable",
		.usage = "TOPIC [--subscription OCID] [--confirmation-host SUFFIX]",
		.help = "Lets OCI Notifications deliver to a topic.\n"
			"Opens POST /v1/oci/notifications/TOPIC. The first\n"
			"subscription to confirm (or only --subscription) is accepted\n"
			"from then on; confirmation links must point at the\n"
			"--confirmation-host (a host, or a domain with a leading dot;\n"
			"default .oraclecloud.com).",
		.exec = cli_oci_receiver_enable,
	},
	{
		.name = "oci-receiver disable",
		.usage = "TOPIC",
		.help = "Closes a topic's OCI receiver.\n"
			"Every message is refused; the confirmation is kept for\n"
			"enabling it again.",
		.exec = cli_oci_receiver_disable,
	},
	{
		.name = "oci-receiver reset",
		.usage = "TOPIC",
		.help = "Forgets a topic's OCI receiver and its confirmation.",
		.exec = cli_oci_receiver_reset,
	},
	{
		.name = "fn list",
		.usage = "[--name NAME] [--sort-by timeCreated|name|invocations|failures]\n"
			 "\t[--sort-order asc|desc] [--watch]",
		.help = "Lists the functions: built-in first, then user functions.\n"
			"--name keeps the one of that name, --sort-by and --sort-order\n"
			"order them (the daemon does both). --watch prints the list\n"
			"again each time it changes (invocations too) until\n"
			"interrupted.",
		.exec = cli_fn_list,
	},
	{
		.name = "fn get",
		.usage = "NAME [--watch]",
		.help = "Shows a function and its invocation counts.\n"
			"--watch prints it again each time it changes, and ends once\n"
			"it is gone.",
		.exec = cli_fn_get,
	},
	{
		.name = "fn create",
		.usage = "--name NAME --command ARG [--command ARG ...]\n"
			 "\t[--description TEXT] [--timeout SECONDS] [--wait]",
		.help = "Creates a user function: a program run without a shell,\n"
			"the message on stdin, its stdout the result. Arguments after\n"
			"-- are added to the command. --wait prints the function as\n"
			"read back once it is stored.",
		.exec = cli_fn_create,
	},
	{
		.name = "fn delete",
		.usage = "NAME [--wait]",
		.help = "Deletes a user function.\n"
			"--wait reads it back and prints that it is gone.",
		.exec = cli_fn_delete,
	},
	{
		.name = "fn invoke",
		.usage = "NAME [--file FILE|-] < message.json",
		.help = "Invokes a function with a JSON message (stdin by default)\n"
			"and prints its result. A message the function refuses exits 1\n"
			"(the API's 400 MessageRefused); a function that fails, 1 too\n"
			"(502 FunctionFailed).",
		.exec = cli_fn_invoke,
	},
	{
		.name = "fn config",
		.usage = "get|set|reset [autoscale] [--deployment ID|NAME]\n"
			 "\t[KEY=VALUE ...] [--wait]",
		.help = "Shows or sets the autoscale function's configuration: the\n"
			"default, or one deployment's with --deployment. Keys are the\n"
			"API's (maxInstances, cpuLow, memLow, cooldownInSeconds, shapes,\n"
			"...) or the recipe's (MAX_INSTANCES, LOW_CPU_THRESHOLD,\n"
			"LOW_MEM_THRESHOLD, VM_SHAPES); shapes are comma-separated,\n"
			"small to large. reset makes a deployment use the default.\n"
			"Alarms, topics and subscriptions are never touched. --wait\n"
			"prints the configuration as read back after set or reset.",
		.exec = cli_fn_config,
	},
	{
		.name = "logs",
		.usage = "[--source S] [--deployment ID|NAME] [--instance ID]\n"
			 "\t[--level L] [--since T] [--until T] [--text T] [--stream S]\n"
			 "\t[--limit N] [--follow] [--output json]",
		.help = "Shows the daemon's structured log, oldest first.\n"
			"--level shows that level and more severe (error, warn, info,\n"
			"debug); --since and --until take an RFC 3339 time or a duration\n"
			"back from now (30s, 5m, 1h, 2d); --text matches part of the\n"
			"message; --stream stdout|stderr picks instance output. Shows\n"
			"the newest --limit lines (default 1000, at most 10000).\n"
			"--follow then keeps printing new lines until interrupted.\n"
			"--output json prints each line as its JSON object.",
		.exec = cli_logs,
	},
	{
		.name = "apply",
		.usage = "-f FILE [--wait [--timeout SECONDS]]",
		.help = "Makes deployments, alarms, topics, subscriptions, functions\n"
			"and autoscale settings match FILE (JSON or YAML; - reads\n"
			"stdin): what `NOUN get|list -o yaml` prints, read-only fields\n"
			"ignored; each object's kind is its kind: field or its shape.\n"
			"An object is matched by its name (an alarm by its id first; a\n"
			"subscription by topic, protocol and endpoint): created when\n"
			"new, updated in the fields that differ, else left alone.\n"
			"Objects name each other by name (an alarm's destination\n"
			"topics, a subscription's topic) and are made in dependency\n"
			"order. The daemon checks every change first (dryRun), so a\n"
			"file with an error changes nothing. Prints each object and\n"
			"what was done (created, updated, unchanged); nothing when\n"
			"nothing changed. --wait waits (default 120 s) until every\n"
			"deployment it changed is ACTIVE, and fails if one is FAILED.\n"
			"See docs/apply.md.",
		.exec = cli_apply,
	},
	{
		.name = "top",
		.usage = "[--once] [--sort name|cpu|mem|rps|p99] [--filter TEXT]\n"
			 "\t[--instances]",
		.help = "A live view of the daemon, refreshed every second. Per\n"
			"deployment: its state, READY/COUNT, shape, CPU% and MEM% (the\n"
			"largest over its instances), requests per second, p50 and p99\n"
			"gateway latency, sparklines of CPU and req/s; then the firing\n"
			"alarms and the last scaling decisions. --sort orders the\n"
			"deployments (largest first; s cycles the order), --filter\n"
			"shows those whose name, state or shape contains TEXT.\n"
			"--instances (i) adds a row per instance: state, CPU%, MEM%,\n"
			"restarts. q quits. --once (or stdout not a terminal) prints one plain\n"
			"snapshot, the rates taken over one second, and exits.",
		.exec = cli_top,
	},
};

#define CLI_NCMDS (sizeof cli_cmds / sizeof cli_cmds[0])

const struct cli_cmd *cli_cmd_at(size_t i)
{
	return i < CLI_NCMDS ? &cli_cmds[i] : NULL;
}

static const struct cli_opt global_opts[] = {
	{"url", 1}, {"token", 1}, {"data", 1}, {"output", 1}, {"cacert", 1},
	{NULL, 0},
};

static const char global_usage[] =
	"Global options, before or after the command:\n"
	"  --url URL              the daemon (else $MDSCALE_URL, else "
	CLI_DEFAULT_URL ")\n"
	"  --token TOKEN          the API token (else $MDSCALE_TOKEN, else "
	"DIR/token)\n"
	"  --data DIR             the daemon's data directory\n"
	"  --cacert FILE          PEM certificates to trust for an https:// URL\n"
	"                         (else $MDSCALE_CACERT, else the system's)\n"
	"  -o, --output FORMAT    table (the default), wide, json, yaml,\n"
	"                         name (the ids), or jsonpath=TEMPLATE\n"
	"                         ('{.items[*].id}'); with all but the tables,\n"
	"                         errors are JSON too\n";

const char *cli_global_usage(void)
{
	return global_usage;
}

/* Set while the command line is read, before anything fails for a reason
 * other than its usage: with a structured -o, errors go to stderr as one
 * JSON object, so that a script reading JSON gets JSON either way. */
static int errors_as_json;

/* Prints one error as {"error": {"code", "message", "status"}} (code and
 * status only when known) on one line of stderr. */
static void print_json_error(const char *code, const char *message,
	long status)
{
	json_t *err = json_object(), *top;

	if (code != NULL && *code != '\0')
		json_object_set_new(err, "code", json_string(code));
	json_object_set_new(err, "message", json_string(message));
	if (status > 0)
		json_object_set_new(err, "status", json_integer(status));
	top = json_pack("{s:o}", "error", err);
	json_dumpf(top, stderr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', stderr);
	json_decref(top);
}

/* Prints "mdscale: " and the message on stderr as one line: control
 * characters (a newline in a server message) become spaces. */
static void vprint_line(const char *fmt, va_list ap)
{
	char line[1024];
	size_t i;

	vsnprintf(line, sizeof line, fmt, ap);
	for (i = 0; line[i] != '\0'; i++) {
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
	}
	if (errors_as_json)
		print_json_error(NULL, line, 0);
	else
		fprintf(stderr, "mdscale: %s\n", line);
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_line(fmt, ap);
	va_end(ap);
	return CLI_EXIT_FAIL;
}

int cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...)
{
	char what[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (ctx->cmd != NULL)
		cli_fail("%s; see 'mdscale %s --help'", what, ctx->cmd->name);
	else
		cli_fail("%s; see 'mdscale --help'", what);
	return CLI_EXIT_USAGE;
}

void cli_print_usage(FILE *out)
{
	size_t i;

	fputs("usage: mdscale [global options] COMMAND [ARGS]\n\n"
	      "Commands:\n"
	      "  serve                    Runs the daemon "
	      "(see 'mdscale serve --help').\n", out);
	for (i = 0; i < CLI_NCMDS; i++) {
		fprintf(out, "  %-24s ", cli_cmds[i].name);
		cli_print_summary(out, cli_cmds[i].help);
		fputc('\n', out);
	}
	fputs("  version                  Prints the version.\n"
	      "  help [NOUN]              Prints this list, or every command of "
	      "NOUN in full.\n\n", out);
	fputs(global_usage, out);
	fputs("\nRun 'mdscale COMMAND --help' for a command's arguments.\n", out);
}

static void print_cmd_help(const struct cli_cmd *cmd, FILE *out)
{
	fprintf(out, "usage: mdscale %s%s%s\n\n%s\n\n%s", cmd->name,
		*cmd->usage != '\0' ? " " : "", cmd->usage, cmd->help,
		global_usage);
}

/* Returns the index of the option named by the len bytes at name, or -1. */
static int find_opt(const struct cli_opt *opts, const char *name, size_t len)
{
	int i;

	for (i = 0; opts[i].name != NULL; i++) {
		if (strncmp(opts[i].name, name, len) == 0 &&
		    opts[i].name[len] == '\0')
			return i;
	}
	return -1;
}

/* -o/--output VALUE. With a structured output, errors are JSON too. */
static int set_output(struct cli_ctx *ctx, const char *value)
{
	static const struct {
		const char *name;
		enum cli_output output;
	} outputs[] = {
		{"table", CLI_OUTPUT_TABLE}, {"wide", CLI_OUTPUT_WIDE},
		{"json", CLI_OUTPUT_JSON}, {"yaml", CLI_OUTPUT_YAML},
		{"name", CLI_OUTPUT_NAME},
	};
	const char *why;

	if (strncmp(value, "jsonpath=", 9) == 0) {
		if (cli_jsonpath_check(value + 9, &why) != 0)
			return cli_usage_error(ctx, "-o jsonpath: %s in '%s'",
				why, value + 9);
		ctx->output = CLI_OUTPUT_JSONPATH;
		ctx->jsonpath = value + 9;
		errors_as_json = 1;
		return 0;
	}
	for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++) {
		if (strcmp(value, outputs[i].name) == 0) {
			ctx->output = outputs[i].output;
			errors_as_json = cli_structured(ctx);
			return 0;
		}
	}
	return cli_usage_error(ctx, "-o/--output must be table, wide, json, "
		"yaml, name or jsonpath=TEMPLATE, not '%s'", value);
}

static int set_global(struct cli_ctx *ctx, int which, const char *value)
{
	if (value == NULL || *value == '\0') /* each takes a value */
		return cli_usage_error(ctx, "--%s needs a non-empty value",
			global_opts[which].name);
	switch (which) {
	case 0:
		ctx->url = value;
		break;
	case 1:
		ctx->token = value;
		break;
	case 2:
		ctx->data_dir = value;
		break;
	case 4:
		ctx->cacert = value;
		break;
	default:
		return set_output(ctx, value);
	}
	return 0;
}

int cli_getopt(struct cli_ctx *ctx, struct cli_getopt *g,
	const struct cli_opt *opts)
{
	const struct cli_opt *opt;
	const char *arg, *name, *eq;
	size_t len;
	int i, global;

	for (;;) {
		if (g->index >= g->argc)
			return CLI_OPT_END;
		arg = g->argv[g->index++];
		if (g->no_more_opts || arg[0] != '-' || arg[1] == '\0') {
			g->value = arg;
			return CLI_OPT_ARG;
		}
		if (strcmp(arg, "--") == 0) {
			g->no_more_opts = 1;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			if (ctx->cmd != NULL)
				print_cmd_help(ctx->cmd, stdout);
			else
				cli_print_usage(stdout);
			return CLI_OPT_HELP;
		}
		if (arg[1] == 'o') {
			/* -o VALUE or -oVALUE, as kubectl writes it. */
			const char *v = arg[2] != '\0' ? arg + 2 : NULL;

			if (v == NULL && g->index >= g->argc) {
				cli_usage_error(ctx, "-o needs a value");
				return CLI_OPT_USAGE;
			}
			if (v == NULL)
				v = g->argv[g->index++];
			if (set_output(ctx, v) != 0)
				return CLI_OPT_USAGE;
			continue;
		}
		if (strcmp(arg, "-f") == 0 &&
		    (i = find_opt(opts, "filename", 8)) >= 0) {
			/* -f FILE, kubectl's short form of --filename. */
			if (g->index >= g->argc) {
				cli_usage_error(ctx, "-f needs a value");
				return CLI_OPT_USAGE;
			}
			g->value = g->argv[g->index++];
			return i;
		}
		if (arg[1] != '-') {
			cli_usage_error(ctx, "unknown option '%s'", arg);
			return CLI_OPT_USAGE;
		}
		name = arg + 2;
		eq = strchr(name, '=');
		len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		global = 0;
		i = find_opt(opts, name, len);
		if (i < 0) {
			global = 1;
			i = find_opt(global_opts, name, len);
		}
		if (i < 0) {
			cli_usage_error(ctx, "unknown option '--%.*s'", (int)len,
				name);
			return CLI_OPT_USAGE;
		}
		opt = global ? &global_opts[i] : &opts[i];
		g->value = NULL;
		if (!opt->has_value && eq != NULL) {
			cli_usage_error(ctx, "--%s takes no value", opt->name);
			return CLI_OPT_USAGE;
		}
		if (opt->has_value && eq != NULL) {
			g->value = eq + 1;
		} else if (opt->has_value) {
			if (g->index >= g->argc) {
				cli_usage_error(ctx, "--%s needs a value",
					opt->name);
				return CLI_OPT_USAGE;
			}
			g->value = g->argv[g->index++];
		}
		if (!global)
			return i;
		if (set_global(ctx, i, g->value) != 0)
			return CLI_OPT_USAGE;
	}
}

int cli_opt_exit(int code)
{
	return code == CLI_OPT_HELP ? CLI_EXIT_HELPED : CLI_EXIT_USAGE;
}

int cli_parse_simple(struct cli_ctx *ctx, int argc, char **argv,
	const char *label, const char **out)
{
	static const struct cli_opt no_opts[] = {{NULL, 0}};
	const char *no_vals[1]; /* never written: no_opts has no option */

	return cli_parse_args(ctx, argc, argv, no_opts, label, out, no_vals);
}

int cli_parse_args(struct cli_ctx *ctx, int argc, char **argv,
	const struct cli_opt *opts, const char *label, const char **out,
	const char **val)
{
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	const char *pos = NULL;
	int o;

	for (;;) {
		o = cli_getopt(ctx, &g, opts);
		if (o == CLI_OPT_END)
			break;
		if (o >= 0) {
			val[o] = g.value != NULL ? g.value : ""; /* "": a flag */
			continue;
		}
		if (o != CLI_OPT_ARG)
			return o;
		if (label == NULL || pos != NULL) {
			cli_usage_error(ctx, "unexpected argument '%s'", g.value);
			return CLI_OPT_USAGE;
		}
		pos = g.value;
	}
	if (label != NULL && pos == NULL) {
		cli_usage_error(ctx, "missing %s", label);
		return CLI_OPT_USAGE;
	}
	if (out != NULL)
		*out = pos;
	return 0;
}

int cli_parse_long(struct cli_ctx *ctx, const char *opt, const char *s,
	long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if ((*s != '-' && !isdigit((unsigned char)*s)) || *end != '\0' ||
	    (errno != 0 && errno != ERANGE))
		return cli_usage_error(ctx, "--%s must be an integer, not '%s'",
			opt, s);
	if (errno == ERANGE || v < min || v > max)
		return cli_usage_error(ctx, "--%s must be from %ld to %ld, not %s",
			opt, min, max, s);
	*out = v;
	return 0;
}

const char *cli_json_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}


int cli_request_error(struct cli_ctx *ctx, int rc, long status,
	const json_t *json)
{
	const char *message = cli_json_str(json, "message");

	if (rc == MDS_E_UNAVAIL) {
		cli_fail("cannot reach the daemon at %s: %s", ctx->url_owned,
			ctx->diag);
		return CLI_EXIT_UNREACHABLE;
	}
	if (rc == MDS_E_INVAL)
		return cli_usage_error(ctx, "%s", ctx->diag);
	if (rc < 0)
		return cli_fail("%s", ctx->diag);
	if (*message == '\0')
		return cli_fail("the daemon answered HTTP %ld", status);
	if (errors_as_json) {
		print_json_error(cli_json_str(json, "code"), message, status);
		return CLI_EXIT_FAIL;
	}
	if (status == 401 && ctx->token_note != NULL)
		return cli_fail("%s (%s, HTTP %ld); %s", message,
			cli_json_str(json, "code"), status, ctx->token_note);
	return cli_fail("%s (%s, HTTP %ld)", message,
		cli_json_str(json, "code"), status);
}

int cli_call(struct cli_ctx *ctx, const char *method, const char *path,
	const json_t *body, json_t **json)
{
	long status;
	int rc, ret;

	rc = cli_request(ctx, method, path, body, &status, json);
	if (rc == 0 && status >= 200 && status < 300)
		return CLI_EXIT_OK;
	ret = cli_request_error(ctx, rc, status, *json);
	json_decref(*json);
	*json = NULL;
	return ret;
}

/* Finds the command named by argv[0] and argv[1]; prints the group's
 * commands for `mdscale GROUP --help`. */
static int dispatch(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *next = argc > 1 ? argv[1] : NULL;
	size_t i, glen = strlen(argv[0]);
	int group = 0;

	for (i = 0; i < CLI_NCMDS; i++) {
		const char *name = cli_cmds[i].name;

		/* A command of one word ("query") takes the rest as is. */
		if (strcmp(name, argv[0]) == 0) {
			ctx->cmd = &cli_cmds[i];
			return cli_cmds[i].exec(ctx, argc, argv);
		}
		if (strncmp(name, argv[0], glen) != 0 || name[glen] != ' ')
			continue;
		group = 1;
		if (next != NULL && strcmp(name + glen + 1, next) == 0) {
			ctx->cmd = &cli_cmds[i];
			return cli_cmds[i].exec(ctx, argc - 1, argv + 1);
		}
	}
	if (group && next != NULL &&
	    (strcmp(next, "--help") == 0 || strcmp(next, "-h") == 0)) {
		for (i = 0; i < CLI_NCMDS; i++) {
			if (strncmp(cli_cmds[i].name, argv[0], glen) == 0 &&
			    cli_cmds[i].name[glen] == ' ')
				fprintf(stdout, "usage: mdscale %s%s%s\n",
					cli_cmds[i].name,
					*cli_cmds[i].usage != '\0' ? " " : "",
					cli_cmds[i].usage);
		}
		return CLI_EXIT_OK;
	}
	if (!group)
		return cli_usage_error(ctx, "unknown command '%s'", argv[0]);
	if (next == NULL)
		cli_fail("'%s' needs a command; see 'mdscale %s --help'",
			argv[0], argv[0]);
	else
		cli_fail("unknown command '%s %s'; see 'mdscale %s --help'",
			argv[0], next, argv[0]);
	return CLI_EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
	static const struct cli_opt no_opts[] = {{NULL, 0}};
	struct cli_ctx ctx;
	struct cli_getopt g = {.argc = argc, .argv = argv, .index = 1};
	int o, ret;

	memset(&ctx, 0, sizeof ctx);
	o = cli_getopt(&ctx, &g, no_opts);
	if (o == CLI_OPT_END) {
		cli_print_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (o != CLI_OPT_ARG)
		return o == CLI_OPT_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if (strcmp(g.value, "help") == 0) {
		cli_print_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(g.value, "version") == 0) {
		printf("mdscale %s\n", MDS_VERSION);
		return CLI_EXIT_OK;
	}
	ret = dispatch(&ctx, argc - g.index + 1, argv + g.index - 1);
	cli_request_cleanup(&ctx);
	return ret == CLI_EXIT_HELPED ? CLI_EXIT_OK : ret;
}

char *cli_item_path(const char *collection, const char *id,
	const char *suffix)
{
	char *esc = cli_escape(id);
	char *path = xasprintf("/v1/%s/%s%s", collection, esc, suffix);

	free(esc);
	return path;
}

int cli_call_item(struct cli_ctx *ctx, int argc, char **argv,
	const char *label, const char *method, const char *collection,
	const char **id, json_t **resp)
{
	char *path;
	int ret;

	ret = cli_parse_simple(ctx, argc, argv, label, id);
	if (ret != 0)
		return cli_opt_exit(ret);
	path = cli_item_path(collection, *id, "");
	ret = cli_call(ctx, method, path, NULL, resp);
	free(path);
	return ret;
}

long long cli_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}
