//! A "candidate" standard scaler: same config as `standard-scaler`, but it
//! clips z-scores to [-1, 1]. Replay tests substitute it for the released
//! scaler and check that Keel reports what changed.

use keel_algos::TransformAlgo;
use keel_algos::scaler::{ScalerConfig, StandardScaler};
use keel_sdk::{Batch, ColumnData, Config, Info, Result, Transform};

struct Clipped(StandardScaler);

impl Transform for Clipped {
    fn info() -> Info {
        Info::new(
            "standard-scaler",
            "0.2.0-clipped",
            "Standard scaler with z-scores clipped to [-1, 1].",
        )
        // The config is standard-scaler's; its keys are checked there (and
        // by ScalerConfig here): the schema says no more than "an object".
        .schema(r#"{"type":"object"}"#)
    }

    fn create(config: Config, reference: Option<Batch>) -> Result<Self> {
        Ok(Clipped(StandardScaler::build(
            config.parse::<ScalerConfig>()?,
            reference.as_ref(),
        )?))
    }

    fn process(&mut self, input: Batch) -> Result<Batch> {
        let mut out = self.0.transform(input)?;
        for name in self.0.columns().to_vec() {
            let Some(col) = out.column(&name).cloned() else {
                continue;
            };
            let mut col = col;
            if let ColumnData::F64(v) = &mut col.data {
                v.iter_mut().for_each(|x| *x = x.clamp(-1.0, 1.0));
            }
            out.set(col)?;
        }
        Ok(out)
    }
}

keel_sdk::export_transform!(Clipped);
