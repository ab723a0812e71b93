/*
 * serve.c - the daemon: `mdscale serve`, and the instance launcher
 * `mdscale __instance`. See serve.h.
 *
 * Start-up order: configuration, data directory and token, store, cgroups,
 * HTTP client, gateway; then, run as root, the capabilities privs.h does
 * not keep are dropped (CAP_NET_BIND_SERVICE after the API's bind);
 * deployments (which adopt or restart instances), functions, notifications
 * (which resume pending deliveries), monitoring (alarms and the metrics
 * snapshot), then the API; /v1/health answers once the API listens, so
 * "ready" means everything before it is up. Shutdown runs the same list
 * backwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "api/api_tokens.h"
#include "notify/alertmanager.h"
#include "notify/autoscale.h"
#include "notify/autoscale_idle.h"
#include "notify/autoscale_rule.h"
#include "deploy/cgroup.h"
#include "daemon/config.h"
#include "notify/whsig.h"
#include "http/tls.h"
#include "daemon/datadir.h"
#include "deploy/backend_local.h"
#include "k8s/backend_k8s.h"
#include "oci/stack.h"
#include "deploy/deploy.h"
#include "notify/functions.h"
#include "gateway/gateway.h"
#include "http/http_server.h"
#include "http/httpc.h"
#include "logging/logging.h"
#include "daemon/looplag.h"
#include "monitoring/monitoring.h"
#include "notify/notifications.h"
#include "notify/oci_receiver.h"
#include "daemon/paths.h"
#include "daemon/privs.h"
#include "daemon/reload.h"
#include "daemon/sdnotify.h"
#include "daemon/serve.h"
#include "daemon/uidpool.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/version.h"
#include "util/xalloc.h"

#define API_MAX_BODY (1024 * 1024)

struct daemon {
	uv_loop_t loop;
	struct config config;
	char *data_dir;
	int lock_fd; /* the data directory's lock, held while we run */
	char token[65];
	char self_exe[PATH_MAX];
	char gateway_url[128];
	char api_url[128];
	struct store *store;
	struct tokens *tokens;
	struct cgroup_sys *cgroups;
	struct httpc *httpc;
	struct backend *local; /* the local backend of deployments */
	struct backend *k8s;   /* the kubernetes backend, when configured */
	struct oci_stack *oci; /* the oci backend, with "oci" configured */
	struct backend *backends[3]; /* local, kubernetes, oci */
	/* The backends the daemon runs without, and why: their stored
	 * deployments stay listed, read-only. */
	struct deploy_missing missing[2];
	size_t nmissing;
	char k8s_off[512]; /* why there is no kubernetes backend */
	struct gateway *gateway;
	struct deploy *deploy;
	struct logging *logging;
	struct monitoring *monitoring;
	struct functions *functions;
	struct uidpool *uids; /* instanceUids: deployments, functions, COMMAND
				 subscriptions */
	struct notifications *notifications;
	struct oci_receiver *oci_receiver;
	struct autoscale *autoscale;
	struct autoscale_idle *autoscale_idle;
	struct autoscale_rule *autoscale_rule;
	struct alertmanager *alertmanager;
	struct http_server *api_srv;
	struct looplag *looplag;
	struct api api;
	struct whsig_seen *webhook_seen; /* the receivers' replay check */
	struct tls_ctx *api_tls;         /* NULL: the API speaks plain HTTP */
	struct tls_ctx *gateway_tls;     /* NULL: so does the gateway */
	struct sdnotify *sdnotify;
	const char *config_path; /* --config, for SIGHUP; or NULL */
	struct config file_config; /* as read at start, before the flags */
	int log_json;            /* --log-format json */
	uv_signal_t sigint, sigterm, sighup;
	int signals_on; /* the three above are open */
	int stopping;
};

void serve_usage(FILE *out)
{
	fputs("usage: mdscale serve [--listen ADDR:PORT] [--gateway ADDR:PORT]\n"
	      "                     [--data DIR] [--config FILE] "
	      "[--log-level LEVEL]\n"
	      "                     [--log-format text|json] "
	      "[--insecure-listen]\n",
	      out);
}

void serve_help(FILE *out)
{
	serve_usage(out);
	fputs("\nRuns the daemon: the REST API, the gateway to the instances, "
	      "monitoring,\nnotifications and the deployments' work requests.\n"
	      "\nOptions (they win over the configuration file):\n"
	      "  --listen ADDR:PORT     the REST API (default 127.0.0.1:7070)\n"
	      "  --gateway ADDR:PORT    the gateway to the instances (default\n"
	      "                         127.0.0.1:8080)\n"
	      "  --data DIR             the data directory (else $MDSCALE_DATA, "
	      "else\n"
	      "                         $XDG_DATA_HOME/mdscale, "
	      "~/.local/share/mdscale,\n"
	      "                         or /var/lib/mdscale)\n"
	      "  --config FILE          the JSON configuration "
	      "(docs/config.md); read\n"
	      "                         again on SIGHUP\n"
	      "  --log-level LEVEL      error, warn, info (the default) or "
	      "debug\n"
	      "  --log-format FORMAT    text (the default) or json: the lines "
	      "on stderr\n"
	      "  --insecure-listen      allow plain HTTP on an address that is "
	      "not\n"
	      "                         loopback (a warning at each start)\n"
	      "  -h, --help             prints this help\n",
	      out);
}

