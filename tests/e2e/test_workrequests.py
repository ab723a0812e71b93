"""GET /v1/workrequests on the real daemon: the filters, sort and pages of
OCI Data Science's ListWorkRequests (id, operationType, status, sortBy,
sortOrder, limit, page and the opc-next-page header) and deploymentId,
each checked against the whole list, and bad values refused with a 400
that names the parameter; and `mdscale workrequest list`, which passes
them on and prints the next page's token on stderr."""
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

    def cli_ok(self, *args):
        out = self.d.cli("workrequest", "list", *args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out

    def table_ids(self, out):
        lines = out.stdout.splitlines()
        self.assertEqual(lines[0].split()[0], "ID", out.stdout)
        return [line.split()[0] for line in lines[1:]]

    def test_the_cli_filters_by_operation_with_or_without_deployment(self):
        every = self.ids()
        out = self.cli_ok("-o", "json")
        self.assertEqual([w["id"] for w in json.loads(out.stdout)["items"]],
                         every)
        self.assertEqual(out.stderr, "")
        for op in ("DELETE_DEPLOYMENT", "update_deployment"):
            want = self.ids("?operationType=" + op.upper())
            self.assertTrue(want)
            self.assertLess(len(want), len(every))
            self.assertEqual(self.table_ids(self.cli_ok("--operation", op)),
                             want, op)
        out = self.cli_ok("--deployment", "a", "--operation",
                          "CREATE_DEPLOYMENT", "-o", "json")
        self.assertEqual([w["id"] for w in json.loads(out.stdout)["items"]],
                         [self.wr["a.create"]])

    def cli_walk(self, limit, *args):
        """Every page through the CLI, following the token that stderr
        prints; returns the pages' ids."""
        pages, more = [], []
        while True:
            out = self.cli_ok("--limit", str(limit), *more, *args)
            if "-o" in args:
                pages.append([w["id"] for w in
                              json.loads(out.stdout)["items"]])
            else:
                pages.append(self.table_ids(out))
            self.assertLessEqual(len(pages[-1]), limit)
            if out.stderr == "":
                return pages
            self.assertRegex(out.stderr, r"^mdscale: more: --page \S+\n$")
            more = out.stderr.split()[-2:]
            self.assertEqual(more, ["--page", pages[-1][-1]])
            self.assertLess(len(pages), 50, "pages never end")

    def test_the_cli_pages_through_every_work_request_once(self):
        for args, query in (
                ((), ""),
                (("--sort-order", "asc", "-o", "json"), "sortOrder=ASC"),
                (("--state", "succeeded", "--sort-by", "status"),
                 "status=SUCCEEDED&sortBy=status")):
            every = self.ids("?" + query)
            pages = self.cli_walk(2, *args)
            self.assertEqual([i for p in pages for i in p], every, args)
            self.assertEqual(len(pages), (len(every) + 1) // 2, args)
        out = self.cli_ok("--limit", "1", "-o", "yaml")
        self.assertIn(self.ids()[0], out.stdout)
        self.assertEqual(out.stderr,
                         "mdscale: more: --page %s\n" % self.ids()[0])
        out = self.cli_ok("--limit", "100")
        self.assertEqual(self.table_ids(out), self.ids())
        self.assertEqual(out.stderr, "")

    def test_the_cli_refuses_a_bad_limit_in_one_line(self):
        for bad in ("0", "101", "2x"):
            out = self.d.cli("workrequest", "list", "--limit", bad)
            self.assertEqual(out.returncode, 1, out)
            self.assertEqual(out.stdout, "")
            lines = out.stderr.splitlines()
            self.assertEqual(len(lines), 1, out.stderr)
            self.assertRegex(lines[0], r"^mdscale: limit must be an integer "
                             r"from 1 to 100 .*HTTP 400")
        out = self.d.cli("workrequest", "list", "--limit", "0", "-o", "json")
        self.assertEqual(out.returncode, 1, out)
        err = json.loads(out.stderr)["error"]
        self.assertEqual((err["status"], err["code"]),
                         (400, "InvalidParameter"))
        out = self.d.cli("workrequest", "list", "--operation", "SCALE")
        self.assertEqual(out.returncode, 1, out)
        self.assertEqual(len(out.stderr.splitlines()), 1, out.stderr)
        self.assertIn("operationType must be one of", out.stderr)


if __name__ == "__main__":
    unittest.main()
