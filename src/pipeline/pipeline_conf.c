/*
 * pipeline_conf: the pipeline's options, written once. One list
 * (SR_PIPELINE_OPTS) gives each option its row of the typed option table
 * (name, type, default, range, help, flag: what the config file, --help,
 * docs/CONFIGURATION.md and `streamrec config` show) and the field of
 * sr_pipeline_conf_t it sets. From it come the library defaults
 * (sr_pipeline_conf_defaults parses the rows' default text, so a default
 * cannot differ between `serve` and a test that builds a pipeline
 * in-process), the range check of sr_pipeline_new (the rows' min/max) and
 * the copy from a parsed configuration (sr_pipeline_conf_from).
 *
 * Defaults shared with other modules stay theirs: the seen filter's
 * (SR_SEEN_*), the schema ids (SR_DEFAULT_*_SCHEMA_ID), the state bound
 * (SR_STATE_USERS_MAX).
 *
 * Thread: any (pure functions over the caller's structs and static data).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "streamrec/codec.h"
#include "streamrec/pipeline.h"
#include "streamrec/state.h"

#define SR_I64MAX 9223372036854775807LL
#define SR_I32MAX 2147483647LL

/* The one spelling of the state bound the table can carry as default text
 * (SR_STATE_USERS_MAX has a `u` suffix); the build checks they agree. */
#define SR_PIPE_USERS_MAX_TEXT "67108863"
_Static_assert(SR_STATE_USERS_MAX == 67108863u, "update SR_PIPE_USERS_MAX_TEXT");

/* How a row's value text becomes its field. */
typedef enum {
  SR_PF_STR,       /* const char *, borrowed */
  SR_PF_INT,       /* int */
  SR_PF_I32,       /* int32_t */
  SR_PF_I64,       /* int64_t */
  SR_PF_U32,       /* uint32_t */
  SR_PF_BOOL,      /* int, 1 or 0 */
  SR_PF_TYPES,     /* uint32_t mask of event types (sr_seen_parse_types) */
  SR_PF_DELIVERY,  /* sr_delivery_t, by name (sr_pipeline_delivery_names) */
  SR_PF_TXN_SCOPE, /* sr_txn_scope_t, by name (sr_pipeline_txn_scope_names) */
} sr_pipeline_conf_kind_t;

/* The names of the enumerated options, in the order of their enum. */
static const char *const sr_pipeline_delivery_names[] = {"at_least_once", "exactly_once", NULL};
static const char *const sr_pipeline_txn_scope_names[] = {"interval", "batch", NULL};

/* C type of each kind, for the build-time check that a row's field has it. */
#define SR_PF_CTYPE_SR_PF_STR const char *
#define SR_PF_CTYPE_SR_PF_INT int
#define SR_PF_CTYPE_SR_PF_I32 int32_t
#define SR_PF_CTYPE_SR_PF_I64 int64_t
#define SR_PF_CTYPE_SR_PF_U32 uint32_t
#define SR_PF_CTYPE_SR_PF_BOOL int
#define SR_PF_CTYPE_SR_PF_TYPES uint32_t
#define SR_PF_CTYPE_SR_PF_DELIVERY sr_delivery_t
#define SR_PF_CTYPE_SR_PF_TXN_SCOPE sr_txn_scope_t

