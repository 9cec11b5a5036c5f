// The conformance monitor in JavaScript (tests/conformance/README.md).
import { Monitor, exportPlugin, inputError, referenceError, stateError, metric } from "./keel.js";

// Adds the valid, non-NaN values to `acc` in row order, so the floating-point
// sum is the same as in every other language.
function accumulate(acc, values) {
  for (const v of values) {
    if (v === null) acc.nulls++;
    else {
      const x = Number(v);
      if (!Number.isNaN(x)) {
        acc.sum += x;
        acc.count++;
      }
    }
  }
}

class Conformance extends Monitor {
  constructor(config, reference) {
    super();
    this.threshold = config.threshold;
    if (reference.rows === 0) throw referenceError("the reference has no rows");
    this.columns = [];
    for (const c of reference.columns) {
      if (!c.isNumeric()) continue;
      const acc = { sum: 0, count: 0, nulls: 0 };
      accumulate(acc, c.values);
      this.columns.push([c.name, acc.count ? acc.sum / acc.count : 0]);
    }
    this.rows = 0;
    this.acc = this.columns.map(() => ({ sum: 0, count: 0, nulls: 0 }));
  }
  observe(batch) {
    this.columns.forEach(([name], i) => {
      const c = batch.column(name);
      if (!c.isNumeric()) throw inputError(`column \`${name}\` is not numeric`, name);
      accumulate(this.acc[i], c.values);
    });
    this.rows += batch.rows;
  }
  report() {
    const metrics = [];
    const shifted = [];
    this.columns.forEach(([name, mean], i) => {
      const a = this.acc[i];
      const shift = a.count ? Math.abs(a.sum / a.count - mean) : 0;
      const alert = shift > this.threshold;
      if (alert) shifted.push(name);
      metrics.push(metric("mean-shift", shift, { column: name, threshold: this.threshold, alert }));
      metrics.push(metric("null-share", this.rows ? a.nulls / this.rows : 0, { column: name }));
    });
    const share = this.columns.length ? shifted.length / this.columns.length : 0;
    metrics.push(metric("share-drifted", share, { alert: shifted.length > 0 }));
    let summary = `${shifted.length} of ${this.columns.length} columns shifted`;
    if (shifted.length) summary += ": " + shifted.join(", ");
    return { rows: this.rows, alert: shifted.length > 0, metrics, summary };
  }
  state() {
    return { rows: this.rows, acc: this.acc };
  }
  setState(state) {
    if (!state || !Array.isArray(state.acc) || state.acc.length !== this.columns.length)
      throw stateError("not a conformance-monitor snapshot of this reference");
    this.rows = state.rows;
    this.acc = state.acc;
  }
}
Conformance.pluginName = "conformance-monitor";
Conformance.version = "0.1.0";
Conformance.description = "The cross-language conformance monitor (JavaScript).";
Conformance.configSchema = { type: "object", properties: { threshold: { type: "number" } }, additionalProperties: false };
Conformance.defaults = { threshold: 0.1 };

export const { metadata, monitor } = exportPlugin(Conformance);
