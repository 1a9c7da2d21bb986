/*
 * libFuzzer target for sr_codec_decode_rec() on untrusted bytes.
 *
 * Same oracle as fuzz_decode_event.c: documented error codes with a reason
 * on rejection; on acceptance the contract holds, and re-encode + decode on
 * a second codec gives the same fields (floats bit for bit) and re-encoding
 * that gives the same bytes. abort() on any difference.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamrec/codec.h"

static sr_codec_t *dec, *chk;
static sr_buf_t enc1, enc2;

/* Free everything before LeakSanitizer's exit-time check, so whatever it
 * still finds is a real leak. (Avro C lays generic record fields out
 * unaligned, so live Avro strings are only found with LSAN_OPTIONS=
 * use_unaligned=1, which run_fuzz.sh sets.) */
static void cleanup(void) {
  sr_codec_destroy(dec);
  sr_codec_destroy(chk);
  sr_buf_free(&enc1);
  sr_buf_free(&enc2);
}

static void must(int ok, const char *what, const char *detail) {
  if (ok) return;
  fprintf(stderr, "fuzz_decode_rec: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char errstr[512] = "";
  sr_rec_t a, b;
  if (!dec) {
    dec =
        sr_codec_new(SR_DEFAULT_EVENT_SCHEMA_ID, SR_DEFAULT_REC_SCHEMA_ID, errstr, sizeof(errstr));
    chk =
        sr_codec_new(SR_DEFAULT_EVENT_SCHEMA_ID, SR_DEFAULT_REC_SCHEMA_ID, errstr, sizeof(errstr));
    must(dec && chk, "sr_codec_new", errstr);
    sr_buf_init(&enc1);
    sr_buf_init(&enc2);
    atexit(cleanup);
  }
  sr_err_t err = sr_codec_decode_rec(dec, data, size, &a, errstr, sizeof(errstr));
  if (err != SR_OK) {
    must(err == SR_ERR_BAD_FRAMING || err == SR_ERR_UNKNOWN_SCHEMA || err == SR_ERR_BAD_AVRO ||
             err == SR_ERR_MISSING_FIELD,
         "undocumented error code", sr_err2name(err));
    must(errstr[0] != 0, "error without a reason", sr_err2name(err));
    return 0;
  }
  must(a.user_id.len && a.scenario.len, "accepted an empty required field", NULL);
  must(a.n_items >= 0 && (size_t)a.n_items * 10 <= size, "item count beyond the input", NULL);
  must(a.n_items == 0 || a.items, "items NULL", NULL);
  for (int i = 0; i < a.n_items; i++) {
    must(a.items[i].item_id.len > 0, "accepted an empty item_id", NULL);
    must(a.items[i].explore == 0 || a.items[i].explore == 1, "explore not 0/1", NULL);
  }

  sr_buf_reset(&enc1);
  must(sr_codec_encode_rec(dec, &a, &enc1) == SR_OK, "re-encode failed", NULL);
  err = sr_codec_decode_rec(chk, enc1.data, enc1.len, &b, errstr, sizeof(errstr));
  must(err == SR_OK, "decoding our own encoding failed", errstr);
  must(sr_str_eq(a.user_id, b.user_id), "user_id differs after round trip", NULL);
  must(sr_str_eq(a.scenario, b.scenario), "scenario differs after round trip", NULL);
  must(sr_str_eq(a.model_version, b.model_version), "model_version differs", NULL);
  must(sr_str_eq(a.source_event_id, b.source_event_id), "source_event_id differs", NULL);
  must(a.source_partition == b.source_partition && a.source_offset == b.source_offset &&
           a.event_time == b.event_time && a.produced_at == b.produced_at,
       "int/long fields differ after round trip", NULL);
  must(a.n_items == b.n_items, "item count differs after round trip", NULL);
  for (int i = 0; i < a.n_items; i++) {
    const sr_rec_item_t *x = &a.items[i], *y = &b.items[i];
    must(sr_str_eq(x->item_id, y->item_id), "item_id differs after round trip", NULL);
    must(!memcmp(&x->score, &y->score, sizeof(x->score)) &&
             !memcmp(&x->propensity, &y->propensity, sizeof(x->propensity)),
         "item float bits differ after round trip", NULL);
    must(x->explore == y->explore, "explore differs after round trip", NULL);
  }

  sr_buf_reset(&enc2);
  must(sr_codec_encode_rec(chk, &b, &enc2) == SR_OK, "second encode failed", NULL);
  must(enc1.len == enc2.len && !memcmp(enc1.data, enc2.data, enc1.len),
       "encoding is not a fixed point", NULL);
  return 0;
}
