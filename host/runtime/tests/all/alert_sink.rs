//! The executor hands raised alerts to the sink its caller passes in and
//! does no delivery of its own: a recording sink sees exactly the alerts the
//! run summary reports, and what it returns is kept as their deliveries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use keel_runtime::alert::{Alert, AlertSink, AlertSpec, Delivery};
use keel_runtime::pipeline::{Pipeline, PluginDirs, RunOptions};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl AlertSink for Recording {
    fn deliver(&self, _spec: &AlertSpec, alert: &Alert) -> Vec<Delivery> {
        self.0.lock().unwrap().push(alert.monitor.clone());
        vec![Delivery {
            sink: "recording".into(),
            target: "test".into(),
            ok: true,
            detail: format!("window {}", alert.window.index),
        }]
    }
}

#[test]
fn alerts_go_to_the_callers_sink_and_its_answers_are_kept() {
    let example = common::workspace().join("examples/penguins");
    let resolver = PluginDirs(vec![common::plugin_dir()]);
    let pipeline =
        Pipeline::load(common::runtime(), &example.join("pipeline.toml"), &resolver).unwrap();
    let source = keel_data::io::open(&example.join("current.csv"), None, 64).unwrap();
    let recording = Arc::new(Recording::default());
    let options = RunOptions {
        alerts: recording.clone(),
        ..RunOptions::default()
    };
    let summary = pipeline
        .run(source, &options, &mut |_| Ok(()), &mut |_| {})
        .unwrap();

    let raised: Vec<&Alert> = summary.monitors.iter().flat_map(|m| &m.alerts).collect();
    // The 2009 season drifts: the example's drift monitors alert on it.
    assert!(!raised.is_empty(), "no alert raised on current.csv");
    let seen = recording.0.lock().unwrap().clone();
    let reported: Vec<String> = raised.iter().map(|a| a.monitor.clone()).collect();
    assert_eq!(
        seen, reported,
        "the sink saw other alerts than the summary reports"
    );
    for a in raised {
        assert_eq!(a.deliveries.len(), 1, "{}: {:?}", a.monitor, a.deliveries);
        assert_eq!(a.deliveries[0].sink, "recording");
        assert_eq!(a.deliveries[0].detail, format!("window {}", a.window.index));
    }
}
