/*
 * `streamrec train`: event CSV -> trained model -> snapshot file.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "streamrec/dataset.h"
#include "streamrec/codec.h"
#include "streamrec/kafka.h"
#include "streamrec/snapshot.h"
#include "streamrec/train.h"

/* Events read from a Kafka topic: strings in one arena, rows by offset. */
typedef struct sr_topic_rows_s {
  sr_codec_t *codec;
  sr_buf_t arena;
  sr_csv_row_t *rows;
  size_t *user_off, *item_off;
  int64_t n, cap, bad;
} sr_topic_rows_t;

static int sr_train_on_msg(void *opaque, const sr_msg_t *m) {
  sr_topic_rows_t *t = opaque;
  sr_event_t ev;
  char es[256];
  if (sr_codec_decode_event(t->codec, m->value, m->len, &ev, es, sizeof(es)) != SR_OK) {
    if (t->bad++ < 10)
      sr_log_warn("train", "%s[%d]@%lld skipped: %s", m->topic, (int)m->partition,
                  (long long)m->offset, es);
    return 0;
  }
  if (ev.type == SR_EV_FORGET) return 0; /* forgotten users are not trained on */
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 65536;
    t->rows = sr_realloc(t->rows, (size_t)t->cap * sizeof(*t->rows));
    t->user_off = sr_realloc(t->user_off, (size_t)t->cap * sizeof(size_t));
    t->item_off = sr_realloc(t->item_off, (size_t)t->cap * sizeof(size_t));
  }
  t->user_off[t->n] = t->arena.len;
  sr_buf_append(&t->arena, ev.user_id.ptr, ev.user_id.len);
  t->item_off[t->n] = t->arena.len;
  sr_buf_append(&t->arena, ev.item_id.ptr, ev.item_id.len);
  sr_csv_row_t *r = &t->rows[t->n++];
  r->user.len = ev.user_id.len;
  r->item.len = ev.item_id.len;
  r->value = ev.value;
  r->ts_ms = ev.ts_ms;
  r->type = (int)ev.type;
  return 0;
}

/* Reads the topic as it is now into a data set. */
static sr_err_t sr_train_load_topic(const char *brokers, const char *topic, int32_t schema_id,
                                    sr_dataset_t **out, char *es, size_t essz) {
  sr_topic_rows_t t;
  memset(&t, 0, sizeof(t));
  sr_buf_init(&t.arena);
  t.codec = sr_codec_new(schema_id, SR_DEFAULT_REC_SCHEMA_ID, es, essz);
  if (!t.codec) return SR_ERR_FATAL;
  int64_t n = sr_kafka_read_topic(brokers, topic, NULL, 0, sr_train_on_msg, &t, 120000, es, essz);
  sr_err_t err = SR_OK;
  if (n < 0) {
    err = SR_ERR_KAFKA;
  } else {
    for (int64_t i = 0; i < t.n; i++) {
      t.rows[i].user.ptr = (const char *)t.arena.data + t.user_off[i];
      t.rows[i].item.ptr = (const char *)t.arena.data + t.item_off[i];
    }
    fprintf(stderr, "train: read %lld messages from %s (%lld undecodable, skipped)\n", (long long)n,
            topic, (long long)t.bad);
    err = sr_dataset_from_rows(t.rows, t.n, out);
    if (err == SR_OK) (*out)->bad_lines = t.bad;
  }
  sr_codec_destroy(t.codec);
  sr_buf_free(&t.arena);
  sr_free(t.rows);
  sr_free(t.user_off);
  sr_free(t.item_off);
  return err;
}

