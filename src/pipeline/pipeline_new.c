/*
 * pipeline_new: building and tearing down a pipeline. Everything the loop
 * needs is allocated here, sized by batch_max, k and max_inflight_batches,
 * so the per-event path allocates nothing (but the batch arenas' amortised
 * growth). The model is taken over only on success; destroy accepts a
 * half-built pipeline (one cleanup path).
 */
#include <stdio.h>
#include <string.h>

#include "pipeline/pipeline_int.h"

/* Copies a then b into one list (b's entries are applied later, so win). */
static sr_kv_t *sr_pipeline_kv_merge(const sr_kv_t *a, int na, const sr_kv_t *b, int nb, int *n) {
  sr_kv_t *kv = sr_calloc((size_t)(na + nb) + 1, sizeof(*kv));
  for (int i = 0; i < na + nb; i++) {
    const sr_kv_t *src = i < na ? &a[i] : &b[i - na];
    kv[i].key = sr_strdup(src->key);
    kv[i].value = sr_strdup(src->value);
  }
  *n = na + nb;
  return kv;
}

static void sr_pipeline_kv_free(sr_kv_t *kv, int n) {
  for (int i = 0; kv && i < n; i++) {
    sr_free((char *)kv[i].key);
    sr_free((char *)kv[i].value);
  }
  sr_free(kv);
}

sr_pipeline_t *sr_pipeline_new(const sr_pipeline_conf_t *conf, sr_model_t *model, char *errstr,
                               size_t errsz) {
  sr_pipeline_t *p = NULL;
  /* brokers, the table's ranges and the seen configuration */
  if (sr_pipeline_conf_check(conf, errstr, errsz) != SR_OK) return NULL;
  p = sr_calloc(1, sizeof(*p));
  p->conf = *conf;
  p->brokers = sr_strdup(conf->brokers);
  p->group = sr_strdup(conf->group);
  p->events_topic = sr_strdup(conf->events_topic);
  p->recs_topic = sr_strdup(conf->recs_topic);
  p->dlq_topic = sr_strdup(conf->dlq_topic);
  p->client_id = sr_strdup(conf->client_id);
  p->kafka_c = sr_pipeline_kv_merge(conf->kafka, conf->n_kafka, conf->kafka_consumer,
                                    conf->n_kafka_consumer, &p->n_kafka_c);
  p->kafka_p = sr_pipeline_kv_merge(conf->kafka, conf->n_kafka, conf->kafka_producer,
                                    conf->n_kafka_producer, &p->n_kafka_p);
  p->conf.kafka = NULL; /* the merged copies above are what we use */
  p->conf.kafka_consumer = p->conf.kafka_producer = NULL;
  p->fatal = SR_OK;
  p->eos = conf->delivery == SR_DELIVERY_EXACTLY_ONCE;
  if (p->eos) { /* unique per worker, stable across its restarts (the option's help) */
    p->txn_id = conf->transactional_id ? sr_strdup(conf->transactional_id) : NULL;
    if (!p->txn_id) {
      size_t len = strlen(conf->group) + strlen(conf->client_id) + 2;
      p->txn_id = sr_malloc(len);
      snprintf(p->txn_id, len, "%s-%s", conf->group, conf->client_id);
    }
  }

  int bm = conf->batch_max, k = conf->k;
  p->codec = sr_codec_new(conf->event_schema_id, conf->rec_schema_id, errstr, errsz);
  if (!p->codec) goto fail;
  p->state = sr_state_new(sr_model_state_size(model), &conf->seen);
  sr_state_set_max_users(p->state, (uint32_t)conf->users_max);
  atomic_store(&p->unassigned_since_ms, sr_now_ms());
  p->scorer = sr_scorer_new(model, bm, k);
  if (!p->scorer) {
    sr_seterr(errstr, errsz, SR_ERR_NOMEM, "cannot allocate scoring buffers for %d x %d", bm,
              (int)sr_model_n_items(model));
    goto fail;
  }
  p->rows = sr_pipeline_batch_new(p->scorer, bm, sr_model_state_size(model));
  p->ledger = sr_pipeline_ledger_new(conf->max_inflight_batches, bm);
  p->msgs = sr_calloc((size_t)bm, sizeof(*p->msgs));
  p->rec_items = sr_calloc((size_t)k, sizeof(*p->rec_items));
  sr_buf_init(&p->enc);
  sr_buf_reserve(&p->enc, 4096);

  sr_publish_conf_t pc = {.brokers = p->brokers,
                          .client_id = p->client_id,
                          .kafka = p->kafka_p,
                          .n_kafka = p->n_kafka_p,
                          .delivery_cb = sr_pipeline_on_delivery,
                          .opaque = p,
                          .transactional_id = p->txn_id};
  p->publish = sr_publish_new(&pc, errstr, errsz);
  if (!p->publish) goto fail;
  sr_ingest_conf_t ic = {.brokers = p->brokers,
                         .group = p->group,
                         .topic = p->events_topic,
                         .client_id = p->client_id,
                         .kafka = p->kafka_c,
                         .n_kafka = p->n_kafka_c,
                         .rebalance_cb = sr_pipeline_on_rebalance,
                         .commit_cb = sr_pipeline_on_commit,
                         .opaque = p,
                         .transactional = p->eos};
  p->ingest = sr_ingest_new(&ic, errstr, errsz);
  if (!p->ingest) goto fail;
  p->model = model; /* ownership taken only on success */
  return p;
fail:
  sr_pipeline_destroy(p);
  return NULL;
}

const sr_model_t *sr_pipeline_model(const sr_pipeline_t *p) { return p->model; }

void sr_pipeline_destroy(sr_pipeline_t *p) {
  if (!p) return;
  sr_ingest_destroy(p->ingest);
  sr_publish_destroy(p->publish);
  sr_pipeline_batch_destroy(p->rows);
  sr_scorer_destroy(p->scorer);
  sr_state_destroy(p->state);
  sr_codec_destroy(p->codec);
  sr_model_destroy(p->model);
  sr_pipeline_ledger_destroy(p->ledger);
  sr_free(p->msgs);
  sr_free(p->rec_items);
  sr_buf_free(&p->enc);
  sr_pipeline_kv_free(p->kafka_c, p->n_kafka_c);
  sr_pipeline_kv_free(p->kafka_p, p->n_kafka_p);
  sr_free(p->brokers);
  sr_free(p->group);
  sr_free(p->events_topic);
  sr_free(p->recs_topic);
  sr_free(p->dlq_topic);
  sr_free(p->client_id);
  sr_free(p->txn_id);
  sr_free(p->first_off);
  sr_free(p);
}
