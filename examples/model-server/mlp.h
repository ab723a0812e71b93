/*
 * mlp.h - the digits multilayer perceptron: weights file and inference.
 *
 * Shared by the trainer (mdscale-train) and the server
 * (mdscale-model-server). The network is a stack of fully connected layers,
 * ReLU on the hidden ones and softmax on the output; the digits network is
 * 64 -> 256 -> 256 -> 10.
 *
 * Weights file, version 1. Integers are uint32 and reals IEEE-754 float32,
 * all little-endian, nothing between fields and nothing after the last one:
 *
 *   magic        4 bytes "MDSW"
 *   version      1
 *   nlayers      L, the number of weight layers (1..MLP_MAX_LAYERS)
 *   sizes[L+1]   the input width, the hidden widths, the output width
 *                (each 1..MLP_MAX_WIDTH)
 *   input_scale  float32; the network sees pixel * input_scale (1/16)
 *   then for each layer l = 0..L-1:
 *     weights    sizes[l+1] rows of sizes[l] floats (one row per output unit)
 *     bias       sizes[l+1] floats
 *
 * Functions that can fail return 0 or a negative MDS_E_* code (util/err.h)
 * and put a human-readable reason into the caller's diag buffer.
 */
#ifndef MDS_EXAMPLE_MLP_H
#define MDS_EXAMPLE_MLP_H

#include <stddef.h>

#define MLP_MAX_LAYERS 8
#define MLP_MAX_WIDTH 4096
/* Inputs are 8x8 images, the only shape the one-pixel shifts know. */
#define MLP_SIDE 8
#define MLP_PIXELS (MLP_SIDE * MLP_SIDE)

struct mlp {
	int nlayers;
	int sizes[MLP_MAX_LAYERS + 1];
	float input_scale;
	float *w[MLP_MAX_LAYERS]; /* point into params */
	float *b[MLP_MAX_LAYERS]; /* point into params */
	float *params;            /* owned: all weights and biases */
	size_t nparams;
};

/* Sets up a network with zeroed parameters. Free it with mlp_free. */
int mlp_init(struct mlp *m, int nlayers, const int *sizes, float input_scale,
	     char *diag, size_t diagsize);
/* Frees the parameters; NULL and a never-initialized zeroed struct are fine. */
void mlp_free(struct mlp *m);
/* Reads a weights file; on success m owns the parameters. */
int mlp_load(struct mlp *m, const char *path, char *diag, size_t diagsize);
/* Writes a weights file (through a temporary file, renamed at the end). */
int mlp_save(const struct mlp *m, const char *path, char *diag,
	     size_t diagsize);

/* Returns the number of floats of all activations, input and output too. */
size_t mlp_acts_size(const struct mlp *m);
/* Returns the offset of layer l's activations within acts. */
size_t mlp_acts_offset(const struct mlp *m, int l);
/*
 * Runs the network on raw pixels x (sizes[0] of them). acts (mlp_acts_size
 * floats, owned by the caller) receives every layer's activations: the
 * scaled input, the hidden layers, and last the output probabilities, to
 * which the return value points.
 */
const float *mlp_forward(const struct mlp *m, const float *x, float *acts);

/* Copies an 8x8 image shifted by dx, dy pixels (-1..1) into out, filling
 * the uncovered border with zeros. */
void mlp_shift(const float *in, int dx, int dy, float *out);

#endif
