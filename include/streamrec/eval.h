/*
 * eval: offline evaluation of a model on an event history, using the
 * serving path's own arithmetic: user states and seen items are built by
 * replaying events through serve's rule itself, sr_user_step() (state.h:
 * unknown items update nothing, dt from the last applied event, FORGET
 * resets the user; the seen filter with conf->seen, serve's state.seen.*
 * options), and the model's lists come from serve's scorer
 * (sr_scorer_run: micro-batched sgemm + top-K with the seen filter and
 * serve's tie rule): one filter and one scoring path, so a list eval
 * measures is the list serve publishes for the same events and options, up
 * to near-ties (BLAS rounds calls of different shapes differently). Only
 * the target's rank in the whole catalogue (MRR, the sampled protocol)
 * comes from a full score row (sr_model_score + sr_rank_position).
 * Protocols and metric definitions: docs/EVALUATION.md.
 *
 * Beside the model, two baselines are computed from the same history by
 * the evaluator itself (most-popular, first-order Markov) and ranked over
 * the same catalogue with the same seen-item filter, so every row of a
 * report is comparable. Baseline ties go by item id in byte order (not by
 * catalogue index), so their figures for a data set do not depend on which
 * snapshot, if any, is given.
 *
 * The catalogue is the model's items; without a model (m == NULL, baselines
 * only) it is every item id in the input data sets, indexed in byte order
 * of the ids so results do not depend on file order.
 *
 * Thread: every function runs on the calling thread and only reads the
 * model and data sets (BLAS may use its own threads inside sgemm).
 */
#ifndef STREAMREC_EVAL_H
#define STREAMREC_EVAL_H

#include <stdint.h>
#include "streamrec/common.h"
#include "streamrec/dataset.h"
#include "streamrec/model.h"
#include "streamrec/seen.h"

/* Methods reported side by side. */
typedef enum sr_eval_method_e {
  SR_EVAL_MODEL = 0, /* the snapshot's model */
  SR_EVAL_POP,       /* most popular in the history */
  SR_EVAL_MARKOV,    /* first-order Markov from the last history item */
  SR_EVAL__N_METHODS
} sr_eval_method_t;

/* "model", "most-popular", "markov"; "?" out of range. Static storage. */
const char *sr_eval_method_name(sr_eval_method_t m);

typedef struct sr_eval_conf_s {
  int k;               /* list length for HR/NDCG/coverage/novelty/ILD (10) */
  int n_negatives;     /* sampled protocol beside full ranking: 0 = off, 100 = SASRec */
  uint64_t seed;       /* seed of the negative sampler (42) */
  int batch;           /* users (or events) per sr_model_score call (256) */
  int min_history;     /* users need at least this many history events (2: LOO
                        * "users with at least 3 events") */
  double warmup_frac;  /* prequential: fraction of events only applied (0.2) */
  sr_seen_conf_t seen; /* the seen-item filter, serve's state.seen.* rules (defaults) */
} sr_eval_conf_t;

void sr_eval_conf_defaults(sr_eval_conf_t *c);

/* Figures of one method. Means are over evaluated users; users whose target
 * the catalogue does not know count as misses (0 for hr, ndcg, mrr). */
typedef struct sr_eval_metrics_s {
  int valid;       /* 0 when the method was not run (SR_EVAL_MODEL without a model) */
  int64_t hits;    /* full ranking: target rank < k */
  double hr;       /* hits / evaluated */
  double ndcg;     /* mean 1/log2(rank+2) when rank < k, else 0 */
  double mrr;      /* mean 1/(rank+1), whole ranking (not truncated at k) */
  double coverage; /* distinct items over all top-k lists / catalogue size */
  double novelty;  /* mean over lists of mean -log2(history share) of the list's items */
  double ild;      /* mean over lists of mean pairwise 1 - cos(item_out); NaN without a model */
  /* Sampled protocol (n_negatives > 0): target ranked against the sampled
   * negatives only. NaN / 0 when off. */
  int64_t s_hits;
  double s_hr, s_ndcg, s_mrr;
} sr_eval_metrics_t;

typedef struct sr_eval_result_s {
  int k;
  int n_negatives;
  int32_t catalogue;       /* items that can be ranked */
  int64_t users;           /* users in the input (history users; split: plus test-only users) */
  int64_t evaluated;       /* users with a target and enough history */
  int64_t skipped;         /* users not evaluated: too little history, or no target */
  int64_t unknown_targets; /* evaluated users whose target is not in the catalogue (misses) */
  int64_t seen_targets;    /* evaluated users whose target the seen filter excludes: the
                              user consumed it before, so serve would never list it (misses) */
  int64_t history_events;  /* events in the history (the popularity denominator) */
  int64_t history_unknown; /* history events whose item is not in the catalogue (update nothing) */
  double elapsed_s;        /* evaluation time (data loading excluded) */
  sr_eval_metrics_t m[SR_EVAL__N_METHODS];
} sr_eval_result_t;

