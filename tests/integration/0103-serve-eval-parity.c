/*
 * Parity between serving and offline evaluation: every user's events are
 * replayed through the pipeline on the test cluster (itest.h); the user's last
 * published top-K must equal the top-K that eval computes offline from the
 * same snapshot and history, with the same seen filter (serve's defaults),
 * up to BLAS rounding: at every position the scores agree within
 * T_TOPK_TOL, and an item differs only where it trades places with a
 * near-tie (test.h t_topk_same). Serve scores users in micro-batches whose
 * size depends on arrival timing, eval one user at a time: sgemm calls of
 * different shapes, which no BLAS promises to round alike. Users have more
 * events than the old 32-item ring held, some repeated, so the lists also
 * prove the exact exclusion. Runs for each model kind the trainer builds
 * (decay, gru).
 */
#include <math.h>

#include "itest.h"
#include "streamrec/eval.h"

#define N_USERS 25
#define N_ITEMS 120
#define PER_USER 45
#define N_PARTS 3

static void parity_for_kind(sr_model_kind_t kind, int *failed) {
  char es[512];
  it_cluster_t *cluster = it_cluster_new(1, N_PARTS);
  if (!cluster) {
    *failed = 1;
    return;
  }
  const char *bs = it_cluster_bootstrap(cluster);
  it_events_t evs;
  it_events_make(&evs, N_USERS, N_ITEMS, PER_USER, 21);
  /* train the requested kind */
  sr_dataset_t *ds = NULL;
  sr_dataset_from_rows(evs.rows, evs.n, &ds);
  sr_train_conf_t tc;
  sr_train_conf_defaults(&tc, kind);
  tc.dim = 16;
  tc.epochs = 2;
  tc.threads = 1;
  tc.progress = 0;
  sr_model_t *m = NULL;
  sr_snapshot_info_t info;
  memset(&info, 0, sizeof(info));
  const char *snap = t_tmp_path("parity.snap");
  if (sr_train_run(ds, &tc, &m, &info, es, sizeof(es)) != SR_OK ||
      sr_snapshot_write(m, &info, snap, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "train/snapshot: %s\n", es);
    *failed = 1;
    goto out;
  }
  sr_model_destroy(m);
  m = NULL;
  sr_snapshot_load(snap, &m, NULL, es, sizeof(es)); /* the model serve will load */

  if (it_produce_events(bs, &evs) != evs.n) {
    *failed = 1;
    goto out;
  }
  sr_pipeline_stats_t st;
  if (it_run_pipeline(bs, snap, IT_GROUP("g-parity"), 1, 2000, &st, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "run: %s\n", es);
    *failed = 1;
    goto out;
  }
  it_msg_t *recs = calloc((size_t)evs.n + 5, sizeof(*recs));
  int nr = it_read_topic(bs, IT_TOPIC("recommendations"), evs.n, 8000, recs);
  if (nr != evs.n) {
    fprintf(stderr, "read %d recommendations, expected %d\n", nr, evs.n);
    *failed = 1;
  }
  sr_codec_t *c = sr_codec_new(1, 2, es, sizeof(es));
  int checked = 0, near_ties = 0;
  for (int u = 0; u < N_USERS && !*failed; u++) {
    char uid[16];
    snprintf(uid, sizeof(uid), "u%d", u);
    /* the user's history in produce order (= per-partition order) */
    sr_eval_event_t hist[PER_USER];
    int n = 0, last_ev = -1;
    for (int i = 0; i < evs.n; i++)
      if (!strcmp(evs.users[i], uid)) {
        hist[n].item = evs.rows[i].item;
        hist[n].type = (sr_event_type_t)evs.rows[i].type;
        hist[n].value = evs.rows[i].value;
        hist[n].ts_ms = evs.rows[i].ts_ms;
        n++;
        last_ev = i;
      }
    /* the recommendation published for the user's last event */
    char want_id[32];
    snprintf(want_id, sizeof(want_id), "ev-%d", last_ev);
    sr_rec_t r;
    int found = 0;
    for (int i = 0; i < nr && !found; i++)
      if (sr_codec_decode_rec(c, recs[i].value, recs[i].len, &r, es, sizeof(es)) == SR_OK &&
          sr_str_eq(r.source_event_id, sr_str_cstr(want_id)))
        found = 1;
    if (!found) {
      fprintf(stderr, "no recommendation for %s\n", want_id);
      *failed = 1;
      break;
    }
    int32_t idx[10];
    float sc[10];
    int k = sr_eval_user_topk(m, hist, n, NULL, 10, idx, sc, NULL);
    if (k != r.n_items) {
      fprintf(stderr, "%s: eval gives %d items, serve %d\n", uid, k, r.n_items);
      *failed = 1;
      break;
    }
    /* exact exclusion: nothing the user clicked comes back, however long ago */
    for (int j = 0; j < r.n_items; j++)
      for (int h = 0; h < n; h++)
        if (sr_str_eq(r.items[j].item_id, hist[h].item)) {
          fprintf(stderr, "%s: serve recommends %.*s, consumed at event %d of %d\n", uid,
                  (int)hist[h].item.len, hist[h].item.ptr, h, n);
          *failed = 1;
        }
    if (*failed) break;
    /* serve's list as catalogue indices, then the parity rule */
    int32_t sidx[10];
    float ssc[10];
    for (int j = 0; j < k; j++) {
      sidx[j] = sr_model_item_lookup(m, r.items[j].item_id.ptr, r.items[j].item_id.len);
      ssc[j] = r.items[j].score;
    }
    for (int j = 0; j < k; j++) {
      sr_str_t id = sr_model_item_id(m, idx[j]);
      if (!sr_str_eq(id, r.items[j].item_id)) near_ties++;
      if (!t_topk_same(sidx, ssc, idx, sc, k, j)) {
        fprintf(stderr, "%s rank %d: eval %.*s %.7g, serve %.*s %.7g\n", uid, j, (int)id.len,
                id.ptr, (double)sc[j], (int)r.items[j].item_id.len, r.items[j].item_id.ptr,
                (double)r.items[j].score);
        *failed = 1;
        break;
      }
    }
    checked++;
  }
  if (!*failed && checked != N_USERS) *failed = 1;
  fprintf(stderr, "parity (%s): %d users checked, %d positions differ by a near-tie\n",
          sr_model_kind_name(kind), checked, near_ties);
  sr_codec_destroy(c);
  it_msgs_free(recs, nr);
  free(recs);
out:
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
  it_events_free(&evs);
  it_cluster_destroy(cluster);
  unlink(snap);
}

TEST(parity_decay) {
  int failed = 0;
  parity_for_kind(SR_MODEL_DECAY, &failed);
  T_ASSERT(!failed);
}

TEST(parity_gru) {
  int failed = 0;
  parity_for_kind(SR_MODEL_GRU, &failed);
  T_ASSERT(!failed);
}

TEST_MAIN(RUN(parity_decay); RUN(parity_gru))
