/* backend.c - the names of the backend interface's states; see backend.h. */
#include "deploy/backend.h"

const char *backend_state_name(enum backend_state s)
{
	static const char *const names[] = {
		[BACKEND_NEW] = "NEW",		 [BACKEND_STARTING] = "STARTING",
		[BACKEND_READY] = "READY",	 [BACKEND_STOPPING] = "STOPPING",
		[BACKEND_STOPPED] = "STOPPED", [BACKEND_FAILED] = "FAILED",
	};

	if ((unsigned)s >= sizeof(names) / sizeof(names[0]))
		return "UNKNOWN";
	return names[s];
}

const char *backend_work_status_name(enum backend_work_status s)
{
	static const char *const names[] = {
		[BACKEND_WORK_ACCEPTED] = "ACCEPTED",
		[BACKEND_WORK_IN_PROGRESS] = "IN_PROGRESS",
		[BACKEND_WORK_SUCCEEDED] = "SUCCEEDED",
		[BACKEND_WORK_FAILED] = "FAILED",
	};

	if ((unsigned)s >= sizeof(names) / sizeof(names[0]))
		return "UNKNOWN";
	return names[s];
}
