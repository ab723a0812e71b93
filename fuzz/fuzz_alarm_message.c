/*
 * fuzz_alarm_message.c - libFuzzer harness for an alarm message as the
 * built-in autoscale function reads it: whatever is published to a topic
 * the function subscribes to reaches it (POST /v1/topics/{id}/messages, the
 * OCI Notifications and Alertmanager receivers), so the message is outside
 * bytes. Parsed as the function parses it (jansson, any JSON; an object is
 * required), then read by autoscale_message_read(). A message it accepts
 * names every field the function goes on with; one it refuses says why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "notify/autoscale_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *msg = json_loadb((const char *)data, size, 0, &jerr);
	struct alarm_msg m;
	char why[600];

	if (!json_is_object(msg)) {
		json_decref(msg);
		return 0;
	}
	why[0] = '\0';
	if (autoscale_message_read(msg, &m, why, sizeof(why)) == 0) {
		if (m.type == NULL || m.title == NULL || m.alarm_id == NULL ||
		    m.dep_id == NULL)
			abort();
		/* What the function compares them with. */
		if (strlen(m.type) + strlen(m.title) + strlen(m.alarm_id) +
			    strlen(m.dep_id) ==
		    (size_t)-1)
			abort();
	} else if (why[0] == '\0' || memchr(why, '\0', sizeof(why)) == NULL) {
		abort();
	}
	json_decref(msg);
	return 0;
}
