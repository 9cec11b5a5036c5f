/* keel.c: the exports of a Keel plugin written in C, over wit-bindgen's C
 * bindings, calling the hooks declared in keel.h. Compiled once per world:
 * `keel build` defines KEEL_TRANSFORM, KEEL_VALIDATOR or KEEL_MONITOR and
 * KEEL_WORLD_H. wit-bindgen's convention: an export owns its arguments (we
 * free them after the hook) and its results are freed after the host has
 * copied them (so everything returned is malloc'd). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel.h"

#if defined(KEEL_TRANSFORM)
#define KW(x) transform_plugin_##x
#define KEEL_KIND KEEL_PLUGIN_TYPES_PLUGIN_KIND_TRANSFORM
#elif defined(KEEL_VALIDATOR)
#define KW(x) validator_plugin_##x
#define KEEL_KIND KEEL_PLUGIN_TYPES_PLUGIN_KIND_VALIDATOR
#elif defined(KEEL_MONITOR)
#define KW(x) monitor_plugin_##x
#define KEEL_KIND KEEL_PLUGIN_TYPES_PLUGIN_KIND_MONITOR
#else
#error "define KEEL_TRANSFORM, KEEL_VALIDATOR or KEEL_MONITOR (keel build does)"
#endif

typedef KW(string_t) wstring;

/* ---- errors and logging ---- */

static char *vformat(const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  char *s = malloc(n > 0 ? (size_t)n + 1 : 1);
  vsnprintf(s, n > 0 ? (size_t)n + 1 : 1, fmt, ap);
  return s;
}

bool keel_fail(keel_error *err, keel_code code, const char *column, const char *fmt, ...) {
  if (err->set) {
    free(err->message);
    free(err->column);
  }
  va_list ap;
  va_start(ap, fmt);
  err->message = vformat(fmt, ap);
  va_end(ap);
  err->column = column ? strdup(column) : NULL;
  err->code = code;
  err->set = true;
  return false;
}

void keel_log(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *m = vformat(fmt, ap);
  va_end(ap);
  wstring s = {(uint8_t *)m, strlen(m)};
  keel_plugin_host_log((keel_plugin_host_level_t)(level < 0 ? 0 : level > 4 ? 4 : level), &s);
  free(m);
}

/* Moves `e` into the WIT error the export returns. */
static void to_wit_error(keel_error *e, keel_plugin_types_error_t *out) {
  if (!e->set) keel_fail(e, KEEL_INTERNAL, NULL, "the plugin failed without saying why");
  out->code = (keel_plugin_types_error_code_t)e->code;
  out->message = (wstring){(uint8_t *)e->message, strlen(e->message)};
  out->column.is_some = e->column != NULL;
  if (e->column) out->column.val = (wstring){(uint8_t *)e->column, strlen(e->column)};
  e->set = false;
}

/* ---- metadata ---- */

void exports_keel_plugin_metadata_describe(exports_keel_plugin_metadata_plugin_info_t *ret) {
  KW(string_dup)(&ret->name, KEEL_PLUGIN.name);
  KW(string_dup)(&ret->version, KEEL_PLUGIN.version);
  ret->kind = KEEL_KIND;
  KW(string_dup)(&ret->description, KEEL_PLUGIN.description);
  KW(string_dup)(&ret->config_schema, KEEL_PLUGIN.config_schema ? KEEL_PLUGIN.config_schema : "{}");
}

/* ---- reading batches ---- */

size_t keel_batch_rows(const keel_batch *b) { return b->rows; }
size_t keel_batch_ncols(const keel_batch *b) { return b->columns.len; }
const keel_column *keel_batch_col(const keel_batch *b, size_t i) { return i < b->columns.len ? &b->columns.ptr[i] : NULL; }

const keel_column *keel_column_named(const keel_batch *b, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < b->columns.len; i++) {
    const keel_column *c = &b->columns.ptr[i];
    if (c->name.len == n && memcmp(c->name.ptr, name, n) == 0) return c;
  }
  return NULL;
}