/* X(field, field kind, name, option type, default, min, max, help, flag) */
#define SR_PIPELINE_OPTS(X)                                                                        \
  X(group, SR_PF_STR, "group", SR_CONF_STR, "streamrec", 0, 0, "consumer group id", "group")       \
  X(client_id, SR_PF_STR, "client.id", SR_CONF_STR, "streamrec", 0, 0, "Kafka client id", NULL)    \
  X(events_topic, SR_PF_STR, "topic.events", SR_CONF_STR, "events", 0, 0,                          \
    "input topic of UserEvents", "events-topic")                                                   \
  X(recs_topic, SR_PF_STR, "topic.recommendations", SR_CONF_STR, "recommendations", 0, 0,          \
    "output topic of Recommendations", "recs-topic")                                               \
  X(dlq_topic, SR_PF_STR, "topic.dlq", SR_CONF_STR, "events.dlq", 0, 0,                            \
    "dead-letter topic for undecodable input (original key/value + reason headers)", "dlq-topic")  \
  X(k, SR_PF_INT, "k", SR_CONF_INT, "10", 1, 1000, "items per recommendation", "k")                \
  X(batch_max, SR_PF_INT, "batch.max", SR_CONF_INT, "64", 1, 4096,                                 \
    "users per scoring micro-batch (one sgemm)", "batch-max")                                      \
  X(batch_wait_us, SR_PF_INT, "batch.wait.us", SR_CONF_INT, "1000", 0, 1000000,                    \
    "longest wait to fill a micro-batch once the first event arrived", "batch-wait-us")            \
  X(coalesce, SR_PF_BOOL, "batch.coalesce", SR_CONF_BOOL, "false", 0, 0,                           \
    "true: a user's events within one micro-batch get one recommendation, for the newest "         \
    "(fewer outputs for bursty users); false: one recommendation per event",                       \
    "coalesce")                                                                                    \
  X(seen.types, SR_PF_TYPES, "state.seen.types", SR_CONF_STR, SR_SEEN_TYPES_DEFAULT, 0, 0,         \
    "event types that consume their item (comma-separated); recommendations never "                \
    "contain an item the user consumed (within state.seen.window.ms). FORGET clears "              \
    "the user's items; IMPRESSION and SKIP are left out by default",                               \
    "seen-types")                                                                                  \
  X(seen.window_ms, SR_PF_I64, "state.seen.window.ms", SR_CONF_INT, "0", 0, SR_I64MAX,             \
    "re-consumption window: an item consumed at t is excluded while the user's newest "            \
    "event time is less than t + window; 0 = never recommended again",                             \
    "seen-window-ms")                                                                              \
  X(seen.max, SR_PF_U32, "state.seen.max", SR_CONF_INT, SR_XSTR(SR_SEEN_MAX_DEFAULT), 1,           \
    SR_SEEN_MAX_LIMIT,                                                                             \
    "consumed items remembered per user; past it the one consumed longest ago is "                 \
    "dropped (and may be recommended again; counted in "                                           \
    "streamrec_state_seen_dropped_total)",                                                         \
    "seen-max")                                                                                    \
  X(event_schema_id, SR_PF_I32, "schema.id.event", SR_CONF_INT,                                    \
    SR_XSTR(SR_DEFAULT_EVENT_SCHEMA_ID), 0, SR_I32MAX, "Confluent schema id of UserEvent",         \
    "event-schema-id")                                                                             \
  X(rec_schema_id, SR_PF_I32, "schema.id.recommendation", SR_CONF_INT,                             \
    SR_XSTR(SR_DEFAULT_REC_SCHEMA_ID), 0, SR_I32MAX, "Confluent schema id of Recommendation",      \
    "rec-schema-id")                                                                               \
  X(commit_interval_ms, SR_PF_INT, "commit.interval.ms", SR_CONF_INT, "500", 1, 3600000,           \
    "how often delivered progress is committed (also on revoke and shutdown)",                     \
    "commit-interval-ms")                                                                          \
  X(max_inflight_batches, SR_PF_INT, "inflight.batches.max", SR_CONF_INT, "4096", 2, 1000000,      \
    "micro-batches awaiting delivery before consumption waits (back-pressure)", NULL)              \
  X(id_max_bytes, SR_PF_INT, "event.id.max.bytes", SR_CONF_INT, "1024", 1, 1000000,                \
    "longest event_id, user_id, item_id or scenario accepted; longer events are "                  \
    "dead-lettered (INVALID_FIELD)",                                                               \
    NULL)                                                                                          \
  X(future_max_ms, SR_PF_I64, "event.time.future.max.ms", SR_CONF_INT, "86400000", 0, SR_I64MAX,   \
    "latest event timestamp accepted, as ms past this worker's clock (timestamps before "          \
    "1970 are always refused); later events are dead-lettered (INVALID_FIELD)",                    \
    NULL)                                                                                          \
  X(key_check, SR_PF_BOOL, "event.key.check", SR_CONF_BOOL, "true", 0, 0,                          \
    "true: an event whose Kafka key is not its user_id is dead-lettered (KEY_MISMATCH), "          \
    "since a user's state lives in the partition of its key",                                      \
    NULL)                                                                                          \
  X(users_max, SR_PF_I64, "state.partition.users.max", SR_CONF_INT, SR_PIPE_USERS_MAX_TEXT, 1,     \
    SR_STATE_USERS_MAX,                                                                            \
    "users one input partition's state holds; events of further new users are "                    \
    "dead-lettered (STATE_FULL)",                                                                  \
    NULL)                                                                                          \
  X(shutdown_timeout_ms, SR_PF_INT, "shutdown.timeout.ms", SR_CONF_INT, "10000", 0, 3600000,       \
    "how long SIGINT/SIGTERM waits for outputs in flight; undelivered ones stay uncommitted "      \
    "(a second signal stops at once)",                                                             \
    NULL)                                                                                          \
  X(idle_exit_ms, SR_PF_INT, "idle.exit.ms", SR_CONF_INT, "0", 0, 86400000,                        \
    "exit after this long without input once events were processed, time blocked in commits "      \
    "not counted (0 = never)",                                                                     \
    "idle-exit-ms")                                                                                \
  X(max_events, SR_PF_I64, "max.events", SR_CONF_INT, "0", 0, SR_I64MAX,                           \
    "exit after this many input messages (0 = no limit)", "max-events")                            \
  X(delivery, SR_PF_DELIVERY, "delivery.guarantee", SR_CONF_STR, "at_least_once", 0, 0,            \
    "at_least_once: input offsets are committed once the outputs are acknowledged (a crash "       \
    "can repeat outputs); exactly_once: outputs and input offsets are committed together in "      \
    "Kafka transactions (transaction.scope), for consumers reading with "                          \
    "isolation.level=read_committed; user state is not transactional. Needs a real Kafka: "        \
    "refused with the embedded broker (docs/ARCHITECTURE.md, \"Exactly-once mode\")",              \
    "delivery-guarantee")                                                                          \
  X(txn_scope, SR_PF_TXN_SCOPE, "transaction.scope", SR_CONF_STR, "interval", 0, 0,                \
    "exactly_once: interval = one transaction per commit.interval.ms (outputs become visible "     \
    "up to an interval later); batch = one per micro-batch (visible sooner, one commit round "     \
    "trip per batch)",                                                                             \
    "transaction-scope")                                                                           \
  X(transactional_id, SR_PF_STR, "transactional.id", SR_CONF_STR, NULL, 0, 0,                      \
    "exactly_once: the producer's transactional.id; unset = <group>-<client.id>. Must be "         \
    "unique per worker and stable across its restarts: the restarted worker then fences its "      \
    "old instance and aborts the transaction it left open (two live workers with one id fence "    \
    "each other: give each its own client.id or transactional.id). The transaction timeout "       \
    "is librdkafka's, kafka.producer.transaction.timeout.ms (default 60000)",                      \
    "transactional-id")

