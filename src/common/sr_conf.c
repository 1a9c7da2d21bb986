/*
 * The typed option table and its values. Values are stored as text (the
 * table says how to read them) and validated when set, so a bad value fails
 * at startup with the key and the reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "streamrec/conf.h"

struct sr_conf_s {
  const sr_conf_opt_t *table;
  int n;
  char **values; /* per table entry, owned; NULL = unset */
  /* kafka.* properties: [0] both clients, [1] consumer only, [2] producer only */
  sr_kv_t *kafka[3];
  char **origin[3]; /* parallel to kafka[]: where each was set, NULL = unknown */
  int n_kafka[3], cap_kafka[3];
};

sr_conf_t *sr_conf_new(const sr_conf_opt_t *table, int n) {
  sr_conf_t *c = sr_calloc(1, sizeof(*c));
  c->table = table;
  c->n = n;
  c->values = sr_calloc((size_t)n, sizeof(char *));
  for (int i = 0; i < n; i++)
    if (table[i].def) c->values[i] = sr_strdup(table[i].def);
  return c;
}

void sr_conf_destroy(sr_conf_t *c) {
  if (!c) return;
  for (int i = 0; i < c->n; i++)
    sr_free(c->values[i]);
  for (int w = 0; w < 3; w++) {
    for (int i = 0; i < c->n_kafka[w]; i++) {
      sr_free((char *)c->kafka[w][i].key);
      sr_free((char *)c->kafka[w][i].value);
      sr_free(c->origin[w][i]);
    }
    sr_free(c->kafka[w]);
    sr_free(c->origin[w]);
  }
  sr_free(c->values);
  sr_free(c);
}

static int sr_conf_index(const sr_conf_t *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->table[i].name, name)) return i;
  return -1;
}

sr_err_t sr_conf_set(sr_conf_t *c, const char *key, const char *value, char *errstr, size_t errsz) {
  return sr_conf_set_from(c, key, value, NULL, errstr, errsz);
}

sr_err_t sr_conf_set_from(sr_conf_t *c, const char *key, const char *value, const char *origin,
                          char *errstr, size_t errsz) {
  if (!strncmp(key, "kafka.", 6)) {
    int w = 0;
    const char *prop = key + 6;
    if (!strncmp(prop, "consumer.", 9))
      w = 1, prop += 9;
    else if (!strncmp(prop, "producer.", 9))
      w = 2, prop += 9;
    if (!*prop)
      return sr_seterr(errstr, errsz, SR_ERR_CONF, "empty kafka property name in '%s'", key);
    for (int i = 0; i < c->n_kafka[w]; i++)
      if (!strcmp(c->kafka[w][i].key, prop)) {
        sr_free((char *)c->kafka[w][i].value);
        c->kafka[w][i].value = sr_strdup(value);
        sr_free(c->origin[w][i]);
        c->origin[w][i] = origin ? sr_strdup(origin) : NULL;
        return SR_OK;
      }
    if (c->n_kafka[w] == c->cap_kafka[w]) {
      c->cap_kafka[w] = c->cap_kafka[w] ? c->cap_kafka[w] * 2 : 8;
      c->kafka[w] = sr_realloc(c->kafka[w], (size_t)c->cap_kafka[w] * sizeof(sr_kv_t));
      c->origin[w] = sr_realloc(c->origin[w], (size_t)c->cap_kafka[w] * sizeof(char *));
    }
    c->kafka[w][c->n_kafka[w]].key = sr_strdup(prop);
    c->kafka[w][c->n_kafka[w]].value = sr_strdup(value);
    c->origin[w][c->n_kafka[w]] = origin ? sr_strdup(origin) : NULL;
    c->n_kafka[w]++;
    return SR_OK;
  }
  int i = sr_conf_index(c, key);
  if (i < 0) return sr_seterr(errstr, errsz, SR_ERR_CONF, "unknown configuration key '%s'", key);
  const sr_conf_opt_t *o = &c->table[i];
  if (o->type == SR_CONF_INT) {
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end)
      return sr_seterr(errstr, errsz, SR_ERR_CONF, "%s: '%s' is not an integer", key, value);
    if (v < o->min || v > o->max)
      return sr_seterr(errstr, errsz, SR_ERR_CONF, "%s: %lld is out of range %lld..%lld", key, v,
                       o->min, o->max);
  } else if (o->type == SR_CONF_BOOL) {
    if (strcasecmp(value, "true") && strcasecmp(value, "false") && strcmp(value, "1") &&
        strcmp(value, "0"))
      return sr_seterr(errstr, errsz, SR_ERR_CONF, "%s: '%s' is not true/false", key, value);
  }
  sr_free(c->values[i]);
  c->values[i] = sr_strdup(value);
  return SR_OK;
}

static char *sr_strip(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
    *--e = 0;
  return s;
}

sr_err_t sr_conf_load_file(sr_conf_t *c, const char *path, char *errstr, size_t errsz) {
  FILE *f = fopen(path, "r");
  if (!f) return sr_seterr(errstr, errsz, SR_ERR_CONF, "%s: %s", path, strerror(errno));
  char line[4096], es[512], origin[1100];
  int lineno = 0;
  sr_err_t err = SR_OK;
  while (fgets(line, sizeof(line), f)) {
    lineno++;
    char *s = sr_strip(line);
    if (!*s || *s == '#') continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      err = sr_seterr(errstr, errsz, SR_ERR_CONF, "%s:%d: expected 'key = value'", path, lineno);
      break;
    }
    *eq = 0;
    snprintf(origin, sizeof(origin), "%.1024s:%d", path, lineno);
    if (sr_conf_set_from(c, sr_strip(s), sr_strip(eq + 1), origin, es, sizeof(es)) != SR_OK) {
      err = sr_seterr(errstr, errsz, SR_ERR_CONF, "%s:%d: %s", path, lineno, es);
      break;
    }
  }
  fclose(f);
  return err;
}