/* Run as root, the daemon starts instances as config->run_as_user: that
 * user must exist. Returns 0, or -1 after saying how to fix it. */
static int check_run_as_user(const struct config *cfg)
{
	if (geteuid() != 0 || cfg->run_as_user[0] == '\0')
		return 0;
	if (getpwnam(cfg->run_as_user) != NULL)
		return 0;
	fprintf(stderr, "mdscale: the user '%s' that instances run as does "
		"not exist: create it (adduser --system --group %s), or name "
		"another in the configuration's runAsUser\n",
		cfg->run_as_user, cfg->run_as_user);
	return -1;
}

/* Creates the token at first start, or reads it. */
static int load_token(struct daemon *dm, char *diag, size_t diagsz)
{
	char *path = paths_token_file(dm->data_dir);
	unsigned char raw[32];
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		/* A token file from an older version may be wider open. */
		if (fchmod(fd, 0600) != 0)
			log_warn("serve", "cannot make %s private: %s", path,
				 strerror(errno));
		n = read(fd, dm->token, sizeof(dm->token) - 1);
		close(fd);
		while (n > 0 && (dm->token[n - 1] == '\n' ||
				 dm->token[n - 1] == '\r'))
			n--;
		if (n < 16) {
			mds_diag(diag, diagsz, "%s: token too short", path);
			rc = MDS_E_INVAL;
		} else {
			dm->token[n] = '\0';
		}
		goto out;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		mds_diag(diag, diagsz, "getrandom: %s", strerror(errno));
		rc = MDS_E_SYS;
		goto out;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(dm->token + 2 * i, 3, "%02x", raw[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, dm->token, 64) != 64 || fsync(fd) != 0) {
		mds_diag(diag, diagsz, "cannot write %s: %s", path,
			 strerror(errno));
		rc = MDS_E_IO;
	}
	if (fd >= 0)
		close(fd);
out:
	free(path);
	return rc;
}

/* The API's Unix socket in the data directory: the administrator's way
 * in, which slow or numerous TCP clients cannot take (the CLI uses it when
 * no URL is given). Without it the daemon still runs. */
static void listen_local(struct daemon *dm)
{
	char *path = paths_api_socket(dm->data_dir);
	char diag[256];

	if (http_server_listen_local(dm->api_srv, path, diag,
				     sizeof(diag)) != 0)
		log_warn("serve", "no local API socket: %s", diag);
	free(path);
}

/* Whether Kubernetes credentials are there to be found: in a pod, or a
 * kubeconfig named by $KUBECONFIG or at ~/.kube/config. */
static int kubernetes_configured(void)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *kc = getenv("KUBECONFIG");
	const char *home = getenv("HOME");
	char path[PATH_MAX];

	if ((host != NULL && host[0] != '\0') || (kc != NULL && kc[0] != '\0'))
		return 1;
	snprintf(path, sizeof(path), "%s/.kube/config", home ? home : "");
	return access(path, F_OK) == 0;
}

/* Notes that the daemon runs without backend, and why (dm keeps the
 * strings). */
static void backend_missing(struct daemon *dm, const char *backend,
			    const char *why)
{
	dm->missing[dm->nmissing++] = (struct deploy_missing){
		.backend = backend, .why = why };
}

/* Puts the local backend and, when Kubernetes credentials load, the
 * kubernetes backend into dm->backends; returns how many. A kubeconfig
 * that does not load leaves the daemon running without the backend, and
 * says why. */
static size_t open_kubernetes(struct daemon *dm)
{
	int rc;

	dm->backends[0] = dm->local;
	if (!kubernetes_configured()) {
		snprintf(dm->k8s_off, sizeof(dm->k8s_off),
			 "no Kubernetes credentials: no in-cluster service, "
			 "KUBECONFIG unset and no ~/.kube/config");
		backend_missing(dm, "kubernetes", dm->k8s_off);
		return 1;
	}
	rc = backend_k8s_new(&(struct backend_k8s_env){
				     .loop = &dm->loop, .httpc = dm->httpc,
				     .shapes = &dm->config.shapes },
			     &dm->k8s, dm->k8s_off, sizeof(dm->k8s_off));
	if (rc != 0) {
		log_warn("serve", "the kubernetes backend is off: %s",
			 dm->k8s_off);
		backend_missing(dm, "kubernetes", dm->k8s_off);
		return 1;
	}
	dm->backends[1] = dm->k8s;
	return 2;
}

/* The last step of close_modules(): deployments are closed, so what they
 * rested on goes: the backends, the API server, logging, the gateway and
 * the HTTP client, then the signal handlers if they were set. */
