"""The autoscale function and the whole loop: the recipe's test messages
piped to `mdscale fn invoke autoscale`, bad messages, and deployments that
scale out, in and up by themselves under real load with no failed request."""
import json
import os
import time
import unittest

from harness import Daemon, Load, model_command, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES = os.path.join(HERE, "..", "..", "examples", "messages")

FAST = {"sampleIntervalMillis": 250, "evalIntervalMillis": 250}


def message(name, alarm_id, dep_id, **changes):
    with open(os.path.join(MESSAGES, name)) as f:
        text = f.read()
    for placeholder in ("<YOUR_HIGH_CPU_ALARM_OCID>", "<YOUR_LOW_CPU_ALARM_OCID>",
                        "<YOUR_HIGH_MEM_ALARM_OCID>", "<YOUR_LOW_MEM_ALARM_OCID>"):
        text = text.replace(placeholder, alarm_id)
    text = text.replace("<YOUR_MODEL_DEPLOYMENT_OCID>", dep_id)
    m = json.loads(text)
    m.update(changes)
    return json.dumps(m)


class RecipeMessagesTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(config=FAST).start()
        self.addCleanup(self.d.cleanup)
        # The recipe's profile: its alarms, topic and subscription, and no
        # cooldown, so that each message acts as the recipe's would. A new
        # instance answers its health check after 2 s, so that an update
        # is still running when a test sends its next message (without
        # the delay, an instance of a sanitizer build was often ready
        # between two messages, and the second one scaled out again).
        r = self.d.api("POST", "/v1/deployments", {
            "displayName": "recipe",
            "command": model_command("--load-delay-ms 2000"),
            "instanceShapeName": "local.xs", "instanceCount": 1,
            "autoscale": {"profile": "recipe"}})
        self.assertEqual(r.status, 201, r)
        self.dep = self.d.wait_state(r.json["id"], "ACTIVE")
        self.topic = r.json["autoscale"]["topicId"]
        self.chain = {}
        for alarm_id in r.json["autoscale"]["alarmIds"]:
            a = self.d.api("GET", "/v1/alarms/" + alarm_id).json
            self.chain[a["displayName"]] = a

    def alarm(self, title, metric, op="> 80", severity="WARNING"):
        r = self.d.api("POST", "/v1/alarms", {
            "displayName": title, "severity": severity,
            "query": '%s[5m]{resourceId = "%s"}.mean() %s' % (metric, self.dep["id"], op),
            "pendingDuration": "PT1M", "destinations": [self.topic],
            "isEnabled": True})
        self.assertEqual(r.status, 201, r)
        return r.json

    def invoke(self, msg):
        return self.d.cli("fn", "invoke", "autoscale", input=msg)

    def alarms_named(self, name):
        r = self.d.api("GET", "/v1/alarms?displayName=" + name)
        return [a for a in r.json["items"] if self.dep["id"] in a["query"]]

    def test_cpu_up_adds_an_instance_and_creates_the_low_cpu_alarm(self):
        high = self.chain["model_deployment_high_cpu"]
        msg = message("test-alarm-scale-cpu-up.json", high["id"], self.dep["id"])
        p = self.invoke(msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["action"], "SCALE_OUT")
        self.assertEqual(out["to"]["instanceCount"], 2)
        self.assertEqual(self.d.get(self.dep["id"])["lifecycleState"], "UPDATING")
        # The same message while UPDATING changes nothing.
        p = self.invoke(message("test-alarm-scale-cpu-up.json", high["id"],
                                self.dep["id"], type="REPEAT"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["action"], "NONE")
        self.assertIn("UPDATING", json.loads(p.stdout)["reason"])
        dep = self.d.wait_state(self.dep["id"], "ACTIVE")
        self.assertEqual(dep["instanceCount"], 2)
        self.assertEqual(len([i for i in dep["instances"] if i["state"] == "READY"]), 2)
        low = self.alarms_named("model_deployment_low_cpu")
        self.assertEqual(len(low), 1)
        self.assertIn('CpuUtilization[', low[0]["query"])
        self.assertIn('{resourceId = "%s"}.max() <' % self.dep["id"], low[0]["query"])
        self.assertEqual(low[0]["severity"], high["severity"])
        self.assertEqual(low[0]["destinations"], [self.topic])
        # Scaling up again makes no second low-cpu alarm.
        p = self.invoke(msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.d.wait_state(self.dep["id"], "ACTIVE")
        self.assertEqual(len(self.alarms_named("model_deployment_low_cpu")), 1)
        # Every decision is in the history, with its reason.
        p = self.d.cli("--output", "json", "deployment", "history", "recipe")
        items = json.loads(p.stdout)["items"]
        self.assertEqual([i["action"] for i in items], ["SCALE_OUT", "NONE", "SCALE_OUT"])
        self.assertTrue(all(i["reason"] for i in items))
        self.assertTrue(items[0]["workRequestId"].startswith("wr-"))
        p = self.d.cli("deployment", "history", "recipe")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("SCALE_OUT", p.stdout)

    def test_cpu_down_to_the_floor_deletes_the_low_cpu_alarm(self):
        self.d.wait_wr(self.d.update(self.dep["id"], instanceCount=2)["id"])
        self.d.wait_state(self.dep["id"], "ACTIVE")
        low = self.alarm("model_deployment_low_cpu", "CpuUtilization", op="< 20")
        p = self.invoke(message("test-alarm-scale-cpu-down.json", low["id"], self.dep["id"]))
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["action"], "SCALE_IN")
        self.assertEqual(out["deletedAlarmId"], low["id"])
        dep = self.d.wait_state(self.dep["id"], "ACTIVE")
        self.assertEqual(dep["instanceCount"], 1)
        self.assertEqual(self.d.api("GET", "/v1/alarms/" + low["id"]).status, 404)

    def test_mem_up_moves_to_the_next_shape(self):
        high = self.chain["model_deployment_high_mem"]
        p = self.invoke(message("test-alarm-scale-mem-up.json", high["id"], self.dep["id"]))
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["action"], "SHAPE_UP")
        dep = self.d.wait_state(self.dep["id"], "ACTIVE")
        self.assertEqual(dep["instanceShapeName"], "local.s")
        self.assertEqual(len(self.alarms_named("model_deployment_low_mem")), 1)

    def test_bad_messages_are_refused_and_change_nothing(self):
        high = self.chain["model_deployment_high_cpu"]
        good = json.loads(message("test-alarm-scale-cpu-up.json", high["id"], self.dep["id"]))
        no_meta = dict(good)
        del no_meta["alarmMetaData"]
        unknown_title = dict(good, title="model_deployment_high_disk")
        no_dep = message("test-alarm-scale-cpu-up.json", high["id"], "md-0000000000000000")
        cases = [("{not json", "JSON"), (json.dumps(no_meta), "alarmMetaData"),
                 (json.dumps(unknown_title), "high_disk"), (no_dep, "md-0000000000000000"),
                 (json.dumps(dict(good, alarmMetaData=[{"id": "x"}])), "resourceId")]
        before = self.d.get(self.dep["id"])
        for text, why in cases:
            p = self.invoke(text)
            self.assertEqual(p.returncode, 1, (text, p.stdout, p.stderr))
            lines = p.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, p.stderr)
            self.assertIn(why, lines[0])
            r = self.d.api("POST", "/v1/functions/autoscale/invoke", text)
            self.assertGreaterEqual(r.status, 400, r)
            self.assertIsNotNone(r.json)
        p = self.d.cli("fn", "invoke", "no-such-function", input=json.dumps(good))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        # FIRING_TO_OK is logged and ignored.
        p = self.invoke(json.dumps(dict(good, type="FIRING_TO_OK")))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["action"], "NONE")
        after = self.d.get(self.dep["id"])
        self.assertEqual((after["instanceCount"], after["instanceShapeName"],
                          after["lifecycleState"]),
                         (before["instanceCount"], before["instanceShapeName"], "ACTIVE"))