keel_str keel_col_name(const keel_column *c) { return (keel_str){(const char *)c->name.ptr, c->name.len}; }
keel_type keel_col_type(const keel_column *c) { return (keel_type)c->data.tag; }

bool keel_is_numeric(const keel_column *c) {
  return c->data.tag == KEEL_PLUGIN_TYPES_COLUMN_DATA_F64 || c->data.tag == KEEL_PLUGIN_TYPES_COLUMN_DATA_F32 ||
         c->data.tag == KEEL_PLUGIN_TYPES_COLUMN_DATA_S64;
}

bool keel_valid(const keel_column *c, size_t row) { return !c->validity.is_some || c->validity.val.ptr[row]; }

double keel_number(const keel_column *c, size_t row) {
  switch (c->data.tag) {
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_F64: return c->data.val.f64.ptr[row];
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_F32: return (double)c->data.val.f32.ptr[row];
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_S64: return (double)c->data.val.s64.ptr[row];
    default: return 0.0;
  }
}

const double *keel_f64s(const keel_column *c) { return c->data.val.f64.ptr; }
const float *keel_f32s(const keel_column *c) { return c->data.val.f32.ptr; }
const int64_t *keel_s64s(const keel_column *c) { return c->data.val.s64.ptr; }
const bool *keel_bools(const keel_column *c) { return c->data.val.bool_.ptr; }
keel_str keel_string(const keel_column *c, size_t row) {
  wstring s = c->data.val.string.ptr[row];
  return (keel_str){(const char *)s.ptr, s.len};
}

/* ---- building batches ---- */

void keel_out_rows(keel_batch *out, uint32_t rows) { out->rows = rows; }

static size_t col_len(const keel_column *c) {
  switch (c->data.tag) {
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_F64: return c->data.val.f64.len;
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_F32: return c->data.val.f32.len;
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_S64: return c->data.val.s64.len;
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_BOOL: return c->data.val.bool_.len;
    default: return c->data.val.string.len;
  }
}

static keel_column *push(keel_batch *out) {
  out->columns.ptr = realloc(out->columns.ptr, (out->columns.len + 1) * sizeof *out->columns.ptr);
  keel_column *c = &out->columns.ptr[out->columns.len++];
  memset(c, 0, sizeof *c);
  return c;
}

keel_column *keel_add_n(keel_batch *out, const char *name, size_t name_len, keel_type type) {
  keel_column *c = push(out);
  KW(string_dup_n)(&c->name, name, name_len);
  size_t n = out->rows, one = n ? n : 1;
  c->data.tag = (uint8_t)type;
  switch (type) {
    case KEEL_F64: c->data.val.f64 = (KW(list_f64_t)){calloc(one, sizeof(double)), n}; break;
    case KEEL_F32: c->data.val.f32 = (KW(list_f32_t)){calloc(one, sizeof(float)), n}; break;
    case KEEL_S64: c->data.val.s64 = (KW(list_s64_t)){calloc(one, sizeof(int64_t)), n}; break;
    case KEEL_BOOL: c->data.val.bool_ = (KW(list_bool_t)){calloc(one, sizeof(bool)), n}; break;
    case KEEL_STRING: c->data.val.string = (KW(list_string_t)){calloc(one, sizeof(wstring)), n}; break;
  }
  return c;
}

keel_column *keel_add(keel_batch *out, const char *name, keel_type type) {
  return keel_add_n(out, name, strlen(name), type);
}

void keel_pass(keel_batch *out, keel_batch *in, size_t i) {
  if (i >= in->columns.len) return;
  keel_column *c = push(out);
  *c = in->columns.ptr[i];
  /* The input keeps an empty column, so freeing it frees nothing twice. */
  memset(&in->columns.ptr[i], 0, sizeof in->columns.ptr[i]);
}