#define SR__OPT_ROW(field, kind, name, type, def, min, max, help, flag)                            \
  {name, type, def, min, max, help, flag},
static const sr_conf_opt_t sr_pipeline_opts[] = {SR_PIPELINE_OPTS(SR__OPT_ROW)};
#undef SR__OPT_ROW

typedef struct sr_pipeline_field_s {
  size_t off;
  sr_pipeline_conf_kind_t kind;
} sr_pipeline_field_t;

#define SR__OPT_FIELD(field, kind, name, type, def, min, max, help, flag)                          \
  {offsetof(sr_pipeline_conf_t, field), kind},
static const sr_pipeline_field_t sr_pipeline_fields[] = {SR_PIPELINE_OPTS(SR__OPT_FIELD)};
#undef SR__OPT_FIELD

/* Each row's field has the C type its kind reads and writes. */
#define SR__OPT_TYPECHECK(field, kind, name, type, def, min, max, help, flag)                      \
  _Static_assert(_Generic(((sr_pipeline_conf_t *)0)->field, SR_PF_CTYPE_##kind : 1, default : 0),  \
                 "field of option " name " does not have the type of " #kind);
SR_PIPELINE_OPTS(SR__OPT_TYPECHECK)
#undef SR__OPT_TYPECHECK

#define SR_PIPE_N_OPTS ((int)SR_ARRAY_SIZE(sr_pipeline_opts))

const sr_conf_opt_t *sr_pipeline_conf_table(int *n) {
  *n = SR_PIPE_N_OPTS;
  return sr_pipeline_opts;
}

/* Sets row i's field of c from text (already checked by the conf module
 * against the row's type and range, or a row's own default). */
/* Index of text in names (case-insensitive), or -1. */
static int sr_pipeline_conf_enum(const char *const *names, const char *text) {
  for (int i = 0; text && names[i]; i++)
    if (!strcasecmp(names[i], text)) return i;
  return -1;
}

static sr_err_t sr_pipeline_conf_enum_err(const char *const *names, int i, const char *text,
                                          char *errstr, size_t errsz) {
  char all[128] = "";
  for (int j = 0; names[j]; j++) {
    size_t len = strlen(all);
    snprintf(all + len, sizeof(all) - len, "%s%s", j ? " or " : "", names[j]);
  }
  return sr_seterr(errstr, errsz, SR_ERR_CONF, "%s: '%s' is not %s", sr_pipeline_opts[i].name,
                   text ? text : "", all);
}

static sr_err_t sr_pipeline_conf_set(sr_pipeline_conf_t *c, int i, const char *text, char *errstr,
                                     size_t errsz) {
  void *f = (char *)c + sr_pipeline_fields[i].off;
  const long long v = text ? strtoll(text, NULL, 10) : 0;
  switch (sr_pipeline_fields[i].kind) {
  case SR_PF_STR: *(const char **)f = text; break;
  case SR_PF_INT: *(int *)f = (int)v; break;
  case SR_PF_I32: *(int32_t *)f = (int32_t)v; break;
  case SR_PF_I64: *(int64_t *)f = (int64_t)v; break;
  case SR_PF_U32: *(uint32_t *)f = (uint32_t)v; break;
  case SR_PF_BOOL: *(int *)f = text && (!strcasecmp(text, "true") || !strcmp(text, "1")); break;
  case SR_PF_TYPES: {
    char es[256];
    if (sr_seen_parse_types(text, (uint32_t *)f, es, sizeof(es)) != SR_OK)
      return sr_seterr(errstr, errsz, SR_ERR_CONF, "%s: %s", sr_pipeline_opts[i].name, es);
    break;
  }
  case SR_PF_DELIVERY: {
    int e = sr_pipeline_conf_enum(sr_pipeline_delivery_names, text);
    if (e < 0) return sr_pipeline_conf_enum_err(sr_pipeline_delivery_names, i, text, errstr, errsz);
    *(sr_delivery_t *)f = (sr_delivery_t)e;
    break;
  }
  case SR_PF_TXN_SCOPE: {
    int e = sr_pipeline_conf_enum(sr_pipeline_txn_scope_names, text);
    if (e < 0)
      return sr_pipeline_conf_enum_err(sr_pipeline_txn_scope_names, i, text, errstr, errsz);
    *(sr_txn_scope_t *)f = (sr_txn_scope_t)e;
    break;
  }
  }
  return SR_OK;
}

/* Row i's numeric field of c; *ok = 0 for rows without a range. */
static long long sr_pipeline_conf_get(const sr_pipeline_conf_t *c, int i, int *ok) {
  const void *f = (const char *)c + sr_pipeline_fields[i].off;
  *ok = 1;
  switch (sr_pipeline_fields[i].kind) {
  case SR_PF_INT: return *(const int *)f;
  case SR_PF_I32: return *(const int32_t *)f;
  case SR_PF_I64: return *(const int64_t *)f;
  case SR_PF_U32: return *(const uint32_t *)f;
  default: *ok = 0; return 0;
  }
}

void sr_pipeline_conf_defaults(sr_pipeline_conf_t *c) {
  memset(c, 0, sizeof(*c));
  for (int i = 0; i < SR_PIPE_N_OPTS; i++)
    if (sr_pipeline_conf_set(c, i, sr_pipeline_opts[i].def, NULL, 0) != SR_OK) {
      /* only a bad default text in the table gets here */
      sr_log_error("pipeline", "BUG: default of %s does not parse", sr_pipeline_opts[i].name);
      abort();
    }
}

sr_err_t sr_pipeline_conf_from(sr_pipeline_conf_t *c, const sr_conf_t *conf, char *errstr,
                               size_t errsz) {
  sr_pipeline_conf_defaults(c);
  for (int i = 0; i < SR_PIPE_N_OPTS; i++) {
    sr_err_t e =
        sr_pipeline_conf_set(c, i, sr_conf_str(conf, sr_pipeline_opts[i].name), errstr, errsz);
    if (e != SR_OK) return e;
  }
  c->kafka = sr_conf_kafka(conf, SR_CONF_KAFKA_BOTH, &c->n_kafka);
  c->kafka_consumer = sr_conf_kafka(conf, SR_CONF_KAFKA_CONSUMER, &c->n_kafka_consumer);
  c->kafka_producer = sr_conf_kafka(conf, SR_CONF_KAFKA_PRODUCER, &c->n_kafka_producer);
  return SR_OK;
}

/* The value of key in the first list that sets it last: the client's own
 * list wins over the shared one (as the clients apply them); NULL when unset. */
static const char *sr_pipeline_conf_kafka_get(const sr_kv_t *both, int nb, const sr_kv_t *own,
                                              int no, const char *key) {
  const char *v = NULL;
  for (int i = 0; both && i < nb; i++)
    if (both[i].key && !strcmp(both[i].key, key)) v = both[i].value;
  for (int i = 0; own && i < no; i++)
    if (own[i].key && !strcmp(own[i].key, key)) v = own[i].value;
  return v;
}

/* exactly_once: the kafka.* properties that would quietly break it. */
static sr_err_t sr_pipeline_conf_check_eos(const sr_pipeline_conf_t *c, char *errstr,
                                           size_t errsz) {
  const char *v = sr_pipeline_conf_kafka_get(c->kafka, c->n_kafka, c->kafka_consumer,
                                             c->n_kafka_consumer, "isolation.level");
  if (v && strcmp(v, "read_committed"))
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "delivery.guarantee=exactly_once reads with isolation.level=read_committed: "
                     "drop kafka isolation.level=%s",
                     v);
  v = sr_pipeline_conf_kafka_get(c->kafka, c->n_kafka, c->kafka_consumer, c->n_kafka_consumer,
                                 "enable.auto.commit");
  if (v && strcasecmp(v, "false") && strcmp(v, "0"))
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "delivery.guarantee=exactly_once commits offsets in the transaction: drop "
                     "kafka enable.auto.commit=%s",
                     v);
  v = sr_pipeline_conf_kafka_get(c->kafka, c->n_kafka, c->kafka_producer, c->n_kafka_producer,
                                 "transactional.id");
  if (v)
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "set the transactional id with the option transactional.id, not with "
                     "kafka transactional.id=%s",
                     v);
  if (c->transactional_id && !*c->transactional_id)
    return sr_seterr(errstr, errsz, SR_ERR_CONF,
                     "transactional.id: empty (unset it for <group>-<client.id>)");
  return SR_OK;
}

