/*
 * `streamrec split`: leave-one-out split of an event CSV into DIR/train.csv
 * and DIR/test.csv for `train` and `eval --train --test`. Optionally applies
 * the one-pass min-count filter first (the "5-core" of the literature is
 * this one pass, not the iterated core). Files are written atomically
 * (temp + fsync + rename + fsync(dir)).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "streamrec/dataset.h"
#include "streamrec/eval.h"

static void sr_split_usage(FILE *f) {
  fprintf(f,
          "usage: streamrec split (--loo FILE | --time FILE --frac X) --out DIR [--min-count N]\n\n"
          "--loo: leave-one-out split by time: the last event of every user with at\n"
          "least 3 events goes to DIR/test.csv, every other event to DIR/train.csv\n"
          "(user,item,value,timestamp_ms,type; users in input order, events in time\n"
          "order).\n"
          "--time: global time split for the prequential protocol: the first X of all\n"
          "events in time order go to DIR/train.csv (train the snapshot on it), all\n"
          "events in time order to DIR/test.csv (replay it with --protocol prequential\n"
          "--warmup X). docs/EVALUATION.md describes both.\n\n"
          "options:\n"
          "  --loo FILE        event CSV to split (MovieLens ratings.csv as is)\n"
          "  --time FILE       event CSV to split by global time (with --frac)\n"
          "  --frac X          share of events before the time cut (0 < X < 1, default 0.2)\n"
          "  --out DIR         output directory (created when missing)\n"
          "  --min-count N     first drop, in one pass, every interaction whose user or\n"
          "                    item has fewer than N interactions (default: no filter)\n"
          "  --min-events N    events a user needs to get a test event (default 3)\n");
}

static int sr_split_write(const char *dir, const char *name, const sr_buf_t *b) {
  char path[4096], es[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  if (sr_file_write_atomic(path, b->data, b->len, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "split: %s\n", es);
    return -1;
  }
  return 0;
}

int sr_cmd_split(int argc, char **argv) {
  const char *in = NULL, *dir = NULL;
  int min_count = 0, min_events = 3, by_time = 0;
  double frac = 0.2;
  static const struct option longopts[] = {{"loo", required_argument, 0, 'l'},
                                           {"out", required_argument, 0, 'o'},
                                           {"min-count", required_argument, 0, 'c'},
                                           {"min-events", required_argument, 0, 'm'},
                                           {"time", required_argument, 0, 't'},
                                           {"frac", required_argument, 0, 'f'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    char *end;
    switch (c) {
    case 'l': in = optarg, by_time = 0; break;
    case 't': in = optarg, by_time = 1; break;
    case 'f':
      frac = strtod(optarg, &end);
      if (end == optarg || *end || !(frac > 0 && frac < 1)) {
        fprintf(stderr, "split: --frac must be in (0, 1)\n");
        return 2;
      }
      break;
    case 'o': dir = optarg; break;
    case 'c':
      min_count = (int)strtol(optarg, &end, 10);
      if (end == optarg || *end || min_count < 0) {
        fprintf(stderr, "split: --min-count must be >= 0\n");
        return 2;
      }
      break;
    case 'm':
      min_events = (int)strtol(optarg, &end, 10);
      if (end == optarg || *end || min_events < 1) {
        fprintf(stderr, "split: --min-events must be >= 1\n");
        return 2;
      }
      break;
    case 'h': sr_split_usage(stdout); return 0;
    default: sr_split_usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "split: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  if (!in || !dir) {
    fprintf(stderr, "split: --out and one of --loo or --time are required\n");
    sr_split_usage(stderr);
    return 2;
  }
  char es[512];
  int rc = 1;
  sr_dataset_t *ds = NULL;
  sr_buf_t tr, te;
  sr_buf_init(&tr);
  sr_buf_init(&te);
  if (sr_dataset_load_csv(in, &ds, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "split: %s\n", es);
    goto out;
  }
  printf("split: %s: %d users, %d items, %lld interactions (%lld bad lines skipped)\n", in,
         ds->n_users, ds->n_items, (long long)ds->n_events, (long long)ds->bad_lines);
  if (min_count > 0) {
    sr_dataset_t *f = sr_dataset_filter_min_count(ds, min_count);
    sr_dataset_destroy(ds);
    ds = f;
    printf("split: --min-count %d leaves %d users, %d items, %lld interactions\n", min_count,
           ds->n_users, ds->n_items, (long long)ds->n_events);
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "split: cannot create %s: %s\n", dir, strerror(errno));
    goto out;
  }
  sr_eval_split_stats_t st;
  if (by_time) {
    sr_eval_split_time(ds, frac, &tr, &te, &st);
    if (sr_split_write(dir, "train.csv", &tr) || sr_split_write(dir, "test.csv", &te)) goto out;
    printf("split: %s/train.csv %lld events (first %g by time); %s/test.csv %lld events (all, "
           "in time order: replay with --protocol prequential --warmup %g); %d users after "
           "the cut\n",
           dir, (long long)st.train_events, frac, dir, (long long)ds->n_events, frac,
           (int)st.test_users);
    rc = 0;
    goto out;
  }
  sr_eval_split_loo(ds, min_events, &tr, &te, &st);
  if (sr_split_write(dir, "train.csv", &tr) || sr_split_write(dir, "test.csv", &te)) goto out;
  printf("split: %s/train.csv %lld events; %s/test.csv %lld events (%d users with >= %d "
         "events; %d users kept whole in train)\n",
         dir, (long long)st.train_events, dir, (long long)st.test_events, (int)st.test_users,
         min_events, (int)(st.users - st.test_users));
  rc = 0;
out:
  sr_buf_free(&tr);
  sr_buf_free(&te);
  sr_dataset_destroy(ds);
  return rc;
}
