"""The documented request shapes of the OCI APIs the stand-in serves, and
their check. Field lists and required fields are those of the OCI API
reference (the public OCI SDK models list the same): UpdateModelDeploymentDetails,
UpdateSingleModelDeploymentConfigurationDetails,
UpdateModelConfigurationDetails, InstanceConfiguration,
ModelDeploymentInstanceShapeConfigDetails, FixedSizeScalingPolicy,
CreateAlarmDetails, CreateTopicDetails, CreateSubscriptionDetails,
SummarizeMetricsDataDetails."""
import re

# -- Documented shapes ------------------------------------------------------
# A field is (type, required). Types: "string", "integer", "number",
# "boolean", "datetime", "map<string,string>", "map<string,object>",
# "list<string>", ("enum", [...]), ("list", SCHEMA), a schema name, or
# "opaque" (a documented object mdscale never sends; accepted unchecked).
# POLY names the discriminator of a polymorphic schema and its subtypes.

SHAPES = {
    "UpdateModelDeploymentDetails": {
        "displayName": ("string", False),
        "description": ("string", False),
        "modelDeploymentConfigurationDetails":
            ("UpdateModelDeploymentConfigurationDetails", False),
        "categoryLogDetails": ("opaque", False),
        "freeformTags": ("map<string,string>", False),
        "definedTags": ("map<string,object>", False),
    },
    "UpdateSingleModelDeploymentConfigurationDetails": {
        "deploymentType": (("enum", ["SINGLE_MODEL"]), True),
        "modelConfigurationDetails":
            ("UpdateModelConfigurationDetails", False),
        "environmentConfigurationDetails": ("opaque", False),
    },
    "UpdateModelConfigurationDetails": {
        "modelId": ("string", True),
        "instanceConfiguration": ("InstanceConfiguration", False),
        "scalingPolicy": ("ScalingPolicy", False),
        "bandwidthMbps": ("integer", False),
        "maximumBandwidthMbps": ("integer", False),
    },
    "InstanceConfiguration": {
        "instanceShapeName": ("string", True),
        "modelDeploymentInstanceShapeConfigDetails":
            ("ModelDeploymentInstanceShapeConfigDetails", False),
        "subnetId": ("string", False),
        "privateEndpointId": ("string", False),
        "networkAccessType": ("string", False),
    },
    "ModelDeploymentInstanceShapeConfigDetails": {
        "ocpus": ("number", False),
        "memoryInGBs": ("number", False),
        "cpuBaseline": (("enum", ["BASELINE_1_8", "BASELINE_1_2",
                                  "BASELINE_1_1"]), False),
    },
    "FixedSizeScalingPolicy": {
        "policyType": (("enum", ["FIXED_SIZE"]), True),
        "instanceCount": ("integer", True),
    },
    "CreateAlarmDetails": {
        "displayName": ("string", True),
        "compartmentId": ("string", True),
        "metricCompartmentId": ("string", True),
        "metricCompartmentIdInSubtree": ("boolean", False),
        "namespace": ("string", True),
        "resourceGroup": ("string", False),
        "query": ("string", True),
        "resolution": ("string", False),
        "pendingDuration": ("duration", False),
        "severity": (("enum", ["CRITICAL", "ERROR", "WARNING", "INFO"]), True),
        "body": ("string", False),
        "isNotificationsPerMetricDimensionEnabled": ("boolean", False),
        "messageFormat": (("enum", ["RAW", "PRETTY_JSON", "ONS_OPTIMIZED"]),
                          False),
        "destinations": ("list<string>", True),
        "repeatNotificationDuration": ("duration", False),
        "suppression": ("opaque", False),
        "isEnabled": ("boolean", True),
        "freeformTags": ("map<string,string>", False),
        "definedTags": ("map<string,object>", False),
        "overrides": ("opaque", False),
        "ruleName": ("string", False),
        "notificationVersion": ("string", False),
        "notificationTitle": ("string", False),
        "evaluationSlackDuration": ("duration", False),
        "alarmSummary": ("string", False),
    },
    "CreateTopicDetails": {
        "name": ("string", True),
        "compartmentId": ("string", True),
        "description": ("string", False),
        "freeformTags": ("map<string,string>", False),
        "definedTags": ("map<string,object>", False),
    },
    "CreateSubscriptionDetails": {
        "topicId": ("string", True),
        "compartmentId": ("string", True),
        "protocol": (("enum", ["CUSTOM_HTTPS", "EMAIL", "HTTPS",
                               "ORACLE_FUNCTIONS", "PAGERDUTY", "SLACK",
                               "SMS"]), True),
        "endpoint": ("string", True),
        "metadata": ("string", False),
        "freeformTags": ("map<string,string>", False),
        "definedTags": ("map<string,object>", False),
    },
    "SummarizeMetricsDataDetails": {
        "namespace": ("string", True),
        "resourceGroup": ("string", False),
        "query": ("string", True),
        "startTime": ("datetime", False),
        "endTime": ("datetime", False),
        "resolution": ("string", False),
    },
}

