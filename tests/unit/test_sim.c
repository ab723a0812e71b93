/* test_sim.c - the simulator: the queue model, the decision rules, the
 * live alarm path on the virtual clock, the oracle, policy files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"
#include "sim/sim_alarms.h"
#include "util/err.h"

static struct trace *trace_of(const char *text)
{
	struct trace_opts o = { TRACE_TIMES, 0, 0 };
	struct trace *t = NULL;
	char diag[200] = "";

	assert_int_equal(trace_parse(text, strlen(text), &o, &t, diag,
				     sizeof(diag)),
			 0);
	return t;
}

/* A fixed policy: never scales (a rule with min = max). */
static void fixed(struct sim_policy *p, uint32_t n)
{
	assert_int_equal(sim_policy_builtin("mdscale", p), 0);
	p->min_instances = p->max_instances = p->initial = n;
}

/* Runs t through policy p with no oracle, into *r; the run must succeed. */
static void run_ok(const struct trace *t, const struct sim_model *m,
		   const struct sim_policy *p, struct sim_result *r)
{
	char diag[200] = "";
	int rc = sim_run(t, m, p, NULL, 0, r, diag, sizeof(diag));

	if (rc != 0)
		print_error("sim_run: %s: %s\n", mds_err_name(rc), diag);
	assert_int_equal(rc, 0);
}

/* o as the oracle's schedule c of n seconds. */
static void oracle_policy(struct sim_policy *o, uint16_t *c, size_t n)
{
	snprintf(o->name, sizeof(o->name), "oracle");
	o->kind = SIM_SCHEDULE;
	o->min_instances = 1;
	o->max_instances = SIM_MAX_INSTANCES;
	o->initial = c[0];
	o->schedule = c;
	o->nschedule = n;
}

static void test_queue_one_instance(void **state)
{
	/* Service 10 ms: three requests at once wait 0, 10 and 20 ms. */
	struct trace *t = trace_of("0\n0\n0\n1\n");
	struct sim_model m;
	struct sim_policy p;
	struct sim_result r;

	(void)state;
	sim_model_default(&m);
	m.service_ms = 10;
	m.slo_ms = 25;
	fixed(&p, 1);
	run_ok(t, &m, &p, &r);
	assert_int_equal(r.requests, 4);
	assert_int_equal(r.within_slo, 3); /* the third: 30 ms */
	assert_true(fabs(r.p99_ms - 30) < 0.5);
	assert_true(fabs(r.p50_ms - 10) < 0.2 || fabs(r.p50_ms - 20) < 0.3);
	assert_int_equal(r.refused, 0);
	assert_int_equal(r.actions, 0);
	assert_true(fabs(r.instance_seconds - 2.0) < 1e-6);
	assert_int_equal(r.seconds[0].arrivals, 3);
	assert_int_equal(r.seconds[1].arrivals, 1);
	sim_result_clear(&r);

	/* Two instances share the burst: least outstanding first. */
	fixed(&p, 2);
	run_ok(t, &m, &p, &r);
	assert_int_equal(r.within_slo, 4);
	assert_true(fabs(r.instance_seconds - 4.0) < 1e-6);
	sim_result_clear(&r);

	/* The gateway's limit: past max_clients outstanding, refused. */
	fixed(&p, 1);
	m.max_clients = 2;
	run_ok(t, &m, &p, &r);
	assert_int_equal(r.refused, 1);
	sim_result_clear(&r);
	trace_free(t);
}

/* A steady 200 requests/s for 60 s at 4 ms each: 80% of one instance. */
static struct trace *steady(double rate, int seconds)
{
	size_t cap = 64 + (size_t)(rate * seconds) * 16;
	char *text = malloc(cap);
	size_t len = 0;
	struct trace *t;

	for (int i = 0; i < (int)(rate * seconds); i++)
		len += (size_t)snprintf(text + len, cap - len, "%.6f\n",
					(double)i / rate);
	t = trace_of(text);
	free(text);
	return t;
}

static void test_utilization_and_overload(void **state)
{
	struct trace *t = steady(200, 60);
	struct sim_model m;
	struct sim_policy p;
	struct sim_result r;

	(void)state;
	sim_model_default(&m);
	m.service_ms = 4;
	/* mdscale sizes for its target utilization: 0.8 instance-seconds of
	 * work a second, evenly spaced, wants 1 instance (0.8 / 0.9) and
	 * holds it. */
	assert_int_equal(sim_policy_builtin("mdscale", &p), 0);
	run_ok(t, &m, &p, &r);
	assert_int_equal(r.seconds[30].instances, 1);
	assert_int_equal(r.reversals, 0);
	assert_true(r.within_slo > r.requests * 99 / 100);
	sim_result_clear(&r);

	/* Five times one instance's capacity: every policy must grow. */
	trace_free(t);
	t = steady(1250, 120);
	for (size_t i = 0; i < 5; i++) {
		static const char *const names[] = { "recipe", "oci-native",
						     "hpa", "kpa", "mdscale" };

		assert_int_equal(sim_policy_builtin(names[i], &p), 0);
		run_ok(t, &m, &p, &r);
		if (r.seconds[119].instances < 2 &&
		    strcmp(names[i], "oci-native") != 0)
			print_error("%s: %u instances\n", names[i],
				    r.seconds[119].instances);
		/* oci-native waits 3 minutes: it has not moved yet. */
		if (strcmp(names[i], "oci-native") == 0)
			assert_int_equal(r.seconds[119].instances, 1);
		else
			assert_true(r.seconds[119].instances >= 2);
		sim_result_clear(&r);
	}
	trace_free(t);
}

