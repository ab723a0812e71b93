"""How the recipe fails, from a recipe user's view, on the real daemon: a
refused message is a dead letter (never retried, readable, replayable) and
does not hold up the next one; a message naming a missing alarm still leads
to a scale-down alarm that fires and scales in; a hand-built chain decides
by the user's own configuration; deleting a deployment deletes only what
mdscale made for it."""
import json
import os
import re
import time
import unittest

from harness import Daemon, model_command, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES = os.path.join(HERE, "..", "..", "examples", "messages")
FAST = {"sampleIntervalMillis": 250, "evalIntervalMillis": 250}
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


def message(name, alarm_id, dep_id, **changes):
    """One of the recipe's test messages, filled in."""
    with open(os.path.join(MESSAGES, name)) as f:
        text = f.read()
    for placeholder in ("<YOUR_HIGH_CPU_ALARM_OCID>", "<YOUR_LOW_CPU_ALARM_OCID>",
                        "<YOUR_HIGH_MEM_ALARM_OCID>", "<YOUR_LOW_MEM_ALARM_OCID>"):
        text = text.replace(placeholder, alarm_id)
    text = text.replace("<YOUR_MODEL_DEPLOYMENT_OCID>", dep_id)
    m = json.loads(text)
    m.update(changes)
    return m


class RecipeFailuresTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(config=FAST).start()
        self.addCleanup(self.d.cleanup)

    # -- the recipe's steps, by hand --
    def deployment(self, name, **extra):
        spec = {"displayName": name, "command": model_command(),
                "instanceShapeName": "local.xs", "instanceCount": 1}
        spec.update(extra)
        r = self.d.api("POST", "/v1/deployments", spec)
        self.assertEqual(r.status, 201, r)
        self.d.wait_state(r.json["id"], "ACTIVE")
        return r.json

    def hand_chain(self, dep_id, topic="model-deployment-autoscaling"):
        """The recipe's Notifications and Monitoring steps, done by hand
        with the CLI: a topic, the function subscribed to it by the topic's
        name, and the high-cpu alarm."""
        c = self.d.cli("--output", "json", "topic", "create", "--name", topic)
        self.assertEqual(c.returncode, 0, c)
        tid = json.loads(c.stdout)["topicId"]
        c = self.d.cli("--output", "json", "subscription", "create", "--topic",
                       topic, "--protocol", "FUNCTION", "--endpoint",
                       "autoscale")
        self.assertEqual(c.returncode, 0, c)
        sub = json.loads(c.stdout)
        self.assertEqual(sub["topicId"], tid)
        self.assertNotIn("secret", sub)  # a FUNCTION delivery is not signed
        c = self.d.cli("--output", "json", "alarm", "create", "--name",
                       "model_deployment_high_cpu", "--query",
                       'CpuUtilization[5m]{resourceId = "%s"}.mean() > 80' % dep_id,
                       "--severity", "INFO", "--destination", topic)
        self.assertEqual(c.returncode, 0, c)
        alarm = json.loads(c.stdout)
        self.assertEqual(alarm["destinations"], [tid])
        return tid, sub["id"], alarm

    def publish(self, tid, msg):
        r = self.d.api("POST", "/v1/topics/%s/messages" % tid, json.dumps(msg))
        self.assertEqual(r.status, 202, r)
        return r.json["messageId"]

    def history(self, dep_id):
        return self.d.api("GET", "/v1/deployments/%s/scaling-history"
                          % dep_id).json["items"]

    def dead_letters(self, sid):
        r = self.d.api("GET", "/v1/subscriptions/%s/dead-letters" % sid)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def deliveries(self, sid, mid):
        items = self.d.api("GET", "/v1/subscriptions/%s/deliveries"
                           % sid).json["items"]
        return [i for i in items if i["messageId"] == mid]

    # -- the tests --
    def test_bad_message_is_a_dead_letter_and_does_not_hold_up_a_good_one(self):
        dep = self.deployment("bad-then-good")
        tid, sid, high = self.hand_chain(dep["id"])
        good = message("test-alarm-scale-cpu-up.json", high["id"], dep["id"],
                       dedupeKey="good-alarm-episode")
        bad = dict(good, title="model_deployment_high_disk",
                   dedupeKey="bad-alarm-episode")
        grouped = dict(good, dedupeKey="grouped-alarm-episode")
        grouped["alarmMetaData"] = [dict(good["alarmMetaData"][0], dimensions=[])]
        bad_mid = self.publish(tid, bad)
        grouped_mid = self.publish(tid, grouped)
        t0 = time.monotonic()
        self.publish(tid, good)
        wait_for("the good message's scale-out",
                 lambda: [h for h in self.history(dep["id"])
                          if h["action"] == "SCALE_OUT"], timeout=5, interval=0.02)
        took = time.monotonic() - t0
        print("\n  the good message acted %.3f s after it was published" % took)
        self.assertLess(took, 1.0)
        # The refusals are dead letters with their reasons, tried once.
        dead = wait_for("two dead letters",
                        lambda: (lambda v: v if len(v) == 2 else None)(
                            self.dead_letters(sid)))
        by_mid = {x["messageId"]: x for x in dead}
        self.assertEqual(by_mid[bad_mid]["outcome"], "REFUSED")
        self.assertIn("high_disk", by_mid[bad_mid]["reason"])
        self.assertIn("grouping()", by_mid[grouped_mid]["reason"])
        self.assertEqual(by_mid[bad_mid]["message"]["title"],
                         "model_deployment_high_disk")
        self.assertRegex(by_mid[bad_mid]["timeCreated"], RFC3339)
        time.sleep(2.5)  # longer than the first backoff
        for mid in (bad_mid, grouped_mid):
            attempts = self.deliveries(sid, mid)
            self.assertEqual([a["outcome"] for a in attempts], ["REFUSED"], attempts)
        s = self.d.api("GET", "/v1/subscriptions/" + sid).json
        self.assertEqual((s["pendingDeliveries"], s["deadLetters"]), (0, 2))
        c = self.d.cli("subscription", "dead-letters", sid)
        self.assertEqual(c.returncode, 0, c)
        self.assertIn("REFUSED", c.stdout)
        self.assertIn("model_deployment_high_disk/OK_TO_FIRING", c.stdout)
        # Replayed, it is refused again: a new dead letter, one attempt.
        c = self.d.cli("subscription", "replay", sid, by_mid[bad_mid]["id"])
        self.assertEqual(c.returncode, 0, c)
        self.assertIn("queued again", c.stdout)
        wait_for("the replay refused", lambda: len(self.deliveries(sid, bad_mid)) == 2)
        dead = wait_for("the replay's dead letter", lambda: [
            x for x in self.dead_letters(sid)
            if x["messageId"] == bad_mid and x["id"] != by_mid[bad_mid]["id"]])
        self.assertEqual(len(self.dead_letters(sid)), 2)
        c = self.d.cli("subscription", "replay", sid, "dead-0000000000000000")
        self.assertEqual(c.returncode, 1, c)
        self.assertEqual(len(c.stderr.strip().splitlines()), 1, c.stderr)
        # The one error contract: a refused message is a 400 on the API
        # and exit 1 on the CLI.
        r = self.d.api("POST", "/v1/functions/autoscale/invoke", json.dumps(bad))
        self.assertEqual((r.status, r.json["code"]), (400, "MessageRefused"), r)
        p = self.d.cli("fn", "invoke", "autoscale", input=json.dumps(bad))
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("high_disk", p.stderr)

    def test_missing_alarm_leads_to_a_scale_down_alarm_that_scales_in(self):
        dep = self.deployment("missing-alarm")
        tid, sid, high = self.hand_chain(dep["id"])
        msg = message("test-alarm-scale-cpu-up.json", "ocid1.alarm.oc1..gone",
                      dep["id"], dedupeKey="missing-alarm-episode")
        # No firing alarm and no autoscale topic: nowhere for the scale-down
        # alarm to send, so the message is refused and nothing changes.
        mid = self.publish(tid, msg)
        dead = wait_for("the dead letter", lambda: self.dead_letters(sid))
        self.assertIn("does not exist", dead[0]["reason"])
        self.assertEqual(self.d.get(dep["id"])["instanceCount"], 1)
        self.assertEqual(self.alarms_of(dep["id"], "model_deployment_low_cpu"), [])
        # Choosing a profile gives the deployment its autoscale topic; the
        # user's own high-cpu alarm is kept as it is.
        r = self.d.api("PUT", "/v1/deployments/%s/autoscale" % dep["id"], {
            "profile": "recipe", "lowWindow": "4s", "lowPendingDuration": "PT2S",
            "lowRepeatDuration": "PT2S", "cpuLow": 30})
        self.assertEqual(r.status, 200, r)
        as_topic = r.json["topicId"]
        self.assertIn(high["id"], r.json["alarmIds"])
        self.assertEqual(len(self.alarms_of(dep["id"], "model_deployment_high_cpu")), 1)
        self.assertEqual(self.d.api("GET", "/v1/alarms/" + high["id"]).json["query"],
                         high["query"])
        # Replayed now, it scales out and the scale-down alarm sends to the
        # deployment's autoscale topic.
        c = self.d.cli("subscription", "replay", sid, dead[0]["id"])
        self.assertEqual(c.returncode, 0, c)
        out = wait_for("the scale-out", lambda: [
            h for h in self.history(dep["id"]) if h["action"] == "SCALE_OUT"])[0]
        low = self.d.api("GET", "/v1/alarms/" + out["createdAlarmId"]).json
        self.assertEqual(low["destinations"], [as_topic])
        self.assertEqual(self.dead_letters(sid), [])
        # Idle, the scale-down alarm fires and brings it back to one.
        self.d.wait_state(dep["id"], "ACTIVE")
        wait_for("the scale-in", lambda: [
            h for h in self.history(dep["id"]) if h["action"] == "SCALE_IN"],
            timeout=60)
        dep_now = self.d.wait_state(dep["id"], "ACTIVE")
        self.assertEqual(dep_now["instanceCount"], 1)
        self.assertEqual(self.d.api("GET", "/v1/alarms/" + low["id"]).status, 404)
        self.assertEqual(len(self.deliveries(sid, mid)), 2)

    def test_scale_down_alarm_without_a_destination_is_repaired(self):
        dep = self.deployment("repair")
        tid, sid, high = self.hand_chain(dep["id"])
        r = self.d.api("POST", "/v1/alarms", {
            "displayName": "model_deployment_low_cpu", "severity": "INFO",
            "query": 'CpuUtilization[1m]{resourceId = "%s"}.max() < 20' % dep["id"],
            "destinations": [], "isEnabled": True})
        self.assertEqual(r.status, 201, r)
        mute = r.json
        msg = message("test-alarm-scale-cpu-up.json", high["id"], dep["id"])
        p = self.d.cli("fn", "invoke", "autoscale", input=json.dumps(msg))
        self.assertEqual(p.returncode, 0, p)
        out = json.loads(p.stdout)
        self.assertEqual(out["action"], "SCALE_OUT")
        self.assertEqual(out["repairedAlarmId"], mute["id"])
        self.assertEqual(self.d.api("GET", "/v1/alarms/" + mute["id"]).json["destinations"],
                         [tid])
        self.assertEqual(len(self.alarms_of(dep["id"], "model_deployment_low_cpu")), 1)

    def test_hand_built_chain_decides_by_the_users_configuration(self):
        dep = self.deployment("users-config")
        tid, sid, high = self.hand_chain(dep["id"])
        # The recipe's own names for the function's configuration.
        c = self.d.cli("fn", "config", "set", "MAX_INSTANCES=2",
                       "LOW_CPU_THRESHOLD=25", "VM_SHAPES=local.xs,local.s")
        self.assertEqual(c.returncode, 0, c)
        self.assertIn("maxInstances: 2", c.stdout)
        c = self.d.cli("--output", "json", "fn", "config", "get", "--deployment",
                       "users-config")
        cfg = json.loads(c.stdout)
        self.assertEqual(cfg["source"], "default")
        self.assertEqual((cfg["config"]["maxInstances"], cfg["config"]["cpuLow"],
                          cfg["config"]["shapes"]), (2, 25, ["local.xs", "local.s"]))
        c = self.d.cli("fn", "config", "set", "--deployment", "users-config",
                       "cooldownOutSeconds=0")
        self.assertEqual(c.returncode, 0, c)
        self.assertIn("source: deployment", c.stdout)
        bad = self.d.cli("fn", "config", "set", "maxInstances=0")
        self.assertEqual(bad.returncode, 1, bad)
        self.assertIn("maxInstances", bad.stderr)
        r = self.d.api("PUT", "/v1/functions/autoscale/config", {"shapes": ["nope"]})
        self.assertEqual(r.status, 400, r)
        msg = message("test-alarm-scale-cpu-up.json", high["id"], dep["id"],
                      dedupeKey="cfg-1")
        self.publish(tid, msg)
        first = wait_for("the scale-out", lambda: self.history(dep["id"]))[0]
        self.assertEqual(first["action"], "SCALE_OUT")
        self.assertIn("config (deployment)", first["reason"])
        self.assertIn("maxInstances=2", first["reason"])
        self.assertRegex(first["time"], RFC3339)
        low = self.d.api("GET", "/v1/alarms/" + first["createdAlarmId"]).json
        self.assertTrue(low["query"].endswith("< 25"), low["query"])
        self.assertEqual(low["destinations"], [tid])
        self.d.wait_state(dep["id"], "ACTIVE")
        self.publish(tid, dict(msg, type="REPEAT", dedupeKey="cfg-2"))
        second = wait_for("the second decision", lambda: (
            lambda h: h[1] if len(h) > 1 else None)(self.history(dep["id"])))
        self.assertEqual(second["action"], "NONE")
        self.assertIn("2", second["reason"])
        self.assertEqual(self.d.get(dep["id"])["instanceCount"], 2)
        # The mem ladder is the user's: local.s is its top.
        self.d.wait_state(dep["id"], "ACTIVE")
        self.d.wait_wr(self.d.update(dep["id"], instanceShapeName="local.s")["id"])
        self.d.wait_state(dep["id"], "ACTIVE")
        mem = message("test-alarm-scale-mem-up.json", high["id"], dep["id"])
        p = self.d.cli("fn", "invoke", "autoscale", input=json.dumps(mem))
        out = json.loads(p.stdout)
        self.assertEqual(out["action"], "NONE", out)
        self.assertIn("shapes=local.xs,local.s", out["reason"])
        # `mdscale top` shows the decisions, newest last, with RFC 3339 times.
        p = self.d.cli("top", "--once")
        self.assertEqual(p.returncode, 0, p)
        self.assertRegex(p.stdout, r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")

    def test_delete_leaves_the_users_alarms_alone(self):
        r = self.d.api("POST", "/v1/deployments", {
            "displayName": "deleted", "command": model_command(),
            "instanceShapeName": "local.xs", "instanceCount": 1,
            "autoscale": True})
        self.assertEqual(r.status, 201, r)
        dep = r.json
        made = dep["autoscale"]
        r = self.d.api("POST", "/v1/alarms", {
            "displayName": "model_deployment_low_cpu", "severity": "INFO",
            "query": 'CpuUtilization[1m]{resourceId = "%s"}.max() < 20' % dep["id"],
            "destinations": [made["topicId"]], "isEnabled": True})
        self.assertEqual(r.status, 201, r)
        users = r.json
        self.d.wait_state(dep["id"], "ACTIVE")
        r = self.d.api("DELETE", "/v1/deployments/" + dep["id"])
        self.assertEqual(r.status, 202, r)
        self.assertEqual(sorted(r.json["deleted"]["alarmIds"]), sorted(made["alarmIds"]))
        self.assertEqual(r.json["deleted"]["topicId"], made["topicId"])
        self.assertEqual(r.json["deleted"]["subscriptionId"], made["subscriptionId"])
        self.d.wait_wr(r.json["id"])
        self.assertEqual(self.d.api("GET", "/v1/alarms/" + users["id"]).status, 200)
        for a in made["alarmIds"]:
            self.assertEqual(self.d.api("GET", "/v1/alarms/" + a).status, 404)

    def test_dead_letters_survive_a_restart(self):
        dep = self.deployment("restart")
        tid, sid, high = self.hand_chain(dep["id"])
        bad = message("test-alarm-scale-cpu-up.json", high["id"], dep["id"],
                      title="model_deployment_high_disk")
        self.publish(tid, bad)
        before = wait_for("the dead letter", lambda: self.dead_letters(sid))
        self.d.stop()
        d2 = Daemon(data_dir=self.d.data_dir, config=FAST).start()
        self.addCleanup(d2.cleanup)
        self.d = d2
        self.assertEqual(self.dead_letters(sid), before)
        self.assertEqual(self.d.api("GET", "/v1/subscriptions/" + sid).json["deadLetters"], 1)
        # They go with their subscription.
        self.assertEqual(self.d.api("DELETE", "/v1/subscriptions/" + sid).status, 204)
        self.assertEqual(self.d.api("GET", "/v1/subscriptions/%s/dead-letters" % sid).status, 404)

    def alarms_of(self, dep_id, title):
        r = self.d.api("GET", "/v1/alarms?displayName=" + title)
        return [a for a in r.json["items"] if dep_id in a["query"]]


if __name__ == "__main__":
    unittest.main()