POLY = {
    "UpdateModelDeploymentConfigurationDetails":
        ("deploymentType",
         {"SINGLE_MODEL": "UpdateSingleModelDeploymentConfigurationDetails"}),
    "ScalingPolicy": ("policyType", {"FIXED_SIZE": "FixedSizeScalingPolicy"}),
}

# The shapes the stand-in's region offers to model deployments.
OFFERED_SHAPES = [
    "VM.Standard2.1", "VM.Standard2.2", "VM.Standard2.4", "VM.Standard2.8",
    "VM.Standard2.16", "VM.Standard2.24", "VM.Standard.E3.Flex",
    "VM.Standard.E4.Flex", "VM.Standard3.Flex", "VM.Optimized3.Flex",
]

LIFECYCLE_STATES = ["CREATING", "ACTIVE", "DELETING", "FAILED", "INACTIVE",
                    "UPDATING", "DELETED", "NEEDS_ATTENTION"]

_DURATION = re.compile(r"^PT(\d+H)?(\d+M)?(\d+S)?$|^P\d+D$")
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class ShapeError(Exception):
    """A body that does not match the documented shape."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code


def check_shape(value, schema, where):
    """Checks value against a documented schema; raises ShapeError naming the
    first problem (unknown field, missing required field, wrong type)."""
    if schema in POLY:
        disc, subtypes = POLY[schema]
        if not isinstance(value, dict):
            raise ShapeError("InvalidParameter", "%s must be an object" % where)
        if disc not in value:
            raise ShapeError("MissingParameter",
                             "%s.%s is required" % (where, disc))
        if value[disc] not in subtypes:
            raise ShapeError("InvalidParameter", "%s.%s: %r is not one of %s"
                             % (where, disc, value[disc], sorted(subtypes)))
        schema = subtypes[value[disc]]
    fields = SHAPES[schema]
    if not isinstance(value, dict):
        raise ShapeError("InvalidParameter", "%s must be an object" % where)
    for k in value:
        if k not in fields:
            raise ShapeError("InvalidParameter", "%s: unknown field %r (not in %s)"
                             % (where, k, schema))
    for k, (ftype, required) in fields.items():
        if k not in value or value[k] is None:
            if required:
                raise ShapeError("MissingParameter", "%s.%s is required (%s)"
                                 % (where, k, schema))
            continue
        check_type(value[k], ftype, "%s.%s" % (where, k))


def check_type(v, t, where):
    bad = None
    if isinstance(t, tuple) and t[0] == "enum":
        if v not in t[1]:
            bad = "one of %s" % t[1]
    elif isinstance(t, tuple) and t[0] == "list":
        if not isinstance(v, list):
            bad = "a list"
        else:
            for i, item in enumerate(v):
                check_shape(item, t[1], "%s[%d]" % (where, i))
    elif t == "string":
        bad = None if isinstance(v, str) else "a string"
    elif t == "integer":
        ok = isinstance(v, int) and not isinstance(v, bool)
        bad = None if ok else "an integer"
    elif t == "number":
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        bad = None if ok else "a number"
    elif t == "boolean":
        bad = None if isinstance(v, bool) else "a boolean"
    elif t == "duration":
        ok = isinstance(v, str) and _DURATION.match(v) and v not in ("PT", "P")
        bad = None if ok else "an ISO 8601 duration such as PT5M"
    elif t == "datetime":
        ok = isinstance(v, str) and _DATETIME.match(v)
        bad = None if ok else "an RFC 3339 date-time"
    elif t == "map<string,string>":
        ok = isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
        bad = None if ok else "an object of strings"
    elif t == "map<string,object>":
        ok = isinstance(v, dict) and all(isinstance(x, dict) for x in v.values())
        bad = None if ok else "an object of objects"
    elif t == "list<string>":
        ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
        bad = None if ok else "a list of strings"
    elif t == "opaque":
        bad = None if isinstance(v, dict) or isinstance(v, list) else "an object"
    else:
        check_shape(v, t, where)
    if bad:
        raise ShapeError("InvalidParameter", "%s must be %s, not %r"
                         % (where, bad, v))
