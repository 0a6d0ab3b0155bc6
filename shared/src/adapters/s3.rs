//! S3: dlq-redrive reads and deletes Lambda's failure records under a prefix.

use crate::error::{Error, Result};
use crate::redrive::ports::Objects;
use aws_sdk_s3::Client;

#[derive(Clone, Debug)]
pub struct S3 {
    client: Client,
}

impl S3 {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl Objects for S3 {
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        max: i32,
    ) -> Result<Vec<String>> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(after.map(str::to_owned))
            .max_keys(max)
            .send()
            .await
            .map_err(|e| Error::aws("s3", "ListObjectsV2", e))?;
        Ok(out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect())
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<String> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::aws("s3", "GetObject", e))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| {
                Error::InvalidEvent(format!("s3://{bucket}/{key}: reading the object: {e}"))
            })?
            .into_bytes();
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::InvalidEvent(format!("s3://{bucket}/{key} is not UTF-8 text")))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::aws("s3", "DeleteObject", e))?;
        Ok(())
    }
}
