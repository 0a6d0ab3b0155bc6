//! A release with a bug: every invocation is a function error.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    example_app::run(example_app::Mode::Broken).await
}
