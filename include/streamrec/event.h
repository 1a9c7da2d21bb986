/*
 * The two message contracts as plain C structs (schemas/ (the .avsc files) are the
 * source of truth). String fields are borrowed slices: who owns the bytes is
 * written at each function that fills one of these.
 */
#ifndef STREAMREC_EVENT_H
#define STREAMREC_EVENT_H

#include <stdint.h>
#include "streamrec/common.h"

/* Order and names match enum io.streamrec.EventType. */
#define SR_EVENT_TYPE_MAP(X)                                                                       \
  X(VIEW) X(CLICK) X(CART) X(PURCHASE) X(RATE) X(IMPRESSION) X(SKIP) X(FORGET)

typedef enum sr_event_type_e {
#define SR__EVT(n) SR_EV_##n,
  SR_EVENT_TYPE_MAP(SR__EVT)
#undef SR__EVT
      SR_EV__CNT
} sr_event_type_t;

/* "VIEW" ... "FORGET"; "?" for out-of-range. Static storage. */
const char *sr_event_type_name(sr_event_type_t t);
/* Case-insensitive parse; returns -1 when unknown. */
int sr_event_type_parse(const char *s, size_t len);

typedef struct sr_event_s {
  sr_str_t event_id;
  sr_str_t user_id;
  sr_str_t item_id;
  sr_event_type_t type;
  float value;       /* rating or weight, 0 when none */
  int64_t ts_ms;     /* event time, ms since epoch */
  sr_str_t scenario; /* "default" when none */
} sr_event_t;

typedef struct sr_rec_item_s {
  sr_str_t item_id;
  float score;
  float propensity;
  int explore; /* boolean */
} sr_rec_item_t;

typedef struct sr_rec_s {
  sr_str_t user_id;
  sr_str_t scenario;
  const sr_rec_item_t *items;
  int n_items;
  sr_str_t model_version;
  sr_str_t source_event_id;
  int32_t source_partition;
  int64_t source_offset;
  int64_t event_time;  /* ms */
  int64_t produced_at; /* ms */
} sr_rec_t;

#endif
