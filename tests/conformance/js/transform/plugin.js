// The conformance transform in JavaScript (tests/conformance/README.md).
import { Batch, Column, Transform, exportPlugin, inputError, configError } from "./keel.js";

class Conformance extends Transform {
  constructor(config) {
    super();
    this.offset = config.offset;
    this.probe = config.probe;
  }
  process(batch) {
    if (this.probe) return this.runProbe();
    if (batch.has("nulls")) throw inputError("the input already has a column `nulls`", "nulls");
    const nulls = new Array(batch.rows).fill(0n);
    const off = this.offset;
    const out = batch.columns.map((c) => {
      let f;
      if (c.dtype === "f64" || c.dtype === "f32") f = (x) => 2 * x + off;
      else if (c.dtype === "s64") f = (x) => BigInt.asIntN(64, 2n * x);
      else if (c.dtype === "bool") f = (x) => !x;
      else f = (x) => Array.from(x).reverse().join("");
      const values = c.values.map((v, i) => {
        if (v === null) {
          nulls[i] += 1n;
          return null;
        }
        return f(v);
      });
      return new Column(c.name, c.dtype, values);
    });
    out.push(new Column("nulls", "s64", nulls));
    return new Batch(out, batch.rows);
  }
  // Sandbox probes. JavaScript has no file API here, so there is no read-file probe.
  runProbe() {
    if (this.probe === "loop") {
      let n = 0;
      for (;;) n++;
    }
    if (this.probe === "grow") {
      const hoard = [];
      for (;;) hoard.push(new Float64Array(1 << 17).fill(1));
    }
    throw configError(`unknown probe \`${this.probe}\``, "probe");
  }
}
Conformance.pluginName = "conformance-transform";
Conformance.version = "0.1.0";
Conformance.description = "The cross-language conformance transform (JavaScript).";
Conformance.configSchema = { type: "object", properties: { offset: { type: "number" }, probe: { enum: ["loop", "grow"] } }, additionalProperties: false };
Conformance.defaults = { offset: 1, probe: "" };

export const { metadata, transform } = exportPlugin(Conformance);