static void on_deploy_closed(void *arg)
{
	struct daemon *dm = arg;

	dm->deploy = NULL;
	if (dm->local != NULL)
		dm->local->ops->close(dm->local, NULL, NULL);
	dm->local = NULL;
	if (dm->k8s != NULL)
		dm->k8s->ops->close(dm->k8s, NULL, NULL);
	dm->k8s = NULL;
	oci_stack_close(dm->oci, NULL, NULL);
	dm->oci = NULL;
	if (dm->api_srv != NULL)
		http_server_close(dm->api_srv, NULL, NULL);
	dm->api_srv = NULL;
	if (dm->gateway != NULL)
		gateway_set_access_log(dm->gateway, NULL, NULL);
	logging_close(dm->logging, NULL, NULL);
	dm->logging = NULL;
	dm->api.gateway = NULL;
	if (dm->gateway != NULL)
		gateway_close(dm->gateway, NULL, NULL);
	dm->gateway = NULL;
	httpc_close(dm->httpc);
	dm->httpc = NULL;
	if (dm->signals_on) {
		uv_close((uv_handle_t *)&dm->sigint, NULL);
		uv_close((uv_handle_t *)&dm->sigterm, NULL);
		uv_close((uv_handle_t *)&dm->sighup, NULL);
		dm->signals_on = 0;
	}
}

/* The second step of close_modules(): notifications are gone, so the
 * deployments stop their instances. */
static void on_notifications_closed(void *arg)
{
	struct daemon *dm = arg;

	dm->notifications = NULL;
	if (dm->deploy != NULL)
		deploy_close(dm->deploy, on_deploy_closed, dm);
	else
		on_deploy_closed(dm);
}

/* Hands an alarm message to the notifications module (the monitoring
 * publisher). */
static int publish_alarm(void *arg, const char *topic_id,
			 const char *alarm_id, const char *dedupe_key,
			 const char *message)
{
	(void)alarm_id;
	return notifications_publish(arg, topic_id, dedupe_key, message);
}

/* The second step of close_modules(): the gateway has drained and handed
 * monitoring every request it finished. */
static void on_gateway_stopped(void *arg, unsigned cut)
{
	struct daemon *dm = arg;
	struct notifications *n = dm->notifications;

	(void)cut; /* counted in the metrics, and logged */
	/* Monitoring, with a last sample of those requests and of the
	 * instances, still running: no alarm should see them go away, and
	 * its snapshot is saved while the store is still open. */
	dm->api.monitoring = NULL;
	monitoring_close(dm->monitoring);
	dm->monitoring = NULL;
	/* Then deliveries and functions, before the deployments they act on.
	 * notifications_close() lets go of its attempts at once (their
	 * deliveries stay queued for the next start) and frees itself later;
	 * functions_close() then answers what is still pending and kills the
	 * programs, so no queued built-in runs after this callback. */
	dm->api.alertmanager = NULL;
	alertmanager_close(dm->alertmanager);
	dm->alertmanager = NULL;
	dm->api.notifications = NULL;
	dm->api.functions = NULL;
	if (n != NULL)
		notifications_close(n, on_notifications_closed, dm);
	functions_close(dm->functions);
	dm->functions = NULL;
	if (n == NULL)
		on_notifications_closed(dm);
}

/*
 * Closes every module, each before the ones it calls into; the steps that
 * wait for a module to free itself go on in callbacks, so the caller runs
 * the loop until it ends. Serves both the stop on a signal and a start-up
 * that failed part way, where modules not yet opened are NULL.
 */
static void close_modules(struct daemon *dm)
{
	sdnotify_close(dm->sdnotify);
	dm->sdnotify = NULL;
	dm->api.looplag = NULL;
	looplag_close(dm->looplag);
	dm->looplag = NULL;
	/* The OCI receiver answers its pending confirmations now, while
	 * the API server can still send the answers. */
	dm->api.oci_receiver = NULL;
	oci_receiver_close(dm->oci_receiver);
	dm->oci_receiver = NULL;
	/* The autoscale function goes first: it calls into monitoring. */
	autoscale_idle_close(dm->autoscale_idle);
	dm->autoscale_idle = NULL;
	autoscale_rule_close(dm->autoscale_rule);
	dm->autoscale_rule = NULL;
	dm->api.autoscale = NULL;
	autoscale_close(dm->autoscale);
	dm->autoscale = NULL;
	/* The gateway takes no more connections and lets the requests under
	 * way finish, for stopGraceSeconds at most (the instances still
	 * serve them); it hands monitoring every request it finished, and is
	 * freed last. */
	gateway_stop(dm->gateway, (uint64_t)dm->config.stop_grace_s * 1000,
		     on_gateway_stopped, dm);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct daemon *dm = s->data;

	if (dm->stopping++) {
		log_warn("serve", "second signal: exiting now");
		exit(1);
	}
	log_info("serve", "signal %d: stopping instances and exiting", signum);
	close_modules(dm);
}

/* SIGHUP: loads the certificates again (for new connections); a pair
 * that does not load keeps the one in use. */