double *keel_f64_mut(keel_column *c) { return c->data.val.f64.ptr; }
float *keel_f32_mut(keel_column *c) { return c->data.val.f32.ptr; }
int64_t *keel_s64_mut(keel_column *c) { return c->data.val.s64.ptr; }
bool *keel_bool_mut(keel_column *c) { return c->data.val.bool_.ptr; }

void keel_set_string(keel_column *c, size_t row, const char *s, size_t len) {
  wstring *dst = &c->data.val.string.ptr[row];
  free(dst->ptr);
  dst->ptr = malloc(len ? len : 1);
  memcpy(dst->ptr, s, len);
  dst->len = len;
}

void keel_set_null(keel_column *c, size_t row) {
  size_t n = col_len(c);
  if (!c->validity.is_some) {
    c->validity.is_some = true;
    c->validity.val.ptr = malloc(n ? n : 1);
    c->validity.val.len = n;
    for (size_t i = 0; i < n; i++) c->validity.val.ptr[i] = true;
  }
  c->validity.val.ptr[row] = false;
  switch (c->data.tag) {
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_F64: c->data.val.f64.ptr[row] = 0; break;
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_F32: c->data.val.f32.ptr[row] = 0; break;
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_S64: c->data.val.s64.ptr[row] = 0; break;
    case KEEL_PLUGIN_TYPES_COLUMN_DATA_BOOL: c->data.val.bool_.ptr[row] = false; break;
    default: {
      wstring *s = &c->data.val.string.ptr[row];
      free(s->ptr);
      s->ptr = NULL;
      s->len = 0;
    }
  }
}

#if defined(KEEL_VALIDATOR) || defined(KEEL_MONITOR)
static wstring owned(const char *s) {
  size_t n = strlen(s);
  char *p = malloc(n ? n : 1);
  memcpy(p, s, n);
  return (wstring){(uint8_t *)p, n};
}
#endif

#if defined(KEEL_TRANSFORM)

struct exports_keel_plugin_transform_transformer_t {
  void *state;
};

bool exports_keel_plugin_transform_static_transformer_create(wstring *config, keel_batch *reference,
                                                             exports_keel_plugin_transform_own_transformer_t *ret,
                                                             keel_plugin_types_error_t *err) {
  keel_error e = {0};
  void *state = keel_create((const char *)config->ptr, config->len, reference, &e);
  KW(string_free)(config);
  if (reference) keel_plugin_types_batch_free(reference);
  if (!state) {
    to_wit_error(&e, err);
    return false;
  }
  exports_keel_plugin_transform_transformer_t *rep = malloc(sizeof *rep);
  rep->state = state;
  *ret = exports_keel_plugin_transform_transformer_new(rep);
  return true;
}

void exports_keel_plugin_transform_transformer_destructor(exports_keel_plugin_transform_transformer_t *rep) {
  keel_destroy(rep->state);
  free(rep);
}

bool exports_keel_plugin_transform_method_transformer_process(exports_keel_plugin_transform_borrow_transformer_t self,
                                                              keel_batch *input, keel_batch *ret,
                                                              keel_plugin_types_error_t *err) {
  keel_error e = {0};
  memset(ret, 0, sizeof *ret);
  ret->rows = input->rows;
  bool ok = keel_process(self->state, input, ret, &e);
  keel_plugin_types_batch_free(input);
  if (!ok) {
    keel_plugin_types_batch_free(ret);
    memset(ret, 0, sizeof *ret);
    to_wit_error(&e, err);
  }
  return ok;
}

#elif defined(KEEL_VALIDATOR)

struct keel_findings {
  exports_keel_plugin_validator_list_finding_t list;
};

struct exports_keel_plugin_validator_checker_t {
  void *state;
};

