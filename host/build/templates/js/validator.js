// `{{name}}`: one finding per null cell of the configured columns (all columns when none are named).
import { Validator, exportPlugin, finding } from "./keel.js";

class Plugin extends Validator {
  constructor(config) {
    super();
    this.columns = config.columns;
  }
  validate(batch) {
    const out = [];
    for (const col of batch.columns) {
      if (this.columns.length && !this.columns.includes(col.name)) continue;
      col.values.forEach((v, row) => {
        if (v === null) out.push(finding("not-null", `\`${col.name}\` is null`, { column: col.name, row }));
      });
    }
    return out;
  }
}
Plugin.pluginName = "{{name}}";
Plugin.version = "0.1.0";
Plugin.description = "Flags null cells.";
Plugin.configSchema = {
  type: "object",
  properties: { columns: { type: "array", items: { type: "string" } } },
  additionalProperties: false,
};
Plugin.defaults = { columns: [] };

export const { metadata, validator } = exportPlugin(Plugin);