static void reload_tls(struct daemon *dm)
{
	const struct config_tls *t[2] = { &dm->config.tls,
					  &dm->config.gateway_tls };
	struct tls_ctx *ctx[2] = { dm->api_tls, dm->gateway_tls };
	const char *what[2] = { "the API", "the gateway" };
	char diag[512];

	for (int i = 0; i < 2; i++) {
		if (ctx[i] == NULL) {
			if (t[i]->cert_file[0] != '\0')
				log_warn("serve", "SIGHUP: %s turns to TLS only "
					 "at the next start", what[i]);
			continue;
		}
		if (t[i]->cert_file[0] == '\0') {
			log_warn("serve", "SIGHUP: %s stays on TLS until the "
				 "next start", what[i]);
			continue;
		}
		if (tls_ctx_reload(ctx[i], t[i]->cert_file, t[i]->key_file,
				   diag, sizeof(diag)) != 0)
			log_error("serve", "SIGHUP: the certificate of %s was "
				  "not reloaded, the one in use stays: %s",
				  what[i], diag);
		else
			log_info("serve", "SIGHUP: the certificate of %s "
				 "reloaded from %s (for new connections)",
				 what[i], t[i]->cert_file);
	}
}

/* SIGHUP: reads the configuration file again (see reload.h). */
/* A request waits at the gateway for a deployment at zero: start one
 * instance now. */
static void on_cold_start(void *arg, const char *deployment_id)
{
	struct daemon *dm = arg;
	struct fault f = { 0 };

	if (dm->deploy == NULL || dm->stopping)
		return;
	if (deploy_wake(dm->deploy, deployment_id, &f) != 0)
		log_warn("serve", "cannot start %s for held requests: %s",
			 deployment_id, f.message);
	else
		log_info("serve", "request held for %s: starting an "
			 "instance", deployment_id);
}

/* The gateway's hold limits from the configuration, and its cold-start
 * callback. */
static void gateway_hold_from_config(struct daemon *dm)
{
	const struct config *c = &dm->config;
	struct gateway_hold h = {
		.max_requests = c->hold_requests,
		.max_requests_total = c->hold_requests_total,
		.max_bytes = (uint64_t)c->hold_mb << 20,
		.max_bytes_total = (uint64_t)c->hold_mb_total << 20,
		.timeout_ms = (uint64_t)c->hold_timeout_s * 1000,
	};

	gateway_set_hold(dm->gateway, &h);
	gateway_set_cold_start(dm->gateway, on_cold_start, dm);
}

static void on_sighup(uv_signal_t *s, int signum)
{
	struct daemon *dm = s->data;
	char applied[512], kept[512], diag[512];
	int was_logging = dm->config.access_log;

	(void)signum;
	if (dm->stopping)
		return;
	if (dm->config_path == NULL) {
		log_warn("serve", "SIGHUP: no configuration file (--config) "
			 "to read again");
		return;
	}
	sdnotify_reloading(dm->sdnotify);
	if (reload_config(dm->config_path, &dm->file_config, &dm->config,
			  applied, sizeof(applied), kept, sizeof(kept), diag,
			  sizeof(diag)) != 0) {
		log_error("serve", "SIGHUP: configuration not reloaded, the "
			  "running one stays: %s", diag);
	} else {
		log_info("serve", "SIGHUP: configuration reloaded from %s; "
			 "changed: %s", dm->config_path, applied);
		if (kept[0] != '\0')
			log_warn("serve", "SIGHUP: %s change only at the next "
				 "start; the running values stay", kept);
		gateway_hold_from_config(dm);
		reload_tls(dm);
		if (dm->config.access_log != was_logging)
			gateway_set_access_log(dm->gateway,
					       dm->config.access_log
						       ? logging_access
						       : NULL,
					       dm->logging);
	}
	sdnotify_ready(dm->sdnotify, "serving");
}

static int parse_args(struct daemon *dm, int argc, char **argv,
		      const char **config_path)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "gateway", required_argument, NULL, 'g' },
		{ "data", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "insecure-listen", no_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen = NULL, *gw = NULL;
	int ch, insecure = 0;
	char diag[512];

	*config_path = NULL;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen = optarg; break;
		case 'g': gw = optarg; break;
		case 'd':
			free(dm->data_dir);
			dm->data_dir = xstrdup(optarg);
			break;
		case 'c': *config_path = optarg; break;
		case 'i': insecure = 1; break;
		case 'v':
			if (log_set_level(optarg) != 0) {
				fprintf(stderr, "mdscale: --log-level: one of "
					"error, warn, info, debug\n");
				return 2;
			}
			break;
		case 'f':
			if (strcmp(optarg, "text") != 0 &&
			    strcmp(optarg, "json") != 0) {
				fprintf(stderr, "mdscale: --log-format: text "
					"or json, not '%s'\n", optarg);
				return 2;
			}
			dm->log_json = strcmp(optarg, "json") == 0;
			break;
		case 'h':
			serve_help(stdout);
			exit(0);
		default:
			serve_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mdscale: serve: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	if (*config_path != NULL &&
	    config_load(*config_path, &dm->config, diag, sizeof(diag)) != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		return 1;
	}
	dm->file_config = dm->config;
	if (listen != NULL &&
	    config_parse_addr(listen, dm->config.listen_host,
			      sizeof(dm->config.listen_host),
			      &dm->config.listen_port) != 0) {
		fprintf(stderr, "mdscale: --listen: expected ADDR:PORT, got "
			"'%s'\n", listen);
		return 2;
	}
	if (gw != NULL &&
	    config_parse_addr(gw, dm->config.gateway_host,
			      sizeof(dm->config.gateway_host),
			      &dm->config.gateway_port) != 0) {
		fprintf(stderr, "mdscale: --gateway: expected ADDR:PORT, got "
			"'%s'\n", gw);
		return 2;
	}
	if (insecure)
		dm->config.insecure_listen = 1;
	return 0;
}

