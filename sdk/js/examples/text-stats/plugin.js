// `text-stats`: features of free-text columns: length in code points, word
// count (runs of non-space), and the share of upper-case letters among the
// letters that have a case (Unicode-aware; this engine has no \p{...} classes).
import { Column, Transform, exportPlugin, configError, inputError } from "./keel.js";

const WORD = /\S+/gu;
const cased = (c) => c.toLowerCase() !== c.toUpperCase();

class TextStats extends Transform {
  constructor(config) {
    super();
    if (!Array.isArray(config.columns) || !config.columns.length)
      throw configError("`columns` must name at least one string column", "columns");
    this.columns = config.columns;
  }
  process(batch) {
    for (const name of this.columns) {
      const col = batch.column(name);
      if (col.dtype !== "string") throw inputError(`column \`${name}\` is ${col.dtype}, not string`, name);
      const len = [];
      const words = [];
      const upper = [];
      for (const v of col.values) {
        if (v === null) {
          len.push(null);
          words.push(null);
          upper.push(null);
          continue;
        }
        const chars = Array.from(v);
        len.push(BigInt(chars.length));
        words.push(BigInt((v.match(WORD) || []).length));
        const letters = chars.filter(cased);
        upper.push(letters.length ? letters.filter((c) => c === c.toUpperCase()).length / letters.length : 0);
      }
      batch.set(new Column(`${name}_length`, "s64", len));
      batch.set(new Column(`${name}_words`, "s64", words));
      batch.set(new Column(`${name}_upper_share`, "f64", upper));
    }
    return batch;
  }
}
TextStats.pluginName = "text-stats";
TextStats.version = "0.1.0";
TextStats.description = "Adds <column>_length (code points), <column>_words and <column>_upper_share for string columns.";
TextStats.configSchema = {
  type: "object",
  properties: { columns: { type: "array", items: { type: "string" }, minItems: 1 } },
  required: ["columns"],
  additionalProperties: false,
};
TextStats.defaults = { columns: [] };

export const { metadata, transform } = exportPlugin(TextStats);
