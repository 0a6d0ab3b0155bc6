//! The AWS clients' HTTPS (adapters::aws::https_client): rustls on ring, trusting exactly
//! the CA bundle it is given. A server that bundle vouches for answers; one it does not is
//! refused, as AWS's clients refuse a man in the middle.

use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// An HTTPS server on 127.0.0.1 with the fixture certificate, answering every request
/// with one SSM GetParameter response. Returns its URL.
fn ssm_over_tls() -> String {
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the request head and its body (the SDK sends Content-Length).
            while let Ok(n) = tls.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if seen.len() >= head_end + 4 + length {
                        break;
                    }
                }
            }
            let body =
                r#"{"Parameter":{"Name":"/tls","Type":"String","Value":"over TLS","Version":1}}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(response.as_bytes());
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    url
}

/// GetParameter from the server at `url`, trusting the certificates of `bundle`.
async fn get_parameter(
    url: &str,
    bundle: &str,
) -> Result<
    Option<String>,
    aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::get_parameter::GetParameterError>,
> {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(rollgate::adapters::aws::https_client(Some(bundle)))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .build();
    let out = aws_sdk_ssm::Client::from_conf(config)
        .get_parameter()
        .name("/tls")
        .send()
        .await?;
    Ok(out.parameter().and_then(|p| p.value()).map(str::to_owned))
}

#[tokio::test]
async fn a_server_the_bundle_vouches_for_answers() {
    let url = ssm_over_tls();
    let value = get_parameter(&url, fixture("ca.pem").to_str().unwrap()).await;
    assert_eq!(
        value.expect("the call succeeds over TLS").as_deref(),
        Some("over TLS")
    );
}

#[tokio::test]
async fn a_server_the_bundle_does_not_vouch_for_is_refused() {
    let url = ssm_over_tls();
    // A bundle with a valid certificate that is not the server's CA: the server's own.
    let err = get_parameter(&url, fixture("server.pem").to_str().unwrap())
        .await
        .expect_err("an unknown issuer is refused");
    let text = format!(
        "{:?}",
        aws_smithy_types::error::display::DisplayErrorContext(&err)
    );
    assert!(
        text.contains("UnknownIssuer") || text.contains("certificate"),
        "{text}"
    );
}