static void feed(struct rule_state *s, int n, double cpu, double conc)
{
	for (int i = 0; i < n; i++)
		rule_observe(s, &(struct rule_obs){ cpu, conc, conc });
}

static void test_rule_hpa(void **state)
{
	struct rule_params p;
	struct rule_state s;

	(void)state;
	rule_params_default(RULE_HPA, &p);
	rule_state_init(&s);
	/* Inside the tolerance: 85 / 80 = 1.06. */
	feed(&s, 15, 85, 0);
	assert_int_equal(rule_decide(&p, &s, 15000, 4, 4, 1, 100), 4);
	/* 160% of target: ceil(4 x 2) = 8. */
	feed(&s, 15, 160, 0);
	assert_int_equal(rule_decide(&p, &s, 30000, 4, 4, 1, 100), 8);
	/* 1000%: limited to max(+4, +100%) = 8 from 4. */
	feed(&s, 15, 800, 0);
	assert_int_equal(rule_decide(&p, &s, 45000, 4, 4, 1, 100), 8);
	/* Low: the 300 s stabilization keeps the highest recent desire. */
	feed(&s, 15, 10, 0);
	assert_int_equal(rule_decide(&p, &s, 60000, 8, 8, 1, 100), 8);
	rule_state_init(&s);
	feed(&s, 15, 40, 0);
	assert_int_equal(rule_decide(&p, &s, 15000, 8, 8, 1, 100), 4);
}

static void test_rule_kpa(void **state)
{
	struct rule_params p;
	struct rule_state s;

	(void)state;
	rule_params_default(RULE_KPA, &p);
	rule_state_init(&s);
	/* Stable: 1.3 in flight at 0.7 a pod: 2 pods. */
	feed(&s, 60, 0, 1.3);
	assert_int_equal(rule_decide(&p, &s, 60000, 2, 2, 1, 100), 2);
	/* A burst: 6 s at 6.9 in flight wants 10, >= 200% of 2: panic. */
	feed(&s, 6, 0, 6.9);
	assert_int_equal(rule_decide(&p, &s, 66000, 2, 2, 1, 100), 10);
	/* In panic it does not scale down, though the burst is over. */
	feed(&s, 10, 0, 0.6);
	assert_int_equal(rule_decide(&p, &s, 76000, 10, 10, 1, 100), 10);
	/* 60 s without a new panic: back to the stable window, which
	 * wants 1, but Knative's max-scale-down-rate of 2 halves at most a
	 * tick: 5, then 2. */
	feed(&s, 60, 0, 0.6);
	assert_int_equal(rule_decide(&p, &s, 130000, 10, 10, 1, 100), 5);
	feed(&s, 2, 0, 0.6);
	assert_int_equal(rule_decide(&p, &s, 132000, 5, 5, 1, 100), 2);
	/* In panic the stable desire counts too, if it is the larger. */
	rule_state_init(&s);
	feed(&s, 54, 0, 4.0);
	feed(&s, 6, 0, 2.8);
	/* panic: ceil(2.8 / 0.7) = 4 >= 2 x 1 ready; stable: mean 3.88 ->
	 * 6. */
	assert_int_equal(rule_decide(&p, &s, 60000, 1, 1, 1, 100), 6);
}

/* Feeds n seconds of offered load w (and as much in flight). */
static void load(struct rule_state *s, int n, double w)
{
	feed(s, n, 0, w);
}