const char *sr_conf_str(const sr_conf_t *c, const char *name) {
  int i = sr_conf_index(c, name);
  if (i < 0) {
    sr_log_error("conf", "BUG: no option '%s'", name);
    abort();
  }
  return c->values[i];
}

long long sr_conf_int(const sr_conf_t *c, const char *name) {
  const char *v = sr_conf_str(c, name);
  if (!v) return 0;
  if (!strcasecmp(v, "true")) return 1;
  if (!strcasecmp(v, "false")) return 0;
  return strtoll(v, NULL, 10);
}

const sr_kv_t *sr_conf_kafka(const sr_conf_t *c, sr_conf_client_t which, int *n) {
  *n = c->n_kafka[which];
  return c->kafka[which];
}

const char *sr_conf_kafka_origin(const sr_conf_t *c, sr_conf_client_t which, int i) {
  if (i < 0 || i >= c->n_kafka[which]) return NULL;
  return c->origin[which][i];
}

const sr_conf_opt_t *sr_conf_find_flag(const sr_conf_t *c, const char *flag) {
  for (int i = 0; i < c->n; i++)
    if (c->table[i].flag && !strcmp(c->table[i].flag, flag)) return &c->table[i];
  return NULL;
}

static int sr_conf_secret(const char *k) {
  return strcasestr(k, "password") || strcasestr(k, "secret") || strcasestr(k, "sasl") ||
         strcasestr(k, "key");
}

void sr_conf_dump(const sr_conf_t *c, FILE *f) {
  for (int i = 0; i < c->n; i++)
    if (c->values[i]) fprintf(f, "%s=%s\n", c->table[i].name, c->values[i]);
  static const char *const pfx[3] = {"kafka.", "kafka.consumer.", "kafka.producer."};
  for (int w = 0; w < 3; w++)
    for (int i = 0; i < c->n_kafka[w]; i++)
      fprintf(f, "%s%s=%s\n", pfx[w], c->kafka[w][i].key,
              sr_conf_secret(c->kafka[w][i].key) ? "[redacted]" : c->kafka[w][i].value);
}

static const char *sr_conf_type_name(sr_conf_type_t t) {
  return t == SR_CONF_INT ? "integer" : t == SR_CONF_BOOL ? "boolean" : "string";
}

void sr_conf_markdown(const sr_conf_opt_t *t, int n, const char *title, FILE *f) {
  fprintf(f,
          "## %s\n\n| key | flag | type | default | range | description |\n"
          "|---|---|---|---|---|---|\n",
          title);
  for (int i = 0; i < n; i++) {
    char range[64] = "";
    if (t[i].type == SR_CONF_INT)
      snprintf(range, sizeof(range), "%lld .. %lld", t[i].min, t[i].max);
    fprintf(f, "| `%s` | %s%s%s | %s | %s%s%s | %s | %s |\n", t[i].name, t[i].flag ? "`--" : "",
            t[i].flag ? t[i].flag : "", t[i].flag ? "`" : "", sr_conf_type_name(t[i].type),
            t[i].def ? "`" : "", t[i].def ? t[i].def : "(unset)", t[i].def ? "`" : "", range,
            t[i].help);
  }
  fprintf(f, "\n");
}

void sr_conf_usage(const sr_conf_opt_t *t, int n, FILE *f) {
  for (int i = 0; i < n; i++) {
    if (!t[i].flag) continue;
    char left[64];
    snprintf(left, sizeof(left), "--%s %s", t[i].flag,
             t[i].type == SR_CONF_INT    ? "N"
             : t[i].type == SR_CONF_BOOL ? "BOOL"
                                         : "S");
    fprintf(f, "  %-28s %s%s%s%s\n", left, t[i].help, t[i].def ? " (default " : "",
            t[i].def ? t[i].def : "", t[i].def ? ")" : "");
  }
}

/* ---- -X key=value ---- */

sr_err_t sr_kv_list_add_arg(sr_kv_list_t *l, const char *arg, char *errstr, size_t errsz) {
  const char *eq = arg ? strchr(arg, '=') : NULL;
  if (!eq || eq == arg)
    return sr_seterr(errstr, errsz, SR_ERR_CONF, "-X expects key=value, got '%s'", arg ? arg : "");
  char *key = sr_strndup(arg, (size_t)(eq - arg));
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->kv[i].key, key)) {
      sr_free(key);
      sr_free((char *)l->kv[i].value);
      l->kv[i].value = sr_strdup(eq + 1);
      return SR_OK;
    }
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 8;
    l->kv = sr_realloc(l->kv, (size_t)l->cap * sizeof(*l->kv));
  }
  l->kv[l->n].key = key;
  l->kv[l->n].value = sr_strdup(eq + 1);
  l->n++;
  return SR_OK;
}

void sr_kv_list_free(sr_kv_list_t *l) {
  if (!l) return;
  for (int i = 0; i < l->n; i++) {
    sr_free((char *)l->kv[i].key);
    sr_free((char *)l->kv[i].value);
  }
  sr_free(l->kv);
  memset(l, 0, sizeof(*l));
}
