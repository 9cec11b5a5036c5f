// keel.js: write Keel plugins in JavaScript (compiled to components by componentize-js).
//
// A plugin is a class extending `Transform`, `Validator` or `Monitor`; the
// module exports what `exportPlugin(Class)` returns. Data arrives as a `Batch`
// of `Column`s whose `values` are plain arrays with `null` for a null cell:
// numbers for f64/f32, BigInt for s64, booleans, strings. Throw a `KeelError`
// (or use configError, inputError, ...) for an error the host records and
// survives; any other exception is a trap.

import { log as hostLog } from "keel:plugin/host@0.1.0";

export const TYPES = ["f64", "f32", "s64", "bool", "string"];
const PLACEHOLDER = { f64: 0, f32: 0, s64: 0n, bool: false, string: "" };
const CODES = ["invalid-config", "invalid-input", "invalid-reference", "invalid-state", "internal"];

export class KeelError extends Error {
  constructor(code, message, column) {
    super(message);
    if (!CODES.includes(code)) throw new Error(`unknown error code ${code}`);
    // componentize-js returns an exception's `payload` as the call's error value.
    this.payload = { code, message, column: column ?? undefined };
  }
}
export const configError = (m, c) => new KeelError("invalid-config", m, c);
export const inputError = (m, c) => new KeelError("invalid-input", m, c);
export const referenceError = (m, c) => new KeelError("invalid-reference", m, c);
export const stateError = (m) => new KeelError("invalid-state", m);

export class Column {
  constructor(name, dtype, values) {
    if (!TYPES.includes(dtype)) throw inputError(`column \`${name}\`: unknown type ${dtype}`, name);
    this.name = name;
    this.dtype = dtype;
    this.values = values;
  }
  isNumeric() {
    return this.dtype === "f64" || this.dtype === "f32" || this.dtype === "s64";
  }
  nullCount() {
    let n = 0;
    for (const v of this.values) if (v === null) n++;
    return n;
  }
}

export class Batch {
  constructor(columns = [], rows) {
    this.map = new Map();
    for (const c of columns) {
      if (this.map.has(c.name)) throw inputError(`column \`${c.name}\` appears twice`, c.name);
      this.map.set(c.name, c);
    }
    this.rows = rows ?? (columns.length ? columns[0].values.length : 0);
    for (const c of columns) {
      if (c.values.length !== this.rows)
        throw inputError(`column \`${c.name}\` has ${c.values.length} values, the batch ${this.rows} rows`, c.name);
    }
  }
  get columns() {
    return [...this.map.values()];
  }
  names() {
    return [...this.map.keys()];
  }
  has(name) {
    return this.map.has(name);
  }
  /** The column `name`; a missing one is an `invalid-input` error naming it. */
  column(name) {
    const c = this.map.get(name);
    if (!c) throw inputError(`missing column \`${name}\``, name);
    return c;
  }
  set(column) {
    if (column.values.length !== this.rows)
      throw inputError(`column \`${column.name}\` has ${column.values.length} values, the batch ${this.rows} rows`, column.name);
    this.map.set(column.name, column);
  }
  remove(name) {
    const c = this.map.get(name);
    this.map.delete(name);
    return c;
  }
}

export class Plugin {}
Plugin.pluginName = "unnamed";
Plugin.version = "0.1.0";
Plugin.description = "";
Plugin.configSchema = {};
// {key: default}: the config keys accepted, with their types; null accepts any JSON object.
Plugin.defaults = {};

export class Transform extends Plugin {}
Transform.kind = "transform";
export class Validator extends Plugin {}
Validator.kind = "validator";
export class Monitor extends Plugin {
  snapshot() {
    return new TextEncoder().encode(JSON.stringify(this.state()));
  }
  restore(bytes) {
    let state;
    try {
      state = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw stateError(`not a ${this.constructor.pluginName} snapshot: ${e.message}`);
    }
    this.setState(state);
  }
}
Monitor.kind = "monitor";

/** A finding: `finding("range", "x is 7, above 5", {column: "x", row: 3, severity: "error"})`. */
export function finding(rule, message, { column, row, severity = "error" } = {}) {
  return { rule, column: column ?? undefined, row: row ?? undefined, severity, message };
}