/*
 * Plain HTTP on an address others can reach is refused unless the user
 * said they mean it (insecureListen, --insecure-listen); then it is only
 * a warning, logged at every start. Checked before anything listens.
 * Returns 0, or 1 after saying why on stderr.
 */
static int check_listen(const struct config *cfg, int warn)
{
	struct {
		const char *what, *host, *tls_key;
		int port, has_tls;
	} l[2] = {
		{ "the API", cfg->listen_host, "tls", cfg->listen_port,
		  cfg->tls.cert_file[0] != '\0' },
		{ "the gateway", cfg->gateway_host, "gatewayTls",
		  cfg->gateway_port, cfg->gateway_tls.cert_file[0] != '\0' },
	};

	for (int i = 0; i < 2; i++) {
		if (l[i].has_tls || config_is_loopback(l[i].host))
			continue;
		if (!cfg->insecure_listen) {
			fprintf(stderr, "mdscale: %s would listen on %s:%d, not "
				"a loopback address, without TLS: set %s "
				"{certFile, keyFile} in the configuration, "
				"or pass --insecure-listen if plain HTTP "
				"there is meant\n", l[i].what, l[i].host,
				l[i].port, l[i].tls_key);
			return 1;
		}
		if (warn)
			log_warn("serve", "%s listens on %s:%d without TLS "
				 "(--insecure-listen): anyone who can reach "
				 "it can read and change what it carries",
				 l[i].what, l[i].host, l[i].port);
	}
	return 0;
}

/* Warns about a file the daemon reads again on SIGHUP but no longer can,
 * now that it has dropped root's capabilities. */
static void warn_unreadable(const char *what, const char *path)
{
	if (path == NULL || path[0] == '\0' ||
	    faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) == 0)
		return;
	log_warn("serve", "%s %s cannot be read without the capabilities "
		 "dropped (%s): SIGHUP will not reload it; make it and its "
		 "directories open to root as owner, or to others",
		 what, path, strerror(errno));
}

/* Drops root's capabilities (see privs.h), with flags for privs_drop(),
 * then checks that the data directory is still open to the daemon and,
 * at the last drop, warns about files SIGHUP could not read again.
 * Returns 0, or 1 after saying why on stderr. */
static int drop_root(struct daemon *dm, unsigned int flags)
{
	const struct config_tls *t[2] = { &dm->config.tls,
					  &dm->config.gateway_tls };
	char diag[512];

	if (privs_drop(flags, diag, sizeof(diag)) != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		return 1;
	}
	if (geteuid() != 0)
		return 0;
	if (faccessat(AT_FDCWD, dm->data_dir, R_OK | W_OK | X_OK,
		      AT_EACCESS) != 0) {
		fprintf(stderr, "mdscale: the data directory %s is not open to "
			"root without CAP_DAC_OVERRIDE (%s): make root its "
			"owner (chown -R root: %s), and let root enter its "
			"parents\n", dm->data_dir, strerror(errno),
			dm->data_dir);
		return 1;
	}
	if (flags & PRIVS_KEEP_BIND)
		return 0;
	warn_unreadable("the configuration file", dm->config_path);
	for (int i = 0; i < 2; i++) {
		warn_unreadable("the certificate", t[i]->cert_file);
		warn_unreadable("the key", t[i]->key_file);
	}
	return 0;
}

/* Loads the certificates of the servers that have one. Returns 0, or 1
 * after saying why on stderr. */
static int open_tls(struct daemon *dm)
{
	const struct config_tls *t[2] = { &dm->config.tls,
					  &dm->config.gateway_tls };
	struct tls_ctx **ctx[2] = { &dm->api_tls, &dm->gateway_tls };
	const char *key[2] = { "tls", "gatewayTls" };
	char diag[512];

	for (int i = 0; i < 2; i++) {
		if (t[i]->cert_file[0] == '\0')
			continue;
		if (tls_ctx_new(t[i]->cert_file, t[i]->key_file, ctx[i], diag,
				sizeof(diag)) != 0) {
			fprintf(stderr, "mdscale: %s: %s\n", key[i], diag);
			return 1;
		}
	}
	return 0;
}

