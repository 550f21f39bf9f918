//! One trace from the request to the read model: the W3C `traceparent` of the request that
//! appended an event is kept in its `request_metadata` (under [`TRACEPARENT`]; the hash chain
//! covers it), travels in the Kafka envelope, and the relay and the projections open their spans
//! for the event as children of it. Without a trace exporter all of this does nothing.

use std::collections::HashMap;

use opentelemetry::global;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::log::RecordedEvent;
use crate::metadata::CommandMetadata;

/// The `request_metadata` key (and Kafka header) holding the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Records the current span's trace context in `metadata`, when a trace is being exported.
pub fn record_current(metadata: &mut CommandMetadata) {
    let mut carrier: HashMap<String, String> = HashMap::new();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&Span::current().context(), &mut carrier);
    });
    if let Some(traceparent) = carrier.remove(TRACEPARENT) {
        metadata
            .request_metadata
            .insert(TRACEPARENT.to_owned(), traceparent.into());
    }
}

impl RecordedEvent {
    /// The trace context of the request that appended the event, if it was traced.
    pub fn traceparent(&self) -> Option<&str> {
        self.request_metadata.get(TRACEPARENT)?.as_str()
    }

    /// Makes `span` a child of the event's request span (when it has one).
    pub fn continue_trace(&self, span: &Span) {
        let Some(traceparent) = self.traceparent() else {
            return;
        };
        let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
        let parent = global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
        span.set_parent(parent);
    }
}
