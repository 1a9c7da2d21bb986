/*
 * Pieces every kind's trainer shares (implemented in train.c; the
 * deterministic RNG is streamrec/rng.h): the validation split, the
 * full-ranking validation metric computed through the serving path, the
 * progress line, best-epoch keeping for early stopping, Adam over the
 * model's parameter arena, the fused softmax + cross-entropy gradient, and
 * a tiny deterministic parallel-for.
 *
 * Determinism: for a given seed and thread count every helper here returns
 * bit-identical results (work is split into fixed ranges and every
 * reduction runs in a fixed order).
 *
 * Thread: all helpers run on the trainer's thread; sr_train_parallel and
 * sr_train_softmax_xent fan out to short-lived worker threads internally.
 */
#ifndef SR_TRAIN_UTIL_H
#define SR_TRAIN_UTIL_H

#include <stdint.h>

#include "streamrec/rng.h"
#include "train/train_int.h"

/* Threads the trainer uses: conf->threads, or all online cores when 0. */
int sr_train_threads(const sr_train_conf_t *conf);

/* ---- validation split ----
 * A valid_frac sample of the users with at least 2 events has its last
 * event held out; the model trains on everything else. */
typedef struct sr_train_split_s {
  int64_t *train_end;   /* per user: training events are [user_off[u], train_end[u]) */
  int32_t *valid_users; /* held-out users, ascending */
  int32_t n_valid;
  int64_t train_events;    /* events the model trains on */
  int64_t train_users;     /* users with >= 1 training event */
  int64_t train_positions; /* next-item targets: training events that are not a user's first */
} sr_train_split_t;
/* Deterministic in (ds, valid_frac, seed). Free with sr_train_split_free. */
void sr_train_split_init(sr_train_split_t *s, const sr_dataset_t *ds, float valid_frac,
                         uint64_t seed);
void sr_train_split_free(sr_train_split_t *s); /* accepts a zeroed split */

/* ---- validation metric ----
 * For each held-out user: state from sr_model_state_init + sr_model_step
 * over the training events, scores from sr_model_score (micro-batches of
 * users, exactly as serve does), the user's earlier items excluded (except
 * the target itself, so a repeat stays rankable), rank of the held-out item
 * over the full catalogue. An item with an equal score ranks ahead when its
 * index is lower (deterministic; a constant model scores no better than
 * chance). ndcg = mean of 1/log2(rank+2) over rank < k, hr = share with
 * rank < k, n = users evaluated (0: no validation; ndcg/hr are NaN). */
typedef struct sr_train_metric_s {
  double ndcg, hr;
  int32_t n;
} sr_train_metric_t;
sr_err_t sr_train_validate(const sr_model_t *m, const sr_dataset_t *ds, const sr_train_split_t *s,
                           int k, sr_train_metric_t *out, char *errstr, size_t errsz);

/* ---- progress line on stderr ("\r"-updated when conf->progress) ---- */
typedef struct sr_train_progress_s {
  int on, epochs, epoch;
  int64_t t_start_us, t_epoch_us, t_last_print_us;
  double valid; /* last epoch's validation NDCG@10, NaN when none yet */
  size_t last_len;
} sr_train_progress_t;
void sr_train_progress_begin(sr_train_progress_t *p, const sr_train_conf_t *conf);
void sr_train_progress_epoch(sr_train_progress_t *p, int epoch); /* epoch starts (1-based) */
/* positions done / total in this epoch, running mean loss; throttled unless force */
void sr_train_progress_update(sr_train_progress_t *p, int64_t done, int64_t total, double loss,
                              int force);
/* Ends the current line (call at the end of each epoch: every epoch keeps
 * its final line, later log lines start clean). */
void sr_train_progress_end(sr_train_progress_t *p);

/* ---- best-epoch keeper for early stopping ---- */
typedef struct sr_train_best_s {
  float *params; /* copy of the arena at the best epoch */
  size_t n;
  double metric; /* best validation metric so far (-inf before any) */
  int epoch;     /* best epoch (1-based), 0 = none */
  float loss;    /* training loss of the best epoch */
  int bad;       /* epochs since the last improvement */
} sr_train_best_t;
sr_err_t sr_train_best_init(sr_train_best_t *b, const sr_model_t *m, char *errstr, size_t errsz);
/* Offers an epoch's result; copies the parameters when metric improves.
 * Returns 1 when patience is exhausted (stop), else 0. */
int sr_train_best_offer(sr_train_best_t *b, const sr_model_t *m, int epoch, double metric,
                        float loss, int patience);
void sr_train_best_restore(const sr_train_best_t *b, sr_model_t *m); /* no-op if none */
void sr_train_best_free(sr_train_best_t *b);

/* ---- Adam over (parts of) the parameter arena ----
 * Moments are arrays parallel to m->arena: a block at arena offset off uses
 * moment entries [off, off+count). Gradients may include an L2 term: g +=
 * l2 * p. */
typedef struct sr_adam_s {
  float *m1, *m2;
  size_t n;
  int64_t t;
  float lr, b1, b2, eps, l2;
  float step_lr; /* bias-corrected lr of the current step */
  int threads;
} sr_adam_t;
sr_err_t sr_adam_init(sr_adam_t *a, size_t arena_floats, float lr, float l2, int threads,
                      char *errstr, size_t errsz);
void sr_adam_next(sr_adam_t *a); /* starts a step: t++, bias correction */
/* Updates p[0..n) with g[0..n); off = p's offset in the arena. */
void sr_adam_update(sr_adam_t *a, float *p, const float *g, size_t off, size_t n);
void sr_adam_free(sr_adam_t *a);

/* ---- softmax cross-entropy over full-catalogue logits ----
 * L: rows x cols logits, replaced by scale * (softmax - onehot(target)).
 * Returns the summed cross-entropy (natural log) of the rows. */
double sr_train_softmax_xent(float *L, int rows, int cols, const int32_t *targets, float scale,
                             int threads);
/* The same, one pass over L cheaper: L is replaced by E = exp(L - rowmax)
 * and inv_sum[r] = 1 / sum(E_r), so dlogits_r = E_r * inv_sum[r] -
 * onehot(target_r). For callers that fold the row scaling into smaller
 * operands (train_decay.c scales H and dH rows instead of L). */
double sr_train_softmax_exp(float *L, int rows, int cols, const int32_t *targets, float *inv_sum,
                            int threads);

/* ---- deterministic parallel-for: fn(ctx, lo, hi) over [0, n) split in
 * threads contiguous ranges (one per thread; the caller runs the first). */
void sr_train_parallel(int threads, int64_t n, void (*fn)(void *ctx, int64_t lo, int64_t hi),
                       void *ctx);

/* ---- decay kind (train_decay.c) ----
 * Mean next-item cross-entropy over every position of every user of ds
 * (one batch, single thread) and its gradient, written into grad (an
 * arena-shaped buffer of m->arena_floats floats; fixed blocks get 0).
 * Exactly the computation the trainer runs per mini-batch: exposed for the
 * finite-difference check in tests/unit/0060-train.c. */
sr_err_t sr_train_decay_loss_grad(sr_model_t *m, const sr_dataset_t *ds, float *grad, double *loss,
                                  char *errstr, size_t errsz);

#endif