/* Leave-one-out by time over one data set: for each user with at least
 * conf->min_history + 1 events the last event (time order, ties in file
 * order) is the target and every earlier event is history; other users'
 * events are all history. m may be NULL (baselines only). Returns SR_OK or
 * SR_ERR_INVALID_ARG with errstr. Fills *res. */
sr_err_t sr_eval_loo(const sr_model_t *m, const sr_dataset_t *events, const sr_eval_conf_t *conf,
                     sr_eval_result_t *res, char *errstr, size_t errsz);

/* The same over a split (e.g. written by sr_eval_split_loo): history is
 * train, each test user's target is its earliest test event (later ones
 * are ignored with a warning). Test users with fewer than conf->min_history
 * train events are skipped. Users are matched by id. With the split of a
 * data set, the result equals sr_eval_loo() on that data set. */
sr_err_t sr_eval_split(const sr_model_t *m, const sr_dataset_t *train, const sr_dataset_t *test,
                       const sr_eval_conf_t *conf, sr_eval_result_t *res, char *errstr,
                       size_t errsz);

/* Prequential (test-then-train) replay. */
typedef struct sr_eval_preq_result_s {
  int k;
  int32_t catalogue;
  int64_t events;        /* all events replayed */
  int64_t warmup;        /* first events only applied */
  int64_t evaluated;     /* events after the warm-up */
  int64_t unknown_items; /* evaluated events whose item is not in the catalogue (misses) */
  int64_t seen_items;    /* evaluated events whose item the seen filter excludes (misses) */
  int has_model;
  int64_t hits_model, hits_pop;
  double recall_model, recall_pop; /* hits / evaluated; recall_model NaN without a model */
  double elapsed_s;
} sr_eval_preq_result_t;

/* Replays all events in global time order (ties in file order). Before
 * applying each event after the warm-up (the first floor(warmup_frac * n)
 * events), the event's user gets the top-k serve would have published after
 * the user's previous event (its current state, its seen items by
 * conf->seen); a hit is the event's item in that list (an item the filter
 * excludes is a miss). Incremental most-popular is scored beside it from
 * counts of the events applied so far, with the same filter. m may be NULL. */
sr_err_t sr_eval_prequential(const sr_model_t *m, const sr_dataset_t *events,
                             const sr_eval_conf_t *conf, sr_eval_preq_result_t *res, char *errstr,
                             size_t errsz);

/* ---- split ---- */
typedef struct sr_eval_split_stats_s {
  int32_t users, items; /* in ds */
  int64_t events;       /* in ds */
  int32_t test_users;   /* users with a test event */
  int64_t train_events, test_events;
} sr_eval_split_stats_t;

/* Leave-one-out split of ds: the last event of each user with at least
 * min_events events goes to test, every other event to train. Appends CSV
 * (header "userId,itemId,value,timestamp_ms,type", then one line per event:
 * users in data set order, events in time order; timestamps in ms) to
 * train and test. st may be NULL. */
void sr_eval_split_loo(const sr_dataset_t *ds, int min_events, sr_buf_t *train, sr_buf_t *test,
                       sr_eval_split_stats_t *st);

/* Split by global time: ds's events in time order (ties in file order, as
 * the prequential protocol replays them); the first floor(frac * n) go to
 * train (the prequential warm-up: train a snapshot on it), all of them in
 * that order again followed by the rest go to test (the file to replay with
 * --protocol prequential --warmup frac). Same CSV format as
 * sr_eval_split_loo; st->test_users counts users with a test-period event. */
void sr_eval_split_time(const sr_dataset_t *ds, double frac, sr_buf_t *train, sr_buf_t *test,
                        sr_eval_split_stats_t *st);

/* ---- one user's offline top-K (serve/eval parity) ---- */
typedef struct sr_eval_event_s {
  sr_str_t item; /* borrowed */
  sr_event_type_t type;
  float value;
  int64_t ts_ms;
} sr_eval_event_t;

/* Replays evs[0..n) in the given order into a new user's state exactly as
 * serve applies events (unknown items update nothing; dt = ts - last applied
 * ts when later, else 0; FORGET resets state and seen items; seen items by
 * *seen, NULL = sr_seen_conf_defaults), then takes the top k from serve's
 * scorer (one row). Writes up to k item indices / scores (scores may be
 * NULL) and, when state_out is not NULL, the final state
 * (sr_model_state_size floats). Returns the number of items written, or a
 * negative sr_err_t (SR_ERR_INVALID_ARG). Allocates scratch memory; any
 * thread. */
int sr_eval_user_topk(const sr_model_t *m, const sr_eval_event_t *evs, int n,
                      const sr_seen_conf_t *seen, int k, int32_t *out_idx, float *out_score,
                      float *state_out);

#endif