static void test_rule_mdscale(void **state)
{
	struct rule_params p;
	struct rule_state s;
	int64_t t = 0;

	(void)state;
	rule_params_default(RULE_MDSCALE, &p);
	rule_state_init(&s);
	/* Up at once: 3 s of work a second at 0.9 is 4 instances. */
	load(&s, 2, 3);
	assert_int_equal(rule_decide(&p, &s, 2000, 2, 2, 1, 100), 4);
	/* The level is the 98th percentile of the seconds of the window:
	 * one second of 3 in 60 seconds of 1 is the top 2% and wants 2
	 * instances (1 / 0.9), two such seconds want 4 (3 / 0.9). */
	rule_state_init(&s);
	load(&s, 59, 1);
	load(&s, 1, 3);
	load(&s, 2, 1);
	assert_int_equal(rule_decide(&p, &s, 62000, 1, 1, 1, 100), 2);
	load(&s, 1, 3);
	assert_int_equal(rule_decide(&p, &s, 63000, 1, 1, 1, 100), 4);
	/* With quantile 0, headroom for the spread: a mean of 1
	 * alternating 0.4 and 1.6 (standard deviation 0.6) is sized for
	 * 1.6, at 0.72 3 instances where a steady 1 wants 2. */
	p.quantile = 0;
	p.target = 0.72;
	rule_state_init(&s);
	for (int i = 0; i < 60; i++)
		load(&s, 1, i % 2 ? 1.6 : 0.4);
	assert_int_equal(rule_decide(&p, &s, 60000, 1, 1, 1, 100), 3);
	rule_state_init(&s);
	load(&s, 60, 1);
	assert_int_equal(rule_decide(&p, &s, 60000, 1, 1, 1, 100), 2);
	rule_params_default(RULE_MDSCALE, &p);
	/* A rising load is carried over the start-up delay: 0.02 more a
	 * second for 60 s. */
	rule_state_init(&s);
	for (int i = 0; i < 60; i++)
		load(&s, 1, 1.0 + 0.02 * i);
	uint32_t with = rule_decide(&p, &s, 60000, 1, 1, 1, 100);
	p.lead_ms = 0;
	rule_state_init(&s);
	for (int i = 0; i < 60; i++)
		load(&s, 1, 1.0 + 0.02 * i);
	assert_true(with >= rule_decide(&p, &s, 60000, 1, 1, 1, 100));
	rule_params_default(RULE_MDSCALE, &p);

	/* Requests in flight 27.5 times their service time: a burst, the
	 * short window is sized at target (ceil(2 / 0.9) = 3), where the
	 * shortfall alone wants 2 and the level 1. */
	rule_state_init(&s);
	load(&s, 98, 0.3);
	load(&s, 2, 2);
	assert_int_equal(rule_decide(&p, &s, 100000, 1, 1, 1, 100), 2);
	rule_state_init(&s);
	load(&s, 98, 0.3);
	for (int i = 0; i < 2; i++)
		rule_observe(&s, &(struct rule_obs){ 0, 55, 2 });
	assert_int_equal(rule_decide(&p, &s, 100000, 1, 1, 1, 100), 3);

	/* Nothing down in the first down_window. */
	rule_state_init(&s);
	load(&s, 10, 0.1);
	assert_int_equal(rule_decide(&p, &s, 10000, 4, 4, 1, 100), 4);
	/* Down: never within hold_ms of a move up, its end included (a move
	 * down exactly hold_ms after would count as a reversal within the
	 * default flap window, 120 s, which hold_ms equals), then by at most
	 * half. */
	rule_state_init(&s);
	load(&s, 200, 6.5);
	t = 200000;
	assert_int_equal(rule_decide(&p, &s, t, 2, 2, 1, 100), 8);
	for (int i = 1; i <= 400; i++) {
		uint32_t w;

		load(&s, 1, 0.5);
		w = rule_decide(&p, &s, t + i * 1000, 8, 8, 1, 100);
		if (i * 1000 <= p.hold_ms)
			assert_int_equal(w, 8);
		if (w != 8) {
			/* The first move down: at most half. */
			assert_true(w >= 4 && w < 8);
			break;
		}
		assert_true(i < 400);
	}
}

/* Feeds n seconds of offered load w with c requests in flight. */
static void busy(struct rule_state *s, int n, double c, double w)
{
	for (int i = 0; i < n; i++)
		rule_observe(s, &(struct rule_obs){ 0, c, w });
}

/* What a burst added goes burst_hold_ms after the last burst; what the
 * level wants stays. */
static void test_rule_mdscale_burst_release(void **state)
{
	struct rule_params p;
	struct rule_state s;
	int64_t t = 200000;

	(void)state;
	for (int hold = 0; hold < 2; hold++) {
		rule_params_default(RULE_MDSCALE, &p);
		if (hold == 0)
			p.burst_hold_ms = 0;
		rule_state_init(&s);
		/* A level of 2: 3 instances at 0.9, 4 at the stricter
		 * 0.63, so the level alone keeps a fourth. */
		busy(&s, 200, 2, 2);
		assert_int_equal(rule_decide(&p, &s, t, 3, 3, 1, 100), 3);
		/* A burst: 80 in flight for 2.9 of work (ratio 28), which
		 * 3 instances could carry at full utilization; over when
		 * the short window is half past it. */
		busy(&s, 2, 80, 2.9);
		assert_int_equal(rule_decide(&p, &s, t + 2000, 3, 3, 1, 100),
				 4);
		for (int64_t i = 1; i <= 500; i++) {
			uint32_t w;

			busy(&s, 1, 2, 2);
			w = rule_decide(&p, &s, t + 2000 + i * 1000, 4, 4, 1,
					100);
			if (hold == 0 || i < 400) {
				assert_int_equal(w, 4);
				continue;
			}
			/* 400 s after the last burst: back to 3. */
			assert_int_equal(w, 3);
			break;
		}
	}
}

/* A burst whose queue still grows once its move up is ready: one more;
 * not when it shrinks, nor for a later burst. */
/*
 * Drives the mdscale rule second by second, the count following each
 * desire: 300 s of load 3, quiet (0.1) until it moves down, quiet for gap
 * seconds more, 30 s of load 3 again, then quiet. Returns how long that
 * last quiet spell lasted before its first move down.
 */
static int64_t quiet_until_down(const struct rule_params *p, int gap)
{
	struct rule_state s;
	uint32_t cur = 1, want;
	int64_t down_at = -1, quiet2 = -1;

	rule_state_init(&s);
	for (int64_t t = 1; t < 3000; t++) {
		double w = 0.1;

		if (t <= 300 || (down_at >= 0 && t > down_at + gap &&
				 t <= down_at + gap + 30))
			w = 3;
		if (down_at >= 0 && t > down_at + gap + 30 && quiet2 < 0)
			quiet2 = t;
		load(&s, 1, w);
		want = rule_decide(p, &s, t * 1000, cur, cur, 1, 100);
		if (want < cur && down_at < 0)
			down_at = t;
		else if (want < cur && quiet2 >= 0)
			return t - quiet2;
		cur = want;
	}
	return -1;
}