int serve_main(int argc, char **argv)
{
	struct daemon *dm = xcalloc(1, sizeof(*dm));
	struct deploy_env env;
	struct monitoring_env menv;
	struct autoscale_env aenv;
	struct functions_env fenv;
	struct notifications_env nenv;
	struct oci_receiver_env renv;
	const char *config_path;
	char diag[512], *db;
	ssize_t n;
	size_t nbackends;
	int rc, status = 1;

	/* Whatever the daemon inherited above stderr (a descriptor its
	 * parent left open) stays the daemon's: no child gets it. Failure
	 * (a kernel before 5.11) leaves only the launcher's close. */
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

	config_defaults(&dm->config);
	dm->lock_fd = -1;
	dm->data_dir = paths_default_data_dir();
	rc = parse_args(dm, argc, argv, &config_path);
	if (rc != 0) {
		free(dm->data_dir);
		free(dm);
		return rc;
	}
	dm->config_path = config_path;
	if (check_listen(&dm->config, 0) != 0 || open_tls(dm) != 0) {
		tls_ctx_free(dm->api_tls);
		tls_ctx_free(dm->gateway_tls);
		free(dm->data_dir);
		free(dm);
		return 1;
	}
	dm->webhook_seen = whsig_seen_new();
	log_stderr_detect(dm->log_json);
	signal(SIGPIPE, SIG_IGN);
	n = readlink("/proc/self/exe", dm->self_exe, sizeof(dm->self_exe) - 1);
	if (n <= 0) {
		fprintf(stderr, "mdscale: cannot find my own binary\n");
		goto out;
	}
	dm->self_exe[n] = '\0';
	if (check_run_as_user(&dm->config) != 0)
		goto out;
	/* Everything the daemon creates is private to its user: the data
	 * directory holds the token, deployment environments and logs.
	 * Instances get the usual umask back (serve_instance_exec). */
	umask(077);
	if (datadir_open(dm->data_dir, &dm->lock_fd, diag, sizeof(diag)) != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out;
	}
	if (load_token(dm, diag, sizeof(diag)) != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out;
	}
	db = xasprintf("%s/mdscale.db", dm->data_dir);
	/* SQLite gives the -wal and -shm files the database's mode. */
	rc = datadir_private_file(db, diag, sizeof(diag));
	if (rc == 0)
		rc = store_open(db, &dm->store, diag, sizeof(diag));
	free(db);
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out;
	}
	rc = tokens_open(dm->store, dm->token, &dm->tokens, diag, sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out;
	}
	/* The receivers' accepted ids outlive the daemon: a delivery taken
	 * before a restart stays a replay after it, within the window. */
	rc = whsig_seen_load(dm->webhook_seen, dm->store, (int64_t)time(NULL),
			     dm->config.receiver.tolerance_s);
	if (rc != 0) {
		fprintf(stderr, "mdscale: cannot read the accepted webhook "
			"ids: %s\n", mds_strerror(rc));
		goto out;
	}
	cgroup_detect("/sys/fs/cgroup", &dm->cgroups, diag, sizeof(diag));
	if (cgroup_version(dm->cgroups) == CGROUP_NONE)
		log_warn("serve", "no cgroups: instances run without limits "
			 "(%s)", diag);
	uv_loop_init(&dm->loop);
	dm->sdnotify = sdnotify_start(&dm->loop);
	rc = logging_open(&(struct logging_env){ .loop = &dm->loop,
						 .data_dir = dm->data_dir,
						 .config = &dm->config },
			  &dm->logging, diag, sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out_loop;
	}
	check_listen(&dm->config, 1); /* the warnings, now that they log */
	httpc_global_init();
	if (httpc_new(&dm->loop, &dm->httpc) != 0) {
		fprintf(stderr, "mdscale: cannot start the HTTP client\n");
		goto out_loop;
	}
	rc = gateway_start_threads(&dm->loop, dm->config.gateway_host,
				   dm->config.gateway_port,
				   dm->config.gateway_threads, &dm->gateway,
				   diag, sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: gateway: %s\n", diag);
		goto out_loop;
	}
	gateway_set_tls(dm->gateway, dm->gateway_tls);
	snprintf(dm->gateway_url, sizeof(dm->gateway_url), "%s://%s:%d",
		 dm->gateway_tls != NULL ? "https" : "http",
		 dm->config.gateway_host, gateway_port(dm->gateway));
	if (dm->config.access_log)
		gateway_set_access_log(dm->gateway, logging_access,
				       dm->logging);
	gateway_hold_from_config(dm);
	rc = backend_local_new(
		&(struct backend_local_env){
			.loop = &dm->loop, .cgroups = dm->cgroups,
			.httpc = dm->httpc, .config = &dm->config,
			.data_dir = dm->data_dir, .self_exe = dm->self_exe,
			.instance_output = logging_instance,
			.instance_output_arg = dm->logging },
		&dm->local, diag, sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out_loop;
	}
	nbackends = open_kubernetes(dm);
	if (dm->config.oci.enabled) {
		rc = oci_stack_open(&dm->loop, dm->httpc, &dm->config.oci,
				    &dm->oci, diag, sizeof(diag));
		if (rc != 0) {
			fprintf(stderr, "mdscale: oci: %s\n", diag);
			goto out_loop;
		}
		dm->backends[nbackends++] = oci_stack_backend(dm->oci);
	} else {
		backend_missing(dm, "oci", "the configuration has no \"oci\" "
			       "section");
	}
	/* What needs root's full powers is done: files read, the data
	 * directory made, the gateway bound. The API binds later. Before
	 * any instance starts, so launchers get no more than is kept. */
	if (drop_root(dm, PRIVS_KEEP_BIND) != 0)
		goto out_loop;
	/* One pool of instanceUids for deployments, functions and COMMAND
	 * subscriptions. Functions and subscriptions load first, so a uid
	 * that a deployment stored without one gets at its recovery is none
	 * of theirs; those of them stored without one get theirs after the
	 * deployments, when every holder is known. */
	dm->uids = uidpool_from_config(&dm->config);
	fenv = (struct functions_env){
		.loop = &dm->loop, .store = dm->store,
		.data_dir = dm->data_dir,
		.run_as_user = dm->config.run_as_user, .uids = dm->uids,
	};
	rc = functions_open(&fenv, &dm->functions, diag, sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out_loop;
	}
	nenv = (struct notifications_env){
		.loop = &dm->loop, .store = dm->store, .httpc = dm->httpc,
		.functions = dm->functions, .data_dir = dm->data_dir,
		.uids = dm->uids,
	};
	rc = notifications_open(&nenv, &dm->notifications, diag,
				sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out_loop;
	}
	env = (struct deploy_env){
		.loop = &dm->loop, .store = dm->store,
		.gateway = dm->gateway, .config = &dm->config,
		.gateway_url = dm->gateway_url,
		.backends = dm->backends, .nbackends = nbackends,
		.missing = dm->missing, .nmissing = dm->nmissing,
		.uids = dm->uids,
	};
	rc = deploy_open(&env, &dm->deploy, diag, sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out_loop;
	}
	functions_settle_uids(dm->functions);
	notifications_settle_uids(dm->notifications);
	/* Confirmation links are fetched with the CAs of the oci section
	 * (oci.caFile), else the system's. */
	renv = (struct oci_receiver_env){
		.loop = &dm->loop, .store = dm->store, .httpc = dm->httpc,
		.notifications = dm->notifications,
		.ca_file = dm->config.oci.ca_file[0] ? dm->config.oci.ca_file
						     : NULL,
	};
	rc = oci_receiver_open(&renv, &dm->oci_receiver, diag, sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out_loop;
	}
	snprintf(dm->api_url, sizeof(dm->api_url), "%s://%s:%d",
		 dm->api_tls != NULL ? "https" : "http",
		 dm->config.listen_host, dm->config.listen_port);
	menv = (struct monitoring_env){
		.loop = &dm->loop, .store = dm->store,
		.cgroups = dm->cgroups, .gateway = dm->gateway,
		.deploy = dm->deploy, .data_dir = dm->data_dir,
		.api_url = dm->api_url, .sample_ms = dm->config.sample_ms,
		.eval_ms = dm->config.eval_ms,
		.max_series = dm->config.metrics_max_series,
		.max_string_bytes = (size_t)dm->config.metrics_max_string_mb
				    << 20,
	};
	rc = monitoring_open(&menv, &dm->monitoring, diag, sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out_loop;
	}
	monitoring_set_publisher(dm->monitoring, publish_alarm,
				 notifications_topic_exists,
				 dm->notifications);
	aenv = (struct autoscale_env){
		.store = dm->store, .deploy = dm->deploy,
		.monitoring = dm->monitoring,
		.notifications = dm->notifications,
		.functions = dm->functions, .config = &dm->config,
	};
	if (dm->oci != NULL)
		aenv.platform_alarms = (struct autoscale_platform_alarms){
			.backend = "oci", .ensure = oci_stack_low_alarm,
			.remove = oci_stack_delete_alarm, .arg = dm->oci,
		};
	rc = autoscale_open(&aenv, &dm->autoscale, diag, sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		goto out_loop;
	}
	dm->autoscale_idle = autoscale_idle_open(&dm->loop, dm->autoscale,
						 dm->deploy, dm->gateway);
	dm->autoscale_rule = autoscale_rule_open(&dm->loop, dm->autoscale,
						 dm->deploy, dm->gateway,
						 dm->monitoring);
	dm->alertmanager = alertmanager_open(&(struct alertmanager_env){
		.store = dm->store, .notifications = dm->notifications });
	dm->api = (struct api){
		.deploy = dm->deploy, .monitoring = dm->monitoring,
		.notifications = dm->notifications,
		.oci_receiver = dm->oci_receiver,
		.functions = dm->functions,
		.autoscale = dm->autoscale,
		.logging = dm->logging,
		.config = &dm->config,
		.tokens = dm->tokens,
		.cgroup_name = cgroup_version_name(dm->cgroups),
		.gateway = dm->gateway,
		.alertmanager = dm->alertmanager,
		.start_time_s = (double)time(NULL),
		.webhook_seen = dm->webhook_seen,
		.loop = &dm->loop,
	};
	dm->looplag = looplag_start(&dm->loop);
	dm->api.looplag = dm->looplag;
	rc = http_server_start(&dm->loop, dm->config.listen_host,
			       dm->config.listen_port, API_MAX_BODY,
			       api_handle, &dm->api, &dm->api_srv, diag,
			       sizeof(diag));
	if (rc != 0) {
		fprintf(stderr, "mdscale: API: %s\n", diag);
		goto out_loop;
	}
	http_server_set_tls(dm->api_srv, dm->api_tls);
	listen_local(dm);
	if (drop_root(dm, 0) != 0)
		goto out_loop;
	uv_signal_init(&dm->loop, &dm->sigint);
	uv_signal_init(&dm->loop, &dm->sigterm);
	dm->sigint.data = dm->sigterm.data = dm;
	uv_signal_init(&dm->loop, &dm->sighup);
	dm->sighup.data = dm;
	uv_signal_start(&dm->sigint, on_signal, SIGINT);
	uv_signal_start(&dm->sigterm, on_signal, SIGTERM);
	uv_signal_start(&dm->sighup, on_sighup, SIGHUP);
	dm->signals_on = 1;
	/* Routes are restored and monitoring listens: requests may come. */
	gateway_serve(dm->gateway);
	log_info("serve", "mdscale %s: API %s://%s:%d, gateway %s, data %s, "
		 "cgroups %s", MDS_VERSION,
		 dm->api_tls != NULL ? "https" : "http", dm->config.listen_host,
		 http_server_port(dm->api_srv), dm->gateway_url, dm->data_dir,
		 cgroup_version_name(dm->cgroups));
	sdnotify_ready(dm->sdnotify, "serving");
	uv_run(&dm->loop, UV_RUN_DEFAULT);
	status = 0;
	goto out_close;
