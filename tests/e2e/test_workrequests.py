"""GET /v1/workrequests on the real daemon: the filters, sort and pages of
OCI Data Science's ListWorkRequests (id, operationType, status, sortBy,
sortOrder, limit, page and the opc-next-page header) and deploymentId,
each checked against the whole list, and bad values refused with a 400
that names the parameter."""
import json
import unittest

from harness import Daemon, wait_for


class WorkRequestsListTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        d = cls.d
        cls.wr = {}

        def create(name, **kw):
            spec = {"displayName": name, "command": "exec sleep 60",
                    "instanceShapeName": "local.xs", "instanceCount": 0}
            spec.update(kw)
            r = d.api("POST", "/v1/deployments", spec)
            assert r.status == 201, r
            cls.wr[name + ".create"] = r.headers["opc-work-request-id"]
            d.wait_wr(cls.wr[name + ".create"])
            return r.json["id"]

        # Work requests of every operation, and a failed one: no instance
        # of "stuck" ever answers its health path.
        cls.a = create("a")
        r = d.api("PUT", "/v1/deployments/a",
                  {"instanceShapeName": "local.s"})
        assert r.status == 202, r
        cls.wr["a.update"] = r.json["id"]
        d.wait_wr(cls.wr["a.update"])
        create("b")
        create("stuck", instanceCount=1, readyTimeoutSeconds=1)
        r = d.api("DELETE", "/v1/deployments/b")
        assert r.status == 202, r
        cls.wr["b.delete"] = r.json["id"]
        d.wait_wr(cls.wr["b.delete"])

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def items(self, query=""):
        r = self.d.api("GET", "/v1/workrequests" + query)
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def ids(self, query=""):
        return [w["id"] for w in self.items(query)]

    def refused(self, query, field):
        r = self.d.api("GET", "/v1/workrequests?" + query)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["field"], field, r)
        self.assertIn(field, r.json["message"])
        return r.json["message"]

    def test_default_order_is_newest_first(self):
        every = self.items()
        self.assertGreaterEqual(len(every), 5)
        times = [w["timeAccepted"] for w in every]
        self.assertEqual(times, sorted(times, reverse=True))
        self.assertEqual(self.ids("?sortOrder=ASC"),
                         [w["id"] for w in reversed(every)])
        self.assertEqual(self.ids("?sortBy=timeAccepted&sortOrder=desc"),
                         [w["id"] for w in every])

    def test_filters(self):
        every = self.items()
        for q, keep in (
                ("operationType=DELETE_DEPLOYMENT",
                 lambda w: w["operationType"] == "DELETE_DEPLOYMENT"),
                ("operationType=update_deployment",
                 lambda w: w["operationType"] == "UPDATE_DEPLOYMENT"),
                ("status=FAILED", lambda w: w["status"] == "FAILED"),
                ("status=SUCCEEDED", lambda w: w["status"] == "SUCCEEDED"),
                ("deploymentId=" + self.a,
                 lambda w: w["deploymentId"] == self.a),
                ("id=" + self.wr["a.update"],
                 lambda w: w["id"] == self.wr["a.update"]),
                ("deploymentId=%s&operationType=CREATE_DEPLOYMENT" % self.a,
                 lambda w: w["deploymentId"] == self.a and
                 w["operationType"] == "CREATE_DEPLOYMENT")):
            want = [w["id"] for w in every if keep(w)]
            self.assertTrue(want, q)
            self.assertEqual(self.ids("?" + q), want, q)
        self.assertIn(self.wr["b.delete"],
                      self.ids("?operationType=DELETE_DEPLOYMENT"))
        self.assertIn(self.wr["stuck.create"], self.ids("?status=FAILED"))
        self.assertEqual(self.ids("?id=" + self.wr["a.update"]),
                         [self.wr["a.update"]])
        self.assertEqual(self.ids("?id=wr-0000000000000000"), [])

    def test_sort_by_status_and_operation(self):
        every = self.items()
        age = {w["id"]: i for i, w in enumerate(reversed(every))}
        for key in ("status", "operationType"):
            want = sorted(every, key=lambda w: (w[key], age[w["id"]]))
            self.assertEqual(self.ids("?sortBy=%s&sortOrder=ASC" % key),
                             [w["id"] for w in want], key)
            self.assertEqual(self.ids("?sortBy=%s" % key),
                             [w["id"] for w in reversed(want)], key)

    def walk(self, query, limit):
        """Every page of query, limit at a time; returns the pages."""
        pages, page = [], None
        while True:
            q = "?limit=%d%s%s" % (limit, query,
                                   "&page=" + page if page else "")
            r = self.d.api("GET", "/v1/workrequests" + q)
            self.assertEqual(r.status, 200, r)
            pages.append([w["id"] for w in r.json["items"]])
            self.assertLessEqual(len(pages[-1]), limit)
            page = r.headers.get("opc-next-page")
            if page is None:
                return pages
            self.assertEqual(page, pages[-1][-1])
            self.assertLess(len(pages), 50, "pages never end")

    def test_pages_follow_opc_next_page(self):
        for query in ("", "&sortOrder=ASC", "&sortBy=status",
                      "&status=SUCCEEDED"):
            every = self.ids("?" + query[1:])
            pages = self.walk(query, 2)
            self.assertEqual([i for p in pages for i in p], every, query)
            self.assertEqual(len(pages), (len(every) + 1) // 2, query)
        self.assertEqual(self.walk("", 100), [self.ids()])

    def test_a_work_request_accepted_between_pages_moves_nothing(self):
        before = self.ids()
        r = self.d.api("GET", "/v1/workrequests?limit=2")
        first = [w["id"] for w in r.json["items"]]
        page = r.headers["opc-next-page"]
        r = self.d.api("POST", "/v1/deployments", {
            "displayName": "late", "command": "exec sleep 60",
            "instanceShapeName": "local.xs", "instanceCount": 0})
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.d.delete, r.json["id"])
        self.d.wait_wr(r.headers["opc-work-request-id"])
        rest = self.ids("?page=" + page)
        self.assertEqual(first + rest, before)
        self.assertEqual(self.ids()[0], r.headers["opc-work-request-id"])

    def test_bad_values_are_refused_naming_the_parameter(self):
        print()
        for query, field in (("status=DONE", "status"),
                             ("operationType=SCALE", "operationType"),
                             ("sortBy=displayName", "sortBy"),
                             ("sortOrder=UP", "sortOrder"),
                             ("limit=0", "limit"), ("limit=101", "limit"),
                             ("limit=2x", "limit"), ("limit=-1", "limit"),
                             ("limit=", None),
                             ("page=wr-0000000000000000", "page")):
            if field is None:
                self.assertEqual(self.d.api(
                    "GET", "/v1/workrequests?" + query).status, 200)
                continue
            print("# %s: %s" % (query, self.refused(query, field)))
        self.assertIn("ACCEPTED, IN_PROGRESS, SUCCEEDED, FAILED",
                      self.refused("status=DONE", "status"))

    def test_the_cli_passes_status_and_order_through(self):
        out = self.d.cli("workrequest", "list", "--deployment", "a",
                         "--state", "succeeded", "--sort-order", "asc",
                         "-o", "json")
        self.assertEqual(out.returncode, 0, out.stderr)
        got = [w["id"] for w in json.loads(out.stdout)["items"]]
        self.assertEqual(got, [self.wr["a.create"], self.wr["a.update"]])
        out = self.d.cli("workrequest", "list", "--deployment", "a",
                         "--sort-by", "displayName")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1)
        self.assertIn("sortBy", out.stderr)


if __name__ == "__main__":
    unittest.main()