bool exports_keel_plugin_validator_static_checker_create(wstring *config, keel_batch *reference,
                                                         exports_keel_plugin_validator_own_checker_t *ret,
                                                         keel_plugin_types_error_t *err) {
  keel_error e = {0};
  void *state = keel_create((const char *)config->ptr, config->len, reference, &e);
  KW(string_free)(config);
  if (reference) keel_plugin_types_batch_free(reference);
  if (!state) {
    to_wit_error(&e, err);
    return false;
  }
  exports_keel_plugin_validator_checker_t *rep = malloc(sizeof *rep);
  rep->state = state;
  *ret = exports_keel_plugin_validator_checker_new(rep);
  return true;
}

void exports_keel_plugin_validator_checker_destructor(exports_keel_plugin_validator_checker_t *rep) {
  keel_destroy(rep->state);
  free(rep);
}

void keel_finding(keel_findings *out, const char *rule, const char *column, long row, keel_severity severity,
                  const char *fmt, ...) {
  exports_keel_plugin_validator_list_finding_t *l = &out->list;
  l->ptr = realloc(l->ptr, (l->len + 1) * sizeof *l->ptr);
  keel_plugin_types_finding_t *f = &l->ptr[l->len++];
  memset(f, 0, sizeof *f);
  f->rule = owned(rule);
  f->column.is_some = column != NULL;
  if (column) f->column.val = owned(column);
  f->row.is_some = row >= 0;
  f->row.val = row >= 0 ? (uint32_t)row : 0;
  f->severity = (keel_plugin_types_severity_t)severity;
  va_list ap;
  va_start(ap, fmt);
  char *m = vformat(fmt, ap);
  va_end(ap);
  f->message = (wstring){(uint8_t *)m, strlen(m)};
}

bool exports_keel_plugin_validator_method_checker_validate(exports_keel_plugin_validator_borrow_checker_t self,
                                                           keel_batch *input,
                                                           exports_keel_plugin_validator_list_finding_t *ret,
                                                           keel_plugin_types_error_t *err) {
  keel_error e = {0};
  keel_findings out = {{NULL, 0}};
  bool ok = keel_validate(self->state, input, &out, &e);
  keel_plugin_types_batch_free(input);
  if (!ok) {
    exports_keel_plugin_validator_list_finding_free(&out.list);
    to_wit_error(&e, err);
    return false;
  }
  *ret = out.list;
  return true;
}

#elif defined(KEEL_MONITOR)

struct exports_keel_plugin_monitor_watcher_t {
  void *state;
};

bool exports_keel_plugin_monitor_static_watcher_create(wstring *config, keel_batch *reference,
                                                       exports_keel_plugin_monitor_own_watcher_t *ret,
                                                       keel_plugin_types_error_t *err) {
  keel_error e = {0};
  void *state = keel_create((const char *)config->ptr, config->len, reference, &e);
  KW(string_free)(config);
  keel_plugin_types_batch_free(reference);
  if (!state) {
    to_wit_error(&e, err);
    return false;
  }
  exports_keel_plugin_monitor_watcher_t *rep = malloc(sizeof *rep);
  rep->state = state;
  *ret = exports_keel_plugin_monitor_watcher_new(rep);
  return true;
}

void exports_keel_plugin_monitor_watcher_destructor(exports_keel_plugin_monitor_watcher_t *rep) {
  keel_destroy(rep->state);
  free(rep);
}

bool exports_keel_plugin_monitor_method_watcher_observe(exports_keel_plugin_monitor_borrow_watcher_t self,
                                                        keel_batch *input, keel_plugin_types_error_t *err) {
  keel_error e = {0};
  bool ok = keel_observe(self->state, input, &e);
  keel_plugin_types_batch_free(input);
  if (!ok) to_wit_error(&e, err);
  return ok;
}

void keel_metric(keel_report_t *r, const char *column, const char *name, double value, double threshold, bool alert) {
  keel_plugin_types_list_metric_t *l = &r->metrics;
  l->ptr = realloc(l->ptr, (l->len + 1) * sizeof *l->ptr);
  keel_plugin_types_metric_t *m = &l->ptr[l->len++];
  memset(m, 0, sizeof *m);
  m->column.is_some = column != NULL;
  if (column) m->column.val = owned(column);
  m->name = owned(name);
  m->value = value;
  m->threshold.is_some = !isnan(threshold);
  m->threshold.val = isnan(threshold) ? 0 : threshold;
  m->alert = alert;
}

