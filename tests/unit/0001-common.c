/* Units of common/: error table (retriable column), log level, CSV
 * contract, interning, data set, config. */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>

#include "streamrec/conf.h"
#include "streamrec/dataset.h"
#include "test.h"

TEST(err_table) {
  T_EQ_STR(sr_err2name(SR_OK), "OK");
  T_EQ_STR(sr_err2name(SR_ERR_BAD_AVRO), "BAD_AVRO");
  T_EQ_STR(sr_err2str(SR_ERR_CHECKSUM), "checksum mismatch");
  T_EQ_STR(sr_err2name((sr_err_t)-999), "UNKNOWN");
  T_EQ_INT(sr_err_is_retriable(SR_ERR_QUEUE_FULL), 1);
  T_EQ_INT(sr_err_is_retriable(SR_ERR_BAD_AVRO), 0);
}

/* The retriable column says what the callers do: producer back-pressure
 * and timeouts are retried; a failed delivery report (after librdkafka's
 * own retries) stops the pipeline, a full partition state dead-letters the
 * event, so neither is retriable. Every code of the one table has its own
 * name and message, and a code outside it is not retriable. */
TEST(err_retriable_matches_the_callers) {
  T_EQ_INT(sr_err_is_retriable(SR_ERR_QUEUE_FULL), 1);
  T_EQ_INT(sr_err_is_retriable(SR_ERR_TIMEOUT), 1);
  T_EQ_INT(sr_err_is_retriable(SR_ERR_DELIVERY), 0);
  T_EQ_INT(sr_err_is_retriable(SR_ERR_STATE_FULL), 0);
  T_EQ_INT(sr_err_is_retriable(SR_ERR_TOO_LARGE), 0);
  T_EQ_INT(sr_err_is_retriable(SR_ERR_KAFKA), 0);
  T_EQ_INT(sr_err_is_retriable(SR_OK), 0);
  T_EQ_INT(sr_err_is_retriable((sr_err_t)-999), 0);
  int n = 0, n_retriable = 0;
#define T_ERR_ROW(name, code, retriable, msg)                                                      \
  do {                                                                                             \
    T_EQ_STR(sr_err2name(SR_ERR_##name), #name);                                                   \
    T_EQ_STR(sr_err2str(SR_ERR_##name), msg);                                                      \
    T_EQ_INT(sr_err_is_retriable(SR_ERR_##name), retriable);                                       \
    n++;                                                                                           \
    n_retriable += retriable;                                                                      \
  } while (0);
  SR_ERR_MAP(T_ERR_ROW)
#undef T_ERR_ROW
  T_ASSERT(n > 20);
  /* NOMEM, IO, TIMEOUT, QUEUE_FULL */
  T_EQ_INT(n_retriable, 4);
}

/* The log level: SR_LOG_LEVEL read once by whichever thread logs first
 * (librdkafka's threads log through our callback), every thread seeing the
 * same level, and sr_log_set_level() winning over the environment. Each
 * case runs in a fresh child, where nothing has logged yet. */
static void *t_log_level_reader(void *arg) {
  *(int *)arg = (int)sr_log_get_level();
  sr_log_debug("test", "thread logging at level %d", *(int *)arg); /* filtered */
  return NULL;
}
static int t_log_level_child(int set_first) {
  if (setenv("SR_LOG_LEVEL", "warn", 1) != 0) return 10;
  if (set_first) sr_log_set_level(SR_LOG_ERROR);
  enum { N = 8 };
  pthread_t th[N];
  int got[N];
  for (int i = 0; i < N; i++)
    if (pthread_create(&th[i], NULL, t_log_level_reader, &got[i]) != 0) return 11;
  for (int i = 0; i < N; i++)
    pthread_join(th[i], NULL);
  const int want = set_first ? SR_LOG_ERROR : SR_LOG_WARN;
  for (int i = 0; i < N; i++)
    if (got[i] != want) return 20 + i;
  if ((int)sr_log_get_level() != want) return 30;
  setenv("SR_LOG_LEVEL", "debug", 1); /* read once: no effect now */
  if ((int)sr_log_get_level() != want) return 31;
  sr_log_set_level(SR_LOG_DEBUG);
  if (sr_log_get_level() != SR_LOG_DEBUG) return 32;
  return 0;
}
TEST(log_level_once_for_all_threads) {
  for (int set_first = 0; set_first < 2; set_first++) {
    fflush(NULL);
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) _exit(t_log_level_child(set_first));
    int st = 0;
    T_ASSERT(waitpid(pid, &st, 0) == pid);
    T_ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "set_first %d: child exit %d", set_first,
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  }
}

TEST(csv_rows) {
  sr_csv_row_t r;
  char es[128];
  const char *ml = "1,31,2.5,1260759144";
  T_EQ_INT(sr_csv_parse(ml, strlen(ml), &r, es, sizeof(es)), SR_OK);
  T_EQ_SLICE(r.user, "1");
  T_EQ_SLICE(r.item, "31");
  T_NEAR(r.value, 2.5, 0);
  T_EQ_INT(r.ts_ms, 1260759144000LL); /* seconds -> ms */
  T_EQ_INT(r.type, -1);
  const char *ms = "alice, book-7 ,0,1700000000123,purchase\r";
  T_EQ_INT(sr_csv_parse(ms, strlen(ms), &r, es, sizeof(es)), SR_OK);
  T_EQ_SLICE(r.user, "alice");
  T_EQ_SLICE(r.item, "book-7");
  T_EQ_INT(r.ts_ms, 1700000000123LL); /* already ms */
  T_EQ_INT(r.type, SR_EV_PURCHASE);
  const char *hdr = "userId,movieId,rating,timestamp";
  T_EQ_INT(sr_csv_parse(hdr, strlen(hdr), &r, es, sizeof(es)), SR_ERR_FORMAT);
  T_ASSERT(strstr(es, "not a number") != NULL);
  const char *few = "1,2,3";
  T_EQ_INT(sr_csv_parse(few, strlen(few), &r, es, sizeof(es)), SR_ERR_FORMAT);
  const char *badtype = "1,2,3,4,JUMP";
  T_EQ_INT(sr_csv_parse(badtype, strlen(badtype), &r, es, sizeof(es)), SR_ERR_FORMAT);
  T_ASSERT(strstr(es, "JUMP") != NULL);
  T_EQ_INT(sr_csv_parse("", 0, &r, es, sizeof(es)), SR_ERR_NOT_FOUND);
}

TEST(strmap_interning) {
  sr_strmap_t *m = sr_strmap_new(4);
  char k[32];
  for (int i = 0; i < 10000; i++) {
    snprintf(k, sizeof(k), "key-%d", i);
    int ins = 0;
    T_EQ_INT(sr_strmap_intern(m, k, strlen(k), &ins), i);
    T_EQ_INT(ins, 1);
  }
  for (int i = 0; i < 10000; i += 37) {
    snprintf(k, sizeof(k), "key-%d", i);
    T_EQ_INT(sr_strmap_find(m, k, strlen(k)), i);
    T_EQ_SLICE(sr_strmap_key(m, i), k);
  }
  T_EQ_INT(sr_strmap_find(m, "nope", 4), -1);
  T_EQ_INT(sr_strmap_count(m), 10000);
  sr_strmap_destroy(m);
}

TEST(dataset_order_and_filter) {
  const char *path = t_tmp_path("ds.csv");
  FILE *f = fopen(path, "w");
  T_ASSERT(f);
  /* header, users a (4 events, out of time order), b (2), one bad line */
  fprintf(f, "userId,movieId,rating,timestamp\n"
             "a,x,1,30\n"
             "a,y,1,10\n"
             "b,x,1,5\n"
             "a,z,1,20\n"
             "not,a,number,line\n"
             "a,w,1,20\n"
             "b,y,1,6\n");
  fclose(f);
  sr_dataset_t *ds = NULL;
  char es[128];
  T_EQ_INT(sr_dataset_load_csv(path, &ds, es, sizeof(es)), SR_OK);
  T_EQ_INT(ds->n_events, 6);
  T_EQ_INT(ds->n_users, 2);
  T_EQ_INT(ds->n_items, 4);
  T_EQ_INT(ds->bad_lines, 1);
  int32_t a = sr_strmap_find(ds->users, "a", 1);
  T_EQ_INT(ds->user_off[a + 1] - ds->user_off[a], 4);
  /* a's events by time; the tie at 20 keeps file order (z before w) */
  const char *want[] = {"y", "z", "w", "x"};
  for (int i = 0; i < 4; i++)
    T_EQ_SLICE(sr_strmap_key(ds->items, ds->ev_item[ds->user_off[a] + i]), want[i]);
  /* min-count 2: items with < 2 interactions (z, w) and then nothing else */
  sr_dataset_t *fd = sr_dataset_filter_min_count(ds, 2);
  T_EQ_INT(fd->n_events, 4); /* a:x a:y b:x b:y */
  T_EQ_INT(fd->n_items, 2);
  T_EQ_INT(fd->n_users, 2);
  sr_dataset_destroy(fd);
  sr_dataset_destroy(ds);
  unlink(path);
}

static const sr_conf_opt_t opts[] = {
    {"k", SR_CONF_INT, "10", 1, 100, "items", "k"},
    {"name", SR_CONF_STR, NULL, 0, 0, "a name", "name"},
    {"flag", SR_CONF_BOOL, "false", 0, 0, "a flag", NULL},
};

TEST(conf_table) {
  char es[256];
  sr_conf_t *c = sr_conf_new(opts, 3);
  T_EQ_INT(sr_conf_int(c, "k"), 10);
  T_ASSERT(sr_conf_str(c, "name") == NULL);
  T_EQ_INT(sr_conf_set(c, "k", "20", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_int(c, "k"), 20);
  T_EQ_INT(sr_conf_set(c, "k", "1000", es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT(strstr(es, "out of range") != NULL);
  T_EQ_INT(sr_conf_set(c, "k", "ten", es, sizeof(es)), SR_ERR_CONF);
  T_EQ_INT(sr_conf_set(c, "nope", "1", es, sizeof(es)), SR_ERR_CONF);
  T_ASSERT(strstr(es, "unknown configuration key 'nope'") != NULL);
  T_EQ_INT(sr_conf_set(c, "kafka.sasl.password", "hunter2", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(c, "kafka.linger.ms", "5", es, sizeof(es)), SR_OK);
  T_EQ_INT(sr_conf_set(c, "kafka.consumer.session.timeout.ms", "6000", es, sizeof(es)), SR_OK);
  int n;
  const sr_kv_t *kv = sr_conf_kafka(c, SR_CONF_KAFKA_BOTH, &n);
  T_EQ_INT(n, 2);
  T_EQ_STR(kv[1].key, "linger.ms");
  T_EQ_STR(kv[1].value, "5");
  kv = sr_conf_kafka(c, SR_CONF_KAFKA_CONSUMER, &n);
  T_EQ_INT(n, 1);
  T_EQ_STR(kv[0].key, "session.timeout.ms");
  sr_conf_kafka(c, SR_CONF_KAFKA_PRODUCER, &n);
  T_EQ_INT(n, 0);
  T_ASSERT(sr_conf_find_flag(c, "name") == &opts[1]);
  /* effective config redacts secrets */
  char *buf = NULL;
  size_t len = 0;
  FILE *mf = open_memstream(&buf, &len);
  sr_conf_dump(c, mf);
  fclose(mf);
  T_ASSERT(strstr(buf, "hunter2") == NULL);
  T_ASSERT(strstr(buf, "kafka.sasl.password=[redacted]") != NULL);
  free(buf);
  /* config file errors name file:line */
  const char *path = t_tmp_path("bad.conf");
  FILE *f = fopen(path, "w");
  fprintf(f, "# comment\nk = 5\n\nflag = maybe\n");
  fclose(f);
  T_EQ_INT(sr_conf_load_file(c, path, es, sizeof(es)), SR_ERR_CONF);
  char want[512];
  snprintf(want, sizeof(want), "%s:4: flag", path);
  T_ASSERT_MSG(strstr(es, want) != NULL, "got '%s'", es);
  T_EQ_INT(sr_conf_int(c, "k"), 5);
  unlink(path);
  sr_conf_destroy(c);
}

TEST_MAIN(RUN(err_table); RUN(err_retriable_matches_the_callers);
          RUN(log_level_once_for_all_threads); RUN(csv_rows); RUN(strmap_interning);
          RUN(dataset_order_and_filter); RUN(conf_table))
