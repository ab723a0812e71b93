/* sim_plot.c - the simulator's plot, drawn into RGB rows, written by
 * libpng (sim_plot.h). */
#include "cli/sim_plot.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/xalloc.h"

#define W 1200
#define PANEL_H 220
#define GAP 20
#define H (3 * PANEL_H + 4 * GAP)
#define LEFT 20

static const unsigned colours[] = {
	0xd62728, 0x1f77b4, 0x2ca02c, 0xff7f0e, 0x9467bd, 0x8c564b,
	0xe377c2, 0x17becf, 0xbcbd22, 0x7f7f7f,
};

unsigned sim_plot_colour(size_t i)
{
	return colours[i % (sizeof(colours) / sizeof(colours[0]))];
}

struct canvas {
	unsigned char *px; /* W x H x 3 */
};

static void dot(struct canvas *c, int x, int y, unsigned rgb)
{
	if (x < 0 || x >= W || y < 0 || y >= H)
		return;
	unsigned char *p = c->px + ((size_t)y * W + (size_t)x) * 3;

	p[0] = (unsigned char)(rgb >> 16);
	p[1] = (unsigned char)(rgb >> 8);
	p[2] = (unsigned char)rgb;
}

static void line(struct canvas *c, int x0, int y0, int x1, int y1,
		 unsigned rgb)
{
	int dx = abs(x1 - x0), dy = -abs(y1 - y0);
	int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;

	for (;;) {
		dot(c, x0, y0, rgb);
		if (x0 == x1 && y0 == y1)
			return;
		int e2 = 2 * err;

		if (e2 >= dy) {
			err += dy;
			x0 += sx;
		}
		if (e2 <= dx) {
			err += dx;
			y0 += sy;
		}
	}
}

/* Panel k's frame. */
static void frame(struct canvas *c, int k)
{
	int top = GAP + k * (PANEL_H + GAP), bot = top + PANEL_H;

	line(c, LEFT, top, W - LEFT, top, 0xbbbbbb);
	line(c, LEFT, bot, W - LEFT, bot, 0x000000);
	line(c, LEFT, top, LEFT, bot, 0x000000);
	line(c, W - LEFT, top, W - LEFT, bot, 0xbbbbbb);
}

/* One series in panel k: value(s) for each second, scaled to [0, max]
 * (log10 scale over [lo, max] when lo > 0). */
static void series(struct canvas *c, int k, size_t ns,
		   double (*value)(const void *, size_t), const void *arg,
		   double lo, double max, unsigned rgb)
{
	int top = GAP + k * (PANEL_H + GAP), bot = top + PANEL_H;
	int px = -1, py = 0;

	for (size_t s = 0; s < ns; s++) {
		double v = value(arg, s), f;

		if (lo > 0) {
			if (!(v > 0))
				continue;
			f = (log10(v) - log10(lo)) / (log10(max) - log10(lo));
		} else {
			f = max > 0 ? v / max : 0;
		}
		f = f < 0 ? 0 : f > 1 ? 1 : f;
		int x = LEFT + (int)((double)s * (W - 2 * LEFT) /
				     (double)(ns > 1 ? ns - 1 : 1));
		int y = bot - (int)(f * (PANEL_H - 2));

		if (px >= 0)
			line(c, px, py, x, y, rgb);
		px = x;
		py = y;
	}
}

static double v_load(const void *a, size_t s)
{
	return ((const struct sim_result *)a)->seconds[s].arrivals;
}

static double v_inst(const void *a, size_t s)
{
	return ((const struct sim_result *)a)->seconds[s].instances;
}

static double v_p99(const void *a, size_t s)
{
	return ((const struct sim_result *)a)->seconds[s].p99_ms;
}

static double v_const(const void *a, size_t s)
{
	(void)s;
	return *(const double *)a;
}

static void draw(struct canvas *c, const struct sim_result *res, size_t n,
		 const struct sim_result *oracle)
{
	size_t ns = oracle->nseconds;
	double lmax = 1, imax = 1, pmax = oracle->slo_ms * 10, pmin;

	for (size_t s = 0; s < ns; s++) {
		lmax = fmax(lmax, oracle->seconds[s].arrivals);
		imax = fmax(imax, oracle->seconds[s].instances);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t s = 0; s < res[i].nseconds && s < ns; s++) {
			imax = fmax(imax, res[i].seconds[s].instances);
			pmax = fmax(pmax, res[i].seconds[s].p99_ms);
		}
	pmin = oracle->slo_ms / 10;
	for (int k = 0; k < 3; k++)
		frame(c, k);
	series(c, 0, ns, v_load, oracle, 0, lmax * 1.05, 0x000000);
	series(c, 2, ns, v_const, &oracle->slo_ms, pmin, pmax, 0x999999);
	for (size_t i = 0; i < n; i++) {
		size_t m = res[i].nseconds < ns ? res[i].nseconds : ns;

		series(c, 1, m, v_inst, &res[i], 0, imax * 1.05,
		       sim_plot_colour(i));
		series(c, 2, m, v_p99, &res[i], pmin, pmax, sim_plot_colour(i));
	}
	series(c, 1, ns, v_inst, oracle, 0, imax * 1.05, 0x000000);
}

static int write_png(FILE *f, const struct canvas *c)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
						  NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;

	if (info == NULL) {
		png_destroy_write_struct(&png, NULL);
		return MDS_E_IO;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return MDS_E_IO;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, W, H, 8, PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < H; y++)
		png_write_row(png, c->px + (size_t)y * W * 3);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return 0;
}

int sim_plot_write(const char *path, const struct sim_result *res, size_t n,
		   const struct sim_result *oracle, char *diag, size_t diagsz)
{
	struct canvas c = { xmalloc((size_t)W * H * 3) };
	size_t len = strlen(path) + 16;
	char *tmp = xmalloc(len);
	FILE *f;
	int rc;

	memset(c.px, 0xff, (size_t)W * H * 3);
	draw(&c, res, n, oracle);
	snprintf(tmp, len, "%s.tmp%ld", path, (long)getpid());
	f = fopen(tmp, "wb");
	if (f == NULL) {
		mds_diag(diag, diagsz, "%s", strerror(errno));
		free(c.px);
		free(tmp);
		return MDS_E_IO;
	}
	rc = write_png(f, &c);
	if (fflush(f) != 0 || ferror(f))
		rc = MDS_E_IO;
	if (fclose(f) != 0)
		rc = MDS_E_IO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = MDS_E_IO;
	if (rc != 0) {
		mds_diag(diag, diagsz, "cannot write the image: %s",
			 strerror(errno));
		unlink(tmp);
	}
	free(c.px);
	free(tmp);
	return rc;
}
