//! CloudWatch: an alarm's tags, for alarms whose dimensions name no function
//! (composite alarms, custom metrics).

use crate::error::{Error, Result};
use crate::rollback::ports::AlarmTags;
use aws_sdk_cloudwatch::Client;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct CloudWatchAlarms {
    client: Client,
}

impl CloudWatchAlarms {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl AlarmTags for CloudWatchAlarms {
    async fn tags(&self, alarm_arn: &str) -> Result<BTreeMap<String, String>> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(alarm_arn)
            .send()
            .await
            .map_err(|e| Error::aws("cloudwatch", "ListTagsForResource", e))?;
        Ok(out
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_sdk_cloudwatch::types::Tag;
    use aws_smithy_mocks::{mock, mock_client};

    #[tokio::test]
    async fn reads_the_alarm_tags() {
        let rule = mock!(Client::list_tags_for_resource)
            .match_requests(|r| r.resource_arn() == Some("arn:alarm:checkout"))
            .then_output(|| {
                ListTagsForResourceOutput::builder()
                    .tags(
                        Tag::builder()
                            .key("rollgate:group")
                            .value("checkout")
                            .build(),
                    )
                    .tags(Tag::builder().key("team").value("pay").build())
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, [&rule]);
        let tags = CloudWatchAlarms::new(client)
            .tags("arn:alarm:checkout")
            .await
            .unwrap();
        assert_eq!(tags["rollgate:group"], "checkout");
        assert_eq!(tags.len(), 2);
    }
}