static void sr_train_usage(FILE *f) {
  sr_train_conf_t d, dd;
  sr_train_conf_defaults(&d, SR_MODEL_GRU);
  sr_train_conf_defaults(&dd, SR_MODEL_DECAY);
  fprintf(
      f,
      "usage: streamrec train (--events FILE | --brokers B --topic T) --out SNAPSHOT [options]\n\n"
      "Trains a model from an event CSV (user,item,value,timestamp[,type]; MovieLens\n"
      "ratings.csv as is), or from a Kafka topic of UserEvents read from the beginning\n"
      "up to the end offsets found at start, and writes a versioned snapshot.\n\n"
      "options:\n"
      "  --events FILE       event history CSV\n"
      "  --brokers B         read UserEvents from Kafka instead (with --topic)\n"
      "  --topic T           topic to read (default events)\n"
      "  --event-schema-id N Confluent schema id of UserEvent (default 1)\n"
      "  --out FILE          snapshot to write (required)\n"
      "  --kind K            model kind: gru (sequential, the default) | decay\n"
      "defaults below are gru's, decay's in brackets:\n"
      "  --dim D             embedding size (default %d [%d])\n"
      "  --epochs E          maximum epochs (default %d [%d])\n"
      "  --batch N           positions per gradient step (default %d [%d])\n"
      "  --lr X              Adam learning rate (default %g [%g])\n"
      "  --l2 X              weight decay (default %g [%g])\n"
      "  --valid-frac X      users held out for early stopping (default %g [%g])\n"
      "  --patience N        epochs without improvement before stopping (default %d [%d])\n"
      "  --seed S            random seed (default %llu)\n"
      "  --threads N         worker threads, 0 = all cores (default %d)\n"
      "  --max-seconds X     stop training after X seconds (default: no limit)\n"
      "  --no-progress       no progress line even on a terminal\n",
      d.dim, dd.dim, d.epochs, dd.epochs, d.batch, dd.batch, (double)d.lr, (double)dd.lr,
      (double)d.l2, (double)dd.l2, (double)d.valid_frac, (double)dd.valid_frac, d.patience,
      dd.patience, (unsigned long long)d.seed, d.threads);
}

/* Options given on the command line (the rest take the kind's defaults). */
enum {
  SR_TO_DIM = 1 << 0,
  SR_TO_EPOCHS = 1 << 1,
  SR_TO_BATCH = 1 << 2,
  SR_TO_LR = 1 << 3,
  SR_TO_L2 = 1 << 4,
  SR_TO_VALID = 1 << 5,
  SR_TO_PATIENCE = 1 << 6,
};

/* tc = the defaults of tc->kind, overridden by the options in `given` */
static void sr_train_apply_kind_defaults(sr_train_conf_t *tc, unsigned given) {
  sr_train_conf_t d;
  sr_train_conf_defaults(&d, tc->kind);
  if (!(given & SR_TO_DIM)) tc->dim = d.dim;
  if (!(given & SR_TO_EPOCHS)) tc->epochs = d.epochs;
  if (!(given & SR_TO_BATCH)) tc->batch = d.batch;
  if (!(given & SR_TO_LR)) tc->lr = d.lr;
  if (!(given & SR_TO_L2)) tc->l2 = d.l2;
  if (!(given & SR_TO_VALID)) tc->valid_frac = d.valid_frac;
  if (!(given & SR_TO_PATIENCE)) tc->patience = d.patience;
}

