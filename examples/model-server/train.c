/*
 * train.c - mdscale-train: trains the digits MLP and writes its weights.
 *
 *   zcat digits.csv.gz | mdscale-train --out FILE [--epochs N] [--seed N]
 *
 * Input is CSV on stdin, one image a row: 64 pixel values (integers 0..16)
 * then the label (0..9), the format of scikit-learn's digits.csv.gz. The
 * last 20% of the rows are held out as the test set. The network is
 * 64 -> 256 -> 256 -> 10 (ReLU, softmax), trained for 40 epochs with Adam
 * on mini-batches of 32 (cross-entropy, learning rate 0.005 falling linearly
 * to zero). Half the training images are shifted by a random one of the
 * nine one-pixel offsets, so the network is at home with the shifted copies
 * the server averages over (--tta).
 *
 * Deterministic: the only randomness is a splitmix64 generator with a fixed
 * seed, sums run in a fixed order, and the file is written little-endian.
 * The same compiler and flags give the same bytes (train.sh pins them).
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"
#include "util/err.h"
#include "util/xalloc.h"

#define TRAIN_MAX_ROWS 100000
#define TRAIN_CLASSES 10
#define TRAIN_BATCH 32
#define TRAIN_LR 0.005f
#define TRAIN_BETA1 0.9f
#define TRAIN_BETA2 0.999f
#define TRAIN_EPS 1e-8f

struct dataset {
	float *x; /* n rows of MLP_PIXELS raw pixel values */
	int *y;   /* n labels */
	int n;
};

struct trainer {
	struct mlp net;
	float *grad;   /* gradient, laid out like net.params */
	float *m1;     /* Adam first moment */
	float *m2;     /* Adam second moment */
	float *acts;   /* activations of one forward pass */
	float *delta;  /* two buffers of MLP_MAX_WIDTH back-propagated errors */
	float beta1_t; /* TRAIN_BETA1 to the power of the step count */
	float beta2_t;
};

static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Returns a float uniform in [-1, 1). */
static float rng_sym(uint64_t *state)
{
	return (float)(rng_next(state) >> 40) / (float)(1u << 23) - 1.0f;
}

static int rng_below(uint64_t *state, int n)
{
	return (int)(rng_next(state) % (uint64_t)n);
}

/* Reads the CSV: 65 non-negative integers a row, blank lines skipped. */
static int read_csv(FILE *f, struct dataset *d, char *diag, size_t diagsize)
{
	int cap = 0, col = 0, line = 1, c;
	long v = -1;

	memset(d, 0, sizeof(*d));
	for (;;) {
		c = getc(f);
		if (c >= '0' && c <= '9') {
			v = (v < 0 ? 0 : v * 10) + (c - '0');
			if (v > 255)
				goto bad;
			continue;
		}
		if (c != ',' && c != '\n' && c != '\r' && c != EOF)
			goto bad;
		if (c == '\r')
			continue;
		if (v < 0 && col == 0 && c != ',') {
			/* A blank line, or the end. */
			if (c == EOF)
				break;
			line++;
			continue;
		}
		if (v < 0 || (c == ',') != (col < MLP_PIXELS))
			goto bad;
		if (col == 0) {
			if (d->n == TRAIN_MAX_ROWS) {
				mds_diag(diag, diagsize, "more than %d rows",
					 TRAIN_MAX_ROWS);
				return MDS_E_LIMIT;
			}
			if (d->n == cap) {
				cap = cap ? cap * 2 : 1024;
				d->x = xreallocarray(d->x, (size_t)cap,
						     MLP_PIXELS * sizeof(float));
				d->y = xreallocarray(d->y, (size_t)cap,
						     sizeof(int));
			}
		}
		if (col < MLP_PIXELS) {
			if (v > 16)
				goto bad;
			d->x[(size_t)d->n * MLP_PIXELS + (size_t)col++] =
				(float)v;
		} else {
			if (v >= TRAIN_CLASSES)
				goto bad;
			d->y[d->n++] = (int)v;
			col = 0;
			line++;
		}
		v = -1;
		if (c == EOF)
			break;
	}
	return 0;
bad:
	mds_diag(diag, diagsize,
		 "stdin line %d: expected %d pixels 0..16 and a label 0..9",
		 line, MLP_PIXELS);
	return MDS_E_PARSE;
}