/** A metric of a monitor report. */
export function metric(name, value, { column, threshold, pValue, alert = false } = {}) {
  return { column: column ?? undefined, name, value, threshold: threshold ?? undefined, pValue: pValue ?? undefined, alert };
}

/** Parses a JSON config against `defaults` ({key: default}); unknown keys and
 * wrong types are `invalid-config` errors naming the key. */
export function parseConfig(text, defaults) {
  let given;
  try {
    given = text.trim() ? JSON.parse(text) : {};
  } catch (e) {
    throw configError(`config is not JSON: ${e.message}`);
  }
  if (given === null || typeof given !== "object" || Array.isArray(given)) throw configError("config must be a JSON object");
  if (defaults === null) return given;
  const out = { ...defaults };
  for (const [k, v] of Object.entries(given)) {
    if (!(k in defaults)) throw configError(`unknown config key \`${k}\` (expected one of: ${Object.keys(defaults).join(", ")})`, k);
    const want = defaults[k];
    if (want !== null && typeof v !== typeof want)
      throw configError(`config key \`${k}\`: expected ${typeof want}, got ${JSON.stringify(v)}`, k);
    out[k] = v;
  }
  return out;
}

export function log(level, message) {
  hostLog(level, message);
}

function batchIn(b) {
  const cols = b.columns.map((c) => {
    const src = c.data.val;
    const values = new Array(src.length);
    const ok = c.validity;
    for (let i = 0; i < src.length; i++) values[i] = ok && !ok[i] ? null : src[i];
    return new Column(c.name, c.data.tag, values);
  });
  return new Batch(cols, b.rows);
}

function batchOut(b) {
  if (!(b instanceof Batch)) throw new KeelError("internal", "the plugin did not return a Batch");
  return {
    rows: b.rows,
    columns: b.columns.map((c) => {
      let validity;
      let values = c.values;
      if (values.includes(null)) {
        validity = values.map((v) => v !== null);
        const z = PLACEHOLDER[c.dtype];
        values = values.map((v) => (v === null ? z : v));
      }
      if (c.dtype === "f64") values = Float64Array.from(values);
      else if (c.dtype === "f32") values = Float32Array.from(values);
      else if (c.dtype === "s64") values = BigInt64Array.from(values, (v) => BigInt(v));
      return { name: c.name, data: { tag: c.dtype, val: values }, validity };
    }),
  };
}

/** What a plugin module exports: `export const { metadata, transform } = exportPlugin(MyTransform);` */
export function exportPlugin(P) {
  const metadata = {
    describe() {
      const schema = typeof P.configSchema === "string" ? P.configSchema : JSON.stringify(P.configSchema);
      return { name: P.pluginName, version: P.version, kind: P.kind, description: P.description, configSchema: schema };
    },
  };
  const make = (config, reference) => new P(parseConfig(config, P.defaults), reference === undefined ? undefined : batchIn(reference));
  if (P.kind === "transform") {
    class Transformer {
      static create(config, reference) {
        const t = new Transformer();
        t.inner = make(config, reference);
        return t;
      }
      process(input) {
        return batchOut(this.inner.process(batchIn(input)));
      }
    }
    return { metadata, transform: { Transformer } };
  }
  if (P.kind === "validator") {
    class Checker {
      static create(config, reference) {
        const t = new Checker();
        t.inner = make(config, reference);
        return t;
      }
      validate(input) {
        return this.inner.validate(batchIn(input));
      }
    }
    return { metadata, validator: { Checker } };
  }
  class Watcher {
    static create(config, reference) {
      const t = new Watcher();
      t.inner = make(config, reference);
      return t;
    }
    observe(input) {
      this.inner.observe(batchIn(input));
    }
    report() {
      const r = this.inner.report();
      return { rows: BigInt(r.rows), alert: r.alert, metrics: r.metrics, summary: r.summary };
    }
    snapshot() {
      return this.inner.snapshot();
    }
    restore(state) {
      this.inner.restore(state);
    }
  }
  return { metadata, monitor: { Watcher } };
}