class ClosedLoopTest(unittest.TestCase):
    """Nobody invokes anything: alarms fire on real metrics and deliver to
    the autoscale function through a topic."""

    def cpu_under_load(self, d, dep_id, seconds=6):
        """The CpuUtilization (% of the shape's CPU) the one instance of
        dep_id gets under the load running now: the median of its 1-second
        means over the last seconds, once it has warmed up."""
        time.sleep(2 + seconds)
        q = 'CpuUtilization[1s]{resourceId = "%s"}.mean()' % dep_id
        r = d.api("POST", "/v1/metrics/query", {
            "query": q, "resolution": "1s",
            "startTime": int(time.time() * 1000) - seconds * 1000})
        self.assertEqual(r.status, 200, r)
        values = sorted(p["value"] for it in r.json["items"]
                        for p in it["aggregatedDatapoints"])
        self.assertGreaterEqual(len(values), seconds // 2, r.json)
        return values[len(values) // 2]

    def test_load_step_scales_out_and_back_in_without_failures(self):
        d = Daemon(config=FAST).start()
        self.addCleanup(d.cleanup)
        policy = {"profile": "default", "maxInstances": 3,
                  "cooldownInSeconds": 4, "lowWindow": "4s",
                  "lowPendingDuration": "PT3S", "lowRepeatDuration": "PT2S",
                  "cpuHigh": 1000, "cpuLow": 30}
        r = d.api("POST", "/v1/deployments", {
            "displayName": "auto", "command": model_command(),
            "instanceShapeName": "local.xs", "instanceCount": 1,
            "autoscale": policy})
        self.assertEqual(r.status, 201, r)
        dep_id = r.json["id"]
        self.assertEqual(len(r.json["autoscale"]["alarmIds"]), 2)
        d.wait_state(dep_id, "ACTIVE")
        with Load(d.gw_port, "/auto/predict", threads=6) as load:
            # The thresholds follow the CPU the instance actually gets on
            # this machine (a full quota when idle, less when the machine
            # is busy), so that the loop is tested, not the machine:
            # the high alarm at 60 % of it, the low one at a third of that,
            # never above the profile's 70 % and 30 %. Below 20 % the
            # instance is not loaded enough for the test to mean anything.
            # The measuring keeps the one instance under load for longer:
            # an instance that could not take it (the sanitizer build's
            # model server outgrew its shape's memory before its
            # quarantine was bounded) shows below as a restart.
            got = self.cpu_under_load(d, dep_id)
            print("\n# one local.xs instance under load: CpuUtilization "
                  "%.0f%%" % got)
            self.assertGreater(got, 20, "the instance got almost no CPU: "
                               "the machine is too busy to test scaling")
            self.assertEqual(d.get(dep_id)["instanceCount"], 1,
                             "scaled out above a threshold of 1000%")
            policy.update(cpuHigh=round(min(70.0, got * 0.6), 1))
            policy.update(cpuLow=round(min(30.0, policy["cpuHigh"] / 3), 1))
            print("# cpuHigh %(cpuHigh)s%%, cpuLow %(cpuLow)s%%" % policy)
            r = d.api("PUT", "/v1/deployments/%s/autoscale" % dep_id, policy)
            self.assertEqual(r.status, 200, r)
            scaled = wait_for("a scale-out", lambda: d.get(dep_id)["instanceCount"] > 1,
                              timeout=60)
            self.assertTrue(scaled)
            d.wait_state(dep_id, "ACTIVE")
            wait_for("two ready instances", lambda: len(
                [i for i in d.get(dep_id)["instances"] if i["state"] == "READY"]) >= 2)
            load.stop()
        restarted = [(i["id"], i["lastExit"]) for i in d.get(dep_id)["instances"]
                     if i["restarts"] > 0]
        self.assertEqual(restarted, [], "an instance died under the load")
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 100)
        # Quiet now: the low-cpu alarm brings it back to one instance.
        back = wait_for("the scale-in", lambda: d.get(dep_id)["instanceCount"] == 1,
                        timeout=90)
        self.assertTrue(back)
        d.wait_state(dep_id, "ACTIVE")
        hist = d.api("GET", "/v1/deployments/%s/scaling-history" % dep_id).json["items"]
        actions = [h["action"] for h in hist]
        self.assertIn("SCALE_OUT", actions)
        self.assertIn("SCALE_IN", actions)
        # Each move came from its own alarm firing. (The value a move
        # records is the latest sample when the function ran, which can
        # be back on the other side of the threshold the alarm's window
        # crossed: it is not compared.)
        for h in hist:
            if h["action"] == "SCALE_OUT":
                self.assertEqual(h["alarmTitle"], "model_deployment_high_cpu", h)
            if h["action"] == "SCALE_IN":
                self.assertEqual(h["alarmTitle"], "model_deployment_low_cpu", h)
        # Deleting the deployment removes its alarms, topic and subscription.
        d.delete(dep_id)
        alarms = d.api("GET", "/v1/alarms").json["items"]
        self.assertEqual([a for a in alarms if dep_id in a["query"]], [])
        topics = d.api("GET", "/v1/topics").json["items"]
        self.assertEqual([t for t in topics if dep_id in t["name"]], [])

    def test_growing_memory_moves_to_the_next_shape_without_failures(self):
        config = dict(FAST, shapes=[
            {"name": "tiny", "cpus": 0.5, "memoryInMBs": 48},
            {"name": "small", "cpus": 0.5, "memoryInMBs": 128}],
            defaultShape="tiny")
        d = Daemon(config=config).start()
        self.addCleanup(d.cleanup)
        r = d.api("POST", "/v1/deployments", {
            "displayName": "mem", "instanceShapeName": "tiny",
            "command": model_command("--tta off --cache-entries 100000"),
            # Under AddressSanitizer, freed cache entries would stay
            # resident in its quarantine and outgrow the shape; normal
            # builds ignore this variable.
            "environment": {"ASAN_OPTIONS": "quarantine_size_mb=0"},
            "autoscale": {"profile": "default", "memHigh": 60}})
        self.assertEqual(r.status, 201, r)
        dep_id = r.json["id"]
        d.wait_state(dep_id, "ACTIVE")
        # Distinct inputs fill the model server's cache: memory grows, to
        # about 60-75% of the small shape's 48 MiB at most (12,000 entries
        # of ~2.5 KiB), past the 60% threshold but short of the limit.
        import random
        rng = random.Random(7)
        rows = [([float(rng.randint(0, 16)) for _ in range(64)], 0) for _ in range(12000)]
        with Load(d.gw_port, "/mem/predict", threads=3, rows=rows) as load:
            moved = wait_for("the shape change",
                             lambda: d.get(dep_id)["instanceShapeName"] == "small",
                             timeout=120)
            self.assertTrue(moved)
            d.wait_state(dep_id, "ACTIVE")
            time.sleep(0.5)
            load.stop()
        self.assertEqual(load.failures, [])
        hist = d.api("GET", "/v1/deployments/%s/scaling-history" % dep_id).json["items"]
        self.assertIn("SHAPE_UP", [h["action"] for h in hist])


if __name__ == "__main__":
    unittest.main()
