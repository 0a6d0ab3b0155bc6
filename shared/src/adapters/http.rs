//! The HTTP client behind post-traffic probes: hyper with rustls (ring) and the
//! system's root certificates, the stack the AWS SDK links already. Built on the first
//! probe, so a function without probes pays nothing for loading certificates at start.

use crate::clock::Instant;
use crate::post_traffic::probe::{Answer, HttpClient};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use tokio::sync::OnceCell;

type Inner = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

#[derive(Default)]
pub struct Http {
    client: OnceCell<Result<Inner, String>>,
}

impl Http {
    pub fn new() -> Self {
        Self::default()
    }

    async fn client(&self) -> &Result<Inner, String> {
        self.client
            .get_or_init(|| async {
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                    .map_err(|e| format!("TLS set-up failed: {e}"))?
                    .https_or_http()
                    .enable_http1()
                    .build();
                Ok(Client::builder(TokioExecutor::new()).build(https))
            })
            .await
    }
}

impl HttpClient for Http {
    async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&str>,
        timeout: Duration,
    ) -> Answer {
        let client = match self.client().await {
            Ok(c) => c,
            Err(e) => return Answer::Error(e.clone()),
        };
        let mut request = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let body = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
        let request = match request.body(body) {
            Ok(r) => r,
            Err(e) => return Answer::Error(format!("invalid request: {e}")),
        };
        let started = Instant::now();
        let exchange = async {
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            // The whole answer counts: a slow body is a slow response.
            response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?;
            Ok::<u16, String>(status)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(status)) => Answer::Status {
                status,
                latency: started.elapsed(),
            },
            Ok(Err(e)) => Answer::Error(e),
            Err(_) => Answer::Error(format!("timed out after {} ms", timeout.as_millis())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot HTTP/1.1 server on loopback answering `status` after `delay`.
    async fn server(status: u16, delay: Duration) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap();
            tokio::time::sleep(delay).await;
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = sock.write_all(reply.as_bytes()).await;
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (format!("http://{addr}/health"), task)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn answers_status_latency_and_sends_method_and_headers() {
        let (url, seen) = server(503, Duration::ZERO).await;
        let http = Http::new();
        let headers = [("x-probe".to_owned(), "rollgate".to_owned())];
        let got = http
            .send("POST", &url, &headers, Some("{}"), Duration::from_secs(5))
            .await;
        assert!(matches!(got, Answer::Status { status: 503, .. }), "{got:?}");
        let request = seen.await.unwrap();
        assert!(request.starts_with("POST /health HTTP/1.1"), "{request}");
        assert!(
            request.to_ascii_lowercase().contains("x-probe: rollgate"),
            "{request}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_slow_server_times_out_and_a_closed_port_is_an_error() {
        let (url, _seen) = server(200, Duration::from_secs(5)).await;
        let http = Http::new();
        let got = http
            .send("GET", &url, &[], None, Duration::from_millis(200))
            .await;
        assert_eq!(got, Answer::Error("timed out after 200 ms".into()));
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let got = http
            .send(
                "GET",
                &format!("http://{closed}/"),
                &[],
                None,
                Duration::from_secs(5),
            )
            .await;
        assert!(matches!(got, Answer::Error(_)), "{got:?}");
    }
}
