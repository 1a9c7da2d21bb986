/*
 * libFuzzer target for sr_codec_decode_event() on untrusted bytes.
 *
 * Beyond "no crash, no sanitizer report": a rejected input must carry one of
 * the documented error codes and a reason; an accepted one must honour the
 * decode contract, re-encode, and decode again (on a second codec, so the
 * first decode's borrowed strings stay valid) to the same fields, bit for
 * bit; encoding that result again must give the same bytes. abort() on any
 * difference so libFuzzer records the input.
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
  fprintf(stderr, "fuzz_decode_event: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char errstr[512] = "";
  sr_event_t a, b;
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
  sr_err_t err = sr_codec_decode_event(dec, data, size, &a, errstr, sizeof(errstr));
  if (err != SR_OK) {
    must(err == SR_ERR_BAD_FRAMING || err == SR_ERR_UNKNOWN_SCHEMA || err == SR_ERR_BAD_AVRO ||
             err == SR_ERR_MISSING_FIELD,
         "undocumented error code", sr_err2name(err));
    must(errstr[0] != 0, "error without a reason", sr_err2name(err));
    return 0;
  }
  must(a.user_id.len && a.item_id.len && a.scenario.len, "accepted an empty required field", NULL);
  must((unsigned)a.type < SR_EV__CNT, "accepted an out-of-range type", NULL);

  sr_buf_reset(&enc1);
  must(sr_codec_encode_event(dec, &a, &enc1) == SR_OK, "re-encode failed", NULL);
  err = sr_codec_decode_event(chk, enc1.data, enc1.len, &b, errstr, sizeof(errstr));
  must(err == SR_OK, "decoding our own encoding failed", errstr);
  must(sr_str_eq(a.event_id, b.event_id), "event_id differs after round trip", NULL);
  must(sr_str_eq(a.user_id, b.user_id), "user_id differs after round trip", NULL);
  must(sr_str_eq(a.item_id, b.item_id), "item_id differs after round trip", NULL);
  must(sr_str_eq(a.scenario, b.scenario), "scenario differs after round trip", NULL);
  must(a.type == b.type, "type differs after round trip", NULL);
  must(!memcmp(&a.value, &b.value, sizeof(a.value)), "value bits differ after round trip", NULL);
  must(a.ts_ms == b.ts_ms, "timestamp differs after round trip", NULL);

  sr_buf_reset(&enc2);
  must(sr_codec_encode_event(chk, &b, &enc2) == SR_OK, "second encode failed", NULL);
  must(enc1.len == enc2.len && !memcmp(enc1.data, enc2.data, enc1.len),
       "encoding is not a fixed point", NULL);
  return 0;
}