/* Flap damping: the load back within the flap window of a move down (a
 * reversal) doubles the scale-down window for a while; with dampMax 1 it
 * stays. */
static void test_rule_mdscale_damping(void **state)
{
	struct rule_params p;
	int64_t damped, plain, later;

	(void)state;
	rule_params_default(RULE_MDSCALE, &p);
	assert_int_equal(p.damp_max, 4);
	/* Back 30 s after the move down: a reversal. The next quiet spell
	 * waits out a window of 360 s instead of 180. */
	damped = quiet_until_down(&p, 30);
	p.damp_max = 1;
	plain = quiet_until_down(&p, 30);
	assert_true(plain > 100 && plain <= 181);
	assert_true(damped > 300 && damped <= 361);
	/* Back only after 200 s, past the 120 s flap window: no reversal,
	 * no damping. */
	p.damp_max = 4;
	later = quiet_until_down(&p, 200);
	assert_true(later > 100 && later <= 181);
	/* A reversal long ago is forgiven: the half-life shorter than the
	 * quiet spell after it. */
	p.damp_half_life_ms = 60000;
	assert_true(quiet_until_down(&p, 30) <= 181);
}

static void test_rule_mdscale_burst_grows(void **state)
{
	struct rule_params p;
	struct rule_state s;
	int64_t t = 100000;

	(void)state;
	rule_params_default(RULE_MDSCALE, &p);
	for (int c = 0; c < 3; c++) {
		rule_state_init(&s);
		busy(&s, 100, 1, 1);
		busy(&s, 2, 60, 2.5);
		assert_int_equal(rule_decide(&p, &s, t, 2, 2, 1, 100), 3);
		if (c == 2) {
			/* A second without a burst: the next is another. */
			busy(&s, 1, 1, 1);
			assert_int_equal(
				rule_decide(&p, &s, t + 1000, 3, 3, 1, 100), 3);
			busy(&s, 1, 400, 2.5);
			assert_int_equal(
				rule_decide(&p, &s, t + 2000, 3, 3, 1, 100), 3);
			busy(&s, 1, 800, 2.5);
			assert_int_equal(
				rule_decide(&p, &s, t + 3000, 3, 3, 1, 100), 3);
			continue;
		}
		busy(&s, 1, c == 0 ? 200 : 50, 2.5);
		assert_int_equal(rule_decide(&p, &s, t + 1000, 3, 3, 1, 100),
				 3);
		busy(&s, 1, c == 0 ? 400 : 40, 2.5);
		assert_int_equal(rule_decide(&p, &s, t + 2000, 3, 3, 1, 100),
				 c == 0 ? 4 : 3);
	}
}

/*
 * Runs the early check through one second starting at t in which work
 * arrives at rate instances a second, the count following each answer
 * from *cur; at[k] is the count after the tick (k + 1) x 100 ms in.
 */
static void early_second(const struct rule_params *p, struct rule_state *s,
			 int64_t t, double rate, uint32_t *cur, uint32_t at[9])
{
	for (int k = 1; k <= 9; k++) {
		*cur = rule_decide_early(p, s, t + k * 100, rate * k / 10.0,
					 k * 100, *cur, 1, 100);
		at[k - 1] = *cur;
	}
}

/* The early move up inside a second: at the tick where the arrived work
 * passes what the count serves in a whole second, to that work at
 * target; with its hold and damping; the second's decision then stays. */
