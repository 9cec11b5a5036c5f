// `schema-check`: checks columns against a declared schema: type, nullability,
// numeric range, string pattern (a JavaScript regular expression) and allowed values.
import { Validator, exportPlugin, configError, finding } from "./keel.js";

class SchemaCheck extends Validator {
  constructor(config) {
    super();
    const cols = config.columns;
    if (!cols || typeof cols !== "object" || Array.isArray(cols) || !Object.keys(cols).length)
      throw configError("`columns` must map column names to rules", "columns");
    this.rules = Object.entries(cols).map(([name, r]) => {
      const known = ["type", "nullable", "min", "max", "pattern", "values"];
      for (const k of Object.keys(r)) if (!known.includes(k)) throw configError(`columns.${name}: unknown rule \`${k}\``, name);
      let pattern;
      if (r.pattern !== undefined) {
        try {
          pattern = new RegExp(r.pattern, "u");
        } catch (e) {
          throw configError(`columns.${name}.pattern: ${e.message}`, name);
        }
      }
      return { name, ...r, pattern, values: r.values ? new Set(r.values) : undefined };
    });
  }
  validate(batch) {
    const out = [];
    for (const r of this.rules) {
      if (!batch.has(r.name)) {
        out.push(finding("present", `column \`${r.name}\` is missing`, { column: r.name }));
        continue;
      }
      const col = batch.column(r.name);
      if (r.type && col.dtype !== r.type) {
        out.push(finding("type", `column \`${r.name}\` is ${col.dtype}, expected ${r.type}`, { column: r.name }));
        continue;
      }
      col.values.forEach((v, row) => {
        const at = { column: r.name, row };
        if (v === null) {
          if (r.nullable === false) out.push(finding("not-null", `\`${r.name}\` is null`, at));
          return;
        }
        if (r.min !== undefined && Number(v) < r.min) out.push(finding("range", `\`${r.name}\` is ${v}, below ${r.min}`, at));
        if (r.max !== undefined && Number(v) > r.max) out.push(finding("range", `\`${r.name}\` is ${v}, above ${r.max}`, at));
        if (r.pattern && typeof v === "string" && !r.pattern.test(v))
          out.push(finding("pattern", `\`${r.name}\` is ${JSON.stringify(v)}, not matching /${r.pattern.source}/`, at));
        if (r.values && !r.values.has(v)) out.push(finding("values", `\`${r.name}\` is ${JSON.stringify(v)}, not an allowed value`, { ...at, severity: "warning" }));
      });
    }
    return out;
  }
}
SchemaCheck.pluginName = "schema-check";
SchemaCheck.version = "0.1.0";
SchemaCheck.description = "Checks columns against a schema: type, nullability, range, pattern (JavaScript regular expression), allowed values.";
SchemaCheck.configSchema = {
  type: "object",
  properties: {
    columns: {
      type: "object",
      additionalProperties: {
        type: "object",
        properties: {
          type: { enum: ["f64", "f32", "s64", "bool", "string"] },
          nullable: { type: "boolean" },
          min: { type: "number" },
          max: { type: "number" },
          pattern: { type: "string" },
          values: { type: "array" },
        },
        additionalProperties: false,
      },
    },
  },
  required: ["columns"],
  additionalProperties: false,
};
SchemaCheck.defaults = { columns: null };

export const { metadata, validator } = exportPlugin(SchemaCheck);