sr_err_t sr_pipeline_conf_check(const sr_pipeline_conf_t *c, char *errstr, size_t errsz) {
  if (!c->brokers || !*c->brokers)
    return sr_seterr(errstr, errsz, SR_ERR_CONF, "no brokers configured");
  if ((unsigned)c->delivery > SR_DELIVERY_EXACTLY_ONCE)
    return sr_seterr(errstr, errsz, SR_ERR_CONF, "delivery.guarantee: %d is not a guarantee",
                     (int)c->delivery);
  if ((unsigned)c->txn_scope > SR_TXN_SCOPE_BATCH)
    return sr_seterr(errstr, errsz, SR_ERR_CONF, "transaction.scope: %d is not a scope",
                     (int)c->txn_scope);
  if (c->delivery == SR_DELIVERY_EXACTLY_ONCE) {
    sr_err_t e = sr_pipeline_conf_check_eos(c, errstr, errsz);
    if (e != SR_OK) return e;
  }
  for (int i = 0; i < SR_PIPE_N_OPTS; i++) {
    const sr_conf_opt_t *o = &sr_pipeline_opts[i];
    int ranged;
    const long long v = sr_pipeline_conf_get(c, i, &ranged);
    if (ranged && (v < o->min || v > o->max))
      return sr_seterr(errstr, errsz, SR_ERR_CONF, "%s: %lld is out of range %lld..%lld", o->name,
                       v, o->min, o->max);
  }
  return sr_seen_conf_check(&c->seen, errstr, errsz);
}
