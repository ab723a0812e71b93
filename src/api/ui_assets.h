/*
 * ui_assets.h - the dashboard's static files (ui/), compiled into the
 * binary by tools/embed.py (see docs/dashboard.md).
 */
#ifndef MDS_UI_ASSETS_H
#define MDS_UI_ASSETS_H

#include <stddef.h>

/* One embedded file. All of it is static and read-only. */
struct ui_asset {
	const char *name;         /* the base name: "index.html" */
	const char *content_type; /* "text/html; charset=utf-8" */
	const unsigned char *data;
	size_t len;
};

/* The files, ending with an entry whose name is NULL. Generated. */
extern const struct ui_asset ui_assets[];

#endif
