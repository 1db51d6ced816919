//! Kubernetes Events without an ever-growing cache.
//!
//! kube's [`Recorder`] keeps every Event it published in the last 6 minutes (to turn repeats into a
//! series) and scans that whole cache on each publish. The operator publishes a Normal Event for each
//! remote write, and those do not repeat: at 10,000 objects the cache held ~10,000 Events (megabytes) and
//! each publish walked all of them under one lock. So Normal Events are created directly, and only
//! Warnings, which do repeat while an object keeps failing, go through the Recorder and its series.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Publishes Events: Warnings through kube's [`Recorder`] (aggregated into series), Normal Events
/// directly.
#[derive(Clone)]
pub struct EventPublisher {
    client: kube::Client,
    reporter: Reporter,
    warnings: Recorder,
}

impl EventPublisher {
    /// A publisher reporting as `reporter`.
    #[must_use]
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Self {
            warnings: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
        }
    }

    /// Publishes `event` about `regarding`.
    ///
    /// # Errors
    /// The Kubernetes API error.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        if event.type_ == EventType::Warning {
            return self.warnings.publish(event, regarding).await;
        }
        self.create(event, regarding).await
    }

    /// Publishes `event` about `regarding` as an Event of its own, never folded into a series (whose
    /// later members keep the first note): for announcements whose note matters each time, made only
    /// when what they announce changed.
    ///
    /// # Errors
    /// The Kubernetes API error.
    pub async fn announce(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        self.create(event, regarding).await
    }

    async fn create(&self, event: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let now = jiff::Timestamp::now();
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let body = K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                // The name scheme kube's Recorder uses: the object's name and the time in nanoseconds.
                name: Some(format!(
                    "{}.{:x}",
                    regarding
                        .name
                        .as_deref()
                        .unwrap_or(&self.reporter.controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                if event.type_ == EventType::Warning {
                    "Warning"
                } else {
                    "Normal"
                }
                .to_owned(),
            ),
            related: event.secondary.clone(),
            ..K8sEvent::default()
        };
        Api::<K8sEvent>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &body)
            .await
            .map(|_| ())
    }
}
