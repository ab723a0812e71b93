/* config.c - the configuration file; see config.h and docs/config.md. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "util/err.h"

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
	cfg->listen_port = 7070;
	snprintf(cfg->gateway_host, sizeof(cfg->gateway_host), "127.0.0.1");
	cfg->gateway_port = 8080;
	shape_ladder_default(&cfg->shapes);
	snprintf(cfg->default_shape, sizeof(cfg->default_shape), "local.s");
	cfg->max_instances = 16;
	cfg->max_deployments = 100;
	cfg->ready_timeout_s = 60;
	cfg->drain_timeout_s = 30;
	cfg->stop_grace_s = 10;
	cfg->health_interval_ms = 1000;
	cfg->max_start_attempts = 3;
	cfg->sample_ms = 1000;
	cfg->eval_ms = 1000;
	cfg->log_max_file_mb = 10;
	cfg->log_max_files = 5;
	cfg->log_retention_days = 7;
	cfg->access_log = 0;
}

int config_parse_addr(const char *s, char *host, size_t hostsz, int *port)
{
	const char *colon = strrchr(s, ':');
	const char *p = colon ? colon + 1 : s;
	char *end;
	long v;

	errno = 0;
	v = strtol(p, &end, 10);
	if (*p == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 65535)
		return MDS_E_INVAL;
	if (colon != NULL && colon != s) {
		size_t n = (size_t)(colon - s);

		if (s[0] == '[' && colon[-1] == ']') { /* [::1]:7070 */
			s++;
			n -= 2;
		}
		if (n + 1 > hostsz)
			return MDS_E_INVAL;
		memcpy(host, s, n);
		host[n] = '\0';
	}
	*port = (int)v;
	return 0;
}

/* Reads an integer key within [lo, hi] if present. */
static int get_uint(json_t *obj, const char *key, uint32_t lo, uint32_t hi,
		    uint32_t *out, const char *path, char *diag, size_t diagsz)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi) {
		mds_diag(diag, diagsz, "%s: %s must be an integer from %u to %u",
			 path, key, lo, hi);
		return MDS_E_INVAL;
	}
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int get_addr(json_t *obj, const char *key, char *host, size_t hostsz,
		    int *port, const char *path, char *diag, size_t diagsz)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return 0;
	if (!json_is_string(v) ||
	    config_parse_addr(json_string_value(v), host, hostsz, port) != 0) {
		mds_diag(diag, diagsz, "%s: %s must be \"HOST:PORT\"", path, key);
		return MDS_E_INVAL;
	}
	return 0;
}

static int load_shapes(json_t *arr, struct config *cfg, const char *path,
		       char *diag, size_t diagsz)
{
	char why[256];
	size_t i;
	json_t *s;

	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		mds_diag(diag, diagsz, "%s: shapes must be a non-empty array",
			 path);
		return MDS_E_INVAL;
	}
	shape_ladder_init(&cfg->shapes);
	json_array_foreach(arr, i, s) {
		json_t *name = json_object_get(s, "name");
		json_t *cpus = json_object_get(s, "cpus");
		json_t *mem = json_object_get(s, "memoryInMBs");
		int rc;

		if (!json_is_object(s) || !json_is_string(name) ||
		    !json_is_number(cpus) || !json_is_integer(mem) ||
		    json_object_size(s) != 3 || json_number_value(cpus) <= 0 ||
		    json_number_value(cpus) > 1024 ||
		    json_integer_value(mem) <= 0 ||
		    json_integer_value(mem) > (1 << 24)) {
			mds_diag(diag, diagsz,
				 "%s: shapes[%zu] must be {\"name\": string, "
				 "\"cpus\": number > 0, \"memoryInMBs\": "
				 "integer > 0}", path, i);
			return MDS_E_INVAL;
		}
		rc = shape_ladder_add(&cfg->shapes, json_string_value(name),
				      (uint32_t)(json_number_value(cpus) * 1000 +
						 0.5),
				      (uint64_t)json_integer_value(mem) << 20,
				      why, sizeof(why));
		if (rc != 0) {
			mds_diag(diag, diagsz, "%s: shapes[%zu]: %s", path, i,
				 why);
			return rc;
		}
	}
	return 0;
}

