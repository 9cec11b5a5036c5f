// `{{name}}`: multiplies a numeric column by a factor (nulls stay null).
import { Column, Transform, exportPlugin, configError, inputError } from "./keel.js";

class Plugin extends Transform {
  constructor(config) {
    super();
    if (!config.column) throw configError("`column` is required", "column");
    this.column = config.column;
    this.factor = config.factor;
  }
  process(batch) {
    const col = batch.column(this.column);
    if (!col.isNumeric()) throw inputError(`column \`${col.name}\` is ${col.dtype}, not numeric`, col.name);
    batch.set(new Column(col.name, "f64", col.values.map((v) => (v === null ? null : Number(v) * this.factor))));
    return batch;
  }
}
Plugin.pluginName = "{{name}}";
Plugin.version = "0.1.0";
Plugin.description = "Multiplies a numeric column by a factor.";
Plugin.configSchema = {
  type: "object",
  properties: { column: { type: "string" }, factor: { type: "number" } },
  required: ["column"],
  additionalProperties: false,
};
Plugin.defaults = { column: "", factor: 2 };

export const { metadata, transform } = exportPlugin(Plugin);
