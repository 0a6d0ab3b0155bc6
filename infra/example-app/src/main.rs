//! The healthy build of the example app (`MODE` may override it).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    example_app::run(example_app::Mode::from_env(example_app::Mode::Healthy)).await
}
