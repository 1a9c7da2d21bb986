/*
 * The "decay" model kind: a user is an exponentially decayed, event-type
 * weighted sum of the input embeddings of the items they touched,
 *
 *   h <- a * h + type_w[type] * item_in[item]          (state_size = d)
 *
 * and is scored like every kind by model.c: S = h . item_out^T + item_bias.
 *
 * It is the cheapest sequential model that still knows order (recent items
 * weigh more): one O(d) axpy per event, no allocation, so serving keeps up
 * with any event rate. The trainer (train/train_decay.c) differentiates
 * exactly this function; change the two together.
 *
 * Parameter layout (block order is part of the snapshot format):
 *   item_in   n_items x d  input embeddings (what an event adds)
 *   item_out  n_items x d  output embeddings (what scoring dots with)
 *   item_bias n_items      per-item score offset (popularity)
 *   type_w    8            weight per event type VIEW..FORGET (not learned)
 *   hparams   1            [0] = decay factor a, 0 < a <= 1
 *
 * Valid ranges (sr_decay_validate, refused by the snapshot loader and
 * writer): 0 < a <= 1, |type_w| <= SR_DECAY_TYPE_W_MAX.
 *
 * Thread: step/state_init are pure functions of (model, h): any thread.
 */
#include <string.h>

#include "model/model_int.h"

/* Loader limits (docs/SNAPSHOT.md, "Validation"). The trainer writes a
 * fixed a (SR_DECAY_A, 0.8) and fixed type weights in [-0.5, 2]; a > 1
 * makes the state grow without bound with every event, a <= 0 is a block
 * nobody filled in (or flips the sign of history on every event). */
#define SR_DECAY_TYPE_W_MAX 100.0f

enum {
  SR_DECAY_IN = 0,
  SR_DECAY_OUT,
  SR_DECAY_BIAS,
  SR_DECAY_TYPE_W,
  SR_DECAY_HPARAMS,
  SR_DECAY_NBLOCKS
};

static int sr_decay_layout(int dim, int32_t n_items, const char **names, size_t *counts, int max) {
  static const char *const bn[SR_DECAY_NBLOCKS] = {"item_in", "item_out", "item_bias", "type_w",
                                                   "hparams"};
  const size_t nd = (size_t)n_items * (size_t)dim;
  const size_t bc[SR_DECAY_NBLOCKS] = {nd, nd, (size_t)n_items, SR_EV__CNT, 1};
  for (int i = 0; i < SR_DECAY_NBLOCKS && i < max; i++) {
    names[i] = bn[i];
    counts[i] = bc[i];
  }
  return SR_DECAY_NBLOCKS;
}

static int sr_decay_state_size(int dim) { return dim; }

static void sr_decay_state_init(const sr_model_t *m, float *h) {
  memset(h, 0, (size_t)m->state_size * sizeof(float));
}

static void sr_decay_step(const sr_model_t *m, float *restrict h, int32_t item,
                          sr_event_type_t type, float value, int64_t dt_ms) {
  if (item < 0 || item >= m->n_items) return;
  const int d = m->dim;
  const float a = m->blocks[SR_DECAY_HPARAMS].data[0];
  const float w = (unsigned)type < SR_EV__CNT ? m->blocks[SR_DECAY_TYPE_W].data[type] : 0.0f;
  const float *restrict x = m->blocks[SR_DECAY_IN].data + (size_t)item * (size_t)d;
  for (int i = 0; i < d; i++)
    h[i] = a * h[i] + w * x[i];
}

static int sr_decay_validate(const sr_model_t *m, char *errstr, size_t errsz) {
  const float a = m->blocks[SR_DECAY_HPARAMS].data[0];
  if (!(a > 0.0f && a <= 1.0f)) {
    sr_seterr(errstr, errsz, SR_ERR_MODEL, "block %d '%s' [0]: decay factor %.9g outside (0, 1]",
              SR_DECAY_HPARAMS, m->blocks[SR_DECAY_HPARAMS].name, (double)a);
    return -1;
  }
  const float *w = m->blocks[SR_DECAY_TYPE_W].data;
  for (int t = 0; t < SR_EV__CNT; t++)
    if (!(w[t] >= -SR_DECAY_TYPE_W_MAX && w[t] <= SR_DECAY_TYPE_W_MAX)) {
      sr_seterr(errstr, errsz, SR_ERR_MODEL,
                "block %d '%s' [%d] (%s): type weight %g outside [-%g, %g]", SR_DECAY_TYPE_W,
                m->blocks[SR_DECAY_TYPE_W].name, t, sr_event_type_name((sr_event_type_t)t),
                (double)w[t], (double)SR_DECAY_TYPE_W_MAX, (double)SR_DECAY_TYPE_W_MAX);
      return -1;
    }
  return 0;
}

const sr_model_ops_t sr_model_ops_decay = {
    .kind = SR_MODEL_DECAY,
    .name = "decay",
    .layout = sr_decay_layout,
    .state_size = sr_decay_state_size,
    .state_init = sr_decay_state_init,
    .step = sr_decay_step,
    .validate = sr_decay_validate,
};
