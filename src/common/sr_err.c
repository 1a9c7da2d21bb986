/* Expands SR_ERR_MAP into the lookup functions; see include/streamrec/err.h. */
#include "streamrec/err.h"

const char *sr_err2str(sr_err_t err) {
  switch (err) {
#define SR__ERR_STR(name, code, retriable, msg)                                                    \
  case code: return msg;
    SR_ERR_MAP(SR__ERR_STR)
#undef SR__ERR_STR
  }
  return "unknown error";
}

const char *sr_err2name(sr_err_t err) {
  switch (err) {
#define SR__ERR_NAME(name, code, retriable, msg)                                                   \
  case code: return #name;
    SR_ERR_MAP(SR__ERR_NAME)
#undef SR__ERR_NAME
  }
  return "UNKNOWN";
}

int sr_err_is_retriable(sr_err_t err) {
  switch (err) {
#define SR__ERR_RETRY(name, code, retriable, msg)                                                  \
  case code: return retriable;
    SR_ERR_MAP(SR__ERR_RETRY)
#undef SR__ERR_RETRY
  }
  return 0;
}