static void trainer_init(struct trainer *t, uint64_t *rng)
{
	static const int sizes[] = {MLP_PIXELS, 256, 256, TRAIN_CLASSES};
	char diag[128];

	if (mlp_init(&t->net, 3, sizes, 1.0f / 16.0f, diag, sizeof(diag)) < 0)
		abort();
	/* He-uniform weights, zero biases. */
	for (int l = 0; l < t->net.nlayers; l++) {
		size_t n = (size_t)t->net.sizes[l + 1] * (size_t)t->net.sizes[l];
		float a = sqrtf(6.0f / (float)t->net.sizes[l]);

		for (size_t i = 0; i < n; i++)
			t->net.w[l][i] = a * rng_sym(rng);
	}
	t->grad = xcalloc(t->net.nparams, sizeof(float));
	t->m1 = xcalloc(t->net.nparams, sizeof(float));
	t->m2 = xcalloc(t->net.nparams, sizeof(float));
	t->acts = xcalloc(mlp_acts_size(&t->net), sizeof(float));
	t->delta = xcalloc(2 * MLP_MAX_WIDTH, sizeof(float));
	t->beta1_t = 1.0f;
	t->beta2_t = 1.0f;
}

static void trainer_free(struct trainer *t)
{
	mlp_free(&t->net);
	free(t->grad);
	free(t->m1);
	free(t->m2);
	free(t->acts);
	free(t->delta);
}

/* Adds the cross-entropy gradient of one example to t->grad; returns its
 * loss. */
static float backprop(struct trainer *t, const float *x, int label)
{
	struct mlp *net = &t->net;
	const float *p = mlp_forward(net, x, t->acts);
	float *delta = t->delta, *next = t->delta + MLP_MAX_WIDTH, *swap;
	float loss = -logf(p[label] + 1e-12f);

	for (int j = 0; j < net->sizes[net->nlayers]; j++)
		delta[j] = p[j] - (j == label ? 1.0f : 0.0f);
	for (int l = net->nlayers - 1; l >= 0; l--) {
		const float *in = t->acts + mlp_acts_offset(net, l);
		int nin = net->sizes[l], n = net->sizes[l + 1];
		float *gw = t->grad + (net->w[l] - net->params);
		float *gb = t->grad + (net->b[l] - net->params);

		if (l > 0)
			memset(next, 0, (size_t)nin * sizeof(float));
		for (int j = 0; j < n; j++) {
			const float *w = net->w[l] + (size_t)j * (size_t)nin;
			float *g = gw + (size_t)j * (size_t)nin;
			float d = delta[j];

			gb[j] += d;
			for (int i = 0; i < nin; i++)
				g[i] += d * in[i];
			if (l > 0)
				for (int i = 0; i < nin; i++)
					next[i] += d * w[i];
		}
		/* ReLU passes the error only where the unit was active. */
		for (int i = 0; l > 0 && i < nin; i++)
			next[i] = in[i] > 0.0f ? next[i] : 0.0f;
		swap = delta;
		delta = next;
		next = swap;
	}
	return loss;
}

static void adam_step(struct trainer *t, int batch, float rate)
{
	float lr, scale = 1.0f / (float)batch;

	t->beta1_t *= TRAIN_BETA1;
	t->beta2_t *= TRAIN_BETA2;
	lr = rate * sqrtf(1.0f - t->beta2_t) / (1.0f - t->beta1_t);
	for (size_t i = 0; i < t->net.nparams; i++) {
		float g = t->grad[i] * scale;

		t->m1[i] = TRAIN_BETA1 * t->m1[i] + (1.0f - TRAIN_BETA1) * g;
		t->m2[i] = TRAIN_BETA2 * t->m2[i] + (1.0f - TRAIN_BETA2) * g * g;
		t->net.params[i] -= lr * t->m1[i] / (sqrtf(t->m2[i]) + TRAIN_EPS);
		t->grad[i] = 0.0f;
	}
}

static int argmax(const float *p, int n)
{
	int best = 0;

	for (int j = 1; j < n; j++)
		if (p[j] > p[best])
			best = j;
	return best;
}

/* Returns how many of rows [from, to) the network gets right; with tta, by
 * averaging the probabilities over the nine one-pixel shifts. */
