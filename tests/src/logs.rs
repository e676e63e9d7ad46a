//! The warnings a server under test logs: a `tracing` subscriber that keeps the events of
//! target `sentry_meta`, installed as the default of the server's threads.

use std::fmt;
use std::sync::{Arc, Mutex};

/// One warning of target `sentry_meta`.
#[derive(Debug, Clone)]
pub struct Warning {
    /// Its message.
    pub message: String,
    /// Its `route` field, if it has one.
    pub route: Option<String>,
}

/// The warnings kept so far, shared with the subscriber of [`Warnings::dispatch`].
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<Warning>>>);

impl Warnings {
    /// A subscriber that keeps warnings here: set it as the default of each thread whose logs
    /// the test reads (`tracing::dispatcher::set_default`).
    pub fn dispatch(&self) -> tracing::Dispatch {
        tracing::Dispatch::new(Capture(self.clone()))
    }

    /// The warnings kept so far.
    pub fn all(&self) -> Vec<Warning> {
        self.0.lock().expect("not poisoned").clone()
    }
}

struct Capture(Warnings);

#[derive(Default)]
struct Fields {
    message: String,
    route: Option<String>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "route" => self.route = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "route" => self.route = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() != "sentry_meta" {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        (self.0).0.lock().expect("not poisoned").push(Warning {
            message: fields.message,
            route: fields.route,
        });
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}