void keel_report_set(keel_report_t *r, uint64_t rows, bool alert) {
  r->rows = rows;
  r->alert = alert;
}

void keel_summary(keel_report_t *r, const char *fmt, ...) {
  free(r->summary.ptr);
  va_list ap;
  va_start(ap, fmt);
  char *m = vformat(fmt, ap);
  va_end(ap);
  r->summary = (wstring){(uint8_t *)m, strlen(m)};
}

bool exports_keel_plugin_monitor_method_watcher_report(exports_keel_plugin_monitor_borrow_watcher_t self,
                                                       keel_report_t *ret, keel_plugin_types_error_t *err) {
  keel_error e = {0};
  memset(ret, 0, sizeof *ret);
  bool ok = keel_report(self->state, ret, &e);
  if (!ok) {
    keel_plugin_types_report_free(ret);
    memset(ret, 0, sizeof *ret);
    to_wit_error(&e, err);
  }
  return ok;
}

bool exports_keel_plugin_monitor_method_watcher_snapshot(exports_keel_plugin_monitor_borrow_watcher_t self,
                                                         KW(list_u8_t) *ret, keel_plugin_types_error_t *err) {
  keel_error e = {0};
  keel_bytes b = {NULL, 0};
  if (!keel_snapshot(self->state, &b, &e)) {
    free(b.ptr);
    to_wit_error(&e, err);
    return false;
  }
  ret->ptr = b.ptr;
  ret->len = b.len;
  return true;
}

bool exports_keel_plugin_monitor_method_watcher_restore(exports_keel_plugin_monitor_borrow_watcher_t self,
                                                        KW(list_u8_t) *state, keel_plugin_types_error_t *err) {
  keel_error e = {0};
  bool ok = keel_restore(self->state, state->ptr, state->len, &e);
  free(state->ptr);
  if (!ok) to_wit_error(&e, err);
  return ok;
}

#endif

/* ---- config: a small JSON reader (objects of scalars and arrays of strings) ---- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_STRS, J_OTHER } jkind;

typedef struct {
  char *key;
  jkind kind;
  double num;
  bool b;
  char *str;
  char **strs;
  size_t nstrs;
} jentry;

struct keel_config {
  jentry *e;
  size_t n;
};

typedef struct {
  const char *start, *p, *end;
  keel_error *err;
} jparser;

static void jskip(jparser *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool jbad(jparser *j, const char *what) {
  return keel_fail(j->err, KEEL_INVALID_CONFIG, NULL, "config is not valid JSON: %s at byte %ld", what,
                   (long)(j->p - j->start));
}

static void jput_utf8(char **o, uint32_t cp) {
  char *q = *o;
  if (cp < 0x80) *q++ = (char)cp;
  else if (cp < 0x800) { *q++ = (char)(0xC0 | (cp >> 6)); *q++ = (char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { *q++ = (char)(0xE0 | (cp >> 12)); *q++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *q++ = (char)(0x80 | (cp & 0x3F)); }
  else { *q++ = (char)(0xF0 | (cp >> 18)); *q++ = (char)(0x80 | ((cp >> 12) & 0x3F)); *q++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *q++ = (char)(0x80 | (cp & 0x3F)); }
  *o = q;
}

static int jhex(jparser *j) {
  if (j->end - j->p < 4) return -1;
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *j->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

static bool jstring(jparser *j, char **out) {
  if (j->p >= j->end || *j->p != '"') return jbad(j, "expected a string");
  j->p++;
  char *buf = malloc((size_t)(j->end - j->p) * 2 + 1), *o = buf;
  while (j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    if (c != '\\') { *o++ = c; continue; }
    if (j->p >= j->end) break;
    c = *j->p++;
    switch (c) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'u': {
        int cp = jhex(j);
        if (cp < 0) { free(buf); return jbad(j, "bad \\u escape"); }
        if (cp >= 0xD800 && cp < 0xDC00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
          j->p += 2;
          int lo = jhex(j);
          if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        jput_utf8(&o, (uint32_t)cp);
        break;
      }
      default: *o++ = c;
    }
  }
  if (j->p >= j->end) { free(buf); return jbad(j, "unterminated string"); }
  j->p++;
  *o = 0;
  *out = buf;
  return true;
}

/* Skips any JSON value (for kinds the config readers do not take). */
static bool jskip_value(jparser *j) {
  jskip(j);
  if (j->p >= j->end) return jbad(j, "expected a value");
  if (*j->p == '"') {
    char *s;
    if (!jstring(j, &s)) return false;
    free(s);
    return true;
  }
  if (*j->p == '{' || *j->p == '[') {
    int depth = 0;
    do {
      if (*j->p == '"') {
        char *s;
        if (!jstring(j, &s)) return false;
        free(s);
        continue;
      }
      if (*j->p == '{' || *j->p == '[') depth++;
      if (*j->p == '}' || *j->p == ']') depth--;
      j->p++;
    } while (depth > 0 && j->p < j->end);
    return depth == 0 ? true : jbad(j, "unbalanced brackets");
  }
  while (j->p < j->end && *j->p != ',' && *j->p != '}' && *j->p != ']') j->p++;
  return true;
}