static void test_rule_mdscale_early(void **state)
{
	static const uint32_t want[9] = { 2, 2, 2, 2, 2, 3, 3, 4, 4 };
	struct rule_params p;
	struct rule_state s;
	int64_t t = 200000;
	uint32_t cur = 2, at[9];

	(void)state;
	rule_params_default(RULE_MDSCALE, &p);
	assert_true(p.early); /* the default */
	/* A level of 1 (2 instances at 0.9), then 4 instances' work a
	 * second: 2.4 arrived by 600 ms passes the 2 a second of 2
	 * instances, up to ceil(2.4 / 0.9) = 3; 3.2 by 800 ms passes 3,
	 * up to 4. Exactly 2 (at 500 ms) is no shortfall yet. */
	rule_state_init(&s);
	load(&s, 200, 1);
	s.moved_down = true; /* a move down 10 s before: a reversal */
	s.last_down_ms = t - 10000;
	early_second(&p, &s, t, 4, &cur, at);
	for (int k = 0; k < 9; k++)
		assert_int_equal(at[k], want[k]);
	assert_true(s.moved_up);
	assert_int_equal(s.last_up_ms, t + 800);
	assert_int_equal(s.damp, 2);
	assert_false(s.moved_down);
	assert_false(s.burst_up);
	/* The second's decision (its mean over 2 s: 2.5, 3 instances) sees
	 * 4 and moves no more; without the early check it would move to
	 * 3 here. */
	load(&s, 1, 4);
	assert_int_equal(rule_decide(&p, &s, t + 1000, cur, cur, 1, 100), 4);
	assert_int_equal(s.last_up_ms, t + 800);
	/* The hold counts from the early move: quiet from here, the count
	 * stays while the time since t + 800 is at most hold_ms. */
	for (int64_t i = 1;; i++) {
		uint32_t w;

		load(&s, 1, 0.1);
		w = rule_decide(&p, &s, t + 1000 + i * 1000, 4, 4, 1, 100);
		if (1000 + i * 1000 - 800 <= p.hold_ms) {
			assert_int_equal(w, 4);
			continue;
		}
		assert_true(w < 4);
		break;
	}

	/* Below the threshold nothing moves nor is recorded: 1.9 a second
	 * never passes 2. */
	rule_state_init(&s);
	load(&s, 200, 1);
	cur = 2;
	early_second(&p, &s, t, 1.9, &cur, at);
	for (int k = 0; k < 9; k++)
		assert_int_equal(at[k], 2);
	assert_false(s.moved_up);
	/* Turned off, or another rule: nothing. */
	p.early = false;
	early_second(&p, &s, t, 4, &cur, at);
	assert_int_equal(at[8], 2);
	rule_params_default(RULE_KPA, &p);
	early_second(&p, &s, t, 4, &cur, at);
	assert_int_equal(at[8], 2);
	assert_false(s.moved_up);
	/* Clamped to max. */
	rule_params_default(RULE_MDSCALE, &p);
	assert_int_equal(rule_decide_early(&p, &s, t + 500, 9, 500, 2, 1, 5),
			 5);

	/* An early move inside a burst's first second is that burst's move
	 * up: its queue still growing lead_ms after it takes one more. */
	rule_state_init(&s);
	busy(&s, 100, 1, 1);
	t = 100000;
	assert_int_equal(rule_decide_early(&p, &s, t + 400, 2.5, 400, 2, 1,
					   100),
			 3);
	busy(&s, 1, 100, 2.5);
	assert_int_equal(rule_decide(&p, &s, t + 1000, 3, 3, 1, 100), 3);
	busy(&s, 1, 200, 2.5);
	assert_int_equal(rule_decide(&p, &s, t + 2000, 3, 3, 1, 100), 3);
	busy(&s, 1, 400, 2.5);
	assert_int_equal(rule_decide(&p, &s, t + 3000, 3, 3, 1, 100), 4);
}

/* n seconds at rate a second, then m at rate2, then n at rate. */
static struct trace *step(double rate, double rate2, int n, int m)
{
	size_t cap = 64 + (size_t)((rate * 2 * n + rate2 * m) * 16);
	char *text = malloc(cap);
	size_t len = 0;
	struct trace *t;
	double at = 0;

	while (at < 2 * n + m) {
		double r = at >= n && at < n + m ? rate2 : rate;

		len += (size_t)snprintf(text + len, cap - len, "%.6f\n", at);
		at += 1.0 / r;
	}
	t = trace_of(text);
	free(text);
	return t;
}

/* The level as a quantile of the offered load (quantile > 0). */
static void test_rule_mdscale_quantile(void **state)
{
	struct rule_params p;
	struct rule_state s;

	(void)state;
	rule_params_default(RULE_MDSCALE, &p);
	assert_true(p.quantile == 0.98); /* the default */
	p.quantile = 0.95;
	p.target = 1;
	p.lead_ms = 0;
	p.latency_ratio = 0;
	p.down_window_ms = 100000;
	rule_state_init(&s);
	/* 1, 2, ..., 100 instances of work in a shuffled order: the 95th
	 * of 100 is 95, whatever the order. */
	for (int i = 0; i < 100; i++)
		rule_observe(&s, &(struct rule_obs){
			0, 0, (double)((i * 37) % 100 + 1) });
	assert_int_equal(rule_decide(&p, &s, 100000, 10, 10, 1, 256), 95);
	/* The mean plus a deviation says otherwise: the option matters. */
	p.quantile = 0;
	assert_int_not_equal(rule_decide(&p, &s, 101000, 10, 10, 1, 256), 95);
}

static void test_mdscale_step(void **state)
{
	/* 4 ms requests: 125/s is half an instance; the step to 625/s is
	 * 2.5 instances' worth, for 5 minutes. */
	struct trace *t = step(125, 625, 300, 300);
	struct sim_model m;
	struct sim_policy p, o = { 0 };
	struct sim_result r, ro;
	uint16_t *c;
	size_t n;
	double cost;

	(void)state;
	sim_model_default(&m);
	m.service_ms = 4;
	assert_int_equal(sim_policy_builtin("mdscale", &p), 0);
	run_ok(t, &m, &p, &r);
	/* Up inside the step's first second (the early check: its work
	 * passes one instance's second within a few tenths), every
	 * second's p99 within the SLO (20 ms) from 4 s after it (3
	 * instances carry the step's 2.5 at 0.9, and the backlog the first
	 * one built while they started takes a fourth, started when the
	 * queue was still growing once they were ready), down after it, and
	 * no reversal. */
	assert_int_equal(r.seconds[299].instances, 1);
	assert_true(r.seconds[300].instances >= 3);
	assert_true(r.seconds[301].ready >= 3);
	for (size_t i = 0; i < r.nseconds; i++)
		if (i < 300 || i >= 304)
			assert_true(r.seconds[i].p99_ms <= 20.0);
	assert_true(r.seconds[304].instances >= 4);
	assert_true(r.seconds[599].instances >= 4);
	assert_true(r.seconds[899].instances <= 2);
	assert_int_equal(r.reversals, 0);
	assert_true(r.within_slo >= r.requests * 99 / 100);
	/* Without it, up only at the step's first whole second. */
	p.rule.early = false;
	run_ok(t, &m, &p, &ro);
	assert_int_equal(ro.seconds[300].instances, 1);
	assert_true(ro.seconds[301].instances >= 2);
	assert_true(ro.within_slo < r.within_slo);
	sim_result_clear(&ro);
	p.rule.early = true;
	/* The cost against the oracle's schedule at 0.75 on the same
	 * trace: bounded. */
	assert_int_equal(sim_oracle(t, &m, 1, 0.75, &c, &n, &cost), 0);
	oracle_policy(&o, c, n);
	run_ok(t, &m, &o, &ro);
	print_message("mdscale %.0f instance-s, %.3f%%; oracle %.0f, %.3f%%\n",
		      r.instance_seconds,
		      100.0 * (double)r.within_slo / (double)r.requests,
		      ro.instance_seconds,
		      100.0 * (double)ro.within_slo / (double)ro.requests);
	assert_true(r.instance_seconds <= 1.6 * ro.instance_seconds);
	free(c);
	sim_result_clear(&ro);
	sim_result_clear(&r);
	trace_free(t);
}

