/*
 * `streamrec eval`: offline evaluation of a snapshot (and of the two
 * baselines) on an event CSV or on a train/test split written by `split`.
 * Parses flags, loads the inputs, calls sr_eval_* and prints either a table
 * or one JSON object. Protocols and definitions: docs/EVALUATION.md.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "streamrec/dataset.h"
#include "streamrec/eval.h"
#include "streamrec/snapshot.h"

typedef enum { SR_PROTO_LOO, SR_PROTO_S100, SR_PROTO_PREQ } sr_proto_t;
static const char *const sr_proto_names[] = {"loo", "s100", "prequential"};

static void sr_eval_usage(FILE *f) {
  fprintf(
      f,
      "usage: streamrec eval [--snapshot FILE] --events FILE [options]\n"
      "       streamrec eval [--snapshot FILE] --train FILE --test FILE [options]\n\n"
      "Offline evaluation with full-ranking metrics (docs/EVALUATION.md). States are\n"
      "built by replaying each user's events exactly as serve does; the snapshot's\n"
      "model is reported beside two baselines computed from the same history\n"
      "(most-popular, first-order Markov). Without --snapshot only the baselines run.\n\n"
      "options:\n"
      "  --snapshot FILE   model snapshot written by `train`\n"
      "  --events FILE     event CSV: leave-one-out by time inside it\n"
      "  --train FILE      history of a split (from `split`)\n"
      "  --test FILE       targets of a split: each user's earliest test event\n"
      "  --protocol P      loo | s100 | prequential (default loo)\n"
      "                      loo: target ranked against the whole catalogue\n"
      "                      s100: loo plus the sampled protocol (target vs 100\n"
      "                            uniformly sampled non-interacted items)\n"
      "                      prequential: replay in time order, test then train\n"
      "  --k N             list length (default 10)\n"
      "  --negatives N     sampled negatives for s100 (default 100)\n"
      "  --seed S          seed of the negative sampler (default 42)\n"
      "  --min-count N     with --events: one-pass filter dropping users and items\n"
      "                    with fewer than N interactions first (default: none)\n"
      "  --min-history N   history events a user needs to be evaluated (default 2)\n"
      "  --warmup X        prequential warm-up fraction (default 0.2)\n"
      "  --batch N         users per scoring call (default 256)\n"
      "  --seen-types LIST, --seen-window-ms MS, --seen-max N\n"
      "                    the seen-item filter, as serve's state.seen.types,\n"
      "                    state.seen.window.ms and state.seen.max (same defaults:\n"
      "                    " SR_SEEN_TYPES_DEFAULT ", 0, " SR_XSTR(
          SR_SEEN_MAX_DEFAULT) "); give serve's values\n"
                               "                    to measure the lists serve publishes\n"
                               "  --json            print one JSON object instead of the table\n");
}

static json_t *sr_jreal(double x) { return isnan(x) ? json_null() : json_real(x); }

static void sr_fmt_cell(char *buf, size_t n, double x, int prec) {
  if (isnan(x))
    snprintf(buf, n, "-");
  else
    snprintf(buf, n, "%.*f", prec, x);
}

static void sr_print_table(const sr_eval_result_t *r, const char *proto, const char *snap,
                           const char *version, double load_s) {
  int k = r->k;
  printf("eval: protocol %s, k=%d, %s%s%s%s, catalogue %d items\n", proto, k,
         snap ? "snapshot " : "no snapshot (baselines only)", snap ? snap : "",
         version ? " version " : "", version ? version : "", (int)r->catalogue);
  printf("users %lld: evaluated %lld, skipped %lld; unknown targets %lld, targets already "
         "consumed %lld (both counted as misses)\n",
         (long long)r->users, (long long)r->evaluated, (long long)r->skipped,
         (long long)r->unknown_targets, (long long)r->seen_targets);
  printf("history %lld events (%lld with items unknown to the catalogue)\n\n",
         (long long)r->history_events, (long long)r->history_unknown);
  char h1[16], h2[16], h3[16];
  snprintf(h1, sizeof(h1), "HR@%d", k);
  snprintf(h2, sizeof(h2), "NDCG@%d", k);
  snprintf(h3, sizeof(h3), "Cov@%d", k);
  printf("%-14s %8s %8s %8s %8s %8s %8s\n", "method", h1, h2, "MRR", h3, "Novelty", "ILD");
  for (int i = 0; i < SR_EVAL__N_METHODS; i++) {
    const sr_eval_metrics_t *m = &r->m[i];
    if (!m->valid) continue;
    char c[6][32];
    sr_fmt_cell(c[0], sizeof(c[0]), m->hr, 4);
    sr_fmt_cell(c[1], sizeof(c[1]), m->ndcg, 4);
    sr_fmt_cell(c[2], sizeof(c[2]), m->mrr, 4);
    sr_fmt_cell(c[3], sizeof(c[3]), m->coverage, 4);
    sr_fmt_cell(c[4], sizeof(c[4]), m->novelty, 3);
    sr_fmt_cell(c[5], sizeof(c[5]), m->ild, 4);
    printf("%-14s %8s %8s %8s %8s %8s %8s\n", sr_eval_method_name((sr_eval_method_t)i), c[0], c[1],
           c[2], c[3], c[4], c[5]);
  }
  if (r->n_negatives > 0) {
    printf("\nsampled: target vs %d sampled non-interacted items (all of them when fewer)\n",
           r->n_negatives);
    printf("%-14s %8s %8s %8s\n", "method", h1, h2, "MRR");
    for (int i = 0; i < SR_EVAL__N_METHODS; i++) {
      const sr_eval_metrics_t *m = &r->m[i];
      if (!m->valid) continue;
      char c[3][32];
      sr_fmt_cell(c[0], sizeof(c[0]), m->s_hr, 4);
      sr_fmt_cell(c[1], sizeof(c[1]), m->s_ndcg, 4);
      sr_fmt_cell(c[2], sizeof(c[2]), m->s_mrr, 4);
      printf("%-14s %8s %8s %8s\n", sr_eval_method_name((sr_eval_method_t)i), c[0], c[1], c[2]);
    }
  }
  printf("\nelapsed %.2f s (loading %.2f s)\n", r->elapsed_s, load_s);
}

static json_t *sr_json_result(const sr_eval_result_t *r, const char *proto, const char *snap,
                              const char *version, double load_s) {
  json_t *o = json_object();
  json_object_set_new(o, "protocol", json_string(proto));
  json_object_set_new(o, "k", json_integer(r->k));
  json_object_set_new(o, "negatives", json_integer(r->n_negatives));
  json_object_set_new(o, "snapshot", snap ? json_string(snap) : json_null());
  json_object_set_new(o, "model_version", version ? json_string(version) : json_null());
  json_object_set_new(o, "catalogue", json_integer(r->catalogue));
  json_object_set_new(o, "users", json_integer(r->users));
  json_object_set_new(o, "evaluated", json_integer(r->evaluated));
  json_object_set_new(o, "skipped", json_integer(r->skipped));
  json_object_set_new(o, "unknown_targets", json_integer(r->unknown_targets));
  json_object_set_new(o, "seen_targets", json_integer(r->seen_targets));
  json_object_set_new(o, "history_events", json_integer(r->history_events));
  json_object_set_new(o, "history_unknown_items", json_integer(r->history_unknown));
  json_t *ms = json_object();
  for (int i = 0; i < SR_EVAL__N_METHODS; i++) {
    const sr_eval_metrics_t *m = &r->m[i];
    if (!m->valid) continue;
    json_t *j = json_object();
    json_object_set_new(j, "hits", json_integer(m->hits));
    json_object_set_new(j, "hr", sr_jreal(m->hr));
    json_object_set_new(j, "ndcg", sr_jreal(m->ndcg));
    json_object_set_new(j, "mrr", sr_jreal(m->mrr));
    json_object_set_new(j, "coverage", sr_jreal(m->coverage));
    json_object_set_new(j, "novelty", sr_jreal(m->novelty));
    json_object_set_new(j, "ild", sr_jreal(m->ild));
    if (r->n_negatives > 0) {
      json_t *s = json_object();
      json_object_set_new(s, "hits", json_integer(m->s_hits));
      json_object_set_new(s, "hr", sr_jreal(m->s_hr));
      json_object_set_new(s, "ndcg", sr_jreal(m->s_ndcg));
      json_object_set_new(s, "mrr", sr_jreal(m->s_mrr));
      json_object_set_new(j, "sampled", s);
    }
    json_object_set_new(ms, sr_eval_method_name((sr_eval_method_t)i), j);
  }
  json_object_set_new(o, "methods", ms);
  json_object_set_new(o, "elapsed_s", json_real(r->elapsed_s));
  json_object_set_new(o, "load_s", json_real(load_s));
  return o;
}

static void sr_print_preq(const sr_eval_preq_result_t *r, const char *snap, const char *version,
                          double warm, double load_s) {
  printf("eval: protocol prequential, k=%d, %s%s%s%s, catalogue %d items\n", r->k,
         snap ? "snapshot " : "no snapshot (baselines only)", snap ? snap : "",
         version ? " version " : "", version ? version : "", (int)r->catalogue);
  printf("events %lld: warm-up %lld (%.0f%%), evaluated %lld; unknown items %lld, items "
         "already consumed %lld (both counted as misses)\n\n",
         (long long)r->events, (long long)r->warmup, warm * 100.0, (long long)r->evaluated,
         (long long)r->unknown_items, (long long)r->seen_items);
  char h[16];
  snprintf(h, sizeof(h), "Recall@%d", r->k);
  printf("%-14s %9s %9s\n", "method", h, "hits");
  if (r->has_model)
    printf("%-14s %9.4f %9lld\n", "model", r->recall_model, (long long)r->hits_model);
  printf("%-14s %9.4f %9lld\n", "most-popular", r->recall_pop, (long long)r->hits_pop);
  printf("\nelapsed %.2f s (loading %.2f s)\n", r->elapsed_s, load_s);
}

static json_t *sr_json_preq(const sr_eval_preq_result_t *r, const char *snap, const char *version,
                            double warm, double load_s) {
  json_t *o = json_object();
  json_object_set_new(o, "protocol", json_string("prequential"));
  json_object_set_new(o, "k", json_integer(r->k));
  json_object_set_new(o, "snapshot", snap ? json_string(snap) : json_null());
  json_object_set_new(o, "model_version", version ? json_string(version) : json_null());
  json_object_set_new(o, "catalogue", json_integer(r->catalogue));
  json_object_set_new(o, "events", json_integer(r->events));
  json_object_set_new(o, "warmup_frac", json_real(warm));
  json_object_set_new(o, "warmup_events", json_integer(r->warmup));
  json_object_set_new(o, "evaluated", json_integer(r->evaluated));
  json_object_set_new(o, "unknown_items", json_integer(r->unknown_items));
  json_object_set_new(o, "seen_items", json_integer(r->seen_items));
  json_t *ms = json_object();
  if (r->has_model) {
    json_t *j = json_object();
    json_object_set_new(j, "hits", json_integer(r->hits_model));
    json_object_set_new(j, "recall", sr_jreal(r->recall_model));
    json_object_set_new(ms, "model", j);
  }
  json_t *j = json_object();
  json_object_set_new(j, "hits", json_integer(r->hits_pop));
  json_object_set_new(j, "recall", sr_jreal(r->recall_pop));
  json_object_set_new(ms, "most-popular", j);
  json_object_set_new(o, "methods", ms);
  json_object_set_new(o, "elapsed_s", json_real(r->elapsed_s));
  json_object_set_new(o, "load_s", json_real(load_s));
  return o;
}

static int sr_emit_json(json_t *o) {
  char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  json_decref(o);
  if (!s) {
    fprintf(stderr, "eval: cannot encode JSON\n");
    return 1;
  }
  printf("%s\n", s);
  free(s);
  return 0;
}

static int sr_parse_int(const char *s, long lo, long hi, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || *end || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

static sr_dataset_t *sr_eval_load(const char *path, char *es, size_t esz) {
  sr_dataset_t *ds = NULL;
  if (sr_dataset_load_csv(path, &ds, es, esz) != SR_OK) return NULL;
  fprintf(stderr, "eval: %s: %lld events, %d users, %d items (%lld bad lines skipped)\n", path,
          (long long)ds->n_events, ds->n_users, ds->n_items, (long long)ds->bad_lines);
  return ds;
}

int sr_cmd_eval(int argc, char **argv) {
  sr_eval_conf_t conf;
  sr_eval_conf_defaults(&conf);
  const char *snap = NULL, *events = NULL, *train = NULL, *test = NULL;
  sr_proto_t proto = SR_PROTO_LOO;
  int json = 0, min_count = 0, negatives = 100;
  static const struct option longopts[] = {{"snapshot", required_argument, 0, 'S'},
                                           {"events", required_argument, 0, 'e'},
                                           {"train", required_argument, 0, 'r'},
                                           {"test", required_argument, 0, 't'},
                                           {"protocol", required_argument, 0, 'p'},
                                           {"k", required_argument, 0, 'k'},
                                           {"negatives", required_argument, 0, 'n'},
                                           {"seed", required_argument, 0, 's'},
                                           {"min-count", required_argument, 0, 'c'},
                                           {"min-history", required_argument, 0, 'H'},
                                           {"warmup", required_argument, 0, 'w'},
                                           {"batch", required_argument, 0, 'b'},
                                           {"seen-types", required_argument, 0, 'T'},
                                           {"seen-window-ms", required_argument, 0, 'W'},
                                           {"seen-max", required_argument, 0, 'M'},
                                           {"json", no_argument, 0, 'j'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'S': snap = optarg; break;
    case 'e': events = optarg; break;
    case 'r': train = optarg; break;
    case 't': test = optarg; break;
    case 'p': {
      int found = 0;
      for (int i = 0; i < (int)SR_ARRAY_SIZE(sr_proto_names); i++)
        if (!strcmp(optarg, sr_proto_names[i])) {
          proto = (sr_proto_t)i;
          found = 1;
        }
      if (!found) {
        fprintf(stderr, "eval: unknown protocol '%s' (loo, s100, prequential)\n", optarg);
        return 2;
      }
      break;
    }
    case 'k':
      if (sr_parse_int(optarg, 1, 10000, &conf.k)) {
        fprintf(stderr, "eval: --k must be 1..10000\n");
        return 2;
      }
      break;
    case 'n':
      if (sr_parse_int(optarg, 1, 1000000, &negatives)) {
        fprintf(stderr, "eval: --negatives must be 1..1000000\n");
        return 2;
      }
      break;
    case 's': conf.seed = strtoull(optarg, NULL, 10); break;
    case 'c':
      if (sr_parse_int(optarg, 0, 1000000000, &min_count)) {
        fprintf(stderr, "eval: --min-count must be >= 0\n");
        return 2;
      }
      break;
    case 'H':
      if (sr_parse_int(optarg, 0, 1000000000, &conf.min_history)) {
        fprintf(stderr, "eval: --min-history must be >= 0\n");
        return 2;
      }
      break;
    case 'w': {
      char *end;
      conf.warmup_frac = strtod(optarg, &end);
      if (end == optarg || *end || !(conf.warmup_frac >= 0 && conf.warmup_frac < 1)) {
        fprintf(stderr, "eval: --warmup must be in [0,1)\n");
        return 2;
      }
      break;
    }
    case 'b':
      if (sr_parse_int(optarg, 1, 65536, &conf.batch)) {
        fprintf(stderr, "eval: --batch must be 1..65536\n");
        return 2;
      }
      break;
    case 'T': {
      char es[256];
      if (sr_seen_parse_types(optarg, &conf.seen.types, es, sizeof(es)) != SR_OK) {
        fprintf(stderr, "eval: --seen-types: %s\n", es);
        return 2;
      }
      break;
    }
    case 'W': {
      char *end;
      long long v = strtoll(optarg, &end, 10);
      if (end == optarg || *end || v < 0) {
        fprintf(stderr, "eval: --seen-window-ms must be >= 0\n");
        return 2;
      }
      conf.seen.window_ms = v;
      break;
    }
    case 'M': {
      int v;
      if (sr_parse_int(optarg, 1, SR_SEEN_MAX_LIMIT, &v)) {
        fprintf(stderr, "eval: --seen-max must be 1..%d\n", SR_SEEN_MAX_LIMIT);
        return 2;
      }
      conf.seen.max = (uint32_t)v;
      break;
    }
    case 'j': json = 1; break;
    case 'h': sr_eval_usage(stdout); return 0;
    default: sr_eval_usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "eval: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  if (!!events == !!(train || test) || (!events && (!train || !test))) {
    fprintf(stderr, "eval: give either --events FILE or both --train FILE and --test FILE\n");
    sr_eval_usage(stderr);
    return 2;
  }
  if (proto == SR_PROTO_PREQ && !events) {
    fprintf(stderr, "eval: the prequential protocol replays one history: use --events\n");
    return 2;
  }
  if (min_count > 0 && !events) {
    fprintf(stderr, "eval: --min-count applies to --events (split filters with its own)\n");
    return 2;
  }
  if (proto == SR_PROTO_S100) conf.n_negatives = negatives;

  char es[512];
  int rc = 1;
  sr_model_t *m = NULL;
  sr_dataset_t *ds = NULL, *dtest = NULL;
  const char *version = NULL;
  int64_t t0 = sr_mono_us();
  if (snap) {
    sr_snapshot_info_t info;
    if (sr_snapshot_load(snap, &m, &info, es, sizeof(es)) != SR_OK) {
      fprintf(stderr, "eval: %s\n", es);
      goto out;
    }
    version = sr_model_version(m);
    fprintf(stderr, "eval: %s: %s model, d=%d, %d items, version %s\n", snap,
            sr_model_kind_name(sr_model_kind(m)), sr_model_dim(m), (int)sr_model_n_items(m),
            version);
  }
  if (!(ds = sr_eval_load(events ? events : train, es, sizeof(es)))) {
    fprintf(stderr, "eval: %s\n", es);
    goto out;
  }
  if (test && !(dtest = sr_eval_load(test, es, sizeof(es)))) {
    fprintf(stderr, "eval: %s\n", es);
    goto out;
  }
  if (min_count > 0) {
    sr_dataset_t *f = sr_dataset_filter_min_count(ds, min_count);
    sr_dataset_destroy(ds);
    ds = f;
    fprintf(stderr, "eval: --min-count %d leaves %d users, %d items, %lld interactions\n",
            min_count, ds->n_users, ds->n_items, (long long)ds->n_events);
  }
  double load_s = (double)(sr_mono_us() - t0) / 1e6;

  if (proto == SR_PROTO_PREQ) {
    sr_eval_preq_result_t pr;
    if (sr_eval_prequential(m, ds, &conf, &pr, es, sizeof(es)) != SR_OK) {
      fprintf(stderr, "eval: %s\n", es);
      goto out;
    }
    if (json)
      rc = sr_emit_json(sr_json_preq(&pr, snap, version, conf.warmup_frac, load_s));
    else {
      sr_print_preq(&pr, snap, version, conf.warmup_frac, load_s);
      rc = 0;
    }
    goto out;
  }
  sr_eval_result_t res;
  sr_err_t err = dtest ? sr_eval_split(m, ds, dtest, &conf, &res, es, sizeof(es))
                       : sr_eval_loo(m, ds, &conf, &res, es, sizeof(es));
  if (err != SR_OK) {
    fprintf(stderr, "eval: %s\n", es);
    goto out;
  }
  if (json) {
    rc = sr_emit_json(sr_json_result(&res, sr_proto_names[proto], snap, version, load_s));
  } else {
    sr_print_table(&res, sr_proto_names[proto], snap, version, load_s);
    rc = 0;
  }
out:
  sr_dataset_destroy(ds);
  sr_dataset_destroy(dtest);
  sr_model_destroy(m);
  return rc;
}