static bool jvalue(jparser *j, jentry *e) {
  jskip(j);
  if (j->p >= j->end) return jbad(j, "expected a value");
  char c = *j->p;
  if (c == '"') { e->kind = J_STR; return jstring(j, &e->str); }
  if (c == 't' && j->end - j->p >= 4 && !memcmp(j->p, "true", 4)) { e->kind = J_BOOL; e->b = true; j->p += 4; return true; }
  if (c == 'f' && j->end - j->p >= 5 && !memcmp(j->p, "false", 5)) { e->kind = J_BOOL; e->b = false; j->p += 5; return true; }
  if (c == 'n' && j->end - j->p >= 4 && !memcmp(j->p, "null", 4)) { e->kind = J_NULL; j->p += 4; return true; }
  if (c == '-' || (c >= '0' && c <= '9')) {
    char tmp[64];
    size_t n = 0;
    while (j->p < j->end && n < sizeof tmp - 1 && strchr("+-0123456789.eE", *j->p)) tmp[n++] = *j->p++;
    tmp[n] = 0;
    char *endp;
    e->num = strtod(tmp, &endp);
    if (*endp) return jbad(j, "bad number");
    e->kind = J_NUM;
    return true;
  }
  if (c == '[') {
    const char *start = j->p;
    j->p++;
    jskip(j);
    e->kind = J_STRS;
    while (j->p < j->end && *j->p != ']') {
      jskip(j);
      if (j->p < j->end && *j->p != '"') { /* not an array of strings */
        j->p = start;
        e->kind = J_OTHER;
        for (size_t i = 0; i < e->nstrs; i++) free(e->strs[i]);
        free(e->strs);
        e->strs = NULL;
        e->nstrs = 0;
        return jskip_value(j);
      }
      char *s;
      if (!jstring(j, &s)) return false;
      e->strs = realloc(e->strs, (e->nstrs + 1) * sizeof *e->strs);
      e->strs[e->nstrs++] = s;
      jskip(j);
      if (j->p < j->end && *j->p == ',') j->p++;
      jskip(j);
    }
    if (j->p >= j->end) return jbad(j, "unterminated array");
    j->p++;
    return true;
  }
  e->kind = J_OTHER;
  return jskip_value(j);
}