static void test_alarm_path(void **state)
{
	struct sim_alarms *a;
	struct policy p;
	const struct sim_decision *log;
	uint32_t want = 1;
	size_t n;
	char diag[200];

	(void)state;
	policy_recipe(&p);
	assert_int_equal(sim_alarms_new(&p, &a, diag, sizeof(diag)), 0);
	/* CPU at 95% every second: the 5-minute mean passes 80 at once, the
	 * trigger delay is a minute. A query window ends before its
	 * evaluation time, so the condition holds from the second tick (2 s)
	 * and the alarm fires at 62 s, then repeats every 5 minutes. */
	for (int64_t s = 1; s <= 400; s++) {
		assert_int_equal(sim_alarms_sample(a, 0, s * 1000, 95, 10), 0);
		assert_int_equal(sim_alarms_tick(a, s * 1000, want, "ACTIVE",
						 &want),
				 0);
	}
	log = sim_alarms_log(a, &n);
	assert_int_equal(n, 2);
	assert_int_equal(log[0].t_ms, 62000);
	assert_string_equal(log[0].type, "OK_TO_FIRING");
	assert_int_equal(log[0].from, 1);
	assert_int_equal(log[0].to, 2);
	assert_int_equal(log[1].t_ms, 362000);
	assert_string_equal(log[1].type, "REPEAT");
	assert_int_equal(want, 3);
	/* Low CPU now: once the scale-down alarm made after the move sees a
	 * whole minute's max below 20, it fires after its minute's delay and
	 * takes one instance away. */
	for (int64_t s = 401; s <= 700; s++) {
		assert_int_equal(sim_alarms_sample(a, 0, s * 1000, 5, 10), 0);
		assert_int_equal(sim_alarms_tick(a, s * 1000, want, "ACTIVE",
						 &want),
				 0);
	}
	log = sim_alarms_log(a, &n);
	assert_int_equal(n, 3);
	assert_string_equal(log[2].title, POLICY_TITLE_LOW_CPU);
	assert_int_equal(log[2].to, 2);
	sim_alarms_free(a);
}

/* The oracle refined per second: a valid schedule that meets the goal
 * and costs no more than the one at a single utilization. */
static void test_oracle_hindsight(void **state)
{
	struct trace *t = step(125, 625, 300, 300);
	struct sim_model m;
	struct sim_policy o = { 0 };
	struct sim_result ro, rh;
	uint16_t *c, *h, nmax = 1;
	size_t n, nh;
	double cost;

	(void)state;
	sim_model_default(&m);
	m.service_ms = 4;
	assert_int_equal(sim_oracle(t, &m, 1, 0.75, &c, &n, &cost), 0);
	oracle_policy(&o, c, n);
	run_ok(t, &m, &o, &ro);
	for (size_t i = 0; i < n; i++)
		if (c[i] > nmax)
			nmax = c[i];
	assert_int_equal(sim_oracle_hindsight(t, &m, 1, nmax, 0.99, &h, &nh,
					      &rh),
			 0);
	assert_int_equal(nh, n);
	for (size_t i = 0; i < nh; i++)
		assert_true(h[i] >= 1 && h[i] <= nmax);
	assert_true(rh.within_slo >= rh.requests * 99 / 100);
	assert_true(rh.instance_seconds <= ro.instance_seconds);
	print_message("hindsight %.0f instance-s, %.3f%%; at 0.75 %.0f, "
		      "%.3f%%\n", rh.instance_seconds,
		      100.0 * (double)rh.within_slo / (double)rh.requests,
		      ro.instance_seconds,
		      100.0 * (double)ro.within_slo / (double)ro.requests);
	free(h);
	sim_result_clear(&rh);
	/* One instance through a step to 2.5 instances' worth meets no
	 * goal of 99%; a maximum below the minimum is refused. */
	assert_int_equal(sim_oracle_hindsight(t, &m, 1, 1, 0.99, &h, &nh,
					      &rh),
			 MDS_E_NOTFOUND);
	assert_int_equal(sim_oracle_hindsight(t, &m, 2, 1, 0.99, &h, &nh,
					      &rh),
			 MDS_E_INVAL);
	free(c);
	sim_result_clear(&ro);
	trace_free(t);
}

