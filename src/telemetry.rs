//! OpenTelemetry traces: the process's `tracing` spans, exported over OTLP/HTTP (protobuf) when
//! the standard `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, and
//! not at all otherwise. The exporter reads the other standard `OTEL_*` variables itself
//! (headers, timeout, the batch processor's delay); the service is `OTEL_SERVICE_NAME` or
//! `vextrus`. A W3C `traceparent` on a request continues the caller's trace (the API's request
//! span takes it as parent).

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

#[derive(Debug, thiserror::Error)]
#[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {0}")]
pub struct TelemetryError(#[from] opentelemetry_otlp::ExporterBuildError);

/// The trace pipeline of the process, when an OTLP endpoint is configured.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// The pipeline the environment asks for; `None` when no OTLP endpoint is set.
    pub fn from_env() -> Result<Option<Self>, TelemetryError> {
        let configured = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()));
        if !configured {
            return Ok(None);
        }
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()?;
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "vextrus".into());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        global::set_text_map_propagator(TraceContextPropagator::new());
        Ok(Some(Self { provider }))
    }

    /// The tracer the `tracing` layer exports through.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("vextrus")
    }

    /// Exports what is still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("warning: exporting the last traces: {error}");
        }
    }
}