int config_load(const char *path, struct config *cfg, char *diag,
		size_t diagsz)
{
	static const char *const known[] = {
		"listen", "gateway", "shapes", "defaultShape",
		"maxInstancesPerDeployment", "maxDeployments",
		"readyTimeoutSeconds", "drainTimeoutSeconds",
		"stopGraceSeconds", "healthIntervalMillis",
		"maxStartAttempts", "sampleIntervalMillis",
		"evalIntervalMillis", "logMaxFileMB", "logMaxFiles",
		"logRetentionDays", "accessLog",
	};
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	int rc = MDS_E_INVAL;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		mds_diag(diag, diagsz, "%s:%d:%d: %s", path, jerr.line,
			 jerr.column, jerr.text);
		return jerr.line <= 0 && jerr.position == 0 ? MDS_E_IO
							    : MDS_E_PARSE;
	}
	if (!json_is_object(root)) {
		mds_diag(diag, diagsz, "%s: the configuration must be a JSON "
			 "object", path);
		goto out;
	}
	json_object_foreach(root, key, v) {
		size_t k = 0;

		while (k < sizeof(known) / sizeof(known[0]) &&
		       strcmp(known[k], key) != 0)
			k++;
		if (k == sizeof(known) / sizeof(known[0])) {
			mds_diag(diag, diagsz, "%s: unknown key '%s'", path,
				 key);
			goto out;
		}
	}
	if (get_addr(root, "listen", cfg->listen_host,
		     sizeof(cfg->listen_host), &cfg->listen_port, path, diag,
		     diagsz) != 0 ||
	    get_addr(root, "gateway", cfg->gateway_host,
		     sizeof(cfg->gateway_host), &cfg->gateway_port, path, diag,
		     diagsz) != 0)
		goto out;
	v = json_object_get(root, "shapes");
	if (v != NULL && load_shapes(v, cfg, path, diag, diagsz) != 0)
		goto out;
	v = json_object_get(root, "defaultShape");
	if (v != NULL) {
		if (!json_is_string(v) ||
		    json_string_length(v) >= sizeof(cfg->default_shape)) {
			mds_diag(diag, diagsz, "%s: defaultShape must be a "
				 "shape name", path);
			goto out;
		}
		snprintf(cfg->default_shape, sizeof(cfg->default_shape), "%s",
			 json_string_value(v));
	}
	if (shape_find(&cfg->shapes, cfg->default_shape) == NULL)
		snprintf(cfg->default_shape, sizeof(cfg->default_shape), "%s",
			 cfg->shapes.v[0].name);
	if (v != NULL && strcmp(json_string_value(v), cfg->default_shape) != 0) {
		mds_diag(diag, diagsz, "%s: defaultShape '%s' is not in shapes",
			 path, json_string_value(v));
		goto out;
	}
	if (get_uint(root, "maxInstancesPerDeployment", 1, 256,
		     &cfg->max_instances, path, diag, diagsz) != 0 ||
	    get_uint(root, "maxDeployments", 1, 10000, &cfg->max_deployments,
		     path, diag, diagsz) != 0 ||
	    get_uint(root, "readyTimeoutSeconds", 1, 3600,
		     &cfg->ready_timeout_s, path, diag, diagsz) != 0 ||
	    get_uint(root, "drainTimeoutSeconds", 0, 3600,
		     &cfg->drain_timeout_s, path, diag, diagsz) != 0 ||
	    get_uint(root, "stopGraceSeconds", 1, 600, &cfg->stop_grace_s,
		     path, diag, diagsz) != 0 ||
	    get_uint(root, "healthIntervalMillis", 100, 60000,
		     &cfg->health_interval_ms, path, diag, diagsz) != 0 ||
	    get_uint(root, "maxStartAttempts", 1, 100,
		     &cfg->max_start_attempts, path, diag, diagsz) != 0 ||
	    get_uint(root, "sampleIntervalMillis", 100, 60000,
		     &cfg->sample_ms, path, diag, diagsz) != 0 ||
	    get_uint(root, "evalIntervalMillis", 100, 60000, &cfg->eval_ms,
		     path, diag, diagsz) != 0 ||
	    get_uint(root, "logMaxFileMB", 1, 1024, &cfg->log_max_file_mb,
		     path, diag, diagsz) != 0 ||
	    get_uint(root, "logMaxFiles", 1, 100, &cfg->log_max_files, path,
		     diag, diagsz) != 0 ||
	    get_uint(root, "logRetentionDays", 0, 3650,
		     &cfg->log_retention_days, path, diag, diagsz) != 0)
		goto out;
	v = json_object_get(root, "accessLog");
	if (v != NULL) {
		if (!json_is_boolean(v)) {
			mds_diag(diag, diagsz, "%s: accessLog must be true or "
				 "false", path);
			goto out;
		}
		cfg->access_log = json_is_true(v);
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}
