/* mlp.c - weights file and inference of the digits MLP; see mlp.h. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"
#include "util/err.h"
#include "util/xalloc.h"

#define MLP_MAGIC "MDSW"
#define MLP_VERSION 1
/* No valid file comes near this; it bounds what a bad path can make us read. */
#define MLP_MAX_FILE (256u << 20)

int mlp_init(struct mlp *m, int nlayers, const int *sizes, float input_scale,
	     char *diag, size_t diagsize)
{
	size_t n = 0;

	memset(m, 0, sizeof(*m));
	if (nlayers < 1 || nlayers > MLP_MAX_LAYERS) {
		mds_diag(diag, diagsize, "layer count %d not in 1..%d", nlayers,
			 MLP_MAX_LAYERS);
		return MDS_E_INVAL;
	}
	if (sizes[0] != MLP_PIXELS) {
		mds_diag(diag, diagsize, "input width %d, expected %d", sizes[0],
			 MLP_PIXELS);
		return MDS_E_INVAL;
	}
	if (!isfinite(input_scale)) {
		mds_diag(diag, diagsize, "input scale is not finite");
		return MDS_E_INVAL;
	}
	for (int l = 0; l <= nlayers; l++) {
		if (sizes[l] < 1 || sizes[l] > MLP_MAX_WIDTH) {
			mds_diag(diag, diagsize, "layer width %d not in 1..%d",
				 sizes[l], MLP_MAX_WIDTH);
			return MDS_E_INVAL;
		}
		m->sizes[l] = sizes[l];
	}
	for (int l = 0; l < nlayers; l++)
		n += (size_t)sizes[l + 1] * ((size_t)sizes[l] + 1);
	m->nlayers = nlayers;
	m->input_scale = input_scale;
	m->nparams = n;
	m->params = xcalloc(n, sizeof(float));
	n = 0;
	for (int l = 0; l < nlayers; l++) {
		m->w[l] = m->params + n;
		n += (size_t)sizes[l + 1] * (size_t)sizes[l];
		m->b[l] = m->params + n;
		n += (size_t)sizes[l + 1];
	}
	return 0;
}

