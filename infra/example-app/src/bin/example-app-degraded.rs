//! A release that answers, but wrongly.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    example_app::run(example_app::Mode::Degraded).await
}
