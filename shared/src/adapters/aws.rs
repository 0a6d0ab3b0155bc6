//! The one place where SDK clients are built.
//!
//! `aws_config` reads region, credentials and `AWS_ENDPOINT_URL` (the local emulator)
//! from the environment. Retries and timeouts are set here once for every client, and
//! the one HTTPS client: rustls on ring, trusting the certificates of one CA bundle.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::time::Duration;

/// Shared SDK configuration; cheap to clone, build clients from it on demand.
#[derive(Clone, Debug)]
pub struct Aws {
    config: SdkConfig,
}

impl Aws {
    /// Load the SDK's configuration (Lambda's role, region, endpoint, which the SDK reads
    /// from the environment itself), with `attempts` per call (tests against the emulator
    /// use 1: `ROLLGATE_AWS_MAX_ATTEMPTS`, read by [`crate::config`]).
    pub async fn load(attempts: u32, ca_bundle: Option<&str>) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client(ca_bundle))
            .retry_config(RetryConfig::standard().with_max_attempts(attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .build(),
            )
            .load()
            .await;
        Self { config }
    }

    /// A configuration for tests: no HTTPS client of its own.
    pub fn config(&self) -> &SdkConfig {
        &self.config
    }

    pub fn codedeploy(&self) -> aws_sdk_codedeploy::Client {
        aws_sdk_codedeploy::Client::new(&self.config)
    }

    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.config)
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.config)
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config)
    }

    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.config)
    }

    /// S3 addressed by path (`<endpoint>/<bucket>/<key>`) when an endpoint is set (the
    /// local AWS), as the SDK cannot reach a bucket's own host name there.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(self.config.endpoint_url().is_some())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub fn scheduler(&self) -> aws_sdk_scheduler::Client {
        aws_sdk_scheduler::Client::new(&self.config)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.config)
    }
}

/// The SDK's HTTPS client: rustls with ring, trusting exactly the certificates of the CA
/// bundle (`SSL_CERT_FILE`, else the first of [`crate::config::CA_BUNDLES`] that exists).
/// Without one, the system's roots (which also scans the certificate directory).
pub fn https_client(ca_bundle: Option<&str>) -> SharedHttpClient {
    let context = ca_bundle
        .map(str::to_owned)
        .or_else(|| {
            crate::config::CA_BUNDLES
                .iter()
                .find(|p| std::path::Path::new(p).is_file())
                .map(|p| (*p).to_owned())
        })
        .and_then(|path| std::fs::read(&path).ok())
        .map(usable_roots)
        .filter(|pem| !pem.is_empty())
        .and_then(|pem| {
            TlsContext::builder()
                .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
                .build()
                .ok()
        });
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    SharedHttpClient::new(OneConnector(match context {
        Some(context) => builder.tls_context(context).build_https(),
        None => builder.build_https(),
    }))
}

/// The SDK's HTTP client without its start-up check. Every `Client::new` asks its HTTP
/// client to validate itself, and the smithy client answers by building a whole
/// connector (the CA bundle parsed into a rustls root store) and dropping it: a function
/// with six SDK clients parsed the bundle six times before its first event, and once more
/// at its first request. The bundle is checked once by [`usable_roots`], so the
/// connector cannot fail on it; the one connector, shared by every client of the process
/// (one timeout setting, one cache entry), is built at the first request.
#[derive(Debug)]
pub struct OneConnector(pub SharedHttpClient);