keel_config *keel_config_parse(const char *text, size_t len, const char *const *keys, keel_error *err) {
  jparser j = {text, text, text + len, err};
  keel_config *c = calloc(1, sizeof *c);
  jskip(&j);
  if (j.p == j.end) return c; /* an empty config is {} */
  if (*j.p != '{') {
    keel_fail(err, KEEL_INVALID_CONFIG, NULL, "config must be a JSON object");
    keel_config_free(c);
    return NULL;
  }
  j.p++;
  for (;;) {
    jskip(&j);
    if (j.p < j.end && *j.p == '}') { j.p++; break; }
    jentry e = {0};
    if (!jstring(&j, &e.key)) goto fail;
    jskip(&j);
    if (j.p >= j.end || *j.p != ':') { free(e.key); jbad(&j, "expected `:`"); goto fail; }
    j.p++;
    bool known = false;
    for (const char *const *k = keys; *k; k++) known |= strcmp(*k, e.key) == 0;
    if (!known) {
      char list[512] = "";
      for (const char *const *k = keys; *k; k++) {
        if (k != keys) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, *k, sizeof list - strlen(list) - 1);
      }
      keel_fail(err, KEEL_INVALID_CONFIG, e.key, "unknown config key `%s` (expected one of: %s)", e.key, list);
      free(e.key);
      goto fail;
    }
    if (!jvalue(&j, &e)) { free(e.key); goto fail; }
    c->e = realloc(c->e, (c->n + 1) * sizeof *c->e);
    c->e[c->n++] = e;
    jskip(&j);
    if (j.p < j.end && *j.p == ',') { j.p++; continue; }
    if (j.p < j.end && *j.p == '}') { j.p++; break; }
    jbad(&j, "expected `,` or `}`");
    goto fail;
  }
  return c;
fail:
  keel_config_free(c);
  return NULL;
}

static const jentry *jfind(const keel_config *c, const char *key) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->e[i].key, key) == 0) return &c->e[i];
  return NULL;
}

static const char *jname(jkind k) {
  static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array of strings", "an object or mixed array"};
  return names[k];
}

bool keel_config_number(const keel_config *c, const char *key, double *out, keel_error *err) {
  const jentry *e = jfind(c, key);
  if (!e) return true;
  if (e->kind != J_NUM) return keel_fail(err, KEEL_INVALID_CONFIG, key, "config key `%s`: expected a number, got %s", key, jname(e->kind));
  *out = e->num;
  return true;
}

bool keel_config_bool(const keel_config *c, const char *key, bool *out, keel_error *err) {
  const jentry *e = jfind(c, key);
  if (!e) return true;
  if (e->kind != J_BOOL) return keel_fail(err, KEEL_INVALID_CONFIG, key, "config key `%s`: expected a boolean, got %s", key, jname(e->kind));
  *out = e->b;
  return true;
}

bool keel_config_string(const keel_config *c, const char *key, char **out, keel_error *err) {
  const jentry *e = jfind(c, key);
  if (!e) return true;
  if (e->kind != J_STR) return keel_fail(err, KEEL_INVALID_CONFIG, key, "config key `%s`: expected a string, got %s", key, jname(e->kind));
  free(*out);
  *out = strdup(e->str);
  return true;
}

bool keel_config_strings(const keel_config *c, const char *key, char ***out, size_t *n, keel_error *err) {
  const jentry *e = jfind(c, key);
  if (!e) return true;
  if (e->kind != J_STRS) return keel_fail(err, KEEL_INVALID_CONFIG, key, "config key `%s`: expected an array of strings, got %s", key, jname(e->kind));
  *out = calloc(e->nstrs + 1, sizeof **out);
  for (size_t i = 0; i < e->nstrs; i++) (*out)[i] = strdup(e->strs[i]);
  *n = e->nstrs;
  return true;
}

void keel_config_free(keel_config *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) {
    free(c->e[i].key);
    free(c->e[i].str);
    for (size_t k = 0; k < c->e[i].nstrs; k++) free(c->e[i].strs[k]);
    free(c->e[i].strs);
  }
  free(c->e);
  free(c);
}