/* Every 30 s a 3 s burst at 2.4 instances' worth over a base of 0.4
 * (4 ms requests), for 600 s. */
static struct trace *bursts(void)
{
	size_t cap = 2u << 20, len = 0;
	char *text = malloc(cap);
	struct trace *t;
	double at = 0;

	while (at < 600) {
		double r = (int)at % 30 < 3 ? 600 : 100;

		len += (size_t)snprintf(text + len, cap - len, "%.6f\n", at);
		at += 1.0 / r;
	}
	t = trace_of(text);
	free(text);
	return t;
}

/* The steady oracle: no reversal within the flap window, the goal met,
 * no cheaper than the oracle per second, which reverses; its bound below
 * its cost. With a window of 0 it may move as the oracle does. */
static void test_oracle_steady(void **state)
{
	struct trace *t = bursts();
	struct sim_model m;
	struct sim_result rh, rs, r0;
	uint16_t *h, *c, *c0;
	size_t nh, n, n0;
	double bound, bound0;

	(void)state;
	sim_model_default(&m);
	m.service_ms = 4;
	assert_int_equal(sim_oracle_hindsight(t, &m, 1, 6, 0.99, &h, &nh, &rh),
			 0);
	assert_true(rh.reversals > 0);
	assert_int_equal(sim_oracle_steady(t, &m, h[0], 6, 0.99, &c, &n, &rs,
					   &bound),
			 0);
	assert_int_equal(n, nh);
	assert_int_equal(rs.reversals, 0);
	assert_true(rs.within_slo >= rs.requests * 99 / 100);
	assert_true(rs.instance_seconds >= rh.instance_seconds);
	assert_true(bound <= rs.instance_seconds);
	for (size_t i = 0; i < n; i++)
		assert_true(c[i] >= 1 && c[i] <= 6);
	print_message("per second %.0f instance-s (%u reversals); steady "
		      "%.0f, bound %.0f\n", rh.instance_seconds, rh.reversals,
		      rs.instance_seconds, bound);
	m.flap_window_ms = 0;
	assert_int_equal(sim_oracle_steady(t, &m, h[0], 6, 0.99, &c0, &n0,
					   &r0, &bound0),
			 0);
	assert_true(r0.instance_seconds < rs.instance_seconds);
	assert_true(r0.within_slo >= r0.requests * 99 / 100);
	/* Bad arguments. */
	assert_int_equal(sim_oracle_steady(t, &m, 0, 6, 0.99, &c0, &n0, &r0,
					   &bound0),
			 MDS_E_INVAL);
	assert_int_equal(sim_oracle_steady(t, &m, 7, 6, 0.99, &c0, &n0, &r0,
					   &bound0),
			 MDS_E_INVAL);
	free(h);
	free(c);
	free(c0);
	sim_result_clear(&rh);
	sim_result_clear(&rs);
	sim_result_clear(&r0);
	trace_free(t);
}

static void test_oracle(void **state)
{
	/* 1 s of 300 requests of 4 ms (1.2 instance-seconds), then nothing
	 * for 3 s, then 100 requests. */
	char text[8192];
	size_t len = 0;
	struct trace *t;
	struct sim_model m;
	uint16_t *c;
	size_t n;
	double cost;

	(void)state;
	for (int i = 0; i < 300; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"%.4f\n", i / 300.0);
	for (int i = 0; i < 100; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"%.4f\n", 4 + i / 100.0);
	t = trace_of(text);
	sim_model_default(&m);
	m.service_ms = 4;
	m.startup_ms = 1000;
	m.price_hour = 3600;
	assert_int_equal(sim_oracle(t, &m, 1, 0.8, &c, &n, &cost), 0);
	assert_int_equal(n, 5);
	/* ceil(1.2 / 0.8) = 2 in second 0; 1 (the floor) after; second 3
	 * is billed for second 4's need, started a second ahead. */
	assert_int_equal(c[0], 2);
	assert_int_equal(c[1], 1);
	assert_int_equal(c[2], 1);
	assert_int_equal(c[3], 1);
	assert_int_equal(c[4], 1);
	assert_true(fabs(cost - 6.0) < 1e-9);
	free(c);
	assert_int_equal(sim_oracle(t, &m, 1, 0.3, &c, &n, &cost), 0);
	/* 1.2 / 0.3 = 4 in second 0; second 4: 0.4 / 0.3 -> 2, billed from
	 * second 3. */
	assert_int_equal(c[0], 4);
	assert_int_equal(c[3], 2);
	assert_int_equal(c[4], 2);
	free(c);
	assert_int_equal(sim_oracle(t, &m, 1, 0, &c, &n, &cost), MDS_E_INVAL);
	trace_free(t);
}

/* The start: every policy starts with the instances the oracle has ready
 * at time 0, and so does the oracle's own run; nothing starts with more. */
