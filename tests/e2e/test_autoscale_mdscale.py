"""The mdscale profile live: the daemon's rule sets the instance count every
second from the gateway's load (no CPU alarm involved), scales out on a load
step, back in only after its down window and without reversing, and refuses
bad policies with 400 naming the field."""
import json
import os
import subprocess
import tempfile
import time
import unittest

from harness import BIN, Daemon, digits_rows, model_command, wait_for

FAST = {"sampleIntervalMillis": 250, "evalIntervalMillis": 250}
DOWN_WINDOW = 8
HOLD = 6
# One local.xs instance of the model server, its cache off, serves
# 300-400 requests a second here: the step is about 2.5 times that.
RATE = 900
STEP_SECONDS = 12


def load_step(gw_port, path, directory, rate=RATE, seconds=STEP_SECONDS,
              connections=64):
    """Starts `mdscale load`: rate requests a second, open loop, over up
    to connections connections, for seconds; its JSON summary is on its
    stdout."""
    body = os.path.join(directory, "body.json")
    with open(body, "w") as f:
        json.dump({"instances": [digits_rows(1)[0][0]]}, f)
    return subprocess.Popen(
        [BIN, "load", "--url", "http://127.0.0.1:%d%s" % (gw_port, path),
         "--method", "POST", "--body", body, "--header",
         "Content-Type: application/json", "--rate", str(rate),
         "--duration", str(seconds), "--connections", str(connections),
         "--output", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def history(d, dep_id):
    return d.api("GET", "/v1/deployments/%s/scaling-history" % dep_id).json["items"]


def wall(rfc3339):
    """Seconds since the epoch of the history's RFC 3339 UTC time."""
    return time.mktime(time.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S")) \
        - time.timezone + float("0" + rfc3339[19:].rstrip("Z")[:4] or 0)


class MdscaleRuleTest(unittest.TestCase):
    def test_load_step_scales_out_without_an_alarm_and_back_in_once(self):
        d = Daemon(config=FAST).start()
        self.addCleanup(d.cleanup)
        r = d.api("POST", "/v1/deployments", {
            "displayName": "md", "command": model_command("--cache-entries 0"),
            "instanceShapeName": "local.xs", "instanceCount": 1,
            "autoscale": {"profile": "mdscale", "maxInstances": 3,
                          "downWindowSeconds": DOWN_WINDOW,
                          "holdSeconds": HOLD}})
        self.assertEqual(r.status, 201, r)
        dep_id = r.json["id"]
        self.assertEqual(r.json["autoscale"]["policy"]["profile"], "mdscale")
        # Only the memory alarm: the count is the rule's.
        alarms = [d.api("GET", "/v1/alarms/" + a).json["displayName"]
                  for a in r.json["autoscale"]["alarmIds"]]
        self.assertEqual(alarms, ["model_deployment_high_mem"])
        d.wait_state(dep_id, "ACTIVE")
        # Idle: the rule keeps one instance.
        time.sleep(3)
        self.assertEqual(d.get(dep_id)["instanceCount"], 1)
        self.assertEqual(history(d, dep_id), [])

        tmp = tempfile.mkdtemp(prefix="mdscale-step-")
        # A trickle first, as a deployment in use has: the rule learns a
        # request's service time from it, and keeps one instance.
        light = load_step(d.gw_port, "/md/predict", tmp, rate=5, seconds=4)
        self.assertEqual(json.loads(light.communicate(timeout=60)[0])
                         ["failed_total"], 0)
        self.assertEqual(d.get(dep_id)["instanceCount"], 1,
                         [(h["action"], h["observed"])
                          for h in history(d, dep_id)])
        load = load_step(d.gw_port, "/md/predict", tmp)
        self.addCleanup(load.kill)
        t_step = time.monotonic()
        self.assertTrue(wait_for(
            "a scale-out", lambda: d.get(dep_id)["instanceCount"] > 1,
            timeout=STEP_SECONDS))
        out_after = time.monotonic() - t_step
        wait_for("two ready instances", lambda: len(
            [i for i in d.get(dep_id)["instances"]
             if i["state"] == "READY"]) >= 2, timeout=STEP_SECONDS)
        summary = json.loads(load.communicate(timeout=STEP_SECONDS + 30)[0])
        t_stop = time.time()
        print("\n  scale-out decided %.1f s after the step; load: %s" % (
            out_after, {k: v for k, v in summary.items()
                        if not isinstance(v, (dict, list))}))
        peak = d.get(dep_id)["instanceCount"]
        ups = [h for h in history(d, dep_id) if h["action"] == "SCALE_OUT"]
        self.assertTrue(ups)
        for h in ups:
            # No alarm: the rule decided, and says what it saw.
            self.assertIsNone(h["alarmId"])
            self.assertEqual(h["rule"], "mdscale")
            self.assertIn("mdscale rule", h["reason"])
            self.assertGreater(h["observed"]["work"], 0)
        cpu_alarms = [a["displayName"] for a in
                      d.api("GET", "/v1/alarms").json["items"]
                      if dep_id in a["query"] and "cpu" in a["displayName"]]
        self.assertEqual(cpu_alarms, [])

        # Quiet: back to one instance.
        self.assertTrue(wait_for(
            "the scale-in", lambda: d.get(dep_id)["instanceCount"] == 1,
            timeout=DOWN_WINDOW + 40))
        d.wait_state(dep_id, "ACTIVE")
        time.sleep(4)
        hist = history(d, dep_id)
        for h in hist:
            print("  %s %-9s %d -> %s  cpu %5.1f  conc %5.1f  work %5.2f" % (
                h["time"][11:23], h["action"], h["from"]["instanceCount"],
                h.get("to", {}).get("instanceCount", "-"),
                h["observed"]["cpu"], h["observed"]["concurrency"],
                h["observed"]["work"]))
        downs = [h for h in hist if h["action"] == "SCALE_IN"]
        self.assertTrue(downs, hist)
        # Down only after the hold that follows a move up, and to one
        # instance only once the quiet seconds fill most of the window.
        first_in = wall(downs[0]["time"])
        last_in = wall(downs[-1]["time"])
        self.assertEqual(downs[-1]["to"]["instanceCount"], 1)
        self.assertGreaterEqual(first_in - wall(ups[-1]["time"]),
                                HOLD - 0.5, hist)
        self.assertGreaterEqual(last_in - t_stop, DOWN_WINDOW / 2,
                                (last_in - t_stop, hist))
        print("  at one instance again %.1f s after the load stopped (down "
              "window %d s, hold %d s), from %d instances in %d steps"
              % (last_in - t_stop, DOWN_WINDOW, HOLD, peak, len(downs)))
        # No reversal: nothing scaled out after the first scale-in, and it
        # stays at one.
        moves = [h["action"] for h in hist if h["action"] != "NONE"]
        self.assertNotIn("SCALE_OUT", moves[moves.index("SCALE_IN"):], moves)
        self.assertEqual(d.get(dep_id)["instanceCount"], 1)
        self.assertEqual(d.api("GET", "/v1/deployments/%s/autoscale"
                               % dep_id).json["policy"]["profile"], "mdscale")

    def test_a_steep_step_is_answered_inside_a_second(self):
        """Work arriving at several times what the instances serve passes
        a whole second's worth of theirs within a few tenths of a second:
        the early check moves up then, not at the second's end. (When the
        step starts in a second's last tenths, the second's own decision
        may come first; the next second's early check then takes the next
        instance.) The clients have connections enough for the gateway to
        see every arrival: with 64, as in the step above, arrivals past
        what is served wait in the client, and the gateway sees at most
        the instances' own work."""
        ups = self.steep_step({})
        reasons = [h["reason"] for h in ups]
        self.assertTrue(any("early check" in r for r in reasons), reasons)

    def test_a_steep_step_without_the_early_check(self):
        """With earlyCheck false the same step is still answered, by the
        whole second's decisions alone: none says the early check."""
        ups = self.steep_step({"earlyCheck": False})
        reasons = [h["reason"] for h in ups]
        self.assertFalse(any("early check" in r for r in reasons), reasons)

    def steep_step(self, policy):
        """A light load, then 3x what one instance serves, over 1000
        connections; returns the SCALE_OUT records."""
        d = Daemon(config=FAST).start()
        self.addCleanup(d.cleanup)
        r = d.api("POST", "/v1/deployments", {
            "displayName": "md", "command": model_command("--cache-entries 0"),
            "instanceShapeName": "local.xs", "instanceCount": 1,
            "autoscale": dict({"profile": "mdscale", "maxInstances": 4},
                              **policy)})
        self.assertEqual(r.status, 201, r)
        dep_id = r.json["id"]
        d.wait_state(dep_id, "ACTIVE")
        tmp = tempfile.mkdtemp(prefix="mdscale-early-")
        light = load_step(d.gw_port, "/md/predict", tmp, rate=5, seconds=3)
        self.assertEqual(json.loads(light.communicate(timeout=60)[0])
                         ["failed_total"], 0)
        self.assertEqual(history(d, dep_id), [])
        load = load_step(d.gw_port, "/md/predict", tmp, rate=3 * RATE,
                         seconds=4, connections=1000)
        self.addCleanup(load.kill)
        load.communicate(timeout=60)
        ups = [h for h in history(d, dep_id) if h["action"] == "SCALE_OUT"]
        self.assertTrue(ups)
        for h in ups:
            self.assertIsNone(h["alarmId"])
            self.assertEqual(h["rule"], "mdscale")
            self.assertGreater(h["observed"]["work"], 0)
        return ups


class MdscaleBadInputTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(config=FAST).start()
        self.addCleanup(self.d.cleanup)

    def refused(self, method, path, body, field):
        r = self.d.api(method, path, body)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["field"], field, r)
        self.assertIn(field.split(".")[-1], r.json["message"], r)
        return r

    def test_unknown_policy_and_bad_parameters_are_refused(self):
        d = self.d
        spec = {"displayName": "bad", "command": model_command(),
                "instanceShapeName": "local.xs", "instanceCount": 1}
        for policy, field in (
                ({"profile": "mdscale2"}, "autoscale.profile"),
                ({"profile": 7}, "autoscale.profile"),
                ({"profile": "mdscale", "targetUtilization": 0},
                 "autoscale.targetUtilization"),
                ({"profile": "mdscale", "targetUtilization": 1.5},
                 "autoscale.targetUtilization"),
                ({"profile": "mdscale", "upWindowSeconds": 0},
                 "autoscale.upWindowSeconds"),
                ({"profile": "mdscale", "downWindowSeconds": -1},
                 "autoscale.downWindowSeconds"),
                ({"profile": "mdscale", "downWindowSeconds": "1m"},
                 "autoscale.downWindowSeconds"),
                ({"profile": "mdscale", "upwindow": 3},
                 "autoscale.upwindow")):
            self.refused("POST", "/v1/deployments",
                         dict(spec, autoscale=policy), field)
        # Nothing was made.
        self.assertEqual(d.api("GET", "/v1/deployments").json["items"], [])
        self.assertEqual(d.api("GET", "/v1/alarms").json["items"], [])

        r = d.api("POST", "/v1/deployments",
                  dict(spec, autoscale={"profile": "mdscale"}))
        self.assertEqual(r.status, 201, r)
        dep_id = r.json["id"]
        before = d.api("GET", "/v1/deployments/%s/autoscale" % dep_id).json
        self.refused("PUT", "/v1/deployments/%s/autoscale" % dep_id,
                     {"profile": "fastest"}, "profile")
        self.refused("PUT", "/v1/deployments/%s/autoscale" % dep_id,
                     {"profile": "mdscale", "upWindowSeconds": 61},
                     "upWindowSeconds")
        self.refused("PUT", "/v1/functions/autoscale/config?deploymentId="
                     + dep_id, {"targetUtilization": "high"},
                     "targetUtilization")
        self.refused("PUT", "/v1/functions/autoscale/config",
                     {"profile": "none"}, "profile")
        # The rule is chosen per deployment, not as the default that
        # hand-built alarm chains decide by.
        self.refused("PUT", "/v1/functions/autoscale/config",
                     {"profile": "mdscale"}, "profile")
        after = d.api("GET", "/v1/deployments/%s/autoscale" % dep_id).json
        self.assertEqual(after, before)
        self.assertEqual(d.api("GET", "/v1/functions/autoscale/config")
                         .json["config"]["profile"], "default")


if __name__ == "__main__":
    unittest.main()