void mlp_free(struct mlp *m)
{
	if (m == NULL)
		return;
	free(m->params);
	memset(m, 0, sizeof(*m));
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static float get_f32(const unsigned char *p)
{
	uint32_t u = get_u32(p);
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static void put_f32(unsigned char *p, float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	put_u32(p, u);
}

/* Reads a whole file of at most max bytes into a new buffer. */
static int read_file(const char *path, size_t max, unsigned char **out,
		     size_t *outlen, char *diag, size_t diagsize)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data = NULL;
	size_t len = 0, cap = 0, n;
	int rc = 0;

	if (f == NULL) {
		mds_diag(diag, diagsize, "%s: %s", path, strerror(errno));
		return MDS_E_IO;
	}
	do {
		if (len > max) {
			mds_diag(diag, diagsize, "%s: over %zu bytes", path,
				 max);
			rc = MDS_E_LIMIT;
			break;
		}
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			cap = cap > max + 1 ? max + 1 : cap;
			data = xrealloc(data, cap);
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (rc == 0 && ferror(f)) {
		mds_diag(diag, diagsize, "%s: read error", path);
		rc = MDS_E_IO;
	}
	fclose(f);
	if (rc < 0) {
		free(data);
		return rc;
	}
	*out = data;
	*outlen = len;
	return 0;
}

int mlp_load(struct mlp *m, const char *path, char *diag, size_t diagsize)
{
	unsigned char *data = NULL;
	size_t len = 0, need, off;
	int sizes[MLP_MAX_LAYERS + 1];
	uint32_t nl;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = read_file(path, MLP_MAX_FILE, &data, &len, diag, diagsize);
	if (rc < 0)
		return rc;
	rc = MDS_E_PARSE;
	if (len < 12 || memcmp(data, MLP_MAGIC, 4) != 0) {
		mds_diag(diag, diagsize, "%s: not an MDSW weights file", path);
		goto out;
	}
	if (get_u32(data + 4) != MLP_VERSION) {
		mds_diag(diag, diagsize, "%s: unsupported version %u", path,
			 (unsigned)get_u32(data + 4));
		goto out;
	}
	nl = get_u32(data + 8);
	if (nl < 1 || nl > MLP_MAX_LAYERS || len < 12 + 4 * (nl + 2)) {
		mds_diag(diag, diagsize, "%s: bad layer count %u", path,
			 (unsigned)nl);
		goto out;
	}
	for (uint32_t l = 0; l <= nl; l++) {
		uint32_t s = get_u32(data + 12 + 4 * l);

		sizes[l] = s > MLP_MAX_WIDTH ? -1 : (int)s;
	}
	off = 12 + 4 * ((size_t)nl + 1);
	rc = mlp_init(m, (int)nl, sizes, get_f32(data + off), diag, diagsize);
	if (rc < 0)
		goto out;
	off += 4;
	need = off + 4 * m->nparams;
	if (len != need) {
		mds_diag(diag, diagsize, "%s: %zu bytes, expected %zu", path,
			 len, need);
		rc = MDS_E_PARSE;
		goto out;
	}
	for (size_t i = 0; i < m->nparams; i++) {
		m->params[i] = get_f32(data + off + 4 * i);
		if (!isfinite(m->params[i])) {
			mds_diag(diag, diagsize, "%s: parameter %zu not finite",
				 path, i);
			rc = MDS_E_PARSE;
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0)
		mlp_free(m);
	free(data);
	return rc;
}

int mlp_save(const struct mlp *m, const char *path, char *diag,
	     size_t diagsize)
{
	size_t len = 12 + 4 * ((size_t)m->nlayers + 1) + 4 + 4 * m->nparams;
	unsigned char *data = xmalloc(len);
	char *tmp = xasprintf("%s.tmp", path);
	unsigned char *p = data;
	FILE *f = NULL;
	int rc = MDS_E_IO;

	memcpy(p, MLP_MAGIC, 4);
	put_u32(p + 4, MLP_VERSION);
	put_u32(p + 8, (uint32_t)m->nlayers);
	p += 12;
	for (int l = 0; l <= m->nlayers; l++, p += 4)
		put_u32(p, (uint32_t)m->sizes[l]);
	put_f32(p, m->input_scale);
	p += 4;
	for (size_t i = 0; i < m->nparams; i++, p += 4)
		put_f32(p, m->params[i]);
	f = fopen(tmp, "wb");
	if (f == NULL) {
		mds_diag(diag, diagsize, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		f = NULL;
		mds_diag(diag, diagsize, "%s: write error", tmp);
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		mds_diag(diag, diagsize, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (rc < 0)
		remove(tmp);
	free(tmp);
	free(data);
	return rc;
}

size_t mlp_acts_offset(const struct mlp *m, int l)
{
	size_t n = 0;

	for (int i = 0; i < l; i++)
		n += (size_t)m->sizes[i];
	return n;
}

size_t mlp_acts_size(const struct mlp *m)
{
	return mlp_acts_offset(m, m->nlayers + 1);
}

const float *mlp_forward(const struct mlp *m, const float *x, float *acts)
{
	float *in = acts, *out = acts + m->sizes[0];
	float max, sum;
	int nout = m->sizes[m->nlayers];

	for (int i = 0; i < m->sizes[0]; i++)
		in[i] = x[i] * m->input_scale;
	for (int l = 0; l < m->nlayers; l++) {
		int nin = m->sizes[l], n = m->sizes[l + 1];
		int hidden = l + 1 < m->nlayers;

		for (int j = 0; j < n; j++) {
			const float *w = m->w[l] + (size_t)j * (size_t)nin;
			float z = m->b[l][j];

			for (int i = 0; i < nin; i++)
				z += w[i] * in[i];
			out[j] = hidden && z < 0.0f ? 0.0f : z;
		}
		in = out;
		out += n;
	}
	/* in now points at the logits; softmax them in place. */
	max = in[0];
	for (int j = 1; j < nout; j++)
		max = in[j] > max ? in[j] : max;
	sum = 0.0f;
	for (int j = 0; j < nout; j++) {
		in[j] = expf(in[j] - max);
		sum += in[j];
	}
	for (int j = 0; j < nout; j++)
		in[j] /= sum;
	return in;
}

void mlp_shift(const float *in, int dx, int dy, float *out)
{
	for (int y = 0; y < MLP_SIDE; y++) {
		for (int x = 0; x < MLP_SIDE; x++) {
			int sx = x - dx, sy = y - dy;
			int ok = sx >= 0 && sx < MLP_SIDE && sy >= 0 &&
				 sy < MLP_SIDE;

			out[y * MLP_SIDE + x] = ok ? in[sy * MLP_SIDE + sx]
						   : 0.0f;
		}
	}
}