static int count_correct(struct trainer *t, const struct dataset *d,
			 int from, int to, int tta)
{
	float shifted[MLP_PIXELS], avg[TRAIN_CLASSES];
	int correct = 0;

	for (int r = from; r < to; r++) {
		const float *x = d->x + (size_t)r * MLP_PIXELS;

		memset(avg, 0, sizeof(avg));
		for (int s = tta ? 0 : 4; s < (tta ? 9 : 5); s++) {
			const float *p;

			mlp_shift(x, s % 3 - 1, s / 3 - 1, shifted);
			p = mlp_forward(&t->net, shifted, t->acts);
			for (int j = 0; j < TRAIN_CLASSES; j++)
				avg[j] += p[j];
		}
		correct += argmax(avg, TRAIN_CLASSES) == d->y[r];
	}
	return correct;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return MDS_E_INVAL;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v > max)
		return MDS_E_INVAL;
	*out = v;
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: mdscale-train --out FILE [--epochs N] [--seed N] "
	      "< digits.csv\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"out", required_argument, NULL, 'o'},
		{"epochs", required_argument, NULL, 'e'},
		{"seed", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct dataset d = {0};
	struct trainer t = {0};
	const char *out = NULL;
	unsigned long epochs = 40, seed = 1;
	int *order = NULL, ntrain, ntest, c, rc = 1;
	uint64_t rng;
	char diag[256];

	while ((c = getopt_long(argc, argv, "o:e:s:h", opts, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'e':
			bad = parse_uint(optarg, 10000, &epochs) < 0;
			break;
		case 's':
			bad = parse_uint(optarg, ULONG_MAX, &seed) < 0;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			bad = 1;
		}
		if (bad) {
			usage(stderr);
			return 2;
		}
	}
	if (out == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (read_csv(stdin, &d, diag, sizeof(diag)) < 0) {
		fprintf(stderr, "mdscale-train: %s\n", diag);
		goto out;
	}
	ntest = d.n / 5;
	ntrain = d.n - ntest;
	if (ntrain < TRAIN_BATCH || ntest < 1) {
		fprintf(stderr, "mdscale-train: only %d rows\n", d.n);
		goto out;
	}
	rng = seed;
	trainer_init(&t, &rng);
	order = xcalloc((size_t)ntrain, sizeof(int));
	for (int i = 0; i < ntrain; i++)
		order[i] = i;
	for (unsigned long e = 1; e <= epochs; e++) {
		float shifted[MLP_PIXELS];
		double loss = 0.0;
		/* The rate falls linearly to nearly zero over the epochs. */
		float rate = TRAIN_LR * (float)(epochs + 1 - e) / (float)epochs;

		for (int i = ntrain - 1; i > 0; i--) {
			int k = rng_below(&rng, i + 1), tmp = order[i];

			order[i] = order[k];
			order[k] = tmp;
		}
		for (int i = 0; i < ntrain; i++) {
			/* Half the images stay put, the others move by one
			 * of the nine offsets (4 is no move). */
			int r = order[i], s = rng_below(&rng, 18);

			s = s < 9 ? s : 4;

			mlp_shift(d.x + (size_t)r * MLP_PIXELS, s % 3 - 1,
				  s / 3 - 1, shifted);
			loss += backprop(&t, shifted, d.y[r]);
			if ((i + 1) % TRAIN_BATCH == 0 || i + 1 == ntrain)
				adam_step(&t, i % TRAIN_BATCH + 1, rate);
		}
		if (e % 10 == 0 || e == epochs)
			fprintf(stderr, "epoch %lu: mean loss %.4f\n", e,
				loss / ntrain);
	}
	c = count_correct(&t, &d, 0, ntrain, 0);
	printf("train accuracy: %.2f%% (%d/%d)\n", 100.0 * c / ntrain, c,
	       ntrain);
	c = count_correct(&t, &d, ntrain, d.n, 0);
	printf("test accuracy: %.2f%% (%d/%d)\n", 100.0 * c / ntest, c, ntest);
	c = count_correct(&t, &d, ntrain, d.n, 1);
	printf("test accuracy with tta: %.2f%% (%d/%d)\n", 100.0 * c / ntest,
	       c, ntest);
	if (mlp_save(&t.net, out, diag, sizeof(diag)) < 0) {
		fprintf(stderr, "mdscale-train: %s\n", diag);
		goto out;
	}
	rc = 0;
out:
	trainer_free(&t);
	free(order);
	free(d.x);
	free(d.y);
	return rc;
}