impl HttpClient for OneConnector {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The certificates of a PEM bundle that rustls takes as trust anchors, as PEM. The SDK
/// reads the bundle as one: every certificate must parse, or it panics (and the release
/// build aborts). A bundle that parses whole, as the system's usually does, is handed on
/// as it is (no copy at start-up); otherwise only the certificates that parse are kept:
/// bundles carry the odd expired or unusual one.
pub fn usable_roots(bundle: Vec<u8>) -> Vec<u8> {
    if parses_whole(&bundle) {
        return bundle;
    }
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::with_capacity(bundle.len());
    let mut rest = &bundle[..];
    while let Some(start) = find(rest, BEGIN) {
        let Some(stop) = find(&rest[start..], END).map(|e| start + e + END.len()) else {
            break;
        };
        let block = &rest[start..stop];
        let parses = CertificateDer::from_pem_slice(block)
            .ok()
            .is_some_and(|der| rustls::RootCertStore::empty().add(der).is_ok());
        if parses {
            out.extend_from_slice(block);
            out.push(b'\n');
        }
        rest = &rest[stop..];
    }
    out
}

/// Whether the SDK's own reading of the bundle succeeds: every certificate section
/// decodes and is taken as a trust anchor (and there is at least one). Each anchor is
/// dropped at once: the SDK builds its own store at the first request.
fn parses_whole(bundle: &[u8]) -> bool {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut any = false;
    for der in CertificateDer::pem_slice_iter(bundle) {
        match der.map(|d| rustls::RootCertStore::empty().add(d)) {
            Ok(Ok(())) => any = true,
            _ => return false,
        }
    }
    any
}

/// Where `needle` first occurs in `haystack`: candidates by their first byte (a PEM
/// bundle has few dashes), then compared whole.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(at) = haystack[from..].iter().position(|b| b == first) {
        let at = from + at;
        if haystack[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{OneConnector, usable_roots};
    use aws_smithy_runtime_api::client::http::SharedHttpClient;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An HTTP client that counts the connectors it is asked to build.
    fn counting() -> (SharedHttpClient, Arc<AtomicUsize>) {
        let built = Arc::new(AtomicUsize::new(0));
        let seen = built.clone();
        let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(move |_, _| {
            seen.fetch_add(1, Ordering::SeqCst);
            aws_smithy_http_client::Connector::builder().build_http()
        });
        (client, built)
    }

    fn three_clients(http: SharedHttpClient) {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::for_tests())
            .http_client(http)
            .build();
        for _ in 0..3 {
            let _ = aws_sdk_lambda::Client::from_conf(config.clone());
        }
    }

    #[test]
    fn building_sdk_clients_builds_no_connector() {
        // The smithy client alone builds (and drops) one per SDK client.
        let (plain, built) = counting();
        three_clients(plain);
        assert_eq!(built.load(Ordering::SeqCst), 3);
        let (inner, built) = counting();
        three_clients(SharedHttpClient::new(OneConnector(inner)));
        assert_eq!(built.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_bundle_keeps_only_certificates_rustls_takes() {
        let Some(path) = crate::config::CA_BUNDLES
            .iter()
            .find(|p| std::path::Path::new(p).is_file())
        else {
            return; // no system bundle on this machine
        };
        let bundle = std::fs::read(path).unwrap();
        let kept = usable_roots(bundle.clone());
        let count = |b: &[u8]| {
            b.windows(27)
                .filter(|w| *w == b"-----BEGIN CERTIFICATE-----")
                .count()
        };
        assert!(count(&kept) > 50, "{} of {}", count(&kept), count(&bundle));
        // A broken certificate between two good ones is left out, not fatal.
        let first = &kept[..kept
            .windows(25)
            .position(|w| w == b"-----END CERTIFICATE-----")
            .unwrap()
            + 25];
        let mut mixed = first.to_vec();
        mixed.extend_from_slice(
            b"\n-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        );
        mixed.extend_from_slice(first);
        assert_eq!(count(&usable_roots(mixed)), 2);
        // A bundle the SDK reads whole (comments between certificates, as Red Hat's has)
        // goes on untouched.
        let mut whole = b"# Root one\n".to_vec();
        whole.extend_from_slice(first);
        whole.extend_from_slice(b"\n# Root two\n");
        whole.extend_from_slice(first);
        assert_eq!(usable_roots(whole.clone()), whole);
        assert!(usable_roots(b"no pem here".to_vec()).is_empty());
    }
}