out_loop:
	/* Start-up failed with the loop running: stop what was started. */
	close_modules(dm);
	uv_run(&dm->loop, UV_RUN_DEFAULT);
out_close:
	if (uv_loop_close(&dm->loop) != 0)
		log_debug("serve", "loop closed with handles open");
	httpc_global_cleanup();
out:
	tokens_free(dm->tokens);
	store_close(dm->store);
	cgroup_sys_free(dm->cgroups);
	whsig_seen_free(dm->webhook_seen);
	uidpool_free(dm->uids);
	tls_ctx_free(dm->api_tls);
	tls_ctx_free(dm->gateway_tls);
	if (dm->lock_fd >= 0)
		close(dm->lock_fd);
	free(dm->data_dir);
	free(dm);
	return status;
}

/* Reads "UID:GID" (decimal, above 0) into *uid and *gid; false when user
 * is not of that form (a user name). */
static bool numeric_ids(const char *user, uid_t *uid, gid_t *gid)
{
	unsigned long u, g;
	char *end;

	if (user[0] < '0' || user[0] > '9')
		return false;
	errno = 0;
	u = strtoul(user, &end, 10);
	if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	g = strtoul(end + 1, &end, 10);
	if (errno != 0 || *end != '\0' || u == 0 || g == 0 ||
	    u > IDRANGE_ID_MAX || g > IDRANGE_ID_MAX)
		return false;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return true;
}

