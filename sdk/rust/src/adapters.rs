//! Glue between the author-facing traits and the generated `Guest` traits.
//! Resources are shared (`&self`) in the bindings, so state sits in a `RefCell`;
//! the host never calls one resource re-entrantly.

use crate::bindings::{monitor as mb, transform as tb, validator as vb};
use crate::convert::{batch_from_wit, batch_to_wit, error_to_wit};
use crate::{Config, Info, Monitor, Transform, Validate, wit};
use core::cell::RefCell;
use core::marker::PhantomData;

fn describe(info: Info, kind: wit::PluginKind) -> wit::PluginInfo {
    wit::PluginInfo {
        name: info.name,
        version: info.version,
        kind,
        description: info.description,
        config_schema: info.config_schema,
    }
}

fn busy() -> wit::Error {
    error_to_wit(crate::Error::internal("plugin state re-entered"))
}

/// The component type for a [`Transform`].
pub struct TransformComponent<T>(PhantomData<T>);
/// The `transformer` resource for a [`Transform`].
pub struct TransformResource<T>(RefCell<T>);

impl<T: Transform> tb::exports::keel::plugin::metadata::Guest for TransformComponent<T> {
    fn describe() -> wit::PluginInfo {
        let info = T::info();
        let kind = if info.model {
            wit::PluginKind::Model
        } else {
            wit::PluginKind::Transform
        };
        describe(info, kind)
    }
}

impl<T: Transform> tb::exports::keel::plugin::transform::Guest for TransformComponent<T> {
    type Transformer = TransformResource<T>;
}

impl<T: Transform> tb::exports::keel::plugin::transform::GuestTransformer for TransformResource<T> {
    fn create(
        config: String,
        reference: Option<wit::Batch>,
    ) -> Result<tb::exports::keel::plugin::transform::Transformer, wit::Error> {
        let reference = reference
            .map(batch_from_wit)
            .transpose()
            .map_err(error_to_wit)?;
        let inner = T::create(Config(config), reference).map_err(error_to_wit)?;
        Ok(tb::exports::keel::plugin::transform::Transformer::new(
            TransformResource(RefCell::new(inner)),
        ))
    }

    fn process(&self, input: wit::Batch) -> Result<wit::Batch, wit::Error> {
        let input = batch_from_wit(input).map_err(error_to_wit)?;
        let mut inner = self.0.try_borrow_mut().map_err(|_| busy())?;
        inner.process(input).map(batch_to_wit).map_err(error_to_wit)
    }
}

/// The component type for a [`Validate`].
pub struct ValidatorComponent<T>(PhantomData<T>);
/// The `checker` resource for a [`Validate`].
pub struct ValidatorResource<T>(RefCell<T>);

impl<T: Validate> vb::exports::keel::plugin::metadata::Guest for ValidatorComponent<T> {
    fn describe() -> wit::PluginInfo {
        describe(T::info(), wit::PluginKind::Validator)
    }
}

impl<T: Validate> vb::exports::keel::plugin::validator::Guest for ValidatorComponent<T> {
    type Checker = ValidatorResource<T>;
}

impl<T: Validate> vb::exports::keel::plugin::validator::GuestChecker for ValidatorResource<T> {
    fn create(
        config: String,
        reference: Option<wit::Batch>,
    ) -> Result<vb::exports::keel::plugin::validator::Checker, wit::Error> {
        let reference = reference
            .map(batch_from_wit)
            .transpose()
            .map_err(error_to_wit)?;
        let inner = T::create(Config(config), reference).map_err(error_to_wit)?;
        Ok(vb::exports::keel::plugin::validator::Checker::new(
            ValidatorResource(RefCell::new(inner)),
        ))
    }

    fn validate(&self, input: wit::Batch) -> Result<Vec<wit::Finding>, wit::Error> {
        let input = batch_from_wit(input).map_err(error_to_wit)?;
        let mut inner = self.0.try_borrow_mut().map_err(|_| busy())?;
        inner.validate(&input).map_err(error_to_wit)
    }
}

/// The component type for a [`Monitor`].
pub struct MonitorComponent<T>(PhantomData<T>);
/// The `watcher` resource for a [`Monitor`].
pub struct MonitorResource<T>(RefCell<T>);

impl<T: Monitor> mb::exports::keel::plugin::metadata::Guest for MonitorComponent<T> {
    fn describe() -> wit::PluginInfo {
        describe(T::info(), wit::PluginKind::Monitor)
    }
}

impl<T: Monitor> mb::exports::keel::plugin::monitor::Guest for MonitorComponent<T> {
    type Watcher = MonitorResource<T>;
}

impl<T: Monitor> mb::exports::keel::plugin::monitor::GuestWatcher for MonitorResource<T> {
    fn create(
        config: String,
        reference: wit::Batch,
    ) -> Result<mb::exports::keel::plugin::monitor::Watcher, wit::Error> {
        let reference = batch_from_wit(reference).map_err(error_to_wit)?;
        let inner = T::create(Config(config), reference).map_err(error_to_wit)?;
        Ok(mb::exports::keel::plugin::monitor::Watcher::new(
            MonitorResource(RefCell::new(inner)),
        ))
    }

    fn observe(&self, input: wit::Batch) -> Result<(), wit::Error> {
        let input = batch_from_wit(input).map_err(error_to_wit)?;
        let mut inner = self.0.try_borrow_mut().map_err(|_| busy())?;
        inner.observe(&input).map_err(error_to_wit)
    }

    fn report(&self) -> Result<wit::Report, wit::Error> {
        let inner = self.0.try_borrow().map_err(|_| busy())?;
        inner.report().map_err(error_to_wit)
    }

    fn snapshot(&self) -> Result<Vec<u8>, wit::Error> {
        let inner = self.0.try_borrow().map_err(|_| busy())?;
        inner.snapshot().map_err(error_to_wit)
    }

    fn restore(&self, state: Vec<u8>) -> Result<(), wit::Error> {
        let mut inner = self.0.try_borrow_mut().map_err(|_| busy())?;
        inner.restore(&state).map_err(error_to_wit)
    }
}
