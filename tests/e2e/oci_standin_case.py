"""What the e2e files against the OCI API stand-in (tests/standin/
oci_standin.py, not OCI) set up alike: a test certificate and an OCI config
file for the class, and for each test a started stand-in and a started
daemon whose oci backend talks to it; also the recipe's test alarm
message."""
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "standin"))

import harness  # noqa: E402
import oci_standin  # noqa: E402
import oci_test_key  # noqa: E402

COMPARTMENT = oci_test_key.TEST_COMPARTMENT


def high_cpu_message(deployment_ocid, alarm_ocid="ocid1.alarm.oc1..standin"):
    """The recipe's test-alarm-scale-cpu-up.json, with its placeholders
    filled in."""
    return {
        "dedupeKey": "12345678-1234-4321-1234-123456789012",
        "title": "model_deployment_high_cpu",
        "type": "OK_TO_FIRING",
        "severity": "INFO",
        "timestampEpochMillis": 1657320300000,
        "timestamp": "2022-07-08T22: 45: 00Z",
        "alarmMetaData": [{
            "id": alarm_ocid,
            "status": "FIRING",
            "severity": "INFO",
            "namespace": "oci_datascience_modeldeploy",
            "query": "CpuUtilization[5m]{resourceId = \"%s\"}.max() > 80"
                     % deployment_ocid,
            "totalMetricsFiring": 1,
            "dimensions": [{"resourceId": deployment_ocid,
                            "instanceId": "instance:1234567890ABCDEF"}],
            "alarmUrl": "",
        }],
        "version": 1.3,
    }


class OciStandinCase(unittest.TestCase):
    """A test case with, for each test, the OCI stand-in (self.st, not
    OCI) and a daemon (self.d) started with self.config, by default
    daemon_config(): the oci backend on the stand-in."""

    tmp_prefix = "mdscale-oci-standin-"
    # The daemon's API is plain HTTP on loopback; the stand-in is told to
    # deliver to http:// (OCI itself requires https, which a TLS proxy in
    # front of mdscale provides).
    allow_http_endpoints = True

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=cls.tmp_prefix)
        cls.cert, cls.key = oci_standin.make_certificate(cls.tmp)
        cls.oci_config = oci_test_key.write_oci_config(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def daemon_config(self):
        """The daemon's configuration: the oci section for the stand-in."""
        return {"oci": {"configFile": self.oci_config,
                        "endpoint": self.st.url, "caFile": self.cert}}

    def setUp(self):
        self.st = oci_standin.OciStandin(
            self.cert, self.key,
            allow_http_endpoints=self.allow_http_endpoints).start()
        self.addCleanup(self.st.stop)
        self.config = self.daemon_config()
        self.d = harness.Daemon(config=self.config).start()
        self.addCleanup(self.d.cleanup)
