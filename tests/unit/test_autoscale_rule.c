/* test_autoscale_rule.c - the mdscale rule's observation, from the
 * gateway's counters (notify/autoscale_rule.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "notify/autoscale_rule.h"

static void near(double got, double want)
{
	assert_true(got > want - 1e-9 && got < want + 1e-9);
}

/* Light load: the latency of finished requests is the service time, and
 * the work is what arrived times it. */
static void learns_service_time_when_nothing_queues(void **state)
{
	struct autoscale_rule_counts a = { 1000, 3000000, 0 };
	struct autoscale_rule_counts b = { 1100, 3000000 + 100 * 4000, 0 };
	struct rule_obs o;
	double s = 0;

	(void)state;
	autoscale_rule_observation(&a, &b, 1.0, 0.4, 0, 10, 1, &s, &o);
	near(s, 0.004);
	near(o.work, 0.4);
	near(o.conc, 0.4);
	near(o.cpu, 10);
	/* A slower second moves it a little, a faster one at once. */
	b.latency_us_sum = 3000000 + 100 * 14000;
	autoscale_rule_observation(&a, &b, 1.0, 0.4, 0, 10, 1, &s, &o);
	near(s, 0.7 * 0.004 + 0.3 * 0.014);
	b.latency_us_sum = 3000000 + 100 * 4000;
	autoscale_rule_observation(&a, &b, 1.0, 0.4, 0, 10, 1, &s, &o);
	near(s, 0.004);
	/* Over two seconds of the same, the rate is halved. */
	autoscale_rule_observation(&a, &b, 2.0, 0.2, 0, 10, 1, &s, &o);
	near(o.work, 0.2);
}

/* Queueing: latency is not learned from, and the requests still in
 * flight count as arrived. */
static void queueing_keeps_what_was_learned(void **state)
{
	struct autoscale_rule_counts a = { 0, 0, 0 };
	struct autoscale_rule_counts b = { 300, 300 * 50000, 50 };
	struct rule_obs o;
	double s = 0.003;

	(void)state;
	autoscale_rule_observation(&a, &b, 1.0, 40, 0, 100, 1, &s, &o);
	near(s, 0.003);
	/* 350 arrived, 300 served by a saturated instance: the CPU's
	 * figure scaled, above 350 x 3 ms. */
	near(o.work, 350.0 / 300.0);
	autoscale_rule_observation(&a, &b, 1.0, 40, 0, 50, 1, &s, &o);
	near(o.work, 350 * 0.003);
	/* More than one instance's worth: ready instances share the
	 * threshold. */
	autoscale_rule_observation(&a, &b, 1.0, 0.9, 0, 100, 2, &s, &o);
	assert_true(s > 0.003);
}

/* Nothing learned yet: the CPU of the ready instances is the floor. */
static void cpu_is_the_floor(void **state)
{
	struct autoscale_rule_counts a = { 0, 0, 0 };
	struct autoscale_rule_counts b = { 350, 350 * 200000, 200 };
	struct rule_obs o;
	double s = 0;

	(void)state;
	autoscale_rule_observation(&a, &b, 1.0, 120, 0, 98, 2, &s, &o);
	near(s, 0);
	/* 550 arrived, 350 served by instances busy 1.96 of 2. */
	near(o.work, 1.96 * 550 / 350);
	/* As many served as arrived: the CPU's figure as it is. */
	b.inflight = 0;
	autoscale_rule_observation(&a, &b, 1.0, 120, 0, 98, 2, &s, &o);
	near(o.work, 1.96);
	/* Counters that went backwards (a gateway restarted) give no
	 * negative arrivals. */
	autoscale_rule_observation(&b, &a, 1.0, 0, 0, 0, 1, &s, &o);
	near(o.work, 0);
}

/* An instance starved of CPU but never without a request is busy: the
 * gateway's view is the floor then. */
static void the_gateway_sees_busy_instances(void **state)
{
	struct autoscale_rule_counts a = { 0, 0, 0 };
	struct autoscale_rule_counts b = { 90, 90 * 500000, 64 };
	struct rule_obs o;
	double s = 0;

	(void)state;
	autoscale_rule_observation(&a, &b, 1.0, 60, 1.0, 30, 1, &s, &o);
	near(o.work, 1.0 * 154 / 90);
	/* At light load the CPU's figure, if larger, stands. */
	b.inflight = 0;
	autoscale_rule_observation(&a, &b, 1.0, 0.6, 0.1, 30, 1, &s, &o);
	near(s, 0);
	near(o.work, 0.3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(learns_service_time_when_nothing_queues),
		cmocka_unit_test(queueing_keeps_what_was_learned),
		cmocka_unit_test(cpu_is_the_floor),
		cmocka_unit_test(the_gateway_sees_busy_instances),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
