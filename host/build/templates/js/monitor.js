// `{{name}}`: the share of null cells per reference column, alerting above `max_null_share`.
import { Monitor, exportPlugin, metric, stateError } from "./keel.js";

class Plugin extends Monitor {
  constructor(config, reference) {
    super();
    this.max = config.max_null_share;
    this.columns = reference.names();
    this.rows = 0;
    this.nulls = this.columns.map(() => 0);
  }
  observe(batch) {
    this.columns.forEach((name, i) => (this.nulls[i] += batch.column(name).nullCount()));
    this.rows += batch.rows;
  }
  report() {
    const metrics = this.columns.map((name, i) => {
      const share = this.rows ? this.nulls[i] / this.rows : 0;
      return metric("null-share", share, { column: name, threshold: this.max, alert: share > this.max });
    });
    const alerts = metrics.filter((m) => m.alert).length;
    return { rows: this.rows, alert: alerts > 0, metrics, summary: `${alerts} of ${metrics.length} columns above ${this.max} nulls` };
  }
  state() {
    return { rows: this.rows, nulls: this.nulls };
  }
  setState(state) {
    if (!state || !Array.isArray(state.nulls) || state.nulls.length !== this.columns.length)
      throw stateError("not a snapshot of this monitor");
    this.rows = state.rows;
    this.nulls = state.nulls;
  }
}
Plugin.pluginName = "{{name}}";
Plugin.version = "0.1.0";
Plugin.description = "Share of nulls per column.";
Plugin.configSchema = { type: "object", properties: { max_null_share: { type: "number" } }, additionalProperties: false };
Plugin.defaults = { max_null_share: 0.1 };

export const { metadata, monitor } = exportPlugin(Plugin);