/* Switches for good to user: a name (its group alone, its HOME), or
 * "UID:GID", a deployment's own ids (instanceUids), which no user of the
 * system has: that group alone, HOME "/". Returns 0, or -1 after saying
 * why on stderr. */
static int drop_privileges(const char *user)
{
	struct passwd *pw = NULL;
	const char *home = "/";
	uid_t uid;
	gid_t gid;

	if (!numeric_ids(user, &uid, &gid)) {
		pw = getpwnam(user);
		if (pw == NULL) {
			fprintf(stderr, "mdscale: cannot run as user '%s': no "
				"such user (create it: adduser --system "
				"--group %s)\n", user, user);
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		home = pw->pw_dir;
	}
	if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		fprintf(stderr, "mdscale: cannot run as user '%s': %s\n", user,
			strerror(errno));
		return -1;
	}
	/* No way back: a process that can become root again has not
	 * dropped anything. */
	if (uid != 0 && setuid(0) == 0) {
		fprintf(stderr, "mdscale: could regain root after switching "
			"to '%s'; not starting\n", user);
		return -1;
	}
	setenv("HOME", home, 1);
	return 0;
}

/* Closes every descriptor above stderr that the launcher inherited. */
static void close_inherited(void)
{
	if (close_range(3, ~0U, 0) == 0)
		return;
	for (int fd = 3; fd < 65536; fd++)
		close(fd);
}

int serve_instance_exec(int argc, char **argv)
{
	char diag[256];
	int i;

	/* argv: __instance PROCS USER -- PROGRAM ARGS... (USER: a name,
	 * "UID:GID", or "-" to stay who we are). The cgroup is
	 * joined first, while the launcher may still write its files, then
	 * the user is switched to, then no exec may give more (no_new_privs),
	 * then nothing inherited is left open. */
	if (argc < 5 || strcmp(argv[3], "--") != 0) {
		fputs("mdscale: __instance: usage: __instance PROCS USER -- "
		      "PROGRAM [ARGS...]\n", stderr);
		return 127;
	}
	if (strcmp(argv[1], "-") != 0 && cgroup_join(argv[1]) != 0) {
		fprintf(stderr, "mdscale: cannot join cgroup %s: %s\n",
			argv[1], strerror(errno));
		return 127;
	}
	if (strcmp(argv[2], "-") != 0 && drop_privileges(argv[2]) != 0)
		return 127;
	if (privs_seal_exec(diag, sizeof(diag)) != 0) {
		fprintf(stderr, "mdscale: %s\n", diag);
		return 127;
	}
	close_inherited();
	umask(022); /* the daemon's own is 077 */
	i = 4;
	execvp(argv[i], argv + i);
	fprintf(stderr, "mdscale: cannot run '%s': %s\n", argv[i],
		strerror(errno));
	return 127;
}
