/*
 * datascience.c - Data Science documents as C structs; see datascience.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "oci/datascience.h"
#include "util/err.h"

static const char *const md_states[] = {
	"CREATING", "ACTIVE",  "DELETING",	  "FAILED",
	"INACTIVE", "UPDATING", "DELETED", "NEEDS_ATTENTION",
};

int oci_md_state_known(const char *s)
{
	for (size_t i = 0; i < sizeof(md_states) / sizeof(md_states[0]); i++)
		if (strcmp(md_states[i], s) == 0)
			return 1;
	return 0;
}

/* Copies the string at path (dot-separated keys) of root into out. */
static int get_str(json_t *root, const char *path, char *out, size_t outsz)
{
	char key[64];
	const char *p = path;
	json_t *v = root;

	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n >= sizeof(key))
			return -1;
		memcpy(key, p, n);
		key[n] = '\0';
		v = json_is_object(v) ? json_object_get(v, key) : NULL;
		p += dot ? n + 1 : n;
	}
	if (!json_is_string(v) || json_string_length(v) >= outsz)
		return -1;
	snprintf(out, outsz, "%s", json_string_value(v));
	return 0;
}

static json_t *get_obj(json_t *o, const char *key)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_object(v) ? v : NULL;
}

int oci_md_parse(const char *json, size_t len, struct oci_md *out,
		 char *diag, size_t diagsz)
{
	json_t *root, *mcd, *sp, *ic, *sc, *n;
	const char *missing = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	root = json_loadb(json, len, 0, NULL);
	if (!json_is_object(root)) {
		mds_diag(diag, diagsz, "model deployment: the body is not a "
			 "JSON object");
		json_decref(root);
		return MDS_E_PARSE;
	}
	mcd = get_obj(get_obj(root, "modelDeploymentConfigurationDetails"),
		      "modelConfigurationDetails");
	sp = get_obj(mcd, "scalingPolicy");
	ic = get_obj(mcd, "instanceConfiguration");
	sc = get_obj(ic, "modelDeploymentInstanceShapeConfigDetails");
	if (get_str(root, "id", out->id, sizeof(out->id)))
		missing = "id";
	else if (get_str(root, "lifecycleState", out->state,
			 sizeof(out->state)))
		missing = "lifecycleState";
	else if (get_str(mcd, "modelId", out->model_id,
			 sizeof(out->model_id)))
		missing = "modelConfigurationDetails.modelId";
	else if (get_str(ic, "instanceShapeName", out->shape,
			 sizeof(out->shape)))
		missing = "instanceConfiguration.instanceShapeName";
	n = sp ? json_object_get(sp, "instanceCount") : NULL;
	if (!missing && (!json_is_integer(n) || json_integer_value(n) < 1 ||
			 json_integer_value(n) > UINT32_MAX))
		missing = "scalingPolicy.instanceCount (FIXED_SIZE)";
	if (missing) {
		mds_diag(diag, diagsz, "model deployment: no %s in the answer",
			 missing);
		rc = MDS_E_PARSE;
		goto out;
	}
	out->count = (uint32_t)json_integer_value(n);
	(void)get_str(root, "displayName", out->display_name,
		      sizeof(out->display_name));
	(void)get_str(root, "compartmentId", out->compartment_id,
		      sizeof(out->compartment_id));
	if (sc) {
		out->ocpus = json_number_value(json_object_get(sc, "ocpus"));
		out->memory_gb =
			json_number_value(json_object_get(sc, "memoryInGBs"));
	}
out:
	json_decref(root);
	return rc;
}

char *oci_md_update_body(const char *model_id, const struct oci_md_change *ch)
{
	json_t *mc = json_pack("{s:s}", "modelId", model_id);
	json_t *root;
	char *s;

	if (ch->count > 0)
		json_object_set_new(mc, "scalingPolicy",
				    json_pack("{s:s,s:I}", "policyType",
					      "FIXED_SIZE", "instanceCount",
					      (json_int_t)ch->count));
	if (ch->shape) {
		json_t *ic = json_pack("{s:s}", "instanceShapeName", ch->shape);

		if (ch->ocpus > 0)
			json_object_set_new(
				ic, "modelDeploymentInstanceShapeConfigDetails",
				json_pack("{s:f,s:f}", "ocpus", ch->ocpus,
					  "memoryInGBs", ch->memory_gb));
		json_object_set_new(mc, "instanceConfiguration", ic);
	}
	root = json_pack("{s:{s:s,s:o}}", "modelDeploymentConfigurationDetails",
			 "deploymentType", "SINGLE_MODEL",
			 "modelConfigurationDetails", mc);
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		abort(); /* jansson fails only when out of memory */
	return s;
}

int oci_wr_parse(const char *json, size_t len, struct oci_wr *out,
		 char *diag, size_t diagsz)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	json_t *pc;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(root) ||
	    get_str(root, "status", out->status, sizeof(out->status))) {
		mds_diag(diag, diagsz, "work request: no status in the answer");
		rc = MDS_E_PARSE;
		goto out;
	}
	pc = json_object_get(root, "percentComplete");
	if (json_is_number(pc))
		out->percent = (int)lround(json_number_value(pc));
	if (out->percent < 0)
		out->percent = 0;
	if (out->percent > 100)
		out->percent = 100;
out:
	json_decref(root);
	return rc;
}

void oci_error_text(const char *json, size_t len, char *out, size_t outsz)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	char code[64] = "", msg[512] = "";

	(void)get_str(root, "code", code, sizeof(code));
	(void)get_str(root, "message", msg, sizeof(msg));
	if (code[0] || msg[0])
		snprintf(out, outsz, "%s%s%s", code, code[0] ? ": " : "", msg);
	else if (outsz)
		out[0] = '\0';
	json_decref(root);
}