int sr_cmd_train(int argc, char **argv) {
  sr_train_conf_t tc;
  sr_train_conf_defaults(&tc, SR_MODEL_GRU);
  const char *events = NULL, *out = NULL, *brokers = NULL, *topic = "events";
  int32_t schema_id = SR_DEFAULT_EVENT_SCHEMA_ID;
  unsigned given = 0;
  static const struct option longopts[] = {{"events", required_argument, 0, 'e'},
                                           {"out", required_argument, 0, 'o'},
                                           {"kind", required_argument, 0, 'K'},
                                           {"dim", required_argument, 0, 'd'},
                                           {"epochs", required_argument, 0, 'E'},
                                           {"batch", required_argument, 0, 'b'},
                                           {"lr", required_argument, 0, 'l'},
                                           {"l2", required_argument, 0, 'L'},
                                           {"valid-frac", required_argument, 0, 'v'},
                                           {"patience", required_argument, 0, 'p'},
                                           {"seed", required_argument, 0, 's'},
                                           {"threads", required_argument, 0, 't'},
                                           {"max-seconds", required_argument, 0, 'm'},
                                           {"no-progress", no_argument, 0, 'n'},
                                           {"brokers", required_argument, 0, 'B'},
                                           {"topic", required_argument, 0, 'T'},
                                           {"event-schema-id", required_argument, 0, 'S'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'e': events = optarg; break;
    case 'o': out = optarg; break;
    case 'K': {
      int k = sr_model_kind_parse(optarg);
      if (k < 0) {
        fprintf(stderr, "train: unknown model kind '%s' (decay, gru)\n", optarg);
        return 2;
      }
      tc.kind = (sr_model_kind_t)k;
      break;
    }
    case 'd': tc.dim = atoi(optarg), given |= SR_TO_DIM; break;
    case 'E': tc.epochs = atoi(optarg), given |= SR_TO_EPOCHS; break;
    case 'b': tc.batch = atoi(optarg), given |= SR_TO_BATCH; break;
    case 'l': tc.lr = strtof(optarg, NULL), given |= SR_TO_LR; break;
    case 'L': tc.l2 = strtof(optarg, NULL), given |= SR_TO_L2; break;
    case 'v': tc.valid_frac = strtof(optarg, NULL), given |= SR_TO_VALID; break;
    case 'p': tc.patience = atoi(optarg), given |= SR_TO_PATIENCE; break;
    case 's': tc.seed = strtoull(optarg, NULL, 10); break;
    case 't': tc.threads = atoi(optarg); break;
    case 'm': tc.max_seconds = strtod(optarg, NULL); break;
    case 'n': tc.progress = 0; break;
    case 'B': brokers = optarg; break;
    case 'T': topic = optarg; break;
    case 'S': schema_id = (int32_t)atoi(optarg); break;
    case 'h': sr_train_usage(stdout); return 0;
    default: sr_train_usage(stderr); return 2;
    }
  }
  sr_train_apply_kind_defaults(&tc, given);
  if ((!events && !brokers) || (events && brokers) || !out) {
    fprintf(stderr, "train: --out and one of --events or --brokers are required\n");
    sr_train_usage(stderr);
    return 2;
  }
  if (tc.dim < 1 || tc.dim > 1024 || tc.epochs < 1 || tc.batch < 1 || !(tc.lr > 0)) {
    fprintf(stderr,
            "train: invalid hyper-parameters (dim 1..1024, epochs >= 1, batch >= 1, lr > 0)\n");
    return 2;
  }
  char es[512];
  int rc = 1;
  sr_dataset_t *ds = NULL;
  sr_model_t *m = NULL;
  int64_t t0 = sr_mono_us();
  if (brokers ? sr_train_load_topic(brokers, topic, schema_id, &ds, es, sizeof(es)) != SR_OK
              : sr_dataset_load_csv(events, &ds, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "train: %s\n", es);
    goto out;
  }
  if (ds->n_events == 0) {
    fprintf(stderr, "train: %s holds no valid events\n", brokers ? topic : events);
    goto out;
  }
  fprintf(stderr, "train: %lld events, %d users, %d items from %s (%lld bad lines skipped)\n",
          (long long)ds->n_events, ds->n_users, ds->n_items, brokers ? topic : events,
          (long long)ds->bad_lines);
  sr_snapshot_info_t info;
  memset(&info, 0, sizeof(info));
  int64_t t1 = sr_mono_us();
  if (sr_train_run(ds, &tc, &m, &info, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "%s\n", es); /* already "train...: reason"; nothing is written */
    goto out;
  }
  double train_s = (double)(sr_mono_us() - t1) / 1e6;
  if (sr_snapshot_write(m, &info, out, es, sizeof(es)) != SR_OK) {
    fprintf(stderr, "train: %s\n", es);
    goto out;
  }
  printf("train: kind=%s dim=%d items=%d users=%llu events=%llu epochs=%u loss=%.4f "
         "valid_ndcg@10=%.4f train_time=%.1fs total_time=%.1fs snapshot=%s version=%s\n",
         sr_model_kind_name(tc.kind), tc.dim, (int)sr_model_n_items(m),
         (unsigned long long)info.train_users, (unsigned long long)info.train_events, info.epochs,
         (double)info.train_loss, (double)info.valid_metric, train_s,
         (double)(sr_mono_us() - t0) / 1e6, out, info.version);
  rc = 0;
out:
  sr_model_destroy(m);
  sr_dataset_destroy(ds);
  return rc;
}
