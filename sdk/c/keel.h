/* keel.h: write Keel plugins in C.
 *
 * Implement the hooks of your kind (below) and define `KEEL_PLUGIN`; keel.c
 * exports the component's interfaces over wit-bindgen's C bindings and
 * converts errors. Batches are read and built with the helpers here, so a
 * plugin never touches the generated types. `keel build` compiles plugin.c,
 * keel.c and the bindings with clang for wasm32-wasi and wraps the module
 * into a component with the WASI preview-1 adapter.
 *
 * Memory: inputs belong to the SDK and are freed after the hook returns;
 * what a hook adds to an output (columns, findings, metrics, snapshot bytes
 * malloc'd by you) is freed by the SDK once the host has copied it. */
#ifndef KEEL_H
#define KEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include KEEL_WORLD_H /* the bindings of the world being built, e.g. transform_plugin.h */

typedef keel_plugin_types_batch_t keel_batch;
typedef keel_plugin_types_column_t keel_column;
typedef keel_plugin_types_report_t keel_report_t;

/* What `metadata.describe` says. `config_schema` is a JSON Schema document. */
typedef struct {
  const char *name, *version, *description, *config_schema;
} keel_info;

typedef enum { KEEL_F64, KEEL_F32, KEEL_S64, KEEL_BOOL, KEEL_STRING } keel_type;

typedef enum {
  KEEL_INVALID_CONFIG,
  KEEL_INVALID_INPUT,
  KEEL_INVALID_REFERENCE,
  KEEL_INVALID_STATE,
  KEEL_INTERNAL,
} keel_code;

typedef enum { KEEL_SEVERITY_INFO, KEEL_SEVERITY_WARNING, KEEL_SEVERITY_ERROR } keel_severity;

/* A string that is not NUL-terminated (as WIT strings are): print with "%.*s". */
typedef struct {
  const char *ptr;
  size_t len;
} keel_str;

/* An error to return: set it with keel_fail. */
typedef struct {
  bool set;
  keel_code code;
  char *message;
  char *column;
} keel_error;

/* Bytes a monitor's snapshot returns; `ptr` from malloc. */
typedef struct {
  uint8_t *ptr;
  size_t len;
} keel_bytes;

typedef struct keel_findings keel_findings;
typedef struct keel_config keel_config;

/* ---- implemented by the plugin ---- */
extern const keel_info KEEL_PLUGIN;
/* Builds the plugin's state from its JSON config and the reference (NULL
 * when the pipeline has none; never NULL for a monitor). Returns NULL after
 * keel_fail on error. */
void *keel_create(const char *config, size_t len, const keel_batch *reference, keel_error *err);
void keel_destroy(void *state);
/* transform: `out` starts empty with the input's row count (keel_out_rows changes it). */
bool keel_process(void *state, keel_batch *in, keel_batch *out, keel_error *err);
/* validator */
bool keel_validate(void *state, const keel_batch *in, keel_findings *out, keel_error *err);
/* monitor */
bool keel_observe(void *state, const keel_batch *in, keel_error *err);
bool keel_report(void *state, keel_report_t *out, keel_error *err);
bool keel_snapshot(void *state, keel_bytes *out, keel_error *err);
bool keel_restore(void *state, const uint8_t *bytes, size_t len, keel_error *err);

/* ---- errors and logging ---- */
/* Sets the error (message printf-style; column may be NULL) and returns false. */
bool keel_fail(keel_error *err, keel_code code, const char *column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Logs through the host: level 0 trace .. 4 error. */
void keel_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- reading batches ---- */
size_t keel_batch_rows(const keel_batch *b);
size_t keel_batch_ncols(const keel_batch *b);
const keel_column *keel_batch_col(const keel_batch *b, size_t i);
/* NULL when there is no such column. */
const keel_column *keel_column_named(const keel_batch *b, const char *name);
keel_str keel_col_name(const keel_column *c);
keel_type keel_col_type(const keel_column *c);
bool keel_is_numeric(const keel_column *c);
bool keel_valid(const keel_column *c, size_t row);
/* Row `row` of an f64, f32 or s64 column as a double (0 for other types). */
double keel_number(const keel_column *c, size_t row);
const double *keel_f64s(const keel_column *c);
const float *keel_f32s(const keel_column *c);
const int64_t *keel_s64s(const keel_column *c);
const bool *keel_bools(const keel_column *c);
keel_str keel_string(const keel_column *c, size_t row);

/* ---- building a transform's output ---- */
void keel_out_rows(keel_batch *out, uint32_t rows);
/* Appends a zeroed, all-valid column of the output's row count; the pointer
 * is valid until the next keel_add / keel_pass. */
keel_column *keel_add(keel_batch *out, const char *name, keel_type type);
keel_column *keel_add_n(keel_batch *out, const char *name, size_t name_len, keel_type type);
/* Moves input column `i` to the output unchanged (no copy). */
void keel_pass(keel_batch *out, keel_batch *in, size_t i);
double *keel_f64_mut(keel_column *c);
float *keel_f32_mut(keel_column *c);
int64_t *keel_s64_mut(keel_column *c);
bool *keel_bool_mut(keel_column *c);
/* Copies `len` bytes of UTF-8 into row `row` of a string column. */
void keel_set_string(keel_column *c, size_t row, const char *s, size_t len);
/* Makes row `row` null (and its value the placeholder). */
void keel_set_null(keel_column *c, size_t row);

/* ---- validators ---- */
/* row < 0: the finding is about the whole batch; column may be NULL. */
void keel_finding(keel_findings *out, const char *rule, const char *column, long row, keel_severity severity,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- monitor reports ---- */
/* threshold NAN = none; column NULL = dataset level. */
void keel_metric(keel_report_t *r, const char *column, const char *name, double value, double threshold, bool alert);
void keel_report_set(keel_report_t *r, uint64_t rows, bool alert);
void keel_summary(keel_report_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- config: a JSON object of numbers, strings, booleans, arrays of strings ---- */
/* Parses `text`; a key not in `keys` (NULL-terminated) is an invalid-config error naming it. */
keel_config *keel_config_parse(const char *text, size_t len, const char *const *keys, keel_error *err);
/* Each leaves *out unchanged when the key is absent and fails (naming the key) on a wrong type. */
bool keel_config_number(const keel_config *c, const char *key, double *out, keel_error *err);
bool keel_config_bool(const keel_config *c, const char *key, bool *out, keel_error *err);
/* *out is a malloc'd NUL-terminated copy. */
bool keel_config_string(const keel_config *c, const char *key, char **out, keel_error *err);
/* *out is a malloc'd array of *n malloc'd strings. */
bool keel_config_strings(const keel_config *c, const char *key, char ***out, size_t *n, keel_error *err);
void keel_config_free(keel_config *c);

#endif