static void test_start_equal(void **state)
{
	/* 4 ms requests: 0.4 instances' work in second 0, 2.4 in second 2
	 * (three instances at 0.8), little after. */
	char text[16384];
	size_t len = 0;
	static const char *const names[] = {
		"recipe", "oci-native", "hpa", "kpa", "mdscale",
	};
	struct trace *t;
	struct sim_model m;
	struct sim_policy p, o = { 0 };
	struct sim_result r, ro;
	uint16_t *c;
	size_t n;
	double cost;
	char diag[200];

	(void)state;
	for (int i = 0; i < 100; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"%.4f\n", i / 100.0);
	for (int i = 0; i < 600; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"%.4f\n", 2 + i / 600.0);
	for (int i = 0; i < 50; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"%.4f\n", 3 + i / 10.0);
	t = trace_of(text);
	sim_model_default(&m);
	m.service_ms = 4;
	m.startup_ms = 1500;
	assert_int_equal(sim_oracle(t, &m, 1, 0.8, &c, &n, &cost), 0);
	/* Start-up 1.5 s: second 2's three instances are started at 0. */
	assert_int_equal(c[0], 3);
	snprintf(o.name, sizeof(o.name), "oracle");
	o.kind = SIM_SCHEDULE;
	o.min_instances = 1;
	o.max_instances = SIM_MAX_INSTANCES;
	o.schedule = c;
	o.nschedule = n;
	/* As the command runs it: its start from the same rule. */
	o.initial = sim_initial(&o, c, n);
	assert_int_equal(o.initial, 3);
	run_ok(t, &m, &o, &ro);
	assert_int_equal(ro.seconds[0].ready, 3);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(sim_policy_builtin(names[i], &p), 0);
		assert_int_equal(p.initial, 0); /* auto */
		assert_int_equal(sim_run(t, &m, &p, c, n, &r, diag,
					 sizeof(diag)),
				 0);
		assert_int_equal(r.seconds[0].ready, ro.seconds[0].ready);
		sim_result_clear(&r);
	}
	/* Without the oracle: the minimum; kept within min and max; an
	 * explicit count wins. */
	assert_int_equal(sim_initial(&p, NULL, 0), 1);
	p.max_instances = 2;
	assert_int_equal(sim_initial(&p, c, n), 2);
	p.min_instances = p.max_instances = 5;
	assert_int_equal(sim_initial(&p, c, n), 5);
	p.max_instances = 8;
	p.initial = 6;
	assert_int_equal(sim_initial(&p, c, n), 6);
	assert_int_equal(sim_policy_set(&p, "initial", "auto", diag,
					sizeof(diag)),
			 0);
	assert_int_equal(p.initial, 0);
	free(c);
	sim_result_clear(&ro);
	trace_free(t);
}

static void expect_file_error(const char *text, const char *want)
{
	struct sim_policy p;
	char diag[300] = "";

	assert_int_not_equal(sim_policy_parse(text, strlen(text), &p, diag,
					      sizeof(diag)),
			     0);
	assert_string_equal(diag, want);
}

static void test_policy_file(void **state)
{
	static const char text[] = "# a faster recipe\n"
				   "base = recipe\n"
				   "name = quick\n"
				   "highWindow = 1m\n"
				   "highPending = PT10S\n"
				   "max = 20\n";
	struct sim_policy p;
	char diag[300];

	(void)state;
	assert_int_equal(sim_policy_parse(text, strlen(text), &p, diag,
					  sizeof(diag)),
			 0);
	assert_string_equal(p.name, "quick");
	assert_int_equal(p.kind, SIM_ALARMS);
	assert_string_equal(p.alarms.high_window, "1m");
	assert_string_equal(p.alarms.high_pending, "PT10S");
	assert_int_equal(p.alarms.max_instances, 20);
	assert_true(p.alarms.cpu_high == 80);

	expect_file_error("kind = hpa\nwindow = 3\n",
			  "line 2: unknown policy field 'window'");
	expect_file_error("kind = hpa\ntarget = -1\n",
			  "line 2: target: a number from 0.01 to 1000, not "
			  "'-1'");
	expect_file_error("min = 4\nmax = 2\ninitial = 2\n",
			  "custom: min must be at least 1 and max from min to "
			  "256");
	expect_file_error("min = 0\n", "line 1: min: a whole number from 1 "
			  "to 256, not '0'");
	expect_file_error("kind = hpa\nbase = recipe\n",
			  "line 2: base must be the first field");
	expect_file_error("target 3\n", "line 1: expected key = value");
	expect_file_error("base = linear\n", "line 1: unknown base policy "
			  "'linear' (recipe, oci-native, hpa, kpa, mdscale)");
	expect_file_error("kind = schedule\n", "line 1: kind: alarms, hpa, "
			  "kpa or mdscale, not 'schedule'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_one_instance),
		cmocka_unit_test(test_utilization_and_overload),
		cmocka_unit_test(test_rule_hpa),
		cmocka_unit_test(test_rule_kpa),
		cmocka_unit_test(test_rule_mdscale),
		cmocka_unit_test(test_rule_mdscale_quantile),
		cmocka_unit_test(test_rule_mdscale_burst_release),
		cmocka_unit_test(test_rule_mdscale_burst_grows),
		cmocka_unit_test(test_rule_mdscale_damping),
		cmocka_unit_test(test_rule_mdscale_early),
		cmocka_unit_test(test_mdscale_step),
		cmocka_unit_test(test_alarm_path),
		cmocka_unit_test(test_oracle),
		cmocka_unit_test(test_oracle_hindsight),
		cmocka_unit_test(test_oracle_steady),
		cmocka_unit_test(test_start_equal),
		cmocka_unit_test(test_policy_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
